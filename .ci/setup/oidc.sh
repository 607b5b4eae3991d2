#!/usr/bin/env bash
# OIDC provider for the tests: panva's certified OpenID Provider, the npm package oidc-provider
# (pinned), run on Node by tests/servers/oidc_server.mjs. On Node 20 it warns that it wants
# Node 22; it runs.
set -euo pipefail

OIDC_VERSION="9.13.3"
TOOLS="${SENSE_TEST_TOOLS:-.test-tools}"
PREFIX="$TOOLS/oidc"
PACKAGE_JSON="$PREFIX/node_modules/oidc-provider/package.json"

node --version
if ! grep -q "\"version\": \"$OIDC_VERSION\"" "$PACKAGE_JSON" 2>/dev/null; then
  mkdir -p "$PREFIX"
  npm install --silent --no-audit --no-fund --prefix "$PREFIX" "oidc-provider@$OIDC_VERSION"
fi
grep '"version"' "$PACKAGE_JSON"
