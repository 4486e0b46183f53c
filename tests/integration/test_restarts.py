"""Restart strategies: one_for_one, rest_for_one, one_for_all with
max_restarts; restart intensity; the restart history in the report."""

import json
import os

from harness import by_path, check, main, walk

HANG_GUARD = 30


def started(run):
    run.broker()
    run.supervisor("sup1")


def restarts(node):
    return node["restarts"]


def test_one_for_one_restarts_only_the_failed_child(run):
    started(run)
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 2, "within_ms": 60000,
            "children": [{"name": "flaky", "run": "fail", "after_ms": 50},
                         {"name": "steady", "run": "sleep"}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    flaky, steady = nodes["root/flaky"], nodes["root/steady"]
    # Two restarts allowed: three incarnations, the third failure ends it.
    check(len(restarts(flaky)) == 2, "flaky history %r" % restarts(flaky))
    for h in restarts(flaky):
        check(h["status"] == "failed" and h["error"]["type"] == "Failure", "history %r" % h)
    pids = [h["pid"] for h in restarts(flaky)] + [flaky["pid"]]
    check(len(set(pids)) == 3, "each incarnation is a new process: %r" % pids)
    check(flaky["status"] == "failed", "flaky %s" % flaky["status"])
    check(restarts(steady) == [] and steady["status"] == "cancelled",
          "steady was touched: %s %r" % (steady["status"], restarts(steady)))
    root = report["root"]
    check(root["status"] == "failed" and "more than 2 restarts" in root["error"]["message"],
          "root %s %r" % (root["status"], root["error"]))
    check(code == 1, "exit %d" % code)


def test_rest_for_one_restarts_the_later_siblings(run):
    started(run)
    spec = {"name": "root", "strategy": "rest_for_one", "max_restarts": 1, "within_ms": 60000,
            "children": [{"name": "a", "run": "sleep"},
                         {"name": "b", "run": "fail", "after_ms": 80},
                         {"name": "c", "run": "sleep"}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(restarts(nodes["root/a"]) == [], "a restarted: %r" % restarts(nodes["root/a"]))
    check(len(restarts(nodes["root/b"])) == 1, "b history %r" % restarts(nodes["root/b"]))
    check(len(restarts(nodes["root/c"])) == 1, "c history %r" % restarts(nodes["root/c"]))
    check(restarts(nodes["root/c"])[0]["status"] == "cancelled", "c was stopped for the restart")
    # b's restart comes after c has stopped: ordering of rest_for_one.
    # Each incarnation keeps its own phases: c's first one is in its history.
    c_exit = [p["t_ms"] for p in restarts(nodes["root/c"])[0]["phases"] if p["phase"] == "exited"][0]
    b_spawns = [p["t_ms"] for p in nodes["root/b"]["phases"] if p["phase"] == "spawned"]
    check(len(b_spawns) == 1 and b_spawns[0] >= c_exit, "b respawned at %r, c exited at %r" % (b_spawns, c_exit))
    check(report["root"]["status"] == "failed" and code == 1, "root %s" % report["root"]["status"])


def test_one_for_all_with_restarts(run):
    started(run)
    spec = {"name": "root", "strategy": "one_for_all", "max_restarts": 1, "within_ms": 60000,
            "children": [{"name": "x", "run": "sleep"},
                         {"name": "y", "run": "crash", "after_ms": 60, "signal": "SIGABRT"}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(len(restarts(nodes["root/x"])) == 1 and len(restarts(nodes["root/y"])) == 1,
          "histories %r %r" % (restarts(nodes["root/x"]), restarts(nodes["root/y"])))
    check(restarts(nodes["root/y"])[0]["exit"]["signal"] == "SIGABRT", "%r" % restarts(nodes["root/y"]))
    check(code == 1, "exit %d" % code)


def test_restart_then_recover(run):
    """A child that fails twice, then succeeds: the tree ends ok."""
    started(run)
    counter = os.path.join(run.dir, "attempts")
    script = ('n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; '
              '[ $n -ge 3 ] && exit 0; echo "attempt $n failed" >&2; exit 7') % (counter, counter)
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 3, "within_ms": 60000,
            "children": [{"name": "job", "run": "exec", "argv": ["sh", "-c", script]}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    job = by_path(report)["root/job"]
    check(job["status"] == "ok", "job %s %r" % (job["status"], job["error"]))
    check([h["exit"]["code"] for h in restarts(job)] == [7, 7], "history %r" % restarts(job))
    check("attempt 2 failed" in restarts(job)[1]["error"]["stderr"], "stderr %r" % restarts(job)[1]["error"])
    check(code == 0 and report["status"] == "ok", "tree %s exit %d" % (report["status"], code))


def test_restart_subtree(run):
    """A restarted middle node comes back with its whole subtree."""
    started(run)
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 1, "within_ms": 60000,
            "children": [{"name": "mid", "children": [
                {"name": "leaf", "run": "sleep", "count": 2},
                {"name": "bad", "run": "fail", "after_ms": 60}]}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(len(restarts(nodes["root/mid"])) == 1, "mid %r" % restarts(nodes["root/mid"]))
    for p in ("root/mid/leaf-0", "root/mid/leaf-1", "root/mid/bad"):
        check(len(restarts(nodes[p])) == 1, "%s history %r" % (p, restarts(nodes[p])))
    for n in walk(report["root"]):
        check(n["status"] in ("failed", "cancelled"), "%s %s" % (n["path"], n["status"]))


def test_restart_then_cancel_is_cancelled(run):
    """Each incarnation starts clean: a node restarted after a failure, then
    cancelled, is cancelled (not failed with its predecessor's error), and
    each entry of its history has its own phases, exit, error and stderr."""
    started(run)
    counter = os.path.join(run.dir, "attempts")
    script = ('n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; '
              'echo "incarnation $n" >&2; [ $n -ge 2 ] && exec sleep 1000; exit 3') % (counter, counter)
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 3, "within_ms": 60000,
            "children": [{"name": "job", "run": "exec", "argv": ["sh", "-c", script],
                          "env": {"ARBOR_TEST_RUN": run.marker}}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    run.wait_report(tree, lambda rep: len(restarts(by_path(rep)["root/job"])) == 1 and
                    by_path(rep)["root/job"]["status"] == "running", "the restart")
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode == 4, "cancel --wait exit %d: %s" % (r.returncode, r.stderr))
    report = json.loads(r.stdout)
    job = by_path(report)["root/job"]
    check(job["status"] == "cancelled" and job["error"] is None,
          "after a restart, a cancel gives cancelled: %s %r" % (job["status"], job["error"]))
    check(report["root"]["status"] == "cancelled", "root %s" % report["root"]["status"])
    old = restarts(job)[0]
    check(old["incarnation"] == 0 and old["exit"]["code"] == 3 and old["status"] == "failed",
          "history %r" % old)
    check(old["error"]["type"] == "NonZeroExit", "history error %r" % old["error"])
    check("incarnation 1" in old["stderr"] and "incarnation 2" not in old["stderr"],
          "its own stderr: %r" % old["stderr"])
    check([p["phase"] for p in old["phases"]][-1] == "exited", "its own phases %r" % old["phases"])
    check([p["phase"] for p in job["phases"]][0] == "spawned" and
          job["phases"][0]["t_ms"] >= old["phases"][-1]["t_ms"],
          "the current phases are the new incarnation's only: %r" % job["phases"])


def test_temporary_children_collect_every_error(run):
    """temporary: a failure stops nobody; the parent fails at the end with
    every failed child named."""
    started(run)
    spec = {"name": "root", "children": [
        {"name": "bad", "run": "fail", "after_ms": 10, "count": 3, "restart": "temporary"},
        {"name": "slow", "run": "sleep", "ms": 300, "restart": "temporary"}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    for i in range(3):
        check(nodes["root/bad-%d" % i]["status"] == "failed", "bad-%d" % i)
        check(nodes["root/bad-%d" % i]["restart"] == "temporary", "restart type reported")
    check(nodes["root/slow"]["status"] == "ok", "slow was stopped: %s" % nodes["root/slow"]["status"])
    root = report["root"]
    check(root["status"] == "failed" and root["error"]["type"] == "ChildrenFailed" and
          root["error"]["failed_children"] == 3, "root %s %r" % (root["status"], root["error"]))
    check(code == 1, "exit %d" % code)


def test_permanent_child_restarts_when_it_ends_ok(run):
    started(run)
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 2, "within_ms": 60000,
            "children": [{"name": "loop", "run": "exit", "code": 0, "after_ms": 10,
                          "restart": "permanent"},
                         {"name": "once", "run": "exit", "code": 0, "after_ms": 10}]}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(len(restarts(nodes["root/loop"])) == 2, "loop %r" % restarts(nodes["root/loop"]))
    check(restarts(nodes["root/once"]) == [] and nodes["root/once"]["status"] == "ok",
          "a transient child that ended ok is not restarted")
    check(report["root"]["status"] == "failed" and
          "more than 2 restarts" in report["root"]["error"]["message"], "root %r" % report["root"]["error"])
    check(code == 1, "exit %d" % code)


def test_cancel_while_a_restart_waits(run):
    """A middle node dies by a signal (its children are still ending, so its
    restart waits for them); the tree is cancelled meanwhile: the restart is
    called off and the root still ends, within its deadlines."""
    import signal
    import time
    started(run)
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 3, "within_ms": 60000,
            "grace_ms": 500, "children": [{"name": "mid", "children": [
                {"name": "slow", "run": "hang", "in": "cleanup", "grace_ms": 1000, "kill_after_ms": 200}]}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    rep = run.wait_report(tree, lambda rep: all(n["status"] == "running" for n in walk(rep["root"])),
                          "every node running")
    os.kill(by_path(rep)["root/mid"]["pid"], signal.SIGKILL)
    run.wait_report(tree, lambda rep: by_path(rep)["root/mid"]["status"] == "failed", "mid failed")
    t0 = time.monotonic()
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode == 4, "cancel --wait: %d %s" % (r.returncode, r.stderr))
    rep = json.loads(r.stdout)
    check(rep["root"]["status"] == "cancelled", "root %s %r" % (rep["root"]["status"], rep["root"]["error"]))
    check(time.monotonic() - t0 < 10, "the cancel took %.1f s" % (time.monotonic() - t0))


def test_permanent_under_one_for_all_and_rest_for_one(run):
    """A permanent child that ends ok is restarted under every restarting
    strategy, with the siblings the strategy names; when restarts run out
    (no child failed) the parent fails with RestartLimit."""
    started(run)
    loop = {"name": "p", "run": "exit", "code": 0, "after_ms": 20, "restart": "permanent"}
    for strategy, restarted in (("one_for_all", {"a", "p", "c"}), ("rest_for_one", {"p", "c"})):
        spec = {"name": "root", "strategy": strategy, "max_restarts": 1, "within_ms": 60000,
                "children": [{"name": "a", "run": "sleep"}, loop, {"name": "c", "run": "sleep"}]}
        code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
        nodes = by_path(report)
        got = {n for n in ("a", "p", "c") if restarts(nodes["root/" + n])}
        check(got == restarted, "%s restarted %s, not %s" % (strategy, sorted(got), sorted(restarted)))
        check(len(restarts(nodes["root/p"])) == 1 and restarts(nodes["root/p"])[0]["status"] == "ok",
              "%s: p %r" % (strategy, restarts(nodes["root/p"])))
        for n in restarted - {"p"}:
            check(restarts(nodes["root/" + n])[0]["status"] == "cancelled",
                  "%s: %s was stopped for the restart: %r" % (strategy, n, restarts(nodes["root/" + n])))
        root = report["root"]
        check(root["status"] == "failed" and root["error"]["type"] == "RestartLimit",
              "%s: root %s %r" % (strategy, root["status"], root["error"]))
        check(code == 1, "%s: exit %d" % (strategy, code))


def test_temporary_under_one_for_one_and_rest_for_one(run):
    """A temporary child is never restarted and stops nobody, under the
    restarting strategies too: its siblings (before and after it) run to
    their end, and the parent fails at the end naming it."""
    started(run)
    for strategy in ("one_for_one", "rest_for_one"):
        spec = {"name": "root", "strategy": strategy, "children": [
            {"name": "a", "run": "sleep", "ms": 400},
            {"name": "t", "run": "fail", "after_ms": 10, "restart": "temporary"},
            {"name": "c", "run": "sleep", "ms": 400}]}
        code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
        nodes = by_path(report)
        t = nodes["root/t"]
        check(t["status"] == "failed" and restarts(t) == [], "%s: t %s %r" % (strategy, t["status"], restarts(t)))
        t_exit = t["phases"][-1]["t_ms"]
        for n in ("a", "c"):
            x = nodes["root/" + n]
            check(x["status"] == "ok" and restarts(x) == [], "%s: %s %s %r" % (strategy, n, x["status"], restarts(x)))
            check(x["phases"][-1]["t_ms"] > t_exit, "%s: %s ended before t failed" % (strategy, n))
        root = report["root"]
        check(root["status"] == "failed" and root["error"]["type"] == "ChildrenFailed" and
              root["error"]["failed"] == ["root/t"], "%s: root %s %r" % (strategy, root["status"], root["error"]))
        check(code == 1, "%s: exit %d" % (strategy, code))


if __name__ == "__main__":
    main([test_one_for_one_restarts_only_the_failed_child, test_rest_for_one_restarts_the_later_siblings,
          test_one_for_all_with_restarts, test_restart_then_recover, test_restart_subtree, test_restart_then_cancel_is_cancelled,
          test_temporary_children_collect_every_error, test_permanent_child_restarts_when_it_ends_ok,
          test_cancel_while_a_restart_waits, test_permanent_under_one_for_all_and_rest_for_one,
          test_temporary_under_one_for_one_and_rest_for_one])
