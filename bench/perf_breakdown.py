#!/usr/bin/python3
"""Summarise `perf script -F comm,pid,tid,ip,sym` output of a call-graph
recording (perf record --call-graph dwarf) the way docs/BENCHMARKS.md quotes it.

  perf_breakdown.py SCRIPT [--comm PREFIX] [--skip-pid PID] --under FUNC [--depth N]
      samples whose stack holds FUNC: what they were doing right below it
  perf_breakdown.py SCRIPT [--comm PREFIX] [--skip-pid PID] --top [--depth N] [--drop F,G]
      all samples: the first N frames from the thread's root (F, G... skipped)
  perf_breakdown.py SCRIPT [--comm PREFIX] [--skip-pid PID] --leaf [--under FUNC]
      self time by leaf function

Percentages are of the samples selected.
"""
import argparse
import collections


def samples(path):
    hdr, stack = None, []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if hdr:
                    yield hdr, stack
                hdr, stack = None, []
            elif not line.startswith("\t"):
                if hdr:
                    yield hdr, stack
                hdr, stack = line.strip(), []
            else:
                parts = line.split()
                if len(parts) >= 2:
                    stack.append(parts[1].split("+")[0])
    if hdr:
        yield hdr, stack


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--comm", default="")
    ap.add_argument("--skip-pid", default="")
    ap.add_argument("--under")
    ap.add_argument("--top", action="store_true")
    ap.add_argument("--leaf", action="store_true")
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--drop", default="")
    ap.add_argument("--rows", type=int, default=15)
    a = ap.parse_args()
    drop = set(x for x in a.drop.split(",") if x) | {"[unknown]"}
    count, total = collections.Counter(), 0
    for hdr, stack in samples(a.script):
        fields = hdr.split()
        comm, pid = " ".join(fields[:-1]), fields[-1].split("/")[0]
        if not comm.startswith(a.comm) or pid == a.skip_pid:
            continue
        frames = [s for s in reversed(stack) if s not in drop]  # root first
        if a.under and a.under not in frames:
            continue
        total += 1
        if a.leaf:
            key = frames[-1] if frames else "?"
        elif a.under:
            i = frames.index(a.under)
            key = " > ".join(frames[i + 1:i + 1 + a.depth]) or "(self)"
        else:
            key = " > ".join(frames[:a.depth]) or "?"
        count[key] += 1
    print("%d samples%s%s" % (total, " of " + a.comm if a.comm else "",
                              " under " + a.under if a.under else ""))
    for key, n in count.most_common(a.rows):
        print("%5.1f%%  %s" % (100.0 * n / max(total, 1), key))


if __name__ == "__main__":
    main()
