#!/usr/bin/env bash
# ClickHouse servers for the tests (tests/servers/clickhouse.py starts them):
# - 26.9: the real engine inside the PyPI wheel chdb-core (181 MB download, ~560 MB installed);
#   pinned, the fixture relies on this version's internals;
# - 18.16.1: Debian bookworm's clickhouse-server, the "too old" server.
set -euo pipefail

CHDB_VERSION=26.9.0
# chdb-core gets a virtualenv of its own: the pyarrow, pandas and numpy it brings would
# otherwise change how clickhouse-connect behaves (and weighs) in the project's environment.
CHDB_VENV="${SENSE_TEST_TOOLS:-.test-tools}/chdb"

[ -x "$CHDB_VENV/bin/python" ] || python3 -m venv "$CHDB_VENV"
if [ "$("$CHDB_VENV/bin/python" -c 'import importlib.metadata as m
try: print(m.version("chdb-core"))
except m.PackageNotFoundError: pass')" != "$CHDB_VERSION" ]; then
  "$CHDB_VENV/bin/python" -m pip install -q "chdb-core==$CHDB_VERSION"
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
"$CHDB_VENV/bin/python" -c 'import importlib.metadata as m; print("chdb-core", m.version("chdb-core"))'
