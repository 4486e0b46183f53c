#!/usr/bin/env python3
"""Nested errors with a Python process at every node (docs/NURSERIES.md).

The reference actor runtime's nested-errors test, rebuilt on arbor: the root
starts BREADTH spawners, each of them BREADTH more, LEVELS deep; the last
level are leaves that raise ValueError. With the defaults (2, 5 levels):
root -> 2 -> 4 -> 8 -> 16 spawners -> 32 leaves, 63 processes. Every level
starts the next through arbor (arbor.nursery(): temporary children, each
one's end collected), so the report names every leaf's ValueError with its
traceback and every spawner's ChildrenFailed, as structured data.

    nested_errors.py --spec | arborctl spawn --wait -   # the whole tree
    nested_errors.py [--levels 5] [--breadth 2] [--level K] [--pass-env NAME]...

--spec       print the tree spec that runs this program as the root, and exit
--level K    this process's level (0: the root; LEVELS: a leaf)
--pass-env N give the children this process's value of environment variable
             N (an exec'd node inherits the supervisor's environment, not its
             parent's); PYTHONPATH is always passed, so they find the same
             arbor module

Outside arbor there is nobody to spawn under: a spawner fails with
arbor.NotUnderArbor (a leaf still raises its ValueError).
"""
import json
import os
import sys

import arbor


def child(a, level):
    """The node of this process's children: BREADTH of them (one spawn)."""
    leaf = level == a.levels
    argv = [sys.executable, os.path.abspath(__file__), "--levels", str(a.levels),
            "--breadth", str(a.breadth), "--level", str(level)]
    env = {"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(arbor.__file__)))}
    for name in a.pass_env:
        argv += ["--pass-env", name]
        if name in os.environ:
            env[name] = os.environ[name]
    return {"name": "leaf" if leaf else "sp", "count": a.breadth, "run": "exec",
            "argv": argv, "env": env}


def parse(cell):
    return int(cell)  # "n/a": ValueError, with this frame in its traceback


class Args:
    """The command line, parsed by hand: a process at every node of the tree
    pays for what it imports (argparse alone is a few ms of CPU each)."""
    levels, breadth, level, spec = 5, 2, 0, False

    def __init__(self, argv):
        self.pass_env = []
        it = iter(argv)
        for arg in it:
            if arg == "--spec":
                self.spec = True
            elif arg == "--pass-env":
                self.pass_env.append(next(it))
            elif arg in ("--levels", "--breadth", "--level"):
                setattr(self, arg[2:], int(next(it)))
            else:
                sys.exit("usage: nested_errors.py [--spec] [--levels N] [--breadth N] "
                         "[--level K] [--pass-env NAME]...")


def main():
    a = Args(sys.argv[1:])
    if a.spec:
        node = child(a, 0)
        del node["count"]
        node["name"] = "root"
        print(json.dumps(node))
        return
    with arbor.worker():
        if a.level == a.levels:
            parse("n/a")  # a leaf: raises ValueError, reported with its traceback
        # A spawner: its children, all ended before the block ends; any
        # failure comes out as arbor.ChildrenFailed (an ExceptionGroup of
        # arbor.ChildError), which arbor.worker() leaves to the supervisor:
        # this node is failed with ChildrenFailed, its children's errors below.
        with arbor.nursery() as n:
            n.start(child(a, a.level + 1))


if __name__ == "__main__":
    main()
