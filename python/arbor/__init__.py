"""arbor: a worker's side of its notify fd, standard library only.

arbor starts every worker with a SOCK_SEQPACKET socket to its supervisor and
puts its number in ARBOR_NOTIFY_FD. One JSON object per datagram goes each
way (docs/PROTOCOL.md):

    worker -> supervisor   {"phase": P}, {"error": {"type", "message", "traceback"}}
    supervisor -> worker   {"event": "cancel"}, {"event": "children_exited"}, ...

Outside arbor (no ARBOR_NOTIFY_FD) every call is a no-op, so the same program
runs anywhere.

    import arbor

    with arbor.worker() as w:        # reports ready and running
        while not w.cancelled:       # a flag; also w.on_cancel(callback), w.fileno()
            work()
    # cleanup and exiting are reported; an uncaught exception is reported as
    # {"error": {"type": "ValueError", "message": ..., "traceback": ...}}

Cancel reaches the worker as the supervisor's message or as SIGTERM (arbor's
cancel for an exec'd program that has not talked yet); both count. Inside
arbor.worker() a cancel raises arbor.Cancelled in the main thread (like
KeyboardInterrupt for ^C) unless interrupt=False, and the with-block ends
quietly after cleanup: the node ends "cancelled".
"""

import collections
import json
import os
import select
import signal
import socket
import sys
import threading
import time

__all__ = ["Notifier", "Cancelled", "worker", "run", "notifier", "ENV", "MSG_MAX", "PHASES",
           "spawn", "cancel", "child_exits", "on_child_exit", "nursery", "ChildExit",
           "ChildError", "ChildrenFailed", "ExceptionGroup", "SpawnError", "SpawnRefused",
           "NotUnderArbor", "SpawnRequest"]

ENV = "ARBOR_NOTIFY_FD"
MSG_MAX = 65536          # bytes of one message, either way
SEND_TIMEOUT_S = 1.0     # a report never blocks the worker longer
PHASES = ("ready", "running", "cancel_requested", "cancelling_children",
          "children_exited", "cleanup", "exiting")
_MARK = "\u2026[truncated %d bytes]"


class Cancelled(BaseException):
    """Raised in the main thread by arbor.worker() when the node is cancelled
    (a BaseException, like KeyboardInterrupt: `except Exception` does not
    swallow it)."""


def _now_ms():
    return int(time.monotonic() * 1000)  # CLOCK_MONOTONIC, as the supervisor's


def _json_len(s):
    return len(json.dumps(s, ensure_ascii=False).encode("utf-8")) - 2


def _cut(s, budget, keep_end):
    """s, or as much of it as fits in budget JSON bytes with a marker (the
    start kept, or the end with keep_end); cut between characters."""
    if _json_len(s) <= budget:
        return s
    lo, hi = 0, len(s)
    while lo < hi:  # the most characters that fit with the marker
        mid = (lo + hi + 1) // 2
        part = s[len(s) - mid:] if keep_end else s[:mid]
        dropped = len(s.encode("utf-8", "surrogatepass")) - len(part.encode("utf-8", "surrogatepass"))
        if _json_len(part) + _json_len(_MARK % dropped) <= budget:
            lo = mid
        else:
            hi = mid - 1
    part = s[len(s) - lo:] if keep_end else s[:lo]
    dropped = len(s.encode("utf-8", "surrogatepass")) - len(part.encode("utf-8", "surrogatepass"))
    return _MARK % dropped + part if keep_end else part + _MARK % dropped


def _no_nul(s):
    # The supervisor refuses a message with "\u0000" in a string (its JSON
    # parser would cut the string there): a NUL in an error is sent as U+FFFD.
    return s.replace("\0", "\ufffd")


def _error_message(etype, message, tb):
    """{"error": {...}, "t_mono_ms"} in at most MSG_MAX bytes: the traceback
    gives way first (keeping its end, where the error is), then the message
    (keeping its start). Never dropped."""
    etype = _cut(_no_nul(str(etype)) or "Error", 1024, False)
    message = "" if message is None else _no_nul(str(message))
    room = MSG_MAX - 96 - _json_len(etype)
    if tb is not None:
        tb = _no_nul(str(tb))
        if _json_len(message) + _json_len(tb) > room:
            tb_room = max(room - _json_len(message), min(_json_len(tb), room // 4))
            tb = _cut(tb, tb_room, True)
            room -= _json_len(tb)
    message = _cut(message, room, False)
    err = {"type": etype, "message": message}
    if tb is not None:
        err["traceback"] = tb
    return {"error": err, "t_mono_ms": _now_ms()}


def _fd_from_env():
    v = os.environ.get(ENV, "")
    try:
        return int(v) if v.strip() else None
    except ValueError:
        return None


class Notifier:
    """The notify fd of this worker. Notifier() reads ARBOR_NOTIFY_FD; with
    none (or an fd that is not a notify socket: a variable inherited by a
    program the worker started) it is disabled and every call is a no-op."""

    def __init__(self, fd=None):
        self._sock = None
        self._lock = threading.Lock()
        self._callbacks = []
        self._cancel = threading.Event()
        self._children_exited = threading.Event()
        self._phase = None
        self._watcher = None
        self.gone = False  # the supervisor closed its end
        # Dynamic children (spawn, child_exited, cancel): answers and events
        # interleave on the one socket, so whoever reads it files each
        # message here and wakes the waiters (_dispatch).
        self._rlock = threading.RLock()         # one reader at a time (a callback may spawn)
        self._cond = threading.Condition(threading.Lock())
        self._next_id = 1
        self._answers = {}                      # request id -> its answer
        self._abandoned = set()                 # ids whose spawn() gave up waiting
        self._exits = collections.OrderedDict()  # path -> ChildExit, unclaimed
        self._exit_callbacks = []
        self.refused_cancels = []               # [(path, error dict)] for cancel(path)
        fd = _fd_from_env() if fd is None else fd
        if fd is None:
            return
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            return
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_SEQPACKET:
            sock.detach()  # not ours: leave that fd alone
            return
        sock.set_inheritable(False)  # the worker's own children do not get it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                        _timeval(SEND_TIMEOUT_S))
        self._sock = sock

    # ---- state -------------------------------------------------------------

    @property
    def enabled(self):
        """True when running under arbor with a usable notify fd."""
        return self._sock is not None

    @property
    def cancelled(self):
        """The node was asked to stop (a cancel message or SIGTERM)."""
        return self._cancel.is_set()

    def wait_cancelled(self, timeout=None):
        """Block until cancelled (True) or timeout seconds pass (False)."""
        return self._cancel.wait(timeout)

    @property
    def children_exited(self):
        return self._children_exited.is_set()

    def fileno(self):
        """The notify fd, for select()/selectors/asyncio (loop.add_reader(
        n.fileno(), n.poll)); None outside arbor. Do not read it yourself:
        call poll() when it is readable."""
        return self._sock.fileno() if self._sock else None

    def on_cancel(self, callback):
        """Call callback() once when a cancel arrives (from poll(), the
        watcher thread, or the SIGTERM handler). Returns callback, so it
        works as a decorator."""
        self._callbacks.append(callback)
        if self.cancelled:
            callback()
        return callback

    # ---- reports -----------------------------------------------------------

    def _send(self, obj):
        if not self._sock:
            return False
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8",
                                                                                 "surrogatepass")
        try:
            with self._lock:
                self._sock.send(data)
            return True
        except OSError:
            return False  # the supervisor is gone or stopped reading: our exit status says the rest

    def phase(self, name):
        """Report a phase (one of PHASES). True when sent."""
        if name not in PHASES:
            raise ValueError("not a worker phase: %r (one of %s)" % (name, ", ".join(PHASES)))
        self._phase = name
        return self._send({"phase": name, "t_mono_ms": _now_ms()})

    def error(self, type, message="", traceback=None):
        """Report this node's error: the supervisor marks it failed. Longer
        than 64 KiB: cut with a marker, never lost. True when sent."""
        return self._send(_error_message(type, message, traceback))

    def error_from(self, exc):
        """Report an exception: its class name, str() and formatted traceback."""
        import traceback  # here: a worker that never fails does not pay for it at start
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return self.error(type(exc).__name__, str(exc), tb)

    # ---- events ------------------------------------------------------------

    def _note_cancel(self):
        if self._cancel.is_set():
            return
        self._cancel.set()
        for cb in list(self._callbacks):
            cb()

    def poll(self, timeout=0):
        """Read what the supervisor sent, waiting up to timeout seconds
        (None: until something arrives). Returns "cancel",
        "children_exited", "child_exited" (one child ended: see
        child_exits()), "gone" or None; answers to spawn requests are filed
        for their spawn() and unknown messages skipped."""
        if not self._sock:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            kind = self._read_one()
            if kind in ("cancel", "children_exited", "child_exited", "gone"):
                return kind
            if kind is not None:
                continue  # an answer, or a message this version skips
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                select.select([self._sock], [], [], left)
            except (OSError, ValueError):
                return self._note_gone()

    def _read_one(self):
        """Read and dispatch one message without waiting: its kind, "skip"
        for one this version does not know, "gone", or None (nothing)."""
        sock = self._sock
        if sock is None:
            return "gone" if self.gone else None
        with self._rlock:
            try:
                data = sock.recv(MSG_MAX + 1, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError:
                data = b""
            if data == b"":
                return self._note_gone()
            return self._dispatch(data)

    def _note_gone(self):
        with self._cond:
            self.gone = True
            self._cond.notify_all()
        return "gone"

    def _dispatch(self, data):
        try:
            msg = json.loads(data)
        except ValueError:
            return "skip"
        if not isinstance(msg, dict):
            return "skip"
        event = msg.get("event")
        if isinstance(msg.get("re"), int) and event is None:
            with self._cond:
                if msg["re"] in self._abandoned:
                    self._abandoned.discard(msg["re"])  # too late: nobody waits for it
                else:
                    self._answers[msg["re"]] = msg
                    self._cond.notify_all()
            return "answer"
        if event == "cancel":
            self._note_cancel()
            with self._cond:
                self._cond.notify_all()
            return event
        if event == "children_exited":
            self._children_exited.set()
            return event
        if event == "child_exited" and isinstance(msg.get("path"), str):
            ce = ChildExit(msg["path"], msg.get("status"), msg.get("error"))
            with self._cond:
                self._exits.pop(ce.path, None)  # a restarted child: its latest end
                self._exits[ce.path] = ce
                self._cond.notify_all()
            for cb in list(self._exit_callbacks):
                try:
                    cb(ce)
                except Exception:  # the reader (maybe the watcher thread) must go on
                    import traceback
                    traceback.print_exc()
            return event
        if "cancel" in msg and isinstance(msg.get("error"), dict):
            self.refused_cancels.append((msg["cancel"], msg["error"]))
            return "cancel_refused"
        return "skip"

    # ---- dynamic children ----------------------------------------------------

    def _need_supervisor(self, what):
        if not self._sock:
            raise NotUnderArbor(
                "arbor.%s: not running under arbor (%s is %s): there is no supervisor to "
                "start a child under" % (what, ENV, "not set" if _fd_from_env() is None
                                         else "not a notify socket"))
        if self.gone:
            raise SpawnError("arbor.%s: the supervisor closed the notify fd" % what)

    def request_spawn(self, node):
        """Send {"spawn": node, "id": N} without waiting: returns a
        SpawnRequest whose wait(timeout) gives the child's path. Keep at most
        a few hundred unanswered (the supervisor drops an answer it cannot
        send at once); spawn_each() keeps a window for you."""
        self._need_supervisor("spawn")
        if not isinstance(node, dict):
            raise TypeError("a child is a tree-spec node (a dict), not %s" % type(node).__name__)
        with self._cond:
            rid = self._next_id
            self._next_id += 1
        if not self._send({"spawn": node, "id": rid}):
            raise SpawnError("arbor.spawn: could not send the request (the supervisor is gone "
                             "or not reading)")
        return SpawnRequest(self, rid, node)

    def spawn(self, node, timeout=None):
        """Start node (a tree-spec dict) as a child of this worker; returns
        its path ("root/a/b"; the first one for a node with "count"). Raises
        SpawnRefused (bad node, over the limits, this node stopping), SpawnError
        (no answer within timeout seconds, default SPAWN_TIMEOUT_S; the
        supervisor gone) or, outside arbor, NotUnderArbor."""
        return self.request_spawn(node).wait(timeout)

    def spawn_each(self, nodes, timeout=None, window=64):
        """Start every node of an iterable, keeping up to window requests in
        flight; returns the paths in order (a node with "count" gives its
        first). Raises like spawn() at the first refusal; the children
        started before it keep running."""
        pending, paths = collections.deque(), []
        for node in nodes:
            if len(pending) >= window:
                paths.append(pending.popleft().wait(timeout))
            pending.append(self.request_spawn(node))
        while pending:
            paths.append(pending.popleft().wait(timeout))
        return paths

    def _wait(self, ready, deadline):
        """ready() under the lock until it gives something (returned) or the
        deadline passes (None), reading the socket meanwhile unless the
        watcher thread does."""
        while True:
            with self._cond:
                got = ready()
                if got is not None:
                    return got
                if self.gone or not self._sock:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                watcher = self._watcher
                if watcher is not None and watcher.is_alive() and \
                        threading.current_thread() is not watcher:
                    # The watcher reads and notifies; re-check now and then
                    # that it still runs.
                    self._cond.wait(1.0 if left is None else min(left, 1.0))
                    continue
            # Read it ourselves; a bounded slice, in case a watcher starts
            # meanwhile and takes the message we wait for.
            if self._read_one() is None:
                try:
                    select.select([self._sock], [], [], 0.25 if left is None else min(left, 0.25))
                except (OSError, ValueError, TypeError):
                    self._note_gone()

    def cancel(self, path):
        """Ask the supervisor to cancel one of this worker's descendants (its
        own grace, then SIGTERM, ...); its end comes as a child_exited. A
        refusal (not a node below this one) lands in refused_cancels. True
        when sent; outside arbor, False."""
        if not isinstance(path, str) or not path:
            raise ValueError("cancel: a node path like \"root/a/b\", not %r" % (path,))
        return self._send({"cancel": path})

    def on_child_exit(self, callback):
        """Call callback(ChildExit) for every child's end, from whichever
        thread reads the fd (it does not claim the end). Returns callback."""
        self._exit_callbacks.append(callback)
        return callback

    def next_child_exit(self, timeout=None, paths=None):
        """The next unclaimed child end (a ChildExit), claiming it; only
        among paths when given. None when timeout seconds pass first, the
        supervisor is gone, or outside arbor."""
        if not self._sock and not self._exits:
            return None
        want = None if paths is None else set(paths)

        def take():
            for p in self._exits:
                if want is None or p in want:
                    return self._exits.pop(p)
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        return self._wait(take, deadline)

    def child_exits(self, timeout=None):
        """Iterate over child ends as they come (claiming them), until
        timeout seconds pass without one (None: until the supervisor goes)."""
        while True:
            ce = self.next_child_exit(timeout)
            if ce is None:
                return
            yield ce

    def watch(self):
        """Read events in a daemon thread from now on (so the cancelled flag
        and the callbacks work without calling poll()). Idempotent."""
        if not self._sock or self._watcher:
            return
        def loop():
            while self.poll(None) != "gone":
                pass
        self._watcher = threading.Thread(target=loop, name="arbor-notify", daemon=True)
        self._watcher.start()

    def close(self):
        if self._sock:
            self._sock.close()
            self._sock = None


SPAWN_TIMEOUT_S = 10.0   # a spawn's answer comes at once from a live supervisor
FAILED_STATUSES = ("failed", "spawn_failed", "lost")  # a child's end that is a failure


class SpawnError(RuntimeError):
    """A spawn did not happen: no answer in time, or the supervisor is gone."""


class NotUnderArbor(SpawnError):
    """spawn() outside arbor (no ARBOR_NOTIFY_FD): nobody to spawn under."""


class SpawnRefused(SpawnError):
    """The supervisor refused the spawn (an invalid node, over the limits,
    a name taken, this node stopping). .error is its {"type", "message"}."""

    def __init__(self, message, error=None):
        super().__init__(message)
        self.error = error or {}


class SpawnRequest:
    """A spawn request sent, its answer not yet read: wait(timeout) returns
    the child's path, .paths all of them (a node with "count")."""

    def __init__(self, notifier_, rid, node):
        self.n, self.id, self.node = notifier_, rid, node
        self.paths = None

    def wait(self, timeout=None):
        if self.paths is not None:
            return self.paths[0]
        timeout = SPAWN_TIMEOUT_S if timeout is None else timeout
        n = self.n
        msg = n._wait(lambda: n._answers.pop(self.id, None), time.monotonic() + timeout)
        name = self.node.get("name") if isinstance(self.node, dict) else None
        if msg is None:
            with n._cond:
                if n._answers.pop(self.id, None) is None:
                    n._abandoned.add(self.id)  # an answer that comes later is dropped
            raise SpawnError("arbor.spawn %r: %s" % (
                name, "the supervisor closed the notify fd" if n.gone else
                "no answer within %g s" % timeout))
        if "error" in msg or not isinstance(msg.get("path"), str):
            err = msg.get("error") if isinstance(msg.get("error"), dict) else {}
            raise SpawnRefused("arbor.spawn %r refused: %s" % (
                name, err.get("message") or "no reason given"), err)
        paths = msg.get("paths")
        self.paths = paths if isinstance(paths, list) and paths else [msg["path"]]
        return msg["path"]


class ChildExit:
    """One child's end: {"event": "child_exited", "path", "status", "error"}.
    .failed for failed, spawn_failed and lost."""

    __slots__ = ("path", "status", "error")

    def __init__(self, path, status, error):
        self.path, self.status = path, status
        self.error = error if isinstance(error, dict) else None

    @property
    def failed(self):
        return self.status in FAILED_STATUSES

    def __repr__(self):
        return "ChildExit(%r, %r, %r)" % (self.path, self.status, self.error)


class ChildError(Exception):
    """A child's failure as structured data: .path, .status, .type,
    .message, .traceback (None when it sent none), .phase and .error (the
    whole error object of the report: ChildrenFailed's failed_children, a
    stderr tail, ...)."""

    def __init__(self, path, status, error=None):
        error = error if isinstance(error, dict) else {}
        self.path, self.status, self.error = path, status, error
        self.type = str(error.get("type") or {"spawn_failed": "SpawnFailed",
                                              "lost": "Lost"}.get(status, "Failed"))
        self.message = str(error.get("message", ""))
        self.traceback = error.get("traceback")
        self.phase = error.get("phase")
        super().__init__("%s: %s: %s" % (path, self.type, self.message))

    def as_dict(self):
        return {"path": self.path, "status": self.status, "type": self.type,
                "message": self.message, "traceback": self.traceback, "phase": self.phase}


try:
    _BaseGroup = ExceptionGroup  # Python 3.11+
except NameError:
    class ExceptionGroup(Exception):
        """What Python 3.11's ExceptionGroup gives, for older Pythons: a
        message and a tuple of exceptions (no except*)."""

        def __init__(self, message, exceptions):
            super().__init__(message, tuple(exceptions))
            self.message, self.exceptions = message, tuple(exceptions)

        def derive(self, excs):
            return type(self)(self.message, excs)

        def __str__(self):
            n = len(self.exceptions)
            return "%s (%d sub-exception%s)" % (self.message, n, "" if n == 1 else "s")
    _BaseGroup = ExceptionGroup
ExceptionGroup = _BaseGroup  # arbor.ExceptionGroup: the builtin, or the stand-in above


class ChildrenFailed(_BaseGroup):
    """A nursery's children failed: an ExceptionGroup (3.11+; the module's
    own class before) of ChildError, one per failed child, plus the body's
    own exception when the with-block raised. .errors: the ChildErrors."""

    def __new__(cls, message, exceptions):
        return super().__new__(cls, message, exceptions)

    def __init__(self, message, exceptions):
        super().__init__(message, exceptions)

    @property
    def errors(self):
        return [e for e in self.exceptions if isinstance(e, ChildError)]

    def derive(self, excs):
        return ChildrenFailed(self.message, excs)


class nursery:
    """Start children, wait for every one of them, raise ChildrenFailed if
    any failed (the reference runtime's nursery, OTP's temporary children):

        with arbor.worker():
            with arbor.nursery() as n:
                for url in urls:
                    n.start({"name": "fetch-%d" % i, "run": "exec", "argv": [...]})
        # here every child has ended; their failures were raised as a group

    A child without "restart" is started "temporary": its failure stops no
    sibling, the nursery collects it. cancel_on_error=True cancels the
    others at the first failure (a trio nursery). An exception in the block
    cancels the children that still run, waits for them (up to
    cancel_timeout s) and is raised in the group. arbor.Cancelled (this
    node cancelled) leaves at once: the supervisor stops the children.
    timeout (s, None: no limit) bounds the wait; past it the children still
    running are cancelled and reported as ChildError(type "Timeout").
    .results: path -> ChildExit of every child that ended."""

    def __init__(self, timeout=None, cancel_on_error=False, cancel_timeout=30.0,
                 notifier_=None, window=64):
        self.n = notifier_ or notifier()
        self.timeout, self.cancel_on_error = timeout, cancel_on_error
        self.cancel_timeout, self.window = cancel_timeout, window
        self.running = []   # paths started, not ended, in order
        self.results = {}   # path -> ChildExit
        self._pending = collections.deque()

    def __enter__(self):
        return self

    def start(self, node):
        """Start a child (a tree-spec dict); returns its path. A node with
        "count" starts them all (the first path is returned)."""
        self.start_soon(node)
        req = self._pending.pop()
        self._settle(req)
        return req.paths[0]

    def start_soon(self, node):
        """Send the spawn without waiting for its answer (pipelined: up to
        window in flight); every answer is checked before the wait."""
        if isinstance(node, dict) and "restart" not in node:
            node = dict(node, restart="temporary")
        while len(self._pending) >= self.window:
            self._settle(self._pending.popleft())
        self._pending.append(self.n.request_spawn(node))

    def _settle(self, req):
        req.wait()
        self.running.extend(req.paths)

    def cancel(self, path=None):
        """Cancel one child of this nursery, or all that still run."""
        for p in ([path] if path else list(self.running)):
            self.n.cancel(p)

    def _collect(self, deadline):
        while self.running:
            ce = self.n.next_child_exit(None if deadline is None else
                                        max(0.0, deadline - time.monotonic()), self.running)
            if ce is None:
                return False
            self.running.remove(ce.path)
            self.results[ce.path] = ce
            if ce.failed and self.cancel_on_error:
                self.cancel()
        return True

    def __exit__(self, etype, exc, tb):
        if etype is not None and issubclass(etype, Cancelled):
            return False  # this node is stopping: the supervisor stops its children
        errors = []
        try:
            while self._pending:
                self._settle(self._pending.popleft())
        except SpawnError as e:
            errors.append(e)
        body = exc if etype is not None else None
        if body is not None or errors:
            self.cancel()
        deadline = None
        if body is not None or errors:
            deadline = time.monotonic() + self.cancel_timeout
        elif self.timeout is not None:
            deadline = time.monotonic() + self.timeout
        if not self._collect(deadline) and not self.n.gone:
            left = list(self.running)
            self.cancel()
            self._collect(time.monotonic() + self.cancel_timeout)
            for p in left:
                if p not in self.results:
                    errors.append(ChildError(p, "running", {
                        "type": "Timeout", "message": "still running after the nursery's "
                        "deadline; cancelled"}))
        if self.running:
            for p in self.running:
                errors.append(ChildError(p, "unknown", {
                    "type": "Unknown", "message": "its end never reached this worker "
                    "(the supervisor went away): see the tree's report"}))
        errors += [ChildError(ce.path, ce.status, ce.error)
                   for ce in self.results.values() if ce.failed]
        if not errors or (body is not None and not isinstance(body, Exception)):
            return False  # no child failed (the block's own exception, if any, goes on as it
            # is); KeyboardInterrupt, SystemExit: not for a group
        excs = ([body] if body is not None else []) + errors
        nfail = sum(1 for e in errors if isinstance(e, ChildError))
        msg = "%d of %d children failed" % (nfail, len(self.results) + len(self.running)) \
            if body is None else "the nursery's block raised %s" % type(body).__name__
        raise ChildrenFailed(msg, excs) from None


def _timeval(seconds):
    import struct
    return struct.pack("ll", int(seconds), int((seconds % 1) * 1e6))


_default = None


def notifier():
    """The process's Notifier (made on first use, from ARBOR_NOTIFY_FD)."""
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def spawn(node, timeout=None):
    """notifier().spawn(node): start a child under this worker; its path."""
    return notifier().spawn(node, timeout)


def cancel(path):
    """notifier().cancel(path): cancel one of this worker's descendants."""
    return notifier().cancel(path)


def child_exits(timeout=None):
    """notifier().child_exits(timeout): this worker's children's ends."""
    return notifier().child_exits(timeout)


def on_child_exit(callback):
    """notifier().on_child_exit(callback)."""
    return notifier().on_child_exit(callback)


class worker:
    """Context manager: reports ready and running on entry; cleanup and
    exiting on exit. An uncaught exception is reported as the node's error
    (then re-raised: the program still fails). A cancel (the supervisor's
    message, or SIGTERM) sets .cancelled, runs the on_cancel callbacks and,
    with interrupt=True (the default), raises Cancelled in the main thread;
    the block then ends quietly after cleanup.

        with arbor.worker() as w: ...
    """

    def __init__(self, interrupt=True, notifier_=None):
        self.n = notifier_ or notifier()
        self.interrupt = interrupt
        self._old_term = None
        self._raised = False  # cancel_requested reported (and Cancelled raised)

    def __getattr__(self, name):  # w.cancelled, w.on_cancel, w.fileno, w.phase ...
        return getattr(self.n, name)

    def _on_term(self, signum, frame):
        self._cancel()

    def _cancel(self):
        self.n._note_cancel()
        if not self._raised:
            self._raised = True
            self.n.phase("cancel_requested")
            if self.interrupt:
                raise Cancelled()

    def __enter__(self):
        self.n.phase("ready")
        self.n.phase("running")
        main = threading.current_thread() is threading.main_thread()
        if main and self.interrupt:
            # A cancel message read by the watcher thread reaches the main
            # thread as SIGTERM would: through the handler below.
            self.n.on_cancel(self._interrupt_main)
        self.n.watch()
        # Last: a SIGTERM before this ends the process as it would have
        # without arbor (the node is cancelled); one after it lands in the
        # with-block as Cancelled.
        if main and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            self._old_term = signal.signal(signal.SIGTERM, self._on_term)
        return self

    def _interrupt_main(self):
        if threading.current_thread() is not threading.main_thread() and self._old_term is not None:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

    def __exit__(self, etype, exc, tb):
        if self._old_term is not None:
            # While the last reports go out, a SIGTERM only notes the cancel.
            signal.signal(signal.SIGTERM, lambda signum, frame: self.n._note_cancel())
        try:
            return self._finish(etype, exc)
        finally:
            if self._old_term is not None:
                signal.signal(signal.SIGTERM, self._old_term)
                self._old_term = None

    def _finish(self, etype, exc):
        try:
            self.n._callbacks.remove(self._interrupt_main)
        except ValueError:
            pass
        cancelled = etype is not None and issubclass(etype, Cancelled)
        failed = etype is not None and not cancelled and not (
            issubclass(etype, SystemExit) and exc.code in (None, 0))
        if failed and not issubclass(etype, SystemExit) and not _only_children(exc):
            self.n.error_from(exc)
        if self.n.cancelled and not self._raised:
            self.n.phase("cancel_requested")
        self.n.phase("cleanup")
        self.n.phase("exiting")
        return cancelled  # a cancel ends the block quietly; anything else propagates


def _only_children(exc):
    """A nursery's group of its children's failures only: the supervisor
    already fails this node with ChildrenFailed, the children's errors under
    it; reporting the group as this node's own error would hide that."""
    return isinstance(exc, ChildrenFailed) and all(
        isinstance(e, ChildError) for e in exc.exceptions)


def run(func=None, interrupt=True):
    """Decorator: run func inside arbor.worker(); an uncaught exception is
    reported and re-raised.

        @arbor.run
        def main(): ...
    """
    def wrap(f):
        def inner(*args, **kwargs):
            with worker(interrupt=interrupt):
                return f(*args, **kwargs)
        inner.__name__ = getattr(f, "__name__", "main")
        inner.__doc__ = getattr(f, "__doc__", None)
        return inner
    return wrap(func) if func is not None else wrap
