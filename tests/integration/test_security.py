"""Security (docs/SECURITY.md): CURVE on the broker, keys bound to names and
roles, the role rules, the rate limit, root refusal, ipc directories and
arborctl keygen. Raw pyzmq DEALERs play the attackers; the real supervisor,
workers and arborctl play the honest peers.

Every wait is a poll on a socket or a process with a deadline."""

import json
import os
import stat
import subprocess
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, TestFailure  # noqa: E402

T = 5 * harness.SLOW
ARBORCTL = os.path.join(harness.BIN, "arborctl")
BROKER = os.path.join(harness.BIN, "arbor-broker")
SUPERVISOR = os.path.join(harness.BIN, "arbor-supervisor")


# ---------------------------------------------------------------- helpers ----

def keygen(run, name, role="client", keydir=None):
    """arborctl keygen into the run's key dir; returns (path of NAME.cert, public z85)."""
    keydir = keydir or os.path.join(run.dir, "keys")
    r = subprocess.run([ARBORCTL, "keygen", name, "--role", role, "--dir", keydir],
                       capture_output=True, text=True, timeout=T, env=run.env)
    check(r.returncode == 0, "keygen %s: %d %s" % (name, r.returncode, r.stderr))
    return os.path.join(keydir, name + ".cert"), r.stdout.strip()


def cert_keys(path):
    """(public, secret) z85 keys of a zcert pair (secret from PATH_secret)."""
    keys = {}
    for f in (path, path + "_secret"):
        if not os.path.exists(f):
            continue
        with open(f) as fh:
            for line in fh:
                k, _, v = line.strip().partition(" = ")
                if k in ("public-key", "secret-key"):
                    keys[k] = v.strip('"').encode()
    return keys.get("public-key"), keys.get("secret-key")


class Curve:
    """A broker key, an allow dir and the certificates of one test."""

    def __init__(self, run):
        self.run = run
        self.broker_cert, self.broker_key = keygen(run, "broker", "broker")
        self.allow = os.path.join(run.dir, "allow")
        os.mkdir(self.allow, 0o700)

    def allow_cert(self, name, role="client"):
        path, _ = keygen(self.run, name, role)
        with open(path) as src, open(os.path.join(self.allow, name + ".cert"), "w") as dst:
            dst.write(src.read())
        return path

    def broker_args(self):
        return ["--curve-secret", self.broker_cert, "--curve-allow", self.allow]

    def env(self, cert):
        env = dict(self.run.env)
        env["ARBOR_CURVE_CERT"] = cert
        env["ARBOR_CURVE_SERVERKEY"] = self.broker_cert
        return env


class Peer:
    """A raw DEALER named by its routing id; CURVE when keys are given."""

    def __init__(self, run, name, cert=None, server_key=None):
        if not hasattr(run, "ctx"):
            run.ctx = zmq.Context()
            run.socks = []
        self.sock = run.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, name.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        if cert or server_key:
            public, secret = cert_keys(cert) if cert else zmq.curve_keypair()
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret
            self.sock.curve_serverkey = server_key.encode()
        self.sock.connect(run.broker_ep)
        run.socks.append(self.sock)
        self.name = name
        self.next_id = 1

    def send(self, to, type, body=None, re=None):
        mid = self.next_id
        self.next_id += 1
        self.sock.send(json.dumps({"v": 1, "type": type, "to": to, "id": mid, "re": re,
                                   "body": {} if body is None else body}).encode())
        return mid

    def recv(self, timeout=T):
        if not self.sock.poll(int(timeout * 1000)):
            raise TestFailure("%s: nothing received within %.1fs" % (self.name, timeout))
        frames = self.sock.recv_multipart()
        return frames[0].decode(), json.loads(frames[1])

    def silent(self, timeout):
        return not self.sock.poll(int(timeout * 1000))

    def expect(self, type, re=None, sender="broker"):
        frm, env = self.recv()
        check(frm == sender and env["type"] == type and (re is None or env["re"] == re),
              "%s: expected %s from %s (re %s), got %s from %s" % (self.name, type, sender, re,
                                                                  env, frm))
        return env

    def expect_error(self, code, re=None):
        env = self.expect("error", re=re)
        check(env["body"]["code"] == code, "%s: expected error %s, got %s" %
              (self.name, code, env["body"]))
        return env

    def hello(self, role="client"):
        mid = self.send("broker", "hello", {"role": role, "incarnation": "i1"})
        return self.expect("welcome", re=mid)

    def stats(self):
        mid = self.send("broker", "stats")
        return self.expect("stats", re=mid)["body"]


def with_sockets(fn):
    def wrapper(run):
        try:
            fn(run)
        finally:
            for s in getattr(run, "socks", []):
                s.close(0)
            if hasattr(run, "ctx"):
                run.ctx.term()
    wrapper.__name__ = fn.__name__
    return wrapper


def start_supervisor(run, name, env):
    p = run.start(name, [SUPERVISOR, "--broker", run.broker_ep, "--name", name] +
                  harness.root_flag("arbor-supervisor"), env=env)
    run.wait_log(p, "registered with broker")
    return p


# ---------------------------------------------------------------- tests ----

@with_sockets
def test_unauthenticated_client_is_refused(run):
    curve = Curve(run)
    alice = curve.allow_cert("alice")
    p = run.broker(*curve.broker_args())
    # No CURVE at all, an unknown key, a known key with the wrong broker key:
    # the handshake fails, so not even an error comes back.
    plain = Peer(run, "mallory")
    stranger = Peer(run, "stranger", server_key=curve.broker_key)
    confused = Peer(run, "confused", cert=alice, server_key=zmq.curve_keypair()[0].decode())
    for peer in (plain, stranger, confused):
        peer.send("broker", "hello", {"role": "client", "incarnation": "x"})
    for peer in (plain, stranger, confused):
        check(peer.silent(1.0 * harness.SLOW), "%s got an answer from a CURVE broker" % peer.name)
    run.wait_log(p, "refused a connection")
    # The same through arborctl: unreachable (exit 3), with a hint.
    r = run.ctl("peers", timeout=30)
    check(r.returncode == 3, "plain arborctl against CURVE: exit %d" % r.returncode)
    # An allowed key gets in, and sees the refusals counted.
    good = Peer(run, "alice", cert=alice, server_key=curve.broker_key)
    good.hello()
    st = good.stats()
    check(st["counters"]["auth_refused"] >= 2, "auth_refused %s" % st["counters"])
    check(st["peers"] == 1, "a refused peer was registered: %s" % st)


@with_sockets
def test_allowed_keys_run_a_tree_end_to_end(run):
    """CURVE broker, supervisor with env certs, builtin and exec workers
    (which report over their notify fd, never to the broker), arborctl with
    its flags."""
    curve = Curve(run)
    sup_cert = curve.allow_cert("sup1", "supervisor")
    alice = curve.allow_cert("alice")
    p = run.broker(*curve.broker_args())
    start_supervisor(run, "sup1", curve.env(sup_cert))
    worker = os.path.join(harness.BIN, "arbor-example-worker")
    spec = {"name": "root", "children": [
        {"name": "s", "run": "sleep", "ms": 100},
        {"name": "e", "run": "exec", "argv": [worker, "100"]},
        # The supervisor's key is not handed to the programs it runs.
        {"name": "nokey", "run": "exec", "argv": ["sh", "-c", '[ -z "$ARBOR_CURVE_CERT" ]']},
        {"name": "mid", "children": [{"name": "f", "run": "fail", "after_ms": 400}]}]}
    r = run.ctl("--curve-cert", alice, "--curve-server-key", curve.broker_key,
                "spawn", "--wait", "--json", "-", input=json.dumps(spec), timeout=60)
    # --broker comes first in run.ctl: the global flags may follow it.
    check(r.stdout.strip(), "no report: %d %s" % (r.returncode, r.stderr))
    report = json.loads(r.stdout)
    nodes = harness.by_path(report)
    check(report["status"] == "failed" and r.returncode == 1, "tree %s" % report["status"])
    check(nodes["root/s"]["status"] == "ok", "s: %s" % nodes["root/s"]["status"])
    check(nodes["root/e"]["status"] == "ok", "e: %s" % nodes["root/e"]["status"])
    check(nodes["root/nokey"]["status"] == "ok", "an exec'd program got ARBOR_CURVE_CERT: %r" %
          nodes["root/nokey"]["error"])
    check(nodes["root/mid/f"]["error"]["type"], "f's error lost")
    # Phases reported by the workers themselves reached the supervisor.
    for path in ("root/s", "root/e", "root/mid/f"):
        phases = [ph["phase"] for ph in nodes[path]["phases"]]
        check("running" in phases, "%s: no running phase (worker messages refused?) %s" %
              (path, phases))
    check("forbidden" not in run.log_of(p), "honest peers were refused:\n" + run.log_of(p))
    # The same client key through the environment.
    env = curve.env(alice)
    r = subprocess.run([ARBORCTL, "--broker", run.broker_ep, "peers", "--json"],
                       capture_output=True, text=True, env=env, timeout=30)
    check(r.returncode == 0, "peers with env keys: %d %s" % (r.returncode, r.stderr))
    names = [x["name"] for x in json.loads(r.stdout)["peers"]]
    check("sup1" in names and any(n.startswith("alice.ctl-") for n in names), str(names))


@with_sockets
def test_keys_bind_names_and_roles(run):
    curve = Curve(run)
    sup_cert = curve.allow_cert("sup1", "supervisor")
    alice = curve.allow_cert("alice")
    run.broker(*curve.broker_args())
    sup1 = Peer(run, "sup1", cert=sup_cert, server_key=curve.broker_key)
    sup1.hello(role="supervisor")
    cases = [  # (name, key, role): every one refused at hello
        ("sup2", sup_cert, "supervisor"),      # another supervisor's name
        ("sup1x", alice, "client"),             # a name outside the key's
        ("alice", alice, "supervisor"),        # a client key as a supervisor
        ("sup1.ctl-1", sup_cert, "client"),    # a supervisor key as a client
        ("sup1.t.1", sup_cert, "supervisor"),  # a supervisor key, a name under its own
    ]
    for name, cert, role in cases:
        p = Peer(run, name, cert=cert, server_key=curve.broker_key)
        mid = p.send("broker", "hello", {"role": role, "incarnation": "x"})
        env = p.expect_error("forbidden", re=mid)
        check(env["body"]["message"], "no reason given")
    # Workers are never broker peers: no key registers one, not even for the
    # names its supervisor's workers once had.
    for name, cert in (("sup1.t.1", sup_cert), ("alice.t.1", alice)):
        p = Peer(run, name, cert=cert, server_key=curve.broker_key)
        mid = p.send("broker", "hello", {"role": "worker", "incarnation": "x"})
        p.expect_error("bad_request", re=mid)
    # A certificate that says role "worker" (arborctl keygen makes none, but
    # a file can say anything) registers nothing at all.
    wcert = curve.allow_cert("sup3", "supervisor")
    for f in (wcert, wcert + "_secret", os.path.join(curve.allow, "sup3.cert")):
        with open(f) as fh:
            text = fh.read()
        check('role = "supervisor"' in text, "no role line in %s:\n%s" % (f, text))
        with open(f, "w") as fh:
            fh.write(text.replace('role = "supervisor"', 'role = "worker"'))
    for name, role, code in (("sup3", "supervisor", "forbidden"), ("sup3", "client", "forbidden"),
                             ("sup3.t.1", "client", "forbidden"), ("sup3.t.1", "worker", "bad_request")):
        p = Peer(run, name, cert=wcert, server_key=curve.broker_key)
        mid = p.send("broker", "hello", {"role": role, "incarnation": "x"})
        p.expect_error(code, re=mid)
    # Allowed: the client under its name.
    Peer(run, "alice.x", cert=alice, server_key=curve.broker_key).hello()
    # A connection that takes over "sup1" with another key (ZeroMQ hands the
    # routing id over) cannot speak for it.
    thief = Peer(run, "sup1", cert=alice, server_key=curve.broker_key)
    mid = thief.send("alice.x", "report", {"report": {}})
    thief.expect_error("forbidden", re=mid)
    mid = thief.send("broker", "hello", {"role": "client", "incarnation": "y"})
    thief.expect_error("forbidden", re=mid)
    # A certificate copied into the allow directory later is taken at once.
    bob = curve.allow_cert("bob")
    Peer(run, "bob", cert=bob, server_key=curve.broker_key).hello()


@with_sockets
def test_roles_are_enforced(run):
    """Plain (ipc) mode: roles are self-declared, but the rules hold."""
    p = run.broker()
    sup1, sup2 = Peer(run, "sup1"), Peer(run, "sup2")
    sup1.hello(role="supervisor")
    sup2.hello(role="supervisor")
    client = Peer(run, "ctl-1")
    client.hello()
    # "worker" is not a role: workers report to their supervisor over their
    # notify fd. A peer that says it is one is not registered.
    worker = Peer(run, "sup1.t.1")
    mid = worker.send("broker", "hello", {"role": "worker", "incarnation": "i1"})
    worker.expect_error("bad_request", re=mid)
    mid = worker.send("sup1", "status", {"tree": "t"})
    worker.expect_error("unknown_session", re=mid)
    # Nor are the types workers once sent or received through the broker,
    # whoever sends them to whomever.
    for sender, to, type in ((client, "sup1", "node_phase"), (sup1, "ctl-1", "node_cancel"),
                             (sup1, "ctl-1", "node_children_exited"), (sup2, "sup1", "node_phase")):
        mid = sender.send(to, type, {"phase": "exited"} if type == "node_phase" else {})
        sender.expect_error("unknown_type", re=mid)
    # A client cannot fake a supervisor's answer, nor publish tree events.
    mid = client.send("ctl-1", "report", {"report": {}})
    client.expect_error("forbidden", re=mid)
    mid = client.send("topic:tree/t", "event", {"kind": "done"})
    client.expect_error("forbidden", re=mid)
    # A supervisor spawns and cancels only on a supervisor (placing a
    # subtree there), never elsewhere; nobody publishes on "peers".
    mid = sup2.send("ctl-1", "spawn", {"spec": {"name": "r"}})
    sup2.expect_error("forbidden", re=mid)
    mid = sup2.send("ctl-1", "cancel", {"tree": "t"})
    sup2.expect_error("forbidden", re=mid)
    mid = sup1.send("topic:peers", "event", {"kind": "peer_lost"})
    sup1.expect_error("forbidden", re=mid)
    # What is allowed still flows: client -> supervisor, supervisor -> client.
    client.send("sup1", "status", {"tree": "t"})
    check(sup1.recv()[0] == "ctl-1", "status lost")
    # Nothing refused reached anyone: the next message each gets is a barrier.
    for sender, peer in ((client, sup1), (client, sup2), (sup1, client)):
        sender.send(peer.name, "status", {"barrier": True})
        frm, env = peer.recv()
        check(env["body"] == {"barrier": True}, "%s received a refused message: %s" %
              (peer.name, env))
    st = client.stats()
    errs = st["errors"]
    check(errs["forbidden"] == 5 and errs["unknown_type"] == 4 and errs["bad_request"] == 1 and
          errs["unknown_session"] == 1, "errors counted %s" % errs)
    check(st["peers"] == 3 and "worker" not in st["peers_by_role"], "peers %s" % st)
    run.wait_log(p, "bad input from sup1.t.1: bad_request")


@with_sockets
def test_real_workers_are_not_broker_peers(run):
    """A real tree's workers (builtin and exec'd) are not broker peers: the
    broker lists none, and no client reaches one by the name workers had as
    peers (SUPERVISOR.TREE.N)."""
    run.broker()
    run.supervisor()
    client = Peer(run, "intruder")
    client.hello()
    # Pick the tree id and subscribe first: the "ready" phases are events.
    tree = "sec-real"
    mid = client.send("broker", "subscribe", {"topics": ["tree/" + tree]})
    client.expect("subscribed", re=mid)
    example = os.path.join(harness.BIN, "arbor-example-worker")
    spec = {"name": "root", "run": "exec", "argv": [example],
            "children": [{"name": "s", "run": "exec", "argv": [example]},
                         {"name": "b", "run": "sleep"}]}
    mid = client.send("sup1", "spawn", {"spec": spec, "tree": tree})
    ready, want = set(), {"root", "root/s", "root/b"}
    deadline = time.monotonic() + T
    while ready != want:
        left = deadline - time.monotonic()
        check(left > 0, "not every worker got ready: %s of %s" % (sorted(ready), sorted(want)))
        frm, env = client.recv(left)
        if env["type"] == "spawned" and env["re"] == mid:
            continue
        check(env["type"] == "event", "unexpected %s from %s: %s" % (env["type"], frm, env))
        body = env["body"]
        if body.get("kind") == "phase" and body.get("phase") == "ready":
            ready.add(body["path"])
        check(body.get("kind") != "done", "the tree ended: %s" % body)

    def answer(mid, sender="broker"):
        """The reply to mid; the tree's events keep coming meanwhile."""
        while True:
            frm, env = client.recv()
            if env["type"] != "event":
                break
        check(frm == sender and env["re"] == mid, "expected the answer to #%d from %s, got %s from %s" %
              (mid, sender, env, frm))
        return env

    mid = client.send("broker", "peers")
    peers = answer(mid)["body"]["peers"]
    check(sorted((x["name"], x["role"]) for x in peers) == [("intruder", "client"), ("sup1", "supervisor")],
          "peers other than the supervisor and this client: %s" % peers)
    for n in range(3):  # the names workers had as peers
        for type, body in (("status", {"tree": tree}), ("cancel", {"tree": tree})):
            mid = client.send("sup1.%s.%d" % (tree, n), type, body)
            env = answer(mid)
            check(env["type"] == "error" and env["body"]["code"] == "unknown_destination" and
                  env["body"]["to"] == "sup1.%s.%d" % (tree, n), str(env))
    # The tree is untouched: still running, then cancelled properly.
    r = run.ctl("status", "--json", tree)
    check(json.loads(r.stdout)["status"] == "running", "tree disturbed: %s" % r.stdout[:300])
    r = run.ctl("cancel", "--wait", "--json", tree)
    check(r.returncode == 4, "cancel: %d %s" % (r.returncode, r.stderr))


@with_sockets
def test_rate_limit(run):
    p = run.broker("--max-rate", "50")
    a, b = Peer(run, "a"), Peer(run, "b")
    a.hello()
    b.hello()
    n = 300
    for i in range(n):
        a.send("b", "status", {"i": i})
    delivered = limited = 0
    deadline = time.monotonic() + T
    while delivered + limited < n and time.monotonic() < deadline:
        if b.sock.poll(0):
            b.recv()
            delivered += 1
        elif a.sock.poll(10):
            _, env = a.recv()
            check(env["type"] == "error" and env["body"]["code"] == "rate_limited", str(env))
            limited += 1
    check(delivered + limited == n, "lost messages: %d + %d of %d" % (delivered, limited, n))
    # The burst is one second of the rate (50), plus what trickled in meanwhile.
    check(40 <= delivered <= 120 and limited >= 180, "delivered %d, limited %d" %
          (delivered, limited))
    # Another peer is not affected; after a pause the bucket is full again.
    b.send("a", "status", {"from": "b"})
    check(a.recv()[1]["body"] == {"from": "b"}, "b was limited by a's flood")
    b.sock.poll(int(1100 * harness.SLOW))  # let a's bucket refill (nothing arrives here)
    a.send("b", "status", {"after": "pause"})
    check(b.recv()[1]["body"] == {"after": "pause"}, "still limited after a pause")
    st = b.stats()
    check(st["errors"]["rate_limited"] == limited, "rate_limited %s" % st["errors"])
    run.wait_log(p, "rate_limited")


def test_root_refusal(run):
    if os.geteuid() != 0:
        print("  (not root: the refusal cannot be seen; skipped)")
        return
    strict = dict(run.env, ARBOR_REFUSE_ROOT="1")
    r = subprocess.run([BROKER, "--bind", run.broker_ep], capture_output=True, text=True,
                       timeout=T, env=strict)
    check(r.returncode == 1 and "--allow-root" in r.stderr and "root" in r.stderr, str(r))
    check(not os.path.exists(run.broker_ep[len("ipc://"):]), "bound before refusing")
    r = subprocess.run([SUPERVISOR, "--broker", run.broker_ep, "--name", "s"],
                       capture_output=True, text=True, timeout=T, env=strict)
    check(r.returncode != 0 and "--allow-root" in r.stderr, str(r))
    # Without ARBOR_REFUSE_ROOT the contract's plain command runs, and warns.
    p = run.start("plain-root-broker", [BROKER, "--bind", run.broker_ep.replace("broker.sock", "b2.sock")])
    run.wait_log(p, "RUNNING AS ROOT")
    p = run.broker()  # with --allow-root: runs, and says so
    run.wait_log(p, "running as root")


def free_port():
    """A tcp port nobody listens on now (arbor refuses port 0, "any")."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_transport_defaults_and_ipc_dirs(run):
    def broker(*args, timeout=T):
        return subprocess.run([BROKER] + harness.root_flag("arbor-broker") + list(args),
                              capture_output=True, text=True, timeout=timeout, env=run.env)
    # tcp reachable from other hosts without CURVE must be asked for (it is
    # refused before anything is bound).
    r = broker("--bind", "tcp://0.0.0.0:%d" % free_port())
    check(r.returncode == 2 and "--plain" in r.stderr and "--curve-secret" in r.stderr, str(r))
    # Loopback tcp is local, like ipc: plain, with the warning.
    p = run.start("loopback", [BROKER, "--bind", "tcp://127.0.0.1:%d" % free_port()] +
                  harness.root_flag("arbor-broker"))
    run.wait_log(p, "listening")
    r = broker("--bind", run.broker_ep, "--curve-secret", "/nonexistent")
    check(r.returncode == 2 and "go together" in r.stderr, str(r))
    r = broker("--bind", run.broker_ep, "--plain", "--curve-secret", "x", "--curve-allow", "y")
    check(r.returncode == 2 and "contradicts" in r.stderr, str(r))
    # --plain on tcp: runs, loudly.
    p = run.start("plain", [BROKER, "--bind", "tcp://127.0.0.1:%d" % free_port(), "--plain"] +
                  harness.root_flag("arbor-broker"))
    run.wait_log(p, "PLAIN MODE")
    # ipc in a directory others can write to: refused, unless asked.
    shared = os.path.join(run.dir, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    r = broker("--bind", "ipc://%s/b.sock" % shared)
    check(r.returncode == 1 and "writable by everyone" in r.stderr, str(r))
    p = run.start("shared", [BROKER, "--bind", "ipc://%s/b.sock" % shared, "--allow-shared-dir"] +
                  harness.root_flag("arbor-broker"))
    run.wait_log(p, "listening")
    # A missing socket directory is created, private.
    fresh = os.path.join(run.dir, "fresh")
    p = run.start("fresh", [BROKER, "--bind", "ipc://%s/b.sock" % fresh] +
                  harness.root_flag("arbor-broker"))
    run.wait_log(p, "listening")
    check(stat.S_IMODE(os.stat(fresh).st_mode) == 0o700, "mode %o" % os.stat(fresh).st_mode)
    # CURVE with an allow dir others can write to: refused, a usage error.
    curve = Curve(run)
    os.chmod(curve.allow, 0o777)
    r = broker("--bind", run.broker_ep, *curve.broker_args())
    check(r.returncode == 2 and "--curve-allow" in r.stderr, str(r))
    # A certificate without its secret half cannot be the broker's.
    os.chmod(curve.allow, 0o700)
    os.unlink(curve.broker_cert + "_secret")
    r = broker("--bind", run.broker_ep, *curve.broker_args())
    check(r.returncode == 2 and "secret" in r.stderr, str(r))


def test_keygen(run):
    keydir = os.path.join(run.dir, "k")
    path, key = keygen(run, "sup-1", "supervisor", keydir)
    check(len(key) == 40, "public key %r" % key)
    check(stat.S_IMODE(os.stat(keydir).st_mode) == 0o700, "key dir not private")
    check(stat.S_IMODE(os.stat(path + "_secret").st_mode) == 0o600, "secret file not 0600")
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o644, "public file not 0644")
    public, secret = cert_keys(path)
    check(public.decode() == key and secret and len(secret) == 40, "keys in the files")
    with open(path) as f:
        text = f.read()
    check('name = "sup-1"' in text and 'role = "supervisor"' in text, text)
    check("secret-key" not in text, "the public file holds the secret key")

    def ctl(*args):
        return subprocess.run([ARBORCTL, "keygen"] + list(args), capture_output=True, text=True,
                              timeout=T, env=run.env)
    r = ctl("sup-1", "--dir", keydir)
    check(r.returncode != 0 and "exists" in r.stderr, "overwrote: %s" % r)
    r = ctl("sup-1", "--dir", keydir, "--force")
    check(r.returncode == 0 and r.stdout.strip() != key, "--force: %s" % r)
    for bad in (["a.b"], ["x", "--role", "king"], []):
        r = ctl(*bad, "--dir", keydir)
        check(r.returncode == 2, "keygen %s: %s" % (bad, r))


if __name__ == "__main__":
    harness.main([
        test_unauthenticated_client_is_refused,
        test_allowed_keys_run_a_tree_end_to_end,
        test_keys_bind_names_and_roles,
        test_roles_are_enforced,
        test_real_workers_are_not_broker_peers,
        test_rate_limit,
        test_root_refusal,
        test_transport_defaults_and_ipc_dirs,
        test_keygen,
    ])
