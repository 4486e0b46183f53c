"""Trees that span supervisors: a node with "on": NAME runs its subtree on
that supervisor; cancellation and errors cross the broker, the report is one
tree, and the loss of the other supervisor marks the subtree lost."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import harness

from harness import SLOW, SRC, by_path, check, main, walk

HANG_GUARD = 40
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PYPATH = os.path.join(SRC, "python")


def python_node(run, name, script, **extra):
    """An exec'd Python worker with the arbor module on its path."""
    node = {"name": name, "run": "exec", "argv": [PY, "-c", textwrap.dedent(script)],
            "env": {"PYTHONPATH": PYPATH, "ARBOR_TEST_RUN": run.marker}}
    node.update(extra)
    return node


def two(run):
    run.broker()
    a = run.supervisor("home")
    b = run.supervisor("away")
    return a, b


def test_remote_failure_is_one_report(run):
    two(run)
    spec = {"name": "root", "children": [
        {"name": "local", "run": "sleep"},
        {"name": "far", "on": "away", "children": [
            {"name": "w", "run": "sleep", "count": 2},
            {"name": "bad", "run": "fail", "after_ms": 100,
             "error": {"type": "RemoteError", "message": "failed on the other host"}}]}]}
    code, report = run.spawn_wait(spec, "--supervisor", "home", timeout=HANG_GUARD)
    nodes = by_path(report)
    check(report["supervisor"] == "home", "report from %s" % report["supervisor"])
    check(nodes["root/far"].get("supervisor") == "away" and "supervisor" not in nodes["root/local"],
          "the placed node names the supervisor that ran it: %r" % nodes["root/far"].get("supervisor"))
    bad = nodes["root/far/bad"]
    check(bad["status"] == "failed" and bad["error"]["type"] == "RemoteError", "bad %r" % bad)
    check(nodes["root/far"]["status"] == "failed" and nodes["root/far"]["error"]["type"] == "ChildrenFailed",
          "far %r" % nodes["root/far"]["error"])
    for i in range(2):
        check(nodes["root/far/w-%d" % i]["status"] == "cancelled", "w-%d" % i)
    check(nodes["root/local"]["status"] == "cancelled", "local %s" % nodes["root/local"]["status"])
    check(code == 1 and report["root"]["error"]["type"] == "ChildrenFailed", "root %r" % report["root"]["error"])
    # The remote nodes ran as processes of the other supervisor, with phases.
    phases = [p["phase"] for p in bad["phases"]]
    check(bad["pid"] and "running" in phases and phases[-1] == "exited", "bad phases %s" % phases)


def test_cancel_crosses_supervisors(run):
    two(run)
    spec = {"name": "root", "children": [
        {"name": "far", "on": "away", "children": [{"name": "w", "run": "sleep", "count": 3}]}]}
    r = run.ctl("spawn", "--supervisor", "home", "-", input=json.dumps(spec))
    tree = r.stdout.strip()
    run.wait_report(tree, lambda r: by_path(r)["root/far/w-2"]["status"] == "running",
                    "the remote subtree running", timeout=HANG_GUARD)
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    report = json.loads(r.stdout)
    check(r.returncode == 4 and report["status"] == "cancelled", "cancel: %d %s" % (r.returncode, report["status"]))
    for n in walk(report["root"]):
        check(n["status"] == "cancelled", "%s %s" % (n["path"], n["status"]))


def test_loss_of_the_other_supervisor(run):
    _, away = two(run)
    spec = {"name": "root", "children": [
        {"name": "stay", "run": "sleep"},
        {"name": "far", "on": "away", "children": [{"name": "w", "run": "sleep"}]}]}
    r = run.ctl("spawn", "--supervisor", "home", "-", input=json.dumps(spec))
    tree = r.stdout.strip()
    run.wait_report(tree, lambda r: by_path(r)["root/far/w"]["status"] == "running",
                    "the remote subtree running", timeout=HANG_GUARD)
    away.expect_death = True
    away.send_signal(signal.SIGKILL)
    away.wait()
    # The broker expires it (5 s), the home supervisor marks the subtree
    # lost and one_for_all stops the rest.
    r = run.ctl("spawn", "--supervisor", "home", "--wait", "--json", "-",
                input=json.dumps({"name": "probe", "run": "exit"}))
    deadline = time.monotonic() + HANG_GUARD
    while True:
        report = json.loads(run.ctl("status", tree, "--json").stdout)
        if report["status"] != "running":
            break
        check(time.monotonic() < deadline, "the tree never noticed the loss")
        time.sleep(0.1)  # polling the report until the broker expires the peer
    nodes = by_path(report)
    check(nodes["root/far"]["status"] == "lost" and "away" in nodes["root/far"]["error"]["message"],
          "far %r" % nodes["root/far"])
    check(nodes["root/far/w"]["status"] == "lost", "w %s" % nodes["root/far/w"]["status"])
    check(nodes["root/stay"]["status"] == "cancelled", "stay %s" % nodes["root/stay"]["status"])
    check(report["status"] == "failed", "tree %s" % report["status"])


def test_unknown_supervisor_is_spawn_failed(run):
    two(run)
    spec = {"name": "root", "children": [{"name": "far", "on": "nowhere", "children": [{"name": "w"}]}]}
    code, report = run.spawn_wait(spec, "--supervisor", "home", timeout=HANG_GUARD)
    far = by_path(report)["root/far"]
    check(far["status"] == "spawn_failed" and "nowhere" in far["error"]["message"], "far %r" % far)
    check(by_path(report)["root/far/w"]["status"] == "cancelled", "w never ran")
    check(code == 1, "exit %d" % code)


def test_placed_nodes_keep_their_restart_type(run):
    """"restart" is the home supervisor's business: the other supervisor runs
    the subtree as a tree of its own, whose root has no parent. Home decides:
    the transient one is restarted (placed again), the temporary one is not,
    and when restarts run out the parent fails."""
    two(run)
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 1, "within_ms": 60000,
            "children": [
                {"name": "again", "on": "away", "run": "fail", "after_ms": 10, "restart": "transient"},
                {"name": "once", "on": "away", "run": "fail", "after_ms": 10, "restart": "temporary"},
                {"name": "stay", "run": "sleep"}]}
    code, report = run.spawn_wait(spec, "--supervisor", "home", timeout=HANG_GUARD)
    nodes = by_path(report)
    again, once = nodes["root/again"], nodes["root/once"]
    check(again["status"] == "failed" and again["error"]["type"] == "Failure",
          "again %s %r" % (again["status"], again["error"]))
    check(len(again["restarts"]) == 1 and again["restarts"][0]["status"] == "failed",
          "again was restarted once, at home: %r" % again["restarts"])
    check(once["status"] == "failed" and once["restarts"] == [] and once["restart"] == "temporary",
          "once %s %r" % (once["status"], once["restarts"]))
    check(nodes["root/stay"]["status"] == "cancelled", "stay %s" % nodes["root/stay"]["status"])
    check(report["root"]["status"] == "failed" and "more than 1 restarts" in report["root"]["error"]["message"],
          "root %r" % report["root"]["error"])
    check(code == 1, "exit %d" % code)


def test_nursery_starts_a_placed_child(run):
    """arbor.nursery starts its children "temporary": one placed with "on"
    runs there and its error comes back to the nursery."""
    two(run)
    out = os.path.join(run.dir, "out.json")
    spec = python_node(run, "root", """
        import json, os, arbor
        got = {}
        with arbor.worker():
            try:
                with arbor.nursery() as n:
                    n.start({"name": "far", "on": "away", "run": "fail", "after_ms": 10,
                             "error": {"type": "ValueError", "message": "far away"}})
                    n.start({"name": "near", "run": "sleep", "ms": 10})
            except arbor.ChildrenFailed as g:
                got["group"] = sorted([e.path, e.type, e.message] for e in g.errors)
        with open(os.environ["OUT"], "w") as f:
            json.dump(got, f)
    """)
    spec["env"]["OUT"] = out
    code, report = run.spawn_wait(spec, "--supervisor", "home", timeout=HANG_GUARD)
    nodes = by_path(report)
    check(os.path.exists(out), "the worker wrote nothing: %r" % nodes["root"]["error"])
    with open(out) as f:
        got = json.load(f)
    check(got.get("group") == [["root/far", "ValueError", "far away"]], "group %r" % got)
    far = nodes["root/far"]
    check(far["status"] == "failed" and far.get("supervisor") == "away" and
          far["restart"] == "temporary", "far %s %r" % (far["status"], far["error"]))
    check(nodes["root/near"]["status"] == "ok", "near %s" % nodes["root/near"]["status"])
    check(code == 1 and report["root"]["error"]["type"] == "ChildrenFailed", "root %r" % report["root"]["error"])


def test_dynamic_children_of_a_placed_worker_are_in_the_report(run):
    """A placed worker starts a child at run time, over there: the home
    supervisor never knew it, yet its report holds it (status, error,
    phases), grafted from the other supervisor's."""
    two(run)
    kid = python_node(run, "kid", """
        import arbor
        with arbor.worker():
            raise ValueError("kid failed")
    """)
    far = python_node(run, "far", """
        import json, arbor
        with arbor.worker():
            with arbor.nursery() as n:
                n.start(json.loads(%r))
    """ % json.dumps(kid), on="away")
    spec = {"name": "root", "children": [far]}
    code, report = run.spawn_wait(spec, "--supervisor", "home", timeout=HANG_GUARD)
    nodes = by_path(report)
    k = nodes.get("root/far/kid")
    check(k is not None, "root/far/kid is missing from the report: %s" % sorted(nodes))
    check(k["status"] == "failed" and k["error"]["type"] == "ValueError" and
          k["error"]["message"] == "kid failed" and "Traceback" in k["error"].get("traceback", ""),
          "kid %s %r" % (k["status"], k["error"]))
    phases = [p["phase"] for p in k["phases"]]
    check(k["pid"] and "running" in phases and phases[-1] == "exited", "kid phases %s" % phases)
    check(k["restart"] == "temporary", "kid restart %r" % k.get("restart"))
    f = nodes["root/far"]
    check(f["status"] == "failed" and f["error"]["type"] == "ChildrenFailed" and
          [c["path"] for c in f["children"]] == ["root/far/kid"], "far %s %r" % (f["status"], f["error"]))
    # The home report's times are on its clock: the kid started after far.
    f_spawned = [p["t_ms"] for p in f["phases"] if p["phase"] == "spawned"][0]
    check(k["phases"][0]["t_ms"] >= f_spawned, "kid at %r, far at %r" % (k["phases"][0], f_spawned))
    check(code == 1, "exit %d" % code)


def spawn_running(run, sup1, spec, path):
    """Spawn spec on sup1 and wait until its placed node path runs: (tree,
    the placed subtree's tree id on the other supervisor, the pid of path's
    process, asked of that supervisor: the placing one learns pids only from
    the subtree's final report)."""
    tree = run.ctl("spawn", "--supervisor", "sup1", "-", input=json.dumps(spec)).stdout.strip()
    check(tree, "no tree id")
    run.wait_report(tree, lambda r: by_path(r)[path]["status"] == "running", "%s running" % path,
                    timeout=HANG_GUARD)
    m = re.search(r"runs on supervisor \S+ as tree (\S+)", run.log_of(sup1))
    check(m, "sup1 did not log where it placed the subtree")
    name = path.rsplit("/", 1)[1]
    far = run.wait_report(m.group(1), lambda r: any(n["path"].endswith("/" + name) and n["pid"]
                                                   for n in walk(r["root"])),
                          "the placed %s's pid" % name, timeout=HANG_GUARD)
    return tree, m.group(1), next(n["pid"] for n in walk(far["root"]) if n["path"].endswith("/" + name))


def kill(p):
    p.expect_death = True
    p.send_signal(signal.SIGKILL)
    p.wait()


def release(fifo, timeout=HANG_GUARD):
    """Write a line to fifo for the process that reads it: once it has it
    open (ENXIO until then), within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # polling for the reader's open, bounded
    try:
        os.write(fd, b"end\n")
    finally:
        os.close(fd)


def test_subtree_ends_while_the_broker_is_away(run):
    """The placed leaf ends while no broker runs. The other supervisor sends
    its done event again once a new broker welcomes it; the placing one is
    kept stopped until then, so that the event reaches nobody. It polls
    its placed subtrees' status: the tree still ends, with the leaf's
    whole report."""
    broker = run.broker()
    sup1 = run.supervisor("sup1")
    run.supervisor("sup2")
    # The leaf runs until the test writes to its FIFO: it ends when the
    # broker is gone, not after some time.
    fifo = os.path.join(run.dir, "leaf.fifo")
    os.mkfifo(fifo)
    leaf_node = python_node(run, "leaf", """
        import arbor
        with arbor.worker():
            open(%r).read()
    """ % fifo)
    spec = {"name": "root", "children": [{"name": "far", "on": "sup2", "children": [leaf_node]}]}
    tree, remote, pid = spawn_running(run, sup1, spec, "root/far/leaf")
    kill(broker)
    release(fifo)
    run.wait_gone(pid, "the placed leaf", timeout=HANG_GUARD)
    sup1.send_signal(signal.SIGSTOP)
    try:
        broker2 = run.broker(name="broker2")
        run.wait_log(broker2, "peer sup2 joined", timeout=HANG_GUARD)
        # sup2 sent its done event again right after its welcome, before it
        # answers this: when the answer comes, the event went to nobody.
        r = run.ctl("status", remote, "--supervisor", "sup2", "--json", timeout=HANG_GUARD)
        check(r.stdout.strip() and json.loads(r.stdout)["status"] == "ok",
              "sup2's subtree: %d %s %s" % (r.returncode, r.stdout[-500:], r.stderr))
    finally:
        sup1.send_signal(signal.SIGCONT)
    report = run.wait_report(tree, lambda r: r["status"] != "running", "the tree's end", timeout=HANG_GUARD)
    nodes = by_path(report)
    leaf = nodes["root/far/leaf"]
    check(report["status"] == "ok", "tree %s: %r" % (report["status"], [(n["path"], n["status"]) for n in walk(report["root"])]))
    check(nodes["root/far"].get("supervisor") == "sup2", "far %r" % nodes["root/far"])
    check(leaf["status"] == "ok" and leaf["pid"] == pid and leaf["exit"]["code"] == 0, "leaf %r" % leaf)
    phases = [p["phase"] for p in leaf["phases"]]
    check("running" in phases and phases[-1] == "exited", "leaf phases %s" % phases)
    harness.validate_report(report)
    check(not run.tree_survivors(), "processes of the tree survived")


def test_supervisor_dies_while_the_broker_is_away(run):
    """The other supervisor dies (SIGKILL) while no broker runs: the new
    broker never knew it, so no peer_lost comes. The status poll is answered
    unknown_destination: once the other supervisor has stayed unregistered
    past the broker's expiry, the placed subtree is lost."""
    broker = run.broker()
    sup1 = run.supervisor("sup1")
    sup2 = run.supervisor("sup2")
    spec = {"name": "root", "children": [
        {"name": "stay", "run": "sleep"},
        {"name": "far", "on": "sup2", "children": [{"name": "w", "run": "sleep"}]}]}
    tree, _, pid = spawn_running(run, sup1, spec, "root/far/w")
    kill(broker)
    kill(sup2)
    run.wait_gone(pid, "the placed worker (its supervisor was killed)", timeout=HANG_GUARD)
    run.broker(name="broker2")
    t0 = time.monotonic()
    report = run.wait_report(tree, lambda r: r["status"] != "running", "the placed subtree's loss",
                             timeout=HANG_GUARD)
    print("  lost %.1fs after the broker came back" % (time.monotonic() - t0), flush=True)
    nodes = by_path(report)
    far = nodes["root/far"]
    check(far["status"] == "lost" and "sup2" in far["error"]["message"]
          and "not registered" in far["error"]["message"], "far %r" % far)
    check(nodes["root/far/w"]["status"] == "lost", "w %s" % nodes["root/far/w"]["status"])
    check(nodes["root/stay"]["status"] == "cancelled", "stay %s" % nodes["root/stay"]["status"])
    check(report["status"] == "failed", "tree %s" % report["status"])
    check(not run.tree_survivors(), "processes of the tree survived")


def test_fork_server_death_leaves_placed_nodes_to_placement(run):
    """The fork-server dies while a placed node waits for the other
    supervisor's answer: the fork-server never had that node, so it is not
    lost with the local ones; placement ends it (here: the other supervisor,
    stopped, is expired, or does not answer in time). It used to be settled lost while placement still
    held it: with the tree dropped at once (--keep-trees 0), placement then
    read freed memory."""
    run.broker()
    home = run.supervisor("home", "--keep-trees", "0")
    away = run.supervisor("away")
    away.send_signal(signal.SIGSTOP)  # it never answers the spawn
    spec = {"name": "root", "children": [
        {"name": "stay", "run": "sleep"},
        {"name": "far", "on": "away", "children": [{"name": "w", "run": "sleep"}]}]}
    spec_file = os.path.join(run.dir, "spec.json")
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    waiter = subprocess.Popen([os.path.join(harness.BIN, "arborctl"), "--broker", run.broker_ep,
                               "spawn", "--supervisor", "home", "--wait", "--json", spec_file],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run.env)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not harness.children_of(harness.fork_server_of(home.pid) or 0):
            check(time.monotonic() < deadline, "the local worker never started")
            time.sleep(0.02)  # polling /proc for the fork-server's first child
        os.kill(harness.fork_server_of(home.pid), signal.SIGKILL)
        out, err = waiter.communicate(timeout=HANG_GUARD)
    finally:
        away.send_signal(signal.SIGCONT)
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    report = json.loads(out)
    nodes = by_path(report)
    check(nodes["root/stay"]["status"] == "lost", "stay %r" % nodes["root/stay"])
    far = nodes["root/far"]
    # placement's own end: the broker expires the stopped supervisor, or
    # its answer's deadline passes first (slower builds), never the
    # fork-server's death
    check(far["status"] == "lost" and "fork-server" not in far["error"]["message"], "far %r" % far)
    check(home.poll() is None, "the home supervisor died")
    code, _ = run.spawn_wait({"name": "after", "run": "exit"}, "--supervisor", "home")
    check(code == 0, "a tree after: exit %d" % code)


if __name__ == "__main__":
    main([test_remote_failure_is_one_report, test_cancel_crosses_supervisors,
          test_loss_of_the_other_supervisor, test_unknown_supervisor_is_spawn_failed,
          test_placed_nodes_keep_their_restart_type, test_nursery_starts_a_placed_child,
          test_dynamic_children_of_a_placed_worker_are_in_the_report,
          test_subtree_ends_while_the_broker_is_away, test_supervisor_dies_while_the_broker_is_away,
          test_fork_server_death_leaves_placed_nodes_to_placement])
