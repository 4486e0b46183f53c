#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run):
#   1. set-up and build, then every test with CTest: cmocka units, integration
#      tests with the real daemons, compose tests when a Docker engine answers;
#   2. the same units and integration tests again on an ASan+UBSan build,
#      a short libFuzzer run of the envelope and spec parsers, and valgrind
#      memcheck of the broker and supervisor over an integration run.
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh build
(cd build && ctest --output-on-failure --timeout 900 -j2)
stages=1

if [ "${1:-}" != "--no-sanitize" ]; then
    echo "== ASan+UBSan build: units and integration tests ==" >&2
    scripts/bootstrap.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DARBOR_SANITIZE=ON
    # Sanitized daemons are slower: hang guards scale, assertions do not.
    (cd build-asan && ARBOR_TEST_SLOW=3 ctest --output-on-failure --timeout 900 -j2 -E "compose|swarm|package|k8s_manifests")
    echo "== libFuzzer: 20 s per harness ==" >&2
    tests/fuzz/run.sh 20
    echo "== valgrind memcheck of broker and supervisor ==" >&2
    scripts/valgrind.sh
    stages=4
fi
# set -e: reaching this line means every stage passed.
echo "test stages: $stages passed, 0 failed"
