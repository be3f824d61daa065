#!/usr/bin/env python3
"""Summarises `perf sched timehist --state` output for one broker process: where its threads' time off the CPU
went while they were busy serving requests.

Each timehist row ends a stretch of running: `wait time` is how long the thread was off the CPU before it ran
(of which `sch delay` was spent runnable, waiting for a CPU), and `state` with the stack says why it left the
CPU at the end of the row. So the reason for the off-CPU stretch before row i is row i-1's state and stack:
  - S (sleeping: epoll, futex, condvar): idle, waiting for work; not a cost to requests.
  - R / R+ (preempted): the whole wait is CPU contention.
  - D (uninterruptible): blocked in the kernel, e.g. on page-cache writeback or an fsync; the stack says where.
Usage: offcpu_summary.py TIMEHIST_FILE [THREAD_PREFIX ...]  (prefixes: the request-path thread names)
"""
import collections
import re
import sys

ROW = re.compile(
    r"^\s*(?P<time>\d+\.\d+)\s+\[\d+\]\s+(?P<comm>.+?)\[(?P<tid>\d+)/\d+\]\s+"
    r"(?P<wait>\d+\.\d+)\s+(?P<delay>\d+\.\d+)\s+(?P<run>\d+\.\d+)\s+(?P<state>\S+)\s*(?P<stack>.*)$"
)


def pct(values, q):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def main():
    path = sys.argv[1]
    prefixes = sys.argv[2:] or [""]
    last = {}  # tid -> (state, stack)
    cpu_wait = collections.defaultdict(list)  # thread kind -> runnable waits (ms)
    blocked = collections.defaultdict(list)  # thread kind -> D-state waits (ms)
    blocked_by_stack = collections.Counter()
    blocked_max_by_stack = collections.defaultdict(float)
    run_ms = collections.Counter()
    for line in open(path, errors="replace"):
        m = ROW.match(line)
        if not m:
            continue
        comm = m["comm"].strip()
        kind = next((p for p in prefixes if comm.startswith(p)), None)
        tid = m["tid"]
        prev = last.get(tid)
        last[tid] = (m["state"], m["stack"].strip())
        if kind is None:
            continue
        kind = kind or comm
        run_ms[kind] += float(m["run"])
        wait, delay = float(m["wait"]), float(m["delay"])
        cpu_wait[kind].append(delay)
        if prev and prev[0].startswith("D"):
            blocked_ms = max(0.0, wait - delay)
            blocked[kind].append(blocked_ms)
            stack = " <- ".join(prev[1].split(" <- ")[:6])
            blocked_by_stack[(kind, stack)] += blocked_ms
            blocked_max_by_stack[(kind, stack)] = max(blocked_max_by_stack[(kind, stack)], blocked_ms)
    print("| threads | run ms | CPU waits | CPU wait p99 / max ms | CPU waits > 10 ms | blocked (D) waits | blocked total / max ms |")
    print("|---|---|---|---|---|---|---|")
    for kind in sorted(run_ms):
        cw, bl = cpu_wait[kind], blocked[kind]
        print(
            f"| {kind} | {run_ms[kind]:.0f} | {len(cw)} | {pct(cw, 0.99):.2f} / {max(cw, default=0):.2f} "
            f"| {sum(1 for w in cw if w > 10)} | {len(bl)} | {sum(bl):.1f} / {max(bl, default=0):.2f} |"
        )
    if blocked_by_stack:
        print()
        print("| threads | blocked in (kernel stack at the switch) | total ms | max ms |")
        print("|---|---|---|---|")
        for (kind, stack), total in blocked_by_stack.most_common(8):
            print(f"| {kind} | `{stack}` | {total:.1f} | {blocked_max_by_stack[(kind, stack)]:.2f} |")


if __name__ == "__main__":
    main()
