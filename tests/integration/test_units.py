"""The systemd units (systemd/): what they declare, and their ExecStart
lines run the way systemd runs them (CI has no systemd as PID 1): as the
unit's user when the tests run as root, with the unit's UMask and
Environment, a runtime directory standing in for RuntimeDirectory=, and a
NOTIFY_SOCKET of our own. READY=1 must arrive only once the program is
ready (the broker's socket exists; the supervisor is registered), and a
tree spawned through them must run."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import harness
from harness import BIN, SRC, SLOW, check, main
import units

BROKER_UNIT = os.path.join(SRC, "systemd", "arbor-broker.service")
SUPER_UNIT = os.path.join(SRC, "systemd", "arbor-supervisor@.service")


def test_declarations(run):
    """The settings the README explains, present and consistent."""
    b, s = units.parse(BROKER_UNIT), units.parse(SUPER_UNIT)
    for u, name in ((b, "broker"), (s, "supervisor")):
        for key, want in (("Type", "notify"), ("User", "arbor"), ("Group", "arbor"),
                          ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                          ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                          ("Restart", "on-failure")):
            check(units.get(u, key) == want, "%s unit: %s=%r, want %r" %
                  (name, key, units.get(u, key), want))
    check(units.get(b, "RuntimeDirectory") == "arbor", "broker: no RuntimeDirectory=arbor")
    check(units.get(s, "RuntimeDirectory") is None,
          "supervisor: a RuntimeDirectory of its own would be removed when it stops, "
          "taking the broker's socket with it")
    check(any("/run/arbor" in v for v in units.get_all(s, "ReadWritePaths")),
          "supervisor: /run/arbor not in ReadWritePaths")
    check(units.get(s, "KillMode") == "mixed",
          "supervisor: KillMode=%r: systemd must SIGTERM the supervisor alone" %
          units.get(s, "KillMode"))
    check(units.get(s, "ProtectControlGroups") is None and units.get(s, "Delegate") == "yes",
          "supervisor: needs its cgroup subtree (Delegate=yes, no ProtectControlGroups)")
    argv = units.exec_argv(s, "sup1", {}, {})
    check("--name" in argv and argv[argv.index("--name") + 1] == "sup1", "instance name: %r" % argv)
    deadline_s = int(argv[argv.index("--stop-deadline") + 1]) / 1000.0
    # --stop-deadline, then 1 s answering clients, then the fork-server's own
    # teardown (SIGTERM, SIGKILL after 300 ms, reap): well under 3 s more.
    stop = units.seconds(units.get(s, "TimeoutStopSec") or "90s")
    check(stop >= deadline_s + 3, "TimeoutStopSec %ss is not above --stop-deadline %ss + 3 s" %
          (stop, deadline_s))
    # A supervisor that never reaches its broker never says READY=1: the
    # README tells what systemd then does with these settings (the default
    # 90 s start timeout, a restart 2 s later, no start limit reached).
    for key in ("TimeoutStartSec", "TimeoutSec"):
        check(units.get(s, key) is None, "supervisor: %s=%s: the README says 90 s (the default)" %
              (key, units.get(s, key)))
    check(units.get(s, "RestartSec") == "2s", "supervisor: RestartSec=%r, the README says 2s" %
          units.get(s, "RestartSec"))
    for key in ("StartLimitBurst", "StartLimitIntervalSec"):
        check(units.get(s, key, section="Unit") is None,
              "supervisor: %s: the README says systemd's default start limit" % key)
    bind = units.exec_argv(b, "", {}, {})
    ep = bind[bind.index("--bind") + 1]
    env = units.environment(s, {})
    check(env.get("ARBOR_BROKER") == ep, "supervisor's ARBOR_BROKER %r is not the broker's %r" %
          (env.get("ARBOR_BROKER"), ep))
    with open(os.path.join(SRC, "systemd", "arbor.sysusers")) as f:
        check(any(l.split()[:2] == ["u", "arbor"] for l in f if l.strip() and l[0] != "#"),
              "arbor.sysusers does not create user arbor")


def run_units(run, bin_dir, stand_in="nobody", unit_dir=None):
    """Start the broker and supervisor "sup1" from their units' ExecStart
    (units from unit_dir, default systemd/; programs from bin_dir), as the
    user stand_in (None: the units' own User=) when root. Returns (broker,
    supervisor, env for arborctl, credentials, cleanup function)."""
    unit_dir = unit_dir or os.path.dirname(BROKER_UNIT)
    b = units.parse(os.path.join(unit_dir, os.path.basename(BROKER_UNIT)))
    s = units.parse(os.path.join(unit_dir, os.path.basename(SUPER_UNIT)))
    creds = units.credentials(b, stand_in)
    top = tempfile.mkdtemp(prefix="arbor-units-")
    os.chmod(top, 0o711)  # the unit's user must reach its runtime directory
    if creds:
        probe = subprocess.run([os.path.join(bin_dir, "arborctl"), "--version"],
                               capture_output=True, preexec_fn=units.preexec(creds, None))
        if probe.returncode != 0:
            print("note: %s cannot run %s: running the units as root" % (creds[2], bin_dir))
            creds = None
    runtime = os.path.join(top, "run", "arbor")
    state = os.path.join(top, "lib", "arbor", "sup1")
    os.makedirs(os.path.dirname(runtime), 0o755)
    os.mkdir(runtime, int(units.get(b, "RuntimeDirectoryMode") or "0755", 8))
    os.makedirs(state, 0o755)
    os.chmod(os.path.dirname(runtime), 0o755)
    os.chmod(os.path.dirname(os.path.dirname(state)), 0o755)
    os.chmod(os.path.dirname(state), 0o755)
    if creds:
        os.chown(runtime, creds[0], creds[1])
        os.chown(state, creds[0], creds[1])
    paths = {"/usr/bin": bin_dir, "/run/arbor": runtime, "/var/lib/arbor": os.path.dirname(state)}

    def cleanup():
        shutil.rmtree(top, ignore_errors=True)

    try:
        nb = units.Notify(os.path.join(top, "notify-broker"), creds and creds[0])
        env = units.subst_env(units.environment(b, run.env), paths)
        env["NOTIFY_SOCKET"] = nb.path
        umask = units.get(b, "UMask")
        broker = units.start(run, "broker", units.exec_argv(b, "", env, paths), env, creds,
                             int(umask, 8) if umask else None,
                             no_new_privs=units.get(b, "NoNewPrivileges") == "yes")
        nb.wait("READY=1", 10)
        sock = os.path.join(runtime, "broker.sock")
        check(os.path.exists(sock) and stat.S_ISSOCK(os.stat(sock).st_mode),
              "broker said READY=1 before its socket existed")
        if umask:
            check(os.stat(sock).st_mode & 0o060 == 0o060,
                  "socket mode %o: group arbor cannot connect" % os.stat(sock).st_mode)

        ns = units.Notify(os.path.join(top, "notify-sup1"), creds and creds[0])
        env = units.subst_env(units.environment(s, run.env), paths)
        env.pop("ARBOR_BROKER", None)
        env = units.subst_env(units.environment(s, env), paths)
        env["NOTIFY_SOCKET"] = ns.path
        wd = units.get(s, "WorkingDirectory")
        sup = units.start(run, "sup1", units.exec_argv(s, "sup1", env, paths), env, creds, None,
                          cwd=units.subst_env({"d": wd.replace("%i", "sup1")}, paths)["d"]
                          if wd else None,
                          no_new_privs=units.get(s, "NoNewPrivileges") == "yes")
        msg = ns.wait("READY=1", 15)
        check("READY=1" in msg.split("\n"), msg)
        ctl_env = dict(env)
        del ctl_env["NOTIFY_SOCKET"]
        return broker, sup, ctl_env, creds, cleanup
    except Exception:
        cleanup()
        raise


def ctl(env, creds, *args, input=None, timeout=30, bin_dir=BIN):
    return subprocess.run([os.path.join(bin_dir, "arborctl")] + list(args), input=input,
                          capture_output=True, text=True, env=env, timeout=timeout * SLOW,
                          preexec_fn=units.preexec(creds, None))


def test_exec_start(run):
    broker, sup, env, creds, cleanup = run_units(run, BIN)
    try:
        # READY=1 came after registration: the broker lists it already.
        r = ctl(env, creds, "peers", "--json")
        names = [p["name"] for p in json.loads(r.stdout)["peers"]]
        check(r.returncode == 0 and "sup1" in names, "sup1 not registered at READY=1: %r" % names)
        # Workers inherit no NOTIFY_SOCKET, and a tree runs through the units.
        spec = {"name": "root", "children": [
            {"name": "no-notify", "run": "exec",
             "argv": ["/bin/sh", "-c", 'test -z "$NOTIFY_SOCKET"']},
            {"name": "no-new-privs", "run": "exec",
             "argv": ["/bin/sh", "-c", "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status"]},
            {"name": "s", "run": "sleep", "ms": 50, "count": 3}]}
        r = ctl(env, creds, "spawn", "--wait", "--json", "-", input=json.dumps(spec))
        check(r.returncode == 0, "tree through the units: exit %d\n%s%s" %
              (r.returncode, r.stdout, r.stderr))
        rep = json.loads(r.stdout)
        harness.validate_report(rep)
        check(rep["status"] == "ok", "tree %s" % rep["status"])
        # systemctl stop with KillMode=mixed: SIGTERM to the supervisor alone,
        # with a tree running. It must cancel the tree and exit 0 well within
        # TimeoutStopSec; nothing of the tree may outlive it.
        r = ctl(env, creds, "spawn", "-", input=json.dumps(
            {"name": "root", "children": [{"name": "s", "run": "sleep", "count": 4}]}))
        check(r.returncode == 0, "spawn: %s" % r.stderr)
        tree = r.stdout.strip()
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:  # hang guard: until every worker runs
            st = ctl(env, creds, "status", "--json", tree)
            if st.returncode == 0 and all(n["status"] == "running" for n in
                                          harness.walk(json.loads(st.stdout)["root"])):
                break
            time.sleep(0.05)  # polling the report: no event says "all running"
        stop = units.seconds(units.get(units.parse(SUPER_UNIT), "TimeoutStopSec"))
        t0 = time.monotonic()
        sup.send_signal(signal.SIGTERM)
        rc = sup.wait(timeout=stop * SLOW)
        check(rc == 0, "supervisor exited %d on SIGTERM" % rc)
        check(time.monotonic() - t0 < stop, "stop took longer than TimeoutStopSec")
        left = [p for p in run.survivors(timeout=1) if p != broker.pid]
        check(not left, "processes outlived the supervisor's stop: %r" % left)
        run.wait_log(sup, "supervisor sup1 stopped")
    finally:
        cleanup()


if __name__ == "__main__":
    main([test_declarations, test_exec_start])
