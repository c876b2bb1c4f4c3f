"""Every stored pair whose rows recorded the host's steal time, split into quiet pairs (both
rows under 2 % of a vCPU stolen) and the rest: does steal explain the spread of the ratios?

Run from the repository root: python3 docs/bench-results/2026-12-03/steal-and-spread/steal_and_spread.py
"""
import glob
import os
import statistics

QUIET = 2.0  # percent of a vCPU, in both rows


def pairs():
    for md in sorted(glob.glob("docs/bench-results/*/*/pairs.md")):
        with open(os.path.join(os.path.dirname(md), "machine.txt")) as f:
            host = "AMD" if "AMD" in f.read() else "Intel"
        for line in open(md):
            f = [x.strip() for x in line.split("|")]
            if len(f) < 11 or not f[1].startswith("0"):
                continue  # header, or a table without the steal column
            ratios = [float(x) for x in f[5].split(",")]
            steal = []
            for x in f[9].split(","):
                b, c = (y.strip() for y in x.split("/"))
                steal.append(None if "?" in (b, c) else (float(b), float(c)))
            for r, s in zip(ratios, steal):
                if s is not None:
                    yield f[1], os.path.basename(os.path.dirname(md)), host, r, s


def summary(v):
    if not v:
        return "none"
    v = sorted(v)
    met = sum(1 for x in v if x >= 2)
    return f"{len(v):3d} pairs, median {statistics.median(v):.2f}x, {v[0]:.2f}-{v[-1]:.2f}x, >= 2x in {met}"


all_pairs = list(pairs())
for row in ("01-put-c1", "02-put-c64", "03-put-c1000"):
    r = [p for p in all_pairs if p[0] == row]
    quiet = [p[3] for p in r if max(p[4]) < QUIET]
    noisy = [p[3] for p in r if max(p[4]) >= QUIET]
    print(row)
    print("  all  ", summary([p[3] for p in r]))
    print("  quiet", summary(quiet))
    print("  steal", summary(noisy))
print()
print("01-put-c1, every pair with steal (etcd / aegis, % of a vCPU), lowest ratio first:")
for p in sorted((p for p in all_pairs if p[0] == "01-put-c1"), key=lambda p: p[3]):
    print(f"  {p[3]:.2f}  {p[4][0]:5.1f} / {p[4][1]:5.1f}  {p[2]:5s} {p[1]}")
