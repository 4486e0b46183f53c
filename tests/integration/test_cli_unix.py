"""arborctl as the docs say (issue 16): exit codes for local mistakes (2)
and for a broker that cannot be there (3, at once), the CURVE hint, status
of one subtree, cancel of an ended tree, watch's current state and --json,
peers listing the broker, placed subtrees under their tree in list,
--version everywhere, and the daemons doing as root what their --help
says."""

import json
import os
import re
import signal
import subprocess
import time

import harness
from harness import BIN, SLOW, check, main, walk

ARBORCTL = os.path.join(BIN, "arborctl")
KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"  # 40 z85 characters


def ctl(run, *args, env=None, input=None, timeout=30):
    return subprocess.run([ARBORCTL] + list(args), input=input, capture_output=True, text=True,
                          env=env or run.env, timeout=timeout * SLOW)


def sleeping(run, *extra):
    spec = {"name": "root", "children": [{"name": "a", "run": "sleep"},
                                         {"name": "b", "children": [{"name": "c", "run": "sleep"}]}]}
    r = run.ctl("spawn", *extra, "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    run.wait_report(tree, lambda rep: all(n["status"] == "running" for n in walk(rep["root"])),
                    "every node running")
    return tree


def test_version(run):
    for prog in ("arborctl", "arbor-broker", "arbor-supervisor", "arbor-forkserver"):
        r = subprocess.run([os.path.join(BIN, prog), "--version"], capture_output=True, text=True,
                           timeout=10)
        check(r.returncode == 0 and re.fullmatch(r"%s \d+\.\d+\.\d+( \(git [0-9a-f]{12}(\+dirty)?\))?\n"
                                                 % prog, r.stdout),
              "%s --version: %d %r %r" % (prog, r.returncode, r.stdout, r.stderr))


def test_local_mistakes_are_usage_errors(run):
    d = run.dir
    for ep in ("foo", "broker:5555", "tcp://host", "tcp://host:99999", "tcp://:5555",
               "tcp://*:5555", "udp://h:5", "ipc://", "ipc://" + d):
        r = ctl(run, "--broker", ep, "peers")
        check(r.returncode == 2 and ep.rstrip("/") in r.stderr,
              "--broker %s: exit %d, want 2: %s" % (ep, r.returncode, r.stderr))
    for env in ({"ARBOR_CURVE_CERT": os.path.join(d, "none.cert"), "ARBOR_CURVE_SERVERKEY": KEY},
                {"ARBOR_CURVE_CERT": os.path.join(d, "none.cert")}):
        r = ctl(run, "peers", env=dict(run.env, **env))
        check(r.returncode == 2, "CURVE %r: exit %d, want 2: %s" % (env, r.returncode, r.stderr))
    r = ctl(run, "--curve-cert", os.path.join(d, "none.cert"), "--curve-server-key", KEY, "list")
    check(r.returncode == 2 and "none.cert" in r.stderr, "--curve-cert missing file: %d %s" %
          (r.returncode, r.stderr))


def test_missing_ipc_socket_fails_at_once(run):
    # A long welcome timeout: only the missing socket can end it early.
    env = dict(run.env, ARBOR_CONNECT_TIMEOUT="60")
    t0 = time.monotonic()
    r = ctl(run, "--broker", "ipc://%s/none.sock" % run.dir, "status", "abc", env=env)
    dt = time.monotonic() - t0
    check(r.returncode == 3, "exit %d, want 3" % r.returncode)
    check("none.sock" in r.stderr and "arbor-broker" in r.stderr, r.stderr)
    check(dt < 30, "took %.1fs: it waited for a welcome" % dt)


def test_curve_hint(run):
    keys = os.path.join(run.dir, "keys")
    r = ctl(run, "keygen", "broker", "--role", "broker", "--dir", keys)
    check(r.returncode == 0, r.stderr)
    allow = os.path.join(run.dir, "allow")
    os.mkdir(allow, 0o700)
    run.broker("--curve-secret", os.path.join(keys, "broker.cert"), "--curve-allow", allow)
    env = dict(run.env, ARBOR_CONNECT_TIMEOUT="0.5")
    env.pop("ARBOR_CURVE_CERT", None)
    r = ctl(run, "--broker", run.broker_ep, "peers", env=env)
    check(r.returncode == 3 and "CURVE" in r.stderr and "--curve-cert" in r.stderr,
          "client without keys: %d %s" % (r.returncode, r.stderr))


def test_status_subtree(run):
    run.broker()
    run.supervisor("sup1")
    tree = sleeping(run)
    r = run.ctl("status", "--json", tree + "/root/b")
    check(r.returncode == 0, "status TREE/PATH: %d %s" % (r.returncode, r.stderr))
    rep = json.loads(r.stdout)
    harness.validate_report(rep)
    check([n["path"] for n in walk(rep["root"])] == ["root/b", "root/b/c"],
          "subtree: %r" % [n["path"] for n in walk(rep["root"])])
    r = run.ctl("status", tree + "/root/b")
    check(r.returncode == 0 and "c  running" in r.stdout and "\na  " not in r.stdout, r.stdout)
    r = run.ctl("status", tree + "/root/nosuch")
    check(r.returncode == 2 and "no node root/nosuch" in r.stderr, r.stderr)
    # the node's status decides while the tree runs
    run.ctl("cancel", "--wait", tree + "/root/b")
    r = run.ctl("status", tree + "/root/b")
    check(r.returncode == 4, "status of a cancelled subtree: exit %d" % r.returncode)
    run.ctl("cancel", "--wait", tree)


def test_cancel_ended(run):
    run.broker()
    run.supervisor("sup1")
    code, rep = run.spawn_wait({"name": "root", "children": [{"name": "x", "run": "exit"}]})
    check(code == 0, "ok tree: %d" % code)
    r = run.ctl("cancel", rep["tree"])
    check(r.returncode == 0 and "already ended: ok" in r.stderr and "cancelling" not in r.stdout,
          "cancel of an ok tree: %d %r %r" % (r.returncode, r.stdout, r.stderr))
    code, rep = run.spawn_wait({"name": "root", "children": [{"name": "x", "run": "fail"}]})
    r = run.ctl("cancel", "--json", rep["tree"])
    check(r.returncode == 1 and json.loads(r.stdout)["status"] == "failed" and
          "already ended: failed" in r.stderr, "failed tree: %d %s" % (r.returncode, r.stderr))
    tree = sleeping(run)
    run.ctl("cancel", "--wait", tree + "/root/a")
    r = run.ctl("cancel", tree + "/root/a")
    check(r.returncode == 4 and "already ended: cancelled" in r.stderr, "ended node: %d %s" %
          (r.returncode, r.stderr))
    run.ctl("cancel", "--wait", tree)
    r = run.ctl("cancel", "--wait", tree)
    check(r.returncode == 4 and "already ended" in r.stderr, "twice: %d %s" % (r.returncode, r.stderr))


def test_watch_state_and_json(run):
    run.broker()
    run.supervisor("sup1")
    tree = sleeping(run)
    w = run.start("watch", [ARBORCTL, "--broker", run.broker_ep, "watch", "--json", tree])
    run.wait_log(w, '"path":"root/b/c"')
    first = [json.loads(l) for l in run.log_of(w).splitlines()[:4]]
    check([e.get("path") for e in first] == ["root", "root/a", "root/b", "root/b/c"] and
          all(e.get("state") is True and e["kind"] == "phase" and e["phase"] == "running"
              for e in first), "current state first: %r" % first)
    r = run.ctl("cancel", tree)
    check(r.returncode == 0, r.stderr)
    rc = w.wait(timeout=30 * SLOW)
    w.expect_death = True  # exits 4 by design: the tree was cancelled
    events = [json.loads(l) for l in run.log_of(w).splitlines() if l.startswith("{")]
    check(rc == 4, "watch exit %d, want 4 (cancelled)" % rc)
    check(events[-1]["kind"] == "done" and events[-1]["status"] == "cancelled", events[-1])
    check(any(e["kind"] == "status" and e.get("path") == "root/a" and not e.get("state")
              for e in events), "no live status event")
    # without TREE: each running tree first
    tree2 = sleeping(run)
    w2 = run.start("watch-all", [ARBORCTL, "--broker", run.broker_ep, "watch"])
    run.wait_log(w2, tree2 + "  -  tree running")
    w2.send_signal(signal.SIGINT)
    check(w2.wait(timeout=10 * SLOW) == 0, "watch without TREE after SIGINT")
    run.ctl("cancel", "--wait", tree2)


def test_peers_lists_broker(run):
    run.broker()
    run.supervisor("sup1")
    r = run.ctl("peers")
    rows = [l.split() for l in r.stdout.splitlines()[1:]]
    check(r.returncode == 0 and rows[0][:2] == ["broker", "broker"], r.stdout)
    check(any(row[:2] == ["sup1", "supervisor"] for row in rows), r.stdout)


def spawn_placed(run):
    """On sup1, a tree whose node 'there' (with a child) is placed on sup2,
    once every node runs: its id."""
    run.broker()
    run.supervisor("sup1")
    run.supervisor("sup2")
    spec = {"name": "root", "children": [{"name": "here", "run": "sleep"},
                                         {"name": "there", "on": "sup2",
                                          "children": [{"name": "x", "run": "sleep"}]}]}
    r = run.ctl("spawn", "--supervisor", "sup1", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    run.wait_report(tree, lambda rep: all(n["status"] == "running" for n in walk(rep["root"])),
                    "every node running")
    return tree


def test_list_placed_under_tree(run):
    tree = spawn_placed(run)
    other = sleeping(run, "--supervisor", "sup2")
    rows = json.loads(run.ctl("list", "--json").stdout)["trees"]
    ids = [row["tree"] for row in rows]
    placed = [row for row in rows if row.get("placed_in")]
    check(len(placed) == 1 and placed[0]["placed_in"] == tree and placed[0]["supervisor"] == "sup2",
          "placed rows: %r" % rows)
    check(ids.index(placed[0]["tree"]) == ids.index(tree) + 1, "not right under its tree: %r" % ids)
    check(other in ids, "the other tree is missing: %r" % ids)
    text = run.ctl("list").stdout
    check("\u2514 " + placed[0]["tree"] in text, text)
    run.ctl("cancel", "--wait", tree)
    run.ctl("cancel", "--wait", other)


def test_status_names_placed_supervisor(run):
    """A placed node's line in status says which supervisor ran it: its pid
    is that supervisor's host's."""
    tree = spawn_placed(run)
    text = run.ctl("status", tree).stdout
    check("there  running  on sup2  " in text and "here  running  pid" in text, text)
    # The placed subtree's pids come with its report, once it has ended.
    r = run.ctl("cancel", "--wait", "--json", tree)
    there = harness.by_path(json.loads(r.stdout))["root/there"]
    check(r.returncode == 4 and there.get("supervisor") == "sup2" and there["pid"], r.stdout)
    text = run.ctl("status", tree).stdout
    check("there  cancelled  on sup2  pid %d  exited" % there["pid"] in text, text)
    check(text.count(" on sup2 ") == 1, "only the placed node names sup2: " + text)


def test_daemons_missing_certificate_and_broker(run):
    """A certificate file that is not there is a usage error (2) for both
    daemons; a broker that is not there yet is not: the supervisor keeps
    trying and registers once it comes."""
    none = os.path.join(run.dir, "none.cert")
    r = subprocess.run([os.path.join(BIN, "arbor-broker"), "--bind", run.broker_ep,
                        "--curve-secret", none, "--curve-allow", run.dir] +
                       harness.root_flag("arbor-broker"),
                       capture_output=True, text=True, timeout=10 * SLOW, env=run.env)
    check(r.returncode == 2 and none in r.stderr, "broker: %d %s" % (r.returncode, r.stderr))
    r = subprocess.run([os.path.join(BIN, "arbor-supervisor"), "--name", "s", "--curve-cert", none,
                        "--curve-server-key", KEY] + harness.root_flag("arbor-supervisor"),
                       capture_output=True, text=True, timeout=10 * SLOW, env=run.env)
    check(r.returncode == 2 and none in r.stderr, "supervisor: %d %s" % (r.returncode, r.stderr))
    # No broker socket yet: the supervisor runs on (wait_log fails if it exits).
    sup = run.start("sup1", [os.path.join(BIN, "arbor-supervisor"), "--broker", run.broker_ep,
                             "--name", "sup1"] + harness.root_flag("arbor-supervisor"))
    run.wait_log(sup, "fork-server ready")
    # It keeps trying: still alive past a few of its hello ticks (1 s each);
    # an exit would end this wait at once.
    try:
        code = sup.wait(timeout=3.5 * SLOW)
        check(False, "the supervisor exited without a broker (exit %d)" % code)
    except subprocess.TimeoutExpired:
        pass
    run.broker()
    run.wait_log(sup, "registered with broker")
    check(sup.poll() is None, "the supervisor exited")


def allow_root_help(prog):
    """The --allow-root entry of prog's --help, on one line."""
    out = subprocess.run([os.path.join(BIN, prog), "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    entry = out.split("--allow-root", 1)[1]
    entry = re.split(r"\n  +-", entry, maxsplit=1)[0]  # up to the next option
    return " ".join(entry.split())


def test_root_as_help_says(run):
    """As root, each daemon does what its --help says: a loud warning without
    --allow-root, one short warning with it, and the exit code --help names
    when ARBOR_REFUSE_ROOT=1 asks for a refusal (overridden by --allow-root)."""
    if os.geteuid() != 0:
        print("  (not root: the behaviour as root cannot be seen; skipped)")
        return
    broker = os.path.join(BIN, "arbor-broker")
    supervisor = os.path.join(BIN, "arbor-supervisor")
    strict = dict(run.env, ARBOR_REFUSE_ROOT="1")
    p = run.broker()  # with --allow-root
    run.wait_log(p, "running as root (--allow-root)")
    daemons = {"arbor-broker": lambda n: [broker, "--bind", "ipc://%s/%s.sock" % (run.dir, n)],
               "arbor-supervisor": lambda n: [supervisor, "--broker", run.broker_ep, "--name", n]}
    started = {"arbor-broker": "listening", "arbor-supervisor": "registered with broker"}
    for prog, argv in daemons.items():
        text = allow_root_help(prog)
        m = re.search(r"exit (\d+) when ARBOR_REFUSE_ROOT=1", text)
        check(m and "warning" in text and "refused otherwise" not in text, "%s --help: %r" %
              (prog, text))
        # Without --allow-root: it starts, and warns loudly.
        p = run.start(prog + "-plain", argv("plain"))
        run.wait_log(p, started[prog])
        run.wait_log(p, "RUNNING AS ROOT")
        # ARBOR_REFUSE_ROOT=1: refused, with the exit code --help gives.
        r = subprocess.run(argv("strict"), capture_output=True, text=True, timeout=10 * SLOW,
                           env=strict)
        check(r.returncode == int(m.group(1)) and "--allow-root" in r.stderr,
              "%s with ARBOR_REFUSE_ROOT=1: exit %d, --help says %s: %s" %
              (prog, r.returncode, m.group(1), r.stderr))
        # --allow-root overrides it: starts, with the short warning only.
        p = run.start(prog + "-allowed", argv("allowed") + ["--allow-root"], env=strict)
        run.wait_log(p, started[prog])
        log = run.log_of(p)
        check("running as root (--allow-root)" in log and "RUNNING AS ROOT" not in log, log)


if __name__ == "__main__":
    main([test_version, test_local_mistakes_are_usage_errors, test_missing_ipc_socket_fails_at_once,
          test_curve_hint, test_status_subtree, test_cancel_ended, test_watch_state_and_json,
          test_peers_lists_broker, test_list_placed_under_tree, test_status_names_placed_supervisor,
          test_daemons_missing_certificate_and_broker, test_root_as_help_says])
