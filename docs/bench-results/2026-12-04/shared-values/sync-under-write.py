# A small append + fdatasync loop (the WAL's pattern) timed while another process writes N MB
# to a fresh file and fsyncs it (a snapshot's pattern), against the same loop alone.
import os, sys, time, subprocess, statistics
d = sys.argv[1]; mb = int(sys.argv[2]); rounds = int(sys.argv[3])
os.makedirs(d, exist_ok=True)
def loop(seconds):
    f = os.open(os.path.join(d, "wal"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    buf = b"x" * 300; lat = []; end = time.time() + seconds
    while time.time() < end:
        t = time.perf_counter(); os.write(f, buf); os.fdatasync(f); lat.append(time.perf_counter() - t)
    os.close(f); return lat
def q(l, p): l = sorted(l); return l[min(len(l) - 1, int(p * len(l)))] * 1e6
for r in range(rounds):
    alone = loop(0.6)
    w = subprocess.Popen(["bash", "-c", f"sleep 0.1; dd if=/dev/urandom of={d}/snap bs=1M count={mb} conv=fsync status=none; rm -f {d}/snap"])
    t0 = time.time(); under = loop(0.6); w.wait()
    print(f"round {r}: alone n={len(alone)} p50={q(alone,.5):.0f} p99={q(alone,.99):.0f} max={max(alone)*1e6:.0f} us | "
          f"with {mb} MB write+fsync n={len(under)} p50={q(under,.5):.0f} p99={q(under,.99):.0f} max={max(under)*1e6:.0f} us")
