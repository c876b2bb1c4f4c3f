"""Shares of a profile's samples by crate: `perf script -F ip,sym --no-inline` output with call
stacks; each sample counted once, for the first crate from the leaf that is not std, tokio or
bytes (those count for whoever called them)."""
import collections
import re
import sys

samples, cur = [], []
for line in open(sys.argv[1]):
    line = line.rstrip()
    if not line.strip():
        if cur:
            samples.append(cur)
            cur = []
        continue
    parts = line.strip().split(None, 1)
    cur.append(parts[1] if len(parts) > 1 else '?')
if cur:
    samples.append(cur)
PASS = {'core', 'alloc', 'std', 'bytes', 'tokio', 'futures_util', 'futures_core', 'pin_project_lite'}
owner = collections.Counter()
for s in samples:
    for f in s:
        m = re.match(r'<*([a-z_0-9]+)::', f)
        if m and m.group(1) not in PASS:
            owner[m.group(1)] += 1
            break
    else:
        owner['kernel, libc or allocator only'] += 1
print(f"{len(samples)} samples")
for k, v in owner.most_common(25):
    print(f"{100 * v / len(samples):5.1f}% {k}")
