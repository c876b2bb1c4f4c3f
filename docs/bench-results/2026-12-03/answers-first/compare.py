import sys,collections,statistics as st
rows=[l.split() for l in open(sys.argv[1]) if l.startswith('round=')]
by=collections.defaultdict(dict)
for r in rows:
    k=int(r[0].split('=')[1]); a=r[1].split('=')[1]; by[k][a]=(float(r[2]),float(r[3]))
base=sys.argv[2] if len(sys.argv)>2 else '0'
arms=sorted({a for d in by.values() for a in d})
for a in arms:
    if a==base: continue
    rat=[by[k][a][0]/by[k][base][0] for k in by if a in by[k] and base in by[k]]
    p99=[by[k][a][1]/by[k][base][1] for k in by if a in by[k] and base in by[k]]
    print(f'{a} vs {base}: faster in {sum(r>1 for r in rat)} of {len(rat)}, median {100*(st.median(rat)-1):+.1f}% (range {100*(min(rat)-1):+.1f}..{100*(max(rat)-1):+.1f}), p99 lower in {sum(p<1 for p in p99)}')
for a in arms: print(a, 'median rps', st.median([by[k][a][0] for k in by if a in by[k]]))
