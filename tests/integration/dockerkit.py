"""What the Docker tests share (test_compose.py, test_swarm.py): running a
command with a deadline, telling whether a Docker engine answers, building
the images with docker/build.sh, and their entry point (SKIP where there is
no engine, FAIL when the images do not build)."""

import os
import shutil
import subprocess
import sys
import time

import harness
from harness import BIN, SRC, TestFailure

BUILD_SH = os.path.join(SRC, "docker", "build.sh")


def sh(argv, input=None, timeout=60, env=None):
    """Run a command to completion (text); never raises on its exit code."""
    try:
        return subprocess.run(argv, input=input, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise TestFailure("%s: no answer within %ss (%s)" % (" ".join(argv), timeout,
                                                            (e.stderr or b"")[-500:]))


def engine_unavailable():
    """None when the docker CLI is there and a Docker engine answers, else why."""
    if not shutil.which("docker"):
        return "the docker CLI is not installed"
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 20 s"
    if r.returncode != 0 or not r.stdout.strip():
        why = (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
        return "no Docker engine answers (docker info: %s)" % why
    return None


def build_images(tag, timeout):
    """docker/build.sh under tag, with the test helpers (arbor-test-escaper
    in the supervisor image); the binaries are built only if missing.
    build.sh takes a lock on the build dir, so two tests building at the
    same time take turns."""
    argv = [BUILD_SH, "--tag", tag, "--test-helpers", "--build-dir",
            os.path.dirname(os.path.abspath(BIN))]
    if all(os.access(os.path.join(BIN, b), os.X_OK)
           for b in ("arbor-broker", "arbor-supervisor", "arbor-forkserver", "arborctl",
                     "arbor-example-worker", "arbor-test-escaper")):
        argv.append("--no-build")
    t0 = time.monotonic()
    r = sh(argv, timeout=timeout)
    if r.returncode != 0:
        raise TestFailure("docker/build.sh failed (exit %d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
    print(r.stdout.rstrip())
    print("images built in %.1fs" % (time.monotonic() - t0), flush=True)


def main(name, tests, unavailable, tag, build_timeout):
    """SKIP (exit 0) when unavailable() says why; else build the images and
    run the tests."""
    why = unavailable()
    if why:
        print("SKIP %s: %s" % (name, why))
        print("0 passed, 0 failed, %d skipped" % len(tests))
        sys.exit(0)
    try:
        build_images(tag, build_timeout)
    except TestFailure as e:
        print("FAIL building the images: %s" % e)
        print("0 passed, 1 failed")
        sys.exit(1)
    harness.main(tests)
