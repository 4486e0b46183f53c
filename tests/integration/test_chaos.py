"""Chaos: over many random trees, SIGKILL a random process (a worker, a
middle node, the fork-server, the supervisor, the broker) at a random
moment. After each run every node has exactly one terminal status (or the
supervisor is gone and its tree with it), and no process of the run
survives. ARBOR_CHAOS_RUNS sets the number of trees (default 200),
ARBOR_CHAOS_SEED the seed (printed, to replay a failure).

Some leaves are real programs that start processes of their own (setsid,
double fork, SIGTERM ignored): each carries ARBOR_TEST_MARK in its env,
and after every run no process with it may be alive (issue 13)."""

import json
import os
import random
import signal
import time

from harness import (SLOW, check, fork_server_of, main,
                     validate_report, walk)

TERMINAL = {"ok", "failed", "cancelled", "killed", "spawn_failed", "lost"}
RUNS = int(os.environ.get("ARBOR_CHAOS_RUNS", "200" if SLOW <= 1 else "40"))
SEED = int(os.environ.get("ARBOR_CHAOS_SEED", str(int(time.time()))))


MARK = "chaos-" + str(os.getpid())

# Programs whose descendants try to outlive their node (issue 13).
ESCAPERS = [
    "setsid sleep 30 & exec sleep 30",                              # a new session
    "sh -c 'trap \"\" TERM; exec sleep 30' & exec sleep 30",        # SIGTERM ignored
    "sh -c 'setsid sleep 30 &'; exec sleep 30",                     # double fork
    "setsid sh -c 'trap \"\" TERM; sleep 30' & sleep 0.$$; exit 3",  # fails, leaves one
]


def random_leaf(rng, name):
    kind = rng.choice(["sleep", "sleep", "sleep_ms", "fail", "exit", "crash", "hang_cleanup",
                       "hang_running", "exec", "escaper"])
    node = {"name": name, "grace_ms": 150, "kill_after_ms": 100}
    if kind == "sleep":
        node["run"] = "sleep"
    elif kind == "sleep_ms":
        node.update(run="sleep", ms=rng.randint(20, 300))
    elif kind == "fail":
        node.update(run="fail", after_ms=rng.randint(0, 300))
    elif kind == "exit":
        node.update(run="exit", code=rng.choice([0, 3]), after_ms=rng.randint(0, 300))
    elif kind == "crash":
        node.update(run="crash", after_ms=rng.randint(0, 300))
    elif kind == "hang_cleanup":
        node.update(run="hang", **{"in": "cleanup"})
    elif kind == "hang_running":
        node.update(run="hang", **{"in": "running"})
    elif kind == "escaper":
        node.update(run="exec", argv=["sh", "-c", rng.choice(ESCAPERS)],
                    env={"ARBOR_TEST_MARK": MARK})
    else:
        node.update(run="exec", argv=["sleep", "30"])
    return node


def marked_alive():
    """Live processes whose env holds ARBOR_TEST_MARK=MARK."""
    needle = ("ARBOR_TEST_MARK=" + MARK).encode()
    found = []
    for pid in marked_pids_any():
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            pass
    return found


def marked_pids_any():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                        yield int(entry)
            except (OSError, IndexError):
                pass


def random_tree(rng, depth, name="root"):
    if depth == 0:
        return random_leaf(rng, name)
    node = {"name": name, "grace_ms": 150, "kill_after_ms": 100,
            "strategy": rng.choice(["one_for_all", "one_for_all", "one_for_one", "rest_for_one"]),
            "children": [random_tree(rng, depth - 1 if rng.random() < 0.7 else 0, "n%d" % i)
                         for i in range(rng.randint(1, 3))]}
    if node["strategy"] != "one_for_all":
        node.update(max_restarts=1, within_ms=1000)
    return node


def test_chaos(run):
    rng = random.Random(SEED)
    print("chaos: %d runs, seed %d" % (RUNS, SEED), flush=True)
    broker = run.broker()
    sup = run.supervisor("sup1")
    kills = {}
    for i in range(RUNS):
        spec = random_tree(rng, rng.randint(1, 3))
        spec["timeout_ms"] = 3000
        r = run.ctl("spawn", "-", input=json.dumps(spec))
        check(r.returncode == 0, "run %d: spawn failed: %s" % (i, r.stderr))
        tree = r.stdout.strip()
        # A random moment (this picks when to strike; nothing waits on it).
        time.sleep(rng.uniform(0, 0.25))
        victim = rng.choice(["worker", "worker", "middle", "fork-server", "supervisor", "broker"])
        rep = run.report(tree)
        pid = None
        if victim in ("worker", "middle") and rep:
            nodes = [n for n in walk(rep["root"]) if n["pid"] and n["status"] == "running" and
                     (bool(n["children"]) == (victim == "middle"))]
            pid = rng.choice(nodes)["pid"] if nodes else None
        elif victim == "fork-server":
            pid = fork_server_of(sup.pid)
        elif victim == "supervisor":
            pid = sup.pid
        elif victim == "broker":
            pid = broker.pid
        if pid:
            kills[victim] = kills.get(victim, 0) + 1
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if victim == "supervisor" and pid:
            sup.expect_death = True
            sup.wait()
            run.procs.remove(sup)
            # Everything of its trees dies with it, within a second.
            left = run.survivors(1.0, besides={broker.pid})
            check(not left, "run %d (seed %d): survivors of the supervisor: %r" % (i, SEED, left))
            check(not marked_alive(), "run %d (seed %d): escaped the supervisor" % (i, SEED))
            sup = run.supervisor("sup1")
            continue
        if victim == "broker" and pid:
            broker.expect_death = True
            broker.wait()
            run.procs.remove(broker)
            broker = run.broker()
        run.ctl("cancel", tree)
        rep = run.wait_report(tree, lambda x: x["status"] != "running", "the end of the tree")
        validate_report(rep)
        paths = [n["path"] for n in walk(rep["root"])]
        check(len(paths) == len(set(paths)), "run %d: duplicate paths" % i)
        for n in walk(rep["root"]):
            check(n["status"] in TERMINAL, "run %d (seed %d): %s has status %s" % (i, SEED, n["path"], n["status"]))
            if n["status"] == "lost":
                check(victim == "fork-server", "run %d: %s lost without the fork-server dying" % (i, n["path"]))
        # No worker of this run is left: only the daemons remain.
        left = run.survivors(3.0, besides={broker.pid, sup.pid, fork_server_of(sup.pid)})
        check(not left, "run %d (seed %d, victim %s): survivors %r" % (i, SEED, victim, left))
        # And none of what the programs started (already covered by the
        # run's marker; this one is set by the spec, as a user would).
        escaped = marked_alive()
        check(not escaped, "run %d (seed %d, victim %s): escaped %r" % (i, SEED, victim, escaped))
    print("chaos: kills by victim: %r" % kills)
    check(sum(kills.values()) >= RUNS // 2, "too few kills happened: %r" % kills)


if __name__ == "__main__":
    main([test_chaos])
