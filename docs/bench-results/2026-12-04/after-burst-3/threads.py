# per-thread CPU (ms) over consecutive windows for all aegis-node processes: python3 threads.py DIR SECONDS WINDOW
import glob, os, sys, time
d, secs, win = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
hz = os.sysconf("SC_CLK_TCK")
def snap():
    out = {}
    for f in glob.glob(f"{d}/node-*/pid"):
        pid = open(f).read().strip(); node = f.split("/")[-2]
        for t in glob.glob(f"/proc/{pid}/task/*"):
            try:
                st = open(t + "/stat").read()
                name = st[st.index("(")+1:st.rindex(")")]
                fl = st.rsplit(")", 1)[1].split()
                out[(node, t.split("/")[-1], name)] = int(fl[11]) + int(fl[12])
            except (FileNotFoundError, ProcessLookupError): pass
    return out
prev = snap(); t = 0
while t < secs:
    time.sleep(win); t += win
    cur = snap(); agg = {}
    for k, v in cur.items():
        dv = v - prev.get(k, 0)
        key = (k[0], k[2])
        agg[key] = agg.get(key, 0) + dv
    prev = cur
    top = sorted(agg.items(), key=lambda x: -x[1])[:8]
    print(f"t={t:4.0f}s " + "  ".join(f"{n}/{name}:{v*1000//hz}" for (n, name), v in top if v > 0), flush=True)
