"""Reproducers of issue 13's defects 2, 4, 5, 9 and 10, and issue 14's exec
options (cwd, env_inherit, user, group), run against the real daemons.

Each test names the defect it keeps fixed; docs/RELIABILITY.md lists them.
Every wait is on a process exit, a log line or a reply, with a deadline."""

import json
import os
import subprocess
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BIN, by_path, check, main, TestFailure  # noqa: E402
from test_security import Curve, Peer, keygen, with_sockets  # noqa: E402

T = 10 * harness.SLOW
BROKER = os.path.join(BIN, "arbor-broker")
SUPERVISOR = os.path.join(BIN, "arbor-supervisor")
ARBORCTL = os.path.join(BIN, "arborctl")
SPEC_MAX_NODE_BYTES = 56000  # supervisor/spec.h


def wait_exit(p, what, timeout=T):
    """p's exit code; a TestFailure when it is still running at the deadline
    (the defect: it ran on forever)."""
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s still runs after %.0f s" % (what, timeout))


# ---- spec refusals: defects 2, 4, 5 -----------------------------------------

@with_sockets
def test_refused_specs_spawn_nothing(run):
    """Defect 2 (a node over the fork-server's payload limit), 4 (crash with
    a signal that does not end a process) and 5 (\\u0000 in a string): rc 2
    with the node path, and nothing spawned. The \\u0000 is also sent to the
    supervisor directly (raw envelope): arborctl is not the only client."""
    run.broker()
    sup = run.supervisor("sup1")
    big = {"name": "root", "children": [
        {"name": "big", "run": "exec", "argv": ["true"],
         "env": {"X": "x" * SPEC_MAX_NODE_BYTES}}]}
    stopper = {"name": "root", "children": [
        {"name": "c", "run": "crash", "signal": "SIGSTOP"}]}
    nul = {"name": "root", "children": [
        {"name": "f", "run": "fail", "error": {"type": "Bad\u0000Type", "message": "m"}}]}
    for spec, words in ((big, ["root/big", str(SPEC_MAX_NODE_BYTES)]),
                        (stopper, ["root/c", "SIGSTOP", "does not end a process"]),
                        (nul, ["/children/0/error/type", "\\u0000"])):
        r = run.ctl("spawn", "-", input=json.dumps(spec))
        check(r.returncode == 2, "spawn of %s: exit %d, expected 2: %s" %
              (words[0], r.returncode, r.stderr))
        for w in words:
            check(w in r.stderr, "message for %s lacks %r: %s" % (words[0], w, r.stderr))
    client = Peer(run, "raw-client")
    client.hello()
    mid = client.send("sup1", "spawn", {"spec": nul})
    env = client.expect("error", re=mid, sender="sup1")
    check(env["body"]["code"] == "invalid_spec" and env["body"]["path"] == "root/f" and
          "error/type" in env["body"]["message"],
          "raw spawn with \\u0000: %s" % env["body"])
    listed = run.ctl("list", "--json")
    check(listed.returncode == 0 and json.loads(listed.stdout)["trees"] == [],
          "a refused spec left a tree: %s" % listed.stdout)
    check("spawning" not in run.log_of(sup), "a refused spec was spawned")
    check(sup.poll() is None, "supervisor died")


# ---- defect 9: endpoints -----------------------------------------------------

def test_second_broker_on_a_live_ipc_endpoint_is_refused(run):
    """Defect 9: libzmq unlinks the socket file and binds again: the first
    broker became unreachable. Now the second one exits non-zero, the first
    keeps serving; a stale file (a broker killed with SIGKILL) is still
    replaced."""
    first = run.broker()
    second = run.start("broker2", [BROKER, "--bind", run.broker_ep] +
                       harness.root_flag("arbor-broker"))
    second.expect_death = True
    code = wait_exit(second, "a second broker on a live ipc endpoint")
    check(code != 0, "second broker exited %d" % code)
    log = run.log_of(second)
    check("accepts connections" in log, "second broker's message: %s" % log)
    r = run.ctl("peers", "--json", timeout=T)
    check(r.returncode == 0, "the first broker is unreachable: %d %s" % (r.returncode, r.stderr))
    first.kill()
    first.wait(timeout=T)
    first.expect_death = True
    check(os.path.exists(run.broker_ep[len("ipc://"):]), "SIGKILL left no socket file")
    third = run.start("broker3", [BROKER, "--bind", run.broker_ep] +
                      harness.root_flag("arbor-broker"))
    run.wait_log(third, "listening")
    r = run.ctl("peers", "--json", timeout=T)
    check(r.returncode == 0, "broker on a stale socket file: %d %s" % (r.returncode, r.stderr))


def test_bad_endpoints_are_usage_errors(run):
    """Defect 9: tcp://127.0.0.1:99999 was accepted (libzmq bound another
    port). Every program refuses a port outside 1..65535 and garbage: exit 2."""
    for argv in ([BROKER, "--bind", "tcp://127.0.0.1:99999"] + harness.root_flag("arbor-broker"),
                 [BROKER, "--bind", "tcp://127.0.0.1:0"] + harness.root_flag("arbor-broker"),
                 [SUPERVISOR, "--broker", "tcp://127.0.0.1:70000", "--name", "s"] +
                 harness.root_flag("arbor-supervisor"),
                 [SUPERVISOR, "--broker", "ipc://", "--name", "s"] +
                 harness.root_flag("arbor-supervisor"),
                 [ARBORCTL, "--broker", "tcp://localhost:99999", "peers"],
                 [ARBORCTL, "--broker", "localhost:5555", "peers"]):
        r = subprocess.run(argv, capture_output=True, text=True, env=run.env, timeout=T)
        check(r.returncode == 2, "%s: exit %d, expected 2: %s" % (argv[1:3], r.returncode,
                                                                  r.stderr))
        check(argv[2] in r.stderr, "%s: message does not name the endpoint: %s" %
              (argv[1:3], r.stderr))


# ---- defect 10: a supervisor the broker will not register ---------------------

def test_supervisor_with_another_names_certificate_exits(run):
    """Defect 10: a supervisor whose CURVE certificate is for another name
    logged the refusal and ran on forever. Known at start: exit 2."""
    curve = Curve(run)
    cert = curve.allow_cert("sup1", "supervisor")
    run.broker(*curve.broker_args())
    p = run.start("sup2", [SUPERVISOR, "--broker", run.broker_ep, "--name", "sup2"] +
                  harness.root_flag("arbor-supervisor"), env=curve.env(cert))
    p.expect_death = True
    code = wait_exit(p, "a supervisor named sup2 with sup1's certificate")
    log = run.log_of(p)
    check(code == 2, "exit %d, expected 2: %s" % (code, log))
    check('"sup1"' in log and '"sup2"' in log, "message: %s" % log)


def test_supervisor_refused_by_the_broker_exits(run):
    """Defect 10: when only the broker knows (its copy of the certificate
    binds the key to sup1, the supervisor's copy says sup2), the broker's
    refusal of the hello stops the idle supervisor: exit 3 with the reason."""
    curve = Curve(run)
    cert = curve.allow_cert("sup1", "supervisor")
    for path in (cert, cert + "_secret"):
        with open(path) as f:
            text = f.read()
        check('name = "sup1"' in text, "no name in %s" % path)
        with open(path, "w") as f:
            f.write(text.replace('name = "sup1"', 'name = "sup2"'))
    run.broker(*curve.broker_args())
    p = run.start("sup2", [SUPERVISOR, "--broker", run.broker_ep, "--name", "sup2"] +
                  harness.root_flag("arbor-supervisor"), env=curve.env(cert))
    p.expect_death = True
    code = wait_exit(p, "a supervisor the broker refuses")
    log = run.log_of(p)
    check(code == 3, "exit %d, expected 3: %s" % (code, log))
    check("refused to register" in log and "sup1" in log, "message: %s" % log)


# ---- issue 14: exec options ----------------------------------------------------

def shared_dir(run):
    """A directory every user can write to, under the run's dir (which
    others may traverse, not list)."""
    d = os.path.join(run.dir, "shared")
    os.mkdir(d)
    os.chmod(d, 0o777)
    os.chmod(run.dir, 0o711)
    return d


def test_exec_cwd_and_clean_environment(run):
    """cwd: the program starts there; env_inherit false: it sees only "env"
    and arbor's own ARBOR_* variables, nothing else of the supervisor's
    environment."""
    run.env["DEFECTS_CANARY"] = "1"  # in the supervisor's environment, not the program's
    run.broker()
    run.supervisor("sup1")
    d = shared_dir(run)
    spec = {"name": "root", "children": [
        {"name": "x", "run": "exec", "cwd": d, "env_inherit": False,
         "env": {"PATH": "/usr/bin:/bin", "ONLY": "this"},
         "argv": ["sh", "-c", "pwd > pwd.txt; env > env.txt"]}]}
    code, report = run.spawn_wait(spec, timeout=T)
    check(code == 0, "exit %d: %s" % (code, report and report["root"]))
    with open(os.path.join(d, "pwd.txt")) as f:
        check(f.read().strip() == d, "cwd not entered")
    with open(os.path.join(d, "env.txt")) as f:
        names = {line.split("=", 1)[0] for line in f.read().splitlines() if "=" in line}
    check("ONLY" in names and "ARBOR_NODE" in names, "env lacks ONLY or ARBOR_NODE: %s" % names)
    leaked = [n for n in names if n not in ("PATH", "ONLY", "PWD", "SHLVL", "_")
              and not n.startswith("ARBOR_")]
    check(not leaked, "inherited variables leaked: %s" % leaked)
    check("DEFECTS_CANARY" not in names, "the supervisor's environment leaked")
    check("ARBOR_TEST_RUN" in names, "arbor's own variables were dropped: %s" % names)


def test_exec_user_and_group(run):
    """user/group: the program runs with the ids asked for and only that
    user's groups. The supervisor must be root; unprivileged runs test the
    refusal in tests/unit/test_spec.c."""
    if os.geteuid() != 0:
        print("skipped: not root")
        return
    run.broker()
    run.supervisor("sup1")
    d = shared_dir(run)
    spec = {"name": "root", "children": [
        {"name": "x", "run": "exec", "cwd": d, "user": "nobody", "group": 65534,
         "argv": ["sh", "-c", "id -u > u.txt; id -g > g.txt; id -G > G.txt; "
                              "echo $HOME $USER $LOGNAME > home.txt"]},
        # a uid without a passwd entry: runs with "group", HOME left as it was
        {"name": "y", "run": "exec", "cwd": d, "user": 4242, "group": 4243,
         "argv": ["sh", "-c", "id -u > u2.txt; id -G > G2.txt; echo $HOME > home2.txt"]}]}
    code, report = run.spawn_wait(spec, timeout=T)
    check(code == 0, "exit %d: %s" % (code, report and by_path(report)["root/x"]))

    def read(name):
        with open(os.path.join(d, name)) as f:
            return f.read().strip()
    nobody_uid = subprocess.run(["id", "-u", "nobody"], capture_output=True,
                                text=True).stdout.strip()
    check(read("u.txt") == nobody_uid, "uid %s" % read("u.txt"))
    check(read("g.txt") == "65534", "gid %s" % read("g.txt"))
    check("0" not in read("G.txt").split(), "root's group kept: %s" % read("G.txt"))
    import pwd
    home = pwd.getpwnam("nobody").pw_dir
    check(read("home.txt") == "%s nobody nobody" % home,
          "HOME USER LOGNAME: %r, want %r" % (read("home.txt"), "%s nobody nobody" % home))
    check(read("u2.txt") == "4242" and read("G2.txt") == "4243",
          "uid %s, groups %s (want 4242, 4243)" % (read("u2.txt"), read("G2.txt")))
    check(read("home2.txt") == os.environ.get("HOME", ""),
          "HOME %s, not the supervisor's %s" % (read("home2.txt"), os.environ.get("HOME")))


def test_exec_options_that_fail_at_spawn(run):
    """A cwd or a user that does not exist is known only where the worker
    starts: spawn_failed, naming the option and the reason."""
    run.broker()
    run.supervisor("sup1")
    children = [{"name": "nodir", "run": "exec", "cwd": "/nonexistent/arbor-test",
                 "argv": ["true"]}]
    if os.geteuid() == 0:
        children.append({"name": "nouser", "run": "exec", "user": "no-such-user-arbor",
                         "argv": ["true"]})
    spec = {"name": "root", "strategy": "one_for_one", "max_restarts": 0, "children": children}
    code, report = run.spawn_wait(spec, timeout=T)
    check(code == 1, "exit %d, expected 1" % code)
    nodes = by_path(report)
    for path, words in (("root/nodir", ["cwd", "/nonexistent/arbor-test", "No such file"]),
                        ("root/nouser", ["no-such-user-arbor", "does not exist"])):
        if path not in nodes:
            continue
        n = nodes[path]
        msg = (n["error"] or {}).get("message", "")
        check(n["status"] == "spawn_failed", "%s is %s" % (path, n["status"]))
        for w in words:
            check(w in msg, "%s: message lacks %r: %s" % (path, w, msg))


@with_sockets
def test_exec_verdicts_while_the_fork_server_forks_on(run):
    """The fork-server forks the next exec'd child before the last one has
    exec'd, and settles each spawn when its verdict arrives. Programs that
    exit at once (often reaped before their verdict is read), that fail,
    that cannot be found and that have no valid format, interleaved: each
    gets its own status, none is lost or swapped."""
    run.broker()
    run.supervisor("sup1")
    bad = os.path.join(run.dir, "noformat")
    with open(bad, "wb") as f:
        f.write(b"\x7fELF-but-not-really")
    os.chmod(bad, 0o755)
    kinds = {"ok": (["true"], "ok"), "fails": (["false"], "failed"),
             "missing": (["/nonexistent/arbor-prog"], "spawn_failed"),
             "noformat": ([bad], "spawn_failed")}
    children = []
    for i in range(60):
        kind = ("ok", "fails", "ok", "missing", "ok", "noformat")[i % 6]
        children.append({"name": "%s-%d" % (kind, i), "run": "exec", "restart": "temporary",
                         "argv": kinds[kind][0]})
    spec = {"name": "root", "strategy": "one_for_one", "children": children}
    code, report = run.spawn_wait(spec, timeout=T)
    check(code == 1, "exit %d, expected 1 (failed children)" % code)
    nodes = by_path(report)
    for c in children:
        n = nodes["root/" + c["name"]]
        want = kinds[c["name"].split("-")[0]][1]
        check(n["status"] == want, "%s is %s, expected %s (%s)"
              % (n["path"], n["status"], want, n.get("error")))
        if c["name"].startswith("noformat"):
            check("ENOEXEC" in (n["error"] or {}).get("message", ""), "%s: %s" % (n["path"], n["error"]))
        code_want = {"ok": 0, "fails": 1}.get(c["name"].split("-")[0])
        if code_want is not None:
            check((n.get("exit") or {}).get("code") == code_want,
                  "%s: exit %s, expected %d" % (n["path"], n.get("exit"), code_want))


if __name__ == "__main__":
    main([test_refused_specs_spawn_nothing, test_second_broker_on_a_live_ipc_endpoint_is_refused,
          test_bad_endpoints_are_usage_errors, test_supervisor_with_another_names_certificate_exits,
          test_supervisor_refused_by_the_broker_exits, test_exec_cwd_and_clean_environment,
          test_exec_user_and_group, test_exec_options_that_fail_at_spawn,
          test_exec_verdicts_while_the_fork_server_forks_on])
