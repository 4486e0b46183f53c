#!/usr/bin/env bash
# arbor's main job on a local default: a broker, a supervisor and a demo tree
# with failures, ending in the rendered error report.
# Usage: scripts/demo.sh [SPEC]   (default: examples/demo.json)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh build
spec=${1:-examples/demo.json}
bin=$PWD/build/bin
dir=$(mktemp -d /tmp/arbor-demo.XXXXXX)
export ARBOR_BROKER="ipc://$dir/broker.sock"
export PATH="$bin:$PATH"

cleanup() {
    # Stop the daemons (each stops its trees first), with a deadline.
    kill -TERM "${sup:-}" "${broker:-}" 2>/dev/null || true
    for pid in ${sup:-} ${broker:-}; do
        timeout 20 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT

# As root the daemons warn loudly, or refuse with ARBOR_REFUSE_ROOT=1, unless
# given --allow-root (docs/SECURITY.md); the demo means to run as root.
broker_root=() sup_root=()
if [ "$(id -u)" = 0 ]; then
    broker_root=(--allow-root)
    arbor-supervisor --help | grep -q -- --allow-root && sup_root=(--allow-root)
fi
arbor-broker --bind "$ARBOR_BROKER" "${broker_root[@]}" 2>"$dir/broker.log" & broker=$!
arbor-supervisor --broker "$ARBOR_BROKER" --name demo "${sup_root[@]}" 2>"$dir/supervisor.log" & sup=$!
echo "arbor demo: broker and supervisor \"demo\" on $ARBOR_BROKER" >&2
# Wait (bounded) until the supervisor has registered with the broker.
for _ in $(seq 100); do
    arborctl peers 2>/dev/null | grep -qw demo && break
    kill -0 "$sup" 2>/dev/null || { cat "$dir/supervisor.log" >&2; exit 1; }
    sleep 0.1
done
echo "arbor demo: spawning $spec" >&2
set +e
arborctl spawn --supervisor demo --wait --timeout 60 "$spec"
rc=$?
set -e
echo >&2
echo "arborctl exited $rc (0 ok, 1 tree failed, 2 bad spec, 3 unreachable, 4 cancelled)" >&2
# The demo tree is meant to fail: that is a successful demo.
[ "$rc" -eq 0 ] || [ "$rc" -eq 1 ] || [ "$rc" -eq 4 ]
