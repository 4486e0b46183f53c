#!/usr/bin/env bash
# arbor benchmarks against their floors, in one run (docs/BENCHMARKS.md).
#
# Usage: bench/run.sh [--quick] [--reps N] [--out DIR] [--build DIR]
#                     [--parts tree,nested,nursery,exec,cleaves,broker,breakdown,scaling]
#                     [--sizes 10,50,...]
#   builds arbor and the bench programs, starts a broker, a supervisor, a
#   second broker and a raw ZeroMQ forwarder for the routing test, measures
#   spawn, nested errors, cancel, Python at every node and dynamic spawn
#   (nursery), broker throughput, memory, latencies and the scaling series,
#   prints the table, writes DIR/results.{md,json}, DIR/scaling.dat and
#   docs/bench-scaling.png, and stops every daemon it started (also on
#   failure or Ctrl-C).
#   --quick: 1 repetition, fewer scaling sizes (a smoke run, not for the record).
#   --parts: run only some parts (the plot is drawn when "scaling" is one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
reps=3
out=$root/bench/results
build=$root/build
sizes=10,50,100,250,500,1000,1500,2000
parts=tree,nested,nursery,exec,cleaves,broker,breakdown,scaling
while [ $# -gt 0 ]; do
    case $1 in
    --quick) reps=1; sizes=10,100,500,1000 ;;
    --reps) reps=$2; shift ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --parts) parts=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# ---- what it needs ---------------------------------------------------------------
"$root/scripts/apt-need.sh" bench gcc cmake pkg-config gnuplot-nox libczmq-dev libzmq3-dev \
    libcjson-dev python3 python3-zmq

# ---- build -------------------------------------------------------------------------
echo "bench: building arbor in $build" >&2
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j2 >/dev/null
bin=$build/bin
# The bench programs: from CMake when the top-level adds bench/, else built here.
benchbin=$bin
stale=false
for p in floor_fork broker_bench worker_cost spawn_many ready_leaf; do
    if [ ! -x "$bin/$p" ] || [ "$root/bench/$p.c" -nt "$bin/$p" ]; then stale=true; fi
done
if $stale; then
    benchbin=$build/bench-bin
    mkdir -p "$benchbin"
    cflags="-O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE"
    zmq=$(pkg-config --cflags --libs libczmq libzmq libcjson)
    # shellcheck disable=SC2086
    gcc $cflags -o "$benchbin/floor_fork" "$root/bench/floor_fork.c"
    # shellcheck disable=SC2086
    gcc $cflags -o "$benchbin/broker_bench" "$root/bench/broker_bench.c" $zmq -lpthread
    # shellcheck disable=SC2086
    gcc $cflags -I"$root/worker" -I"$root/common" -o "$benchbin/worker_cost" \
        "$root/bench/worker_cost.c" "$build/worker/libarbor_worker.a" \
        "$build/common/libarbor_common.a" "$build/common/libarbor_base.a" $zmq -lm -lpthread
    # shellcheck disable=SC2086
    gcc $cflags -I"$root/worker" -o "$benchbin/spawn_many" "$root/bench/spawn_many.c" \
        "$build/worker/libarbor_worker.a"
    # shellcheck disable=SC2086
    gcc $cflags -I"$root/worker" -o "$benchbin/ready_leaf" "$root/bench/ready_leaf.c" \
        -L"$build/worker" -Wl,-rpath,"$build/worker" -larbor_worker
fi
# The Python module compiled once, as an installed package is: the nursery
# part's 63 interpreters load it, not recompile it each (whatever
# PYTHONDONTWRITEBYTECODE says); its floor uses the standard library only,
# which Debian ships compiled.
/usr/bin/python3 -m compileall -q "$root/python/arbor" >/dev/null

# ---- daemons, always stopped --------------------------------------------------------
tmp=$(mktemp -d /tmp/arbor-bench.XXXXXX)
pids=()
stop_all() {
    local rc=$?
    trap - EXIT INT TERM
    # The supervisor stops its trees first (bounded by --stop-deadline).
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        mkdir -p "$out/logs"
        for f in "$tmp"/*.log; do
            [ -s "$f" ] || continue
            cp "$f" "$out/logs/"
            echo "--- $f (last lines; kept in $out/logs)" >&2
            tail -n 5 "$f" >&2
        done
    fi
    rm -rf "$tmp"
    exit $rc
}
trap stop_all EXIT
trap 'exit 130' INT TERM

ep=ipc://$tmp/broker.sock
bench_ep=ipc://$tmp/bench-broker.sock
raw_ep=ipc://$tmp/raw.sock
export ARBOR_LOG_LEVEL=${ARBOR_LOG_LEVEL:-warn}
# As root the daemons get --allow-root: without it they warn loudly, and
# refuse when ARBOR_REFUSE_ROOT=1 (this is a throwaway benchmark on ipc
# endpoints in a private temp dir).
root_ok() {
    if [ "$(id -u)" -eq 0 ] && "$bin/$1" --help 2>&1 | grep -q -- --allow-root; then
        echo --allow-root
    fi
}
brk_root=$(root_ok arbor-broker)
sup_root=$(root_ok arbor-supervisor)
# shellcheck disable=SC2086
"$bin/arbor-broker" --bind "$ep" $brk_root 2>"$tmp/broker.log" & broker=$!; pids+=("$broker")
# shellcheck disable=SC2086
"$bin/arbor-supervisor" --broker "$ep" --name bench --stop-deadline 5000 $sup_root \
    2>"$tmp/supervisor.log" & sup=$!; pids+=("$sup")
# The routing test's broker: its per-peer flood guard (--max-rate, default
# 20000 messages a second per worker) would refuse most of a sender's 50000
# messages once routing is fast; a limit no sender reaches keeps the bucket
# checked on every message without refusing any.
# shellcheck disable=SC2086
"$bin/arbor-broker" --bind "$bench_ep" --max-rate 1000000000 $brk_root \
    2>"$tmp/bench-broker.log" & bench_broker=$!
pids+=("$bench_broker")
"$benchbin/broker_bench" forward --bind "$raw_ep" 2>"$tmp/forward.log" & pids+=("$!")
for _ in $(seq 100); do
    "$bin/arborctl" --broker "$ep" peers 2>/dev/null | grep -qw bench && break
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "bench: a daemon did not start" >&2; exit 1; }
    done
    sleep 0.1
done
"$bin/arborctl" --broker "$ep" peers 2>/dev/null | grep -qw bench ||
    { echo "bench: the supervisor did not register with the broker" >&2; exit 1; }

# ---- measure --------------------------------------------------------------------------
mkdir -p "$out"
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(nproc) CPUs, $model, $(free -g | awk '/^Mem:/{print $2}') GiB, kernel $(uname -r)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/machine.txt" >&2
/usr/bin/python3 "$root/bench/driver.py" --bin "$bin" \
    --floor-fork "$benchbin/floor_fork" --broker-bench "$benchbin/broker_bench" \
    --worker-cost "$benchbin/worker_cost" --spawn-many "$benchbin/spawn_many" \
    --ready-leaf "$benchbin/ready_leaf" --src "$root" \
    --broker "$ep" --bench-broker "$bench_ep" --raw "$raw_ep" --supervisor bench \
    --supervisor-pid "$sup" --broker-pid "$broker" --tmp "$tmp" --out "$out" \
    --reps "$reps" --sizes "$sizes" --parts "$parts" >"$tmp/table.md"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt" >&2
{ echo; cat "$out/machine.txt"; echo; cat "$tmp/table.md"; } | tee "$out/results.txt"

# ---- plot ------------------------------------------------------------------------------
case ,$parts, in *,scaling,*) ;; *) exit 0 ;; esac
png=$root/docs/bench-scaling.png
gnuplot <<EOF
set terminal pngcairo enhanced size 1200,520 font "DejaVu Sans,11"
set output "$png"
set multiplot layout 1,2 title "arbor vs its floor by tree size ({/*0.85 $(nproc) CPUs, $(date -u +%Y-%m-%d), medians of $reps; floor = fork + pipe byte, SIGKILL + reap})"
set grid
set xlabel "nodes in the tree"
set xrange [0:*]
set yrange [0:*]
set key top left box opaque
set title "time"
set ylabel "milliseconds"
plot "$out/scaling.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "arbor: spawn → all ready", \\
     "" using 1:3 with linespoints lw 2 pt 5 lc rgb "#d62728" title "arbor: cancel → complete report", \\
     "" using 1:4 with linespoints lw 1 dt 2 pt 6 lc rgb "#1f77b4" title "floor: fork → all running", \\
     "" using 1:5 with linespoints lw 1 dt 2 pt 4 lc rgb "#d62728" title "floor: SIGKILL + reap", \\
     1000 with lines lw 1 dt 3 lc rgb "#555555" title "1 s"
set title "arbor / floor"
set ylabel "ratio (log scale)"
set logscale y
set yrange [1:*]
plot "$out/scaling.dat" using 1:(\$4 > 0 ? \$2/\$4 : 1/0) with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "spawn ratio", \\
     "" using 1:(\$5 > 0 ? \$3/\$5 : 1/0) with linespoints lw 2 pt 5 lc rgb "#d62728" title "cancel ratio", \\
     3 with lines lw 1 dt 2 lc rgb "#1f77b4" title "spawn target 3x", \\
     4 with lines lw 1 dt 2 lc rgb "#d62728" title "cancel target 4x"
unset multiplot
EOF
echo "bench: results in $out/results.{txt,md,json}, plot in $png" >&2
