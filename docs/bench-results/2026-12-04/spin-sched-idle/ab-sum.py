import sys, statistics
rows=[l.split() for l in open(sys.argv[1]) if l.strip()]
by={}
for r in rows: by.setdefault(r[0],{})[r[1]]=r
rat=[]
for k,v in by.items():
    if 'A' in v and 'B' in v:
        rat.append(float(v['B'][2])/float(v['A'][2]))
print(f"B faster in {sum(x>1 for x in rat)} of {len(rat)}, median B/A {statistics.median(rat):.3f}, ratios {' '.join(f'{x:.3f}' for x in rat)}")
