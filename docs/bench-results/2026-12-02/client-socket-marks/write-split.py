# Distribution of put_out -> c_wstart and c_wstart -> c_write on the leader (one-client marks dir).
import sys, os, glob, bisect
marks = []
for f in glob.glob(sys.argv[1] + '/*.tl'):
    pid = int(os.path.basename(f)[:-3])
    for line in open(f):
        p = line.split()
        if len(p) == 3:
            marks.append((int(p[0]), pid, p[1]))
marks.sort()
leader = max({m[1] for m in marks if m[2] == 'put_in'},
             key=lambda p: sum(1 for m in marks if m[1] == p and m[2] == 'put_in'))
ev = lambda e: [m[0] for m in marks if m[1] == leader and m[2] == e]
outs, ws, we = ev('put_out'), ev('c_wstart'), ev('c_write')
a, b = [], []
for o in outs[100:-1]:
    i = bisect.bisect_left(ws, o)
    j = bisect.bisect_left(we, o)
    if i < len(ws) and j < len(we):
        a.append((ws[i] - o) / 1000)
        b.append((we[j] - ws[i]) / 1000)
def q(v):
    v = sorted(v)
    return ' '.join(f"{v[int(len(v) * x)]:.0f}" for x in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99))
print("put_out -> c_wstart   p10 p25 p50 p75 p90 p99:", q(a))
print("c_wstart -> c_write (the write call):        ", q(b))
