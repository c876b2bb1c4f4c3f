#!/usr/bin/env python3
"""Of the samples whose stack passes through openraft's core loop, the share under each
function (inclusive), from `perf script -F comm,tid,ip,sym --no-inline` output on stdin."""
import collections
import re
import sys

samples, cur = [], []
for line in sys.stdin:
    if not line.startswith(("\t", " ")):
        if cur:
            samples.append(cur)
        cur = []
        continue
    parts = line.strip().split(" ", 1)
    if len(parts) == 2:
        cur.append(parts[1])
if cur:
    samples.append(cur)
core = [s for s in samples if any("RaftCore" in f and "runtime_loop" in f for f in s)]
print(f"samples {len(samples)}, in the core loop {len(core)} ({100 * len(core) / max(1, len(samples)):.1f} %)")
inclusive = collections.Counter()
for s in core:
    seen = set()
    for f in s:
        f = re.sub(r"<.*?>", "<>", f)[:110]
        if f not in seen:
            seen.add(f)
            inclusive[f] += 1
for f, n in inclusive.most_common(int(sys.argv[1]) if len(sys.argv) > 1 else 60):
    print(f"{100 * n / len(core):5.1f}  {f}")
