"""Observability: trace (Trace Event Format), timeline (PNG/SVG by gnuplot),
watch (plain lines off a terminal, the live view on one), stats (broker and
supervisor counters) and JSON logs of the daemons -- all against the real
broker, supervisor and workers.

The tree of every test is nested, fails, and has a node that hangs in
cleanup with a small grace_ms, so that escalation (SIGTERM, SIGKILL), errors
and a stuck phase all show. Every wait is on a process exit or a log line,
with a deadline."""

import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import by_path, check, main, walk  # noqa: E402

HANG_GUARD = 30
ARBORCTL = os.path.join(harness.BIN, "arborctl")
SCHEMA_DIR = os.path.join(harness.SRC, "schema")

# root -> spawner-{0,1} -> (errorer fails after 100 ms, sleeper), cache hangs
# in cleanup (grace 150 ms, SIGKILL 150 ms later), legacy sleeps.
NESTED = {"name": "root", "children": [
    {"name": "spawner", "count": 2, "children": [
        {"name": "errorer", "run": "fail", "after_ms": 100,
         "error": {"type": "ValueError", "message": "row 17: 'n/a' is not a number"}},
        {"name": "sleeper", "run": "sleep"}]},
    {"name": "cache", "run": "hang", "in": "cleanup", "grace_ms": 150, "kill_after_ms": 150},
    {"name": "legacy", "run": "sleep"}]}

# The same, slower: leaves time to start a watch before the end.
SLOW = json.loads(json.dumps(NESTED))
SLOW["children"][0]["children"][0]["after_ms"] = 1200


def started(run):
    run.broker()
    run.supervisor("sup1")


def failed_tree(run, *extra):
    """Spawn NESTED, wait for its end; returns the report."""
    code, report = run.spawn_wait(NESTED, *extra, timeout=HANG_GUARD)
    check(code == 1, "spawn --wait exit %d, expected 1" % code)
    cache = by_path(report)["root/cache"]
    check(cache["status"] == "killed" and cache["escalation"], "cache not escalated: %r" % cache)
    return report


# ---- trace ---------------------------------------------------------------------

def check_trace_event_format(doc):
    """The structure chrome://tracing and Perfetto read: a JSON object with a
    traceEvents list; every event has name, ph, ts, pid, tid; X events have
    dur >= 0; instant events a scope; metadata events args.name."""
    check(isinstance(doc, dict), "trace is not a JSON object")
    check(isinstance(doc.get("traceEvents"), list) and doc["traceEvents"], "no traceEvents list")
    check(doc.get("displayTimeUnit") in ("ms", "ns"), "displayTimeUnit %r" % doc.get("displayTimeUnit"))
    for e in doc["traceEvents"]:
        for key in ("name", "ph", "ts", "pid", "tid"):
            check(key in e, "event without %s: %r" % (key, e))
        check(isinstance(e["name"], str) and e["name"], "bad name %r" % e)
        check(isinstance(e["ts"], (int, float)) and e["ts"] >= 0, "bad ts %r" % e)
        check(isinstance(e["pid"], int) and isinstance(e["tid"], int), "pid/tid not integers %r" % e)
        check(e["ph"] in ("X", "i", "M"), "unexpected phase type %r" % e)
        if e["ph"] == "X":
            check(isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0, "X without dur >= 0: %r" % e)
        if e["ph"] == "i":
            check(e.get("s") in ("t", "p", "g"), "instant without scope %r" % e)
        if e["ph"] == "M":
            check(e["name"] in ("process_name", "thread_name", "process_sort_index",
                                "thread_sort_index"), "unknown metadata %r" % e)
            check(isinstance(e.get("args"), dict), "metadata without args %r" % e)


def check_trace_covers(doc, report):
    """Every phase of every node of the report appears on the node's track
    (named by its path), at its time; slices of a track in order; each
    error an instant event with args {type, message}."""
    tracks = {}
    for e in doc["traceEvents"]:
        if e["ph"] == "M" and e["name"] == "thread_name":
            tracks[e["args"]["name"]] = e["tid"]
    nodes = list(walk(report["root"]))
    check(set(tracks) == {n["path"] for n in nodes},
          "tracks %s != nodes %s" % (sorted(tracks), sorted(n["path"] for n in nodes)))
    paths = [p for p, _ in sorted(tracks.items(), key=lambda kv: kv[1])]
    for i, p in enumerate(paths[1:], 1):  # nesting reads: a node's subtree follows it
        parent = p.rsplit("/", 1)[0]
        check(parent in paths[:i], "track %s comes before its parent %s" % (p, parent))
    by_tid = {}
    for e in doc["traceEvents"]:
        if e["ph"] != "M":
            by_tid.setdefault(e["tid"], []).append(e)
    for n in nodes:
        events = by_tid.get(tracks[n["path"]], [])
        for ph in n["phases"]:
            check(any(e["name"] == ph["phase"] and e["ts"] == ph["t_ms"] * 1000 for e in events),
                  "%s: phase %s at %d ms missing from the trace" % (n["path"], ph["phase"], ph["t_ms"]))
        slices = [e for e in events if e["ph"] == "X"]
        for a, b in zip(slices, slices[1:]):
            check(a["ts"] <= b["ts"] and a["ts"] + a["dur"] <= b["ts"] + 1e-6,
                  "%s: slices out of order or overlapping: %r %r" % (n["path"], a, b))
        if n["error"]:
            errs = [e for e in events if e.get("cat") == "error"]
            check(len(errs) == 1 and errs[0]["ph"] == "i", "%s: error event %r" % (n["path"], errs))
            args = errs[0]["args"]
            check(args["type"] == n["error"]["type"] and args["message"] == n["error"]["message"],
                  "%s: error args %r" % (n["path"], args))
        if n["escalation"]:
            sigs = [e["args"]["signal"] for e in events if e.get("cat") == "signal"]
            check(sigs == n["escalation"]["signals"], "%s: signals %r" % (n["path"], sigs))
            check(any(e.get("args", {}).get("stuck") for e in slices), "%s: no stuck slice" % n["path"])


def test_trace(run):
    started(run)
    report = failed_tree(run)
    tree = report["tree"]
    r = run.ctl("trace", tree)
    check(r.returncode == 0, "trace exit %d: %s" % (r.returncode, r.stderr))
    doc = json.loads(r.stdout)
    check_trace_event_format(doc)
    check_trace_covers(doc, report)
    check(doc["otherData"]["tree"] == tree and doc["otherData"]["status"] == "failed",
          "otherData %r" % doc.get("otherData"))
    # -o FILE, and a saved report converted offline give the same events
    out = os.path.join(run.dir, "trace.json")
    r = run.ctl("trace", "-o", out, tree)
    check(r.returncode == 0 and r.stdout == "", "trace -o: %d %r %s" % (r.returncode, r.stdout, r.stderr))
    with open(out) as f:
        check(json.load(f)["traceEvents"] == doc["traceEvents"], "trace -o differs")
    saved = os.path.join(run.dir, "report.json")
    with open(saved, "w") as f:
        json.dump(report, f)
    r = run.ctl("trace", "--report", saved)
    check(r.returncode == 0 and json.loads(r.stdout)["traceEvents"] == doc["traceEvents"],
          "trace --report differs: %s" % r.stderr)
    # usage errors and an unknown tree
    check(run.ctl("trace").returncode == 2, "trace without TREE")
    check(run.ctl("trace", "--report", saved, tree).returncode == 2, "TREE and --report")
    r = run.ctl("trace", "0000000000000000")
    check(r.returncode == 2 and "no supervisor knows" in r.stderr, "unknown tree: %d %s" % (r.returncode, r.stderr))


# ---- timeline ------------------------------------------------------------------

def png_size(data):
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG (magic %r)" % data[:8])
    check(data[12:16] == b"IHDR", "first chunk is not IHDR")
    return struct.unpack(">II", data[16:24])


def test_timeline(run):
    started(run)
    report = failed_tree(run)
    tree = report["tree"]
    # Without gnuplot on PATH: a clear message, exit 2.
    env = dict(run.env, PATH="/nonexistent")
    r = subprocess.run([ARBORCTL, "--broker", run.broker_ep, "timeline", "--png",
                        os.path.join(run.dir, "x.png"), tree], capture_output=True, text=True,
                       env=env, timeout=30 * harness.SLOW)
    check(r.returncode == 2 and "gnuplot-nox" in r.stderr,
          "no gnuplot: exit %d: %s" % (r.returncode, r.stderr))
    check(not os.path.exists(os.path.join(run.dir, "x.png")), "a file was left without gnuplot")
    if not shutil.which("gnuplot"):
        print("SKIP test_timeline PNG/SVG: gnuplot is not installed (apt-get install gnuplot-nox)")
        return
    png = os.path.join(run.dir, "timeline.png")
    r = run.ctl("timeline", "--png", png, tree)
    check(r.returncode == 0, "timeline exit %d: %s" % (r.returncode, r.stderr))
    with open(png, "rb") as f:
        data = f.read()
    w, h = png_size(data)
    check(len(data) > 5000, "PNG of %d bytes: too small to show anything" % len(data))
    nodes = len(list(walk(report["root"])))
    check(w == 1400 and h >= 150 + 20 * nodes, "PNG is %dx%d for %d nodes" % (w, h, nodes))
    r = subprocess.run([ARBORCTL, "--broker", run.broker_ep, "timeline", "--width", "900",
                        "--png", "-", tree], capture_output=True, env=run.env,
                       timeout=60 * harness.SLOW)
    check(r.returncode == 0, "timeline to stdout: %s" % r.stderr)
    check(png_size(r.stdout)[0] == 900, "--width 900: %r" % (png_size(r.stdout),))
    svg = os.path.join(run.dir, "timeline.svg")
    r = run.ctl("timeline", "--svg", svg, tree)
    check(r.returncode == 0, "timeline --svg exit %d: %s" % (r.returncode, r.stderr))
    with open(svg) as f:
        text = f.read()
    check("<svg" in text and "root/cache" in text and "stuck" in text,
          "SVG lacks the rows or the stuck mark")
    check(run.ctl("timeline", tree).returncode == 2, "timeline without --png/--svg")


# ---- watch ---------------------------------------------------------------------

def spawn_slow(run):
    r = run.ctl("spawn", "-", input=json.dumps(SLOW))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    return r.stdout.strip()


def test_watch_plain(run):
    """Off a terminal: one line per event, ending on the tree's end."""
    started(run)
    tree = spawn_slow(run)
    r = run.ctl("watch", tree, timeout=HANG_GUARD)
    check(r.returncode == 1, "watch exit %d (expected 1, failed): %s" % (r.returncode, r.stderr))
    lines = r.stdout.splitlines()
    check("\033" not in r.stdout, "escape sequences off a terminal")
    check(any("root/cache  phase term_sent" in l for l in lines), "no term_sent line:\n" + r.stdout)
    check(any("root/spawner-0/errorer  phase cleanup" in l for l in lines), "no phase lines:\n" + r.stdout)
    check(any("status killed" in l for l in lines), "no status line")
    check(lines and lines[-1].endswith("-  tree failed"), "does not end on done: %r" % lines[-1:])
    # An ended tree: one line at once.
    r = run.ctl("watch", tree)
    check(r.returncode == 1 and r.stdout.strip().endswith("tree failed"), "ended tree: %r" % r.stdout)


def pty_run(run, args, env_extra, timeout):
    """Run arborctl on a pseudo-terminal (80x30); returns (exit code, output)."""
    master, slave = pty.openpty()
    import fcntl
    import termios
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = dict(run.env, TERM="xterm", **env_extra)
    env.pop("NO_COLOR", None) if "NO_COLOR" not in env_extra else None
    p = subprocess.Popen([ARBORCTL, "--broker", run.broker_ep] + list(args), stdin=slave,
                         stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout * harness.SLOW
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                chunk = b""
            if not chunk and p.poll() is not None:
                break
            out += chunk
        elif p.poll() is not None:
            break
    if p.poll() is None:
        p.kill()
    code = p.wait(timeout=5)
    os.close(master)
    return code, out.decode(errors="replace")


def strip_csi(text):
    """The text without its escape sequences (colours, cursor movement)."""
    return re.sub(r"\033\[[0-9;?]*[A-Za-z]", "", text)


def test_watch_live(run):
    """On a terminal: a frame redrawn in place, with counts, a progress bar,
    the slowest nodes; colours unless NO_COLOR."""
    started(run)
    tree = spawn_slow(run)
    code, out = pty_run(run, ["watch", tree], {}, HANG_GUARD)
    check(code == 1, "live watch exit %d:\n%s" % (code, out[-2000:]))
    check("\033[?25l" in out and "\033[?25h" in out, "cursor not hidden and shown again")
    check("\033[K" in out and re.search(r"\033\[\d+A", out), "no redraw in place")
    check("\033[31m" in out, "no colour on a terminal")
    out = strip_csi(out)
    check("nodes ended" in out and "\u2588" in out, "no progress bar:\n" + out[-2000:])
    check("9/9 nodes ended (100%)" in out, "final frame lacks 9/9:\n" + out[-3000:])
    check("status " in out and "killed 1" in out and "failed" in out, "no status counts")
    check("phase " in out and "exited 9" in out, "no phase counts")
    check("slowest" in out, "no slowest list while running")
    check("stuck in cleanup" in out, "stuck node not shown")
    code, out = pty_run(run, ["watch", tree], {"NO_COLOR": "1"}, HANG_GUARD)
    check(code == 1 and "9/9 nodes ended" in out, "ended tree, NO_COLOR: %d\n%s" % (code, out))
    check("\033[31m" not in out and "\033[32m" not in out, "colour despite NO_COLOR")
    code, out = pty_run(run, ["watch", "--plain", tree], {}, HANG_GUARD)
    out = strip_csi(out)
    check(code == 1 and "tree failed" in out and "nodes ended" not in out,
          "--plain on a terminal: %d %r" % (code, out))


# ---- stats ---------------------------------------------------------------------

def validate_stats(body, who):
    """A stats reply body against schema/msg.stats.json (as an envelope)."""
    try:
        from jsonschema import Draft202012Validator, RefResolver
    except ImportError:
        return
    store = {}
    for name in os.listdir(SCHEMA_DIR):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                s = json.load(f)
            store[s["$id"]] = s
    schema = store["https://arbor.invalid/schema/msg.stats.json"]
    env = {"v": 1, "type": "stats", "to": "ctl-1", "id": 1, "re": 1, "body": body}
    errs = list(Draft202012Validator(schema, resolver=RefResolver.from_schema(schema, store=store))
                .iter_errors(env))
    check(not errs, "%s stats do not validate: %s" % (who, [e.message for e in errs][:5]))


def stats(run, *args):
    r = run.ctl("stats", "--json", *args)
    check(r.returncode == 0, "stats exit %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout)


def test_stats(run):
    started(run)
    run.supervisor("sup2")
    before = stats(run)
    check(set(before) == {"broker", "supervisors"}, "keys %r" % list(before))
    check(set(before["supervisors"]) == {"sup1", "sup2"}, "supervisors %r" % before["supervisors"])
    failed_tree(run, "--supervisor", "sup1")
    after = stats(run)
    b0, b1 = before["broker"], after["broker"]
    for c in ("received", "routed", "published", "handled"):
        check(b1["counters"][c] > b0["counters"][c], "broker %s did not move: %r -> %r" %
              (c, b0["counters"][c], b1["counters"][c]))
    check(b1["peers_by_role"]["supervisor"] == 2, "peers_by_role %r" % b1["peers_by_role"])
    check(after["supervisors"]["sup2"]["counters"]["trees_spawned"] == 0,
          "sup2 spawned: %r" % after["supervisors"]["sup2"])
    s = after["supervisors"]["sup1"]["counters"]
    check(s["trees_spawned"] == 1, "trees_spawned %r" % s)
    check(s["spawns"] == 9 and s["exits"] == 9, "spawns/exits %r" % s)
    check(s["sigterms_sent"] == 1 and s["sigkills_sent"] == 1, "signals %r" % s)
    validate_stats(b1, "broker")
    validate_stats(after["supervisors"]["sup1"], "supervisor")
    # one supervisor only; the table for humans
    one = stats(run, "--supervisor", "sup2")
    check(list(one["supervisors"]) == ["sup2"], "--supervisor: %r" % one["supervisors"])
    r = run.ctl("stats")
    check(r.returncode == 0 and "broker " in r.stdout and "supervisor sup1" in r.stdout and
          "trees_spawned" in r.stdout and "routed" in r.stdout, "table:\n" + r.stdout)
    r = run.ctl("stats", "--supervisor", "nobody")
    check(r.returncode == 3 and "nobody" in r.stderr, "unknown supervisor: %d %s" % (r.returncode, r.stderr))


# ---- logs ----------------------------------------------------------------------

def test_json_logs(run):
    """ARBOR_LOG_FORMAT=json: every line of the daemons' logs is one JSON
    object with ts/prog/pid/level/msg, lines about a tree or peer name it."""
    run.env["ARBOR_LOG_FORMAT"] = "json"
    broker = run.broker()
    sup = run.supervisor("sup1")
    failed_tree(run)
    run.kill_all()
    for p, prog in ((broker, "arbor-broker"), (sup, "arbor-supervisor")):
        lines = [l for l in run.log_of(p).splitlines() if l.strip()]
        check(len(lines) >= 3, "%s logged %d lines" % (prog, len(lines)))
        docs = []
        for l in lines:
            try:
                d = json.loads(l)
            except ValueError:
                raise harness.TestFailure("%s: not a JSON line: %r" % (prog, l))
            for k in ("ts", "prog", "pid", "level", "msg"):
                check(k in d, "%s: line without %s: %r" % (prog, k, l))
            check(d["level"] in ("debug", "info", "warn", "error"), "level %r" % d["level"])
            docs.append(d)
        check(all(d["prog"] == prog or d["prog"] == "arbor-forkserver" for d in docs),
              "prog: %r" % {d["prog"] for d in docs})
        if prog == "arbor-broker":
            check(any(d.get("peer") == "sup1" for d in docs), "no line names peer sup1")
        else:
            check(any(d.get("node") == "root/cache" and d.get("tree") for d in docs),
                  "no line names node root/cache")


if __name__ == "__main__":
    main([test_trace, test_timeline, test_watch_plain, test_watch_live, test_stats, test_json_logs])
