#!/usr/bin/env python3
"""Where the two quorum members ran after the leader woke them.

usage: perf sched timehist -w -i sched.data | placement.py LEADER_TID MEMBER_TID MEMBER_TID

Pairs each wake-up of both members by the leader's runtime worker (within 50 µs of each
other) with the next time each member started running, and counts the CPUs they ran on.
"""
import bisect
import collections
import re
import sys

leader, members = sys.argv[1], set(sys.argv[2:4])
wakes, starts = [], collections.defaultdict(list)
for line in sys.stdin:
    p = line.split()
    if len(p) < 3 or not re.match(r"^\d+\.\d+$", p[0]):
        continue
    t, cpu = float(p[0]), p[1]
    m = re.search(r"\[(\d+)/\d+\]", p[2])
    tid = m.group(1) if m else None
    if "awakened:" in line:
        w = re.search(r"awakened: \S+\[(\d+)", line)
        if w and tid == leader and w.group(1) in members:
            wakes.append((t, w.group(1), cpu))
        continue
    try:
        run_ms = float(p[5])
    except (IndexError, ValueError):
        continue
    if tid in members:
        starts[tid].append((t - run_ms / 1000, cpu))

counts, delays = collections.Counter(), collections.defaultdict(list)
i = 0
while i < len(wakes) - 1:
    a, b = wakes[i], wakes[i + 1]
    if a[1] == b[1] or b[0] - a[0] >= 50e-6:
        i += 1
        continue
    ran = []
    for w in (a, b):
        s = starts[w[1]]
        k = bisect.bisect_left([x[0] for x in s], w[0] - 2e-6)
        if k < len(s):
            ran.append((s[k][0] - w[0], s[k][1]))
    if len(ran) == 2:
        same = "same CPU" if ran[0][1] == ran[1][1] else "different CPUs"
        leaders = "the leader's" if ran[1][1] == a[2] else "the other"
        key = f"{same}; second woken ran on {leaders} CPU"
        counts[key] += 1
        delays[key].append((ran[0][0] * 1e6, ran[1][0] * 1e6))
    i += 2

total = sum(counts.values())
print(f"{total} pairs of wake-ups")
for key, n in counts.most_common():
    first = sorted(d[0] for d in delays[key])
    second = sorted(d[1] for d in delays[key])
    print(f"{n:5d} ({100 * n / total:.0f} %) {key}: woken to running, median "
          f"{first[len(first) // 2]:.0f} µs (first woken), {second[len(second) // 2]:.0f} µs (second)")
