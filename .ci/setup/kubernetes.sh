#!/usr/bin/env bash
# What the kubernetes/gpu tests need beyond pyproject (the `kubernetes` client is a dependency):
# a real kubectl, to prove the fake apiserver's fidelity. The fake itself is pure Python.
set -euo pipefail

if ! command -v kubectl >/dev/null 2>&1; then
    # Debian 12 ships kubectl 1.20 as kubernetes-client; enough for `get` and client dry runs.
    apt-get install -y --no-install-recommends kubernetes-client
fi
kubectl version --client
