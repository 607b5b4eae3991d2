#!/usr/bin/env bash
# ClickHouse servers for the tests (tests/servers/clickhouse.py starts them):
# - 26.9: the real engine inside the PyPI wheel chdb-core (181 MB download, ~560 MB installed);
#   pinned, the fixture relies on this version's internals;
# - 18.16.1: Debian bookworm's clickhouse-server, the "too old" server.
set -euo pipefail

CHDB_VERSION=26.9.0

if [ "$(python -c 'import importlib.metadata as m
try: print(m.version("chdb-core"))
except m.PackageNotFoundError: pass')" != "$CHDB_VERSION" ]; then
  python -m pip install -q "chdb-core==$CHDB_VERSION"
fi

if [ ! -x /usr/sbin/clickhouse-server ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q clickhouse-server
  # The package may start its own service on 8123/9000; the tests start their own servers.
  if command -v systemctl >/dev/null && systemctl is-active --quiet clickhouse-server 2>/dev/null; then
    $sudo systemctl disable --now clickhouse-server
  fi
fi

dpkg-query -W clickhouse-server
python -c 'import importlib.metadata as m; print("chdb-core", m.version("chdb-core"))'
