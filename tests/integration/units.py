"""systemd units without systemd: parse arbor's unit files and run their
ExecStart lines the way systemd would (User/Group, UMask, Environment, the
instance name, a RuntimeDirectory) with a NOTIFY_SOCKET of our own, so that
tests can check what a unit declares against what the program does (CI has
no systemd as PID 1)."""

import grp
import os
import pwd
import re
import shlex
import socket
import subprocess
import time

from harness import SLOW, TestFailure


def parse(path):
    """{section: [(key, value)...]} of a unit file (comments and blank lines
    skipped; continuation lines joined)."""
    sections, cur = {}, None
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = sections.setdefault(line[1:-1], [])
            continue
        key, _, value = line.partition("=")
        cur.append((key.strip(), value.strip()))
    return sections


def get(unit, key, section="Service"):
    """The last value of key (systemd: the last assignment wins), or None."""
    values = [v for k, v in unit.get(section, []) if k == key]
    return values[-1] if values else None


def get_all(unit, key, section="Service"):
    return [v for k, v in unit.get(section, []) if k == key]


def seconds(text):
    """A systemd time span ("30s", "1min 30s", "500ms", "10") in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)\s*([a-z]*)", text):
        total += float(num) * units.get(unit or "s", 1)
    return total


def environment(unit, base):
    """base plus the unit's Environment= assignments."""
    env = dict(base)
    for value in get_all(unit, "Environment"):
        for item in shlex.split(value):
            k, _, v = item.partition("=")
            env[k] = v
    return env


def exec_argv(unit, instance, env, paths):
    """ExecStart as systemd expands it: %i / %I the instance, $VAR and
    ${VAR} from env ($VAR alone: split on whitespace, dropped when unset);
    then every prefix in paths (a dict) replaced (e.g. /usr/bin -> a build
    tree, /run/arbor -> a temp dir)."""
    line = get(unit, "ExecStart")
    if line is None:
        raise TestFailure("unit has no ExecStart")
    line = line.lstrip("-@:+!")
    argv = []
    for word in shlex.split(line):
        word = word.replace("%i", instance).replace("%I", instance).replace("%%", "%")
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv += env.get(m.group(1), "").split()
            continue
        word = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word)
        argv.append(word)
    out = []
    for word in argv:
        for old, new in paths.items():
            word = word.replace(old, new)
        out.append(word)
    return out


class Notify:
    """A NOTIFY_SOCKET: a datagram socket that collects sd_notify messages."""

    def __init__(self, path, uid=None):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        os.chmod(path, 0o666 if uid is not None else 0o600)
        self.messages = []

    def wait(self, what, deadline_s):
        """Wait until a message holding the line `what` arrives and return
        that message. TestFailure on the deadline."""
        deadline = time.monotonic() + deadline_s * SLOW
        while True:
            for m in self.messages:
                if what in m.split("\n"):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("no %r on NOTIFY_SOCKET within %ss (got %r)" %
                                  (what, deadline_s, self.messages))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append(data.decode(errors="replace"))

    def close(self):
        self.sock.close()


def credentials(unit, stand_in=None):
    """(uid, gid, name) of the unit's User=/Group=, or of the user stand_in
    when given (e.g. "nobody" for a build tree, before the package has
    created the unit's user); None when not root (nothing to drop) or the
    user does not exist."""
    if os.geteuid() != 0:
        return None
    for name in ((stand_in,) if stand_in else (get(unit, "User"),)):
        if not name:
            continue
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        group = get(unit, "Group") if name == get(unit, "User") else None
        gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
        return pw.pw_uid, gid, name
    return None


def preexec(creds, umask, no_new_privs=False):
    """For subprocess: drop to creds (as systemd's User=/Group=, with the
    user's supplementary groups), set the unit's UMask, and NoNewPrivileges
    (prctl PR_SET_NO_NEW_PRIVS, inherited by every worker)."""
    def fn():
        if no_new_privs:
            import ctypes
            PR_SET_NO_NEW_PRIVS = 38
            if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if creds:
            uid, gid, name = creds
            os.setgid(gid)
            os.initgroups(name, gid)
            os.setuid(uid)
        if umask is not None:
            os.umask(umask)
    return fn


def start(run, name, argv, env, creds, umask, cwd=None, no_new_privs=False):
    """Start argv like Run.start (log file, tracked and cleaned up by the
    harness), as the unit's user."""
    log = open(os.path.join(run.dir, name + ".log"), "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         env=env, close_fds=True, cwd=cwd,
                         preexec_fn=preexec(creds, umask, no_new_privs))
    p.log_path = log.name
    p.arbor_name = name
    log.close()
    run.procs.append(p)
    return p


def subst_env(env, paths):
    """env with every prefix in paths replaced in its values."""
    out = {}
    for k, v in env.items():
        for old, new in paths.items():
            v = v.replace(old, new)
        out[k] = v
    return out
