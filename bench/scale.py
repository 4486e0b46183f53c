#!/usr/bin/python3
"""What one arbor broker carries (docs/SCALE.md). Run by bench/scale.sh,
which builds the programs; this file starts its own daemons on ipc
endpoints in a temp dir, measures, and stops every process it started
(also on failure or Ctrl-C).

Parts (--parts, default all):
  msgs     broker messages per tree of N nodes (broker `stats` counters
           before and after a batch of trees), local and placed ("on");
  rate     trees/s and nodes/s through one broker: S supervisors on this
           host, K small trees in flight on each, for D seconds, with one
           watcher subscribed to every tree; the broker's CPU time over the
           same window, hence messages per broker-CPU-second;
  ceiling  the routing ceiling: bench/broker_bench status requests
           through arbor-broker against a raw CZMQ ROUTER forwarder (the
           floor, same run);
  memory   broker RSS with 0, 100 and 1000 idle registered peers;
  restart  the broker killed (SIGKILL) and started again on the same
           endpoint while trees run: time until every supervisor is
           registered again, and whether the trees are intact.

Writes OUT/scale.json and OUT/scale.md (also printed), both with the git
commit measured (when run from a git tree) and the date: figures are only
comparable with the code that made them."""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import zmq

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print("scale:", *a, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def source():
    """The commit of this tree (None outside git), whether files differ from
    it, and the date of the run (UTC)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

    def git(*args):
        try:
            r = subprocess.run(["git", "-C", root] + list(args), capture_output=True, text=True,
                               timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {"commit": commit, "dirty": dirty,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


# ---- daemons ----------------------------------------------------------------------

class Daemons:
    """Processes of this run; stop() ends them all (SIGTERM, then SIGKILL)."""

    def __init__(self, bin_dir):
        self.bin = bin_dir
        self.dir = tempfile.mkdtemp(prefix="arbor-scale-")
        os.chmod(self.dir, 0o700)
        self.procs = []
        self.n = 0

    def start(self, name, argv):
        log_path = os.path.join(self.dir, "%s-%d.log" % (name, self.n))
        self.n += 1
        with open(log_path, "wb") as logf:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                 close_fds=True)
        p.log_path = log_path
        self.procs.append(p)
        return p

    def wait_log(self, p, text, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(p.log_path, "rb") as f:
                if text.encode() in f.read():
                    return
            if p.poll() is not None:
                break
            time.sleep(0.005)
        with open(p.log_path, "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        raise RuntimeError("%s did not log %r:\n%s" % (p.args[0], text, tail))

    def broker(self, ep, *extra):
        p = self.start("broker", [os.path.join(self.bin, "arbor-broker"), "--bind", ep] + list(extra))
        self.wait_log(p, "listening")
        return p

    def supervisor(self, ep, name):
        p = self.start(name, [os.path.join(self.bin, "arbor-supervisor"), "--broker", ep, "--name", name])
        self.wait_log(p, "registered with broker")
        return p

    def kill(self, p, sig=signal.SIGKILL):
        if p.poll() is None:
            p.send_signal(sig)
        p.wait(timeout=10)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + 20
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.procs = []


# ---- a client (a DEALER, as arborctl is) -------------------------------------------

class Client:
    def __init__(self, ctx, endpoint, name):
        self.name = name
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, name.encode())
        self.sock.setsockopt(zmq.RCVHWM, 1000000)
        self.sock.setsockopt(zmq.SNDHWM, 100000)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.next_id = 1
        self.backlog = []  # messages read while waiting for a reply: not lost

    def send(self, to, typ, body):
        i = self.next_id
        self.next_id += 1
        self.sock.send(json.dumps({"v": 1, "type": typ, "to": to, "id": i, "re": None, "body": body},
                                  separators=(",", ":")).encode())
        return i

    def _read(self, timeout_ms):
        if not self.sock.poll(timeout_ms):
            return None
        return json.loads(self.sock.recv_multipart()[-1])

    def recv(self, timeout_ms):
        if self.backlog:
            return self.backlog.pop(0)
        return self._read(timeout_ms)

    def request(self, to, typ, body, want, timeout_s=10):
        i = self.send(to, typ, body)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            m = self._read(100)
            if m and m.get("re") == i:
                if m["type"] != want:
                    raise RuntimeError("%s -> %s: %s" % (typ, m["type"], m.get("body")))
                return m
            if m:
                self.backlog.append(m)
        raise RuntimeError("no %s reply to %s within %s s" % (want, typ, timeout_s))

    def hello(self, role="client", timeout_s=10):
        return self.request("broker", "hello", {"role": role, "incarnation": "scale"}, "welcome",
                            timeout_s=timeout_s)

    def counters(self):
        return self.request("broker", "stats", {}, "stats")["body"]["counters"]

    def peers(self):
        return {p["name"] for p in self.request("broker", "peers", {}, "peers")["body"]["peers"]}

    def close(self):
        self.sock.close(0)


def sized_spec(n, on=None):
    """A tree of n nodes: a root and n-1 leaves that sleep 1 ms; with on, the
    leaves sit under a node placed on that supervisor (n >= 3)."""
    leaf = {"name": "w", "run": "sleep", "ms": 1}
    if on:
        return {"name": "root", "children": [{"name": "far", "on": on,
                                              "children": [dict(leaf, count=n - 2)]}]}
    return {"name": "root", "children": [dict(leaf, count=n - 1)]} if n > 1 else dict(leaf, name="root")


# ---- the parts ---------------------------------------------------------------------

class Scale:
    def __init__(self, a):
        self.a = a
        self.d = Daemons(a.bin)
        self.ctx = zmq.Context()
        self.ctx.setsockopt(zmq.LINGER, 0)
        self.ctx.max_sockets = 4096
        self.res = dict(source(), load_start=loadavg(), cpus=os.cpu_count(), quick=a.quick)
        self.seq = 0

    def ep(self, tag):
        return "ipc://%s/%s.sock" % (self.d.dir, tag)

    def tree_id(self):
        self.seq += 1
        return "s%d-%d" % (os.getpid(), self.seq)

    def run_tree(self, c, sup, spec, done_topics):
        """Spawn on sup and wait for its "done" event (c is subscribed to tree/)."""
        tree = self.tree_id()
        c.request(sup, "spawn", {"spec": spec, "tree": tree}, "spawned")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            m = c.recv(100)
            if m and m["type"] == "event" and m["body"].get("kind") == "done" and \
                    m["body"].get("tree") == tree:
                return tree
        raise RuntimeError("tree %s on %s: no done event in 30 s" % (tree, sup))

    # -- messages per tree --------------------------------------------------------
    def msgs(self):
        ep = self.ep("msgs")
        self.d.broker(ep)
        self.d.supervisor(ep, "sup1")
        self.d.supervisor(ep, "sup2")
        c = Client(self.ctx, ep, "scale-msgs")
        c.hello()
        c.request("broker", "subscribe", {"topics": ["tree/"]}, "subscribed")
        batch = 5 if self.a.quick else 20
        out = []
        for n, on in ((1, None), (10, None), (100, None), (10, "sup2"), (100, "sup2")):
            self.run_tree(c, "sup1", sized_spec(n, on), None)  # warm
            before = c.counters()
            for _ in range(batch):
                self.run_tree(c, "sup1", sized_spec(n, on), None)
            after = c.counters()
            d = {k: after[k] - before[k] for k in after}
            # Into the broker, for the trees: events published (with or
            # without subscribers) and routed messages, less the driver's
            # own spawns; out of it: routed and event copies delivered.
            tree_in = d["routed"] + d["published"] + d["swallowed"] - batch
            row = {"nodes": n, "placed": bool(on), "trees": batch,
                   "in_per_tree": tree_in / batch, "in_per_node": tree_in / batch / n,
                   "routed_per_tree": d["routed"] / batch, "published_per_tree": d["published"] / batch,
                   "delivered_per_tree": d["delivered"] / batch,
                   "out_per_node": (d["routed"] + d["delivered"]) / batch / n}
            out.append(row)
            log("msgs: %3d nodes%s: %.1f in per tree (%.2f per node), %.1f delivered per tree" %
                (n, " placed" if on else "", row["in_per_tree"], row["in_per_node"], row["delivered_per_tree"]))
        c.close()
        self.d.stop()
        self.res["msgs"] = out

    # -- trees/s and nodes/s through one broker -----------------------------------
    def rate(self):
        ep = self.ep("rate")
        b = self.d.broker(ep)
        sups = ["sup%d" % i for i in range(1, self.a.supervisors + 1)]
        for s in sups:
            self.d.supervisor(ep, s)
        c = Client(self.ctx, ep, "scale-rate")
        c.hello()
        c.request("broker", "subscribe", {"topics": ["tree/"]}, "subscribed")
        spec = sized_spec(self.a.tree_nodes)
        inflight = {}  # tree -> supervisor

        def spawn(sup):
            tree = self.tree_id()
            c.send(sup, "spawn", {"spec": spec, "tree": tree})
            inflight[tree] = sup

        for s in sups:
            for _ in range(self.a.inflight):
                spawn(s)
        warm_end = time.monotonic() + 1.0
        t0 = None
        done = 0
        events = 0
        end = None
        while True:
            now = time.monotonic()
            if t0 is None and now >= warm_end:
                t0, cpu0, cnt0, busy0, done0 = now, cpu_s(b.pid), c.counters(), machine_busy(), done
                end = t0 + self.a.seconds
            if end and now >= end:
                t1, cpu1, cnt1, busy1 = now, cpu_s(b.pid), c.counters(), machine_busy()
                break
            m = c.recv(100)
            if not m:
                continue
            if m["type"] == "event":
                events += 1
                body = m["body"]
                if body.get("kind") == "done" and body.get("tree") in inflight:
                    sup = inflight.pop(body["tree"])
                    done += 1
                    spawn(sup)
            elif m["type"] == "error":
                raise RuntimeError("rate: error %s" % m["body"])
        dt = t1 - t0
        trees = done - done0
        d = {k: cnt1[k] - cnt0[k] for k in cnt1}
        broker_in = d["received"]
        broker_out = d["routed"] + d["delivered"]
        bcpu = cpu1 - cpu0
        row = {"supervisors": len(sups), "tree_nodes": self.a.tree_nodes, "inflight_per_sup": self.a.inflight,
               "seconds": dt, "trees_per_s": trees / dt, "nodes_per_s": trees * self.a.tree_nodes / dt,
               "broker_in_per_s": broker_in / dt, "broker_out_per_s": broker_out / dt,
               "broker_cpu_pct": 100 * bcpu / dt,
               "machine_busy_pct": 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
               "broker_msgs_per_cpu_s": (broker_in + broker_out) / bcpu if bcpu > 0 else None,
               "broker_in_per_cpu_s": broker_in / bcpu if bcpu > 0 else None}
        # Drain: let the trees in flight end before the daemons stop.
        end = time.monotonic() + 30
        while inflight and time.monotonic() < end:
            m = c.recv(100)
            if m and m["type"] == "event" and m["body"].get("kind") == "done":
                inflight.pop(m["body"].get("tree"), None)
        c.close()
        self.d.stop()
        self.res["rate"] = row
        log("rate: %d supervisors, %d-node trees: %.0f trees/s, %.0f nodes/s; broker %.0f msg/s in, %.0f out, "
            "%.0f%% of a CPU (machine %.0f%% busy)" % (len(sups), self.a.tree_nodes, row["trees_per_s"],
                                                        row["nodes_per_s"], row["broker_in_per_s"],
                                                        row["broker_out_per_s"], row["broker_cpu_pct"],
                                                        row["machine_busy_pct"]))

    # -- routing ceiling (broker_bench) ------------------------------------------------
    def ceiling(self):
        bb = os.path.join(self.a.bin, "broker_bench")
        if not os.access(bb, os.X_OK):
            log("ceiling: %s not built, skipped" % bb)
            return
        ep, raw = self.ep("ceil"), self.ep("raw")
        self.d.broker(ep, "--max-rate", "0")
        fwd = self.d.start("forward", [bb, "forward", "--bind", raw])
        time.sleep(0.3)  # the forwarder prints nothing when bound
        out = {"arbor": [], "raw": []}
        count = 20000 if self.a.quick else 100000
        for rep in range(1 if self.a.quick else 3):
            for mode, e in (("raw", raw), ("arbor", ep)):
                p = subprocess.run([bb, "run", "--connect", e, "--mode", mode, "--senders", "4",
                                    "--count", str(count // 4), "--size", "200"],
                                   capture_output=True, text=True, timeout=120)
                if p.returncode != 0:
                    raise RuntimeError("broker_bench %s: %s %s" % (mode, p.stdout, p.stderr))
                kv = dict(x.split("=") for x in p.stdout.split())
                out[mode].append(float(kv["msgs_per_s"]))
        self.d.kill(fwd, signal.SIGTERM)
        self.d.stop()
        row = {"arbor_msgs_per_s": max(out["arbor"]), "raw_msgs_per_s": max(out["raw"]),
               "runs": out}
        row["ratio"] = row["arbor_msgs_per_s"] / row["raw_msgs_per_s"]
        self.res["ceiling"] = row
        log("ceiling: arbor-broker %.0f msg/s, raw forwarder %.0f msg/s (%.2fx)" %
            (row["arbor_msgs_per_s"], row["raw_msgs_per_s"], row["ratio"]))

    # -- memory per peer ------------------------------------------------------------------
    def memory(self):
        ep = self.ep("mem")
        # Idle peers send no heartbeat: a long expiry keeps them registered.
        b = self.d.broker(ep, "--expiry-ms", "600000")
        rows = []
        peers = []
        for target in (0, 100, 1000):
            while len(peers) < target:
                p = Client(self.ctx, ep, "idle-%d" % len(peers))
                p.send("broker", "hello", {"role": "client", "incarnation": "idle"})
                peers.append(p)
            for p in peers:
                if not getattr(p, "welcomed", False):
                    m = p.recv(10000)
                    if not m or m["type"] != "welcome":
                        raise RuntimeError("memory: %s got %r" % (p.name, m))
                    p.welcomed = True
            rows.append({"peers": target, "rss_kb": rss_kb(b.pid),
                         "fds": len(os.listdir("/proc/%d/fd" % b.pid))})
            log("memory: %4d idle peers: broker RSS %d kB, %d fds" % (target, rows[-1]["rss_kb"], rows[-1]["fds"]))
        for p in peers:
            p.close()
        self.d.stop()
        per = (rows[-1]["rss_kb"] - rows[0]["rss_kb"]) / rows[-1]["peers"]
        self.res["memory"] = {"rows": rows, "kb_per_peer": per}

    # -- broker restart ---------------------------------------------------------------------
    def restart(self):
        ep = self.ep("restart")
        b = self.d.broker(ep)
        sups = ["sup%d" % i for i in range(1, self.a.supervisors + 1)]
        for s in sups:
            self.d.supervisor(ep, s)
        c = Client(self.ctx, ep, "scale-restart")
        c.hello()
        trees = {}
        for s in sups:
            tree = self.tree_id()
            spec = {"name": "root", "children": [{"name": "w", "run": "sleep", "count": 4}]}
            c.request(s, "spawn", {"spec": spec, "tree": tree}, "spawned")
            trees[tree] = s
        def pids(tree, sup):
            rep = c.request(sup, "status", {"tree": tree}, "report")["body"]["report"]
            out, stack = {}, [rep["root"]]
            while stack:
                n = stack.pop()
                out[n["path"]] = (n["pid"], n["status"])
                stack += n["children"]
            return out
        end = time.monotonic() + 10
        while not all(all(v[1] == "running" and v[0] for v in pids(t, s).values()) for t, s in trees.items()):
            if time.monotonic() > end:
                raise RuntimeError("restart: trees not all running")
            time.sleep(0.05)
        before = {t: pids(t, s) for t, s in trees.items()}
        c.close()
        times = []
        for rep in range(1 if self.a.quick else 3):
            self.d.kill(b)
            t_kill = time.monotonic()
            b = self.d.broker(ep)
            t_up = time.monotonic()
            w = Client(self.ctx, ep, "scale-watch-%d" % rep)
            w.hello()
            while True:
                names = w.peers()
                if set(sups) <= names:
                    break
                if time.monotonic() - t_up > 30:
                    raise RuntimeError("restart: supervisors not back in 30 s: %s" % sorted(names))
                time.sleep(0.01)  # polling the registry
            t_all = time.monotonic()
            times.append({"down_s": t_up - t_kill, "reregistered_s": t_all - t_up})
            log("restart %d: broker back in %.3fs, all %d supervisors registered %.3fs later" %
                (rep + 1, t_up - t_kill, len(sups), t_all - t_up))
            w.close()
        c = Client(self.ctx, ep, "scale-restart-after")
        c.hello()
        intact = all(pids(t, s) == before[t] for t, s in trees.items())
        for t, s in trees.items():
            c.request(s, "cancel", {"tree": t}, "cancelling")
        c.close()
        self.d.stop()
        self.res["restart"] = {"supervisors": len(sups), "runs": times, "trees_intact": intact,
                               "median_reregistered_s": statistics.median(x["reregistered_s"] for x in times)}
        log("restart: trees intact: %s" % intact)

    def close(self):
        self.d.stop()
        self.ctx.term()
        shutil.rmtree(self.d.dir, ignore_errors=True)


def provenance(r):
    """The line saying which code was measured, and when."""
    if not r.get("commit"):
        code = "not run from a git tree (commit unknown)"
    else:
        code = "commit %s%s" % (r["commit"], " with uncommitted changes" if r.get("dirty") else "")
    return "Measured %s, %s." % (r.get("date", "at an unrecorded date"), code)


def table(r):
    L = ["# arbor: what one broker carries (bench/scale.sh)", "", provenance(r), "",
         "Machine: %d CPUs; load average at start %s%s." % (r["cpus"], " ".join("%.2f" % x for x in r["load_start"]),
                                                           " (--quick: not for the record)" if r["quick"] else ""), ""]
    if "msgs" in r:
        L += ["## Broker messages per tree", "",
              "| nodes | placed | in per tree | in per node | delivered per tree (1 watcher) | out per node |",
              "|---:|:---:|---:|---:|---:|---:|"]
        for m in r["msgs"]:
            L.append("| %d | %s | %.1f | %.2f | %.1f | %.2f |" % (m["nodes"], "yes" if m["placed"] else "no",
                                                                 m["in_per_tree"], m["in_per_node"],
                                                                 m["delivered_per_tree"], m["out_per_node"]))
        L.append("")
    if "rate" in r:
        x = r["rate"]
        L += ["## Trees and nodes per second through one broker", "",
              "%d supervisors on this host, %d trees of %d nodes in flight on each, one watcher, %.0f s:" %
              (x["supervisors"], x["inflight_per_sup"], x["tree_nodes"], x["seconds"]), "",
              "| trees/s | nodes/s | broker in msg/s | broker out msg/s | broker CPU | machine busy | broker msgs per CPU-second |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              "| %.0f | %.0f | %.0f | %.0f | %.0f%% | %.0f%% | %.0f |" % (
                  x["trees_per_s"], x["nodes_per_s"], x["broker_in_per_s"], x["broker_out_per_s"],
                  x["broker_cpu_pct"], x["machine_busy_pct"], x["broker_msgs_per_cpu_s"] or 0), ""]
    if "ceiling" in r:
        x = r["ceiling"]
        L += ["## Routing ceiling", "",
              "| arbor-broker status msg/s | raw CZMQ forwarder msg/s (floor) | ratio |", "|---:|---:|---:|",
              "| %.0f | %.0f | %.2fx |" % (x["arbor_msgs_per_s"], x["raw_msgs_per_s"], x["ratio"]), ""]
    if "memory" in r:
        x = r["memory"]
        L += ["## Broker memory per idle peer", "", "| peers | RSS kB | fds |", "|---:|---:|---:|"]
        L += ["| %d | %d | %d |" % (m["peers"], m["rss_kb"], m["fds"]) for m in x["rows"]]
        L += ["", "%.1f kB per peer." % x["kb_per_peer"], ""]
    if "restart" in r:
        x = r["restart"]
        L += ["## Broker killed and restarted", "",
              "%d supervisors with running trees; SIGKILL, new broker on the same endpoint:" % x["supervisors"], "",
              "| run | new broker listening after | every supervisor registered after that |", "|---:|---:|---:|"]
        L += ["| %d | %.3f s | %.3f s |" % (i + 1, t["down_s"], t["reregistered_s"]) for i, t in enumerate(x["runs"])]
        L += ["", "Trees intact afterwards (same nodes, pids, all running): %s." % x["trees_intact"], ""]
    L += ["Run time %.0f s (%s)." % (r["seconds"], ", ".join("%s %.0f s" % kv for kv in r["part_seconds"].items())), ""]
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parts", default="msgs,rate,ceiling,memory,restart")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--supervisors", type=int, default=4)
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--tree-nodes", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=None)
    a = ap.parse_args()
    if a.seconds is None:
        a.seconds = 3.0 if a.quick else 15.0
    s = Scale(a)
    s.res["part_seconds"] = {}
    t_all = time.monotonic()
    try:
        for part in a.parts.split(","):
            t0 = time.monotonic()
            getattr(s, part)()
            s.res["part_seconds"][part] = round(time.monotonic() - t0, 1)
    finally:
        s.close()
    s.res["seconds"] = round(time.monotonic() - t_all, 1)
    s.res["load_end"] = loadavg()
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "scale.json"), "w") as f:
        json.dump(s.res, f, indent=1)
    text = table(s.res)
    with open(os.path.join(a.out, "scale.md"), "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
