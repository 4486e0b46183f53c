"""arbor-broker against raw pyzmq DEALER peers: registration, routing with
the sender frame stamped by the broker and the payload byte-identical, topics,
expiry, every error code, garbage input, signals and flags.

Every wait is a poll on a socket (or a process) with a deadline."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, TestFailure  # noqa: E402

BROKER = os.path.join(harness.BIN, "arbor-broker")
T = 5 * harness.SLOW  # default deadline for one reply


class Peer:
    """A raw DEALER, named by its routing id (None: let ZeroMQ pick one)."""

    def __init__(self, run, name, rcvhwm=None):
        if not hasattr(run, "ctx"):
            run.ctx = zmq.Context()
            run.peers = []
        self.sock = run.ctx.socket(zmq.DEALER)
        if name is not None:
            self.sock.setsockopt(zmq.IDENTITY, name.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        if rcvhwm is not None:
            self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.connect(run.broker_ep)
        self.name = name
        self.next_id = 1
        run.peers.append(self)

    def send(self, to, type, body=None, re=None, **extra):
        mid = self.next_id
        self.next_id += 1
        env = {"v": 1, "type": type, "to": to, "id": mid, "re": re,
               "body": {} if body is None else body}
        env.update(extra)
        self.sock.send(json.dumps(env).encode())
        return mid

    def send_raw(self, *frames):
        self.sock.send_multipart(list(frames))

    def recv(self, timeout=T):
        """Next message as (sender, raw envelope bytes, decoded envelope)."""
        if not self.sock.poll(int(timeout * 1000)):
            raise TestFailure("%s: nothing received within %.1fs" % (self.name, timeout))
        frames = self.sock.recv_multipart()
        check(len(frames) == 2, "%s: expected [sender][envelope], got %d frames" %
              (self.name, len(frames)))
        return frames[0].decode(), frames[1], json.loads(frames[1])

    def quiet(self, timeout=0.2):
        """True when nothing is waiting (used after a barrier, never to wait)."""
        return not self.sock.poll(int(timeout * 1000))

    def expect(self, type, re=None, sender="broker", timeout=T):
        frm, _, env = self.recv(timeout)
        check(frm == sender, "%s: expected a message from %s, got %s: %s" %
              (self.name, sender, frm, env))
        check(env["type"] == type, "%s: expected %s, got %s" % (self.name, type, env))
        if re is not None:
            check(env["re"] == re, "%s: expected re=%s, got %s" % (self.name, re, env))
        return env

    def expect_error(self, code, re=None, timeout=T):
        env = self.expect("error", re=re, timeout=timeout)
        check(env["body"]["code"] == code, "%s: expected error %s, got %s" %
              (self.name, code, env["body"]))
        check(isinstance(env["body"].get("message"), str) and env["body"]["message"],
              "error without a message: %s" % env)
        return env

    def hello(self, role="client", incarnation="inc-1"):
        mid = self.send("broker", "hello", {"role": role, "incarnation": incarnation})
        return self.expect("welcome", re=mid)

    def request(self, type, body=None):
        mid = self.send("broker", type, body)
        return self.recv_reply(mid)

    def recv_reply(self, mid):
        _, _, env = self.recv()
        check(env["re"] == mid, "%s: expected the reply to %d, got %s" % (self.name, mid, env))
        return env

    def stats(self):
        env = self.request("stats")
        check(env["type"] == "stats", "expected stats, got %s" % env)
        return env["body"]


def close_all(run):
    for p in getattr(run, "peers", []):
        p.sock.close(0)
    if hasattr(run, "ctx"):
        run.ctx.term()


def with_peers(fn):
    """Close the test's sockets whatever happens."""
    def wrapper(run):
        try:
            fn(run)
        finally:
            close_all(run)
    wrapper.__name__ = fn.__name__
    return wrapper


# ---------------------------------------------------------------- tests ----

@with_peers
def test_hello_welcome(run):
    run.broker("--heartbeat-ms", "700", "--expiry-ms", "2100")
    a = Peer(run, "alpha")
    w = a.hello(role="supervisor")
    check(w["to"] == "alpha", "welcome not addressed to alpha: %s" % w)
    check(isinstance(w["body"]["broker"], str) and w["body"]["broker"], "no incarnation: %s" % w)
    check(w["body"]["heartbeat_ms"] == 700 and w["body"]["expiry_ms"] == 2100, str(w))
    # A second hello, same incarnation: welcomed again, still one peer.
    a.hello(role="supervisor")
    check(a.stats()["peers"] == 1, "repeated hello made two peers")
    # Heartbeats get no reply: the next message is the stats reply.
    a.send("broker", "heartbeat")
    check(a.stats()["peers_by_role"]["supervisor"] == 1, "peers_by_role wrong")


@with_peers
def test_routing_is_byte_identical(run):
    run.broker()
    # A supervisor and a client (roles: docs/SECURITY.md).
    a, b = Peer(run, "sup"), Peer(run, "sup.ctl-3")
    a.hello(role="supervisor")
    b.hello(role="client")
    # Odd spacing, key order, unicode, an extra key: all must arrive unchanged.
    raw = ('{ "body" : {"x": [1, 2.5, "\u00e9\\u00e9"], "nested": {"k": null}},'
           '"v":1,"type":"report","to":"sup.ctl-3","id":41 ,"re":null,'
           '"extra":"kept", "from":"sup"}').encode()
    a.send_raw(raw)
    frm, got, env = b.recv()
    check(frm == "sup", "sender frame %r, not 'sup'" % frm)
    check(got == raw, "payload changed in transit:\n%r\n%r" % (raw, got))
    # And back, re set; a large one too (shared frame, not copied wrongly).
    big = {"blob": "x" * (1 << 20)}
    mid = b.send("sup", "status", big, re=41)
    frm, got, env = a.recv()
    check(frm == "sup.ctl-3" and env["id"] == mid and env["re"] == 41, str(env)[:200])
    check(env["body"] == big, "large body changed")
    # To itself works too.
    a.send("sup", "status", {"tree": "t"})
    check(a.recv()[0] == "sup", "loopback lost")
    st = a.stats()
    check(st["counters"]["routed"] == 3, "routed=%s" % st["counters"])


@with_peers
def test_unknown_session(run):
    run.broker()
    a = Peer(run, "a")
    mid = a.send("broker", "stats")
    a.expect_error("unknown_session", re=mid)
    mid = a.send("b", "spawn", {"spec": {}})
    a.expect_error("unknown_session", re=mid)
    a.hello()
    a.stats()
    # After bye, the session is gone.
    a.send("broker", "bye")
    mid = a.send("broker", "peers")
    a.expect_error("unknown_session", re=mid)
    # A ZeroMQ-generated routing id (binary, starts with 0) is not a name:
    # even its hello is refused.
    anon = Peer(run, None)
    mid = anon.send("broker", "hello", {"role": "client", "incarnation": "x"})
    anon.expect_error("unknown_session", re=mid)
    # "broker" is reserved.
    fake = Peer(run, "broker")
    mid = fake.send("broker", "hello", {"role": "client", "incarnation": "x"})
    fake.expect_error("unknown_session", re=mid)


@with_peers
def test_error_codes(run):
    run.broker("--max-msg", "4096")
    a = Peer(run, "a")
    a.hello()
    cases = [
        (b"not json", "bad_json", None),
        (b"", "bad_json", None),
        (b"[1,2,3]", "bad_envelope", None),
        (b'"string"', "bad_envelope", None),
        (b'{"type":"peers","to":"broker","id":3,"re":null,"body":{}}', "bad_envelope", 3),
        (b'{"v":2,"type":"peers","to":"broker","id":4,"re":null,"body":{}}', "bad_envelope", 4),
        (b'{"v":1,"to":"broker","id":5,"re":null,"body":{}}', "bad_envelope", 5),
        (b'{"v":1,"type":7,"to":"broker","id":6,"re":null,"body":{}}', "bad_envelope", 6),
        (b'{"v":1,"type":"peers","id":7,"re":null,"body":{}}', "bad_envelope", 7),
        (b'{"v":1,"type":"peers","to":"","id":8,"re":null,"body":{}}', "bad_envelope", 8),
        (b'{"v":1,"type":"peers","to":"broker","re":null,"body":{}}', "bad_envelope", None),
        (b'{"v":1,"type":"peers","to":"broker","id":-1,"re":null,"body":{}}', "bad_envelope", None),
        (b'{"v":1,"type":"peers","to":"broker","id":"9","re":null,"body":{}}', "bad_envelope", None),
        (b'{"v":1,"type":"peers","to":"broker","id":1e300,"re":null,"body":{}}', "bad_envelope", None),
        (b'{"v":1,"type":"peers","to":"broker","id":10,"re":"x","body":{}}', "bad_envelope", 10),
        (b'{"v":1,"type":"peers","to":"broker","id":11,"re":null,"body":[]}', "bad_envelope", 11),
        (b'{"v":1,"type":"peers","to":"broker","id":12,"re":null}', "bad_envelope", 12),
        (b'{"v":1,"type":"frobnicate","to":"broker","id":13,"re":null,"body":{}}',
         "unknown_type", 13),
        # Workers talk to their supervisor over their notify fd: the types
        # they once sent through the broker are gone.
        (b'{"v":1,"type":"node_cancel","to":"a","id":14,"re":null,"body":{}}',
         "unknown_type", 14),
    ]
    for raw, code, re in cases:
        a.send_raw(raw)
        env = a.expect_error(code, re=re)
        if re is None:
            check(env["re"] is None, "re should be null for %r: %s" % (raw, env))
    # unknown_destination carries "to" and "type" so the sender can react.
    mid = a.send("nobody", "spawn", {"spec": {}})
    env = a.expect_error("unknown_destination", re=mid)
    check(env["body"]["to"] == "nobody" and env["body"]["type"] == "spawn", str(env))
    mid = a.send("topic:", "event", {})
    a.expect_error("unknown_destination", re=mid)
    # spoofed_sender: "from" that is not the sender's name.
    mid = a.send("a", "status", {}, **{"from": "b"})
    a.expect_error("spoofed_sender", re=mid)
    mid = a.send("a", "status", {}, **{"from": 3})
    a.expect_error("spoofed_sender", re=mid)
    # More than one data frame.
    a.send_raw(b'{"v":1,"type":"peers","to":"broker","id":77,"re":null,"body":{}}', b"x")
    a.expect_error("bad_envelope", re=77)
    a.send_raw(b"", b'{"v":1,"type":"peers","to":"broker","id":78,"re":null,"body":{}}')
    a.expect_error("bad_envelope")
    # too_large: above --max-msg (and below the socket's 2x limit).
    mid = a.send("a", "status", {"pad": "x" * 5000})
    a.expect_error("too_large")
    # bad_request: broker messages of the wrong shape, or not for the broker.
    bad = [("hello", {"role": "king", "incarnation": "x"}),
           ("hello", {"role": "worker", "incarnation": "x"}),  # workers are not peers
           ("hello", {"role": "client"}),
           ("subscribe", {"topics": "tree/"}),
           ("subscribe", {"topics": ["ok", 3]}),
           ("subscribe", {"topics": [""]}),
           ("subscribe", {"topics": ["has space"]}),
           ("unsubscribe", {}),
           ("spawn", {"spec": {}}),
           ("welcome", {})]
    for type, body in bad:
        mid = a.send("broker", type, body)
        env = a.expect_error("bad_request", re=mid)
        check(env["body"]["type"] == type, str(env))
    st = a.stats()
    errs = st["errors"]
    want = {"bad_json": 2, "bad_envelope": 17, "unknown_type": 2, "unknown_destination": 2,
            "spoofed_sender": 2, "too_large": 1, "bad_request": len(bad),
            "unknown_session": 0, "undeliverable": 0}
    for code, n in want.items():
        check(errs[code] == n, "errors[%s] = %s, want %d (%s)" % (code, errs[code], n, errs))
    check(st["counters"]["errors"] == sum(want.values()), str(st["counters"]))
    check(st["counters"]["received"] == len(cases) + 2 + 2 + 2 + 1 + len(bad) + 2,
          "received=%s" % st["counters"]["received"])


@with_peers
def test_oversized_frame_drops_connection_only(run):
    p = run.broker("--max-msg", "4096")
    a, b = Peer(run, "a"), Peer(run, "b")
    a.hello()
    b.hello()
    # Above 2x --max-msg, libzmq drops the connection before we see the frame;
    # the DEALER reconnects and what it sends next is served. What was in
    # flight behind the big frame is lost with the connection: retry stats.
    a.send("b", "status", {"pad": "x" * 9000})
    deadline = time.monotonic() + T
    while True:
        a.send("broker", "stats")
        if a.sock.poll(200):
            break
        check(time.monotonic() < deadline, "no reply after the connection was dropped")
    st = a.recv()[2]["body"]
    check(st["errors"]["too_large"] == 0, str(st))
    a.send("b", "status", {"after": 1})
    frm, _, env = b.recv()
    check(env["body"] == {"after": 1}, "oversized frame was delivered: %s" % str(env)[:100])
    check(p.poll() is None, "broker died")


@with_peers
def test_undeliverable(run):
    run.broker()
    a, b = Peer(run, "a"), Peer(run, "b")
    a.hello()
    b.hello()
    b.sock.close(0)  # gone without bye: still registered until it expires
    # The broker learns of the disconnect asynchronously: retry until it has.
    deadline = time.monotonic() + T
    while True:
        mid = a.send("b", "status", {"tree": "t"})
        if a.sock.poll(50):
            env = a.expect_error("undeliverable", re=mid)
            check(env["body"]["to"] == "b" and env["body"]["type"] == "status", str(env))
            break
        check(time.monotonic() < deadline, "no undeliverable within the deadline")
    st = a.stats()
    check(st["errors"]["undeliverable"] == 1 and st["counters"]["dropped"] >= 1, str(st))


@with_peers
def test_topics(run):
    run.broker()
    pub = Peer(run, "pub")
    pub.hello(role="supervisor")  # only supervisors publish
    subs = {}
    for name, topics in [("all", ["tree/"]), ("one", ["tree/42"]), ("near", ["tree/4"]),
                         ("both", ["tree/", "tree/42"]), ("other", ["tree/43", "peers"])]:
        p = Peer(run, name)
        p.hello()
        mid = p.send("broker", "subscribe", {"topics": topics})
        env = p.expect("subscribed", re=mid)
        check(env["body"]["topics"] == sorted(topics), str(env))
        subs[name] = p
    raw = b'{"v":1,"type":"event","to":"topic:tree/42","id":9,"re":null,"body":{"k":"phase"}}'
    pub.send_raw(raw)
    for name in ("all", "one", "both"):
        frm, got, _ = subs[name].recv()
        check(frm == "pub" and got == raw, "%s got %r from %s" % (name, got, frm))
    # Barrier: a direct message sent after the publish must be the next thing
    # each peer sees: "near" and "other" got nothing, "both" got one copy.
    for name in ("near", "other", "both"):
        pub.send(name, "status", {"barrier": True})
        frm, _, env = subs[name].recv()
        check(env["type"] == "status" and env["body"] == {"barrier": True},
              "%s received an extra message: %s" % (name, env))
    # No subscribers: swallowed, no error (the next reply is the stats).
    pub.send("topic:nobody/here", "event", {})
    st = pub.stats()
    check(st["counters"]["swallowed"] == 1 and st["counters"]["published"] == 1 and
          st["counters"]["delivered"] == 3, str(st["counters"]))
    # Unsubscribe answers with what remains.
    mid = subs["both"].send("broker", "unsubscribe", {"topics": ["tree/", "never"]})
    env = subs["both"].expect("subscribed", re=mid)
    check(env["body"]["topics"] == ["tree/42"], str(env))
    # A "/"-ending topic is its own prefix: delivered once.
    pub.send("topic:tree/", "event", {"x": 1})
    check(subs["all"].recv()[0] == "pub", "tree/ not delivered to tree/")


@with_peers
def test_peers_and_events(run):
    run.broker()
    watch = Peer(run, "watch")
    watch.hello()
    mid = watch.send("broker", "subscribe", {"topics": ["peers"]})
    watch.expect("subscribed", re=mid)
    a = Peer(run, "a")
    a.hello(role="supervisor", incarnation="one")
    ev = watch.expect("event")
    check(ev["to"] == "topic:peers", str(ev))
    check(ev["body"] == {"topic": "peers", "kind": "peer_joined", "name": "a",
                         "role": "supervisor", "reason": "hello"}, str(ev))
    env = watch.request("peers")
    names = [(p["name"], p["role"], p["incarnation"]) for p in env["body"]["peers"]]
    check(names == [("a", "supervisor", "one"), ("watch", "client", "inc-1")], str(names))
    check(all(isinstance(p["idle_ms"], int) and p["idle_ms"] >= 0
              for p in env["body"]["peers"]), str(env))
    # A restarted peer (new incarnation) replaces the old registration; the
    # new connection takes the name over (ROUTER_HANDOVER).
    a2 = Peer(run, "a")
    a2.hello(role="supervisor", incarnation="two")
    ev = watch.expect("event")
    check(ev["body"]["kind"] == "peer_lost" and ev["body"]["reason"] == "replaced", str(ev))
    ev = watch.expect("event")
    check(ev["body"]["kind"] == "peer_joined" and ev["body"]["name"] == "a", str(ev))
    watch.send("a", "status", {})
    check(a2.recv()[0] == "watch", "the new connection did not get the message")
    a2.send("broker", "bye")
    ev = watch.expect("event")
    check(ev["body"] == {"topic": "peers", "kind": "peer_lost", "name": "a",
                         "role": "supervisor", "reason": "bye"}, str(ev))
    check(watch.stats()["peers"] == 1, "bye did not forget the peer")


@with_peers
def test_expiry(run):
    p = run.broker("--expiry-ms", "500", "--heartbeat-ms", "100")
    watch = Peer(run, "watch")
    watch.hello()
    mid = watch.send("broker", "subscribe", {"topics": ["peers"]})
    watch.expect("subscribed", re=mid)
    silent = Peer(run, "silent")
    silent.hello(role="supervisor")
    check(watch.expect("event")["body"]["kind"] == "peer_joined", "no peer_joined")
    t0 = time.monotonic()
    deadline = t0 + 5 * harness.SLOW
    # watch heartbeats every 100 ms while it waits; silent says nothing.
    while True:
        watch.send("broker", "heartbeat")
        if watch.sock.poll(100):
            ev = watch.expect("event")
            break
        check(time.monotonic() < deadline, "no peer_lost within the deadline")
    check(ev["body"] == {"topic": "peers", "kind": "peer_lost", "name": "silent",
                         "role": "supervisor", "reason": "expired"}, str(ev))
    check(time.monotonic() - t0 >= 0.4, "expired too early")
    st = watch.stats()
    check(st["counters"]["expired"] == 1 and st["peers"] == 1, "watch expired too? %s" % st)
    mid = silent.send("broker", "peers")
    silent.expect_error("unknown_session", re=mid)
    run.wait_log(p, "expired")


def garbage(rng, i):
    kind = i % 10
    if kind == 0:
        return [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))]
    if kind == 1:
        return [b"[" * 5000 + b"]" * 5000]
    if kind == 2:
        return [b'{"v":1,"type":"peers","to":"broker","id":%d' % i]  # truncated
    if kind == 3:
        return [b'{"v":1,"type":"\x00\xff","to":"broker","id":1,"re":null,"body":{}}']
    if kind == 4:
        return [b'{"v":1e999,"type":"peers","to":"broker","id":1,"re":null,"body":{}}']
    if kind == 5:
        return [json.dumps({"v": 1, "type": "status", "to": "x" * 400, "id": i, "re": None,
                            "body": {}}).encode()]
    if kind == 6:
        return [b"a", b"b", b"c"]
    if kind == 7:
        return [json.dumps({"v": 1, "type": "subscribe", "to": "broker", "id": i, "re": None,
                            "body": {"topics": [{"a": 1}] * 3}}).encode()]
    if kind == 8:
        return ['{"v":1,"type":"status","to":"\u2603","id":%d,"re":null,"body":{}}' % i]
    return [b'{"v":1,"type":"status","to":"b","id":18446744073709551616,"re":null,"body":{}}']


@with_peers
def test_garbage_then_legit(run):
    p = run.broker()
    rng = random.Random(1234)
    a, b = Peer(run, "a", rcvhwm=100000), Peer(run, "b")
    anon = Peer(run, None, rcvhwm=100000)
    a.hello()
    b.hello()
    for i in range(2000):
        frames = garbage(rng, i)
        frames = [f.encode() if isinstance(f, str) else f for f in frames]
        (a if i % 2 else anon).send_raw(*frames)
    t0 = time.monotonic()
    mid = a.send("b", "status", {"after": "garbage"})
    frm, _, env = b.recv(timeout=2 * harness.SLOW)
    dt = time.monotonic() - t0
    check(frm == "a" and env["id"] == mid, "wrong message: %s" % env)
    check(dt < 2 * harness.SLOW, "legit message took %.2fs" % dt)
    # Every garbage message got its error reply (none dropped or crashed).
    n = 0
    while n < 1000:
        _, _, env = a.recv()
        check(env["type"] == "error", "unexpected %s" % env)
        n += 1
    n = 0
    while n < 1000:
        _, _, env = anon.recv()
        check(env["type"] == "error", "unexpected %s" % env)
        n += 1
    st = a.stats()
    check(st["counters"]["errors"] == 2000, "errors=%s" % st["counters"])
    check(p.poll() is None, "broker died")
    # The warnings were rate-limited, not one line per bad message.
    lines = run.log_of(p).count("bad input")
    check(lines < 200, "%d bad-input log lines: not rate-limited" % lines)


@with_peers
def test_capture(run):
    path = os.path.join(run.dir, "capture.jsonl")
    run.broker("--capture", path)
    a, b = Peer(run, "a"), Peer(run, "b")
    a.hello()
    b.hello()
    a.send("b", "status", {"tree": "t"})
    b.recv()
    a.send_raw(b'{"v":1,"type":"nope","to":"b","id":99,"re":null,"body":{}}')
    a.expect_error("unknown_type", re=99)
    a.send_raw(b"garbage")
    a.expect_error("bad_json")
    a.stats()
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    for rec in lines:
        check(set(rec) == {"from", "dir", "msg"} and rec["dir"] in ("in", "out"), str(rec))
    ins = [(r["from"], r["msg"]["type"]) for r in lines if r["dir"] == "in"]
    outs = [r["msg"]["type"] for r in lines if r["dir"] == "out"]
    check(ins == [("a", "hello"), ("b", "hello"), ("a", "status"), ("a", "nope"),
                  ("a", "stats")], str(ins))
    # Events are recorded even when nobody is subscribed to "peers".
    check(outs == ["welcome", "event", "welcome", "event", "error", "error", "stats"], str(outs))
    check(all(r["from"] == "broker" for r in lines if r["dir"] == "out"), "out not from broker")


def test_signals_exit_zero(run):
    for sig in (signal.SIGTERM, signal.SIGINT):
        p = run.broker()
        ctx = zmq.Context()
        try:
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.IDENTITY, b"a")
            s.setsockopt(zmq.LINGER, 0)
            s.connect(run.broker_ep)
            s.send(b'{"v":1,"type":"hello","to":"broker","id":1,"re":null,'
                   b'"body":{"role":"client","incarnation":"x"}}')
            check(s.poll(int(T * 1000)), "no welcome")
            s.recv_multipart()
            p.send_signal(sig)
            rc = p.wait(timeout=T)
            check(rc == 0, "exit %s on %s" % (rc, sig))
            check("stopping" in run.log_of(p), "no stop log")
        finally:
            ctx.destroy(linger=0)


def test_flags(run):
    def broker(*args):
        return subprocess.run([BROKER] + harness.root_flag("arbor-broker") + list(args),
                              capture_output=True, text=True, timeout=T, env=run.env)
    r = broker("--help")
    check(r.returncode == 0 and "usage" in r.stdout and "--max-msg" in r.stdout, str(r))
    r = broker("--bind", run.broker_ep, "--no-such-flag")
    check(r.returncode == 2 and "no-such-flag" in r.stderr, str(r))
    r = broker()
    check(r.returncode == 2 and "--bind" in r.stderr, str(r))
    r = broker("--bind", run.broker_ep, "--max-msg", "lots")
    check(r.returncode == 2 and "max-msg" in r.stderr, str(r))
    r = broker("--bind", run.broker_ep, "--expiry-ms", "0")
    check(r.returncode == 2 and "expiry-ms" in r.stderr, str(r))
    # The socket's own directory is created (0700), but not its parents.
    r = broker("--bind", "ipc:///nonexistent-dir-arbor/sub/x.sock")
    check(r.returncode == 1 and "cannot bind ipc:///nonexistent-dir-arbor/sub/x.sock" in r.stderr,
          str(r))
    r = broker("--bind", run.broker_ep, "--capture", "/nonexistent-dir-arbor/cap")
    check(r.returncode == 1 and "capture" in r.stderr, str(r))


@with_peers
def test_end_topic_carries_the_done_event_alone(run):
    """A supervisor publishes a tree's done event, report included, on
    end/ID as well as tree/ID, and nothing else on end/ID: a client that
    waits for the end only (arborctl spawn/cancel --wait) is not sent the
    tree's phase events."""
    run.broker()
    run.supervisor("sup1")
    watchers = {}
    for name, topic in (("endw", "end/t-end"), ("treew", "tree/t-end")):
        p = Peer(run, name)
        p.hello()
        mid = p.send("broker", "subscribe", {"topics": [topic]})
        p.expect("subscribed", re=mid)
        watchers[name] = p
    spec = {"name": "root", "children": [{"name": "ok", "run": "exit"},
                                         {"name": "bad", "run": "fail"}]}
    c = watchers["treew"]
    mid = c.send("sup1", "spawn", {"spec": spec, "tree": "t-end"})
    got = {"endw": [], "treew": []}
    while not any(e["body"].get("kind") == "done" for e in got["treew"]):
        frm, _, env = c.recv()
        if env["type"] == "event":
            got["treew"].append(env)
        else:
            check(env["type"] == "spawned" and env["re"] == mid, "spawn: %s" % env)
    frm, _, env = watchers["endw"].recv()
    got["endw"].append(env)
    check(watchers["endw"].quiet(0.3), "end/t-end carried more than the done event")
    end, = got["endw"]
    done = [e for e in got["treew"] if e["body"].get("kind") == "done"]
    phases = [e for e in got["treew"] if e["body"].get("kind") == "phase"]
    check(frm == "sup1" and end["type"] == "event" and end["to"] == "topic:end/t-end" and
          end["body"]["kind"] == "done" and end["body"]["topic"] == "end/t-end",
          "end/t-end: %s" % end)
    check(len(done) == 1 and len(phases) >= 6, "tree/t-end: %d done, %d phase events"
          % (len(done), len(phases)))
    check(end["body"]["report"] == done[0]["body"]["report"] and
          end["body"]["report"]["tree"] == "t-end" and end["body"]["status"] == "failed" and
          end["body"]["report"]["status"] == "failed",
          "the two done events differ, or the report is wrong: %s" % end["body"])


@with_peers
def test_cancel_finds_trees_whose_id_names_no_supervisor(run):
    """arborctl cancel sends the cancel straight to the supervisor a tree's
    id names; an id chosen by a client (no dot, or naming no supervisor)
    is looked for among every supervisor, as before."""
    run.broker()
    run.supervisor("sup1")
    c = Peer(run, "client")
    c.hello()
    for tree in ("handmade", "nosuch.sup", "sup1.chosen"):
        mid = c.send("sup1", "spawn", {"spec": {"name": "root", "run": "sleep"}, "tree": tree})
        env = c.expect("spawned", re=mid, sender="sup1")
        r = run.ctl("cancel", "--wait", "--json", tree)
        check(r.returncode == 4 and json.loads(r.stdout)["status"] == "cancelled",
              "cancel %s: exit %d %r %r" % (tree, r.returncode, r.stdout[-300:], r.stderr))
        r = run.ctl("cancel", tree)
        check(r.returncode == 4 and "already ended: cancelled" in r.stderr,
              "cancel %s again: exit %d %r" % (tree, r.returncode, r.stderr))
    r = run.ctl("cancel", "sup1.nosuchtree")
    check(r.returncode == 2 and "sup1.nosuchtree" in r.stderr, "unknown tree: exit %d %r"
          % (r.returncode, r.stderr))


@with_peers
def test_events_go_only_where_someone_listens(run):
    """The broker tells supervisors which tree topics have subscribers
    (topic "interest"); a supervisor sends a tree's phase and status events
    only when someone listens to it (or to "tree/"), its done event always."""
    run.broker()
    run.supervisor("sup1")
    w = Peer(run, "w")
    w.hello()
    mid = w.send("broker", "subscribe", {"topics": ["tree/t-watched", "end/t-quiet"]})
    w.expect("subscribed", re=mid)
    spec = {"name": "root", "children": [{"name": "a", "run": "exit"}, {"name": "b", "run": "exit"}]}

    def run_tree(tree):
        mid = w.send("sup1", "spawn", {"spec": spec, "tree": tree})
        events = []
        while not any(e["body"].get("kind") == "done" and e["body"]["tree"] == tree for e in events):
            frm, _, env = w.recv()
            if env["type"] == "event":
                events.append(env)
            else:
                check(env["type"] == "spawned" and env["re"] == mid, "spawn %s: %s" % (tree, env))
        return events

    watched = run_tree("t-watched")
    kinds = sorted(set(e["body"]["kind"] for e in watched))
    check(kinds == ["done", "phase", "status"], "t-watched: %s" % kinds)
    quiet = run_tree("t-quiet")
    check([e["body"]["kind"] for e in quiet] == ["done"] and quiet[0]["to"] == "topic:end/t-quiet",
          "t-quiet, whose tree topic nobody watches, sent: %s" % [e["to"] for e in quiet])
    mid = w.send("sup1", "stats", {})
    _, _, env = w.recv()
    unwatched = env["body"]["counters"]["events_unwatched"]
    check(env["type"] == "stats" and unwatched >= 3 * 5, "events_unwatched %s" % unwatched)
    # A watcher of every tree (arborctl watch) gets every tree's events.
    mid = w.send("broker", "subscribe", {"topics": ["tree/"]})
    w.expect("subscribed", re=mid)
    all_ = run_tree("t-all")
    check(sum(e["body"]["kind"] == "phase" for e in all_) >= 3 * 5, "t-all: %s" %
          [e["body"]["kind"] for e in all_])


if __name__ == "__main__":
    harness.main([
        test_hello_welcome,
        test_routing_is_byte_identical,
        test_unknown_session,
        test_error_codes,
        test_oversized_frame_drops_connection_only,
        test_undeliverable,
        test_topics,
        test_peers_and_events,
        test_expiry,
        test_garbage_then_legit,
        test_capture,
        test_end_topic_carries_the_done_event_alone,
        test_cancel_finds_trees_whose_id_names_no_supervisor,
        test_events_go_only_where_someone_listens,
        test_signals_exit_zero,
        test_flags,
    ])
