"""Integration test harness for arbor: starts the real broker, supervisors and
CLI on ipc endpoints in a private temp dir, and guarantees that everything a
test started is killed and reaped, even on failure, and that no process of
the run survives (checked by a marker in every process's environment).

Waits are on events (a line in a log, a reply, a process exit) with a
deadline; nothing sleeps to synchronise."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

BIN = os.environ.get("ARBOR_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
SRC = os.environ.get("ARBOR_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
# Under valgrind or sanitizers everything is slower: scale the hang guards.
SLOW = float(os.environ.get("ARBOR_TEST_SLOW", "1"))


class TestFailure(AssertionError):
    pass


def schema_validator(name):
    """A Draft 2020-12 validator for schema/NAME, its $refs resolved within
    schema/."""
    import jsonschema
    store = {}
    schema_dir = os.path.join(SRC, "schema")
    for f in os.listdir(schema_dir):
        if f.endswith(".json"):
            with open(os.path.join(schema_dir, f)) as fh:
                doc = json.load(fh)
            store[doc["$id"]] = doc
    root = store["https://arbor.invalid/schema/" + name]
    return jsonschema.Draft202012Validator(
        root, resolver=jsonschema.RefResolver.from_schema(root, store=store))


_report_validator = None


def validate_report(report):
    """Check a report against schema/report.json (the report contract)."""
    global _report_validator
    if _report_validator is None:
        _report_validator = schema_validator("report.json")
    errors = sorted(_report_validator.iter_errors(report), key=lambda e: list(e.path))
    if errors:
        raise TestFailure("report does not match schema/report.json: %s at %s" %
                          (errors[0].message, "/".join(str(p) for p in errors[0].path)))


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def marked_pids(marker, var="ARBOR_TEST_RUN", pids=None):
    """PIDs of live (non-zombie) processes whose environment holds
    var=marker, among pids (default: every process on the host)."""
    needle = ("%s=%s" % (var, marker)).encode()
    found = []
    if pids is None:
        pids = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    for pid in pids:
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
            with open("/proc/%d/stat" % pid, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and needle in env.split(b"\0"):
            found.append(pid)
    return found


_root_flags = {}


def root_flag(program):
    """["--allow-root"] when the tests run as root (CI does) and program knows
    the flag, else []: without it a daemon run as root warns loudly, and
    refuses when ARBOR_REFUSE_ROOT=1 is set (docs/SECURITY.md)."""
    if os.geteuid() != 0:
        return []
    if program not in _root_flags:
        r = subprocess.run([os.path.join(BIN, program), "--help"], capture_output=True,
                           text=True, timeout=10)
        _root_flags[program] = ["--allow-root"] if "--allow-root" in r.stdout else []
    return _root_flags[program]


class Run:
    """One test run: a temp dir, the daemons it started, and the cleanup."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="arbor-%s-" % name)
        self.marker = uuid.uuid4().hex
        self.procs = []
        self.broker_ep = "ipc://%s/broker.sock" % self.dir
        self.env = dict(os.environ)
        self.env["ARBOR_TEST_RUN"] = self.marker
        self.env["ARBOR_BROKER"] = self.broker_ep
        self.env.setdefault("ARBOR_LOG_LEVEL", "info")
        if SLOW != 1:  # sanitized daemons under load: arborctl waits longer for a welcome
            self.env.setdefault("ARBOR_CONNECT_TIMEOUT", "%g" % (3 * SLOW))

    # -- processes -------------------------------------------------------
    def start(self, name, argv, env=None):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             env=env or self.env, close_fds=True)
        p.log_path = log.name
        p.arbor_name = name
        log.close()
        self.procs.append(p)
        return p

    def log_of(self, p):
        with open(p.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, p, text, timeout=10):
        """Wait until text appears in p's log (an event), with a deadline."""
        deadline = time.monotonic() + timeout * SLOW
        size = 0
        while time.monotonic() < deadline:
            content = self.log_of(p)
            if text in content:
                return
            if p.poll() is not None:
                raise TestFailure("%s exited (%s) before logging %r:\n%s" %
                                  (p.arbor_name, p.returncode, text, content[-3000:]))
            if len(content) == size:
                wait_for_change(p.log_path, size, deadline)
            size = len(content)
        raise TestFailure("%s did not log %r within %ss:\n%s" %
                          (p.arbor_name, text, timeout, self.log_of(p)[-3000:]))

    def broker(self, *extra, name="broker"):
        """Start a broker on the run's endpoint (name: its log's name; a
        broker started again after one was killed needs another)."""
        extra = list(extra)
        if SLOW != 1 and "--expiry-ms" not in extra:
            # Sanitized and loaded: raw test peers that do not heartbeat, and
            # slowed daemons, are not taken for dead after the default 5 s.
            extra += ["--expiry-ms", "%d" % (5000 * SLOW)]
        p = self.start(name, [os.path.join(BIN, "arbor-broker"), "--bind", self.broker_ep] +
                       root_flag("arbor-broker") + extra)
        self.wait_log(p, "listening")
        return p

    def supervisor(self, name="sup1", *extra):
        p = self.start(name, [os.path.join(BIN, "arbor-supervisor"), "--broker", self.broker_ep,
                              "--name", name] + root_flag("arbor-supervisor") + list(extra))
        self.wait_log(p, "registered with broker")
        return p

    def ctl(self, *args, input=None, timeout=60):
        """Run arborctl to completion; returns CompletedProcess (text)."""
        argv = [os.path.join(BIN, "arborctl"), "--broker", self.broker_ep] + list(args)
        return subprocess.run(argv, input=input, capture_output=True, text=True, env=self.env,
                              timeout=timeout * SLOW)

    def spawn_wait(self, spec, *extra, timeout=60):
        """spawn --wait --json a spec (dict); returns (exit code, report dict)."""
        r = self.ctl("spawn", "--wait", "--json", *extra, "-", input=json.dumps(spec),
                     timeout=timeout)
        try:
            report = json.loads(r.stdout) if r.stdout.strip() else None
        except ValueError:
            raise TestFailure("arborctl printed no JSON (exit %d):\n%s\n%s" %
                              (r.returncode, r.stdout, r.stderr))
        if report is not None:
            validate_report(report)
        return r.returncode, report

    def report(self, tree, timeout=10):
        """The tree's report (status --json), or None when none came."""
        r = self.ctl("status", tree, "--json", timeout=timeout)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def wait_report(self, tree, pred, what, timeout=30):
        """Poll the tree's report until pred(report), with a deadline (a hang
        guard: the supervisor publishes no event for most such states)."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            rep = self.report(tree)
            if rep and pred(rep):
                return rep
            if time.monotonic() > deadline:
                raise TestFailure("tree %s: %s did not happen: %s" % (
                    tree, what, rep and [(n["path"], n["status"]) for n in walk(rep["root"])]))
            time.sleep(0.05)  # polling the report until pred holds

    def wait_gone(self, pid, what, timeout=30):
        """Wait until process pid has ended (gone, or a zombie), with a deadline."""
        deadline = time.monotonic() + timeout * SLOW
        while pid_alive(pid):
            if time.monotonic() >= deadline:
                raise TestFailure("%s (pid %d) still runs after %ss" % (what, pid, timeout))
            time.sleep(0.02)  # polling /proc: no event tells a stranger's end

    def kill_all(self):
        """SIGTERM to each daemon in the reverse of their start, each waited
        for before the next (supervisors before their broker), as a service
        manager stops dependent services. Not all at once: a broker that
        closes while a stopping supervisor's last messages wait to leave can
        make libzmq 4.3.4's I/O thread abort that supervisor
        (stream_engine_base.cpp:331, zeromq/libzmq#4841; docs/RELIABILITY.md)."""
        deadline = time.monotonic() + 5 * SLOW
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def survivors(self, timeout=3, besides=()):
        """Marked processes (but those in besides) still alive after at most
        timeout s: none, or those left at the deadline."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            left = [p for p in marked_pids(self.marker) if p not in besides]
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.02)  # polling /proc: there is no event for "none left"

    def tree_survivors(self, timeout=3):
        """Marked processes other than the daemons and their fork-servers,
        after at most timeout s: what a finished tree must not leave."""
        daemons = {p.pid for p in self.procs}
        for p in self.procs:
            if p.arbor_name.startswith("sup"):
                daemons |= set(children_of(p.pid))
        return self.survivors(timeout, besides=daemons)

    def cleanup(self):
        self.kill_all()
        left = self.survivors()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return left


def wait_for_change(path, size, deadline):
    """Block until path grows past size or the deadline (inotify-free: short polls)."""
    while time.monotonic() < deadline:
        try:
            if os.path.getsize(path) != size:
                return
        except OSError:
            return
        time.sleep(0.01)


def pid_alive(pid):
    """Whether pid is a live process (a zombie is not)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def children_of(pid):
    """PIDs of the live children of pid (from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def fork_server_of(sup_pid):
    """The supervisor's one child: its fork-server (workers are its children)."""
    kids = children_of(sup_pid)
    return kids[0] if kids else None


def walk(node):
    yield node
    for c in node.get("children", []):
        yield from walk(c)


def by_path(report):
    return {n["path"]: n for n in walk(report["root"])}


def main(tests):
    """Run test functions (each takes a Run); print a closing summary line."""
    passed = failed = 0
    only = sys.argv[1:]
    for fn in tests:
        if only and fn.__name__ not in only:
            continue
        run = Run(fn.__name__)
        t0 = time.monotonic()
        ok = True
        try:
            fn(run)
        except Exception:
            ok = False
            traceback.print_exc()
            for p in run.procs:
                print("---- %s log (tail) ----\n%s" % (p.arbor_name, run.log_of(p)[-4000:]))
        left = run.cleanup()
        if left:
            ok = False
            print("%s: processes survived the run: %s" % (fn.__name__, left))
        for p in run.procs:
            if p.returncode not in (0, -signal.SIGTERM) and ok and not getattr(p, "expect_death", False):
                ok = False
                print("%s: %s exited with %s:\n%s" % (fn.__name__, p.arbor_name, p.returncode,
                                                      run.log_of(p)[-3000:]))
        dt = time.monotonic() - t0
        print("%s %s (%.2fs)" % ("PASS" if ok else "FAIL", fn.__name__, dt), flush=True)
        if ok:
            passed += 1
            shutil.rmtree(run.dir, ignore_errors=True)
        else:
            failed += 1
            print("  kept %s for inspection" % run.dir)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
