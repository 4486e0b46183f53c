"""libarbor_worker installed (issue 14): `cmake --install` puts the shared
and static libraries, the header, arbor-worker.pc and the ArborWorker CMake
package in a prefix; examples/c/example_worker.c, built out of tree with
`cc ... $(pkg-config --cflags --libs arbor-worker)` against that prefix,
runs as an exec node and its phases and error reach the report. And the
Python module installs with `pip install ./python`."""

import os
import shutil
import subprocess
import tempfile

from harness import BIN, SRC, by_path, check, main

BUILD = os.path.dirname(os.path.abspath(BIN))
EXAMPLE = os.path.join(SRC, "examples", "c", "example_worker.c")


def sanitizer_flags():
    """The build's own -fsanitize flags: an instrumented library needs them."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            sanitized = "ARBOR_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        sanitized = False
    return ["-fsanitize=address,undefined"] if sanitized else []


def install(prefix):
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, "cmake --install: %s%s" % (r.stdout, r.stderr))
    found = {}
    for d, _, files in os.walk(prefix):
        for name in files:
            found[name] = os.path.join(d, name)
    for name in ("arbor_worker.h", "libarbor_worker.a", "libarbor_worker.so", "arbor-worker.pc",
                 "ArborWorkerConfig.cmake", "ArborWorkerTargets.cmake"):
        check(name in found, "%s not installed (have %s)" % (name, sorted(found)))
    return found


def test_pkg_config_build_runs_in_a_tree(run):
    prefix = os.path.join(run.dir, "prefix")
    found = install(prefix)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(found["arbor-worker.pc"]))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "arbor-worker"], env=env,
                           capture_output=True, text=True, timeout=30)
    check(flags.returncode == 0, "pkg-config: %s" % flags.stderr)
    prog = os.path.join(run.dir, "example-worker")
    r = subprocess.run(["cc", "-o", prog, EXAMPLE] + sanitizer_flags() + flags.stdout.split(),
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "cc: %s" % r.stderr)
    # Nothing of the build tree: the compiler saw only the prefix.
    check(SRC not in flags.stdout and BUILD not in flags.stdout, "flags %r" % flags.stdout)

    run.broker()
    run.supervisor("sup1")
    libdir = os.path.dirname(found["libarbor_worker.so"])
    spec = {"name": "root", "children": [
        {"name": "c", "run": "exec", "argv": [prog, "50", "fail"], "env": {"LD_LIBRARY_PATH": libdir}}]}
    code, report = run.spawn_wait(spec)
    n = by_path(report)["root/c"]
    check(n["status"] == "failed" and n["error"]["type"] == "ExampleFailure" and
          n["error"]["phase"] == "cleanup" and "argv[2]" in n["error"].get("traceback", ""),
          "c: %r" % n)
    phases = [p["phase"] for p in n["phases"]]
    check(phases[:4] == ["spawned", "ready", "running", "cleanup"], "phases %s" % phases)


def test_cmake_package(run):
    """find_package(ArborWorker) from the prefix, static library."""
    if not shutil.which("cmake"):
        return
    prefix = os.path.join(run.dir, "prefix")
    install(prefix)
    src = os.path.join(run.dir, "src")
    os.makedirs(src)
    shutil.copy(EXAMPLE, src)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.18)\nproject(user C)\n"
                "find_package(ArborWorker REQUIRED)\n"
                "add_executable(w example_worker.c)\n"
                "target_link_libraries(w PRIVATE ArborWorker::arbor_worker_static)\n")
    if sanitizer_flags():
        with open(os.path.join(src, "CMakeLists.txt"), "a") as f:
            f.write("target_link_options(w PRIVATE -fsanitize=address,undefined)\n")
    bld = tempfile.mkdtemp(dir=run.dir)
    for argv in (["cmake", "-S", src, "-B", bld, "-DCMAKE_PREFIX_PATH=" + prefix],
                 ["cmake", "--build", bld]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "%s: %s%s" % (" ".join(argv), r.stdout[-2000:], r.stderr[-2000:]))
    r = subprocess.run([os.path.join(bld, "w"), "10"], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != "ARBOR_NOTIFY_FD"})
    check(r.returncode == 0, "outside arbor it runs as is: %d %s" % (r.returncode, r.stderr))


def test_pip_install(run):
    """`pip install ./python` (offline: the system's setuptools), then the
    Python example runs in a tree with nothing but that install."""
    src = os.path.join(run.dir, "python")
    shutil.copytree(os.path.join(SRC, "python"), src)  # pip writes build files next to it
    venv = os.path.join(run.dir, "venv")
    for argv in (["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv],
                 [os.path.join(venv, "bin", "pip"), "install", "-q", "--no-build-isolation",
                  "--no-index", src]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, "%s: %s%s" % (" ".join(argv), r.stdout[-2000:], r.stderr[-2000:]))
    run.broker()
    run.supervisor("sup1")
    example = os.path.join(SRC, "examples", "python", "worker.py")
    spec = {"name": "root", "children": [
        {"name": "py", "run": "exec", "argv": [os.path.join(venv, "bin", "python"), example,
                                              "--rows", "5", "--bad-row", "2"]}]}
    code, report = run.spawn_wait(spec)
    n = by_path(report)["root/py"]
    check(n["status"] == "failed" and n["error"]["type"] == "ValueError" and
          "Traceback" in n["error"].get("traceback", ""), "py: %r" % n)


if __name__ == "__main__":
    main([test_pkg_config_build_runs_in_a_tree, test_cmake_package, test_pip_install])
