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

import json
import os
import signal
import socket
import sys
import threading
import time
import traceback as _traceback

__all__ = ["Notifier", "Cancelled", "worker", "run", "notifier", "ENV", "MSG_MAX", "PHASES"]

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


def _error_message(etype, message, tb):
    """{"error": {...}, "t_mono_ms"} in at most MSG_MAX bytes: the traceback
    gives way first (keeping its end, where the error is), then the message
    (keeping its start). Never dropped."""
    etype = _cut(str(etype) or "Error", 1024, False)
    message = "" if message is None else str(message)
    room = MSG_MAX - 96 - _json_len(etype)
    if tb is not None:
        tb = str(tb)
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
        tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
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
        "children_exited", "gone" or None; unknown messages are skipped."""
        if not self._sock:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        import select
        while True:
            try:
                data = self._sock.recv(MSG_MAX + 1, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self.gone = True
                return "gone"
            if data is not None:
                try:
                    event = json.loads(data).get("event")
                except (ValueError, AttributeError):
                    continue  # not for this version: skipped
                if event == "cancel":
                    self._note_cancel()
                    return event
                if event == "children_exited":
                    self._children_exited.set()
                    return event
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            select.select([self._sock], [], [], left)

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
        if failed and not issubclass(etype, SystemExit):
            self.n.error_from(exc)
        if self.n.cancelled and not self._raised:
            self.n.phase("cancel_requested")
        self.n.phase("cleanup")
        self.n.phase("exiting")
        return cancelled  # a cancel ends the block quietly; anything else propagates


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
