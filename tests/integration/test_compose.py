"""Compose integration tests: the real images (docker/build.sh) in the real
stack (docker/docker-compose.yml: broker, sup1, sup2, cli), one compose
project per scenario, each brought down with `down -v --remove-orphans` even
on failure.

  a. a nested failing tree on each supervisor, spawned from the CLI
     container; the error reports are checked;
  b. the broker container killed and recreated mid-run: supervisors
     register again, trees keep running, a tree that failed during
     the outage keeps its report, a later cancel works and its report is
     complete;
  c. one supervisor container killed: the broker reports it lost, the other
     supervisor is unaffected, no process of the killed one survives;
  d. one supervisor partitioned (`docker network disconnect`) and
     reconnected: it comes back and its trees are intact;
  e. a tree spanning both supervisors' containers;
  f. the fork-server SIGKILLed inside a supervisor container (docker exec):
     its trees are lost, what their programs started is killed, a new
     fork-server runs the next tree.

The long trees of b, c, d and f include an exec'd program whose children
try to outlive it (arbor-test-escaper: a setsid'd child, a double-forked
daemon, a child that ignores SIGTERM; the image build adds it with
--test-helpers). Each carries a unique ARBOR_TEST_MARK in its environment:
after every cancel, the kill of the container and the kill of the
fork-server, no process carrying it is left (read from the host's
/proc/PID/environ: the containers share the host's PID namespace as seen
from dockerd; root is needed to read uid 10001's environ). The images run
as uid 10001, without cgroup rights: containment's subreaper way.

Every stack brought up must also get its cli service healthy (its
healthcheck, exec-form arborctl, passes) within the deadline its own
healthcheck settings give.

Runs whenever a Docker engine answers; otherwise prints why it is skipped
and exits 0. Waits poll arborctl with deadlines; nothing sleeps to
synchronise."""

import json
import os
import re
import shutil
import subprocess
import time
import uuid

import dockerkit
import harness
from dockerkit import sh
from harness import SRC, by_path, check, walk, TestFailure

COMPOSE_FILE = os.path.join(SRC, "docker", "docker-compose.yml")
IMAGE_TAG = os.environ.get("ARBOR_IMAGE_TAG", "test")
GUARD = 30 * harness.SLOW  # seconds: hang guards, not speed checks
EXPIRY_S = 5               # the broker's --expiry-ms in docker-compose.yml
SERVICES = ("broker", "sup1", "sup2", "cli")

COMPOSE = None  # argv prefix: ["docker-compose"] or ["docker", "compose"]


def docker_unavailable():
    """None when a Docker engine and compose answer, else the reason."""
    global COMPOSE
    why = dockerkit.engine_unavailable()
    if why:
        return why
    if shutil.which("docker-compose"):
        COMPOSE = ["docker-compose"]
    elif subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        COMPOSE = ["docker", "compose"]
    else:
        return "neither docker-compose nor the docker compose plugin is installed"
    return None


# -- one compose project ------------------------------------------------------
class Stack:
    """A compose project of its own; `with` guarantees down -v --remove-orphans."""

    def __init__(self, run):
        self.run = run
        self.project = "arbortest%s%s" % (run.name[5], uuid.uuid4().hex[:8])
        self.env = dict(os.environ, ARBOR_IMAGE_TAG=IMAGE_TAG, ARBOR_HEALTH_INTERVAL="1s",
                        COMPOSE_PROJECT_NAME=self.project)
        self.env.pop("ARBOR_TEST_RUN", None)
        self.ids = {}

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:  # the reason first: CI shows the head of long output
            print("FAILED in compose project %s: %s: %s" % (self.project, kind.__name__, value),
                  flush=True)
        try:
            self.save_logs(show=kind is not None)
        except Exception as e:  # never let the logs stand between us and down
            print("could not save the compose logs: %s" % e)
        r = self.compose("down", "-v", "--remove-orphans", "-t", "10", timeout=120)
        left = sh(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=" + self.project])
        nets = sh(["docker", "network", "ls", "-q", "--filter",
                   "label=com.docker.compose.project=" + self.project])
        if kind is None:  # do not hide the first failure behind a cleanup one
            check(r.returncode == 0, "compose down failed: %s" % r.stderr[-2000:])
            check(not left.stdout.strip(), "containers left after down: %s" % left.stdout)
            check(not nets.stdout.strip(), "networks left after down: %s" % nets.stdout)
        return False

    def compose(self, *args, input=None, timeout=60):
        return sh(COMPOSE + ["-f", COMPOSE_FILE, "-p", self.project] + list(args), input=input,
                  timeout=timeout * harness.SLOW, env=self.env)

    def save_logs(self, show):
        r = self.compose("logs", "--no-color", "--timestamps", timeout=60)
        path = os.path.join(self.run.dir, "compose-%s.log" % self.project)
        with open(path, "w") as f:
            f.write(r.stdout + r.stderr)
        if show:  # the last lines of each service (the broker's are the busiest)
            per = {}
            for line in r.stdout.splitlines():
                m = re.match(r"(\S+?)[-_]\d+\s+\|", line)
                per.setdefault(m.group(1) if m else "?", []).append(line)
            print("---- compose logs of %s (tails; all in %s) ----" % (self.project, path))
            for service, lines in sorted(per.items()):
                print("\n".join(lines[-12:]))

    def up(self, *services):
        t0 = time.monotonic()
        r = self.compose("up", "-d", *services, timeout=180)
        check(r.returncode == 0, "compose up failed:\n%s" % r.stderr[-3000:])
        self.ids = {}
        self.wait_peers(lambda names: {"sup1", "sup2"} <= names, "sup1 and sup2 registered")
        print("  stack %s up in %.1fs" % (self.project, time.monotonic() - t0), flush=True)
        took = self.wait_healthy("cli", since=t0)
        print("  cli healthy %.1fs after up" % took, flush=True)

    def inspect_json(self, service, template):
        """docker inspect -f '{{json TEMPLATE}}' of service's container (None for null)."""
        r = sh(["docker", "inspect", "-f", "{{json %s}}" % template, self.cid(service)])
        check(r.returncode == 0, "docker inspect %s: %s" % (service, r.stderr))
        return json.loads(r.stdout)

    def wait_healthy(self, service, since):
        """Wait until Docker says service is healthy; the seconds it took since
        `since` (a time.monotonic() taken before `up`). The deadline is the
        container's own healthcheck's: the start period, then `retries`
        probes, each an interval and a timeout (when Docker would call it
        unhealthy), and one more interval for the first probe."""
        hc = self.inspect_json(service, ".Config.Healthcheck")
        check(hc and hc.get("Test", [])[:2] == ["CMD", "/arborctl"],
              "%s: no exec-form arborctl healthcheck: %r" % (service, hc))
        s = 1e-9  # Docker's durations are in ns; 0 means its default
        interval = (hc.get("Interval") or 30e9) * s
        deadline = ((hc.get("StartPeriod") or 0) * s + interval +
                    (hc.get("Retries") or 3) * (interval + (hc.get("Timeout") or 30e9) * s))
        deadline = since + deadline * harness.SLOW
        health = None
        while time.monotonic() < deadline:
            health = self.inspect_json(service, ".State.Health") or {}
            if health.get("Status") == "healthy":
                return time.monotonic() - since
            check(health.get("Status") != "unhealthy", "%s unhealthy: %s" %
                  (service, probes(health)))
            time.sleep(0.2)  # polling Docker's health state: no event to wait on here
        raise TestFailure("%s not healthy within %.0fs of up (healthcheck %r): %s" %
                          (service, deadline - since, hc["Test"], probes(health)))

    def cid(self, service):
        """The container id of service (cached until the service is recreated)."""
        if service not in self.ids:
            r = self.compose("ps", "-q", service)
            ids = r.stdout.split()
            check(r.returncode == 0 and len(ids) == 1, "ps -q %s: %r %s" % (service, ids, r.stderr))
            self.ids[service] = ids[0]
        return self.ids[service]

    def running(self, service):
        r = sh(["docker", "inspect", "-f", "{{.State.Running}}", self.cid(service)])
        return r.stdout.strip() == "true"

    # -- arborctl in the CLI container -----------------------------------
    def ctl(self, *args, input=None, timeout=GUARD):
        """arborctl in the running cli container (docker exec: fast enough to poll)."""
        argv = ["docker", "exec"] + (["-i"] if input is not None else []) + [self.cid("cli"), "/arborctl"] + list(args)
        return sh(argv, input=input, timeout=timeout)

    def ctl_json(self, *args, ok=(0, 1, 4), timeout=GUARD):
        r = self.ctl(*args, "--json", timeout=timeout)
        check(r.returncode in ok, "arborctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise TestFailure("arborctl %s printed no JSON (exit %d): %r %r" %
                              (" ".join(args), r.returncode, r.stdout[-500:], r.stderr[-500:]))

    def spawn(self, sup, spec):
        r = self.ctl("spawn", "--supervisor", sup, "-", input=json.dumps(spec))
        tree = r.stdout.strip()
        check(r.returncode == 0 and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", tree),
              "spawn on %s: exit %d %r %s" % (sup, r.returncode, r.stdout, r.stderr))
        return tree

    def peers(self):
        """Names the broker lists, or None when it does not answer."""
        r = self.ctl("peers", "--json", timeout=15)
        if r.returncode != 0:
            return None
        return {p["name"] for p in json.loads(r.stdout)["peers"]}

    def wait_peers(self, cond, what, timeout=GUARD, every=None):
        """Poll `peers` until cond(names); every(names) checks each answer."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            names = self.peers()
            if names is not None:
                last = names
                if every:
                    every(names)
                if cond(names):
                    return names
            time.sleep(0.2)  # polling the broker's registry: no event to wait on
        raise TestFailure("%s: not within %ss (last peers: %s)" % (what, timeout, sorted(last or [])))

    def wait_tree(self, tree, cond, what, timeout=GUARD):
        """Poll `status TREE --json` until cond(report)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.ctl("status", tree, "--json", timeout=15)
            if r.stdout.strip() and r.returncode in (0, 1, 4):
                last = json.loads(r.stdout)
                if cond(last):
                    return last
            else:
                last = "exit %d: %s" % (r.returncode, r.stderr.strip())
            time.sleep(0.1)  # polling the report: the tree has no "all running" event
        raise TestFailure("tree %s: %s: not within %ss (last: %s)" % (tree, what, timeout,
                                                                     json.dumps(last)[-1500:]))

    def wait_all_running(self, tree):
        return self.wait_tree(tree, all_running, "every node running")

    def stop_cleanly(self, expect_exit0=SERVICES):
        """SIGTERM through docker-init: every daemon stops by itself, exit 0."""
        r = self.compose("stop", "-t", "25", timeout=120)
        check(r.returncode == 0, "compose stop: %s" % r.stderr)
        for s in expect_exit0:
            r = sh(["docker", "inspect", "-f", "{{.State.ExitCode}}", self.cid(s)])
            check(r.stdout.strip() == "0", "%s stopped with exit %s, not 0" % (s, r.stdout.strip()))


def probes(health):
    """The last healthcheck probes Docker kept (exit code and output), as text."""
    if not health:
        return "no health recorded"
    last = (health.get("Log") or [])[-3:]
    return "%s; last probes: %s" % (health.get("Status"), "; ".join(
        "exit %s: %s" % (p.get("ExitCode"), (p.get("Output") or "").strip()[-300:]) for p in last)
        or "none")


# -- specs and report checks --------------------------------------------------
def failing_tree(sup):
    """root -> 2 spawners -> 2 spawners -> 2 failing leaves (15 nodes)."""
    leaf = {"name": "errorer", "run": "fail", "count": 2,
            "error": {"type": "ValueError", "message": "leaf failed on %s" % sup}}
    mid = {"name": "spawner", "count": 2, "children": [leaf]}
    return {"name": "root", "children": [{"name": "spawner", "count": 2, "children": [mid]}]}


ESCAPES = ("setsid", "double-fork", "ignore-term")
MARKED_PER_TREE = 2 + len(ESCAPES)  # program, escaper and the escaper's children


def long_tree(mark, extra=()):
    """root -> a program linked with libarbor_worker, a program whose
    children try to outlive it (one per ESCAPES mode), and 2 spawners -> 2
    sleepers each (builtins), all on their notify fds, until cancelled (9
    nodes). The programs and their children carry ARBOR_TEST_MARK=mark."""
    env = {"ARBOR_TEST_MARK": mark}
    program = {"name": "program", "run": "exec", "argv": ["arbor-example-worker"], "env": env}
    escaper = {"name": "escaper", "run": "exec", "argv": ["arbor-test-escaper"] + list(ESCAPES),
               "env": env}
    sleeper = {"name": "sleeper", "run": "sleep", "count": 2}
    return {"name": "root", "children": [program, escaper,
                                         {"name": "spawner", "count": 2, "children": [sleeper]}]
            + list(extra)}


def all_running(report):
    return report["status"] == "running" and all(
        n["status"] == "running" and n["pid"] and any(p["phase"] == "running" for p in n["phases"])
        for n in walk(report["root"]))


def pids(report):
    return {n["path"]: n["pid"] for n in walk(report["root"])}


def workers(sup, tree):
    """The broker names of long_tree()'s broker peers: none. Workers report
    over their notify fd and are not broker peers."""
    return set()


def check_failed_report(report, sup):
    """The error tree of failing_tree(): each leaf's own error, ChildrenFailed
    above, to the root. Under one_for_all a leaf still starting when its
    sibling failed may be cancelled instead: then it carries no error and is
    not counted as failed (a cancel never hides an error, nor invents one)."""
    check(report["status"] == "failed", "tree status %s" % report["status"])
    check(report["supervisor"] == sup, "ran on %s, not %s" % (report["supervisor"], sup))
    nodes = list(walk(report["root"]))
    check(len(nodes) == 15, "expected 15 nodes, got %d" % len(nodes))
    leaves = [n for n in nodes if not n["children"]]
    check(len(leaves) == 8, "expected 8 leaves, got %d" % len(leaves))
    seen_pids = set()
    failed_leaves = 0
    for n in nodes:
        check(n["phases"] and n["phases"][-1]["phase"] == "exited", "%s phases %r" % (n["path"], n["phases"]))
        check(n["path"].endswith(n["name"]), "path %s name %s" % (n["path"], n["name"]))
        check(isinstance(n["pid"], int) and n["pid"] > 0 and n["pid"] not in seen_pids,
              "%s pid %r" % (n["path"], n["pid"]))
        seen_pids.add(n["pid"])
        e = n["error"]
        if n["children"]:
            failed = [c for c in n["children"] if c["status"] == "failed"]
            check(n["status"] == "failed", "%s is %s, not failed" % (n["path"], n["status"]))
            check(e and e["type"] == "ChildrenFailed" and e["failed_children"] == len(failed) >= 1,
                  "%s error %r (%d children failed)" % (n["path"], e, len(failed)))
        elif n["status"] == "failed":
            failed_leaves += 1
            check(e and e["type"] == "ValueError" and e["message"] == "leaf failed on %s" % sup,
                  "%s lost its error: %r" % (n["path"], e))
            check(n["exit"] == {"code": 1, "signal": None}, "%s exit %r" % (n["path"], n["exit"]))
        else:
            check(n["status"] == "cancelled" and e is None, "leaf %s: %s %r" % (n["path"], n["status"], e))
    check(failed_leaves >= 4, "only %d leaves failed" % failed_leaves)
    check(json.dumps(report).count('"ValueError"') == failed_leaves, "a leaf error appears more than once")
    return failed_leaves


def check_cancelled_report(report, before):
    """A cancel's report: every node cancelled in its grace, the pids unchanged."""
    check(report["status"] == "cancelled", "tree status %s" % report["status"])
    for n in walk(report["root"]):
        phases = [p["phase"] for p in n["phases"]]
        check(n["status"] == "cancelled", "%s is %s, not cancelled: %r" % (n["path"], n["status"], n))
        check(n["error"] is None and n["escalation"] is None, "%s %r %r" % (n["path"], n["error"], n["escalation"]))
        check("cancel_requested" in phases and phases[-1] == "exited", "%s phases %r" % (n["path"], phases))
        check(n["pid"] == before[n["path"]], "%s pid %s, was %s" % (n["path"], n["pid"], before[n["path"]]))


def host_pids_in(container_id):
    """Host PIDs whose cgroup names the container (same PID namespace as dockerd)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cgroup" % entry) as f:
                    if container_id in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def marked(mark, container_id=None):
    """Host PIDs of live (non-zombie) processes whose environment holds
    ARBOR_TEST_MARK=mark: among the container's, or with None anywhere on
    the host (a container that is gone has no pids to look among)."""
    return harness.marked_pids(mark, "ARBOR_TEST_MARK",
                               host_pids_in(container_id) if container_id else None)


def can_see_processes(container_id):
    """Whether this test reads the container's processes from the host: they
    are in its PID namespace (dockerd's), and it may read their environ
    (root). Else the marker checks cannot be made; the test says so."""
    if os.geteuid() != 0 or not host_pids_in(container_id):
        print("  (the container's processes are not readable from here: marker checks skipped)")
        return False
    return True


def check_marked(mark, container_id, trees=1):
    """Every marked process of `trees` long trees is running (all_running
    has been seen: the escaper reports running once its children are set
    up): the marker check sees what it must later not see."""
    if can_see_processes(container_id):
        found = marked(mark, container_id)
        check(len(found) == MARKED_PER_TREE * trees, "%d marked processes in the container, "
              "expected %d: %r" % (len(found), MARKED_PER_TREE * trees, found))


def none_marked(mark, container_id=None, within=1.0):
    """No process carrying the marker within `within` s: the bound containment
    promises after a node's end, a cancel's report or a fork-server's death."""
    if container_id and not can_see_processes(container_id):
        return
    deadline = time.monotonic() + within * harness.SLOW
    while True:
        left = marked(mark, container_id)
        if not left:
            return
        if time.monotonic() >= deadline:
            raise TestFailure("processes carrying the marker outlived their tree: %s" % "; ".join(
                "%d %s" % (pid, cmdline(pid)) for pid in left))
        time.sleep(0.01)  # polling /proc: a process's end sends no event here


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def check_escaper(report):
    """The escaper's children were killed with it, counted, the subreaper
    way (the images run as uid 10001, with no cgroup rights)."""
    node = by_path(report)["root/escaper"]
    check(node.get("escaped") == len(ESCAPES), "escaper escaped %r, expected %d" %
          (node.get("escaped"), len(ESCAPES)))
    guarantees = report.get("guarantees", [])
    check("subreaper" in guarantees and "cgroup" not in guarantees,
          "not the subreaper way alone: guarantees %r" % guarantees)


# -- scenarios ------------------------------------------------------------------
def test_a_nested_failure_on_each_supervisor(run):
    with Stack(run) as st:
        st.up()
        for sup, via in (("sup1", "exec"), ("sup2", "run")):
            spec = json.dumps(failing_tree(sup))
            if via == "exec":  # in the running cli container
                r = st.compose("exec", "-T", "cli", "arborctl", "spawn", "--supervisor", sup,
                               "--wait", "--json", "-", input=spec, timeout=GUARD)
            else:  # in a one-off cli container
                r = st.compose("run", "--rm", "--no-deps", "-T", "cli", "spawn", "--supervisor", sup,
                               "--wait", "--json", "-", input=spec, timeout=GUARD)
            check(r.returncode == 1, "%s: exit %d, expected 1 (tree failed): %s" % (sup, r.returncode, r.stderr))
            try:
                report = json.loads(r.stdout)
            except ValueError:
                raise TestFailure("%s: no JSON report: %r %r" % (sup, r.stdout[-500:], r.stderr[-500:]))
            n = check_failed_report(report, sup)
            print("  %s: tree failed, %d of 8 leaves with their own error, 7 ChildrenFailed above" % (sup, n))
            again = st.ctl_json("status", report["tree"], ok=(1,))
            check(again["status"] == "failed" and pids(again) == pids(report), "status differs from the wait report")
        listed = st.ctl_json("list", ok=(0,))["trees"]
        check(sorted(t["supervisor"] for t in listed) == ["sup1", "sup2"], "list: %r" % listed)
        st.stop_cleanly()


def test_b_broker_killed_and_recreated(run):
    with Stack(run) as st:
        st.up()
        mark1, mark2 = uuid.uuid4().hex, uuid.uuid4().hex
        long1 = st.spawn("sup1", long_tree(mark1))
        long2 = st.spawn("sup2", long_tree(mark2))
        before1 = pids(st.wait_all_running(long1))
        before2 = pids(st.wait_all_running(long2))
        check_marked(mark1, st.cid("sup1"))
        check_marked(mark2, st.cid("sup2"))
        # A tree whose leaf fails while the broker is away: the failure's
        # report has nowhere to go then, and must not be lost.
        late = st.spawn("sup2", {"name": "root", "children": [
            {"name": "late", "run": "fail", "after_ms": 4000,
             "error": {"type": "LateError", "message": "failed while the broker was down"}}]})
        t_spawn = time.monotonic()
        old = st.cid("broker")
        r = st.compose("kill", "broker")
        check(r.returncode == 0, "kill broker: %s" % r.stderr)
        t_killed = time.monotonic()
        check(not st.running("broker"), "broker still running after kill")
        # Broker down: the CLI says so with exit 3 (after its 3 s welcome wait).
        r = st.ctl("peers")
        check(r.returncode == 3, "peers with the broker down: exit %d %s" % (r.returncode, r.stderr))
        r = st.compose("rm", "-f", "broker")
        check(r.returncode == 0, "rm broker: %s" % r.stderr)
        r = st.compose("up", "-d", "--no-deps", "broker", timeout=120)
        check(r.returncode == 0, "up broker: %s" % r.stderr)
        t_back = time.monotonic()
        st.ids.pop("broker")
        check(st.cid("broker") != old, "the broker container was not recreated")
        print("  broker away %.1fs; the late failure came %.1fs after the kill" %
              (t_back - t_killed, 4.0 - (t_killed - t_spawn)))
        # Everyone registers again: both supervisors and the programs of
        # the running trees (they re-send hello on "unknown_session").
        want = {"sup1", "sup2"} | workers("sup1", long1) | workers("sup2", long2)
        t0 = time.monotonic()
        st.wait_peers(lambda names: want <= names, "supervisors and workers re-registered")
        print("  %d peers re-registered %.1fs after the broker came back" % (len(want), time.monotonic() - t0))
        # The trees kept running, same processes.
        now1 = st.ctl_json("status", long1, ok=(0,))
        check(all_running(now1) and pids(now1) == before1, "tree on sup1 changed: %r" % pids(now1))
        now2 = st.ctl_json("status", long2, ok=(0,))
        check(all_running(now2) and pids(now2) == before2, "tree on sup2 changed: %r" % pids(now2))
        # The tree that failed during the outage kept its report.
        rep = st.wait_tree(late, lambda r: r["status"] != "running", "the late tree ended")
        check(rep["status"] == "failed", "late tree %s" % rep["status"])
        leaf = by_path(rep)["root/late"]
        check(leaf["status"] == "failed" and leaf["exit"]["code"] == 1, "late leaf %r" % leaf)
        # Its error is the structured one it reported: a builtin reports over
        # its link, which does not pass through the broker.
        e = leaf["error"] or {}
        check(e.get("type") == "LateError" and e.get("message") == "failed while the broker was down",
              "late leaf error lost: %r" % e)
        check(rep["root"]["error"]["type"] == "ChildrenFailed", "late root %r" % rep["root"]["error"])
        # A later cancel works through the new broker, and its report is
        # complete; nothing the programs started outlives it.
        for tree, before, mark, sup in ((long1, before1, mark1, "sup1"), (long2, before2, mark2, "sup2")):
            r = st.ctl("cancel", tree, "--wait", "--json")
            check(r.returncode == 4, "cancel %s: exit %d %s" % (tree, r.returncode, r.stderr))
            report = json.loads(r.stdout)
            check_cancelled_report(report, before)
            check_escaper(report)
            none_marked(mark, st.cid(sup))
        # The watching cli container subscribed again too: it saw the ends.
        logs = sh(["docker", "logs", st.cid("cli")]).stdout
        check(long1 in logs and long2 in logs, "cli watch missed the cancels:\n%s" % logs[-2000:])
        st.stop_cleanly()


def test_c_supervisor_container_killed(run):
    with Stack(run) as st:
        st.up()
        mark1, mark2 = uuid.uuid4().hex, uuid.uuid4().hex
        t1 = st.spawn("sup1", long_tree(mark1))
        t2 = st.spawn("sup2", long_tree(mark2))
        before1 = pids(st.wait_all_running(t1))
        st.wait_all_running(t2)
        cid2 = st.cid("sup2")
        check_marked(mark2, cid2)
        top = sh(["docker", "top", cid2, "-eo", "pid"]).stdout.split()[1:]
        host_pids = host_pids_in(cid2)
        same_ns = sorted(map(int, top)) == sorted(host_pids)
        check(len(top) >= 1 + 2 + 8, "docker top sup2: expected init, supervisor, fork-server and 8 workers: %r" % top)
        r = st.compose("kill", "sup2")  # SIGKILL to the container: as a host would vanish
        check(r.returncode == 0, "kill sup2: %s" % r.stderr)
        t_kill = time.monotonic()
        # Nothing of sup2 survives: the container is stopped (the restart
        # policy leaves a killed container alone) and no process is in it.
        check(not st.running("sup2"), "sup2 still running")
        check(not sh(["docker", "ps", "-q", "--filter", "id=" + cid2]).stdout.strip(), "sup2 listed by docker ps")
        r = sh(["docker", "top", cid2])
        check(r.returncode != 0 and "not running" in r.stderr, "docker top sup2: %s %s" % (r.stdout, r.stderr))
        if same_ns:
            left = host_pids_in(cid2)
            check(not left, "processes of sup2 survived: %r" % left)
            none_marked(mark2)  # anywhere on the host
        # The broker reports sup2 (and its workers) lost after expiry;
        # sup1 is listed all along.
        def sup1_listed(names):
            check("sup1" in names, "sup1 vanished from peers")
        gone = {"sup2"} | workers("sup2", t2)
        st.wait_peers(lambda names: not (gone & names), "sup2 and its workers expired",
                      timeout=EXPIRY_S + GUARD, every=sup1_listed)
        print("  sup2 reported lost %.1fs after the kill" % (time.monotonic() - t_kill))
        blog = sh(["docker", "logs", st.cid("broker")]).stderr
        check("peer sup2 expired" in blog, "broker did not log sup2's expiry:\n%s" % blog[-2000:])
        # sup1 is unaffected: same tree, same processes.
        now1 = st.ctl_json("status", t1, ok=(0,))
        check(all_running(now1) and pids(now1) == before1, "tree on sup1 changed: %r" % pids(now1))
        # Asking the lost supervisor: unreachable (3); the CLI does not hang.
        r = st.ctl("status", "--supervisor", "sup2", t2)
        check(r.returncode == 3, "status on lost sup2: exit %d %s" % (r.returncode, r.stderr))
        r = st.ctl("cancel", t1, "--wait", "--json")
        check(r.returncode == 4, "cancel on sup1: exit %d %s" % (r.returncode, r.stderr))
        check_cancelled_report(json.loads(r.stdout), before1)
        check_escaper(json.loads(r.stdout))
        none_marked(mark1, st.cid("sup1"))
        # sup2 restarted: a new incarnation with no trees (they died with it).
        r = st.compose("up", "-d", "--no-deps", "sup2", timeout=120)
        check(r.returncode == 0, "up sup2: %s" % r.stderr)
        st.ids.pop("sup2")
        st.wait_peers(lambda names: "sup2" in names, "sup2 back")
        r = st.ctl("status", "--supervisor", "sup2", t2)
        check(r.returncode == 2, "the old tree on the new sup2: exit %d %s" % (r.returncode, r.stderr))
        st.stop_cleanly()


def test_d_supervisor_partitioned_and_reconnected(run):
    with Stack(run) as st:
        st.up()
        mark1, mark2 = uuid.uuid4().hex, uuid.uuid4().hex
        t1 = st.spawn("sup1", long_tree(mark1))
        t2 = st.spawn("sup2", long_tree(mark2))
        before1 = pids(st.wait_all_running(t1))
        before2 = pids(st.wait_all_running(t2))
        cid1 = st.cid("sup1")
        nets = json.loads(sh(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", cid1]).stdout)
        check(len(nets) == 1, "sup1 networks: %r" % list(nets))
        net = next(iter(nets))
        r = sh(["docker", "network", "disconnect", net, cid1])
        check(r.returncode == 0, "disconnect: %s" % r.stderr)
        t_cut = time.monotonic()
        try:
            mine = {"sup1"} | workers("sup1", t1)

            def sup2_listed(names):
                check("sup2" in names, "sup2 vanished from peers during sup1's partition")
            st.wait_peers(lambda names: not (mine & names), "partitioned sup1 expired",
                          timeout=EXPIRY_S + GUARD, every=sup2_listed)
            print("  sup1 reported lost %.1fs after the partition" % (time.monotonic() - t_cut))
            r = st.ctl("status", "--supervisor", "sup1", t1)
            check(r.returncode == 3, "status on partitioned sup1: exit %d %s" % (r.returncode, r.stderr))
            check(st.running("sup1"), "sup1 stopped while partitioned")
        finally:
            r = sh(["docker", "network", "connect", "--alias", "sup1", net, cid1])
        check(r.returncode == 0, "connect: %s" % r.stderr)
        t_heal = time.monotonic()
        st.wait_peers(lambda names: mine <= names, "sup1 and its workers back")
        print("  sup1 and its program back %.1fs after the partition healed" % (time.monotonic() - t_heal))
        # Its tree is intact: same nodes, same processes, all still running.
        now1 = st.ctl_json("status", t1, ok=(0,))
        check(all_running(now1) and pids(now1) == before1, "tree on sup1 changed: %r" % pids(now1))
        now2 = st.ctl_json("status", t2, ok=(0,))
        check(all_running(now2) and pids(now2) == before2, "tree on sup2 changed: %r" % pids(now2))
        for tree, before, mark, sup in ((t1, before1, mark1, "sup1"), (t2, before2, mark2, "sup2")):
            r = st.ctl("cancel", tree, "--wait", "--json")
            check(r.returncode == 4, "cancel %s: exit %d %s" % (tree, r.returncode, r.stderr))
            report = json.loads(r.stdout)
            check_cancelled_report(report, before)
            check_escaper(report)
            none_marked(mark, st.cid(sup))
        st.stop_cleanly()


def test_e_tree_spanning_two_supervisors(run):
    """A subtree placed ("on") on the other supervisor's container: one
    report; the loss of that container marks the subtree lost."""
    with Stack(run) as st:
        st.up()
        leaf = {"name": "errorer", "run": "fail", "count": 2,
                "error": {"type": "RemoteError", "message": "failed in the sup2 container"}}
        spec = {"name": "root", "children": [{"name": "local", "run": "sleep"},
                                             {"name": "far", "on": "sup2", "children": [leaf]}]}
        r = st.ctl("spawn", "--supervisor", "sup1", "--wait", "--json", "-", input=json.dumps(spec))
        check(r.returncode == 1, "exit %d: %s" % (r.returncode, r.stderr))
        nodes = by_path(json.loads(r.stdout))
        for i in range(2):
            e = nodes["root/far/errorer-%d" % i]["error"]
            check(e and e["type"] == "RemoteError", "errorer-%d error %r" % (i, e))
        check(nodes["root/far"]["error"]["type"] == "ChildrenFailed", "far %r" % nodes["root/far"]["error"])
        check(nodes["root/local"]["status"] == "cancelled", "local %s" % nodes["root/local"]["status"])
        # A long one, then the sup2 container vanishes.
        tree = st.spawn("sup1", {"name": "root", "children": [
            {"name": "stay", "run": "sleep"},
            {"name": "far", "on": "sup2", "children": [{"name": "w", "run": "sleep", "count": 2}]}]})
        # Remote nodes show their phases live (their pids come with the report).
        st.wait_tree(tree, lambda x: all(n["status"] == "running" and n["phase"] == "running"
                                         for n in walk(x["root"])), "every node running")
        r = st.compose("kill", "sup2")
        check(r.returncode == 0, "kill sup2: %s" % r.stderr)
        rep = st.wait_tree(tree, lambda x: x["status"] != "running", "the loss of sup2 noticed")
        nodes = by_path(rep)
        check(nodes["root/far"]["status"] == "lost" and "sup2" in nodes["root/far"]["error"]["message"],
              "far %r" % nodes["root/far"])
        check(nodes["root/stay"]["status"] == "cancelled" and rep["status"] == "failed",
              "stay %s, tree %s" % (nodes["root/stay"]["status"], rep["status"]))
        st.stop_cleanly(expect_exit0=[s for s in SERVICES if s != "sup2"])


def test_f_fork_server_killed_in_a_container(run):
    """SIGKILL of the fork-server inside a supervisor container (docker exec
    of the helper: the image has no kill(1)). Its workers die with it
    (PDEATHSIG) and are lost; what they started (setsid'd, double-forked,
    SIGTERM-deaf) comes to the supervisor, the second subreaper, which kills
    and reaps it: nothing marked is left 1 s later. A new fork-server runs
    the next tree, whose cancel leaves nothing either."""
    with Stack(run) as st:
        st.up()
        cid = st.cid("sup1")
        mark = uuid.uuid4().hex
        tree = st.spawn("sup1", long_tree(mark))
        st.wait_all_running(tree)
        check_marked(mark, cid)
        r = sh(["docker", "exec", cid, "/arbor-test-escaper", "kill", "arbor-forksrv"])
        check(r.returncode == 0 and len(r.stdout.split()) == 1,
              "kill the fork-server: exit %d %r %s" % (r.returncode, r.stdout, r.stderr))
        rep = st.wait_tree(tree, lambda x: x["status"] != "running", "the fork-server's death noticed")
        check(rep["status"] == "lost", "tree %s after the fork-server's death" % rep["status"])
        none_marked(mark, cid)
        logs = sh(["docker", "logs", cid]).stderr
        check("started a new fork-server" in logs, "no new fork-server:\n%s" % logs[-2000:])
        again = uuid.uuid4().hex
        t2 = st.spawn("sup1", long_tree(again))
        before = pids(st.wait_all_running(t2))
        check_marked(again, cid)
        r = st.ctl("cancel", t2, "--wait", "--json")
        check(r.returncode == 4, "cancel: exit %d %s" % (r.returncode, r.stderr))
        report = json.loads(r.stdout)
        check_cancelled_report(report, before)
        check_escaper(report)
        none_marked(again, cid)
        st.stop_cleanly()


TESTS = [test_a_nested_failure_on_each_supervisor, test_b_broker_killed_and_recreated,
         test_c_supervisor_container_killed, test_d_supervisor_partitioned_and_reconnected,
         test_e_tree_spanning_two_supervisors, test_f_fork_server_killed_in_a_container]

if __name__ == "__main__":
    dockerkit.main("test_compose", TESTS, docker_unavailable, IMAGE_TAG, 600)
