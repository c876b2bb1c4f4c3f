# Summarises the snapshot-in-row runs of both builds: in each cluster, how often a row with a
# snapshot was lower than the row before it, and by how much (median).
#   python3 snapshot-in-row-summary.py snapshot-in-row.txt
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    if line.startswith("=="):
        rows = []
        runs.setdefault(line.split()[1], []).append(rows)
        continue
    p = line.split()
    if len(p) >= 6 and p[0] == "row":
        rows.append((float(p[3]), p[5] != "-"))
for build in sorted(runs):
    every = []
    for rows in runs[build]:
        d = [rows[i][0] / rows[i - 1][0] - 1 for i in range(1, len(rows)) if rows[i][1]]
        every += d
        print(f"{build} cluster: lower in {sum(x < 0 for x in d)} of {len(d)}, median {100 * statistics.median(d):+.1f} %")
    print(f"{build} all: lower in {sum(x < 0 for x in every)} of {len(every)}, "
          f"median {100 * statistics.median(every):+.1f} %, mean {100 * statistics.mean(every):+.1f} %")
