# Summarises bin-ab.sh's output: each round's A and B rows, B over A, and how often B was faster.
#   python3 bin-ab-summary.py bin-ab.txt
import statistics, sys

rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) > 4]
ratios = []
for k in range(0, len(rows) - 1, 2):
    by = {r[0]: r for r in rows[k:k + 2]}
    a, b = by["A"], by["B"]
    ratios.append(float(b[4]) / float(a[4]))
    print(f"A {float(a[4]):.0f} B {float(b[4]):.0f}  B/A {ratios[-1]:.3f}  A {a[6]} {a[7]}  B {b[6]} {b[7]}")
print(f"B faster in {sum(r > 1 for r in ratios)} of {len(ratios)}, median B/A {statistics.median(ratios):.3f}")
