#!/usr/bin/env bash
# The forward proxy for the proxy tests: Debian's tinyproxy (1.11), run as a plain process by
# the test session (tests/servers/proxy.py), with and without BasicAuth.
set -euo pipefail

if ! command -v tinyproxy >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tinyproxy
fi
# The package starts a system service where systemd runs; the tests start their own process.
if command -v systemctl >/dev/null && systemctl is-active --quiet tinyproxy 2>/dev/null; then
  systemctl stop tinyproxy || true
fi
tinyproxy -v
