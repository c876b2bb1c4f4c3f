import re,collections,sys
samples=[];cur=None
for line in open(sys.argv[1]):
    s=line.rstrip()
    if not s.strip():
        if cur: samples.append(cur); cur=None
        continue
    if cur is None:
        cur=[s.split()[0]]; rest=s.split()[1:]
        if len(rest)>=2: cur.append(rest[1])
        continue
    parts=s.strip().split(None,1)
    cur.append(parts[1] if len(parts)>1 else '?')
if cur: samples.append(cur)
n=len(samples)
pids=collections.Counter(s[0] for s in samples)
print("samples per node:", dict(pids))
def has(s,p): return any(p in f for f in s)
for p in ['StateMachine::apply','KvStore::put','KeyHistory::put','decode','aegis_wal','Worker<C,SM,LR>::apply']:
    k=sum(1 for s in samples if has(s[1:],p))
    print(f"{p:30s} {100*k/n:5.1f}% of all node samples")
k=sum(1 for s in samples if ('memcmp' in s[1] and has(s[2:4],'KvStore::put')) or 'KvStore::put' in s[1] or 'search_tree' in s[1])
print('btree search approx %.1f%%' % (100*k/n))
print("per node: apply share, KvStore::put share, samples")
for pid,c in pids.most_common():
    ss=[s for s in samples if s[0]==pid]
    a=sum(1 for s in ss if has(s[1:],'StateMachine::apply'))
    k=sum(1 for s in ss if has(s[1:],'KvStore::put'))
    h=sum(1 for s in ss if has(s[1:],'KeyHistory::put'))
    print(f"  {pid}: {c} samples, apply {100*a/c:.1f}%, KvStore::put {100*k/c:.1f}%, KeyHistory::put {100*h/c:.1f}%")
