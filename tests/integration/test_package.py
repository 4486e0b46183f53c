"""The Debian package (packaging/arbor.cmake), as a new user meets it: built
with `cpack -G DEB` from this build, installed with `apt-get install
./arbor_*.deb` (dependencies resolved from Debian), then used — the
installed units' ExecStart lines run as user arbor (test_units.py does it
as systemd would, with a NOTIFY_SOCKET), a tree spawned with the installed
arborctl, --version, man pages, completion — and purged. Whatever it
changed on the machine is undone, even on failure. Needs root and apt (and
a build that is not sanitized): otherwise it prints SKIP and passes."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

import harness
from harness import BIN, SRC, check, main
import test_units
import units

BUILD = os.path.dirname(os.path.abspath(BIN))
PROGRAMS = ("arborctl", "arbor-broker", "arbor-supervisor", "arbor-forkserver")
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120"]
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def cache(key):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split("=", 1)[1].strip()
    return None


def skip_reason():
    if os.geteuid() != 0:
        return "not root (apt-get install needs it)"
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        return "no apt-get/dpkg on this machine"
    if not shutil.which("cpack"):
        return "no cpack"
    if (cache("ARBOR_SANITIZE") or "").upper() in ("ON", "TRUE", "1"):
        return "sanitized build: the package is built and tested from the release build"
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "arbor"], capture_output=True,
                       text=True)
    if "ok installed" in r.stdout:
        return "a package named arbor is installed on this machine: not touching it"
    return None


def installed_files(stage):
    """What `cmake --install` installs, as absolute paths under /usr."""
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", stage], capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, "cmake --install: %s" % r.stderr)
    files = set()
    for root, _, names in os.walk(stage):
        for n in names:
            files.add("/usr/" + os.path.relpath(os.path.join(root, n), stage))
    return files


def deb_files(deb):
    r = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True)
    files = set()
    for line in r.stdout.splitlines():
        if line.startswith("d"):
            continue
        words = line.split()
        if line.startswith("l") and "->" in words:  # a symlink: "PATH -> TARGET"
            words = words[:words.index("->")]
        files.add(words[-1].lstrip("."))
    return files


_t = [None]


def step(name):
    """Print how long the previous step took (the test's cost, in its log)."""
    now = time.monotonic()
    if _t[0]:
        print("  %-32s %5.1fs" % (_t[0][0], now - _t[0][1]), flush=True)
    _t[0] = (name, now) if name else None


def user_exists(name):
    return subprocess.run(["getent", "passwd", name], capture_output=True).returncode == 0


def test_package(run):
    step("cpack -G DEB")
    out = os.path.join(run.dir, "pkg")
    r = subprocess.run(["cpack", "-G", "DEB", "-B", out], cwd=BUILD, capture_output=True,
                       text=True, timeout=300)
    check(r.returncode == 0, "cpack: %s%s" % (r.stdout, r.stderr))
    debs = glob.glob(os.path.join(out, "arbor_*.deb"))
    check(len(debs) == 1, "cpack made %r" % debs)
    deb = debs[0]
    # The package holds whatever `cmake --install` installs (programs, man
    # pages, completion, units, and libarbor_worker's files where its own
    # rules install them).
    step("package contents")
    inside = deb_files(deb)
    missing = sorted(installed_files(os.path.join(run.dir, "stage")) - inside)
    check(not missing, "installed by cmake --install but not in the package: %s" % missing)
    for f in ("/usr/bin/arborctl", "/usr/bin/arbor-forkserver", "/usr/share/man/man1/arborctl.1.gz",
              "/usr/share/man/man5/arbor-tree-spec.5.gz",
              "/usr/share/bash-completion/completions/arborctl",
              "/usr/lib/systemd/system/arbor-supervisor@.service"):
        check(f in inside, "%s is not in the package" % f)
    if os.path.isdir(os.path.join(SRC, "python", "arbor")):
        check(any(f.startswith("/usr/lib/python3/dist-packages/arbor/") for f in inside),
              "python/arbor is not in the package")
    control = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True,
                             text=True).stdout
    for dep in ("libzmq5", "libczmq4", "libcjson1"):
        check(dep in control, "Depends lacks %s: %s" % (dep, control))

    step("apt-get install")
    had_user = user_exists("arbor")
    installed = False
    try:
        r = subprocess.run(APT + ["install", "./" + os.path.basename(deb)], cwd=out,
                           capture_output=True, text=True, env=APT_ENV, timeout=300)
        installed = True
        check(r.returncode == 0, "apt-get install: %s%s" % (r.stdout[-2000:], r.stderr[-2000:]))
        step("--version, man, completion, verify")
        check(user_exists("arbor"), "postinst did not create user arbor")
        version = cache("CMAKE_PROJECT_VERSION")
        for prog in PROGRAMS:
            r = subprocess.run(["/usr/bin/" + prog, "--version"], capture_output=True, text=True,
                               timeout=10)
            check(r.returncode == 0 and r.stdout.startswith("%s %s" % (prog, version)),
                  "installed %s --version: %d %r" % (prog, r.returncode, r.stdout))
        if shutil.which("man"):
            for page in ("arborctl", "arbor-broker", "arbor-supervisor", "arbor-tree-spec",
                         "arbor-worker"):
                r = subprocess.run(["man", "-w", page], capture_output=True, text=True)
                check(r.returncode == 0, "man -w %s: %s" % (page, r.stderr))
        r = subprocess.run(["bash", "-c", "source /usr/share/bash-completion/completions/arborctl"
                            " && complete -p arborctl"], capture_output=True, text=True)
        check("_arborctl" in r.stdout, "completion: %r %r" % (r.stdout, r.stderr))
        if shutil.which("systemd-analyze"):
            unit_dir = "/usr/lib/systemd/system"
            r = subprocess.run(["systemd-analyze", "verify", unit_dir + "/arbor-broker.service",
                                unit_dir + "/arbor-supervisor@sup1.service"],
                               capture_output=True, text=True, timeout=60)
            check(r.returncode == 0, "systemd-analyze verify: %s%s" % (r.stdout, r.stderr))

        step("units: ExecStart, READY=1, a tree")
        # The installed units' ExecStart lines, as user arbor.
        broker, sup, env, creds, cleanup = test_units.run_units(
            run, "/usr/bin", stand_in=None, unit_dir="/usr/lib/systemd/system")
        try:
            check(creds is not None and creds[2] == "arbor", "not run as arbor: %r" % (creds,))
            spec = {"name": "root", "children": [{"name": "s", "run": "sleep", "ms": 20,
                                                  "count": 2}]}
            r = test_units.ctl(env, creds, "spawn", "--wait", "--json", "-",
                               input=json.dumps(spec), bin_dir="/usr/bin")
            check(r.returncode == 0, "installed arborctl spawn --wait: %d %s%s" %
                  (r.returncode, r.stdout, r.stderr))
            report = json.loads(r.stdout)
            harness.validate_report(report)
            check(report["status"] == "ok" and report["supervisor"] == "sup1", report["status"])
        finally:
            run.kill_all()
            cleanup()
    finally:
        step("apt-get purge")
        if installed:
            r = subprocess.run(APT + ["purge", "arbor"], capture_output=True, text=True,
                               env=APT_ENV, timeout=300)
            if r.returncode != 0:
                print("apt-get purge arbor failed: %s" % r.stderr)
        if not had_user and user_exists("arbor"):
            subprocess.run(["userdel", "arbor"], capture_output=True)
            subprocess.run(["groupdel", "arbor"], capture_output=True)
    step(None)
    check(not os.path.exists("/usr/bin/arborctl"), "arborctl still there after apt-get purge")
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "arbor"], capture_output=True,
                       text=True)
    check("installed" not in r.stdout.replace("not-installed", ""), "still installed: %r" % r.stdout)


if __name__ == "__main__":
    why = skip_reason()
    if why:
        print("SKIP test_package: %s" % why)
        sys.exit(0)
    main([test_package])
