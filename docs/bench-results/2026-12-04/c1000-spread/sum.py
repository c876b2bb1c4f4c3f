import json, sys, os, re
def parse(p):
    d = {}
    for line in open(p):
        if line.startswith('#') or not line.strip(): continue
        k, _, v = line.rpartition(' ')
        try: d[k.strip()] = float(v)
        except ValueError: pass
    return d
def stat(p):
    f = open(p).readline().split()[1:]
    f = list(map(int, f)); return sum(f), f[7]
root = sys.argv[1]
print("row  put/s   p99ms  ldr  ldrCPU fol-CPU(ms/s)          bench  µs/put(ldr,fol,bench) puts/entry  fsync/s(ldr;fol)  steal%  snaps")
for r in sorted(os.listdir(root), key=lambda x: int(x) if x.isdigit() else 0):
    d = os.path.join(root, r)
    if not os.path.exists(os.path.join(d, 'bench.time')): continue
    j = json.load(open(os.path.join(d, 'put.json')))
    rps = j.get('requests_per_sec') or j.get('rps') or j['summary']['requests_per_sec'] if 'summary' in j else j.get('requests_per_sec')
    nodes = {}
    for i in range(1, 6):
        b, a = parse(f'{d}/n{i}.before'), parse(f'{d}/n{i}.after')
        nodes[i] = (b, a)
    ldr = [i for i in nodes if nodes[i][1].get('aegis_raft_is_leader') == 1][0]
    dt = 10.0
    cpu = {i: (nodes[i][1]['cpu'] - nodes[i][0]['cpu']) * 10 / dt for i in nodes}  # ms/s
    b, a = nodes[ldr]
    puts = a.get('aegis_client_request_seconds_count{method="kv.put"}', 0) - b.get('aegis_client_request_seconds_count{method="kv.put"}', 0)
    ents = a['aegis_raft_commit_index'] - b['aegis_raft_commit_index']
    fs = {i: (nodes[i][1]['aegis_storage_fsync_seconds_count'] - nodes[i][0]['aegis_storage_fsync_seconds_count']) / dt for i in nodes}
    snaps = sum(nodes[i][1].get('aegis_snapshot_seconds_count{phase="copy"}', 0) - nodes[i][0].get('aegis_snapshot_seconds_count{phase="copy"}', 0) for i in nodes)
    bt = open(f'{d}/bench.time').read().split()
    bench = (float(bt[-2]) + float(bt[-1])) * 1000 / dt
    t0, s0 = stat(f'{d}/stat.before'); t1, s1 = stat(f'{d}/stat.after')
    steal = 100 * (s1 - s0) / max(1, t1 - t0)
    fol = [cpu[i] for i in nodes if i != ldr]
    p99 = round(j['p99_secs']*1000, 1)
    rate = puts / dt
    print(f"{r:>3} {rate:7.0f}  {str(p99):>6} {ldr:>4} {cpu[ldr]:6.0f}  {' '.join(f'{x:4.0f}' for x in fol)}   {bench:5.0f}   {cpu[ldr]*1000/rate:5.1f} {sum(fol)*1000/rate:5.1f} {bench*1000/rate:5.1f}   {puts/max(1,ents):6.2f}   {fs[ldr]:6.0f}; {' '.join(f'{fs[i]:4.0f}' for i in nodes if i != ldr)}  {steal:4.1f}  {snaps:.0f}")
