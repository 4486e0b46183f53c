"""The JSON Schemas of schema/ against what arbor really sends.

A broker started with --capture writes every frame it receives that parses as
JSON ("in") and every message of its own ("out") as a JSON line. A
representative run -- nested failing tree, exec nodes, subtree cancels with
escalation, status, list, logs, peers, watch, invalid specs, and deliberately bad
input from raw pyzmq DEALERs -- is driven through arborctl, then every
captured message is validated against envelope.json and msg.TYPE.json. The
only frames exempt are the malformed ones this test sent itself on purpose
(from the peer "schema-bad"), and those must be *rejected* by the schemas.

Also: every report arborctl printed validates against report.json; the spec
files under tests/ and the specs of this run validate against tree-spec.json;
known-bad specs are rejected by tree-spec.json *and* by the supervisor; and the
supervisor's answer to every captured spawn (spawned / invalid_spec) agrees
with tree-spec.json.

Every wait is on a reply, a capture line or a process exit, with a deadline."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import zmq
from jsonschema import Draft202012Validator, RefResolver

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, walk, TestFailure  # noqa: E402

SCHEMA_DIR = os.path.join(harness.SRC, "schema")
BASE = "https://arbor.invalid/schema/"
T = 10 * harness.SLOW  # deadline for one reply or one capture line
EXAMPLE = os.path.join(harness.BIN, "arbor-example-worker")
BAD = "schema-bad"  # the raw peer whose frames are malformed on purpose


# ---- schemas -----------------------------------------------------------------

class Schemas:
    def __init__(self):
        self.store = {}
        self.by_file = {}
        for path in sorted(glob.glob(os.path.join(SCHEMA_DIR, "*.json"))):
            with open(path) as f:
                schema = json.load(f)
            Draft202012Validator.check_schema(schema)
            name = os.path.basename(path)
            check(schema.get("$id") == BASE + name, "%s: $id %r, expected %r" %
                  (name, schema.get("$id"), BASE + name))
            check(schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema",
                  "%s: not a draft 2020-12 schema" % name)
            self.store[schema["$id"]] = schema
            self.by_file[name] = schema
        self.validators = {}
        self.types = self.by_file["envelope.json"]["properties"]["type"]["enum"]

    def errors(self, name, instance):
        v = self.validators.get(name)
        if v is None:
            schema = self.by_file[name]
            v = Draft202012Validator(schema, resolver=RefResolver.from_schema(schema, store=self.store))
            self.validators[name] = v
        return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)", e.message)
                for e in v.iter_errors(instance)]

    def message_errors(self, msg):
        errs = self.errors("envelope.json", msg)
        if errs:
            return errs
        return self.errors("msg.%s.json" % msg["type"], msg)


def c_only_violation(spec):
    """Rules of the tree spec that JSON Schema cannot state (the supervisor
    checks them): sibling names unique after count expansion, and
    NAME-(count-1) at most 64 characters."""
    kids = spec.get("children") if isinstance(spec, dict) else None
    if not isinstance(kids, list):
        return None
    names = []
    for k in kids:
        if not isinstance(k, dict) or not isinstance(k.get("name"), str):
            continue
        count = k.get("count")
        if isinstance(count, int) and count >= 1:
            names += ["%s-%d" % (k["name"], i) for i in range(min(count, 100000))]
            if len("%s-%d" % (k["name"], count - 1)) > 64:
                return "name too long with count: %s" % k["name"]
        else:
            names.append(k["name"])
    if len(names) != len(set(names)):
        return "sibling names not unique"
    for k in kids:
        why = c_only_violation(k)
        if why:
            return why
    return None


# ---- specs -------------------------------------------------------------------

NESTED_FAILING = {"name": "root", "children": [
    {"name": "spawner", "count": 2, "children": [
        {"name": "errorer", "run": "fail", "count": 2, "after_ms": 10,
         "error": {"type": "ValueError", "message": "leaf failed"}},
        {"name": "flood", "run": "flood", "bytes": 20000, "error": {"type": "FloodError", "message": "flooded"}},
        {"name": "sleeper", "run": "sleep"}]}]}

EXEC_TREE = {"name": "root", "children": [
    {"name": "lib", "run": "exec", "argv": [EXAMPLE, "30"]},
    {"name": "libfail", "run": "exec", "argv": [EXAMPLE, "60", "fail"], "env": {"SCHEMA_TEST": "1"}},
    {"name": "shell", "run": "exec", "argv": ["sh", "-c", "echo to-stderr >&2; exit 3"]},
    {"name": "ghost", "run": "exec", "argv": ["/nonexistent/arbor-prog"]},
    {"name": "crasher", "run": "crash", "signal": "SIGABRT", "after_ms": 40},
    {"name": "exit0", "run": "exit", "code": 0}]}

CANCEL_TREE = {"name": "root", "children": [
    {"name": "a", "children": [{"name": "w", "run": "sleep", "count": 2}]},
    {"name": "b", "run": "sleep"},
    {"name": "stuck", "run": "hang", "in": "running", "grace_ms": 50, "kill_after_ms": 100},
    {"name": "cleanup", "run": "hang", "in": "cleanup", "grace_ms": 50, "kill_after_ms": 100}]}

SHORT_TREE = {"name": "quick", "run": "sleep", "ms": 100}

SAY_TREE = {"name": "say", "run": "exec", "argv": ["sh", "-c", "echo to-stdout; echo to-stderr >&2"]}

INVALID_FOR_CLI = {"name": "root", "children": [{"name": "x", "run": "bogus"}]}

# Every key of every run kind: valid for the schema; spawned to check that
# the supervisor agrees (it ends by its own timeout, fast).
ALL_KINDS = {"name": "all", "timeout_ms": 300, "strategy": "one_for_one", "max_restarts": 3,
             "within_ms": 1000, "grace_ms": 0, "kill_after_ms": 50, "children": [
                 {"name": "sup", "run": "supervise", "strategy": "rest_for_one",
                  "children": [{"name": "s", "run": "sleep", "ms": 10000, "count": 2}]},
                 {"name": "f", "run": "fail", "after_ms": 5000, "error": {"type": "T", "message": "m", "extra": 1}},
                 {"name": "e", "run": "exit", "after_ms": 5000, "code": 255},
                 {"name": "c", "run": "crash", "after_ms": 5000, "signal": 11},
                 {"name": "c2", "run": "crash", "after_ms": 5000, "signal": "USR1"},
                 {"name": "h", "run": "hang", "in": "cleanup", "grace_ms": 10, "kill_after_ms": 10},
                 {"name": "fl", "run": "flood", "bytes": 0},
                 {"name": "x", "run": "exec", "argv": [EXAMPLE], "env": {"A": "b", "EMPTY": ""}},
                 {"name": "x2", "run": "exec", "argv": [EXAMPLE], "cwd": "/", "env_inherit": True}]}

# Rejected by tree-spec.json and by the supervisor (error invalid_spec).
BAD_SPECS = [
    {},
    {"name": "bad name!"},
    {"name": "x" * 65},
    {"name": 7},
    {"name": "r", "run": "bogus"},
    {"name": "r", "run": "sleep", "ms": -1},
    {"name": "r", "run": "sleep", "ms": 1.5},
    {"name": "r", "run": "sleep", "ms": 86400001},
    {"name": "r", "run": "sleep", "after_ms": 3},
    {"name": "r", "ms": 3},
    {"name": "r", "count": 2},
    {"name": "r", "children": [{"name": "c", "timeout_ms": 5}]},
    {"name": "r", "timeout_ms": 0},
    {"name": "r", "run": "exec"},
    {"name": "r", "run": "exec", "argv": []},
    {"name": "r", "run": "exec", "argv": [""]},
    {"name": "r", "run": "exec", "argv": ["x"], "env": {"A=B": "c"}},
    {"name": "r", "run": "exec", "argv": ["x"], "env": {"A": 1}},
    {"name": "r", "run": "exec", "argv": ["x"], "env": ["A"]},
    {"name": "r", "run": "crash", "signal": "SIGNOPE"},
    {"name": "r", "run": "crash", "signal": 65},
    {"name": "r", "run": "hang", "in": "limbo"},
    {"name": "r", "strategy": "random"},
    {"name": "r", "children": {"name": "c"}},
    {"name": "r", "children": [5]},
    {"name": "r", "children": [{"name": "c", "run": "fail", "error": {"type": "E"}}]},
    {"name": "r", "run": "fail", "error": "boom"},
    {"name": "r", "run": "exit", "code": 256},
    {"name": "r", "grace_ms": "100"},
    {"name": "r", "children": [{"name": "c", "count": 0}]},
    {"name": "r", "bogus_key": 1},
    {"name": "r", "run": "flood", "bytes": 2147483648},
    {"name": "r", "max_restarts": 1001},
    {"name": "r", "within_ms": 0},
    {"name": "r", "children": [{"name": "c", "children": [{"name": "d", "run": "sleep", "in": "running"}]}]},
    {"name": "r", "run": "crash", "signal": "SIGSTOP"},
    {"name": "r", "run": "crash", "signal": 18},
    {"name": "r", "run": "crash", "signal": "WINCH"},
    {"name": "r", "run": "exec", "argv": ["x"], "cwd": "relative/dir"},
    {"name": "r", "run": "exec", "argv": ["x"], "env_inherit": "no"},
    {"name": "r", "run": "exec", "argv": ["x"], "user": "-x"},
    {"name": "r", "run": "sleep", "cwd": "/"},
]
# Rejected by the supervisor only: rules JSON Schema cannot state.
C_ONLY_BAD_SPECS = [
    {"name": "r", "children": [{"name": "c"}, {"name": "c"}]},
    {"name": "r", "children": [{"name": "c", "count": 2}, {"name": "c-1"}]},
]


def spec_files():
    """JSON files under tests/, docker/ and examples/ that hold a tree spec:
    an object with a "name". Files named bad*/invalid* must be rejected.
    The fuzzers' corpora (tests/fuzz) are hostile on purpose: not specs."""
    found = []
    for top in ("tests", "docker", "examples"):
        for path in glob.glob(os.path.join(harness.SRC, top, "**", "*.json"), recursive=True):
            if os.sep + "fuzz" + os.sep in path:
                continue
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (ValueError, RecursionError):
                doc = None
            base = os.path.basename(path)
            bad = base.startswith("bad") or base.startswith("invalid")
            if isinstance(doc, dict) and "name" in doc or bad:
                found.append((path, doc, bad))
    return sorted(found, key=lambda x: x[0])


# ---- capture and raw peers -----------------------------------------------------

def is_type(line, type):
    return isinstance(line["msg"], dict) and line["msg"].get("type") == type


class Capture:
    def __init__(self, path):
        self.path = path
        self.size = 0  # bytes read by the last lines()

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        self.size = len(data)
        out = []
        # The broker may be writing a line right now: only complete lines count.
        for raw in data.split(b"\n")[:-1]:
            if raw.strip():
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    raise TestFailure("capture line is not JSON: %r" % raw[:300])
        return out

    def wait(self, pred, what, timeout=T):
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines():
                if pred(line):
                    return line
            if time.monotonic() >= deadline:
                raise TestFailure("capture: no %s within %.0fs" % (what, timeout))
            harness.wait_for_change(self.path, self.size, deadline)


class Peer:
    """A raw DEALER named by its routing id (None: ZeroMQ picks one)."""

    def __init__(self, run, name):
        if not hasattr(run, "ctx"):
            run.ctx = zmq.Context()
        self.sock = run.ctx.socket(zmq.DEALER)
        if name is not None:
            self.sock.setsockopt(zmq.IDENTITY, name.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(run.broker_ep)
        self.name = name
        self.next_id = 1
        self.malformed = []  # parsed frames sent on purpose that the schemas must reject
        self.aside = []  # messages received while waiting for a reply

    def close(self):
        self.sock.close(0)

    def envelope(self, to, type, body=None, re=None, **extra):
        mid = self.next_id
        self.next_id += 1
        env = {"v": 1, "type": type, "to": to, "id": mid, "re": re, "body": {} if body is None else body}
        env.update(extra)
        return mid, env

    def send(self, to, type, body=None, re=None, malformed=False, **extra):
        """Send an envelope; returns its id."""
        mid, env = self.envelope(to, type, body, re, **extra)
        self.send_env(env, malformed)
        return mid

    def send_env(self, env, malformed=False):
        self.sock.send(json.dumps(env).encode())
        if malformed:
            self.malformed.append(env)

    def send_raw(self, data, malformed=True):
        """A frame that may not be JSON at all."""
        self.sock.send(data)
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if malformed:
            self.malformed.append(doc)

    def recv(self, timeout=T):
        if not self.sock.poll(int(timeout * 1000)):
            raise TestFailure("%s: nothing received within %.0fs" % (self.name, timeout))
        frames = self.sock.recv_multipart()
        check(len(frames) == 2, "%s: %d frames" % (self.name, len(frames)))
        return frames[0].decode(), json.loads(frames[1])

    def reply(self, re, timeout=T):
        """The answer to message re (other traffic is kept aside)."""
        deadline = time.monotonic() + timeout
        while True:
            frm, env = self.recv(max(0.01, deadline - time.monotonic()))
            if env.get("re") == re:
                return frm, env
            self.aside.append((frm, env))

    def wait_for(self, pred, what, timeout=T):
        """The first message (kept aside or new) for which pred(env) holds."""
        for i, (frm, env) in enumerate(self.aside):
            if pred(env):
                del self.aside[i]
                return frm, env
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("%s: no %s within %.0fs" % (self.name, what, timeout))
            frm, env = self.recv(left)
            if pred(env):
                return frm, env
            self.aside.append((frm, env))

    def expect(self, re, type, code=None, sender="broker"):
        frm, env = self.reply(re)
        check(frm == sender and env["type"] == type, "%s: expected %s from %s for #%s, got %s from %s" %
              (self.name, type, sender, re, env, frm))
        if code:
            check(env["body"].get("code") == code, "%s: expected error %s, got %s" %
                  (self.name, code, env["body"]))
        return env

    def request(self, to, type, body=None, expect=None, code=None, sender=None, malformed=False):
        mid = self.send(to, type, body, malformed=malformed)
        return self.expect(mid, expect, code, sender or to)


# ---- the run -------------------------------------------------------------------

def ctl_json(run, what, *args, codes=(0,), input=None):
    r = run.ctl(*args, input=input, timeout=30)
    check(r.returncode in codes, "arborctl %s: exit %d, expected %s\nstdout: %s\nstderr: %s" %
          (what, r.returncode, codes, r.stdout[-2000:], r.stderr[-2000:]))
    try:
        return json.loads(r.stdout) if "--json" in args else r.stdout
    except ValueError:
        raise TestFailure("arborctl %s printed no JSON:\n%s\n%s" % (what, r.stdout, r.stderr))


def check_report(schemas, report, what):
    errs = schemas.errors("report.json", report)
    check(not errs, "report of %s does not validate against report.json:\n  %s\n%s" %
          (what, "\n  ".join(errs[:10]), json.dumps(report)[:3000]))


def drive_cli(run, schemas, cap, reports):
    """The arborctl part of the run; every --json report goes to reports."""
    code, rep = run.spawn_wait(NESTED_FAILING, timeout=30)
    check(code == 1 and rep and rep["status"] == "failed", "nested tree: exit %d, %r" % (code, rep and rep["status"]))
    check(rep["root"]["error"]["type"] == "ChildrenFailed", "nested root error %r" % rep["root"]["error"])
    reports.append(("nested failing tree", rep))

    code, rep = run.spawn_wait(EXEC_TREE, timeout=30)
    check(code == 1 and rep["status"] == "failed", "exec tree: exit %d, %s" % (code, rep and rep["status"]))
    nodes = harness.by_path(rep)
    check(nodes["root/ghost"]["status"] == "spawn_failed", "ghost %s" % nodes["root/ghost"]["status"])
    reports.append(("exec tree", rep))
    # logs: the request and its reply, with lines (a tree of its own: in
    # EXEC_TREE a sibling's failure may stop the shell before it writes).
    code, rep = run.spawn_wait(SAY_TREE, timeout=30)
    check(code == 0, "say tree: exit %d" % code)
    reports.append(("say tree", rep))
    r = run.ctl("logs", "--json", rep["tree"] + "/say", timeout=30)
    check(r.returncode == 0 and "to-stderr" in r.stdout and "to-stdout" in r.stdout,
          "logs: exit %d\n%s\n%s" % (r.returncode, r.stdout, r.stderr))

    # A tree to cancel piece by piece, watched live.
    r = run.ctl("spawn", "-", input=json.dumps(CANCEL_TREE), timeout=30)
    check(r.returncode == 0 and r.stdout.strip(), "spawn: %d %s" % (r.returncode, r.stderr))
    tree = r.stdout.strip()
    rep = ctl_json(run, "cancel subtree a", "cancel", "--wait", "--json", tree + "/root/a", codes=(4,))
    check(harness.by_path(rep)["root/a"]["status"] == "cancelled", "root/a %s" % harness.by_path(rep)["root/a"]["status"])
    reports.append(("cancel root/a", rep))
    rep = ctl_json(run, "cancel stuck", "cancel", "--wait", "--json", tree + "/root/stuck", codes=(4,))
    stuck = harness.by_path(rep)["root/stuck"]
    check(stuck["status"] == "killed" and stuck["escalation"], "stuck %r" % stuck)
    reports.append(("cancel root/stuck", rep))
    rep = ctl_json(run, "cancel cleanup", "cancel", "--wait", "--json", tree + "/root/cleanup", codes=(4,))
    reports.append(("cancel root/cleanup", rep))
    rep = ctl_json(run, "status", "status", "--json", tree)
    check(rep["status"] == "running", "tree %s should still run (root/b sleeps): %s" % (tree, rep["status"]))
    reports.append(("status of a running tree", rep))
    ctl_json(run, "status (text)", "status", tree)
    listed = ctl_json(run, "list", "list", "--json")
    check(any(t.get("tree") == tree for t in listed.get("trees", [])), "list lacks %s: %r" % (tree, listed))
    peers = ctl_json(run, "peers", "peers", "--json")
    errs = schemas.errors("msg.peers.json", {"v": 1, "type": "peers", "to": "x", "id": 1, "re": 1, "body": peers})
    check(not errs, "peers --json is not a peers reply body: %s" % errs)
    ctl_json(run, "peers (text)", "peers")

    watch = subprocess.Popen([os.path.join(harness.BIN, "arborctl"), "--broker", run.broker_ep, "watch", tree],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run.env)
    try:
        prefix = "ctl-%d-" % watch.pid
        cap.wait(lambda l: l["dir"] == "out" and l["msg"]["type"] == "subscribed" and
                 l["msg"]["to"].startswith(prefix) and "tree/" + tree in l["msg"]["body"].get("topics", []),
                 "subscription of the watch")
        rep = ctl_json(run, "cancel tree", "cancel", "--wait", "--json", tree, codes=(4,))
        check(rep["status"] == "cancelled" and rep.get("reason") == "cancel", "cancelled tree %r" % rep.get("status"))
        reports.append(("cancel whole tree", rep))
        out, err = watch.communicate(timeout=T)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    check(watch.returncode == 4, "watch exited %d (expected 4, cancelled):\n%s\n%s" % (watch.returncode, out, err))
    check(tree in out and "root/b" in out, "watch printed no events of root/b:\n%s" % out)

    r = run.ctl("spawn", "-", input=json.dumps(SHORT_TREE), timeout=30)
    check(r.returncode == 0, "spawn short: %d %s" % (r.returncode, r.stderr))
    short = r.stdout.strip()
    r = run.ctl("watch", short, timeout=30)
    check(r.returncode == 0, "watch of a short tree exited %d:\n%s\n%s" % (r.returncode, r.stdout, r.stderr))
    reports.append(("short tree", ctl_json(run, "status short", "status", "--json", short)))

    r = run.ctl("spawn", "--wait", "-", input=json.dumps(INVALID_FOR_CLI), timeout=30)
    check(r.returncode == 2 and "invalid spec" in r.stderr, "invalid spec: exit %d %s" % (r.returncode, r.stderr))
    r = run.ctl("spawn", "-", input="{not json", timeout=30)
    check(r.returncode == 2, "spec that is not JSON: exit %d" % r.returncode)


def drive_raw(run, schemas, cap):
    """Raw DEALERs: the broker messages arborctl never sends, and bad input."""
    good = Peer(run, "schema-good")
    good.request("broker", "hello", {"role": "client", "incarnation": "schema-good-1"}, "welcome")
    good.request("broker", "subscribe", {"topics": ["peers", "tree/all-kinds"]}, "subscribed")
    good.request("broker", "subscribe", {"topics": ["tree/"]}, "subscribed")
    env = good.request("broker", "unsubscribe", {"topics": ["tree/"]}, "subscribed")
    check(sorted(env["body"]["topics"]) == ["peers", "tree/all-kinds"], "topics left %r" % env["body"])
    good.send("broker", "heartbeat")
    good.request("broker", "stats", None, "stats")
    good.request("broker", "peers", None, "peers")
    good.request("sup1", "status", {"tree": "no-such-tree"}, "error", "not_found")
    good.request("sup1", "cancel", {"tree": "no-such-tree"}, "error", "not_found")
    good.request("sup1", "list", None, "trees")
    good.request("nobody-here", "status", {"tree": "t"}, "error", "unknown_destination", sender="broker")
    # A type a supervisor does not handle, well formed.
    mid = good.send("sup1", "welcome", {"broker": "x", "heartbeat_ms": 1000, "expiry_ms": 5000}, re=1)
    good.expect(mid, "error", "bad_request", sender="sup1")
    # A tree id picked by the client, used twice.
    good.request("sup1", "spawn", {"spec": ALL_KINDS, "tree": "all-kinds"}, "spawned")
    good.request("sup1", "spawn", {"spec": {"name": "r"}, "tree": "all-kinds"}, "error", "bad_request")
    good.request("sup1", "cancel", {"tree": "all-kinds", "path": "all/nope"}, "error", "not_found")
    for spec in BAD_SPECS + C_ONLY_BAD_SPECS:
        env = good.request("sup1", "spawn", {"spec": spec}, "error", "invalid_spec")
        if spec in BAD_SPECS:
            check(schemas.errors("tree-spec.json", spec),
                  "tree-spec.json accepts a spec the supervisor rejects (%s): %s" % (env["body"], json.dumps(spec)))
        else:
            check(c_only_violation(spec), "c_only_violation misses %s" % json.dumps(spec))
    # The all-kinds tree ends by its timeout: wait for its "done" event.
    _, env = good.wait_for(lambda e: e["type"] == "event" and e["body"].get("kind") == "done" and
                           e["body"].get("tree") == "all-kinds", "done event of all-kinds")
    check(env["body"]["status"] in ("cancelled", "failed"), "all-kinds ended %s" % env["body"])

    # A peer that talks before hello, and one without a routing id.
    late = Peer(run, "schema-late")
    mid = late.send("broker", "heartbeat")
    late.expect(mid, "error", "unknown_session")
    anon = Peer(run, None)
    mid = anon.send("broker", "heartbeat")
    anon.expect(mid, "error", "unknown_session")

    bad = Peer(run, BAD)
    bad.send_raw(b"this is not JSON")
    bad.expect(None, "error", "bad_json")
    bad.send_raw(b"[1,2]")
    bad.expect(None, "error", "bad_envelope")
    bad.send_raw(b"x" * 300000)
    bad.expect(None, "error", "too_large")
    bad.sock.send_multipart([b'{"v":1}', b"second frame"])
    bad.malformed.append({"v": 1})
    bad.expect(None, "error", "bad_envelope")
    cases = [  # (envelope, error code): every one is malformed for the schemas
        ({"v": 2, "type": "heartbeat", "to": "broker", "id": 1, "re": None, "body": {}}, "bad_envelope"),
        ({"v": 1, "type": "heartbeat", "to": "broker", "id": -2, "re": None, "body": {}}, None),
        ({"v": 1, "type": "heartbeat", "to": "broker", "id": 3, "re": None, "body": []}, "bad_envelope"),
        ({"v": 1, "type": "heartbeat", "to": "", "id": 4, "re": None, "body": {}}, "bad_envelope"),
        ({"v": 1, "type": "bogus", "to": "broker", "id": 5, "re": None, "body": {}}, "unknown_type"),
        ({"v": 1, "type": "hello", "to": "broker", "id": 6, "re": None,
          "body": {"role": "emperor", "incarnation": "x"}}, "bad_request"),
        ({"v": 1, "type": "hello", "to": "broker", "id": 7, "re": None,
          "body": {"role": "client", "incarnation": "has space"}}, "bad_request"),
        # Workers are never broker peers: no worker role, no node_* types
        # (they talk to their supervisor over their notify fd).
        ({"v": 1, "type": "hello", "to": "broker", "id": 9, "re": None,
          "body": {"role": "worker", "incarnation": "x"}}, "bad_request"),
        ({"v": 1, "type": "node_phase", "to": "broker", "id": 10, "re": None,
          "body": {"phase": "ready"}}, "unknown_type"),
        ({"v": 1, "type": "node_cancel", "to": "broker", "id": 11, "re": None,
          "body": {"reason": "cancel"}}, "unknown_type"),
        ({"v": 1, "type": "node_children_exited", "to": "broker", "id": 12, "re": None,
          "body": {}}, "unknown_type"),
        ({"v": 1, "type": "heartbeat", "to": "broker", "id": 8, "re": None, "body": {},
          "from": "someone-else"}, "spoofed_sender"),
    ]
    for env, code in cases:
        bad.send_env(env, malformed=True)
        bad.expect(env["id"] if env["id"] >= 0 else None, "error", code or "bad_envelope")
    bad.request("broker", "hello", {"role": "client", "incarnation": "schema-bad-1"}, "welcome")
    bad.request("broker", "subscribe", {"topics": "peers"}, "error", "bad_request", malformed=True)
    bad.request("broker", "subscribe", {"topics": ["with space"]}, "error", "bad_request", malformed=True)
    bad.request("broker", "spawn", {"spec": {"name": "r"}}, "error", "bad_request", malformed=True)
    bad.request("sup1", "spawn", {"spec": {"name": "r"}, "tree": "bad id!"}, "error", "bad_request", malformed=True)
    bad.request("sup1", "spawn", {}, "error", "invalid_spec", malformed=True)
    bad.request("sup1", "spawn", {"spec": 42}, "error", "invalid_spec", malformed=True)
    bad.request("sup1", "status", {}, "error", "not_found", malformed=True)
    bad.request("sup1", "list", {"extra": 1}, "trees", malformed=True)
    # Registered, it still cannot send the old worker types to a supervisor.
    bad.request("sup1", "node_phase", {"phase": "exited"}, "error", "unknown_type", sender="broker",
                malformed=True)
    bad.request("broker", "peers", None, "peers")

    good.send("broker", "bye")
    bad.send("broker", "bye")
    cap.wait(lambda l: l["dir"] == "in" and l["from"] == BAD and is_type(l, "bye"), "bye of " + BAD)
    malformed = bad.malformed
    for p in (good, late, anon, bad):
        p.close()
    return malformed


def test_schemas_are_complete(run):
    """One schema per message type of env.c and PROTOCOL.md, all valid 2020-12."""
    schemas = Schemas()
    with open(os.path.join(harness.SRC, "common", "env.c")) as f:
        src = f.read()
    table = re.search(r"s_types\[\]\s*=\s*\{(.*?)NULL\}", src, re.S)
    check(table, "cannot find s_types in common/env.c")
    c_types = re.findall(r'"([a-z_]+)"', table.group(1))
    check(sorted(c_types) == sorted(schemas.types),
          "envelope.json types %s differ from common/env.c %s" % (sorted(schemas.types), sorted(c_types)))
    with open(os.path.join(harness.SRC, "docs", "PROTOCOL.md")) as f:
        doc = f.read()
    for t in schemas.types:
        check("msg.%s.json" % t in schemas.by_file, "no schema/msg.%s.json" % t)
        check(re.search(r"`%s\b" % t, doc), "PROTOCOL.md does not mention `%s`" % t)
        check(schemas.by_file["msg.%s.json" % t]["properties"]["type"] == {"const": t},
              "msg.%s.json does not pin type" % t)
    extra = [n for n in schemas.by_file if n.startswith("msg.") and n[4:-5] not in schemas.types]
    check(not extra, "schemas for unknown types: %s" % extra)
    for name in ("tree-spec.json", "report.json", "defs.json", "README.md"):
        check(os.path.exists(os.path.join(SCHEMA_DIR, name)), "schema/%s missing" % name)


def test_tree_spec_schema(run):
    """Spec files and known specs validate; known-bad specs are rejected."""
    schemas = Schemas()
    good = [NESTED_FAILING, EXEC_TREE, CANCEL_TREE, SHORT_TREE, SAY_TREE, ALL_KINDS]
    try:
        import test_trees
        good += [test_trees.fanout(d) for d in range(4)]
    except (ImportError, AttributeError):
        pass
    for spec in good:
        errs = schemas.errors("tree-spec.json", spec)
        check(not errs, "tree-spec.json rejects a good spec: %s\n%s" % (errs, json.dumps(spec)))
    for spec in BAD_SPECS:
        check(schemas.errors("tree-spec.json", spec), "tree-spec.json accepts a bad spec: %s" % json.dumps(spec))
    check(schemas.errors("tree-spec.json", INVALID_FOR_CLI), "tree-spec.json accepts run: bogus")
    for spec in C_ONLY_BAD_SPECS:
        check(not schemas.errors("tree-spec.json", spec) and c_only_violation(spec),
              "C-only rule: %s" % json.dumps(spec))
    files = spec_files()
    for path, doc, bad in files:
        errs = schemas.errors("tree-spec.json", doc) if doc is not None else ["not JSON"]
        if not errs and not bad:
            errs = [c_only_violation(doc)] if c_only_violation(doc) else []
        if bad:
            check(errs or c_only_violation(doc), "%s should be rejected by tree-spec.json" % path)
        else:
            check(not errs, "%s does not validate against tree-spec.json:\n  %s" % (path, "\n  ".join(errs[:10])))
    print("  tree-spec.json: %d spec files under tests/, docker/ and examples/, %d known good, %d known bad" %
          (len(files), len(good), len(BAD_SPECS) + len(C_ONLY_BAD_SPECS)))


def test_every_captured_message_validates(run):
    schemas = Schemas()
    cap_path = os.path.join(run.dir, "capture.jsonl")
    cap = Capture(cap_path)
    broker = run.broker("--capture", cap_path, "--max-msg", "262144")
    sup = run.supervisor("sup1")
    reports = []
    drive_cli(run, schemas, cap, reports)
    malformed = drive_raw(run, schemas, cap)

    # Stop the supervisor (its bye is the last message it sends), then the
    # broker, which closes the capture: what is read next is complete.
    sup.send_signal(signal.SIGTERM)
    sup.wait(timeout=T)
    cap.wait(lambda l: l["dir"] == "in" and l["from"] == "sup1" and is_type(l, "bye"), "bye of sup1")
    broker.send_signal(signal.SIGTERM)
    broker.wait(timeout=T)
    check(broker.returncode == 0, "the broker exited %s on SIGTERM" % broker.returncode)

    for what, rep in reports:
        check_report(schemas, rep, what)

    lines = cap.lines()
    seen = {}
    failures = []
    bad_frames = [json.dumps(m, sort_keys=True) for m in malformed]
    rejected = set()
    spawns = {}
    for n, line in enumerate(lines, 1):
        check(set(line) == {"from", "dir", "msg"} and line["dir"] in ("in", "out"),
              "capture line %d has the wrong shape: %r" % (n, line))
        msg = line["msg"]
        if line["dir"] == "out":
            check(line["from"] == "broker", "line %d: out from %r" % (n, line["from"]))
        if line["from"] == BAD and json.dumps(msg, sort_keys=True) in bad_frames:
            key = json.dumps(msg, sort_keys=True)
            if isinstance(msg, dict) and not schemas.message_errors(msg):
                failures.append("line %d: a malformed frame sent on purpose validates: %s" % (n, key))
            rejected.add(key)
            continue
        errs = schemas.message_errors(msg) if isinstance(msg, dict) else ["not an object"]
        if errs:
            failures.append("line %d (%s %s): %s\n    %s" % (n, line["dir"], line["from"], json.dumps(msg)[:600],
                                                           "\n    ".join(errs[:6])))
            continue
        seen[msg["type"]] = seen.get(msg["type"], 0) + 1
        if msg["type"] == "event":
            check(msg["to"] == "topic:" + msg["body"]["topic"], "line %d: event to %s, topic %s" %
                  (n, msg["to"], msg["body"]["topic"]))
        if msg["type"] == "spawn" and line["dir"] == "in":
            spawns[(line["from"], msg["id"])] = msg["body"]["spec"]
        if msg["type"] in ("spawned", "error") and line["from"] == "sup1" and (msg["to"], msg["re"]) in spawns:
            spec = spawns[(msg["to"], msg["re"])]
            spec_errs = schemas.errors("tree-spec.json", spec)
            if msg["type"] == "spawned" and spec_errs:
                failures.append("line %d: the supervisor accepted a spec that tree-spec.json rejects: %s\n    %s" %
                                (n, json.dumps(spec)[:600], "\n    ".join(spec_errs[:6])))
            if msg["body"].get("code") == "invalid_spec" and not spec_errs and not c_only_violation(spec):
                failures.append("line %d: the supervisor rejected (%s) a spec that tree-spec.json accepts: %s" %
                                (n, msg["body"]["message"], json.dumps(spec)[:600]))
    missing = [m for m in bad_frames if m not in rejected]
    check(not missing, "malformed frames not in the capture: %s" % missing)
    check(not failures, "%d captured messages do not validate:\n%s" % (len(failures), "\n".join(failures[:25])))
    not_seen = [t for t in schemas.types if not seen.get(t)]
    check(not not_seen, "no valid message of type %s was captured (seen: %s)" % (not_seen, seen))
    print("  %d capture lines: %d valid messages of %d types, %d malformed frames rejected, %d reports" %
          (len(lines), sum(seen.values()), len(seen), len(rejected), len(reports)))


if __name__ == "__main__":
    harness.main([test_schemas_are_complete, test_tree_spec_schema, test_every_captured_message_validates])
