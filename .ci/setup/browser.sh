#!/usr/bin/env bash
# Headless Chromium for the HTML report's browser tests: Debian's chromium and chromium-driver,
# driven by Selenium (the `test` extra) through the driver given by path, so nothing is
# downloaded when the tests run.
set -euo pipefail

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
fi
chromedriver --version
