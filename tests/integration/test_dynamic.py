"""Dynamic trees: a running worker starts children under itself over its
notify fd ({"spawn": NODE, "id": N} -> {"re": N, "path"} | {"re": N,
"error"}), learns of their ends ({"event": "child_exited", ...}), cancels
its own descendants ({"cancel": PATH}); and arborctl spawn --under adds a
subtree under a running node. The workers here speak the raw protocol with
the standard library only, so the supervisor's side is what is tested."""

import json
import os
import sys
import textwrap


from harness import by_path, check, main

HANG_GUARD = 30

# A worker that runs the script it is given with a tiny client: send(obj),
# recv() -> obj or None on timeout.
PRELUDE = textwrap.dedent("""
    import json, os, socket, sys
    fd = int(os.environ["ARBOR_NOTIFY_FD"])
    sock = socket.socket(fileno=fd)
    def send(obj):
        sock.send(json.dumps(obj).encode())
    backlog = []  # messages read while waiting for an answer
    def recv(timeout=20):
        if backlog:
            return backlog.pop(0)
        sock.settimeout(timeout)
        try:
            return json.loads(sock.recv(70000))
        except socket.timeout:
            return None
    def answer(id):
        sock.settimeout(20)
        while True:
            try:
                m = json.loads(sock.recv(70000))
            except socket.timeout:
                return None
            if m.get("re") == id:
                return m
            backlog.append(m)
    send({"phase": "ready"}); send({"phase": "running"})
""")


def program(run, name, script, **extra):
    node = {"name": name, "run": "exec", "argv": [sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
            "env": {"ARBOR_TEST_RUN": run.marker}}
    node.update(extra)
    return node


def started(run):
    run.broker()
    return run.supervisor("sup1")



def spawn_with_running_child(run, spec, path):
    """Spawn spec; return its tree id once the dynamic child at path runs."""
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    run.wait_report(tree, lambda rep: path in by_path(rep) and
                    by_path(rep)[path]["status"] == "running", "the dynamic child running")
    return tree


def cancel_wait(run, tree):
    """cancel --wait --json: the report's nodes by path (exit 4 checked)."""
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode == 4, "cancel --wait: %d %s" % (r.returncode, r.stderr))
    return by_path(json.loads(r.stdout))

def test_worker_spawns_children_and_collects_their_errors(run):
    """Every child is started by the worker at run time, temporary: each
    failure comes back as child_exited, and all of them are in the report."""
    started(run)
    spec = program(run, "root", """
        paths = []
        for i in range(4):
            send({"spawn": {"name": "leaf-%d" % i, "run": "fail", "after_ms": 10 * i,
                            "restart": "temporary",
                            "error": {"type": "ValueError", "message": "leaf %d" % i}}, "id": i})
            r = answer(i)
            assert r and "path" in r, r
            paths.append(r["path"])
        ended = {}
        while len(ended) < 4:
            m = recv()
            assert m is not None, "no child_exited in time: %r" % ended
            if m.get("event") == "child_exited":
                ended[m["path"]] = m
        assert sorted(ended) == sorted(paths), (ended, paths)
        assert all(m["status"] == "failed" and m["error"]["type"] == "ValueError" for m in ended.values())
        send({"phase": "exiting"})
    """)
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    root = nodes["root"]
    check(root["exit"]["code"] == 0, "the worker's own checks failed: %r %r" % (root["exit"], root["error"]))
    for i in range(4):
        leaf = nodes.get("root/leaf-%d" % i)
        check(leaf and leaf["status"] == "failed" and leaf["error"]["message"] == "leaf %d" % i,
              "leaf-%d: %r" % (i, leaf))
    check(root["status"] == "failed" and root["error"]["type"] == "ChildrenFailed" and
          root["error"]["failed_children"] == 4, "root %s %r" % (root["status"], root["error"]))
    check(code == 1, "exit %d" % code)


def test_bad_spawn_requests_change_nothing(run):
    sup = started(run)
    spec = program(run, "root", """
        send({"spawn": {"name": "ok", "run": "sleep"}, "id": 1})
        assert "path" in answer(1)
        bad = [{"name": "x", "run": "boom"}, {"name": "ok", "run": "sleep"}, "not a node",
               {"name": "t", "run": "sleep", "timeout_ms": 5}]
        for i, node in enumerate(bad):
            send({"spawn": node, "id": 10 + i})
            r = answer(10 + i)
            assert r and r.get("error", {}).get("type") == "SpawnRefused", (node, r)
        # cJSON cut strings at a \\u0000: "ab\\u0000cd" was spawned as root/ab.
        send({"spawn": {"name": "ab\\u0000cd", "run": "sleep"}, "id": 20})
        r = answer(20)
        assert r and r.get("error", {}).get("type") == "SpawnRefused", r
        assert "\\\\u0000" in r["error"]["message"] and "/spawn/name" in r["error"]["message"], r
        # Neither taken: an error "Bad" would fail the tree, a cancel of
        # "root/ok" would be honoured; each is a malformed message.
        send({"error": {"type": "Bad\\u0000Type", "message": "m"}})
        send({"cancel": "root/ok\\u0000x"})
        send({"cancel": "elsewhere/x"})
        r = recv()
        assert r and "error" in r, r
        send({"cancel": "root/ok"})
        while True:
            m = recv()
            assert m is not None
            if m.get("event") == "child_exited":
                assert m["path"] == "root/ok" and m["status"] == "cancelled", m
                break
        send({"phase": "exiting"})
    """)
    code, report = run.spawn_wait(spec, "--supervisor", "sup1", timeout=HANG_GUARD)
    nodes = by_path(report)
    check(nodes["root"]["exit"]["code"] == 0, "the worker's checks: %r" % nodes["root"]["error"])
    check(set(nodes) == {"root", "root/ok"}, "refused spawns added nodes: %r" % sorted(nodes))
    check(nodes["root/ok"]["status"] == "cancelled", "ok %s" % nodes["root/ok"]["status"])
    check(code == 0 and report["status"] == "ok", "tree %s exit %d" % (report["status"], code))
    log = run.log_of(sup)
    for where in ("/error/type", "/cancel"):
        check("a \\u0000 (NUL) in the string at %s" % where in log,
              "no malformed message logged for %s:\n%s" % (where, log[-2000:]))


def test_dynamic_children_are_cancelled_with_their_parent(run):
    """A dynamic child is a node like any other: cancelling the tree stops it
    (its own grace, then SIGTERM), and nothing it started survives."""
    started(run)
    spec = program(run, "root", """
        send({"spawn": {"name": "kid", "run": "exec", "argv": ["sh", "-c", "sleep 1000 & wait"],
                        "env": {"ARBOR_TEST_RUN": os.environ["ARBOR_TEST_RUN"]}}, "id": 1})
        assert "path" in answer(1)
        print("spawned", flush=True)
        while recv(1000) is not None or True:
            pass
    """, grace_ms=300)
    tree = spawn_with_running_child(run, spec, "root/kid")
    nodes = cancel_wait(run, tree)
    check(nodes["root/kid"]["status"] == "cancelled", "kid %s" % nodes["root/kid"]["status"])
    left = run.tree_survivors()
    check(not left, "processes of the tree survived: %r" % left)


def test_spawn_under_from_the_cli(run):
    started(run)
    spec = {"name": "root", "children": [{"name": "base", "run": "sleep"}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    run.wait_report(tree, lambda rep: by_path(rep)["root/base"]["status"] == "running", "base running")
    child = {"name": "extra", "run": "fail", "after_ms": 20, "restart": "temporary"}
    r = run.ctl("spawn", "--under", tree + "/root", "--wait", "--json", "-", input=json.dumps(child),
                timeout=HANG_GUARD)
    check(r.returncode == 1, "spawn --under --wait: exit %d %s" % (r.returncode, r.stderr))
    nodes = by_path(json.loads(r.stdout))
    check(nodes["root/extra"]["status"] == "failed", "extra %r" % nodes["root/extra"])
    check(nodes["root/base"]["status"] == "running", "a temporary child's failure stopped base")
    # Refusals: a name taken, a node that does not exist, a bad spec.
    r = run.ctl("spawn", "--under", tree + "/root", "-", input=json.dumps({"name": "base"}))
    check(r.returncode == 2 and "already has a child" in r.stderr, "duplicate: %d %s" % (r.returncode, r.stderr))
    r = run.ctl("spawn", "--under", tree + "/root/nope", "-", input=json.dumps({"name": "z"}))
    check(r.returncode == 2, "unknown node: %d %s" % (r.returncode, r.stderr))
    r = run.ctl("spawn", "--under", tree + "/root", "-", input=json.dumps({"name": "z", "run": "boom"}))
    check(r.returncode == 2 and "invalid spec" in r.stderr, "bad spec: %d %s" % (r.returncode, r.stderr))
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    nodes = by_path(json.loads(r.stdout))
    check(set(nodes) == {"root", "root/base", "root/extra"}, "nodes %r" % sorted(nodes))
    # Under a tree that has ended: refused.
    r = run.ctl("spawn", "--under", tree + "/root", "-", input=json.dumps({"name": "late"}))
    check(r.returncode == 2 and "not running" in r.stderr, "ended tree: %d %s" % (r.returncode, r.stderr))


def test_a_busy_worker_loses_no_child_exited(run):
    """600 children end while their parent does not read (busy): more than
    its socket holds. Every child_exited waits in the node's queue and
    reaches it, in order, once it reads."""
    started(run)
    spec = program(run, "root", """
        import time
        send({"spawn": {"name": "f", "count": 600, "run": "exit", "code": 0, "after_ms": 50,
                        "restart": "temporary"}, "id": 1})
        time.sleep(1.5)  # the scenario: a parent busy elsewhere while its children end
        got = set()
        deadline = time.monotonic() + 20
        while len(got) < 600 and time.monotonic() < deadline:
            m = recv(5)
            if m is None:
                break
            if m.get("event") == "child_exited":
                got.add(m["path"])
        assert len(got) == 600, "%d of 600 child_exited" % len(got)
        send({"phase": "exiting"})
    """)
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD * 2)
    root = by_path(report)["root"]
    check(root["exit"]["code"] == 0, "the worker's own check: %r" % root["error"])
    check(code == 0, "exit %d" % code)


def test_a_spawn_read_at_the_exit(run):
    """A worker asks for children and exits at once. The supervisor may read
    the requests only while it handles the exit (when the fork-server's
    message comes first), so the tree can grow under the node being
    settled: s_on_exited re-fetches it. The children are made, then stopped
    with their parent; the tree ends."""
    started(run)
    spec = program(run, "root", """
        for i in range(50):
            send({"spawn": {"name": "late-%d" % i, "run": "sleep", "ms": 5000}, "id": i})
        os._exit(0)
    """)
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(nodes["root"]["exit"]["code"] == 0, "root %r" % nodes["root"])
    late = [p for p in nodes if p.startswith("root/late-")]
    check(all(nodes[p]["status"] in ("cancelled", "killed") for p in late),
          "late children: %r" % [(p, nodes[p]["status"]) for p in late])
    check(report["status"] in ("ok", "cancelled") and code in (0, 4), "tree %s exit %d" % (report["status"], code))


def test_a_worker_chooses_the_strategy_of_its_dynamic_children(run):
    """A worker whose children are all dynamic has a strategy and restarts
    (OTP's simple_one_for_one): its transient child fails once, is
    restarted, then ends ok; the worker hears both ends and the tree is ok."""
    started(run)
    counter = os.path.join(run.dir, "attempts")
    job = ('n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; '
           '[ $n -ge 2 ] && exit 0; exit 7') % (counter, counter)
    spec = program(run, "root", """
        send({"spawn": {"name": "job", "run": "exec", "argv": ["sh", "-c", %r]}, "id": 1})
        assert "path" in answer(1)
        ends = []
        while not ends or ends[-1] != "ok":
            m = recv()
            assert m is not None, "no child_exited in time: %%r" %% ends
            if m.get("event") == "child_exited":
                ends.append(m["status"])
        assert ends == ["failed", "ok"], ends
        send({"phase": "exiting"})
    """ % job, strategy="one_for_one", max_restarts=2, within_ms=60000)
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    check(report is not None, "no report (exit %d): the spec was refused?" % code)
    nodes = by_path(report)
    root, j = nodes["root"], nodes["root/job"]
    check(root["exit"]["code"] == 0, "the worker's own checks failed: %r" % root["error"])
    check(j["status"] == "ok" and [h["exit"]["code"] for h in j["restarts"]] == [7],
          "job %s %r" % (j["status"], j["restarts"]))
    check(code == 0 and report["status"] == "ok", "tree %s exit %d" % (report["status"], code))


def test_spawns_over_the_limits_are_refused(run):
    """--max-nodes counts the whole tree, --max-processes every tree of the
    supervisor: a spawn over either is refused with the limit named, and
    the tree is as it was."""
    run.broker()
    run.supervisor("sup1", "--max-nodes", "4", "--max-processes", "5")
    r = run.ctl("spawn", "-", input=json.dumps({"name": "other", "children": [{"name": "x", "run": "sleep"}]}))
    check(r.returncode == 0, "spawn other: %s" % r.stderr)
    other = r.stdout.strip()
    run.wait_report(other, lambda rep: by_path(rep)["other/x"]["status"] == "running", "other running")
    spec = program(run, "root", """
        def spawn(id, node):
            send({"spawn": node, "id": id})
            r = answer(id)
            assert r is not None, "no answer to %d" % id
            return r
        assert "path" in spawn(1, {"name": "a", "run": "sleep"})
        r = spawn(2, {"name": "many", "run": "sleep", "count": 3})  # 5 nodes in a tree of 4 at most
        assert r.get("error", {}).get("type") == "SpawnRefused" and "limit" in r["error"]["message"], r
        assert "path" in spawn(3, {"name": "b", "run": "sleep"})  # 3 nodes; 5 processes with other's
        r = spawn(4, {"name": "c", "run": "sleep"})
        assert r.get("error", {}).get("type") == "SpawnRefused" and "--max-processes 5" in r["error"]["message"], r
        send({"phase": "exiting"})
    """)
    code, report = run.spawn_wait(spec, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(nodes["root"]["exit"]["code"] == 0, "the worker's checks: %r" % nodes["root"]["error"])
    check(set(nodes) == {"root", "root/a", "root/b"}, "refused spawns changed the tree: %r" % sorted(nodes))
    rep = run.report(other)
    check(rep["status"] == "running" and set(by_path(rep)) == {"other", "other/x"}, "other %r" % rep["status"])
    r = run.ctl("cancel", other, "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode == 4, "cancel other: %d %s" % (r.returncode, r.stderr))


def test_spawn_under_a_stopping_node_is_refused(run):
    """A worker told to cancel asks for a child: refused (it is stopping),
    nothing added; the worker still ends within its grace: cancelled."""
    started(run)
    spec = program(run, "root", """
        send({"spawn": {"name": "a", "run": "sleep"}, "id": 1})
        assert "path" in answer(1)
        while True:
            m = recv(60)
            assert m is not None, "no cancel"
            if m.get("event") == "cancel":
                break
        send({"spawn": {"name": "late", "run": "sleep"}, "id": 2})
        r = answer(2)
        assert r and r.get("error", {}).get("type") == "SpawnRefused" and "stopping" in r["error"]["message"], r
    """)
    tree = spawn_with_running_child(run, spec, "root/a")
    nodes = cancel_wait(run, tree)
    root = nodes["root"]
    check(root["status"] == "cancelled" and root["exit"]["code"] == 0,
          "the worker's checks: %s %r %r" % (root["status"], root["exit"], root["error"]))
    check(set(nodes) == {"root", "root/a"}, "a spawn under a stopping node added %r" % sorted(nodes))


def test_a_worker_cannot_cancel_outside_its_subtree(run):
    """A worker's cancel names nodes that exist but are not below it: itself,
    its sibling, its parent. Each is refused and nothing is stopped."""
    started(run)
    w = program(run, "w", """
        targets = ["root/w", "root/sib", "root"]
        for p in targets:
            send({"cancel": p})
        refused = []
        while len(refused) < len(targets):
            m = recv()
            assert m is not None, "refusals: %r" % refused
            if "cancel" in m:
                assert m.get("error", {}).get("type") == "SpawnRefused", m
                refused.append(m["cancel"])
        assert refused == targets, refused
        send({"phase": "exiting"})
    """)
    spec = {"name": "root", "children": [w, {"name": "sib", "run": "sleep"}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    rep = run.wait_report(tree, lambda rep: by_path(rep)["root/w"]["status"] not in ("pending", "running"),
                          "the worker's end")
    nodes = by_path(rep)
    check(nodes["root/w"]["status"] == "ok", "w %s %r" % (nodes["root/w"]["status"], nodes["root/w"]["error"]))
    check(nodes["root/sib"]["status"] == "running" and nodes["root"]["status"] == "running",
          "a refused cancel stopped something: root %s sib %s" % (nodes["root"]["status"],
                                                                 nodes["root/sib"]["status"]))
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=HANG_GUARD)
    check(r.returncode == 4, "cancel --wait: %d %s" % (r.returncode, r.stderr))


if __name__ == "__main__":
    main([test_worker_spawns_children_and_collects_their_errors, test_bad_spawn_requests_change_nothing,
          test_dynamic_children_are_cancelled_with_their_parent, test_spawn_under_from_the_cli,
          test_a_busy_worker_loses_no_child_exited, test_a_spawn_read_at_the_exit,
          test_a_worker_chooses_the_strategy_of_its_dynamic_children, test_spawns_over_the_limits_are_refused,
          test_spawn_under_a_stopping_node_is_refused, test_a_worker_cannot_cancel_outside_its_subtree])
