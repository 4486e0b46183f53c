#!/usr/bin/env bash
# What one arbor broker carries: messages per tree, trees/s and nodes/s,
# the routing ceiling against a raw forwarder, memory per peer, and a broker
# restart (docs/SCALE.md). About two minutes on 2 vCPUs (--quick: ~30 s, a
# smoke run, not for the record).
#
# Usage: bench/scale.sh [--quick] [--out DIR] [--build DIR] [--parts LIST]
#                       [-- DRIVER-OPTIONS]
#   LIST: msgs,rate,ceiling,memory,restart (default: all). Driver options:
#   --supervisors N (4), --inflight K (4 trees per supervisor),
#   --tree-nodes N (10), --seconds S (15); see bench/scale.py --help.
#   Writes DIR/scale.md and DIR/scale.json (default DIR: bench/results).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/bench/results
build=$root/build
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --quick) args+=(--quick) ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --parts) args+=(--parts "$2"); shift ;;
    --) shift; args+=("$@"); break ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/scale.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

"$root/scripts/apt-need.sh" bench gcc cmake pkg-config libczmq-dev libzmq3-dev libcjson-dev \
    python3 python3-zmq

echo "scale: building arbor in $build" >&2
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j2 --target arbor-broker arbor-supervisor arbor-forkserver arborctl \
    broker_bench >/dev/null
# Many idle peers: one fd each in the broker and in the driver.
ulimit -n 8192 2>/dev/null || true
exec /usr/bin/python3 "$root/bench/scale.py" --bin "$build/bin" --out "$out" "${args[@]}"
