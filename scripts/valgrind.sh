#!/usr/bin/env bash
# Valgrind memcheck of arbor-broker and arbor-supervisor over a
# representative run: nested failing trees, a cancel by path and a whole
# cancel, status/list/peers/stats, a flood node and its logs, hang nodes
# (SIGTERM and SIGKILL escalation), a crash, exec nodes (one missing), bad specs and
# garbage frames, and a tree still running when the supervisor is stopped.
# Both daemons are stopped with SIGTERM. Fails unless every process that ran
# under valgrind reports 0 errors and 0 definitely/indirectly lost bytes.
#
# The supervisor's fork-server (arbor-forkserver, which it execs) is
# followed, and valgrind follows fork(), so its builtin workers are checked
# too; the programs exec nodes run (sleep, sh) and arborctl run natively.
#
# Usage: scripts/valgrind.sh     (build in build-vg: Debug, no sanitizers)
# Logs: build-vg/valgrind/PID.log, one per process; a summary is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${ARBOR_VG_BUILD:-build-vg}

# bootstrap.sh installs valgrind with everything else.
# The fork-server dynamic: the pidfd shim below is an LD_PRELOAD.
scripts/bootstrap.sh "$build" -DCMAKE_BUILD_TYPE=Debug -DARBOR_SANITIZE=OFF \
    -DARBOR_STATIC_FORKSERVER=OFF

logs=$root/$build/valgrind
wrap=$root/$build/valgrind-bin
rm -rf "$logs" "$wrap"
mkdir -p "$logs" "$wrap"
# Valgrind 3.19 (Debian 12) does not implement pidfd_open and
# pidfd_send_signal (ENOSYS: "unhandled syscall 434/424"), without which
# the fork-server starts no worker (rule 4). For this run only, a
# preloaded shim emulates the two calls: pidfd_open(PID) opens /proc/PID,
# pidfd_send_signal kill()s the pid that fd names. Everything else is the
# real code.
cat >"$wrap/pidfd_shim.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

long syscall(long nr, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == SYS_pidfd_open) {
        char path[32];
        snprintf(path, sizeof path, "/proc/%ld", a[0]);
        return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (nr == SYS_pidfd_send_signal) {
        char link[64], target[64];
        snprintf(link, sizeof link, "/proc/self/fd/%ld", a[0]);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 6)
            return -1;
        target[n] = 0; /* "/proc/PID" */
        return kill((pid_t) atol(target + 6), (int) a[1]);
    }
    static long (*real)(long, ...);
    if (!real)
        real = (long (*)(long, ...)) dlsym(RTLD_NEXT, "syscall");
    return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
EOF
cc -shared -fPIC -O2 -Wall -o "$wrap/pidfd_shim.so" "$wrap/pidfd_shim.c" -ldl

# The daemons run under valgrind through wrappers; the harness finds them
# through ARBOR_BIN like the real ones. arborctl and the example worker are
# not under test here: links to the real programs.
for prog in arbor-broker arbor-supervisor; do
    cat >"$wrap/$prog" <<EOF
#!/bin/sh
LD_PRELOAD=$wrap/pidfd_shim.so exec valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect \\
     --error-exitcode=99 --trace-children=yes --trace-children-skip='*sleep,*sh,/nonexistent/*' \\
     --num-callers=30 \\
     --log-file=$logs/%p.log "$root/$build/bin/$prog" "\$@"
EOF
    chmod +x "$wrap/$prog"
done
ln -s "$root/$build/bin/arborctl" "$root/$build/bin/arbor-example-worker" "$wrap/"

# The run itself: the integration harness, every wait scaled for valgrind.
run_rc=0
ARBOR_BIN=$wrap ARBOR_SRC=$root ARBOR_TEST_SLOW=${ARBOR_TEST_SLOW:-10} \
    /usr/bin/python3 - <<'PYTHON' || run_rc=$?
import json, os, signal, sys, time
sys.path.insert(0, os.path.join(os.environ["ARBOR_SRC"], "tests", "integration"))
import zmq
from harness import by_path, check, main, walk

HANG = 120


def fanout(depth):
    leaf = {"name": "errorer", "run": "fail", "count": 2,
            "error": {"type": "ValueError", "message": "leaf failed"}}
    node = leaf
    for _ in range(depth):
        node = {"name": "spawner", "count": 2, "children": [node]}
    return {"name": "root", "children": [node]}


def wait_status(run, tree, pred):
    deadline = time.monotonic() + HANG
    while True:
        r = run.ctl("status", tree, "--json")
        rep = json.loads(r.stdout) if r.stdout.strip() else None
        if rep and pred(rep):
            return rep
        check(time.monotonic() < deadline, "tree %s: condition not met" % tree)
        time.sleep(0.1)  # polling the report: a hang guard


def test_valgrind_run(run):
    broker = run.broker()
    sup = run.supervisor("vg1")
    # Nested failing trees.
    for depth in (1, 2):
        code, rep = run.spawn_wait(fanout(depth), timeout=HANG)
        check(code == 1 and rep["status"] == "failed", "fanout %d: %d" % (depth, code))
        check(all(n["status"] == "failed" for n in walk(rep["root"])), "fanout %d statuses" % depth)
    # Cancel a subtree by path, then the whole tree; status, list, peers, stats.
    r = run.ctl("spawn", "-", input=json.dumps({"name": "root", "children": [
        {"name": "a", "children": [{"name": "w", "run": "sleep", "count": 3}]},
        {"name": "b", "run": "sleep"}, {"name": "x", "run": "exec", "argv": ["sleep", "60"]}]}))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    wait_status(run, tree, lambda rep: all(n["status"] == "running" for n in walk(rep["root"])))
    r = run.ctl("cancel", tree + "/root/a", "--wait", "--json", timeout=HANG)
    check(r.returncode in (0, 4), "cancel by path: %d %s" % (r.returncode, r.stderr))
    for args in (("list", "--json"), ("peers", "--json"), ("stats",)):
        r = run.ctl(*args)
        check(r.returncode == 0, "%s: %d %s" % (args, r.returncode, r.stderr))
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG)
    check(r.returncode == 4, "cancel: %d %s" % (r.returncode, r.stderr))
    # A flood node (8 MiB on stdout and stderr, then it fails).
    code, rep = run.spawn_wait({"name": "root", "children": [
        {"name": "flood", "run": "flood", "bytes": 8 << 20}, {"name": "s", "run": "sleep"}]},
        timeout=HANG)
    check(code == 1 and by_path(rep)["root/flood"]["status"] == "failed", "flood: %d" % code)
    # Its output lines: every reply of "logs", in pages (arborctl logs).
    r = run.ctl("logs", rep["tree"], "--json", timeout=HANG)
    check(r.returncode == 0 and r.stdout.count("\n") == 1000, "logs: %d %s" % (r.returncode, r.stderr))
    # Hangs (SIGTERM, then SIGKILL needed), a crash, an exec node (cancel =
    # SIGTERM), all cancelled when "bad" fails after 2 s, once they run.
    code, rep = run.spawn_wait({"name": "root", "children": [
        {"name": "bad", "run": "fail", "after_ms": 2000},
        {"name": "stuck", "run": "hang", "in": "cleanup", "grace_ms": 500, "kill_after_ms": 500},
        {"name": "mule", "run": "hang", "in": "running", "grace_ms": 500, "kill_after_ms": 500},
        {"name": "segv", "run": "crash", "after_ms": 5000},
        {"name": "sh", "run": "exec", "argv": ["sh", "-c", "echo oops >&2; exec sleep 60"]}]},
        timeout=HANG)
    nodes = by_path(rep)
    check(code == 1 and nodes["root/bad"]["status"] == "failed" and
          nodes["root/stuck"]["status"] == "killed" and nodes["root/mule"]["status"] == "killed",
          "hang tree: %d %r" % (code, {p: n["status"] for p, n in nodes.items()}))
    check(all(n["status"] not in ("running", "pending") for n in walk(rep["root"])), "not ended")
    # A crash by itself.
    code, rep = run.spawn_wait({"name": "root", "children": [{"name": "segv", "run": "crash"}]},
                               timeout=HANG)
    check(code == 1 and by_path(rep)["root/segv"]["exit"]["signal"] == "SIGSEGV", "crash")
    code, rep = run.spawn_wait({"name": "root", "children": [
        {"name": "ghost", "run": "exec", "argv": ["/nonexistent/arbor-prog"]}]}, timeout=HANG)
    check(code == 1 and by_path(rep)["root/ghost"]["status"] == "spawn_failed", "ghost: %d" % code)
    # Restarts.
    code, rep = run.spawn_wait({"name": "root", "strategy": "one_for_one", "max_restarts": 2,
                                "within_ms": 60000, "children": [
                                    {"name": "flaky", "run": "fail", "after_ms": 50}]},
                               timeout=HANG)
    check(code == 1, "restarts: %d" % code)
    # Bad input: specs, unknown trees, garbage frames at the broker.
    r = run.ctl("spawn", "-", input='{"name": "bad name"}')
    check(r.returncode == 2, "bad spec: %d" % r.returncode)
    r = run.ctl("status", "no-such-tree")
    check(r.returncode != 0, "unknown tree")
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.IDENTITY, b"vg-garbage")
    s.setsockopt(zmq.LINGER, 0)
    s.connect(run.broker_ep)
    env = {"v": 1, "type": "status", "to": "vg1", "id": 1, "re": None, "body": {}}
    frames = [[b"not json"], [b"[1,2]"], [json.dumps(dict(env, type="nope")).encode()],
              [json.dumps(env).encode()], [b"{}", b"two"],
              [json.dumps({"v": 1, "type": "hello", "to": "broker", "id": 2, "re": None,
                           "body": {"role": "client", "incarnation": "g"}}).encode()],
              [json.dumps(dict(env, body={"tree": "nope"})).encode()],
              [json.dumps(dict(env, type="spawn", body={"spec": 3})).encode()],
              [json.dumps(dict(env, **{"from": "vg1"})).encode()],
              [json.dumps(dict(env, to="nobody")).encode()],
              [json.dumps({"v": 1, "type": "subscribe", "to": "broker", "id": 3, "re": None,
                           "body": {"topics": ["peers", "tree/"]}}).encode()]]
    for f in frames:
        s.send_multipart(f)
    got = 0
    while got < 10 and s.poll(int(30000)):
        s.recv_multipart()
        got += 1
    check(got >= 9, "garbage got %d replies" % got)
    s.close(0)
    ctx.term()
    # A tree still running when the supervisor stops: it cancels it.
    r = run.ctl("spawn", "-", input=json.dumps({"name": "root", "children": [
        {"name": "w", "run": "sleep", "count": 2}]}))
    check(r.returncode == 0, "last spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    wait_status(run, tree, lambda rep: all(n["status"] == "running" for n in walk(rep["root"])))
    for p in (sup, broker):  # SIGTERM; valgrind's leak check runs at exit
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=HANG)
        check(rc == 0, "%s exited %s under valgrind (99: memcheck found errors)" %
              (p.arbor_name, rc))


main([test_valgrind_run])
PYTHON

# Every process that ran under valgrind: what it was, its errors and leaks.
# A log's parent tells forks apart: the supervisor's child is its
# fork-server, the fork-server's children are workers.
echo "== valgrind: one line per process (logs in $logs) ==" >&2
declare -A parent_of cmd_of
for log in "$logs"/*.log; do
    pid=$(basename "$log" .log)
    parent_of[$pid]=$(sed -n 's/^==[0-9]*== Parent PID: //p' "$log" | head -1)
    cmd_of[$pid]=$(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -1)
done
bad=0
n=0
declare -A count
for log in "$logs"/*.log; do
    pid=$(basename "$log" .log)
    parent=${parent_of[$pid]}
    cmd=${cmd_of[$pid]}
    if [[ "$cmd" == *--help* ]]; then
        role="$(basename "${cmd%% *}") --help"
    elif [ -n "${parent_of[$parent]:-}" ]; then
        if [ -n "${parent_of[${parent_of[$parent]}]:-}" ]; then role=worker; else role=fork-server; fi
    else
        role=$(basename "${cmd%% *}")
    fi
    n=$((n + 1))
    count[$role]=$((${count[$role]:-0} + 1))
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
    definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -1 | tr -d ,)
    indirect=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -1 | tr -d ,)
    if [ -z "$errors" ]; then
        # No summary: killed by a signal (a worker arbor killed), nothing to judge.
        printf '  %-7s %-22s killed by a signal: no summary\n' "$pid" "$role" >&2
        continue
    fi
    printf '  %-7s %-22s errors %s, definitely lost %s, indirectly lost %s bytes\n' \
        "$pid" "$role" "$errors" "${definite:-0}" "${indirect:-0}" >&2
    if [ "$errors" != 0 ] || [ "${definite:-0}" != 0 ] || [ "${indirect:-0}" != 0 ]; then
        bad=1
        grep -E -B2 -A25 'Invalid|uninitialised|definitely lost in|indirectly lost in|Mismatched|overlap' \
            "$log" | head -80 >&2 || true
    fi
done
summary=""
for role in "${!count[@]}"; do summary+="${summary:+, }${count[$role]} $role"; done
if [ "$n" -lt 2 ]; then
    echo "valgrind: no logs: the daemons did not run under valgrind" >&2
    exit 1
fi
if [ "$run_rc" -ne 0 ]; then
    echo "valgrind: the run failed (a daemon exiting 99 is memcheck's verdict)" >&2
    exit 1
fi
if [ "$bad" -ne 0 ]; then
    echo "valgrind: errors or leaks found (see above)" >&2
    exit 1
fi
echo "valgrind: $n processes ($summary): 0 errors, 0 definitely or indirectly lost bytes" >&2
