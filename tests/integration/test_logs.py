"""Workers' output kept line by line: the report's "logs" counts, arborctl
logs (plain, --json, --stream, --follow, a PATH), the supervisor's
--log-dir files, and a flood that is bounded in memory and never blocks an
exit.

Every wait is on an event (a process exit, a line on a pipe, a FIFO opened
by the worker) with a deadline; the harness kills and reaps everything."""

import json
import os
import select
import signal
import subprocess
import time

from harness import BIN, SLOW, by_path, check, main, TestFailure

HANG_GUARD = 60  # seconds: a hang guard, not a speed check

# stdout and stderr lines, a line longer than the 4096 bytes kept, a byte
# that is not UTF-8, and a partial last line (no newline at the end).
SHELL = ("echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2; "
         "head -c 5000 /dev/zero | tr '\\000' y; echo; printf 'bad-\\377-byte\\n'; "
         "printf last-partial")


def rss_kib(pid, key="VmHWM"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise TestFailure("no %s in /proc/%d/status" % (key, pid))


def lines_of(text):
    return [l for l in text.split("\n") if l]


def test_kept_filtered_and_written(run):
    logdir = os.path.join(run.dir, "logs")
    run.broker()
    sup = run.supervisor("sup1", "--log-dir", logdir)
    before = rss_kib(sup.pid)
    spec = {"name": "root", "strategy": "one_for_one", "children": [
        {"name": "sh", "run": "exec", "argv": ["/bin/sh", "-c", SHELL]},
        {"name": "flood", "run": "flood"}]}  # 8 MiB on stdout and on stderr
    t0 = time.monotonic()
    code, rep = run.spawn_wait(spec, timeout=HANG_GUARD)
    check(time.monotonic() - t0 < HANG_GUARD * SLOW, "the flood held the tree up")
    check(code == 1 and rep["status"] == "failed", "exit %d, %r" % (code, rep and rep["status"]))
    tree = rep["tree"]
    nodes = by_path(rep)
    flood, sh = nodes["root/flood"], nodes["root/sh"]
    # The flood's exit was not blocked by its output, and its error is its own.
    check(flood["status"] == "failed" and flood["error"]["type"] == "FloodFailure",
          "flood %s %r" % (flood["status"], flood["error"]))
    check(flood["phases"][-1]["phase"] == "exited", "flood phases %r" % flood["phases"])
    # Bounded: the default keeps 1000 lines per node; the rest were dropped.
    total = 2 * (8 << 20) // 64
    check(flood["logs"]["lines"] == 1000, "flood keeps %r" % flood["logs"])
    check(flood["logs"]["lines"] + flood["logs"]["dropped"] >= total,
          "flood: %r, %d lines written" % (flood["logs"], total))
    check(sh["logs"] == {"lines": 7, "dropped": 0}, "sh logs %r" % sh["logs"])
    check(rep["root"]["logs"] == {"lines": 0, "dropped": 0}, "root logs %r" % rep["root"]["logs"])
    if SLOW == 1:  # sanitizers and valgrind keep freed memory on purpose
        grown = rss_kib(sup.pid) - before
        check(grown < 8 * 1024, "the supervisor's peak RSS grew by %d KiB over 16 MiB of "
              "output (kept: 1000 lines per node)" % grown)

    # Plain: "PATH STREAM | TEXT", each stream in its order.
    r = run.ctl("logs", tree + "/root/sh", timeout=HANG_GUARD)
    check(r.returncode == 0, "logs exit %d: %s" % (r.returncode, r.stderr))
    got = lines_of(r.stdout)
    out = [l for l in got if l.startswith("root/sh stdout | ")]
    err = [l for l in got if l.startswith("root/sh stderr | ")]
    check(len(out) + len(err) == len(got) == 7, "plain output:\n%s" % r.stdout)
    check(out[0] == "root/sh stdout | out-1" and out[1] == "root/sh stdout | out-2", "%r" % out)
    check(out[2] == "root/sh stdout | " + "y" * 4096 + " [... 904 bytes cut]", "cut line %r" % out[2][-40:])
    check(out[4] == "root/sh stdout | last-partial", "partial last line %r" % out[4])
    check(err == ["root/sh stderr | err-1", "root/sh stderr | err-2"], "%r" % err)

    # --stream: only that stream.
    r = run.ctl("logs", tree, "--stream", "stderr", timeout=HANG_GUARD)  # DESIGN.md's order
    check(r.returncode == 0, "logs --stream exit %d: %s" % (r.returncode, r.stderr))
    got = lines_of(r.stdout)
    check(got and all(" stderr | " in l for l in got), "--stream stderr printed:\n%s" % r.stdout[:2000])
    check("root/sh stderr | err-1" in got and "root/flood stderr | " + "x" * 63 in got,
          "--stream stderr lacks a node's lines")

    # --json: one object per line, in seq order across nodes.
    r = run.ctl("logs", "--json", tree, timeout=HANG_GUARD)
    check(r.returncode == 0, "logs --json exit %d: %s" % (r.returncode, r.stderr))
    objs = [json.loads(l) for l in lines_of(r.stdout)]
    check(len(objs) == 1007, "--json printed %d lines, expected 1007 (7 + 1000)" % len(objs))
    seqs = [o["seq"] for o in objs]
    check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seqs out of order")
    for o in objs:
        check(set(o) <= {"seq", "path", "stream", "t_ms", "text", "cut"} and
              {"seq", "path", "stream", "t_ms", "text"} <= set(o), "line keys %r" % sorted(o))
    bad = [o for o in objs if o["text"].startswith("bad-")]
    check(bad and bad[0]["text"] == "bad-\ufffd-byte", "invalid UTF-8: %r" % bad)
    cut = [o for o in objs if "cut" in o]
    check(len(cut) == 1 and cut[0]["cut"] == 904 and len(cut[0]["text"]) == 4096, "cut %r" % cut)
    # The flood's drops are said, on stderr.
    check("dropped" in r.stderr, "no word of dropped lines:\n%s" % r.stderr)

    # A PATH that is no node, and a tree nobody knows: usage errors.
    r = run.ctl("logs", tree + "/root/nobody", timeout=HANG_GUARD)
    check(r.returncode == 2 and "no node" in r.stderr, "unknown node: %d %s" % (r.returncode, r.stderr))
    r = run.ctl("logs", "no-such-tree", timeout=HANG_GUARD)
    check(r.returncode == 2, "unknown tree: %d %s" % (r.returncode, r.stderr))

    # --log-dir: every line of every node, kept or not, in DIR/TREE/PATH.log.
    with open(os.path.join(logdir, tree, "root+sh.log"), "rb") as f:
        text = f.read().decode(errors="replace")
    rows = [l.split(" ", 2) for l in text.split("\n") if l]
    check(len(rows) == 7 and all(r[0].isdigit() and r[1] in ("stdout", "stderr") for r in rows),
          "root+sh.log:\n%s" % text[:600])
    for want in (["stdout", "out-1"], ["stderr", "err-2"], ["stdout", "last-partial"]):
        check(want in [r[1:] for r in rows], "%r not in root+sh.log:\n%s" % (want, text[:600]))
    with open(os.path.join(logdir, tree, "root+flood.log"), "rb") as f:
        n = sum(1 for _ in f)
    check(n == flood["logs"]["lines"] + flood["logs"]["dropped"],
          "root+flood.log has %d lines, the report %r" % (n, flood["logs"]))
    check(not os.path.exists(os.path.join(logdir, tree, "root.log")), "a file for a silent node")


class Reader:
    """Lines of a child's stdout, waited for with a deadline."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""
        self.lines = []

    def wait_for(self, pred, what, timeout=20):
        deadline = time.monotonic() + timeout * SLOW
        while True:
            for line in self.lines:
                if pred(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("no line %s within %ss; got %r" % (what, timeout, self.lines[-5:]))
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                data = os.read(self.proc.stdout.fileno(), 65536)
                if not data:
                    raise TestFailure("arborctl ended (%s) before printing %s; got %r" %
                                      (self.proc.wait(), what, self.lines[-5:]))
                self.buf += data
                *done, self.buf = self.buf.split(b"\n")
                self.lines += [l.decode() for l in done]


def follow(run, *args):
    return subprocess.Popen([os.path.join(BIN, "arborctl"), "--broker", run.broker_ep, "logs",
                             "--follow"] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=run.env)


def test_follow(run):
    run.broker()
    run.supervisor("sup1")
    fifo = os.path.join(run.dir, "go")
    os.mkfifo(fifo)
    # The worker prints, then blocks on the FIFO until the test writes to it.
    spec = {"name": "root", "children": [
        {"name": "ticker", "run": "exec", "argv": [
            "/bin/sh", "-c", "echo started; echo warming >&2; read word < %s; echo got-$word; "
            "echo bye >&2; printf no-newline; exit 3" % fifo]}]}
    r = run.ctl("spawn", "-", input=json.dumps(spec), timeout=HANG_GUARD)
    check(r.returncode == 0, "spawn: %d %s" % (r.returncode, r.stderr))
    tree = r.stdout.strip()
    procs = []
    go = -1
    try:
        whole = follow(run, tree)
        node = follow(run, "--json", "--stream", "stderr", tree + "/root/ticker")
        stopped = follow(run, tree)
        procs = [whole, node, stopped]
        readers = [Reader(p) for p in procs]
        # Lines of a node that is still running.
        readers[0].wait_for(lambda l: l == "root/ticker stdout | started", "started")
        readers[1].wait_for(lambda l: json.loads(l)["text"] == "warming", "warming (json)")
        readers[2].wait_for(lambda l: l.endswith("| started"), "started")
        check(all(p.poll() is None for p in procs), "a follower ended while the tree runs")
        # Ctrl-C: a clean exit, at once.
        stopped.send_signal(signal.SIGINT)
        rc = stopped.wait(timeout=10 * SLOW)
        check(rc == 130, "interrupted follower exited %d" % rc)
        # Let the worker finish: the followers print the rest and exit by status.
        # (Opened read-write: never blocks, and the word waits in the FIFO
        # until the worker reads it.)
        go = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
        os.write(go, b"go\n")
        rc = whole.wait(timeout=HANG_GUARD * SLOW)
        rest, err = whole.communicate(timeout=10 * SLOW)
        lines = readers[0].lines + lines_of((readers[0].buf + rest).decode())
        check(rc == 1, "follower exited %d, expected 1 (the tree failed): %s" % (rc, err))
        for want in ("root/ticker stdout | got-go", "root/ticker stderr | bye",
                     "root/ticker stdout | no-newline"):
            check(want in lines, "%r missing from the follower's output:\n%s" % (want, "\n".join(lines)))
        check(len(lines) == len(set(lines)) == 5, "a line twice or missing:\n%s" % "\n".join(lines))
        rc = node.wait(timeout=HANG_GUARD * SLOW)
        rest, _ = node.communicate(timeout=10 * SLOW)
        texts = [json.loads(l)["text"] for l in readers[1].lines + lines_of((readers[1].buf + rest).decode())]
        check(rc == 1 and texts == ["warming", "bye"], "node follower: exit %d, %r" % (rc, texts))
    finally:
        if go >= 0:
            os.close(go)
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def test_bad_flags(run):
    """A log directory that cannot be made, or a budget of 0: exit 2 at start."""
    blocker = os.path.join(run.dir, "a-file")
    open(blocker, "w").close()
    for extra, word in ((["--log-dir", os.path.join(blocker, "logs")], "--log-dir"),
                        (["--log-lines", "0"], "--log-lines"), (["--log-bytes", "x"], "--log-bytes")):
        r = subprocess.run([os.path.join(BIN, "arbor-supervisor"), "--broker", run.broker_ep,
                            "--name", "bad"] + extra, capture_output=True, text=True, env=run.env,
                           timeout=10 * SLOW)
        check(r.returncode == 2 and word in r.stderr, "%s: exit %d\n%s" % (extra, r.returncode, r.stderr))


if __name__ == "__main__":
    main([test_kept_filtered_and_written, test_follow, test_bad_flags])
