#!/usr/bin/env bash
# The whole test suite: set-up, build, unit and integration tests (and the
# compose tests when a Docker engine answers). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh build
cd build
ctest --output-on-failure --timeout 600 -j2
