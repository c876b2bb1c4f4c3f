#!/usr/bin/env python3
"""Who calls memmove in a leader profile: `perf script --no-inline` output on stdin.
Groups each memmove sample by its first caller frame; prints the groups and the top callers."""
import collections
import re
import sys

GROUPS = [
    ("aegis-node's own futures (route, handle_forwarded, stamp_and_write, Api)", r"aegis_node::(raft::(stamp_and_write|Consensus)|api::)"),
    ("tonic's generated service and codec futures", r"aegis_proto::v1::.*_server|tonic::"),
    ("h2 frames and streams", r"^h2::|<h2::"),
    ("http request/response parts", r"^http::|<http::"),
    ("postcard / prost encoding (the data itself)", r"postcard|prost::"),
    ("openraft", r"openraft"),
    ("tokio task spawn and stages", r"tokio::"),
]


def sym(line):
    m = re.match(r"\s*[0-9a-f]+ (.*)\+0x[0-9a-f]+ \(", line)
    return m.group(1) if m else line.strip().split(" ", 1)[-1]


total = hits = 0
groups = collections.Counter()
callers = collections.Counter()
for sample in sys.stdin.read().split("\n\n"):
    frames = [sym(l) for l in sample.strip().split("\n")[1:] if l.strip()]
    if not frames:
        continue
    total += 1
    if "memmove" not in frames[0]:
        continue
    hits += 1
    caller = frames[1] if len(frames) > 1 else "?"
    callers[caller[:110]] += 1
    for name, pattern in GROUPS:
        if re.search(pattern, caller):
            groups[name] += 1
            break
    else:
        groups["other"] += 1
print(f"{total} samples, memmove {hits} ({100 * hits / max(total, 1):.1f} %)")
for name, n in groups.most_common():
    print(f"{n:5d} {100 * n / max(total, 1):5.1f} %  {name}")
print("\ntop callers:")
for c, n in callers.most_common(15):
    print(f"{n:5d}  {c}")
