#!/usr/bin/env bash
# Install what arbor needs from Debian (only when something is missing),
# then configure and build. Usage: scripts/bootstrap.sh [BUILD_DIR] [cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true

scripts/apt-need.sh bootstrap build-essential cmake pkg-config libzmq3-dev libczmq-dev \
    libcjson-dev libcmocka-dev python3 python3-zmq python3-jsonschema gnuplot-nox \
    clang libclang-rt-14-dev valgrind scdoc

log=$(mktemp)
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
       cmake --build "$build" -j"$(nproc)"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "bootstrap: build failed" >&2
    exit 1
fi
rm -f "$log"
echo "bootstrap: built in $build" >&2
