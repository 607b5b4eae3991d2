#!/usr/bin/env bash
# A real Prometheus server that scrapes `sense-preflight serve` in the tests: Debian's
# `prometheus` package (2.42), run as a plain process by the test that needs it.
set -euo pipefail

if ! command -v prometheus >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
fi
# The package starts a system service where systemd runs; the tests start their own process.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
prometheus --version | head -n 1
