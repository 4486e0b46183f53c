#!/usr/bin/python3
"""arbor benchmark driver: run by bench/run.sh, which builds the programs,
starts the daemons (and stops them). This file only measures and reports.

It talks to the broker as a client (a DEALER, like arborctl) to spawn trees
and count their "ready" events live, runs arborctl for the cancel and the
nested-errors timings, bench/floor_fork for the fork floor and
bench/broker_bench for the routing throughput, and writes:
  OUT/results.md   the table (also printed)
  OUT/results.json every number measured
  OUT/scaling.dat  the scaling series (gnuplot input)
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import zmq


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def machine_cpu():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def busy_share(seconds):
    """The share of both cores busy over the next `seconds`."""
    b0, t0 = machine_cpu()
    time.sleep(seconds)
    b1, t1 = machine_cpu()
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def wait_quiet(limit_s=60):
    """Before a part: wait (at most limit_s) until the machine is idle, so
    that what ran before (another part's 1000 cgroups still being freed
    by kernel workers, a build) is not measured with it. Returns the
    seconds waited and the last busy share seen."""
    t0 = time.monotonic()
    while True:
        share = busy_share(0.5)
        if share < 0.10 or time.monotonic() - t0 >= limit_s:
            return time.monotonic() - t0, share


def best(xs):
    return min(xs) if xs else None


def median(xs):
    return statistics.median(xs) if xs else None


def pct(xs, p):
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ---- specs -------------------------------------------------------------------

def spec_10x10x10():
    """root -> 10 spawners -> 10 each -> 10 sleep leaves each: 1111 nodes."""
    return {"name": "root", "children": [
        {"name": "sp", "count": 10, "children": [
            {"name": "sub", "count": 10, "children": [
                {"name": "leaf", "count": 10, "run": "sleep"}]}]}]}


def spec_exec(leaves=1000):
    """root -> 10 spawners -> leaves/10 exec'd /bin/sleep each (the exec path)."""
    return {"name": "root", "children": [
        {"name": "sp", "count": 10, "children": [
            {"name": "x", "count": leaves // 10, "run": "exec",
             "argv": ["/bin/sleep", "1000"]}]}]}


def spec_cleaves(program):
    """root -> 10 -> 10 each -> 10 exec'd C leaves each (ready_leaf, linked
    with libarbor_worker, reporting ready): 1000 programs, 1111 nodes."""
    return {"name": "root", "children": [
        {"name": "sp", "count": 10, "children": [
            {"name": "sub", "count": 10, "children": [
                {"name": "leaf", "count": 10, "run": "exec", "argv": [program]}]}]}]}


def spec_nested_errors(levels=4, breadth=2):
    """root -> 2 -> 4 -> 8 -> 16 spawners -> 32 leaves that all fail:
    63 processes, the shape of the reference runtime's depth-3 nested-errors test."""
    node = {"name": "leaf", "count": breadth, "run": "fail",
            "error": {"type": "NestedError", "message": "leaf failed on purpose"}}
    for _ in range(levels):
        node = {"name": "sp", "count": breadth, "children": [node]}
    return {"name": "root", "children": [node]}


def spec_sized(n):
    """Exactly n nodes: root, spawners with up to 10 sleep leaves each."""
    if n < 2:
        return {"name": "root", "run": "sleep"}
    spawners = max(1, round((n - 1) / 11))
    leaves = n - 1 - spawners
    kids = []
    for i in range(spawners):
        k = leaves // spawners + (1 if i < leaves % spawners else 0)
        sp = {"name": "sp-%d" % i}
        if k:
            sp["children"] = [{"name": "leaf", "count": k, "run": "sleep"}]
        else:
            sp["run"] = "sleep"
        kids.append(sp)
    return {"name": "root", "children": kids}


def count_nodes(spec):
    c = spec.get("count", 1)
    return c * (1 + sum(count_nodes(k) for k in spec.get("children", [])))


def walk(node):
    yield node
    for k in node.get("children", []):
        yield from walk(k)


def phases(node):
    d = {}
    for p in node.get("phases", []):
        d.setdefault(p["phase"], p["t_ms"])
    return d


def nursery_levels(rep):
    """Per level of the nested tree (0 the root, 5 the leaves), medians in
    ms: its parent's running -> its spawned (the spawn request and the
    fork-server), spawned -> ready (Python's start and imports), ready ->
    exited for a leaf (raise, report, exit) and last child exited -> exited
    for a spawner (its nursery's wait, exit)."""
    out = []

    def visit(node, depth, parent):
        p = phases(node)
        while len(out) <= depth:
            out.append({"spawn": [], "start": [], "leaf_end": [], "spawner_end": []})
        row = out[depth]
        if parent is not None:
            row["spawn"].append(p["spawned"] - phases(parent)["running"])
        row["start"].append(p.get("ready", p["spawned"]) - p["spawned"])
        kids = node.get("children") or []
        if kids:
            row["spawner_end"].append(p["exited"] - max(phases(k)["exited"] for k in kids))
        else:
            row["leaf_end"].append(p["exited"] - p.get("ready", p["spawned"]))
        for k in kids:
            visit(k, depth + 1, node)
    visit(rep["root"], 0, None)
    return [{k: median(v) for k, v in row.items()} for row in out]


# ---- the client ----------------------------------------------------------------

class Client:
    def __init__(self, endpoint, supervisor):
        self.sup = supervisor
        self.ctx = zmq.Context()
        self.name = "bench-%d" % os.getpid()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, self.name.encode())
        self.sock.setsockopt(zmq.RCVHWM, 1000000)
        self.sock.setsockopt(zmq.SNDHWM, 100000)
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.sock.connect(endpoint)
        self.next_id = 1

    def send(self, to, typ, body):
        i = self.next_id
        self.next_id += 1
        self.sock.send(json.dumps({"v": 1, "type": typ, "to": to, "id": i, "re": None,
                                   "body": body}, separators=(",", ":")).encode())
        return i

    def recv(self, timeout_ms):
        if not self.sock.poll(timeout_ms):
            return None
        frames = self.sock.recv_multipart()
        return json.loads(frames[-1])

    def request(self, to, typ, body, want, timeout_s=10):
        """Send and wait for the reply of type want to this message."""
        i = self.send(to, typ, body)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            m = self.recv(200)
            if m and m.get("re") == i:
                if m["type"] != want:
                    raise RuntimeError("%s -> %s: %s" % (typ, m["type"], m.get("body")))
                return m
        raise RuntimeError("no %s reply to %s within %s s" % (want, typ, timeout_s))

    def hello(self):
        # Again before every measurement: the driver is silent while arborctl
        # runs and may have been expired (5 s), which also drops subscriptions.
        self.request("broker", "hello", {"role": "client", "incarnation": "bench"}, "welcome")

    def drain(self):
        while self.recv(0) is not None:
            pass

    def report(self, tree):
        return self.request(self.sup, "status", {"tree": tree}, "report")["body"]["report"]

    def close(self):
        try:
            self.send("broker", "bye", {})
        finally:
            self.sock.close()
            self.ctx.term()


# ---- measurements ----------------------------------------------------------------

class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = a.bin
        self.c = Client(a.broker, a.supervisor)
        self.serial = 0
        self.res = {"load": {}}

    def tree_id(self, tag):
        self.serial += 1
        return "bench-%s-%d-%d" % (tag, os.getpid(), self.serial)

    def spawn_until_ready(self, spec, tag, timeout_s=30, phase="ready", n=None):
        """Spawn spec under a chosen id and count its ready events live
        (or another phase's: exec'd /bin/sleep never says ready) until n
        nodes (default: the spec's; more when its workers add children).
        Returns (tree id, wall ms from the spawn request to the last one)."""
        n = n or count_nodes(spec)
        tree = self.tree_id(tag)
        c = self.c
        c.hello()
        c.request("broker", "subscribe", {"topics": ["tree/" + tree]}, "subscribed")
        c.drain()
        t0 = time.monotonic()
        sid = c.send(self.a.supervisor, "spawn", {"spec": spec, "tree": tree})
        ready = set()
        end = t0 + timeout_s
        beat = t0 + 1.0
        while len(ready) < n:
            now = time.monotonic()
            if now >= beat:  # stay registered, or the broker drops our subscription
                c.send("broker", "heartbeat", {})
                beat = now + 1.0
            m = c.recv(max(1, int(min(end - now, beat - now) * 1000)))
            if m is None and time.monotonic() < end:
                continue
            if m is None:
                rep = c.report(tree)
                missing = [x["path"] + " " + json.dumps(x["phases"]) + " " + x["status"]
                           for x in walk(rep["root"]) if phase not in phases(x)][:5]
                raise RuntimeError("tree %s: only %d of %d nodes ready after %d s; not ready: %s"
                                   % (tree, len(ready), n, timeout_s, missing))
            b = m.get("body", {})
            if m["type"] == "error" and m.get("re") == sid:
                raise RuntimeError("spawn refused: %s" % b)
            if m["type"] == "event" and b.get("tree") == tree and b.get("kind") == "phase" \
                    and b.get("phase") == phase:
                ready.add(b.get("path"))
            elif m["type"] == "event" and b.get("tree") == tree and b.get("kind") == "done":
                raise RuntimeError("tree %s ended before all its nodes were ready" % tree)
        t1 = time.monotonic()
        c.request("broker", "unsubscribe", {"topics": ["tree/" + tree]}, "subscribed")
        c.drain()
        return tree, (t1 - t0) * 1000.0

    def arborctl(self, *args, timeout=120):
        cmd = [os.path.join(self.bin, "arborctl"), "--broker", self.a.broker] + list(args)
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        ms = (time.monotonic() - t0) * 1000.0
        return p.returncode, p.stdout, p.stderr.decode(errors="replace"), ms

    def inspect_workers(self, spec, tag, memory=False):
        """One spawn and cancel, not timed, whose workers are looked at:
        their CPU until all are ready (schedstat) and, with memory, their
        RSS and PSS. Returns (CPU ms of all workers until ready, memory).

        The measured repetitions never open a worker's /proc entry: the
        dentries that leaves behind are invalidated when the fork-server
        reaps the worker (proc_invalidate_siblings_dcache, ~6 % of a
        cancel's CPU in a profile), a cost the floor's children, which
        nobody looks at, do not pay."""
        tree, _ = self.spawn_until_ready(spec, tag)
        pids = [x["pid"] for x in walk(self.c.report(tree)["root"]) if x.get("pid")]
        w_ready = sum(self.proc_cpu(pid)[0] for pid in pids)
        mem = self.worker_memory(pids) if memory else None
        self.cancel_wait(tree)
        time.sleep(0.3)
        return w_ready, mem

    def cancel_wait(self, tree):
        rc, out, err, ms = self.arborctl("cancel", tree, "--wait", "--json")
        if rc != 4:
            raise RuntimeError("arborctl cancel %s exited %d (want 4): %s" % (tree, rc, err))
        return json.loads(out), ms

    def floor(self, n, reps, exec_=False, ready=None):
        mode = ["exec"] if exec_ else ["ready", ready] if ready else []
        out = subprocess.run([self.a.floor_fork, str(n), str(reps)] + mode,
                             check=True,
                             stdout=subprocess.PIPE, timeout=120).stdout.decode()
        sp, kl = [], []
        for line in out.split("\n"):
            if not line.startswith("n="):
                continue
            kv = dict(x.split("=") for x in line.split())
            sp.append(float(kv["spawn_ms"]))
            kl.append(float(kv["kill_ms"]))
        return sp, kl

    # -- 1, 3, 5, 6: the 10x10x10 tree ----------------------------------------------
    def tree_1111(self):
        reps = self.a.reps
        spec = spec_10x10x10()
        n = count_nodes(spec)
        self.res["load"]["tree_start"] = loadavg()
        # Each repetition's floor is measured just before it, as in the C
        # leaves part: a ratio compares two runs a second apart, not a floor
        # of the first seconds with an arbor run of the last (on this VM the
        # same floor took 43 to 89 ms within one run).
        fs, fk = [], []
        ready_ms, ready_report_ms, cancel_ms, cancel_report_ms = [], [], [], []
        spawn_to_ready, cancel_to_exited, cancel_req_to_exited = [], [], []
        w_ready, mem = self.inspect_workers(spec, "t1111i", memory=True)
        cpu_spawn, cpu_cancel, broker_rss, missing = [], [], [], 0
        for r in range(reps):
            f_sp, f_kl = self.floor(n - 1, 1)
            fs += f_sp
            fk += f_kl
            c0 = self.cpu_snapshot()
            tree, ms = self.spawn_until_ready(spec, "t1111")
            c1 = self.cpu_snapshot()
            ready_ms.append(ms)
            rep = self.c.report(tree)
            nodes = list(walk(rep["root"]))
            ready_report_ms.append(max(phases(x)["ready"] for x in nodes))
            for x in nodes:
                p = phases(x)
                spawn_to_ready.append(p["ready"] - p["spawned"])
            time.sleep(0.3)
            c2 = self.cpu_snapshot()
            final, ms = self.cancel_wait(tree)
            c3 = self.cpu_snapshot()
            # Workers' CPU: until all were ready from schedstat (they run), the
            # rest once the fork-server has reaped them (its children's time).
            w_life = c3["workers"] - c0["workers"]
            cpu_spawn.append(self.cpu_delta(c0, c1, n, w_ready))
            cpu_cancel.append(self.cpu_delta(c2, c3, n, max(0.0, w_life - w_ready)))
            cpu_spawn[-1]["worker_life"] = w_life / n
            cancel_ms.append(ms)
            os.makedirs(os.path.join(self.a.out, "reports"), exist_ok=True)
            with open(os.path.join(self.a.out, "reports", "t1111-rep%d.json" % (r + 1)), "w") as f:
                json.dump(final, f)
            if r == 0:
                # Peak RSS of the daemons for one 1111-node tree (later reps
                # overlap with the expiry of the previous tree's peers).
                hwm = {"supervisor_hwm_kb": self.proc_kb(self.a.supervisor_pid, "VmHWM"),
                       "broker_hwm_kb": self.proc_kb(self.a.broker_pid, "VmHWM")}
            broker_rss.append(self.proc_kb(self.a.broker_pid, "VmRSS"))
            nodes = list(walk(final["root"]))
            ps = [phases(x) for x in nodes]
            first_cancel = min(p["cancel_requested"] for p in ps if "cancel_requested" in p)
            last_exit = max(p["exited"] for p in ps)
            cancel_report_ms.append(last_exit - first_cancel)
            missing += sum(1 for p in ps if "cancel_requested" not in p)
            for p in ps:
                if "cancel_requested" in p and "exited" in p:
                    cancel_to_exited.append(p["exited"] - p["cancel_requested"])
                if "exited" in p:
                    cancel_req_to_exited.append(p["exited"] - first_cancel)
            statuses = {}
            for x in nodes:
                statuses[x["status"]] = statuses.get(x["status"], 0) + 1
            log("1111 rep %d: all ready %.0f ms (report %d ms), cancel %.0f ms (report %d ms) %s"
                % (r + 1, ready_ms[-1], ready_report_ms[-1], cancel_ms[-1],
                   cancel_report_ms[-1], statuses))
            time.sleep(0.5)
        self.res["load"]["tree_end"] = loadavg()
        self.res["spawn"] = {"nodes": n, "arbor_ms": ready_ms, "arbor_report_ms": ready_report_ms,
                             "floor_ms": fs}
        self.res["cancel"] = {"nodes": n, "arbor_ms": cancel_ms,
                              "arbor_report_ms": cancel_report_ms, "floor_ms": fk}
        self.res["latency"] = {
            "spawn_to_ready_ms": {"p50": pct(spawn_to_ready, 50), "p99": pct(spawn_to_ready, 99),
                                  "max": max(spawn_to_ready), "n": len(spawn_to_ready)},
            "cancel_requested_to_exited_ms": {"p50": pct(cancel_to_exited, 50),
                                              "p99": pct(cancel_to_exited, 99),
                                              "max": max(cancel_to_exited),
                                              "n": len(cancel_to_exited)},
            "first_cancel_to_exited_ms": {"p50": pct(cancel_req_to_exited, 50),
                                          "p99": pct(cancel_req_to_exited, 99),
                                          "max": max(cancel_req_to_exited),
                                          "n": len(cancel_req_to_exited)}}
        self.res["memory"] = mem
        self.res["cpu_per_node_ms"] = {
            "spawn": {k: median([x[k] for x in cpu_spawn]) for k in cpu_spawn[0]},
            "cancel": {k: median([x[k] for x in cpu_cancel]) for k in cpu_cancel[0]},
            "each_rep": {"spawn": cpu_spawn, "cancel": cpu_cancel}}
        self.res["memory"].update(hwm)
        self.res["memory"]["broker_rss_after_each_rep_kb"] = broker_rss
        self.res["cancel"]["nodes_without_cancel_requested"] = missing
        fsrv = self.children(self.a.supervisor_pid)
        self.res["memory"]["forkserver_hwm_kb"] = \
            self.proc_kb(fsrv[0], "VmHWM") if fsrv else None

    @staticmethod
    def proc_cpu(pid):
        """(own CPU time: the run time of all its threads from schedstat,
        reaped children's user+sys from stat) in ms."""
        try:
            own = 0
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    own += int(f.read().split()[0])
            with open("/proc/%d/stat" % pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
            tck = os.sysconf("SC_CLK_TCK")
            return (own / 1e6, (int(v[13]) + int(v[14])) * 1000.0 / tck)
        except (OSError, IndexError, ValueError):
            return (0.0, 0.0)

    def cpu_snapshot(self):
        fsrv = self.children(self.a.supervisor_pid)
        return {"broker": self.proc_cpu(self.a.broker_pid)[0],
                "supervisor": self.proc_cpu(self.a.supervisor_pid)[0],
                "forkserver": self.proc_cpu(fsrv[0])[0] if fsrv else 0.0,
                "workers": self.proc_cpu(fsrv[0])[1] if fsrv else 0.0,
                "driver": time.process_time() * 1000.0,
                "machine": machine_cpu()}

    @staticmethod
    def cpu_delta(a, b, n, workers_ms):
        """Per node CPU ms of each arbor process over a window, and what the
        rest of the machine (other processes, this driver included) used."""
        d = {k: (b[k] - a[k]) / n for k in ("broker", "supervisor", "forkserver")}
        d["workers"] = workers_ms / n
        busy, total = (b["machine"][0] - a["machine"][0], b["machine"][1] - a["machine"][1])
        tck = os.sysconf("SC_CLK_TCK")
        ours = sum(d[k] for k in ("broker", "supervisor", "forkserver", "workers")) * n
        d["machine_busy"] = busy / total if total else None
        d["others_ms"] = max(0.0, busy * 1000.0 / tck - ours)
        d["capacity_ms"] = total * 1000.0 / tck
        d["driver_ms"] = b["driver"] - a["driver"]
        return d

    @staticmethod
    def proc_kb(pid, key):
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    @staticmethod
    def children(pid):
        out = []
        try:
            for t in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                    out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return out

    def worker_memory(self, pids):
        rss, pss = [], []
        for pid in pids:
            r = self.proc_kb(pid, "VmRSS")
            try:
                with open("/proc/%d/smaps_rollup" % pid) as f:
                    p = next((int(l.split()[1]) for l in f if l.startswith("Pss:")), None)
            except OSError:
                p = None
            if r is not None and p is not None:
                rss.append(r)
                pss.append(p)
        return {"workers": len(rss),
                "worker_rss_kb_avg": statistics.mean(rss) if rss else None,
                "worker_pss_kb_avg": statistics.mean(pss) if pss else None,
                "worker_pss_kb_total": sum(pss)}

    # -- 2: nested errors --------------------------------------------------------------
    # -- the exec path: 1000 exec'd programs ------------------------------------------
    def exec_path(self):
        """Spawn 1000 exec'd /bin/sleep (each: fork, its exec verdict over a
        CLOEXEC pipe, its containment: a cgroup or the subreaper's), until
        every node is "spawned" (the fork-server reports an exec node only
        once it has exec'd); then cancel (SIGTERM, then what each left is
        killed). Floor: floor_fork exec, the same forks and execve."""
        reps = self.a.reps
        spec = spec_exec(1000)
        n = count_nodes(spec)
        self.res["load"]["exec_start"] = loadavg()
        fs, fk = self.floor(1000, reps, exec_=True)
        spawn_ms, cancel_ms, cpu = [], [], []
        for r in range(reps):
            c0 = self.cpu_snapshot()
            tree, ms = self.spawn_until_ready(spec, "exec", timeout_s=60, phase="spawned")
            c1 = self.cpu_snapshot()
            spawn_ms.append(ms)
            rc, out, err, ms = self.arborctl("cancel", tree, "--wait", "--json")
            if rc not in (1, 4):
                raise RuntimeError("arborctl cancel %s exited %d: %s" % (tree, rc, err))
            cancel_ms.append(ms)
            c2 = self.cpu_snapshot()
            # CPU is what the load on a shared machine changes least: the
            # fork-server's own per program (fork, exec verdict, cgroup or
            # sweep) and its children's until reaped (what runs before exec).
            cpu.append({"forkserver_spawn": (c1["forkserver"] - c0["forkserver"]) / 1000,
                        "forkserver_cancel": (c2["forkserver"] - c1["forkserver"]) / 1000,
                        "children": (c2["workers"] - c0["workers"]) / 1000,
                        "supervisor": (c2["supervisor"] - c0["supervisor"]) / 1000})
            log("exec rep %d: all spawned %.0f ms, cancel %.0f ms (floor %.0f / %.0f ms); CPU ms "
                "per program: fork-server %.3f + %.3f, its children %.3f, supervisor %.3f"
                % (r + 1, spawn_ms[-1], cancel_ms[-1], fs[r], fk[r], cpu[-1]["forkserver_spawn"],
                   cpu[-1]["forkserver_cancel"], cpu[-1]["children"], cpu[-1]["supervisor"]))
            time.sleep(0.5)
        self.res["exec"] = {"nodes": n, "programs": 1000, "spawn_ms": spawn_ms,
                            "cancel_ms": cancel_ms, "floor_spawn_ms": fs, "floor_kill_ms": fk,
                            "cpu_ms_per_program": {k: median([x[k] for x in cpu]) for k in cpu[0]},
                            "guarantees": self.c.report(tree).get("guarantees", [])}
        self.res["load"]["exec_end"] = loadavg()

    # -- exec'd C workers that report: 10x10x10, 1000 leaves -----------------------
    def cleaves(self):
        """Spawn root -> 10 -> 10 -> 10 exec'd ready_leaf programs (the
        shared libarbor_worker; each reports ready over its notify fd) until
        all 1111 nodes are ready, then cancel --wait (each leaf is told
        cancel and reports its way out). Floor: floor_fork ready, the same
        1000 execs of the same program by a bare forker, until 1000 ready
        datagrams have arrived on the socket they share. Alternated rep by
        rep with the floor, so that both see the same machine."""
        reps = self.a.reps
        prog = self.a.ready_leaf
        spec = spec_cleaves(prog)
        n = count_nodes(spec)
        self.res["load"]["cleaves_start"] = loadavg()
        ready_ms, cancel_ms, fs, fk, cpu = [], [], [], [], []
        for r in range(reps):
            f_sp, f_kl = self.floor(1000, 1, ready=prog)
            fs += f_sp
            fk += f_kl
            c0 = self.cpu_snapshot()
            tree, ms = self.spawn_until_ready(spec, "cleaves", timeout_s=60)
            c1 = self.cpu_snapshot()
            ready_ms.append(ms)
            rep, ms = self.cancel_wait(tree)
            c2 = self.cpu_snapshot()
            cancel_ms.append(ms)
            bad = [x["path"] for x in walk(rep["root"]) if x["status"] != "cancelled"]
            if bad:
                raise RuntimeError("cleaves: %d nodes not cancelled, e.g. %s" % (len(bad), bad[:3]))
            # per leaf: the daemons' CPU during spawn; the workers' (reaped
            # children of the fork-server) over their whole lives.
            cpu.append({k: (c1[k] - c0[k]) / 1000 for k in ("forkserver", "supervisor", "broker")})
            cpu[-1]["workers"] = (c2["workers"] - c0["workers"]) / 1000
            log("cleaves rep %d: all ready %.0f ms (floor %.0f ms, %.2fx), cancel %.0f ms; CPU ms "
                "per leaf: workers' lives %.3f; during spawn fork-server %.3f supervisor %.3f"
                % (r + 1, ready_ms[-1], fs[-1], ready_ms[-1] / fs[-1], cancel_ms[-1],
                   cpu[-1]["workers"], cpu[-1]["forkserver"], cpu[-1]["supervisor"]))
            time.sleep(0.5)
        self.res["cleaves"] = {"nodes": n, "programs": 1000, "ready_ms": ready_ms,
                               "cancel_ms": cancel_ms, "floor_ready_ms": fs,
                               "floor_kill_ms": fk,
                               "cpu_ms_per_leaf": {k: median([x[k] for x in cpu])
                                                   for k in cpu[0]},
                               "guarantees": self.c.report(tree).get("guarantees", [])}
        self.res["load"]["cleaves_end"] = loadavg()

    def nested_errors(self):
        spec = spec_nested_errors()
        path = os.path.join(self.a.tmp, "nested.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        self.res["load"]["nested_start"] = loadavg()
        wall, dur, failed_leaves = [], [], []
        for r in range(self.a.reps):
            rc, out, err, ms = self.arborctl("spawn", "--supervisor", self.a.supervisor,
                                             "--wait", "--timeout", "60", "--json", path)
            if rc != 1:
                raise RuntimeError("nested errors: arborctl exited %d (want 1): %s" % (rc, err))
            rep = json.loads(out)
            nodes = list(walk(rep["root"]))
            leaves = [x for x in nodes if not x.get("children")]
            wall.append(ms)
            dur.append(rep["duration_ms"])
            failed_leaves.append(sum(1 for x in leaves if x["status"] == "failed"))
            errs = sum(1 for x in nodes if x.get("error"))
            log("nested errors rep %d: %.0f ms wall, duration_ms %d, %d nodes, %d failed leaves,"
                " %d errors in the report" % (r + 1, ms, dur[-1], len(nodes), failed_leaves[-1],
                                              errs))
            time.sleep(0.3)
        self.res["nested"] = {"processes": count_nodes(spec), "arbor_ms": wall,
                              "duration_ms": dur, "failed_leaves": failed_leaves,
                              "reference_ms": [6800, 8200]}

    # -- the nursery: Python at every node; dynamic spawn ---------------------------------
    def nursery(self):
        """(1) examples/python/nested_errors.py: root -> 2 -> 4 -> 8 -> 16 Python
        spawners -> 32 Python leaves raising ValueError (63 processes), each
        level started by its parent through arbor (temporary children), until
        arborctl spawn --wait has printed the complete report; floor:
        bench/nursery_floor.py, the same 63 Python processes in the same shape
        with plain subprocess, waited for; alternated in the same run.
        (2) One worker (bench/spawn_many, libarbor_worker) starts 1000 sleep
        children through its notify fd, one request each (and, recorded, all in
        one request with "count"); until all 1001 nodes are ready; floor: the
        same worker as the root of a static spec with the same 1000 children."""
        reps = self.a.reps
        self.res["load"]["nursery_start"] = loadavg()
        py = sys.executable
        env = dict(os.environ, PYTHONPATH=os.path.join(self.a.src, "python"))
        example = os.path.join(self.a.src, "examples", "python", "nested_errors.py")
        floor_prog = os.path.join(self.a.src, "bench", "nursery_floor.py")
        spec = json.loads(subprocess.run([py, example, "--spec"], env=env, check=True,
                                         stdout=subprocess.PIPE, timeout=30).stdout)
        path = os.path.join(self.a.tmp, "nested-python.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        arbor_ms, floor_ms, dur, levels, arbor_cpu, floor_cpu = [], [], [], [], [], []
        for r in range(reps):
            u0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            p = subprocess.run([py, floor_prog], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=120)
            floor_ms.append((time.monotonic() - t0) * 1000.0)
            u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            floor_cpu.append((u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime) * 1000.0)
            if p.returncode != 1 or p.stdout.strip() != b"32":
                raise RuntimeError("nursery floor: exit %d, %r leaf errors came back (want 32)"
                                   % (p.returncode, p.stdout))
            c0 = self.cpu_snapshot()
            rc, out, err, ms = self.arborctl("spawn", "--supervisor", self.a.supervisor, "--wait",
                                             "--timeout", "120", "--json", path)
            c1 = self.cpu_snapshot()
            if rc != 1:
                raise RuntimeError("nursery: arborctl exited %d (want 1): %s" % (rc, err))
            # every worker has been reaped by the fork-server: its children's time
            arbor_cpu.append({k: c1[k] - c0[k] for k in ("workers", "supervisor", "forkserver",
                                                         "broker")})
            rep = json.loads(out)
            nodes = list(walk(rep["root"]))
            leaves = [x for x in nodes if not x.get("children")]
            good = sum(1 for x in leaves if x["status"] == "failed" and x["error"]["type"] ==
                       "ValueError" and "Traceback" in x["error"].get("traceback", ""))
            groups = sum(1 for x in nodes if x.get("children") and x["status"] == "failed" and
                         x["error"]["type"] == "ChildrenFailed")
            if len(nodes) != 63 or good != 32 or groups != 31:
                raise RuntimeError("nursery: %d nodes, %d structured leaf errors, %d "
                                   "ChildrenFailed (want 63, 32, 31)" % (len(nodes), good, groups))
            arbor_ms.append(ms)
            dur.append(rep["duration_ms"])
            levels.append(nursery_levels(rep))
            log("nursery rep %d: Python at every node %.0f ms (duration_ms %d; CPU %s), floor "
                "%.0f ms (CPU %.0f ms)" % (r + 1, ms, dur[-1], json.dumps(
                    {k: round(v) for k, v in arbor_cpu[-1].items()}), floor_ms[-1], floor_cpu[-1]))
        self.res["nursery"] = {"processes": 63, "arbor_ms": arbor_ms, "floor_ms": floor_ms,
                               "duration_ms": dur, "levels": levels[arbor_ms.index(min(arbor_ms))],
                               "arbor_cpu_ms": arbor_cpu, "floor_cpu_ms": floor_cpu}
        # (2) 1000 children: static spec, dynamic one by one, dynamic in one request
        sm = self.a.spawn_many
        specs = {"static": {"name": "root", "run": "exec", "argv": [sm, "0"],
                            "children": [{"name": "c", "count": 1000, "run": "sleep"}]},
                 "dynamic": {"name": "root", "run": "exec", "argv": [sm, "1000"]},
                 "dynamic_count": {"name": "root", "run": "exec", "argv": [sm, "1000", "count"]}}
        dyn = {k: [] for k in specs}
        for r in range(reps):
            for k, sp in specs.items():
                tree, ms = self.spawn_until_ready(sp, "dyn-" + k, timeout_s=60, n=1001)
                dyn[k].append(ms)
                self.cancel_wait(tree)
                time.sleep(0.3)
            log("dynamic rep %d: all 1001 ready: static %.0f ms, dynamic %.0f ms, one request "
                "%.0f ms" % (r + 1, dyn["static"][-1], dyn["dynamic"][-1],
                             dyn["dynamic_count"][-1]))
        self.res["dynamic"] = {"children": 1000, "static_ms": dyn["static"],
                               "dynamic_ms": dyn["dynamic"], "count_ms": dyn["dynamic_count"]}
        self.res["load"]["nursery_end"] = loadavg()

    # -- 4: broker ------------------------------------------------------------------------
    def broker(self):
        self.res["load"]["broker_start"] = loadavg()
        out = {"raw": [], "arbor": [], "senders": self.a.senders,
               "count": self.a.senders * self.a.msgs, "bytes": 200}
        for r in range(self.a.reps):
            for mode, ep in (("raw", self.a.raw), ("arbor", self.a.bench_broker)):
                p = subprocess.run([self.a.broker_bench, "run", "--connect", ep, "--mode", mode,
                                    "--senders", str(self.a.senders), "--count",
                                    str(self.a.msgs), "--size", "200"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
                line = p.stdout.decode().strip()
                if p.returncode != 0:
                    raise RuntimeError("broker_bench %s: %s %s" % (mode, line,
                                                                   p.stderr.decode()))
                kv = dict(x.split("=") for x in line.split())
                out[mode].append(float(kv["msgs_per_s"]))
                log("broker rep %d %s: %s msg/s" % (r + 1, mode, kv["msgs_per_s"]))
        self.res["broker"] = out
        self.res["load"]["broker_end"] = loadavg()

    # -- what one worker costs -------------------------------------------------------------
    def breakdown(self):
        self.res["load"]["breakdown_start"] = loadavg()
        runs = []
        for _ in range(self.a.reps):
            out = subprocess.run([self.a.worker_cost, "--broker", self.a.broker, "--supervisor",
                                  self.a.supervisor, "200"], check=True, stdout=subprocess.PIPE,
                                 timeout=120).stdout.decode()
            runs.append({kv["variant"]: {k: float(v) for k, v in kv.items() if k != "variant"}
                         for kv in (dict(x.split("=") for x in line.split())
                                    for line in out.split("\n") if line.startswith("variant="))})
        # fork floor with and without the supervisor's libraries mapped
        fl = subprocess.run([self.a.floor_fork, "1110", str(self.a.reps)], check=True,
                            stdout=subprocess.PIPE, timeout=120).stdout.decode()
        env = dict(os.environ, LD_PRELOAD="libczmq.so.4 libzmq.so.5 libcjson.so.1")
        fl_libs = subprocess.run([self.a.floor_fork, "1110", str(self.a.reps)], check=True,
                                 stdout=subprocess.PIPE, timeout=120, env=env).stdout.decode()

        def parse(text):
            rows = [dict(x.split("=") for x in l.split()) for l in text.split("\n") if l]
            return {k: median([float(r[k]) for r in rows]) for k in ("spawn_ms", "kill_ms",
                                                                      "fork_us")}
        self.res["breakdown"] = {
            "worker_cost": {v: {k: median([r[v][k] for r in runs]) for k in runs[0][v]}
                            for v in runs[0]},
            "floor_bare": parse(fl), "floor_with_supervisor_libs": parse(fl_libs)}
        self.res["load"]["breakdown_end"] = loadavg()
        log("breakdown: %s" % json.dumps(self.res["breakdown"]))

    # -- 7: scaling -----------------------------------------------------------------------
    def scaling(self):
        self.res["load"]["scaling_start"] = loadavg()
        rows = []
        for n in self.a.sizes:
            spec = spec_sized(n)
            assert count_nodes(spec) == n
            fs, fk = self.floor(n - 1, self.a.reps) if n > 1 else ([0], [0])
            rd, cc, cpu = [], [], []
            w_ready, _ = self.inspect_workers(spec, "scale%di" % n)
            for _ in range(self.a.reps):
                c0 = self.cpu_snapshot()
                tree, ms = self.spawn_until_ready(spec, "scale%d" % n)
                c1 = self.cpu_snapshot()
                rd.append(ms)
                time.sleep(0.2)
                _, ms = self.cancel_wait(tree)
                c2 = self.cpu_snapshot()
                cc.append(ms)
                d = self.cpu_delta(c0, c1, n, w_ready)
                d["worker_life"] = (c2["workers"] - c0["workers"]) / n
                cpu.append(d)
                time.sleep(0.3)
            row = {"nodes": n, "ready_ms": median(rd), "cancel_ms": median(cc),
                   "floor_spawn_ms": median(fs), "floor_kill_ms": median(fk),
                   "ready_all": rd, "cancel_all": cc,
                   "cpu_per_node_spawn_ms": {k: median([x[k] for x in cpu])
                                             for k in ("workers", "forkserver", "broker",
                                                       "supervisor", "worker_life",
                                                       "others_ms")}}
            log("scaling %d nodes: all ready %.0f ms, cancel %.0f ms (floor %.0f / %.0f ms)"
                % (n, row["ready_ms"], row["cancel_ms"], row["floor_spawn_ms"],
                   row["floor_kill_ms"]))
            rows.append(row)
        self.res["scaling"] = rows
        self.res["load"]["scaling_end"] = loadavg()
        with open(os.path.join(self.a.out, "scaling.dat"), "w") as f:
            f.write("# nodes arbor_ready_ms arbor_cancel_ms floor_spawn_ms floor_kill_ms"
                    " (medians of %d)\n" % self.a.reps)
            for r in rows:
                f.write("%d %.1f %.1f %.1f %.1f\n" % (r["nodes"], r["ready_ms"], r["cancel_ms"],
                                                     r["floor_spawn_ms"], r["floor_kill_ms"]))


# ---- the table ------------------------------------------------------------------------

def table(res, reps):
    """The results as Markdown; parts that were not run are left out."""
    def ok(flag):
        return "yes" if flag else "**no**"

    def each(xs, fmt="%.0f"):
        return " / ".join(fmt % x for x in xs)

    s, c, n, b = (res.get(k) for k in ("spawn", "cancel", "nested", "broker"))
    rows = []
    if s:
        a, f = best(s["arbor_ms"]), best(s["floor_ms"])
        rows.append(("spawn %d nodes, request → all ready (ms)" % s["nodes"], "%.0f" % a,
                     "%.0f" % f, "%.1fx" % (a / f), "≤ 3x and < 1000 ms",
                     ok(a / f <= 3 and a < 1000)))
    if c:
        a, f = best(c["arbor_ms"]), best(c["floor_ms"])
        rows.append(("cancel %d nodes → complete report (ms)" % c["nodes"], "%.0f" % a,
                     "%.0f" % f, "%.1fx" % (a / f), "≤ 4x", ok(a / f <= 4)))
    if n:
        a = best(n["arbor_ms"])
        rows.append(("nested errors, %d processes → report (ms)" % n["processes"], "%.0f" % a,
                     "6800–8200 (reference runtime)", "%.0fx faster" % (6800 / a), "< 300 ms",
                     ok(a < 300)))
    ny, dy = res.get("nursery"), res.get("dynamic")
    if ny:
        a, f = best(ny["arbor_ms"]), best(ny["floor_ms"])
        rows.append(("nested errors, a Python process at every node (%d) → complete report (ms)"
                     % ny["processes"], "%.0f" % a, "%.0f (subprocess)" % f, "%.2fx" % (a / f),
                     "≤ 1.5x and < 1500 ms", ok(a / f <= 1.5 and a < 1500)))
    if dy:
        a, f = best(dy["dynamic_ms"]), best(dy["static_ms"])
        rows.append(("1000 children started by one worker, one request each → all ready (ms)",
                     "%.0f" % a, "%.0f (static spec)" % f, "%.2fx" % (a / f), "≤ 2x",
                     ok(a / f <= 2)))
        a = best(dy["count_ms"])
        rows.append(("1000 children started by one worker in one request (count) → all ready "
                     "(ms)", "%.0f" % a, "%.0f (static spec)" % f, "%.2fx" % (a / f),
                     "(recorded)", "–"))
    e = res.get("exec")
    if e:
        for what, arb, flo in (("spawn", "spawn_ms", "floor_spawn_ms"),
                               ("cancel", "cancel_ms", "floor_kill_ms")):
            a, f = best(e[arb]), best(e[flo])
            rows.append(("exec path: %s %d exec'd programs (ms; containment: %s)"
                         % (what, e["programs"], "cgroup" if "cgroup" in e["guarantees"]
                            else "subreaper"), "%.0f" % a, "%.0f" % f, "%.1fx" % (a / f),
                         "(recorded)", "–"))
    cl = res.get("cleaves")
    if cl:
        a, f = best(cl["ready_ms"]), best(cl["floor_ready_ms"])
        worst = max(x / y for x, y in zip(cl["ready_ms"], cl["floor_ready_ms"]))
        rows.append(("10×10×10, 1000 exec'd C leaves (libarbor_worker) → all ready (ms; "
                     "containment: %s; worst rep %.2fx)"
                     % ("cgroup" if "cgroup" in cl["guarantees"] else "subreaper", worst),
                     "%.0f" % a, "%.0f (fork+exec, ready)" % f, "%.2fx" % (a / f), "≤ 1.5x",
                     ok(a / f <= 1.5)))
    if b:
        a, f = max(b["arbor"]), max(b["raw"])
        rows.append(("broker, 200-byte envelopes routed (msg/s)", "%.0f" % a, "%.0f" % f,
                     "%.2fx" % (a / f), "≥ 0.6x", ok(a / f >= 0.6)))
    lines = ["| measure (best of %d) | arbor | floor | ratio | target | met |" % reps,
             "|---|---:|---:|---:|---|---|"]
    lines += ["| %s |" % " | ".join(r) for r in rows]
    lines += ["", "Other numbers, same run:", "", "| measure | value |", "|---|---:|"]
    if s:
        lines.append("| spawn: all ready, each rep | %s ms |" % each(s["arbor_ms"]))
        lines.append("| spawn: all ready as dated in the report (tree start → last ready), "
                     "each rep | %s ms |" % each(s["arbor_report_ms"]))
        lines.append("| spawn floor (fork 1110 → all running), each rep | %s ms |"
                     % each(s["floor_ms"]))
    if c:
        lines.append("| cancel: arborctl cancel --wait wall, each rep | %s ms |"
                     % each(c["arbor_ms"]))
        lines.append("| cancel: in the report (first cancel_requested → last exited), each rep "
                     "| %s ms |" % each(c["arbor_report_ms"]))
        lines.append("| cancel floor (SIGKILL + reap 1110), each rep | %s ms |"
                     % each(c["floor_ms"]))
        ratios = [x / y for x, y in zip(c["arbor_ms"], c["floor_ms"])]
        lines.append("| cancel against the floor of the same rep, each rep (within 3x) | %s (%d of %d) |"
                     % (" / ".join("%.2fx" % r for r in ratios), sum(r <= 3 for r in ratios),
                        len(ratios)))
        lines.append("| cancel: nodes whose report has no cancel_requested phase (all reps) | %d |"
                     % c.get("nodes_without_cancel_requested", 0))
    if e:
        lines.append("| exec path: all spawned, each rep (floor) | %s ms (%s ms) |"
                     % (each(e["spawn_ms"]), each(e["floor_spawn_ms"])))
        lines.append("| exec path: cancel --wait, each rep (floor: SIGKILL + reap) | %s ms (%s ms) |"
                     % (each(e["cancel_ms"]), each(e["floor_kill_ms"])))
        lines.append("| exec path: CPU per program, fork-server spawn / cancel, its children, "
                     "supervisor (medians) | %s ms |" % " / ".join(
                         "%.3f" % e["cpu_ms_per_program"][k]
                         for k in ("forkserver_spawn", "forkserver_cancel", "children",
                                   "supervisor")))
    if cl:
        lines.append("| C leaves: all ready, each rep (floor) | %s ms (%s ms) |"
                     % (each(cl["ready_ms"]), each(cl["floor_ready_ms"])))
        lines.append("| C leaves: cancel --wait, each rep (floor: SIGKILL + reap) | %s ms (%s ms) |"
                     % (each(cl["cancel_ms"]), each(cl["floor_kill_ms"])))
        lines.append("| C leaves: CPU per leaf, the workers' whole lives / during spawn: "
                     "fork-server / supervisor / broker (medians; workers include the 111 "
                     "builtin spawners) | %s ms |" % " / ".join(
                         "%.3f" % cl["cpu_ms_per_leaf"][k]
                         for k in ("workers", "forkserver", "supervisor", "broker")))
    if n:
        lines.append("| nested errors: arborctl spawn --wait wall, each rep | %s ms |"
                     % each(n["arbor_ms"]))
        lines.append("| nested errors: report duration_ms, each rep | %s ms |"
                     % each(n["duration_ms"]))
        lines.append("| nested errors: leaves reported failed (of 32) | %s |"
                     % each(n["failed_leaves"], "%d"))
    if ny:
        lines.append("| Python at every node: arbor (arborctl spawn --wait wall), each rep | %s ms |"
                     % each(ny["arbor_ms"]))
        lines.append("| Python at every node: report duration_ms, each rep | %s ms |"
                     % each(ny["duration_ms"]))
        lines.append("| Python at every node: subprocess floor, each rep | %s ms |"
                     % each(ny["floor_ms"]))
        ac = [sum(c.values()) for c in ny["arbor_cpu_ms"]]
        lines.append("| Python at every node: CPU, arbor (workers + supervisor + fork-server + "
                     "broker) / floor (all its processes), median | %.0f (%.0f + %.0f + %.0f + "
                     "%.0f) / %.0f ms: %.2fx |" % (
                         median(ac), *(median([c[k] for c in ny["arbor_cpu_ms"]]) for k in
                                       ("workers", "supervisor", "forkserver", "broker")),
                         median(ny["floor_cpu_ms"]), median(ac) / median(ny["floor_cpu_ms"])))
        lines.append("| Python at every node, by level 0–5 (best rep; medians): parent running → "
                     "spawned / spawned → ready / leaf ready → exited / last child exited → "
                     "spawner exited | %s |" % "; ".join(
                         "%d: %s / %s / %s / %s" % (i, *("%.0f" % r[k] if r[k] is not None else "–"
                                                         for k in ("spawn", "start", "leaf_end",
                                                                   "spawner_end")))
                         for i, r in enumerate(ny["levels"])))
    if dy:
        lines.append("| 1000 children: static spec / one request each / one request, each rep "
                     "| %s / %s / %s ms |" % (each(dy["static_ms"]), each(dy["dynamic_ms"]),
                                             each(dy["count_ms"])))
    m = res.get("memory")
    if m:
        lines.append("| supervisor peak RSS (VmHWM), one 1111-node tree | %.1f MiB |"
                     % (m["supervisor_hwm_kb"] / 1024))
        lines.append("| broker peak RSS (VmHWM), one 1111-node tree | %.1f MiB |" % (m["broker_hwm_kb"] / 1024))
        lines.append("| broker RSS after each rep | %s MiB |"
                     % each([x / 1024 for x in m["broker_rss_after_each_rep_kb"]], "%.1f"))
        if m.get("forkserver_hwm_kb"):
            lines.append("| fork-server peak RSS (VmHWM) | %.1f MiB |"
                         % (m["forkserver_hwm_kb"] / 1024))
        lines.append("| worker RSS, average of %d | %.0f KiB |"
                     % (m["workers"], m["worker_rss_kb_avg"]))
        lines.append("| worker PSS, average of %d | %.0f KiB (all workers: %.1f MiB) |"
                     % (m["workers"], m["worker_pss_kb_avg"], m["worker_pss_kb_total"] / 1024))
    la = res.get("latency")
    if la:
        for key, label in (("spawn_to_ready_ms", "spawn → ready per node (its spawned → its ready)"),
                           ("cancel_requested_to_exited_ms",
                            "cancel → exited per node (its cancel_requested → its exited)"),
                           ("first_cancel_to_exited_ms",
                            "cancel → exited per node (the tree's first cancel_requested → "
                            "its exited)")):
            lines.append("| %s, p50 / p99 / max (n=%d) | %d / %d / %d ms |"
                         % (label, la[key]["n"], la[key]["p50"], la[key]["p99"], la[key]["max"]))
    cp = res.get("cpu_per_node_ms")
    if cp:
        sp, cc = cp["spawn"], cp["cancel"]
        lines.append("| CPU per node, spawn → all ready: worker (read in an extra repetition "
                     "whose cancel is not timed) / fork-server / broker / "
                     "supervisor | %.2f / %.2f / %.2f / %.2f ms |"
                     % (sp["workers"], sp["forkserver"], sp["broker"], sp["supervisor"]))
        lines.append("| CPU per node, cancel → report: worker (its life less the above) / "
                     "fork-server / broker / supervisor | %.2f / %.2f / %.2f / %.2f ms |"
                     % (cc["workers"], cc["forkserver"], cc["broker"], cc["supervisor"]))
        lines.append("| CPU per worker, its whole life (the fork-server's reaped-children time) "
                     "| %.2f ms |" % sp["worker_life"])
        lines.append("| machine CPU busy during spawn / cancel (both cores, every process) "
                     "| %.0f%% / %.0f%% |" % (100 * sp["machine_busy"], 100 * cc["machine_busy"]))
        lines.append("| CPU used by other processes during spawn / cancel (of 2 cores × wall; "
                     "this driver's own share) | %.0f of %.0f ms (%.0f) / %.0f of %.0f ms (%.0f) |"
                     % (sp["others_ms"], sp["capacity_ms"], sp["driver_ms"], cc["others_ms"],
                        cc["capacity_ms"], cc["driver_ms"]))
    if b:
        lines.append("| broker: arbor msg/s, each rep (%d senders × %d, 1 receiver) | %s |"
                     % (b["senders"], b["count"] // b["senders"], each(b["arbor"])))
        lines.append("| broker: raw forwarder msg/s, each rep | %s |" % each(b["raw"]))
    bd = res.get("breakdown")
    if bd:
        w = bd["worker_cost"]
        lines += ["", "What one worker costs (bench/worker_cost: 200 children forked one at a "
                  "time from a process with the supervisor's libraries; CPU of the child, all "
                  "its threads; medians of %d):" % reps, "",
                  "| child does | CPU per child | fork() in the parent | wall, fork → reaped |",
                  "|---|---:|---:|---:|"]
        labels = {"bare": "_exit at once", "ctx": "zmq_ctx_new + zmq_ctx_term",
                  "zsys": "zsys_init + zsys_shutdown (CZMQ)",
                  "link": "a builtin's life: 5 phases over its notify fd, exit",
                  "worker": "an exec'd program's library life: arbor_worker_from_env, 5 phases "
                            "over the notify fd, close, exit"}
        for v in ("bare", "link", "ctx", "zsys", "worker"):
            if v in w:
                lines.append("| %s | %.0f µs | %.0f µs | %.0f µs |"
                             % (labels[v], w[v]["cpu_us"], w[v]["fork_us"], w[v]["wall_us"]))
        fb, fl = bd["floor_bare"], bd["floor_with_supervisor_libs"]
        lines += ["", "| fork floor, 1110 children | spawn ms | SIGKILL + reap ms | fork() µs |",
                  "|---|---:|---:|---:|",
                  "| bare (libc only) | %.0f | %.0f | %.0f |" % (fb["spawn_ms"], fb["kill_ms"],
                                                               fb["fork_us"]),
                  "| with ZeroMQ mapped (LD_PRELOAD czmq, zmq, cjson; the fork-server before it "
                  "became its own program) | "
                  "%.0f | %.0f | %.0f |" % (fl["spawn_ms"], fl["kill_ms"], fl["fork_us"])]
    if res.get("scaling"):
        lines += ["", "Scaling (medians of %d; CPU per node during spawn → all ready, and a "
                  "worker's whole life):" % reps, "",
                  "| nodes | all ready ms | cancel ms | floor spawn ms | floor kill ms | "
                  "ready ratio | cancel ratio | CPU/node: worker | fork-server | broker | "
                  "supervisor | worker life | other processes' CPU ms |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in res["scaling"]:
            fs, fk = r["floor_spawn_ms"], r["floor_kill_ms"]
            c = r.get("cpu_per_node_spawn_ms") or {}
            lines.append("| %d | %.0f | %.0f | %.1f | %.1f | %s | %s | %s |"
                         % (r["nodes"], r["ready_ms"], r["cancel_ms"], fs, fk,
                            "%.1fx" % (r["ready_ms"] / fs) if fs else "-",
                            "%.1fx" % (r["cancel_ms"] / fk) if fk else "-",
                            " | ".join("%.2f" % c[k] if k in c else "?" for k in
                                       ("workers", "forkserver", "broker", "supervisor",
                                        "worker_life")) +
                            " | %.0f" % c.get("others_ms", 0)))
    lines += ["", "Load average (1/5/15 min) at the start and end of each part: " + "; ".join(
        "%s %s" % (k, "/".join("%.2f" % x for x in v)) for k, v in res["load"].items())]
    qw = res.get("quiet_wait")
    if qw:
        lines += ["", "Before each part the machine was let fall idle (under 10 % busy over "
                  "half a second, at most 60 s): " + "; ".join(
                      "%s after %.1f s (%.0f %% busy)" % (k, v["seconds"], 100 * v["busy"])
                      for k, v in qw.items())]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--floor-fork", required=True)
    ap.add_argument("--broker-bench", required=True)
    ap.add_argument("--worker-cost", required=True)
    ap.add_argument("--spawn-many", help="bench/spawn_many (the nursery part)")
    ap.add_argument("--ready-leaf", help="bench/ready_leaf (the cleaves part)")
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--broker", required=True)
    ap.add_argument("--bench-broker", required=True)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--supervisor", required=True)
    ap.add_argument("--supervisor-pid", type=int, required=True)
    ap.add_argument("--broker-pid", type=int, required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--msgs", type=int, default=50000, help="messages per sender")
    ap.add_argument("--sizes", default="10,50,100,250,500,1000,1500,2000")
    ap.add_argument("--parts",
                    default="tree,nested,nursery,exec,cleaves,broker,breakdown,scaling")
    a = ap.parse_args()
    a.sizes = [int(x) for x in a.sizes.split(",") if x]
    parts = a.parts.split(",")
    os.makedirs(a.out, exist_ok=True)
    b = Bench(a)
    t0 = time.monotonic()
    try:
        # Memory first: the daemons' peak RSS is read right after the 1111-node tree.
        steps = [("tree", b.tree_1111), ("nested", b.nested_errors), ("nursery", b.nursery),
                 ("exec", b.exec_path), ("cleaves", b.cleaves), ("broker", b.broker),
                 ("breakdown", b.breakdown), ("scaling", b.scaling)]
        b.res["quiet_wait"] = {}
        for name, run in steps:
            if name not in parts:
                continue
            waited, share = wait_quiet()
            b.res["quiet_wait"][name] = {"seconds": round(waited, 1), "busy": round(share, 3)}
            log("%s: the machine %s after %.1f s (%.0f %% busy)"
                % (name, "quiet" if share < 0.10 else "still busy", waited, 100 * share))
            run()
    finally:
        b.c.close()
    b.res["seconds"] = time.monotonic() - t0
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(b.res, f, indent=1)
    text = table(b.res, a.reps)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    log("measured in %.0f s" % b.res["seconds"])


if __name__ == "__main__":
    main()
