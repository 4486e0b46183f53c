#!/usr/bin/env bash
# Build the libFuzzer harnesses with clang (coverage + ASan + UBSan) in
# build-fuzz and run each for SECONDS (default 30) on a fresh copy of its
# seed corpus, both at once. Fails on any crash, sanitizer report, leak,
# timeout or stall. Usage: tests/fuzz/run.sh [SECONDS] [FUZZER...]
#   FUZZER: envelope, spec, notify (default: all)
#   ARBOR_FUZZ_BUILD=DIR   build directory (default build-fuzz)
# Results: DIR/fuzz-NAME.log (last lines printed), crashing inputs in
# DIR/artifacts/ (replay: DIR/bin/fuzz_NAME FILE), the grown corpus in
# DIR/corpus/NAME. docs/RELIABILITY.md has the results of longer runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-30}
shift || true
fuzzers=("$@")
((${#fuzzers[@]})) || fuzzers=(envelope spec notify)
build=${ARBOR_FUZZ_BUILD:-build-fuzz}

# clang and its runtime (libFuzzer, sanitizers) from Debian, plus what the
# code under test links.
scripts/apt-need.sh fuzz clang libclang-rt-14-dev cmake pkg-config libzmq3-dev libczmq-dev \
    libcjson-dev

log=$(mktemp)
if ! { cmake -S tests/fuzz -B "$build" -DCMAKE_C_COMPILER=clang -DARBOR_FUZZ=ON \
             -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$build" -j"$(nproc)"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "fuzz: build failed" >&2
    exit 1
fi
rm -f "$log"

# Per fuzzer: the longest input worth trying (the envelope fuzzer's broker
# takes frames up to 4096 bytes: longer ones test too_large).
declare -A max_len=([envelope]=8192 [spec]=16384 [notify]=70000)

pids=()
names=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
for name in "${fuzzers[@]}"; do
    [ -d "tests/fuzz/corpus/$name" ] || { echo "fuzz: no fuzzer \"$name\"" >&2; exit 2; }
    rm -rf "$build/corpus/$name"
    mkdir -p "$build/corpus/$name" "$build/artifacts"
    cp tests/fuzz/corpus/"$name"/* "$build/corpus/$name/"
    rm -f "$build/artifacts/$name"-*
    # Without a context, sanitizer stacks cost most of the time (malloc-heavy
    # code); a crash is replayed with full stacks by running the artifact.
    ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=5} \
    "$build/bin/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
        -max_len="${max_len[$name]}" -dict="tests/fuzz/dict/$name.dict" \
        -artifact_prefix="$build/artifacts/$name-" -print_final_stats=1 \
        "$build/corpus/$name" >"$build/fuzz-$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
done

failed=0
for i in "${!pids[@]}"; do
    name=${names[$i]}
    rc=0
    wait "${pids[$i]}" || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-$name.log")
    line=$(grep -E '^#[0-9]+' "$build/fuzz-$name.log" | tail -1 || true)
    if [ "$rc" -ne 0 ] || ls "$build/artifacts/$name"-* >/dev/null 2>&1; then
        failed=1
        echo "fuzz: $name FAILED (exit $rc) after ${execs:-?} executions" >&2
        grep -E -A40 'ERROR|runtime error|fuzz_[a-z]+: ' "$build/fuzz-$name.log" | head -60 >&2 || true
        ls "$build/artifacts/$name"-* 2>/dev/null | sed 's/^/  crashing input: /' >&2 || true
    else
        echo "fuzz: $name ok: ${execs:-?} executions in ${seconds}s; ${line#*DONE }" >&2
    fi
done
pids=()
exit "$failed"
