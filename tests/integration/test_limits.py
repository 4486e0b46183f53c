"""Limits that stop a fork bomb or memory exhaustion: trees and processes
per supervisor, the spawn rate, and rlimits applied to workers from the
spec. A spec over a limit is refused and nothing is spawned."""

import json
import os

import harness
from harness import by_path, check, main, marked_pids, root_flag


def test_rlimits_reach_the_worker(run):
    run.broker()
    run.supervisor("sup1")
    spec = {"name": "root", "children": [
        {"name": "capped", "run": "exec", "rlimits": {"nofile": 16, "core": 0},
         "argv": ["sh", "-c", 'test "$(ulimit -n)" = 16 && test "$(ulimit -c)" = 0 || '
                              '{ echo "nofile=$(ulimit -n) core=$(ulimit -c)" >&2; exit 9; }']}]}
    code, report = run.spawn_wait(spec)
    capped = by_path(report)["root/capped"]
    check(capped["status"] == "ok", "limits not applied: %r" % capped["error"])
    r = run.ctl("spawn", "-", input=json.dumps(
        {"name": "root", "children": [{"name": "x", "rlimits": {"nofiles": 3}}]}))
    check(r.returncode == 2 and "unknown limit" in r.stderr, "bad rlimits: %d %s" % (r.returncode, r.stderr))


def test_max_trees_and_processes(run):
    run.broker()
    sup = run.supervisor("sup1", "--max-trees", "1", "--max-processes", "5")
    before = set(marked_pids(run.marker))
    r = run.ctl("spawn", "-", input=json.dumps({"name": "big", "children": [{"name": "s", "run": "sleep", "count": 9}]}))
    check(r.returncode == 2 and "--max-processes" in r.stderr, "big tree: %d %s" % (r.returncode, r.stderr))
    check(set(marked_pids(run.marker)) == before, "a refused tree spawned processes")
    r = run.ctl("spawn", "-", input=json.dumps({"name": "one", "children": [{"name": "s", "run": "sleep"}]}))
    check(r.returncode == 0, "first tree: %s" % r.stderr)
    tree = r.stdout.strip()
    r = run.ctl("spawn", "-", input=json.dumps({"name": "two"}))
    check(r.returncode == 2 and "--max-trees" in r.stderr, "second tree: %d %s" % (r.returncode, r.stderr))
    r = run.ctl("cancel", tree, "--wait", "--json")
    check(r.returncode == 4, "cancel: %d %s" % (r.returncode, r.stderr))
    code, report = run.spawn_wait({"name": "three", "run": "exit"})  # the slot is free again
    check(code == 0, "after the first ended: %d" % code)
    check(sup.poll() is None, "supervisor died")


def test_spawn_rate(run):
    run.broker()
    run.supervisor("sup1", "--spawn-rate", "20")
    spec = {"name": "root", "children": [{"name": "s", "run": "exit", "count": 29}]}
    code, report = run.spawn_wait(spec, timeout=60)
    check(code == 0, "exit %d" % code)
    spawned = sorted(p["t_ms"] for n in by_path(report).values() for p in n["phases"] if p["phase"] == "spawned")
    # 30 forks at 20/s with a burst of 2: the last cannot come before 1.4 s.
    check(spawned[-1] - spawned[0] >= 1300, "30 forks within %d ms at --spawn-rate 20" % (spawned[-1] - spawned[0]))


def test_max_processes_fits_the_fd_limit(run):
    """Each worker holds four fds in the supervisor: under a small
    RLIMIT_NOFILE, --max-processes is lowered (loudly) so that a big tree is
    refused instead of breaking the fork-server channel."""
    run.broker()
    sup = run.start("sup1", ["prlimit", "--nofile=512:512", os.path.join(harness.BIN, "arbor-supervisor"),
                             "--broker", run.broker_ep, "--name", "sup1"] + root_flag("arbor-supervisor"))
    run.wait_log(sup, "registered with broker")
    check("at most 64 workers at once" in run.log_of(sup), "no warning:\n" + run.log_of(sup)[-2000:])
    r = run.ctl("spawn", "-", input=json.dumps({"name": "big", "children": [{"name": "s", "run": "sleep", "count": 99}]}))
    check(r.returncode == 2 and "--max-processes" in r.stderr, "big tree: %d %s" % (r.returncode, r.stderr))
    code, report = run.spawn_wait({"name": "fits", "children": [{"name": "s", "run": "exit", "count": 60}]})
    check(code == 0, "a tree that fits: exit %d" % code)
    check(sup.poll() is None, "supervisor died")


if __name__ == "__main__":
    main([test_rlimits_reach_the_worker, test_max_trees_and_processes, test_spawn_rate,
          test_max_processes_fits_the_fd_limit])
