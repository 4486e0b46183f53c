"""Signals to each process of arbor: the broker, the supervisor, its
fork-server and a worker, each sent SIGTERM, SIGINT, SIGHUP, SIGPIPE (and
SIGKILL where no other test does). docs/RELIABILITY.md has the table; what
each test pins down:

- broker stalled (SIGSTOP, then SIGCONT) while a tree's workers start: the
  tree still ends by itself;
- broker and supervisor: SIGTERM, SIGINT and SIGHUP stop them cleanly (exit
  0; the supervisor first cancels every tree, whose report says why); a
  second signal stops the supervisor at once, and its fork-server stops the
  workers; SIGPIPE is ignored, and so is a log pipe whose reader went away;
- fork-server: SIGTERM, SIGINT and SIGHUP make it stop every worker and
  exit; the supervisor settles the tree, starts a new fork-server and goes
  on; SIGPIPE is ignored; stopped (SIGSTOP) while a tree is cancelled, then
  continued, the tree still ends by the cancel, not by a timeout;
- a worker killed by any signal arbor did not send is `failed` with
  `KilledBySignal` and the signal in its report; its siblings are cancelled.

Every test also checks that no process of the run survives (harness)."""

import json
import os
import signal
import subprocess
import time

from harness import BIN, SLOW, TestFailure, by_path, check, main, root_flag, walk

T = 20  # seconds: hang guard for a tree or a daemon to end (scaled by SLOW)


def fork_server_of(sup_pid):
    """The supervisor's child that is not a worker: its fork-server."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == sup_pid:
                    return int(entry)
            except (OSError, IndexError, ValueError):
                pass
    return None


def report_of(run, tree):
    return run.report(tree, timeout=T)


def wait_report(run, tree, pred, what):
    return run.wait_report(tree, pred, what, timeout=T)


def all_running(rep):
    return all(n["status"] == "running" and n["pid"] for n in walk(rep["root"]))


def spawn_running(run, spec):
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    return tree, wait_report(run, tree, all_running, "every node running")


def spawn_wait_bg(run, spec):
    """`arborctl spawn --wait --json` in the background; returns the process."""
    p = subprocess.Popen([os.path.join(BIN, "arborctl"), "--broker", run.broker_ep, "spawn",
                          "--wait", "--json", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run.env)
    p.stdin.write(json.dumps(spec))
    p.stdin.close()
    p.stdin = None
    return p


SLEEPERS = {"name": "root", "children": [
    {"name": "w", "run": "sleep", "count": 2},
    {"name": "x", "run": "exec", "argv": ["sleep", "30"]},
    {"name": "mid", "children": [{"name": "leaf", "run": "sleep"}]}]}


# ---------------------------------------------------------------- broker ----

def test_broker_sighup_sigpipe(run):
    """SIGPIPE: ignored, the broker goes on serving. SIGHUP: a clean stop
    (exit 0), like SIGTERM; the trees keep running without it and a new
    broker takes over (peers register again)."""
    broker = run.broker()
    sup = run.supervisor("sup1")
    tree, _ = spawn_running(run, SLEEPERS)
    broker.send_signal(signal.SIGPIPE)
    r = run.ctl("peers", "--json")
    check(r.returncode == 0 and "sup1" in r.stdout, "broker after SIGPIPE: %d %s" % (r.returncode, r.stderr))
    check(broker.poll() is None, "broker died of SIGPIPE")
    broker.send_signal(signal.SIGHUP)
    rc = broker.wait(timeout=T * SLOW)
    check(rc == 0, "broker exit %s on SIGHUP" % rc)
    check("stopping on" in run.log_of(broker), "no stop log on SIGHUP")
    run.procs.remove(broker)
    check(sup.poll() is None, "the supervisor died with the broker")
    broker = run.broker()  # same endpoint: the supervisor registers again
    deadline = time.monotonic() + T * SLOW
    while True:  # the supervisor says hello again on its next heartbeat
        r = run.ctl("cancel", tree, "--wait", "--json", timeout=T)
        if r.returncode != 3:
            break
        check(time.monotonic() < deadline, "supervisor did not come back: %s" % r.stderr)
    check(r.returncode == 4, "cancel after the broker restart: %d %s" % (r.returncode, r.stderr))
    rep = json.loads(r.stdout)
    for n in walk(rep["root"]):
        check(n["status"] == "cancelled", "%s is %s" % (n["path"], n["status"]))


def test_broker_stopped_while_workers_start(run):
    """The broker stalls (SIGSTOP, 2.5 s: the fault, not a wait) just as a
    tree's workers start, so their hello and first phases cannot get
    through for a while; then it goes on (SIGCONT). The workers register
    again, and the tree must still end by itself, every node ok: a phase
    lost at start (ready) must not leave the supervisor waiting forever."""
    broker = run.broker()
    run.supervisor("sup1")
    spec = {"name": "root", "children": [
        {"name": "mid", "children": [{"name": "w", "run": "sleep", "ms": 100, "count": 2}]}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)  # the length of the stall
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    rep = wait_report(run, tree, lambda r: r["status"] != "running", "the end of the tree")
    for n in walk(rep["root"]):
        check(n["status"] == "ok", "%s is %s (phases %s)" %
              (n["path"], n["status"], [p["phase"] for p in n["phases"]]))


def start_logless_daemons(run, died_why, **popen):
    """A broker and supervisor sup1 whose stdio is set by popen (no log file
    to read): each started, then waited for by polling the broker's peers
    (there is no log line to wait on). Returns (broker, supervisor)."""
    def daemon(name, argv):
        p = subprocess.Popen(argv, env=run.env, **popen)
        if p.stderr:
            p.stderr.close()  # the reader is gone before the first line is written
        p.log_path = os.devnull
        p.arbor_name = name
        run.procs.append(p)
        return p

    def ready(p, pred):
        deadline = time.monotonic() + T * SLOW
        while True:
            check(p.poll() is None, "%s died at start (%s)%s" % (p.arbor_name, p.returncode, died_why))
            r = run.ctl("peers", "--json", timeout=T)
            if r.returncode == 0 and pred(r.stdout):
                return
            check(time.monotonic() < deadline, "%s not ready: %s" % (p.arbor_name, r.stderr))
            time.sleep(0.05)  # polling: there is no log to wait on

    broker = daemon("broker", [os.path.join(BIN, "arbor-broker"), "--bind", run.broker_ep] +
                    root_flag("arbor-broker"))
    ready(broker, lambda out: True)
    sup = daemon("sup1", [os.path.join(BIN, "arbor-supervisor"), "--broker", run.broker_ep,
                          "--name", "sup1"] + root_flag("arbor-supervisor"))
    ready(sup, lambda out: "sup1" in out)
    return broker, sup


def test_daemons_survive_a_closed_log_pipe(run):
    """A daemon's stderr is a pipe whose reader went away (a log shipper
    that died): writing a log line gets EPIPE, which must not kill it."""
    broker, sup = start_logless_daemons(
        run, ": its first log line killed it (SIGPIPE)", stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Things that log: bad input at the broker, a failing tree at the supervisor.
    r = run.ctl("spawn", "-", input="{\"name\": \"bad name\"}")
    check(r.returncode == 2, "invalid spec: %d" % r.returncode)
    code, rep = run.spawn_wait({"name": "root", "children": [
        {"name": "bad", "run": "fail", "after_ms": 50}, {"name": "s", "run": "sleep"}]},
        timeout=T)
    check(code == 1 and by_path(rep)["root/bad"]["status"] == "failed", "tree: %d" % code)
    check(by_path(rep)["root/s"]["status"] == "cancelled", "bystander not cancelled")
    check(broker.poll() is None, "the broker died writing to a closed pipe (%s)" % broker.returncode)
    check(sup.poll() is None, "the supervisor died writing to a closed pipe (%s)" % sup.returncode)


def closed_stdio():
    """preexec_fn: the child runs with fds 0, 1 and 2 closed."""
    for fd in (0, 1, 2):
        os.close(fd)


def test_daemons_started_with_stdio_closed(run):
    """arbor-broker, arbor-supervisor (and so its fork-server) and arborctl
    started with fds 0, 1 and 2 closed (`<&- >&- 2>&-`): each opens
    /dev/null there first, so no socket of theirs lands on fd 2 and no log
    line goes into one. The supervisor used to exit 1 at once: its
    fork-server's channel took fd 2 and the fork-server refused to start.
    Builtins and an exec'd node that writes both run; the exec'd node's
    output is still captured."""
    broker, sup = start_logless_daemons(run, "", preexec_fn=closed_stdio)
    fsrv = fork_server_of(sup.pid)
    check(fsrv, "no fork-server")
    for pid, who in ((broker.pid, "broker"), (sup.pid, "supervisor"), (fsrv, "fork-server")):
        for fd in (0, 1, 2):
            target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
            check(target == "/dev/null", "%s: fd %d is %s" % (who, fd, target))
    code, rep = run.spawn_wait({"name": "root", "children": [
        {"name": "s", "run": "sleep", "ms": 10},
        {"name": "x", "run": "exec", "argv": ["sh", "-c", "echo out; echo err >&2"]}]}, timeout=T)
    check(code == 0, "tree: exit %d %r" % (code, rep))
    check(by_path(rep)["root/x"]["logs"]["lines"] == 2, "exec'd output: %r" % by_path(rep)["root/x"])
    # arborctl too: its reply must reach a closed stdout's /dev/null, not a socket
    r = subprocess.run([os.path.join(BIN, "arborctl"), "--broker", run.broker_ep, "peers"],
                       preexec_fn=closed_stdio, env=run.env, timeout=T)
    check(r.returncode == 0, "arborctl with stdio closed: exit %d" % r.returncode)
    check(broker.poll() is None and sup.poll() is None, "a daemon died")


# ------------------------------------------------------------ supervisor ----

def test_supervisor_stop_signals(run):
    """SIGTERM, SIGINT and SIGHUP: the supervisor cancels every tree, the
    waiting client gets the report (cancelled, reason "supervisor
    stopping"), and it exits 0."""
    run.broker()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        sup = run.supervisor("sup1")
        ctl = spawn_wait_bg(run, SLEEPERS)
        run.wait_log(sup, "spawning")
        tree = None
        deadline = time.monotonic() + T * SLOW
        while tree is None:  # the tree id, from the supervisor's list
            r = run.ctl("list", "--json")
            trees = json.loads(r.stdout)["trees"] if r.returncode == 0 and r.stdout.strip() else []
            tree = trees[0]["tree"] if trees else None
            check(time.monotonic() < deadline, "no tree listed")
        wait_report(run, tree, all_running, "every node running")
        sup.send_signal(sig)
        rc = sup.wait(timeout=T * SLOW)
        check(rc == 0, "supervisor exit %s on %s" % (rc, sig.name))
        out, err = ctl.communicate(timeout=T * SLOW)
        check(ctl.returncode == 4, "%s: arborctl exit %d: %s" % (sig.name, ctl.returncode, err))
        rep = json.loads(out)
        check(rep["status"] == "cancelled" and rep.get("reason") == "supervisor stopping",
              "%s: %s %s" % (sig.name, rep["status"], rep.get("reason")))
        for n in walk(rep["root"]):
            check(n["status"] == "cancelled", "%s: %s is %s" % (sig.name, n["path"], n["status"]))
        check("%s: cancelling every tree" % sig.name in run.log_of(sup), "no stop log")
        run.procs.remove(sup)
        left = run.survivors()
        check(len(left) == 1, "%s: processes left besides the broker: %r" % (sig.name, left))


def test_supervisor_second_signal_stops_at_once(run):
    """A tree that ignores cancel and SIGTERM for long (grace 20 s): the
    first SIGTERM starts the stop, the second stops the supervisor at once;
    its fork-server then kills the workers (SIGTERM, SIGKILL after 300 ms)."""
    run.broker()
    sup = run.supervisor("sup1")
    tree, rep = spawn_running(run, {"name": "root", "children": [
        {"name": "mule", "run": "hang", "in": "running", "grace_ms": 20000,
         "kill_after_ms": 20000}, {"name": "s", "run": "sleep"}]})
    sup.send_signal(signal.SIGTERM)
    run.wait_log(sup, "cancelling every tree")
    t0 = time.monotonic()
    sup.send_signal(signal.SIGTERM)
    rc = sup.wait(timeout=T * SLOW)
    check(time.monotonic() - t0 < 5 * SLOW, "second SIGTERM took %.1fs" % (time.monotonic() - t0))
    check(rc == 0, "supervisor exit %s" % rc)
    run.procs.remove(sup)
    left = run.survivors(timeout=3)
    check(len(left) == 1, "workers survived the supervisor: %r" % left)


def test_second_signal_still_hands_back_the_report(run):
    """A client waits on a tree that a first SIGTERM cannot end in time; a
    second SIGTERM stops the supervisor at once: the client gets the report
    as it stands (what could not be waited for is lost), not silence and
    exit 3 after its own timeout."""
    run.broker()
    sup = run.supervisor("sup1")
    waiter = spawn_wait_bg(run, {"name": "root", "children": [
        {"name": "mule", "run": "hang", "in": "running", "grace_ms": 20000, "kill_after_ms": 20000},
        {"name": "s", "run": "sleep"}]})
    run.wait_log(sup, "spawning 3 nodes")
    trees = json.loads(run.ctl("list", "--json").stdout)["trees"]
    check(len(trees) == 1, "trees %r" % trees)
    wait_report(run, trees[0]["tree"], all_running, "every node running")
    sup.send_signal(signal.SIGTERM)
    run.wait_log(sup, "cancelling every tree")
    t0 = time.monotonic()
    sup.send_signal(signal.SIGTERM)
    try:
        out, err = waiter.communicate(timeout=T * SLOW)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    check(time.monotonic() - t0 < 5 * SLOW, "the waiting client took %.1fs" % (time.monotonic() - t0))
    check(out.strip(), "the waiting client got no report (exit %d): %s" % (waiter.returncode, err))
    rep = json.loads(out)
    nodes = by_path(rep)
    check(nodes["root/mule"]["status"] == "lost" and
          "second signal" in nodes["root/mule"]["error"]["message"], "mule %r" % nodes["root/mule"])
    check(rep["status"] != "running", "tree %s" % rep["status"])
    check(waiter.returncode in (1, 4), "client exit %d" % waiter.returncode)
    sup.wait(timeout=T * SLOW)
    run.procs.remove(sup)
    left = run.survivors(timeout=3)
    check(len(left) == 1, "workers survived the supervisor: %r" % left)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_fork_server_death_releases_every_fd(run):
    """SIGKILL of the fork-server under 40 workers: they are lost, and the
    supervisor closes every fd it held for them (pidfds, pipes, notify
    fds): its fd count is back where it was before the tree."""
    run.broker()
    sup = run.supervisor("sup1")
    before = open_fds(sup.pid)
    tree, _ = spawn_running(run, {"name": "root", "children": [
        {"name": "w", "run": "sleep", "count": 20},
        {"name": "x", "run": "exec", "argv": ["sleep", "60"], "count": 19,
         "env": {"ARBOR_TEST_RUN": run.marker}}]})
    check(open_fds(sup.pid) >= before + 40, "40 workers hold fds: %d -> %d" % (before, open_fds(sup.pid)))
    fsrv = fork_server_of(sup.pid)
    os.kill(fsrv, signal.SIGKILL)
    rep = wait_report(run, tree, lambda r: r["status"] != "running", "the end of the tree")
    check(all(n["status"] == "lost" for n in walk(rep["root"])),
          "%r" % [(n["path"], n["status"]) for n in walk(rep["root"])])
    deadline = time.monotonic() + T * SLOW
    while open_fds(sup.pid) != before and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc: no event says "fds closed"
    check(open_fds(sup.pid) == before, "fds: %d before the tree, %d after the fork-server died" %
          (before, open_fds(sup.pid)))
    new = fork_server_of(sup.pid)
    check(new and new != fsrv, "a new fork-server runs")


def pipes_of(pid):
    """The pipes among pid's fds (their ids)."""
    d = "/proc/%d/fd" % pid
    out = set()
    for fd in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("pipe:"):
            out.add(target)
    return out


def test_only_nodes_that_write_get_output_pipes(run):
    """A builtin that never writes (sleep, supervise, ...) costs no pipes:
    its stdout is /dev/null and its stderr the fork-server's (so that what
    it could still say reaches the supervisor's log); an exec'd program and
    flood get their stdout and stderr pipes, drained by the supervisor.
    The supervisor holds two pipes per writer and none per quiet node."""
    run.broker()
    sup = run.supervisor("sup1")
    before = pipes_of(sup.pid)
    tree, rep = spawn_running(run, {"name": "root", "children": [
        {"name": "w", "run": "sleep", "count": 6},
        {"name": "mid", "children": [{"name": "leaf", "run": "sleep", "count": 2}]},
        {"name": "x", "run": "exec", "argv": ["sleep", "60"], "count": 3,
         "env": {"ARBOR_TEST_RUN": run.marker}}]})
    added = pipes_of(sup.pid) - before
    check(len(added) == 3 * 2, "the supervisor holds %d new pipes for 3 exec'd nodes and 10 "
          "builtins (want 6): %r" % (len(added), sorted(added)))
    fsrv_err = os.readlink("/proc/%d/fd/2" % fork_server_of(sup.pid))
    nodes = by_path(rep)
    for path in ("root", "root/mid", "root/w-0", "root/mid/leaf-1"):
        pid = nodes[path]["pid"]
        check(os.readlink("/proc/%d/fd/1" % pid) == "/dev/null",
              "%s: stdout %s" % (path, os.readlink("/proc/%d/fd/1" % pid)))
        check(os.readlink("/proc/%d/fd/2" % pid) == fsrv_err,
              "%s: stderr %s, the fork-server's %s" % (path, os.readlink("/proc/%d/fd/2" % pid),
                                                      fsrv_err))
    for path in ("root/x-0", "root/x-2"):
        pid = nodes[path]["pid"]
        for fd in (1, 2):
            target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
            check(target in added, "%s: fd %d is %s, not one of the supervisor's pipes" %
                  (path, fd, target))
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=T)
    check(r.returncode == 4, "cancel: exit %d %s" % (r.returncode, r.stderr))
    check(pipes_of(sup.pid) == before, "pipes left after the tree: %r" % (pipes_of(sup.pid) - before))
    # flood writes: its output is drained and counted as before
    code, rep = run.spawn_wait({"name": "f", "children": [
        {"name": "flood", "run": "flood", "bytes": 100000}]}, timeout=T)
    f = by_path(rep)["f/flood"]
    check(f["logs"]["lines"] > 0, "flood's output was not captured: %r" % f.get("logs"))


def test_supervisor_sigpipe_ignored(run):
    run.broker()
    sup = run.supervisor("sup1")
    tree, _ = spawn_running(run, SLEEPERS)
    sup.send_signal(signal.SIGPIPE)
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=T)
    check(r.returncode == 4, "cancel after SIGPIPE: %d %s" % (r.returncode, r.stderr))
    check(sup.poll() is None, "the supervisor died of SIGPIPE")


# ----------------------------------------------------------- fork-server ----

def test_fork_server_signals(run):
    """SIGTERM, SIGINT, SIGHUP, SIGPIPE to the fork-server while its
    supervisor lives: ignored (a signal to the whole process group is the
    supervisor's to handle: it cancels the trees properly). The trees keep
    running on the same fork-server and a cancel ends them cancelled. Its
    supervisor's death is what stops it (test_trees: SIGKILL of the
    supervisor)."""
    run.broker()
    sup = run.supervisor("sup1")
    tree, _ = spawn_running(run, SLEEPERS)
    fsrv = fork_server_of(sup.pid)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        os.kill(fsrv, sig)
    code, rep = run.spawn_wait({"name": "after", "children": [{"name": "z", "run": "exit"}]},
                               timeout=T)  # served after the signals: they were handled
    check(code == 0, "a tree after the signals: exit %d" % code)
    check(fork_server_of(sup.pid) == fsrv, "the fork-server was replaced")
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=T)
    check(r.returncode == 4, "cancel after the signals: %d %s" % (r.returncode, r.stderr))
    for n in walk(json.loads(r.stdout)["root"]):
        check(n["status"] == "cancelled", "%s is %s" % (n["path"], n["status"]))
    check(sup.poll() is None, "the supervisor died")


def s_has_interpreter(path):
    """Whether the ELF executable at path asks for a dynamic loader (a
    PT_INTERP program header): False for a static program."""
    import struct
    with open(path, "rb") as f:
        head = f.read(64)
        check(head[:4] == b"\x7fELF" and head[4] == 2, "%s is not a 64-bit ELF file" % path)
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))


def s_libraries(pid):
    """The shared libraries mapped in process pid (their file names)."""
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split()[5]) for line in f
                if len(line.split()) >= 6 and ".so" in os.path.basename(line.split()[5])}


def test_fork_server_maps_libc_alone(run):
    """Every worker is a fork of the fork-server and pays, at the fork and
    at its exit, for whatever the fork-server maps: it links neither
    ZeroMQ nor a JSON library, and when built static (the default: not
    under the sanitizers or valgrind) neither it nor a builtin worker maps
    any shared library at all."""
    run.broker()
    sup = run.supervisor("sup1")
    tree, rep = spawn_running(run, {"name": "root", "children": [
        {"name": "leaf", "run": "sleep"}]})
    fsrv = fork_server_of(sup.pid)
    worker = by_path(rep)["root/leaf"]["pid"]
    static = not s_has_interpreter(os.path.join(BIN, "arbor-forkserver"))
    for who, pid in (("the fork-server", fsrv), ("a builtin worker", worker)):
        libs = s_libraries(pid)
        banned = sorted(l for l in libs if any(k in l for k in ("zmq", "cjson", "sodium")))
        check(not banned, "%s maps %s" % (who, banned))
        check(not static or not libs, "%s of a static fork-server maps %s" % (who, sorted(libs)))
    r = run.ctl("cancel", tree, "--wait", "--json", timeout=T)
    check(r.returncode == 4, "cancel: exit %d %s" % (r.returncode, r.stderr))


def test_fork_server_stopped_while_a_tree_is_cancelled(run):
    """The fork-server stalls (SIGSTOP) with a spawn request pending; the
    tree is cancelled meanwhile, so its children are cancelled before they
    were ever spawned; then it goes on (SIGCONT). The root is spawned after
    its children ended: it must be told so, and end cancelled at once, not
    be stuck in cancelling_children until its grace runs out (SIGTERM,
    status killed)."""
    run.broker()
    sup = run.supervisor("sup1")
    fsrv = fork_server_of(sup.pid)
    os.kill(fsrv, signal.SIGSTOP)
    try:
        spec = {"name": "root", "grace_ms": 5000,
                "children": [{"name": "mid", "children": [{"name": "w", "run": "sleep"}]}]}
        r = run.ctl("spawn", "-", input=json.dumps(spec))
        check(r.returncode == 0, "spawn: %s" % r.stderr)
        tree = r.stdout.strip()
        r = run.ctl("cancel", tree)
        check(r.returncode == 0, "cancel: %s" % r.stderr)
    finally:
        os.kill(fsrv, signal.SIGCONT)
    t0 = time.monotonic()
    rep = wait_report(run, tree, lambda r: r["status"] != "running", "the end of the tree")
    nodes = by_path(rep)
    check(nodes["root/mid"]["status"] == "cancelled" and nodes["root/mid"]["pid"] is None,
          "mid: %s pid %s" % (nodes["root/mid"]["status"], nodes["root/mid"]["pid"]))
    check(nodes["root"]["status"] == "cancelled",
          "root is %s: %r (it was never told its children had exited)" %
          (nodes["root"]["status"], nodes["root"]["error"]))
    check(time.monotonic() - t0 < 4 * SLOW, "the cancelled tree took %.1fs" % (time.monotonic() - t0))


# ---------------------------------------------------------------- worker ----

def test_worker_signals(run):
    """Each signal arbor did not send kills a worker: it is `failed`
    (KilledBySignal, the signal in its report), its sibling cancelled."""
    run.broker()
    run.supervisor("sup1")
    sigs = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGKILL]
    trees = {}
    for sig in sigs:
        trees[sig] = spawn_running(run, {"name": "root", "children": [
            {"name": "victim", "run": "sleep"}, {"name": "bystander", "run": "sleep"}]})
    for sig, (tree, rep) in trees.items():
        os.kill(by_path(rep)["root/victim"]["pid"], sig)
    for sig, (tree, _) in trees.items():
        rep = wait_report(run, tree, lambda r: r["status"] != "running", "the end of the tree")
        nodes = by_path(rep)
        v = nodes["root/victim"]
        check(v["status"] == "failed" and v["exit"]["signal"] == sig.name and
              v["error"]["type"] == "KilledBySignal",
              "%s: victim %s %r %r" % (sig.name, v["status"], v["exit"], v["error"]))
        check(nodes["root/bystander"]["status"] == "cancelled", "%s: bystander %s" %
              (sig.name, nodes["root/bystander"]["status"]))
        check(rep["status"] == "failed", "%s: tree %s" % (sig.name, rep["status"]))


def test_workers_start_with_clean_signals(run):
    """Rule 5: a worker starts with no signal ignored and none blocked,
    whatever the supervisor was started with (here SIGUSR2 ignored) and
    whatever the fork-server ignores (SIGPIPE) or blocks (it reads SIGCHLD,
    SIGTERM, SIGINT, SIGHUP from a signalfd)."""
    run.broker()
    sup = run.start("sup1", ["sh", "-c", "trap '' USR2; exec \"$0\" \"$@\"",
                             os.path.join(BIN, "arbor-supervisor"), "--broker", run.broker_ep,
                             "--name", "sup1"] + root_flag("arbor-supervisor"))
    run.wait_log(sup, "registered with broker")
    with open("/proc/%d/status" % sup.pid) as f:
        ignored = [l for l in f if l.startswith("SigIgn:")][0].split()[1]
    check(int(ignored, 16) & (1 << (signal.SIGUSR2 - 1)), "the supervisor does not ignore SIGUSR2: %s" % ignored)
    # The program prints its own mask and ignored set on stderr and fails,
    # so that the report keeps its stderr. awk reads its own status: a
    # shell would show its mask of the moment it forks (dash blocks every
    # signal around a fork).
    spec = {"name": "root", "children": [{"name": "probe", "run": "exec", "argv": [
        "awk", '/^Sig(Ign|Blk):/ { print > "/dev/stderr" } END { exit 3 }', "/proc/self/status"]}]}
    code, report = run.spawn_wait(spec)
    probe = by_path(report)["root/probe"]
    text = (probe["error"] or {}).get("stderr", "")
    sets = dict(line.split(":") for line in text.strip().splitlines() if line.startswith("Sig"))
    check(set(sets) == {"SigIgn", "SigBlk"}, "probe printed %r" % text)
    for name, value in sets.items():
        check(int(value, 16) == 0, "the worker starts with %s %s" % (name, value.strip()))


if __name__ == "__main__":
    main([test_workers_start_with_clean_signals, test_broker_sighup_sigpipe, test_broker_stopped_while_workers_start,
          test_daemons_survive_a_closed_log_pipe, test_daemons_started_with_stdio_closed,
          test_supervisor_stop_signals, test_supervisor_second_signal_stops_at_once,
          test_supervisor_sigpipe_ignored, test_fork_server_signals,
          test_fork_server_stopped_while_a_tree_is_cancelled, test_worker_signals,
          test_second_signal_still_hands_back_the_report, test_fork_server_death_releases_every_fd,
          test_only_nodes_that_write_get_output_pipes, test_fork_server_maps_libc_alone])
