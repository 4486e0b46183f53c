"""arborctl against the real broker and a fake supervisor (below, run as a
child process of this script with --fake-supervisor). The fake answers
spawn/status/cancel/list and publishes tree events the way PROTOCOL.md says;
the spec's "fake" key scripts it:

    {"name": "root", "fake": {"end": "ok"|"failed"|"cancelled"|null,
                              "after_ms": N, "no_done": bool, "invalid": "MSG"}}

end null (default): runs until cancelled. no_done: publish no "done" event
(arborctl must still see the end by polling status).

Run: ARBOR_BIN=build/bin /usr/bin/python3 tests/integration/test_cli_fake_supervisor.py [TEST...]
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- fake supervisor
def fake_supervisor(endpoint, name):
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, name.encode())
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(endpoint)
    state = {"id": 0, "stop": False}
    trees = {}

    def send(to, type_, body, re_=None):
        state["id"] += 1
        env = {"v": 1, "type": type_, "to": to, "id": state["id"], "re": re_, "body": body}
        sock.send(json.dumps(env).encode())

    def hello():
        send("broker", "hello", {"role": "supervisor", "incarnation": "fake%d" % os.getpid()})

    def publish(tree, body):
        body = dict(body, topic="tree/" + tree["id"], tree=tree["id"])
        send("topic:tree/" + tree["id"], "event", body)

    def node(path, name_, status, error=None, exit_code=0, signal_=None, children=()):
        return {"name": name_, "path": path, "pid": 4242, "status": status,
                "phase": "exited" if status != "running" else "running",
                "exit": {"code": None if status == "running" or signal_ else exit_code,
                         "signal": signal_},
                "error": error, "escalation": None,
                "phases": [{"phase": "spawned", "t_ms": 0}], "children": list(children)}

    def report(tree):
        st = tree["status"]
        root_name = tree["spec"].get("name", "root")
        child_status = {"failed": "failed", "cancelled": "cancelled"}.get(st, st)
        child_err = {"type": "ValueError", "message": "boom", "phase": "running",
                     "stderr": "a\nb\nTraceback: boom\n"} if st == "failed" else None
        child = node(root_name + "/leaf-0", "leaf-0", child_status, child_err,
                     1 if st == "failed" else 0)
        err = {"type": "ChildrenFailed", "message": "1 child failed",
               "phase": "children_exited"} if st == "failed" else None
        root = node(root_name, root_name, st, err, 1 if st == "failed" else 0,
                    children=[child])
        end = tree["ended"] or time.monotonic()
        return {"tree": tree["id"], "supervisor": name, "status": st,
                "duration_ms": int((end - tree["t0"]) * 1000), "root": root}

    def finish(tree, status):
        if tree["status"] != "running":
            return
        tree["status"] = status
        tree["ended"] = time.monotonic()
        root_name = tree["spec"].get("name", "root")
        publish(tree, {"kind": "phase", "path": root_name, "phase": "exited",
                       "t_ms": int((tree["ended"] - tree["t0"]) * 1000)})
        publish(tree, {"kind": "status", "path": root_name, "status": status})
        if not tree["fake"].get("no_done"):
            publish(tree, {"kind": "done", "status": status})

    def on_message(sender, env):
        t, body, mid = env["type"], env["body"], env["id"]
        if sender == "broker":
            if t == "welcome":
                print("registered with broker", flush=True)
            elif t == "error" and body.get("code") == "unknown_session":
                hello()
            return
        if t == "spawn":
            spec = body.get("spec")
            fake = spec.get("fake", {}) if isinstance(spec, dict) else {}
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                send(sender, "error", {"code": "invalid_spec", "message": "name is required",
                                       "path": "root"}, mid)
                return
            if fake.get("invalid"):
                send(sender, "error", {"code": "invalid_spec", "message": fake["invalid"],
                                       "path": spec["name"] + "/children/0"}, mid)
                return
            tid = body.get("tree") or "t%d" % mid
            tree = {"id": tid, "spec": spec, "fake": fake, "status": "running",
                    "t0": time.monotonic(), "ended": None, "end_at": None}
            if fake.get("end"):
                tree["end_at"] = time.monotonic() + fake.get("after_ms", 0) / 1000.0
            trees[tid] = tree
            send(sender, "spawned", {"tree": tid}, mid)
            for phase in ("spawned", "ready", "running"):
                publish(tree, {"kind": "phase", "path": spec["name"], "phase": phase, "t_ms": 1})
        elif t == "status":
            tree = trees.get(body.get("tree"))
            if tree:
                send(sender, "report", {"report": report(tree)}, mid)
            else:
                send(sender, "error", {"code": "not_found", "message": "no such tree"}, mid)
        elif t == "cancel":
            tree = trees.get(body.get("tree"))
            path = body.get("path")
            root_name = tree["spec"]["name"] if tree else None
            if not tree or (path and path not in (root_name, root_name + "/leaf-0")):
                send(sender, "error", {"code": "not_found", "message": "no such tree/node"}, mid)
                return
            send(sender, "cancelling", {"tree": tree["id"], "path": path or root_name}, mid)
            if tree["status"] == "running":
                tree["end_at"] = time.monotonic() + 0.1
                tree["fake"]["end"] = "cancelled"
        elif t == "list":
            send(sender, "trees", {"trees": [{"tree": k, "status": v["status"],
                                              "root": v["spec"]["name"]}
                                             for k, v in trees.items()]}, mid)

    signal.signal(signal.SIGTERM, lambda *a: state.update(stop=True))
    hello()
    next_beat = time.monotonic() + 1
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not state["stop"]:
        now = time.monotonic()
        if now >= next_beat:
            send("broker", "heartbeat", {})
            next_beat = now + 1
        for tree in trees.values():
            if tree["end_at"] and now >= tree["end_at"] and tree["status"] == "running":
                finish(tree, tree["fake"]["end"])
        if dict(poller.poll(50)).get(sock):
            frames = sock.recv_multipart()
            if len(frames) == 2:
                on_message(frames[0].decode(), json.loads(frames[1]))
    sock.close()
    ctx.term()


if len(sys.argv) == 4 and sys.argv[1] == "--fake-supervisor":
    fake_supervisor(sys.argv[2], sys.argv[3])
    sys.exit(0)

# ---------------------------------------------------------------- tests
import harness  # noqa: E402
from harness import SLOW, check  # noqa: E402


def fake(run, name="sup1"):
    p = run.start(name, [sys.executable, os.path.abspath(__file__), "--fake-supervisor",
                         run.broker_ep, name])
    run.wait_log(p, "registered with broker")
    return p


def spec_text(end=None, after_ms=0, **extra):
    f = {"end": end, "after_ms": after_ms}
    f.update(extra)
    return json.dumps({"name": "root", "fake": f})


def test_spawn_prints_id(run):
    run.broker()
    fake(run)
    path = os.path.join(run.dir, "spec.json")
    with open(path, "w") as f:
        f.write(spec_text())
    r = run.ctl("spawn", path)
    check(r.returncode == 0, "spawn: exit %d: %s" % (r.returncode, r.stderr))
    tid = r.stdout.strip()
    check(re.fullmatch(r"sup1\.[0-9a-f]{16}", tid), "spawn printed %r (SUPERVISOR.RANDOM)" % r.stdout)
    r = run.ctl("status", tid)
    check(r.returncode == 0, "status of a running tree: exit %d" % r.returncode)
    check(("tree " + tid) in r.stdout and "running" in r.stdout, r.stdout)
    r = run.ctl("status", tid, "--json")
    rep = json.loads(r.stdout)
    check(rep["tree"] == tid and rep["status"] == "running" and rep["supervisor"] == "sup1",
          r.stdout)
    r = run.ctl("list", "--json")
    check(r.returncode == 0 and any(t["tree"] == tid and t["supervisor"] == "sup1"
                                    for t in json.loads(r.stdout)["trees"]), r.stdout + r.stderr)
    r = run.ctl("peers", "--json")
    check(any(p["name"] == "sup1" and p["role"] == "supervisor"
              for p in json.loads(r.stdout)["peers"]), r.stdout)
    r = run.ctl("peers")
    check(r.returncode == 0 and "sup1" in r.stdout and "supervisor" in r.stdout, r.stdout)


def test_invalid_spec(run):
    run.broker()
    fake(run)
    r = run.ctl("spawn", "-", input='{"name": "root",\n "run": sleep}')
    check(r.returncode == 2, "not JSON: exit %d" % r.returncode)
    check("line 2" in r.stderr, r.stderr)
    r = run.ctl("spawn", "-", input="[1, 2]")
    check(r.returncode == 2 and "JSON object" in r.stderr, r.stderr)
    r = run.ctl("spawn", "-", input=spec_text(invalid="bad strategy \"x\""))
    check(r.returncode == 2, "invalid_spec: exit %d" % r.returncode)
    check('invalid spec at root/children/0: bad strategy "x"' in r.stderr, r.stderr)
    check(r.stdout == "", "nothing on stdout: %r" % r.stdout)
    r = run.ctl("spawn", os.path.join(run.dir, "missing.json"))
    check(r.returncode == 2 and "missing.json" in r.stderr, r.stderr)


def test_wait_exit_codes(run):
    run.broker()
    fake(run)
    for end, code in (("ok", 0), ("failed", 1), ("cancelled", 4)):
        t0 = time.monotonic()
        rc, rep = run.spawn_wait(json.loads(spec_text(end, 300)))
        check(rc == code, "%s: exit %d, want %d" % (end, rc, code))
        check(rep["status"] == end and rep["root"]["children"][0]["path"] == "root/leaf-0", rep)
        check(time.monotonic() - t0 < 3 * SLOW, "%s: took too long (done event ignored?)" % end)
    r = run.ctl("spawn", "--wait", "-", input=spec_text("failed", 100))
    check(r.returncode == 1, "human --wait failed: exit %d" % r.returncode)
    check("ChildrenFailed: 1 child failed" in r.stdout and "ValueError: boom" in r.stdout
          and "└── leaf-0" in r.stdout and "Traceback: boom" in r.stdout, r.stdout)
    check("\033" not in r.stdout, "colour on a pipe")


def test_wait_without_done_event(run):
    run.broker()
    fake(run)
    rc, rep = run.spawn_wait(json.loads(spec_text("cancelled", 200, no_done=True)))
    check(rc == 4 and rep["status"] == "cancelled", (rc, rep))


def test_wait_timeout(run):
    run.broker()
    fake(run)
    t0 = time.monotonic()
    r = run.ctl("spawn", "--wait", "--timeout", "1", "--json", "-", input=spec_text())
    dt = time.monotonic() - t0
    check(r.returncode == 3, "timeout: exit %d" % r.returncode)
    check(0.9 < dt < 3 * SLOW, "timeout took %.2fs" % dt)
    check("keeps running" in r.stderr and r.stdout == "", (r.stdout, r.stderr))


def test_broker_unreachable(run):
    t0 = time.monotonic()
    for args in (["peers"], ["status", "abc"], ["spawn", "-"]):
        r = subprocess.run([os.path.join(harness.BIN, "arborctl"), "--broker",
                            "ipc://%s/nobody.sock" % run.dir] + args, input='{"name":"r"}',
                           capture_output=True, text=True, env=run.env, timeout=10 * SLOW)
        check(r.returncode == 3, "%s: exit %d" % (args, r.returncode))
        check("cannot reach broker" in r.stderr, r.stderr)
    check(time.monotonic() - t0 < 15 * SLOW, "unreachable broker took %.1fs for 3 runs" %
          (time.monotonic() - t0))


def test_unknown_tree_and_no_supervisor(run):
    run.broker()
    r = run.ctl("spawn", "-", input=spec_text())
    check(r.returncode == 3 and "no supervisor registered" in r.stderr, r.stderr)
    r = run.ctl("spawn", "--supervisor", "ghost", "-", input=spec_text())
    check(r.returncode == 3 and "ghost" in r.stderr, r.stderr)
    fake(run)
    r = run.ctl("status", "nosuchtree")
    check(r.returncode == 2 and "no supervisor knows tree nosuchtree" in r.stderr, r.stderr)
    r = run.ctl("cancel", "nosuchtree", "--json")
    check(r.returncode == 2 and r.stdout == "", (r.returncode, r.stderr))
    r = run.ctl("status", "--supervisor", "ghost", "x")
    check(r.returncode == 3, "unknown supervisor: exit %d %s" % (r.returncode, r.stderr))


def test_several_supervisors(run):
    run.broker()
    fake(run, "sup1")
    fake(run, "sup2")
    r = run.ctl("spawn", "-", input=spec_text())
    check(r.returncode == 2 and "several supervisors" in r.stderr and "sup1" in r.stderr
          and "sup2" in r.stderr, r.stderr)
    r = run.ctl("spawn", "--supervisor", "sup2", "-", input=spec_text())
    check(r.returncode == 0, r.stderr)
    tid = r.stdout.strip()
    r = run.ctl("status", tid, "--json")   # found by asking both
    check(r.returncode == 0 and json.loads(r.stdout)["supervisor"] == "sup2", r.stdout)
    env = dict(run.env, ARBOR_SUPERVISOR="sup1")
    r = subprocess.run([os.path.join(harness.BIN, "arborctl"), "spawn", "-"], env=env,
                       input=spec_text(), capture_output=True, text=True, timeout=20)
    check(r.returncode == 0, r.stderr)
    r = run.ctl("status", "--supervisor", "sup1", r.stdout.strip(), "--json")
    check(r.returncode == 0 and json.loads(r.stdout)["supervisor"] == "sup1", r.stdout)


def test_cancel(run):
    run.broker()
    fake(run)
    tid = run.ctl("spawn", "-", input=spec_text()).stdout.strip()
    r = run.ctl("cancel", tid + "/root/nosuch")
    check(r.returncode == 2 and "no node root/nosuch" in r.stderr, r.stderr)
    r = run.ctl("cancel", tid, "--wait", "--json")
    check(r.returncode == 4, "cancel --wait: exit %d %s" % (r.returncode, r.stderr))
    check(json.loads(r.stdout)["status"] == "cancelled", r.stdout)
    r = run.ctl("status", tid)
    check(r.returncode == 4, "status of a cancelled tree: exit %d" % r.returncode)
    tid = run.ctl("spawn", "-", input=spec_text()).stdout.strip()
    r = run.ctl("cancel", tid)
    check(r.returncode == 0 and "cancelling " + tid in r.stdout, r.stdout + r.stderr)


def test_watch_tree(run):
    run.broker()
    fake(run)
    tid = run.ctl("spawn", "-", input=spec_text("failed", 1500)).stdout.strip()
    t0 = time.monotonic()
    r = run.ctl("watch", tid, timeout=20)
    check(r.returncode == 1, "watch: exit %d %s" % (r.returncode, r.stderr))
    check(time.monotonic() - t0 < 5 * SLOW, "watch did not stop at done")
    lines = r.stdout.splitlines()
    check(any("root  phase exited" in l for l in lines), r.stdout)
    check(any("root  status failed" in l for l in lines), r.stdout)
    check(lines[-1].endswith(tid + "  -  tree failed"), r.stdout)
    # An ended tree: one "done" line at once.
    r = run.ctl("watch", tid, timeout=10)
    check(r.returncode == 1 and r.stdout.count("\n") == 1 and "tree failed" in r.stdout,
          r.stdout)
    # A lost "done" event: the status poll ends the watch.
    tid = run.ctl("spawn", "-", input=spec_text("ok", 500, no_done=True)).stdout.strip()
    r = run.ctl("watch", tid, timeout=20)
    check(r.returncode == 0 and "tree ok" in r.stdout, (r.returncode, r.stdout))


def test_watch_all_until_sigint(run):
    run.broker()
    fake(run)
    w = run.start("watch", [os.path.join(harness.BIN, "arborctl"), "watch"])
    # watch prints nothing until the first event, and its subscription may
    # not be in place yet: spawn until an event line shows up.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "phase running" not in run.log_of(w):
        run.ctl("spawn", "-", input=spec_text("ok", 100))
    check("phase running" in run.log_of(w), run.log_of(w))
    t0 = time.monotonic()
    w.send_signal(signal.SIGINT)
    rc = w.wait(timeout=5)
    check(rc == 0 and time.monotonic() - t0 < 1.5 * SLOW, "watch after SIGINT: %s in %.2fs" %
          (rc, time.monotonic() - t0))


def test_wait_interrupted(run):
    run.broker()
    fake(run)
    path = os.path.join(run.dir, "spec.json")
    with open(path, "w") as f:
        f.write(spec_text())
    w = run.start("waiter2", [os.path.join(harness.BIN, "arborctl"), "spawn", "--wait", path])
    run.wait_log(w, "waiting for it to end")
    t0 = time.monotonic()
    w.send_signal(signal.SIGINT)
    rc = w.wait(timeout=5)
    w.expect_death = True
    check(rc == 130 and time.monotonic() - t0 < 1.5 * SLOW, "wait after SIGINT: %s" % rc)
    check("keeps running" in run.log_of(w), run.log_of(w))


def test_usage_errors(run):
    for args, code in ((["bogus"], 2), ([], 2), (["--bogus", "peers"], 2),
                       (["spawn"], 2), (["spawn", "--wat", "x"], 2), (["status"], 2),
                       (["status", "a", "b"], 2), (["status", "bad id!"], 2),
                       (["cancel", "--timeout", "0", "--wait", "x"], 2), (["watch", "a", "b"], 2),
                       (["peers", "extra"], 2), (["--help"], 0), (["help"], 0),
                       (["spawn", "--help"], 0), (["status", "--help"], 0),
                       (["cancel", "--help"], 0), (["watch", "--help"], 0),
                       (["peers", "--help"], 0), (["list", "--help"], 0)):
        r = run.ctl(*args, timeout=10)
        check(r.returncode == code, "%s: exit %d, want %d: %s" % (args, r.returncode, code,
                                                                  r.stderr))
        out = r.stdout if code == 0 else r.stderr
        check("usage: arborctl" in out, "%s: no usage in %r" % (args, out))


if __name__ == "__main__":
    harness.main([test_spawn_prints_id, test_invalid_spec, test_wait_exit_codes,
                  test_wait_without_done_event, test_wait_timeout, test_broker_unreachable,
                  test_unknown_tree_and_no_supervisor, test_several_supervisors, test_cancel,
                  test_watch_tree, test_watch_all_until_sigint, test_wait_interrupted,
                  test_usage_errors])
