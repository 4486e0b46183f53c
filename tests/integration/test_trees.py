"""Core integration tests: real broker, supervisor, fork-server and workers.

Every test spawns a tree through arborctl and checks the report (the
contract of schema/report.json) and that no process of the run survives it."""

import json
import os
import signal
import time

from harness import BIN, by_path, check, children_of, main, walk, TestFailure

HANG_GUARD = 30  # seconds: a hang guard, not a speed check (bench/ measures speed)


def fanout(depth, breadth=2, leaf=None):
    leaf = leaf or {"name": "errorer", "run": "fail", "count": breadth,
                    "error": {"type": "ValueError", "message": "leaf failed"}}

    def level(d):
        if d == 0:
            return dict(leaf)
        return {"name": "spawner", "count": breadth, "children": [level(d - 1)]}

    return {"name": "root", "children": [level(depth)] if depth else [leaf]}


def started(run):
    run.broker()
    run.supervisor("sup1")


def check_fanout(run, depth):
    started(run)
    t0 = time.monotonic()
    code, report = run.spawn_wait(fanout(depth), timeout=HANG_GUARD)
    check(time.monotonic() - t0 < HANG_GUARD, "took too long")
    check(code == 1, "exit code %d, expected 1 (tree failed)" % code)
    check(report["status"] == "failed", "tree status %s" % report["status"])
    nodes = list(walk(report["root"]))
    leaves = [n for n in nodes if not n["children"]]
    check(len(leaves) == 2 ** (depth + 1), "expected %d leaves, got %d" % (2 ** (depth + 1), len(leaves)))
    # one_for_all: a sibling whose failure came first cancels the leaves not
    # yet forked (no pid: they never ran); every leaf that ran failed.
    ran = [leaf for leaf in leaves if leaf["pid"] is not None]
    for leaf in leaves:
        if leaf not in ran:
            check(leaf["status"] == "cancelled", "%s never ran but is %s" % (leaf["path"], leaf["status"]))
            continue
        check(leaf["status"] == "failed", "%s is %s, not failed" % (leaf["path"], leaf["status"]))
        e = leaf["error"]
        check(e and e["type"] == "ValueError" and e["message"] == "leaf failed",
              "%s lost its original error: %r" % (leaf["path"], e))
        check(leaf["exit"]["code"] == 1, "%s exit %r" % (leaf["path"], leaf["exit"]))
    if len(ran) < len(leaves):
        print("  %d of %d leaves were cancelled before they were forked" % (len(leaves) - len(ran),
                                                                            len(leaves)), flush=True)
    text = json.dumps(report)
    check(text.count('"ValueError"') == len(ran), "a leaf error appears more than once")
    for n in nodes:
        check(n["status"] not in ("running", "pending"), "%s not terminal" % n["path"])
        if n not in leaves or n in ran:
            check(n["status"] != "cancelled", "%s failed but is marked cancelled" % n["path"])
            check(n["phases"] and n["phases"][-1]["phase"] == "exited", "%s phases %r" % (n["path"], n["phases"]))
        if n["children"]:
            failed = [c for c in n["children"] if c["status"] == "failed"]
            check(failed, "%s: no child failed" % n["path"])
            check(n["error"]["type"] == "ChildrenFailed", "%s error %r" % (n["path"], n["error"]))
            check(n["error"]["failed_children"] == len(failed), "%s count" % n["path"])
        check(n["path"].endswith(n["name"]), "path %s" % n["path"])


def test_fanout_depth1(run):
    check_fanout(run, 1)


def test_fanout_depth3(run):
    check_fanout(run, 3)


def test_demo_rendering(run):
    """The human rendering names every failed node with its error."""
    started(run)
    r = run.ctl("spawn", "--wait", "-", input=json.dumps(fanout(1)), timeout=HANG_GUARD)
    check(r.returncode == 1, "exit %d: %s" % (r.returncode, r.stderr))
    for word in ("root", "spawner-0", "errorer-1", "ValueError", "ChildrenFailed", "failed"):
        check(word in r.stdout, "%r missing from:\n%s" % (word, r.stdout))


def test_ok_tree(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "s", "run": "sleep", "ms": 50, "count": 3},
                                         {"name": "z", "run": "exit", "code": 0}]}
    code, report = run.spawn_wait(spec)
    check(code == 0 and report["status"] == "ok", "exit %d status %s" % (code, report["status"]))
    for n in walk(report["root"]):
        check(n["status"] == "ok" and n["error"] is None, "%s: %s %r" % (n["path"], n["status"], n["error"]))
        phases = [p["phase"] for p in n["phases"]]
        check(phases[:3] == ["spawned", "ready", "running"] and phases[-3:] == ["cleanup", "exiting", "exited"],
              "%s phases %s" % (n["path"], phases))


def test_supervise_without_children_ends_ok(run):
    """A supervise node with no children (the root, or an inner node) has
    nothing to hold: it ends ok at once instead of running forever."""
    started(run)
    code, report = run.spawn_wait({"name": "lonely"}, timeout=HANG_GUARD)
    check(code == 0 and report["root"]["status"] == "ok", "root alone: %d %r" % (code, report["root"]))
    code, report = run.spawn_wait({"name": "root", "children": [{"name": "empty"},
                                                                {"name": "s", "run": "sleep", "ms": 10}]},
                                  timeout=HANG_GUARD)
    nodes = by_path(report)
    check(nodes["root/empty"]["status"] == "ok" and code == 0,
          "inner: %d %s" % (code, nodes["root/empty"]["status"]))


def test_many_children_fail_while_spawning(run):
    started(run)
    spec = {"name": "root", "children": [
        {"name": "fast", "run": "fail", "count": 25},
        {"name": "slow", "run": "sleep", "count": 25}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    check(code == 1, "exit %d" % code)
    nodes = by_path(report)
    for i in range(25):
        f = nodes["root/fast-%d" % i]
        check(f["status"] == "failed" and f["error"]["type"] == "Failure", "fast-%d: %s %r" % (i, f["status"], f["error"]))
        s = nodes["root/slow-%d" % i]
        check(s["status"] == "cancelled", "slow-%d is %s" % (i, s["status"]))
    check(report["root"]["error"]["failed_children"] == 25, "root error %r" % report["root"]["error"])


def test_grandchild_hangs_in_cleanup(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "parent", "children": [
        {"name": "stuck", "run": "hang", "in": "cleanup", "grace_ms": 200, "kill_after_ms": 200},
        {"name": "bad", "run": "fail", "after_ms": 100}]}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    stuck = nodes["root/parent/stuck"]
    check(stuck["status"] == "killed", "stuck is %s" % stuck["status"])
    check(stuck["escalation"]["stuck_phase"] == "cleanup", "escalation %r" % stuck["escalation"])
    # hang in cleanup ignores SIGTERM too: only SIGKILL ends it.
    check(stuck["escalation"]["signals"] == ["SIGTERM", "SIGKILL"], "signals %r" % stuck["escalation"]["signals"])
    check(stuck["exit"]["signal"] == "SIGKILL", "exit %r" % stuck["exit"])
    check(nodes["root/parent/bad"]["status"] == "failed", "bad not failed")
    check(nodes["root/parent"]["status"] == "failed", "parent %s" % nodes["root/parent"]["status"])
    check(code == 1 and report["status"] == "failed", "tree %s" % report["status"])


def test_hang_in_running_needs_sigkill(run):
    started(run)
    spec = {"name": "root", "children": [
        {"name": "mule", "run": "hang", "in": "running", "grace_ms": 100, "kill_after_ms": 100}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    # Cancelled once it runs (a timeout could fire before it is even forked
    # on a loaded machine, and a node never started is simply cancelled).
    run.wait_report(tree, lambda rep: any(p["phase"] == "running" for p in by_path(rep)["root/mule"]["phases"]),
                    "the mule running", timeout=HANG_GUARD)
    r = run.ctl("cancel", "--wait", "--json", tree, timeout=HANG_GUARD)
    code, report = r.returncode, json.loads(r.stdout)
    mule = by_path(report)["root/mule"]
    check(mule["status"] == "killed", "mule is %s" % mule["status"])
    check(mule["escalation"]["signals"] == ["SIGTERM", "SIGKILL"], "%r" % mule["escalation"])
    check(mule["escalation"]["stuck_phase"] == "running", "%r" % mule["escalation"])
    check(mule["exit"]["signal"] == "SIGKILL", "%r" % mule["exit"])
    check(report["status"] == "cancelled", "tree %s" % report["status"])
    check(code == 4, "exit %d" % code)


def test_crash_by_signal(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "boom", "run": "crash", "signal": "SIGABRT"},
                                         {"name": "bystander", "run": "sleep"}]}
    code, report = run.spawn_wait(spec)
    nodes = by_path(report)
    boom = nodes["root/boom"]
    check(boom["status"] == "failed" and boom["exit"]["signal"] == "SIGABRT", "%r" % boom)
    check(boom["error"]["type"] == "KilledBySignal", "%r" % boom["error"])
    check(nodes["root/bystander"]["status"] == "cancelled", "bystander %s" % nodes["root/bystander"]["status"])
    check(code == 1, "exit %d" % code)


def test_exec_missing_program(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "ghost", "run": "exec", "argv": ["/nonexistent/arbor-prog"]}]}
    code, report = run.spawn_wait(spec)
    ghost = by_path(report)["root/ghost"]
    check(ghost["status"] == "spawn_failed", "ghost %s" % ghost["status"])
    check("No such file" in ghost["error"]["message"] and "/nonexistent/arbor-prog" in ghost["error"]["message"],
          "%r" % ghost["error"])
    check(ghost["pid"] is None, "pid %r" % ghost["pid"])
    check(code == 1, "exit %d" % code)


def test_exec_env_and_stderr_tail(run):
    started(run)
    script = 'echo "node=$ARBOR_NODE tree=$ARBOR_TREE" >&2; echo "$ARBOR_BROKER" >&2; exit 3'
    spec = {"name": "root", "children": [{"name": "shell", "run": "exec", "argv": ["sh", "-c", script],
                                          "env": {"EXTRA": "1"}}]}
    code, report = run.spawn_wait(spec)
    sh = by_path(report)["root/shell"]
    check(sh["status"] == "failed" and sh["exit"]["code"] == 3, "%r" % sh)
    tail = sh["error"]["stderr"]
    check("node=root/shell tree=%s" % report["tree"] in tail and run.broker_ep in tail, "stderr %r" % tail)


def test_exec_worker_library(run):
    started(run)
    prog = os.path.join(BIN, "arbor-example-worker")
    spec = {"name": "root", "children": [{"name": "lib", "run": "exec", "argv": [prog, "50", "fail"]},
                                         {"name": "longer", "run": "exec", "argv": [prog]}]}
    code, report = run.spawn_wait(spec)
    nodes = by_path(report)
    lib = nodes["root/lib"]
    check(lib["status"] == "failed" and lib["error"]["type"] == "ExampleFailure", "%r" % lib)
    phases = [p["phase"] for p in lib["phases"]]
    check("ready" in phases and "cleanup" in phases, "phases %s" % phases)
    longer = nodes["root/longer"]
    check(longer["status"] == "cancelled", "longer %s %r" % (longer["status"], longer["error"]))


def test_flood_during_teardown(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "flood", "run": "flood", "bytes": 8 << 20},
                                         {"name": "peer", "run": "sleep"}]}
    t0 = time.monotonic()
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    check(time.monotonic() - t0 < HANG_GUARD, "flood hung")
    f = by_path(report)["root/flood"]
    check(f["status"] == "failed" and f["error"]["type"] == "FloodFailure", "%r" % f["error"])
    check(len(f["error"]["stderr"]) <= 4096, "stderr tail is not bounded")


def test_cancel_subtree_by_path(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "a", "children": [{"name": "w", "run": "sleep", "count": 3}]},
                                         {"name": "b", "run": "sleep"}]}
    tree = "t%d" % os.getpid()
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    r = run.ctl("cancel", tree + "/root/a", "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode in (0, 4), "cancel exit %d: %s" % (r.returncode, r.stderr))
    # The subtree is cancelled; b is still running.
    deadline = time.monotonic() + HANG_GUARD
    while True:
        r = run.ctl("status", tree, "--json")
        report = json.loads(r.stdout)
        nodes = by_path(report)
        if all(nodes[p]["status"] == "cancelled" for p in ("root/a", "root/a/w-0", "root/a/w-1", "root/a/w-2")):
            break
        check(time.monotonic() < deadline, "subtree not cancelled: %r" % {p: n["status"] for p, n in nodes.items()})
        time.sleep(0.05)  # polling the report: status has no wait-for-node mode
    check(nodes["root/b"]["status"] == "running" and nodes["root"]["status"] == "running",
          "rest of the tree should run: %r" % {p: n["status"] for p, n in nodes.items()})
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode == 4, "whole cancel exit %d %s" % (r.returncode, r.stderr))
    report = json.loads(r.stdout)
    check(report["status"] == "cancelled", "status %s" % report["status"])


def test_invalid_spec_spawns_nothing(run):
    started(run)
    bad = [("{not json", "JSON"),
           (json.dumps({"name": "root", "run": "explode"}), "run"),
           (json.dumps({"name": "root", "children": [{"name": "a"}, {"name": "a"}]}), "two siblings"),
           (json.dumps({"name": "bad name!"}), "name"),
           (json.dumps({"name": "root", "children": [{"name": "x", "run": "sleep", "ms": -1}]}), "root/x"),
           (json.dumps({"name": "root", "children": [{"name": "x", "count": 20000}]}), "limit")]
    for text, word in bad:
        r = run.ctl("spawn", "-", input=text)
        check(r.returncode == 2, "exit %d for %s" % (r.returncode, text))
        check(word.lower() in r.stderr.lower(), "%r not in %r" % (word, r.stderr))
    r = run.ctl("list", "--json")
    check(r.returncode == 0, "list: %s" % r.stderr)


def test_sigkill_middle_node(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "mid", "children": [{"name": "leaf", "run": "sleep", "count": 3}]},
                                         {"name": "other", "run": "sleep"}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    tree = r.stdout.strip()
    pid = wait_for_pid(run, tree, "root/mid/leaf-2")
    mid = by_path(json.loads(run.ctl("status", tree, "--json").stdout))["root/mid"]["pid"]
    os.kill(mid, signal.SIGKILL)
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)  # ends whatever is left
    report = json.loads(r.stdout)
    nodes = by_path(report)
    check(nodes["root/mid"]["status"] == "failed" and nodes["root/mid"]["exit"]["signal"] == "SIGKILL",
          "mid %r" % nodes["root/mid"])
    for i in range(3):
        check(nodes["root/mid/leaf-%d" % i]["status"] == "cancelled", "leaf-%d %s" % (i, nodes["root/mid/leaf-%d" % i]["status"]))
    check(report["status"] == "failed", "tree %s" % report["status"])
    check(not os.path.exists("/proc/%d/stat" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z",
          "leaf survived")


def wait_for_pid(run, tree, path, timeout=HANG_GUARD):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = run.ctl("status", tree, "--json")
        if r.returncode in (0, 1, 4) and r.stdout.strip():
            node = by_path(json.loads(r.stdout)).get(path)
            if node and node["pid"] and any(p["phase"] == "running" for p in node["phases"]):
                return node["pid"]
        time.sleep(0.05)  # polling the report until the node runs
    raise TestFailure("%s never ran" % path)


def test_sigkill_supervisor_leaves_no_orphans(run):
    run.broker()
    sup = run.supervisor("sup1")
    spec = fanout(2, leaf={"name": "sleeper", "run": "sleep", "count": 2})
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    tree = r.stdout.strip()
    wait_for_pid(run, tree, "root/spawner-1/spawner-1/sleeper-1")
    workers = [p for p in __import__("harness").marked_pids(run.marker) if p != sup.pid]
    check(len(workers) >= 8, "expected the workers to run: %r" % workers)
    sup.expect_death = True
    sup.kill()
    sup.wait()
    left = run.survivors(timeout=1.0)
    left = [p for p in left if p != run.procs[0].pid]  # the broker keeps running
    check(not left, "processes survived the supervisor by 1 s: %r" % left)


def test_timeout_cancels_tree(run):
    started(run)
    spec = {"name": "root", "timeout_ms": 300, "children": [{"name": "s", "run": "sleep", "count": 4}]}
    code, report = run.spawn_wait(spec)
    check(code == 4 and report["status"] == "cancelled", "exit %d %s" % (code, report["status"]))
    check(report["reason"] == "timeout", "reason %r" % report.get("reason"))
    check(report["duration_ms"] >= 300, "ended before its timeout: %d" % report["duration_ms"])


def test_broker_death_mid_teardown(run):
    """Statuses come from exits: with the broker gone the report is complete."""
    broker = run.broker()
    run.supervisor("sup1")
    spec = {"name": "root", "children": [{"name": "s", "run": "sleep", "count": 3, "grace_ms": 300}]}
    tree = run.ctl("spawn", "-", input=json.dumps(spec)).stdout.strip()
    wait_for_pid(run, tree, "root/s-2")
    run.ctl("cancel", tree)
    broker.expect_death = True
    broker.kill()
    broker.wait()
    # A new broker on the same endpoint: the supervisor registers again.
    run.procs.remove(broker)
    run.broker()
    deadline = time.monotonic() + HANG_GUARD
    while True:
        r = run.ctl("status", tree, "--json", timeout=10)
        if r.returncode in (1, 4) and r.stdout.strip():
            break
        check(time.monotonic() < deadline, "tree never ended: %d %s" % (r.returncode, r.stderr))
        time.sleep(0.1)  # polling until the supervisor is back on the new broker
    report = json.loads(r.stdout)
    for n in walk(report["root"]):
        check(n["status"] in ("cancelled", "killed"), "%s %s" % (n["path"], n["status"]))


def test_error_survives_broker_loss(run):
    """An error reported while the broker is away still reaches the report:
    a builtin's over its link, a program's (libarbor_worker) through its
    stderr, which the supervisor always drains. Two trees, so that neither
    failure cancels the other."""
    broker = run.broker()
    sup = run.supervisor("sup1")
    builtin = {"name": "root", "children": [
        {"name": "late", "run": "fail", "after_ms": 600,
         "error": {"type": "LateError", "message": "failed while the broker was down"}},
        {"name": "s", "run": "sleep", "grace_ms": 200}]}
    program = {"name": "root", "children": [
        {"name": "program", "run": "exec", "argv": [os.path.join(BIN, "arbor-example-worker"), "600", "fail"]}]}
    trees = {}
    for what, spec in (("builtin", builtin), ("program", program)):
        trees[what] = run.ctl("spawn", "-", input=json.dumps(spec)).stdout.strip()
    wait_for_pid(run, trees["builtin"], "root/late")
    wait_for_pid(run, trees["program"], "root/program")
    broker.expect_death = True
    broker.kill()
    broker.wait()
    run.procs.remove(broker)
    # The failures happen now, with no broker; then a broker comes back.
    for tree in trees.values():
        run.wait_log(sup, "tree %s finished" % tree, timeout=HANG_GUARD)
    run.broker()
    reports = {}
    for what, tree in trees.items():
        deadline = time.monotonic() + HANG_GUARD
        while True:
            r = run.ctl("status", tree, "--json", timeout=10)
            if r.returncode == 1 and r.stdout.strip():
                break
            check(time.monotonic() < deadline, "no report: %d %s" % (r.returncode, r.stderr))
            time.sleep(0.1)  # polling until the supervisor is back on the new broker
        reports[what] = by_path(json.loads(r.stdout))
    late = reports["builtin"]["root/late"]
    check(late["error"]["type"] == "LateError", "error lost: %r" % late["error"])
    prog = reports["program"]["root/program"]
    check(prog["error"] and prog["error"]["type"] == "ExampleFailure",
          "the program's error lost: %r" % prog["error"])


def test_sigkill_fork_server(run):
    """Its workers die with it (PDEATHSIG); the supervisor reports them lost,
    starts a new fork-server and keeps serving."""
    run.broker()
    sup = run.supervisor("sup1")
    spec = {"name": "root", "children": [{"name": "s", "run": "sleep", "count": 3}]}
    tree = run.ctl("spawn", "-", input=json.dumps(spec)).stdout.strip()
    wait_for_pid(run, tree, "root/s-2")
    fsrv = [p for p in children_of(sup.pid)]
    check(len(fsrv) == 1, "expected one fork-server child, got %r" % fsrv)
    os.kill(fsrv[0], signal.SIGKILL)
    run.wait_log(sup, "started a new fork-server", timeout=HANG_GUARD)
    report = json.loads(run.ctl("status", tree, "--json").stdout)
    check(report["status"] == "lost", "tree %s" % report["status"])
    for n in walk(report["root"]):
        check(n["status"] == "lost" and n["error"]["type"] == "Lost", "%s %s" % (n["path"], n["status"]))
    left = [p for p in run.survivors(timeout=1.0) if p not in (sup.pid, run.procs[0].pid) and p not in children_of(sup.pid)]
    check(not left, "workers survived their fork-server: %r" % left)
    code, report = run.spawn_wait({"name": "again", "children": [{"name": "x", "run": "exit"}]})
    check(code == 0 and report["status"] == "ok", "new tree after restart: %d %s" % (code, report["status"]))


if __name__ == "__main__":
    main([test_supervise_without_children_ends_ok, test_fanout_depth1, test_fanout_depth3, test_demo_rendering, test_ok_tree,
          test_many_children_fail_while_spawning, test_grandchild_hangs_in_cleanup,
          test_hang_in_running_needs_sigkill, test_crash_by_signal, test_exec_missing_program,
          test_exec_env_and_stderr_tail, test_exec_worker_library, test_flood_during_teardown,
          test_cancel_subtree_by_path, test_invalid_spec_spawns_nothing, test_sigkill_middle_node,
          test_sigkill_supervisor_leaves_no_orphans, test_timeout_cancels_tree,
          test_broker_death_mid_teardown, test_error_survives_broker_loss, test_sigkill_fork_server])
