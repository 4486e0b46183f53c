"""Nurseries: the worker libraries' side of dynamic trees (issue 15).

The Python module's spawn / cancel / child ends / arbor.nursery and
libarbor_worker's arbor_worker_spawn against a real supervisor, the
nested-errors example with a Python process at every node (63 processes,
every error in the report as structured data), and the module alone over a
socketpair where answers and events interleave."""

import json
import os
import socket
import sys
import textwrap
import threading
import time

from harness import BIN, SLOW, SRC, by_path, check, main, schema_validator

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PYPATH = os.path.join(SRC, "python")
EXAMPLE = os.path.join(SRC, "examples", "python", "nested_errors.py")
HANG_GUARD = 60

sys.path.insert(0, PYPATH)
import arbor  # noqa: E402


def started(run):
    run.broker()
    run.supervisor("sup1")


def no_survivors(run):
    """No marked process but the daemons (and the fork-server) is alive, with
    a deadline: the trees' processes have all been reaped."""
    left = run.tree_survivors()
    check(not left, "processes of the tree survived: %r" % left)


def test_nested_errors_python_at_every_node(run):
    """root -> 2 -> 4 -> 8 -> 16 Python spawners -> 32 Python leaves raising
    ValueError, each level started by its parent through arbor.nursery():
    every leaf's error is in the report with its type and traceback, every
    spawner failed with ChildrenFailed naming its two children."""
    started(run)
    r = __import__("subprocess").run([PY, EXAMPLE, "--spec", "--pass-env", "ARBOR_TEST_RUN"],
                                     capture_output=True, text=True, timeout=30,
                                     env=dict(os.environ, PYTHONPATH=PYPATH))
    check(r.returncode == 0, "--spec: %s" % r.stderr)
    spec = json.loads(r.stdout)
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(len(nodes) == 63, "%d nodes: %s" % (len(nodes), sorted(nodes)[:10]))
    leaves = [n for n in nodes.values() if not n["children"]]
    spawners = [n for n in nodes.values() if n["children"]]
    check(len(leaves) == 32 and len(spawners) == 31, "%d leaves %d spawners" % (len(leaves),
                                                                             len(spawners)))
    for n in leaves:
        e = n["error"] or {}
        check(n["status"] == "failed" and e.get("type") == "ValueError" and
              "invalid literal" in e.get("message", "") and
              "Traceback (most recent call last)" in e.get("traceback", "") and
              "in parse" in e["traceback"], "leaf %s: %s %r" % (n["path"], n["status"], e))
    for n in spawners:
        e = n["error"] or {}
        check(n["status"] == "failed" and e.get("type") == "ChildrenFailed" and
              e.get("failed_children") == 2 and len(n["children"]) == 2,
              "spawner %s: %s %r" % (n["path"], n["status"], e))
    check(nodes["root/sp-1/sp-0/sp-1/sp-0/leaf-1"]["error"]["type"] == "ValueError",
          "the paths are not the nested shape")
    check(report["status"] == "failed" and code == 1, "tree %s exit %d" % (report["status"], code))
    no_survivors(run)


NURSERY_WORKER = textwrap.dedent("""
    import json, os, sys, time
    import arbor
    out = {}
    raw = []  # every message read, for the schema check
    dispatch = arbor.Notifier._dispatch
    arbor.Notifier._dispatch = lambda self, data: raw.append(data.decode()) or dispatch(self, data)
    with arbor.worker():
        # A refusal is an exception with the supervisor's reason.
        try:
            arbor.spawn({"name": "bad", "run": "boom"})
        except arbor.SpawnRefused as e:
            out["refused"] = [e.error.get("type"), "unknown behaviour" in str(e)]
        ends = []
        arbor.on_child_exit(lambda ce: ends.append(ce.path))
        try:
            with arbor.nursery() as n:
                n.start({"name": "ok", "run": "sleep", "ms": 30})
                n.start_soon({"name": "boom", "run": "fail", "after_ms": 20,
                              "error": {"type": "KeyError", "message": "no such key"}})
                n.start({"name": "py", "run": "exec", "argv": [sys.executable, "-c",
                         "import arbor\\nwith arbor.worker():\\n    raise ValueError('from py')"],
                         "env": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
                n.start({"name": "many", "count": 3, "run": "sleep", "ms": 10})
            out["no_raise"] = True
        except arbor.ChildrenFailed as g:
            out["group"] = sorted([e.path, e.type, e.message, e.traceback is not None,
                                   e.status] for e in g.errors)
            out["is_group"] = isinstance(g, arbor.ExceptionGroup)
            out["results"] = sorted((p, ce.status) for p, ce in n.results.items())
        out["callback_saw"] = len(ends)
        # cancel_on_error: the first failure cancels the others.
        try:
            with arbor.nursery(cancel_on_error=True) as n:
                n.start({"name": "slow", "run": "sleep"})
                n.start({"name": "quick-fail", "run": "fail", "after_ms": 10})
        except arbor.ChildrenFailed as g:
            out["cancelled"] = sorted((p, ce.status) for p, ce in n.results.items())
        # An exception in the block: the children still running are cancelled,
        # waited for, and the exception comes out in the group.
        try:
            with arbor.nursery() as n:
                n.start({"name": "late-fail", "run": "fail", "after_ms": 0})
                n.start({"name": "forever", "run": "sleep"})
                raise RuntimeError("the block failed")
        except arbor.ChildrenFailed as g:
            out["body"] = [type(g.exceptions[0]).__name__, str(g.exceptions[0]),
                           sorted((p, ce.status) for p, ce in n.results.items())]
        # The plain calls: spawn, cancel, the next end; a cancel refused.
        arbor.cancel("elsewhere/x")
        p = arbor.spawn({"name": "solo", "run": "sleep", "restart": "temporary"})
        arbor.cancel(p)
        ce = arbor.notifier().next_child_exit(timeout=20, paths=[p])
        out["solo"] = [p, ce and ce.status]
        out["refused_cancels"] = arbor.notifier().refused_cancels
    out["raw"] = raw
    with open(os.environ["OUT"], "w") as f:
        json.dump(out, f)
""")


def test_python_nursery_against_a_supervisor(run):
    started(run)
    out = os.path.join(run.dir, "out.json")
    spec = {"name": "root", "run": "exec", "argv": [PY, "-c", NURSERY_WORKER],
            "env": {"PYTHONPATH": PYPATH, "OUT": out, "ARBOR_TEST_RUN": run.marker}}
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(os.path.exists(out), "the worker wrote nothing: %r\n%s" % (
        nodes["root"]["error"], json.dumps(nodes["root"])[:3000]))
    with open(out) as f:
        got = json.load(f)
    check(got.get("refused") == ["SpawnRefused", True], "refused %r" % got.get("refused"))
    check("no_raise" not in got and got.get("is_group") is True, "no group raised: %r" % got)
    check(got["group"] == [["root/boom", "KeyError", "no such key", False, "failed"],
                           ["root/py", "ValueError", "from py", True, "failed"]],
          "group %r" % got["group"])
    check(got["results"] == [["root/boom", "failed"], ["root/many-0", "ok"], ["root/many-1", "ok"],
                             ["root/many-2", "ok"], ["root/ok", "ok"], ["root/py", "failed"]],
          "results %r" % got["results"])
    check(got["callback_saw"] == 6, "callback saw %r" % got["callback_saw"])
    check(got["cancelled"] == [["root/quick-fail", "failed"], ["root/slow", "cancelled"]],
          "cancel_on_error %r" % got["cancelled"])
    check(got["body"] == ["RuntimeError", "the block failed",
                          [["root/forever", "cancelled"], ["root/late-fail", "failed"]]],
          "body %r" % got["body"])
    check(got["solo"] == ["root/solo", "cancelled"], "solo %r" % got["solo"])
    check([c[0] for c in got["refused_cancels"]] == ["elsewhere/x"], "refused cancels %r" %
          got["refused_cancels"])
    # What the supervisor sent matches schema/notify-event.json: answers,
    # refusals, child ends, a refused cancel.
    validator = schema_validator("notify-event.json")
    kinds = set()
    for d in got["raw"]:
        msg = json.loads(d)
        errs = list(validator.iter_errors(msg))
        check(not errs, "%s: %s" % (d[:300], errs and errs[0].message))
        kinds.add("answer" if "re" in msg else msg.get("event") or "cancel refused")
    check(kinds >= {"answer", "child_exited", "cancel refused"}, "kinds %r" % kinds)
    # The worker caught every group: it ended 0, yet failed: its temporary
    # children failed, all of them listed.
    root = nodes["root"]
    check(root["exit"]["code"] == 0 and root["status"] == "failed" and
          root["error"]["type"] == "ChildrenFailed" and root["error"]["failed_children"] == 4,
          "root %s %r %r" % (root["status"], root["exit"], root["error"]))
    check(nodes["root/py"]["error"]["traceback"].rstrip().endswith("ValueError: from py"),
          "py's traceback %r" % nodes["root/py"]["error"])
    check("root/bad" not in nodes, "a refused child is in the report")
    check(code == 1, "exit %d" % code)
    no_survivors(run)


def test_c_worker_spawns_children(run):
    """bench/spawn_many (libarbor_worker's arbor_worker_spawn, one request
    per child): 50 children under it, all running; cancelling the tree stops
    them all."""
    prog = os.path.join(BIN, "spawn_many")
    check(os.path.exists(prog), "%s not built" % prog)
    started(run)
    spec = {"name": "root", "run": "exec", "argv": [prog, "50"],
            "env": {"ARBOR_TEST_RUN": run.marker}}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    run.wait_report(tree, lambda rep: len(by_path(rep)) == 51 and all(
        n["status"] == "running" for n in by_path(rep).values()), "51 nodes running")
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode == 4, "cancel: %d %s" % (r.returncode, r.stderr))
    nodes = by_path(json.loads(r.stdout))
    check(sorted(nodes) == sorted(["root"] + ["root/c-%d" % i for i in range(50)]),
          "nodes %r" % sorted(nodes)[:5])
    check(all(n["status"] == "cancelled" for n in nodes.values()),
          "statuses %r" % {n["status"] for n in nodes.values()})
    no_survivors(run)


class FakeSupervisor:
    """The other end of a socketpair: answers spawn requests after sending
    events first (answers and events interleave), optionally never."""

    def __init__(self, sock, events_before=2, answer=True):
        self.sock, self.events_before, self.answer = sock, events_before, answer
        self.requests = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def heard(self, msg, timeout=5):
        """msg arrives (an event), within a deadline."""
        with self.cond:
            return self.cond.wait_for(lambda: msg in self.requests, timeout * SLOW)

    def loop(self):
        try:
            self.serve()
        except OSError:
            pass  # the test closed our end

    def serve(self):
        k = 0
        while True:
            try:
                data = self.sock.recv(70000)
            except OSError:
                return
            if not data:
                return
            msg = json.loads(data)
            with self.cond:
                self.requests.append(msg)
                self.cond.notify_all()
            if "spawn" not in msg:
                continue
            name = msg["spawn"].get("name")
            for _ in range(self.events_before):
                k += 1
                self.sock.send(json.dumps({"event": "child_exited", "path": "r/old-%d" % k,
                                           "status": "failed",
                                           "error": {"type": "E", "message": "m%d" % k}}).encode())
            if not self.answer:
                continue
            if name == "refuse":
                self.sock.send(json.dumps({"re": msg["id"], "error": {
                    "type": "SpawnRefused", "message": "no, \u00e9"}}).encode())
            else:
                self.sock.send(json.dumps({"re": msg["id"], "path": "r/" + name,
                                           "paths": ["r/" + name]}).encode())


def test_python_module_interleaving(run):
    """The module alone over a socketpair, no daemons: an answer that comes
    after events is matched by id, the events are kept for their readers
    (child_exits, callbacks, poll); with and without the watcher thread; a
    refusal, a timeout, the supervisor gone; outside arbor."""
    sup, mine = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    n = arbor.Notifier(mine.detach())
    fake = FakeSupervisor(sup)
    seen = []
    n.on_child_exit(lambda ce: seen.append(ce.path))
    check(n.spawn({"name": "a"}) == "r/a", "spawn without the watcher")
    check(seen == ["r/old-1", "r/old-2"], "the ends read before the answer: %r" % seen)
    n.watch()  # from now on a thread reads
    check(n.spawn_each([{"name": "b-%d" % i} for i in range(100)], window=16) ==
          ["r/b-%d" % i for i in range(100)], "spawn_each")
    ends = [ce.path for ce in n.child_exits(timeout=0)]
    check(ends == ["r/old-%d" % i for i in range(1, 203)], "ends kept in order: %r" % ends[:5])
    check(seen == ends, "the callback saw %d" % len(seen))
    # A callback that spawns, run by the watcher thread while it reads: it
    # reads its own answer (once this deadlocked).
    respawned = threading.Event()
    paths = []

    def again(ce):
        if not paths:
            paths.append(None)  # once: its own answer comes after more ends
            paths[0] = n.spawn({"name": "again"}, timeout=5)
            respawned.set()
    n.on_child_exit(again)
    check(n.spawn({"name": "c"}) == "r/c", "spawn c")
    check(respawned.wait(10 * SLOW) and paths == ["r/again"], "the callback's spawn: %r" % paths)
    try:
        n.spawn({"name": "refuse"})
        check(False, "a refusal passed")
    except arbor.SpawnRefused as e:
        check(e.error == {"type": "SpawnRefused", "message": "no, \u00e9"}, "error %r" % e.error)
    check(n.cancel("r/b-1") and fake.heard({"cancel": "r/b-1"}), "cancel not sent")
    validator = schema_validator("notify.json")
    for msg in fake.requests:
        errs = list(validator.iter_errors(msg))
        check(not errs, "%r: %s" % (msg, errs and errs[0].message))
    fake.answer = False
    t0 = time.monotonic()
    try:
        n.spawn({"name": "never"}, timeout=0.2)
        check(False, "no answer, no error")
    except arbor.SpawnError as e:
        check("no answer within" in str(e) and time.monotonic() - t0 < 5 * SLOW, "timeout %s" % e)
    sup.close()
    try:
        n.spawn({"name": "gone"}, timeout=5)
        check(False, "the supervisor gone, no error")
    except arbor.SpawnError as e:
        check("supervisor" in str(e), "gone: %s" % e)
    check(n.next_child_exit(timeout=5) is not None or n.gone, "gone not noticed")
    n.close()

    # Outside arbor: spawn says so; the other calls do nothing.
    saved = os.environ.pop(arbor.ENV, None)
    try:
        off = arbor.Notifier()
        try:
            off.spawn({"name": "x"})
            check(False, "spawn outside arbor passed")
        except arbor.NotUnderArbor as e:
            check("not running under arbor" in str(e), "message %s" % e)
        check(off.cancel("r/x") is False and list(off.child_exits(0)) == [] and
              off.next_child_exit(0) is None, "the other calls are not no-ops")
        with arbor.nursery(notifier_=off):
            pass  # starts nothing: nothing to wait for
    finally:
        if saved is not None:
            os.environ[arbor.ENV] = saved


def test_error_group_shape(run):
    """ChildrenFailed is an ExceptionGroup of ChildError (3.11+: except*
    splits it and keeps the class)."""
    e1 = arbor.ChildError("r/a", "failed", {"type": "ValueError", "message": "m",
                                            "traceback": "tb", "phase": "running"})
    e2 = arbor.ChildError("r/b", "lost", None)
    g = arbor.ChildrenFailed("2 of 2 children failed", [e1, e2])
    check(isinstance(g, arbor.ExceptionGroup) and g.errors == [e1, e2], "group %r" % g)
    check(e1.as_dict() == {"path": "r/a", "status": "failed", "type": "ValueError",
                           "message": "m", "traceback": "tb", "phase": "running"}, "as_dict")
    check(e2.type == "Lost" and str(e1) == "r/a: ValueError: m", "%s / %s" % (e2.type, e1))
    if sys.version_info >= (3, 11):
        match, rest = g.split(lambda e: isinstance(e, arbor.ChildError) and e.type == "ValueError")
        check(type(match) is arbor.ChildrenFailed and match.errors == [e1] and
              rest.errors == [e2], "split %r %r" % (match, rest))


if __name__ == "__main__":
    main([test_error_group_shape, test_python_module_interleaving,
          test_nested_errors_python_at_every_node, test_python_nursery_against_a_supervisor,
          test_c_worker_spawns_children])
