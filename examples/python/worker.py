#!/usr/bin/env python3
"""An arbor worker in Python (docs/WRITING-WORKERS.md).

Sums the numbers of a CSV column, one row at a time, until there are no
rows left or the node is cancelled. Usage:

    worker.py [--rows N] [--bad-row K] [--on-cancel FILE]

--rows N        rows to process (default: endless, until cancelled)
--bad-row K     row K holds "n/a": float() raises ValueError, which arbor
                reports as this node's error, with its traceback
--on-cancel F   write "cancelled" to F when the cancel arrives (a callback)

Needs only the standard library and the arbor module (pip install ./python,
or PYTHONPATH=python). Outside arbor it runs the same; nothing is reported.
"""
import argparse
import time

import arbor


def rows(n, bad):
    i = 0
    while n is None or i < n:
        yield "n/a" if i == bad else str(i)
        i += 1


def parse(cell, i):
    return float(cell)  # "n/a": ValueError, reported with this frame in its traceback


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int)
    ap.add_argument("--bad-row", type=int, default=-1)
    ap.add_argument("--on-cancel")
    a = ap.parse_args()

    # ready and running on entry; cleanup and exiting on the way out; an
    # uncaught exception becomes {"error": {"type", "message", "traceback"}};
    # a cancel raises arbor.Cancelled here and the block ends quietly.
    # A callback is registered before the block starts: a cancel can come
    # as soon as the node reports running.
    n = arbor.notifier()
    if a.on_cancel:
        @n.on_cancel
        def note():
            with open(a.on_cancel, "w") as f:
                f.write("cancelled\n")
    with arbor.worker(notifier_=n):
        total = 0.0
        for i, cell in enumerate(rows(a.rows, a.bad_row)):
            total += parse(cell, i)
            time.sleep(0.01)  # the "work" of one row
        print("total", total)


if __name__ == "__main__":
    main()
