"""Load: many trees at once on one supervisor, many supervisors on one
broker, and a peer flooding the broker with garbage while trees run.

What must hold under load: nothing stalls (every tree ends within its hang
guard), heartbeats hold (no supervisor or client expires, no supervisor is
lost: a crashed or killed worker cannot say bye, so its expiry is right), no
peer without a session can keep others from registering, and no
legitimate message is lost: every report is complete, every node has the
one terminal status its spec calls for (a lost cancel would turn a
`cancelled` node into `killed` after its long grace; a lost phase or
report would leave a node `running` or the report missing).

Each tree is spawned by its own `arborctl spawn --wait --json`, all at once;
waits are on process exits and socket replies, with deadlines. The numbers
(trees, wall time, flood volume, broker counters) are printed, and
docs/RELIABILITY.md records them."""

import json
import os
import subprocess
import threading
import time

import zmq

from harness import SLOW, BIN, TestFailure, by_path, check, main, validate_report

HANG_GUARD = 30  # seconds per batch of trees (scaled by ARBOR_TEST_SLOW): a hang guard
LONG_GRACE = 15000  # ms: a cancelled node that needs SIGTERM here lost a message
TERMINAL = {"ok", "failed", "cancelled", "killed", "spawn_failed", "lost"}


# ------------------------------------------------------------- the trees ----
# Five kinds of ten-node trees, each with one deterministic outcome per node.

def _bystanders(count, per):
    """count middle nodes, each holding per sleepers: cancelled when a sibling fails."""
    return {"name": "mid", "count": count, "grace_ms": LONG_GRACE,
            "children": [{"name": "w", "run": "sleep", "count": per, "grace_ms": LONG_GRACE}]}


def tree_spec(kind, i):
    """(spec, expectations): expectations maps a path prefix to a status."""
    tag = "LoadError%d" % i
    if kind == "ok":
        spec = {"name": "root", "children": [
            {"name": "mid", "count": 3, "children": [
                {"name": "w", "run": "sleep", "ms": 100, "count": 2}]}]}
        return spec, {"": "ok"}
    if kind == "fail":
        spec = {"name": "root", "grace_ms": LONG_GRACE, "children": [
            {"name": "bad", "run": "fail", "after_ms": 100,
             "error": {"type": tag, "message": "tree %d failed on purpose" % i}},
            _bystanders(2, 3)]}
        return spec, {"root": "failed", "root/bad": "failed", "root/mid": "cancelled"}
    if kind == "crash":
        spec = {"name": "root", "grace_ms": LONG_GRACE, "children": [
            {"name": "segv", "run": "crash", "after_ms": 100}, _bystanders(2, 3)]}
        return spec, {"root": "failed", "root/segv": "failed", "root/mid": "cancelled"}
    if kind == "exit":
        spec = {"name": "root", "grace_ms": LONG_GRACE, "children": [
            {"name": "x", "run": "exit", "code": 3, "after_ms": 100}, _bystanders(2, 3)]}
        return spec, {"root": "failed", "root/x": "failed", "root/mid": "cancelled"}
    if kind == "stuck":
        spec = {"name": "root", "grace_ms": LONG_GRACE, "children": [
            {"name": "stuck", "run": "hang", "in": "cleanup", "grace_ms": 200,
             "kill_after_ms": 200},
            {"name": "bad", "run": "fail", "after_ms": 100,
             "error": {"type": tag, "message": "tree %d failed on purpose" % i}},
            _bystanders(1, 6)]}
        return spec, {"root": "failed", "root/bad": "failed", "root/stuck": "killed",
                      "root/mid": "cancelled"}
    raise ValueError(kind)


KINDS = ["ok", "fail", "crash", "exit", "stuck"]


def _matches(prefix, path):
    """prefix "root/mid" matches root/mid, root/mid-1 (count) and their subtrees."""
    want, got = prefix.split("/"), path.split("/")
    if not prefix:
        return True
    if len(got) < len(want):
        return False
    for w, g in zip(want, got):
        if g != w and not (g.startswith(w + "-") and g[len(w) + 1:].isdigit()):
            return False
    return True


def expected_status(expect, path):
    """The status of the longest prefix of expect that matches path."""
    best = max((p for p in expect if _matches(p, path)), key=len)
    return expect[best]


def check_report(what, kind, i, code, report, supervisor=None):
    """Every node present, terminal, with the status its kind calls for."""
    _, expect = tree_spec(kind, i)
    check(report is not None, "%s: no report (exit %s)" % (what, code))
    validate_report(report)
    nodes = by_path(report)
    check(len(nodes) == 10, "%s: %d nodes in the report, not 10" % (what, len(nodes)))
    if supervisor:
        check(report["supervisor"] == supervisor, "%s: ran on %s, not %s" %
              (what, report["supervisor"], supervisor))
    for path, n in nodes.items():
        want = expected_status(expect, path)
        check(n["status"] in TERMINAL, "%s: %s is %s" % (what, path, n["status"]))
        check(n["status"] == want, "%s (%s): %s is %s, not %s (error %r, escalation %r)" %
              (what, kind, path, n["status"], want, n["error"], n["escalation"]))
    if kind == "ok":
        check(code == 0 and report["status"] == "ok", "%s: exit %s, %s" % (what, code, report["status"]))
        return
    check(code == 1 and report["status"] == "failed", "%s: exit %s, %s" % (what, code, report["status"]))
    root = report["root"]
    check(root["error"]["type"] == "ChildrenFailed" and root["error"]["failed_children"] == 1,
          "%s: root error %r" % (what, root["error"]))
    if kind in ("fail", "stuck"):
        e = nodes["root/bad"]["error"]
        check(e and e["type"] == "LoadError%d" % i, "%s: bad lost its error: %r" % (what, e))
    if kind == "crash":
        n = nodes["root/segv"]
        check(n["exit"]["signal"] == "SIGSEGV" and n["error"]["type"] == "KilledBySignal",
              "%s: segv %r %r" % (what, n["exit"], n["error"]))
    if kind == "exit":
        check(nodes["root/x"]["exit"]["code"] == 3, "%s: x exit %r" % (what, nodes["root/x"]["exit"]))
    if kind == "stuck":
        esc = nodes["root/stuck"]["escalation"]
        check(esc and esc["signals"][0] == "SIGTERM", "%s: stuck escalation %r" % (what, esc))


# --------------------------------------------------- many arborctl at once ----

def spawn_all(run, jobs):
    """jobs: [(label, spec, extra arborctl args)]. Starts one
    `arborctl spawn --wait --json` per job, all at once; returns the running
    processes (stdout and stderr in files of the run dir)."""
    procs = []
    for label, spec, extra in jobs:
        spec_path = os.path.join(run.dir, "%s.spec.json" % label)
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        out = open(os.path.join(run.dir, "%s.out" % label), "wb")
        err = open(os.path.join(run.dir, "%s.err" % label), "wb")
        argv = [os.path.join(BIN, "arborctl"), "--broker", run.broker_ep, "spawn", "--wait",
                "--json"] + list(extra) + [spec_path]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=run.env)
        out.close()
        err.close()
        p.label = label
        procs.append(p)
    return procs


def collect(run, procs, deadline):
    """Wait for every arborctl (each by the shared deadline); returns
    {label: (exit code, report)}. A stalled tree fails the test here."""
    results = {}
    for p in procs:
        left = deadline - time.monotonic()
        try:
            p.wait(timeout=max(0.1, left))
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    q.kill()
                    q.wait()
            raise TestFailure("%s did not end within the hang guard" % p.label)
        with open(os.path.join(run.dir, "%s.out" % p.label)) as f:
            text = f.read()
        try:
            report = json.loads(text) if text.strip() else None
        except ValueError:
            raise TestFailure("%s: arborctl printed no JSON (exit %d): %r" %
                              (p.label, p.returncode, text[:300]))
        if report is None:
            with open(os.path.join(run.dir, "%s.err" % p.label)) as f:
                raise TestFailure("%s: no report, exit %d: %s" % (p.label, p.returncode, f.read()))
        results[p.label] = (p.returncode, report)
    return results


def summary(what, results, t0):
    durations = sorted(r["duration_ms"] for _, r in results.values())
    print("%s: %d trees, %d nodes, all complete in %.1f s wall; tree duration_ms median %d, "
          "max %d" % (what, len(results), sum(len(by_path(r)) for _, r in results.values()),
                      time.monotonic() - t0, durations[len(durations) // 2], durations[-1]),
          flush=True)


# ----------------------------------------------------------- broker peer ----

class Watcher:
    """A registered client DEALER: asks the broker for stats and listens to
    topic "peers", to see any peer lost while load runs."""

    def __init__(self, run, ctx, name="load-watch"):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, name.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(run.broker_ep)
        self.next_id = 1
        self.lost = []  # peer_lost events seen
        self.request("hello", {"role": "client", "incarnation": "load"})
        self.request("subscribe", {"topics": ["peers"]})

    def request(self, type, body=None, timeout=10):
        """Send to the broker and wait for the reply (events are recorded)."""
        mid = self.next_id
        self.next_id += 1
        self.sock.send(json.dumps({"v": 1, "type": type, "to": "broker", "id": mid, "re": None,
                                   "body": body or {}}).encode())
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                raise TestFailure("broker did not answer %s within %ss" % (type, timeout * SLOW))
            frames = self.sock.recv_multipart()
            env = json.loads(frames[-1])
            if env["type"] == "event":
                if env["body"].get("kind") == "peer_lost":
                    self.lost.append(env["body"])
                continue
            if env["re"] == mid:
                check(env["type"] != "error", "broker answered %s with %s" % (type, env["body"]))
                return env

    def stats(self):
        return self.request("stats")["body"]

    def probe_while(self, procs, deadline):
        """While any of procs runs (until deadline): ask the broker for its
        peers again and again, each request waiting for its reply. It keeps
        this peer alive and measures how promptly a legitimate request is
        served. Returns the round-trip times (s)."""
        latencies = []
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            t = time.monotonic()
            self.request("peers")
            latencies.append(time.monotonic() - t)
            self.sock.poll(50)  # paces the probe; an event arriving ends it early
        return latencies


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def expired_daemons(watch):
    """Peers other than workers that the broker expired. A worker that
    crashed or was killed cannot say bye: the broker expiring it is right."""
    return [e for e in watch.lost if e["reason"] == "expired" and e["role"] != "worker"]


# ----------------------------------------------------------------- tests ----

def test_50_trees_on_one_supervisor(run):
    run.broker()
    run.supervisor("sup1")
    jobs = []
    for i in range(50):
        kind = KINDS[i % len(KINDS)]
        jobs.append(("t%02d-%s" % (i, kind), tree_spec(kind, i)[0], []))
    t0 = time.monotonic()
    procs = spawn_all(run, jobs)
    results = collect(run, procs, t0 + HANG_GUARD * SLOW)
    for label, (code, report) in results.items():
        i, kind = int(label[1:3]), label.split("-", 1)[1]
        check_report(label, kind, i, code, report, "sup1")
    summary("50 trees on one supervisor", results, t0)


def test_10_supervisors_on_one_broker(run):
    run.broker()
    sups = ["sup%d" % k for k in range(10)]
    for name in sups:
        run.supervisor(name)
    ctx = zmq.Context()
    try:
        watch = Watcher(run, ctx)
        st = watch.stats()
        check(st["peers_by_role"]["supervisor"] == 10, "supervisors: %s" % st["peers_by_role"])
        jobs = []
        for i in range(40):
            kind = KINDS[i % len(KINDS)]
            sup = sups[i % 10]
            jobs.append(("t%02d-%s-%s" % (i, kind, sup), tree_spec(kind, i)[0],
                         ["--supervisor", sup]))
        t0 = time.monotonic()
        procs = spawn_all(run, jobs)
        watch.probe_while(procs, t0 + HANG_GUARD * SLOW)
        results = collect(run, procs, t0 + HANG_GUARD * SLOW)
        for label, (code, report) in results.items():
            i, kind, sup = label[1:3], label.split("-")[1], label.split("-")[2]
            check_report(label, kind, int(i), code, report, sup)
        summary("40 trees on 10 supervisors", results, t0)
        st = watch.stats()
        check(not expired_daemons(watch), "expired: %r" % expired_daemons(watch))
        check(st["peers_by_role"]["supervisor"] == 10, "supervisors: %s" % st["peers_by_role"])
        check(not [e for e in watch.lost if e["role"] == "supervisor"],
              "supervisors lost: %r" % watch.lost)
    finally:
        ctx.destroy(linger=0)


# The garbage a hostile or broken peer sends; every kind of bad input of
# docs/PROTOCOL.md's error table, plus bad requests to the supervisors.
def garbage(i, sups):
    k = i % 16
    sup = sups[i % len(sups)]
    env = {"v": 1, "type": "status", "to": sup, "id": i, "re": None, "body": {}}
    if k == 0:
        return [b"not json at all %d" % i]
    if k == 1:
        return [b'{"v":1,"type":"peers","to":"broker","id":%d' % i]  # truncated
    if k == 2:
        return [b"[" * 3000 + b"]" * 3000]
    if k == 3:
        return [json.dumps(dict(env, v=2)).encode()]  # bad envelope
    if k == 4:
        return [json.dumps(dict(env, type="frobnicate")).encode()]  # unknown type
    if k == 5:
        return [json.dumps(dict(env, to="nobody-%d" % i)).encode()]  # unknown destination
    if k == 6:
        return [json.dumps(env).encode(), b"second frame"]  # multi-frame
    if k == 7:
        return [json.dumps(dict(env, **{"from": "sup0"})).encode()]  # spoofed sender
    if k == 8:
        return [json.dumps(dict(env, type="spawn", body={"spec": {"name": "bad name"}})).encode()]
    if k == 9:
        return [json.dumps(dict(env, type="spawn", body={"spec": "not an object"})).encode()]
    if k == 10:
        return [json.dumps(dict(env, body={"tree": "no-such-tree"})).encode()]
    if k == 11:
        return [json.dumps(dict(env, type="cancel", body={"tree": "no-such-tree",
                                                          "path": "root/x"})).encode()]
    if k == 12:
        return [json.dumps(dict(env, type="node_phase", body={"phase": "exited"})).encode()]
    if k == 13:
        return [json.dumps(dict(env, type="event", to="topic:tree/x", body={})).encode()]
    if k == 14:
        return [json.dumps(dict(env, body={"pad": "x" * 20000})).encode()]  # too_large
    return [json.dumps(dict(env, type="subscribe", to="broker",
                            body={"topics": [{"a": 1}, "has space"]})).encode()]


class Flooder(threading.Thread):
    """One garbage-sending DEALER, at rate messages a second until told to
    stop or count is reached. name None: a routing id ZeroMQ generates;
    hello: register first (as a client). Sends never block (a full queue
    skips); replies are never read (the broker must cope with a peer that
    does not listen, too). The rate bounds what piles up in the broker's
    queues (and memory) when it cannot keep up, as under ASan."""

    def __init__(self, ctx, endpoint, name, hello, sups, count, stop, rate=6000 / SLOW):
        super().__init__(daemon=True)
        self.sock = ctx.socket(zmq.DEALER)
        if name:
            self.sock.setsockopt(zmq.IDENTITY, name.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 10000)
        self.sock.setsockopt(zmq.RCVHWM, 1000)
        self.sock.connect(endpoint)
        self.hello, self.sups, self.count, self.stop = hello, sups, count, stop
        self.rate = rate
        self.sent = 0
        self.error = None

    def run(self):
        try:
            if self.hello:
                self.sock.send(json.dumps({"v": 1, "type": "hello", "to": "broker", "id": 0,
                                           "re": None, "body": {"role": "client",
                                                                "incarnation": "flood"}}).encode())
            bank = [garbage(i, self.sups) for i in range(160)]  # built once: send fast
            i = 0
            t0 = time.monotonic()
            while self.sent < self.count and not self.stop.is_set():
                frames = bank[i % len(bank)]
                i += 1
                try:
                    self.sock.send_multipart(frames, flags=zmq.NOBLOCK)
                    self.sent += 1
                except zmq.Again:
                    self.stop.wait(0.001)  # our own queue is full: let the broker catch up
                if self.sent % 200 == 0:  # pacing, in bursts of 200
                    ahead = self.sent / self.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        self.stop.wait(ahead)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.sock.close(0)


FLOOD_S = 8  # seconds of flood: longer than the broker's expiry below, twice over


def test_garbage_flood_while_trees_run(run):
    # Expiry 3 s (heartbeats every 1 s): a peer starved of service for 3 s
    # by the flood would be expired, and this test would see it.
    run.broker("--max-msg", "16384", "--expiry-ms", "3000")
    sups = ["sup0", "sup1", "sup2"]
    for name in sups:
        run.supervisor(name)
    ctx = zmq.Context()
    stop = threading.Event()
    flooders = []
    try:
        watch = Watcher(run, ctx)
        before = watch.stats()
        count = 400000  # per flooder: bounded even if it outran the clock
        flooders = [Flooder(ctx, run.broker_ep, "flood-unregistered", False, sups, count, stop),
                    Flooder(ctx, run.broker_ep, "flood-client", True, sups, count, stop),
                    Flooder(ctx, run.broker_ep, None, False, sups, count, stop)]
        t0 = time.monotonic()
        for f in flooders:
            f.start()
        # Batches of 15 trees, one after the other, for as long as the flood
        # lasts; each batch is waited for (a hang guard, not a pause).
        results, latencies, batch = {}, [], 0
        while time.monotonic() < t0 + FLOOD_S:
            jobs = []
            for i in range(15):
                n = batch * 15 + i
                kind = KINDS[n % len(KINDS)]
                sup = sups[n % len(sups)]
                jobs.append(("t%03d-%s-%s" % (n, kind, sup), tree_spec(kind, n)[0],
                             ["--supervisor", sup]))
            tb = time.monotonic()
            procs = spawn_all(run, jobs)
            # While they run, the broker must keep answering a legitimate
            # peer promptly (each request waits for its reply, with a deadline).
            latencies += watch.probe_while(procs, tb + HANG_GUARD * SLOW)
            results.update(collect(run, procs, tb + HANG_GUARD * SLOW))
            batch += 1
        stop.set()
        for f in flooders:
            f.join(timeout=10 * SLOW)
            check(not f.is_alive(), "a flooder did not stop")
            check(f.error is None, "flooder failed: %r" % f.error)
        flood_s = time.monotonic() - t0
        st = watch.stats()
        broker_hwm = peak_rss_mb(run.procs[0].pid)
        for label, (code, report) in results.items():
            n, kind, sup = label[1:4], label.split("-")[1], label.split("-")[2]
            check_report(label, kind, int(n), code, report, sup)
        sent = sum(f.sent for f in flooders)
        errors = st["counters"]["errors"] - before["counters"]["errors"]
        summary("%d trees on 3 supervisors under a garbage flood" % len(results), results, t0)
        print("flood: %d garbage messages in %.1f s from 3 peers (%.0f/s); broker received %d, "
              "answered %d errors %s; dropped %d (replies to flooders that do not read); "
              "legitimate round trip max %.0f ms over %d probes" %
              (sent, flood_s, sent / flood_s,
               st["counters"]["received"] - before["counters"]["received"], errors,
               {k: v for k, v in st["errors"].items() if v}, st["counters"]["dropped"],
               1000 * max(latencies or [0]), len(latencies)), flush=True)
        print("flood: broker peak RSS %d MB" % broker_hwm, flush=True)
        check(sent >= 10000, "the flood was too small to mean anything: %d" % sent)
        # Every kind of bad input was answered with its error. Counts cannot
        # match: the flooders outrun the broker (most of the flood waits in
        # its queues when they stop, and dies with their sockets).
        for code in ("bad_json", "bad_envelope", "unknown_type", "unknown_destination",
                     "too_large", "unknown_session", "spoofed_sender", "forbidden",
                     "bad_request"):
            check(st["errors"][code] > before["errors"][code], "no %s error answered" % code)
        check(errors >= 1000, "the broker answered only %d errors to %d bad messages" %
              (errors, sent))
        check(not expired_daemons(watch), "expired under the flood: %r" % expired_daemons(watch))
        check(st["peers_by_role"]["supervisor"] == 3, "supervisors: %s" % st["peers_by_role"])
        check(not [e for e in watch.lost if e["role"] == "supervisor"],
              "supervisors lost: %r" % watch.lost)
        for p in run.procs:
            check(p.poll() is None, "%s died under the flood" % p.arbor_name)
    finally:
        stop.set()
        for f in flooders:
            f.join(timeout=10)
        ctx.destroy(linger=0)


def test_huge_and_deep_trees(run):
    """At the limits: a 1111-node tree (10 x 10 x 10 sleepers) runs and every
    node ends ok; a 16-level chain (the default --max-depth) runs; one node
    more in either direction is refused before anything is spawned, with
    the path and the limit in the message (exit 2)."""
    run.broker()
    sup = run.supervisor("sup1")
    big = {"name": "root", "children": [{"name": "a", "count": 10, "children": [
        {"name": "b", "count": 10, "children": [
            {"name": "c", "run": "sleep", "ms": 200, "count": 10}]}]}]}
    t0 = time.monotonic()
    code, report = run.spawn_wait(big, timeout=HANG_GUARD)
    nodes = by_path(report)
    check(code == 0 and len(nodes) == 1111 and all(n["status"] == "ok" for n in nodes.values()),
          "big tree: exit %d, %d nodes, %r" % (code, len(nodes), sorted(
              {n["status"] for n in nodes.values()})))
    print("1111-node tree: ok in %.1f s wall (duration_ms %d)" %
          (time.monotonic() - t0, report["duration_ms"]), flush=True)
    deep = leaf = {"name": "n16", "run": "exit"}
    for level in range(15, 0, -1):
        deep = {"name": "n%d" % level, "children": [deep]}
    code, report = run.spawn_wait(deep, timeout=HANG_GUARD)
    check(code == 0 and len(by_path(report)) == 16, "16 levels: exit %d" % code)
    before = run.ctl("stats", "--json").stdout
    leaf["children"] = [{"name": "n17"}]
    r = run.ctl("spawn", "-", input=json.dumps(deep))
    check(r.returncode == 2 and "n17" in r.stderr and "16" in r.stderr,
          "17 levels: %d %s" % (r.returncode, r.stderr))
    r = run.ctl("spawn", "-", input=json.dumps(
        {"name": "root", "children": [{"name": "w", "run": "sleep", "count": 10000}]}))
    check(r.returncode == 2 and "10000" in r.stderr, "10001 nodes: %d %s" % (r.returncode, r.stderr))
    after = run.ctl("stats", "--json").stdout
    spawns = [json.loads(x)["supervisors"]["sup1"]["counters"]["spawns"] for x in (before, after)]
    check(spawns[0] == spawns[1], "refused trees spawned %d processes" % (spawns[1] - spawns[0]))
    check(sup.poll() is None, "supervisor died")


def test_unregistered_flood_does_not_block_new_peers(run):
    """A peer that never says hello floods valid envelopes (each answered
    unknown_session). Senders without a session share one rate bucket, and
    a new client's or worker's hello comes without a session: the flood
    must not keep them from registering. --max-rate 200 makes a small
    flood enough; the default (20000/s) only needs a faster flooder."""
    run.broker("--max-rate", "200")
    run.supervisor("sup1")
    ctx = zmq.Context()
    stop = threading.Event()
    sent = [0]

    def flood():
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, b"intruder")
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(run.broker_ep)
        frame = json.dumps({"v": 1, "type": "status", "to": "sup1", "id": 1, "re": None,
                            "body": {}}).encode()
        while not stop.is_set():
            try:
                sock.send(frame, zmq.NOBLOCK)
                sent[0] += 1
            except zmq.Again:
                stop.wait(0.001)
        sock.close(0)

    th = threading.Thread(target=flood, daemon=True)
    th.start()
    try:
        code, report = run.spawn_wait({"name": "root", "children": [
            {"name": "w", "run": "sleep", "ms": 100, "count": 3}]}, timeout=30)
        check(code == 0 and report and report["status"] == "ok",
              "a tree spawned during a flood from an unregistered peer: exit %d, %s "
              "(%d flood messages)" % (code, report and report["status"], sent[0]))
    finally:
        stop.set()
        th.join(timeout=10)
        ctx.destroy(linger=0)


def test_every_fast_worker_is_heard(run):
    """Regression: a builtin that reported ready within the millisecond of
    its spawn request was taken for an earlier incarnation and ignored, and
    its tree never got ready (about one 500-node tree in ten here). Each node's
    own report must be in: 'ready' in every node of every cancel report."""
    run.broker()
    run.supervisor("sup1")
    spec = {"name": "root", "children": [{"name": "sp", "count": 50, "children": [
        {"name": "leaf", "run": "sleep", "count": 9}]}]}
    for i in range(30):
        r = run.ctl("spawn", "-", input=json.dumps(spec))
        check(r.returncode == 0, "spawn %d: %s" % (i, r.stderr))
        tree = r.stdout.strip()
        report = run.wait_report(tree, lambda rep: all(
            any(p["phase"] == "running" for p in n["phases"]) for n in by_path(rep).values()),
            "every node of tree %d running" % i, timeout=10)
        r = run.ctl("cancel", "--wait", "--json", tree)
        check(r.returncode == 4, "cancel %d: exit %d %s" % (i, r.returncode, r.stderr[-500:]))
        report = json.loads(r.stdout)
        validate_report(report)
        deaf = [p for p, n in by_path(report).items() if not any(x["phase"] == "ready" for x in n["phases"])]
        check(not deaf, "tree %d: nodes whose ready was not heard: %s" % (i, deaf[:5]))


if __name__ == "__main__":
    main([test_50_trees_on_one_supervisor, test_10_supervisors_on_one_broker,
          test_garbage_flood_while_trees_run, test_huge_and_deep_trees,
          test_unregistered_flood_does_not_block_new_peers, test_every_fast_worker_is_heard])
