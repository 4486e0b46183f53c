#!/usr/bin/env python3
"""The floor of bench/run.sh's nursery part: the shape of
examples/python/nested_errors.py (root -> 2 -> 4 -> 8 -> 16 Python
spawners -> 32 Python leaves that raise ValueError: 63 processes) with
nothing but the standard library. Each spawner starts its children with
plain subprocess.Popen (stderr to a pipe, read: the errors come back as
text), waits for them all, and exits 1 when any failed; a leaf raises
ValueError. No supervision, no structured errors, no cleanup guarantees.

    nursery_floor.py [--levels 5] [--breadth 2]   # prints the failed leaves' count
"""
import subprocess
import sys


def parse(cell):
    return int(cell)


class Args:
    levels, breadth, level = 5, 2, 0  # parsed by hand, as the arbor example does

    def __init__(self, argv):
        it = iter(argv)
        for arg in it:
            setattr(self, arg[2:], int(next(it)))


def main():
    a = Args(sys.argv[1:])
    if a.level == a.levels:
        parse("n/a")  # the leaf: ValueError, its traceback on stderr
    argv = [sys.executable, __file__, "--levels", str(a.levels), "--breadth", str(a.breadth),
            "--level", str(a.level + 1)]
    kids = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(a.breadth)]
    failed, errs = 0, b""
    for k in kids:
        err = k.communicate()[1]
        if k.returncode != 0:
            failed += 1
            errs += err
    if a.level == 0:
        print(errs.count(b"ValueError: invalid literal"))  # the leaves' errors that came back
    else:
        sys.stderr.buffer.write(errs)  # the children's errors, as text, up the tree
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
