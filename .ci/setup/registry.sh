#!/usr/bin/env bash
# The container registry for the image checks: Debian's docker-registry (CNCF distribution 2.8)
# run as a plain process by the test session, with htpasswd (bcrypt) auth from apache2-utils.
set -euo pipefail

if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    docker-registry apache2-utils
fi
# The package starts a system service where systemd runs; the tests start their own process.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi
docker-registry --version
