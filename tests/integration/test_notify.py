"""The notify fd (docs/PROTOCOL.md, issue 14): exec'd workers in Python and
shell report phases and typed errors through ARBOR_NOTIFY_FD; errors up to
64 KiB arrive whole and longer ones are cut with a marker (issue 13
defect 1); a worker that floods, sends garbage, sends 10 MB or closes its
notify fd early changes nothing for any other node.

The examples of docs/WRITING-WORKERS.md (examples/) are run as they are."""

import json
import os
import subprocess
import sys

from harness import BIN, SRC, by_path, check, main, schema_validator

PY = sys.executable or "/usr/bin/python3"
PY_EXAMPLE = os.path.join(SRC, "examples", "python", "worker.py")
SH_EXAMPLE = os.path.join(SRC, "examples", "shell", "worker.sh")
PY_ENV = {"PYTHONPATH": os.path.join(SRC, "python")}


def started(run):
    run.broker()
    return run.supervisor("sup1")


def phases(node):
    return [p["phase"] for p in node["phases"]]


def exec_node(name, argv, **extra):
    node = {"name": name, "run": "exec", "argv": argv}
    node.update(extra)
    return node


def test_shell_one_liners(run):
    """The documented one-liners, in sh and in bash: ready, then an error."""
    started(run)
    script = ('printf \'{"phase":"ready"}\\n\' >&"$ARBOR_NOTIFY_FD"; '
              'printf \'{"error":{"type":"DiskFull","message":"/var is full"}}\' >&"$ARBOR_NOTIFY_FD"; '
              'exit 3')
    for shell in ("sh", "bash"):
        code, report = run.spawn_wait({"name": "root", "children": [
            exec_node(shell, [shell, "-c", script])]})
        path = "root/" + shell
        n = by_path(report)[path]
        # Exit 3, or SIGTERM: its error fails the parent, which cancels its
        # children, and an exec'd node is still cancelled by SIGTERM at once.
        check(n["status"] == "failed" and (n["exit"]["code"] == 3 or n["exit"]["signal"] == "SIGTERM"),
              "%s: %r" % (path, n))
        check(n["error"]["type"] == "DiskFull" and n["error"]["message"] == "/var is full" and
              n["error"]["phase"] == "ready", "%s: error %r" % (path, n["error"]))
        check("ready" in phases(n), "%s: phases %s" % (path, phases(n)))


def test_a_sequence_is_several_messages(run):
    """A datagram that begins with RS (0x1e) is a JSON text sequence: each
    record a message, in order (a shell's printf writes one datagram). Two
    objects without RS stay one malformed message, as before; a bad record
    in a sequence is counted alone and the others still count."""
    sup = started(run)
    rs = "\\036"
    script = ("printf '" + rs + '{"phase":"ready"}\\n' + rs + '{"phase":"running"}\\n' +
              "' >&\"$ARBOR_NOTIFY_FD\"; "
              "printf '{\"phase\":\"cleanup\"}{\"phase\":\"exiting\"}' >&\"$ARBOR_NOTIFY_FD\"; "
              "printf '" + rs + "nonsense" + rs + '{"phase":"cleanup"}' + rs + '{"phase":"exiting"}' +
              "' >&\"$ARBOR_NOTIFY_FD\"; exit 0")
    code, report = run.spawn_wait({"name": "root", "children": [exec_node("sh", ["sh", "-c", script])]})
    n = by_path(report)["root/sh"]
    check(code == 0 and n["status"] == "ok", "exit %d: %r" % (code, n))
    check(phases(n)[:5] == ["spawned", "ready", "running", "cleanup", "exiting"],
          "phases %s" % phases(n))
    log = run.log_of(sup)  # the report is written after the node's messages were read
    check("root/sh: malformed message on its notify fd" in log and "; 2 so far" in log,
          "two malformed messages logged:\n%s" % log[-1500:])


def test_shell_example(run):
    started(run)
    code, report = run.spawn_wait({"name": "root", "children": [
        exec_node("missing", ["sh", SH_EXAMPLE, "/nonexistent/data \"1\".csv"])]})
    m = by_path(report)["root/missing"]
    check(m["status"] == "failed" and m["error"]["type"] == "FileNotFound" and
          m["error"]["message"] == 'cannot read "/nonexistent/data "1".csv"' and
          m["error"]["phase"] == "running", "missing: %r" % m)
    check(phases(m)[:3] == ["spawned", "ready", "running"] and "exiting" in phases(m),
          "missing: phases %s" % phases(m))
    code, report = run.spawn_wait({"name": "root", "children": [
        exec_node("counts", ["sh", SH_EXAMPLE, SH_EXAMPLE])]})
    c = by_path(report)["root/counts"]
    check(c["status"] == "ok" and c["error"] is None, "counts: %r" % c)
    check(phases(c) == ["spawned", "ready", "running", "cleanup", "exiting", "exited"],
          "counts: phases %s" % phases(c))


def test_python_error_with_traceback(run):
    started(run)
    spec = {"name": "root", "children": [
        exec_node("py", [PY, PY_EXAMPLE, "--rows", "100", "--bad-row", "3"], env=PY_ENV)]}
    code, report = run.spawn_wait(spec)
    n = by_path(report)["root/py"]
    e = n["error"]
    # Exit 1; or SIGTERM: the error fails the parent, which cancels its
    # children, and an exec'd node is still cancelled by SIGTERM at once.
    check(n["status"] == "failed" and (n["exit"]["code"] == 1 or n["exit"]["signal"] == "SIGTERM"),
          "py: %r" % n)
    check(e["type"] == "ValueError" and e["message"] == "could not convert string to float: 'n/a'"
          and e["phase"] == "running", "error %r" % e)
    tb = e.get("traceback", "")
    check(tb.startswith("Traceback (most recent call last):") and "in parse" in tb and
          tb.rstrip().endswith("ValueError: could not convert string to float: 'n/a'"),
          "traceback %r" % tb)
    check(phases(n)[:3] == ["spawned", "ready", "running"], "phases %s" % phases(n))
    check(report["root"]["error"]["type"] == "ChildrenFailed", "root %r" % report["root"]["error"])


def test_python_cancelled(run):
    """Cancelled, the Python worker runs its callback, sets its flag, and
    reports cancel_requested, cleanup and exiting: the node is cancelled."""
    started(run)
    mark = os.path.join(run.dir, "cancel-callback")
    spec = {"name": "root", "children": [
        exec_node("py", [PY, PY_EXAMPLE, "--on-cancel", mark], env=PY_ENV)]}
    r = run.ctl("spawn", "-", input=json.dumps(spec))
    check(r.returncode == 0, "spawn: %s" % r.stderr)
    tree = r.stdout.strip()
    run.wait_report(tree, lambda rep: "running" in phases(rep["root"]["children"][0]),
                    "the Python worker running")
    r = run.ctl("cancel", tree, "--wait", "--json")
    report = json.loads(r.stdout)
    n = by_path(report)["root/py"]
    check(n["status"] == "cancelled" and n["error"] is None, "py: %r" % n)
    ph = phases(n)
    check(ph.index("cancel_requested") < ph.index("cleanup") < ph.index("exiting"), "phases %s" % ph)
    with open(mark) as f:
        check(f.read() == "cancelled\n", "the on_cancel callback did not run")


def test_python_outside_arbor(run):
    """No ARBOR_NOTIFY_FD: every call is a no-op and the program runs as is."""
    env = dict(os.environ, **PY_ENV)
    env.pop("ARBOR_NOTIFY_FD", None)
    r = subprocess.run([PY, PY_EXAMPLE, "--rows", "3"], env=env, capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and r.stdout == "total 3.0\n", "ok run: %d %r %r" % (
        r.returncode, r.stdout, r.stderr))
    r = subprocess.run([PY, PY_EXAMPLE, "--rows", "3", "--bad-row", "1"], env=env,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "ValueError" in r.stderr, "failing run: %d %r" % (r.returncode, r.stderr))
    # An ARBOR_NOTIFY_FD naming something else (inherited by a grandchild): ignored.
    env["ARBOR_NOTIFY_FD"] = "1"
    r = subprocess.run([PY, PY_EXAMPLE, "--rows", "2"], env=env, capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0 and r.stdout == "total 1.0\n", "fd 1 is no notify fd: %r" % r.stdout)


def test_long_errors_whole_or_marked(run):
    """An error longer than 4 KiB used to be lost
    (NonZeroExit). Up to 64 KiB it arrives whole; beyond, it is cut by the
    sender with a marker, its type and the end of its traceback kept."""
    started(run)
    long_msg = "".join("line %05d of a long message\n" % i for i in range(2000))  # 56 KB
    # Made by the worker itself: a spec node has a size limit of its own.
    py_whole = ("import arbor; n = arbor.notifier(); n.phase('ready'); n.phase('running');"
                "n.error('LongError', ''.join('line %05d of a long message\\n' % i "
                "for i in range(2000))); raise SystemExit(1)")
    py_huge = ("import arbor; n = arbor.notifier(); n.phase('ready'); n.phase('running');"
               "n.error('HugeError', 'm' * 100000, 'frame\\n' * 2000000 + 'the last line'); "
               "raise SystemExit(1)")
    nodes = {}
    for node in (exec_node("whole", [PY, "-c", py_whole], env=PY_ENV),
                 exec_node("huge", [PY, "-c", py_huge], env=PY_ENV),
                 {"name": "builtin", "run": "fail",
                  "error": {"type": "BuiltinLong", "message": "b" * 20000}}):
        code, report = run.spawn_wait({"name": "root", "children": [node]})
        nodes.update(by_path(report))
    w = nodes["root/whole"]["error"]
    check(w["type"] == "LongError" and w["message"] == long_msg, "whole: %r" % (w and w["type"]))
    h = nodes["root/huge"]["error"]
    check(h["type"] == "HugeError" and h["message"].startswith("m" * 1000) and
          "\u2026[truncated " in h["message"], "huge message: %r" % (h and h["message"][-80:]))
    check(h["traceback"].startswith("\u2026[truncated ") and
          h["traceback"].endswith("frame\nthe last line"), "huge traceback %r" % h["traceback"][:80])
    b = nodes["root/builtin"]["error"]
    check(b["type"] == "BuiltinLong" and b["message"] == "b" * 20000, "builtin: %r" % b["type"])


# An ARBOR-ERROR line on stderr (for programs that write it), as json.dumps
# writes it; then "after" on stderr, and exit 1.
ARBOR_ERROR_LINE = ("import json, sys; sys.stderr.write('before\\n'); "
                    "sys.stderr.write('ARBOR-ERROR ' + json.dumps(%s) + '\\nafter\\n'); sys.exit(1)")


def test_long_error_lines_on_stderr(run):
    """The ARBOR-ERROR stderr line was read from the 4 KiB stderr tail: a
    10 kB line lost its start and the node's error became NonZeroExit
    (issue 13, defect 1). It is kept on its own: whole up to 64 KiB of
    JSON, cut beyond with the marker where it was cut, never lost. A line
    with a \\u0000 (cJSON cut "Bad\\u0000Type" to "Bad"), without a type or
    not an object is not taken: the derived error stands, and the line
    stays in the error's stderr."""
    sup = started(run)
    lines = {
        "big": '{"type": "BigErr", "message": "x" * 10000}',
        "huge": '{"type": "HugeErr", "message": "short", "traceback": "frame\\n" * 20000}',
        "nul": '{"type": "Bad\\u0000Type", "message": "m"}',
        "notype": '{"message": "m"}',
        "notobj": '"not an object"',
    }
    nodes = {}
    for name, err in lines.items():
        code, report = run.spawn_wait({"name": "root", "children": [
            exec_node(name, [PY, "-c", ARBOR_ERROR_LINE % err])]})
        nodes.update(by_path(report))
    big = nodes["root/big"]["error"]
    check(big["type"] == "BigErr" and big["message"] == "x" * 10000,
          "big: %s %d" % (big["type"], len(big["message"])))
    # "before" fell out of the 4 KiB tail; the line's end is not shown twice
    check(big.get("stderr") == "after\n", "big stderr: %r" % big.get("stderr", "")[:200])
    huge = nodes["root/huge"]["error"]
    check(huge["type"] == "HugeErr" and huge["message"] == "short" and
          huge["traceback"].startswith("frame\n" * 100) and "\u2026[truncated " in huge["traceback"] and
          huge["traceback"].endswith(" bytes]") and huge.get("stderr") == "after\n",
          "huge: %s %r" % (huge["type"], huge.get("traceback", "")[-80:]))
    check(len(json.dumps(huge["traceback"], ensure_ascii=False)) <= 65536, "huge: longer than 64 KiB")
    nul = nodes["root/nul"]["error"]
    check(nul["type"] == "NonZeroExit" and 'ARBOR-ERROR {"type": "Bad\\u0000Type"' in nul.get("stderr", ""),
          "nul: %r" % nul)
    check("root/nul: not taken as its error: its ARBOR-ERROR line has a \\u0000 (NUL) in the string "
          "at /type" in run.log_of(sup), "the refused line was not logged")
    for name, shown in (("notype", 'ARBOR-ERROR {"message": "m"}\n'),
                        ("notobj", 'ARBOR-ERROR "not an object"\n')):
        e = nodes["root/" + name]["error"]
        check(e["type"] == "NonZeroExit" and e.get("stderr") == "before\n" + shown + "after\n",
              "%s: %r" % (name, e))


FLOOD = """
import os, socket
s = socket.socket(fileno=int(os.environ["ARBOR_NOTIFY_FD"]))
s.send(b'{"phase":"ready"}')
for i in range(20000):
    s.send(b'{"phase":"running"}')   # valid, repeated: only the first counts
    s.send(b'garbage %d' % i)        # malformed
"""
HUGE = """
import os, socket
s = socket.socket(fileno=int(os.environ["ARBOR_NOTIFY_FD"]))
s.send(b'{"phase":"ready"}')
try:
    s.send(b'{"error":{"type":"X","message":"' + b'x' * (10 << 20) + b'"}}')
    raise SystemExit("a 10 MB datagram went through")
except OSError:
    pass  # EMSGSIZE: the kernel refuses it
s.send(b'{"error":{"type":"TooLong","message":"' + b'y' * 70000 + b'"}}')  # over 64 KiB
"""
GARBAGE = ("printf 'not json' >&3; printf '{\"phase\":7}' >&3; printf '[1,2]' >&3; "
           "printf '{\"phase\":\"ready\"}{\"phase\":\"running\"}' >&3; printf '{\"error\":\"x\"}' >&3; "
           "printf '{\"phase\":\"exited\"}' >&3; printf '{\"hello\":1}' >&3; "
           # cJSON would cut these at the \u0000: an error "Bad", a phase "ready"
           "printf '{\"error\":{\"type\":\"Bad\\\\u0000Type\"}}' >&3; "
           "printf '{\"phase\":\"ready\\\\u0000x\"}' >&3; exit $1")
CLOSER = "exec 3>&-; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit $1"


def test_bad_workers_change_nothing_for_others(run):
    sup = started(run)
    example = os.path.join(BIN, "arbor-example-worker")
    good = [exec_node("c-example", [example, "200"]),
            exec_node("py-example", [PY, PY_EXAMPLE, "--rows", "10"], env=PY_ENV),
            {"name": "builtin", "run": "sleep", "ms": 200}]
    bad = [exec_node("flood", [PY, "-c", FLOOD]),
           exec_node("huge", [PY, "-c", HUGE]),
           exec_node("garbage", ["sh", "-c", GARBAGE, "sh", "0"]),
           exec_node("closer", ["sh", "-c", CLOSER, "sh", "0"])]
    code, report = run.spawn_wait({"name": "root", "children": good + bad})
    nodes = by_path(report)
    check(report["status"] == "ok", "tree %s: %s" % (report["status"], [
        (p, n["status"], n["error"]) for p, n in nodes.items() if n["status"] != "ok"]))
    for g in ("c-example", "py-example", "builtin"):
        n = nodes["root/" + g]
        check(n["status"] == "ok" and phases(n) == ["spawned", "ready", "running", "cleanup",
                                                     "exiting", "exited"],
              "%s: %s %s" % (g, n["status"], phases(n)))
    fl = nodes["root/flood"]
    check(phases(fl) == ["spawned", "ready", "running", "exited"], "flood phases %s" % phases(fl))
    hu = nodes["root/huge"]
    check(hu["status"] == "ok" and hu["error"] is None, "huge: %r" % hu)
    ga = nodes["root/garbage"]
    check(phases(ga) == ["spawned", "exited"], "garbage phases %s" % phases(ga))
    log = run.log_of(sup)
    for what in ("root/flood: malformed message", "root/flood: unknown message",
                 "root/huge: too large message", "root/garbage: malformed message"):
        check(what in log, "supervisor did not log %r" % what)
    check(log.count("root/flood: malformed message") <= 20, "the flood flooded the log")

    # The same misbehaviour, then a non-zero exit: the status comes from the
    # exit status (no garbage type), and the siblings only see a normal failure.
    for name, script, rc in (("garbage", GARBAGE, 4), ("closer", CLOSER, 5)):
        code, report = run.spawn_wait({"name": "root", "children": [
            exec_node(name, ["sh", "-c", script, "sh", str(rc)])]})
        n = by_path(report)["root/" + name]
        check(n["status"] == "failed" and n["exit"]["code"] == rc and
              n["error"]["type"] == "NonZeroExit", "%s: %r" % (name, n))


def test_python_module_api(run):
    """The module on its own, over a socketpair: asyncio integration through
    fileno(), the callback and the flag, unknown messages skipped, long
    errors cut, a supervisor gone. No daemons."""
    import asyncio
    import socket
    sys.path.insert(0, os.path.join(SRC, "python"))
    import arbor
    sup, mine = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    n = arbor.Notifier(mine.detach())
    check(n.enabled and n.fileno() is not None, "not enabled")
    seen = []
    n.on_cancel(lambda: seen.append("callback"))
    try:
        n.phase("exited")
        check(False, "a phase a worker does not report was accepted")
    except ValueError:
        pass

    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()

        def readable():
            ev = n.poll()
            if ev == "cancel" and not got.done():
                got.set_result(ev)
        loop.add_reader(n.fileno(), readable)
        for d in (b'{"event":"child_exited","path":"r/a","status":"ok","error":null}',
                  b'{"re":1,"path":"r/b"}', b"junk", b'{"event":"cancel"}'):
            sup.send(d)
        ev = await asyncio.wait_for(got, 10)
        loop.remove_reader(n.fileno())
        return ev
    check(asyncio.run(main()) == "cancel", "no cancel through asyncio")
    check(n.cancelled and n.wait_cancelled(0) and seen == ["callback"], "flag %s callbacks %s" % (
        n.cancelled, seen))
    n.error("Big", "m" * 200000, "t" * 200000)
    msg = json.loads(sup.recv(1 << 17))
    data_len = len(json.dumps(msg, ensure_ascii=False).encode())
    check(data_len <= 65536 and msg["error"]["message"].endswith(" bytes]") and
          msg["error"]["traceback"].startswith("\u2026[truncated "), "cut: %d bytes" % data_len)
    # The supervisor refuses a "\u0000" in a string: a NUL goes as U+FFFD.
    n.error("Bad\0Type", "a\0b", "tb\0")
    data = sup.recv(1 << 17)
    msg = json.loads(data)["error"]
    check(b"\\u0000" not in data and msg["type"] == "Bad\ufffdType" and msg["message"] == "a\ufffdb" and
          msg["traceback"] == "tb\ufffd", "NUL sent: %r" % data)
    sup.close()
    check(n.poll(5) == "gone" and n.gone, "the supervisor's end closed: not noticed")
    n.close()


def test_docs_show_the_examples(run):
    """docs/WRITING-WORKERS.md shows the very files the tests run."""
    with open(os.path.join(SRC, "docs", "WRITING-WORKERS.md")) as f:
        doc = f.read()
    for path in ("examples/c/example_worker.c", PY_EXAMPLE, SH_EXAMPLE):
        with open(os.path.join(SRC, path)) as f:
            check(f.read() in doc, "docs/WRITING-WORKERS.md does not show %s as it is" % path)


def captured(argv, env=None):
    """Run argv with a notify fd of our own; returns the datagrams it sent."""
    import socket
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(os.environ, **(env or {}))
    env["ARBOR_NOTIFY_FD"] = str(theirs.fileno())
    subprocess.run(argv, env=env, pass_fds=[theirs.fileno()], capture_output=True, timeout=30)
    theirs.close()
    got = []
    while True:
        d = ours.recv(1 << 17)
        if not d:
            return got
        got.append(d)


SUPERVISOR_EVENTS = """
import os, socket
s = socket.socket(fileno=int(os.environ["ARBOR_NOTIFY_FD"]))
s.send(b'{"phase":"ready"}')
s.send(b'{"phase":"running"}')
with open(os.environ["OUT"], "wb") as f:
    while True:  # its child's end, then that all its children are gone
        m = s.recv(65536)
        f.write(m + b"\\n")
        if b"children_exited" in m:
            break
s.send(b'{"phase":"cleanup"}')
s.send(b'{"phase":"exiting"}')
"""


def test_messages_match_the_schemas(run):
    """What the C, Python and shell examples send matches schema/notify.json;
    what the supervisor sends an exec'd worker, schema/notify-event.json."""
    worker_schema = schema_validator("notify.json")
    sent = (captured([os.path.join(BIN, "arbor-example-worker"), "10", "fail"]) +
            captured([PY, PY_EXAMPLE, "--rows", "3", "--bad-row", "1"], PY_ENV) +
            captured(["sh", SH_EXAMPLE, "/nonexistent"]) + captured(["bash", SH_EXAMPLE, SH_EXAMPLE]))
    check(len(sent) >= 16, "too few messages captured: %r" % sent)
    kinds = set()
    for d in sent:
        msg = json.loads(d)
        errs = list(worker_schema.iter_errors(msg))
        check(not errs, "%r: %s" % (d, errs and errs[0].message))
        kinds.update(msg)
    check({"phase", "error", "t_mono_ms"} <= kinds, "kinds %s" % kinds)
    for bad in ({"phase": "exited"}, {"error": {"message": "no type"}}, {"phase": "ready", "x": 1}):
        check(list(worker_schema.iter_errors(bad)), "%r passes notify.json" % bad)

    started(run)
    out = os.path.join(run.dir, "events")
    code, report = run.spawn_wait({"name": "root", "children": [
        exec_node("parent", [PY, "-c", SUPERVISOR_EVENTS], env={"OUT": out},
                  children=[{"name": "kid", "run": "sleep", "ms": 10}])]})
    n = by_path(report)["root/parent"]
    check(n["status"] == "ok" and phases(n)[-3:] == ["cleanup", "exiting", "exited"], "parent %r" % n)
    with open(out, "rb") as f:
        events = [json.loads(line) for line in f.read().splitlines()]
    check(events == [{"event": "child_exited", "path": "root/parent/kid", "status": "ok", "error": None},
                     {"event": "children_exited"}], "events %r" % events)
    for event in events:
        check(not list(schema_validator("notify-event.json").iter_errors(event)), "event schema %r" % event)


if __name__ == "__main__":
    main([test_shell_one_liners, test_a_sequence_is_several_messages, test_shell_example, test_python_error_with_traceback,
          test_python_cancelled, test_python_outside_arbor, test_long_errors_whole_or_marked,
          test_long_error_lines_on_stderr,
          test_bad_workers_change_nothing_for_others, test_messages_match_the_schemas,
          test_docs_show_the_examples, test_python_module_api])
