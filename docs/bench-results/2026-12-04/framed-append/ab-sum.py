import sys, statistics as st
for f in sys.argv[1:]:
    rows={}
    for l in open(f):
        p=l.split()
        if len(p)<3: continue
        try: v=float(p[2])
        except: continue
        rows.setdefault(p[0],{})[p[1]]=(v,float(p[3].split('=')[1]))
    r=[(v['B'][0]/v['A'][0], v['B'][1]/v['A'][1]) for v in rows.values() if len(v)==2]
    print(f, len(r), 'B faster', sum(x>1 for x,_ in r), 'median', round(st.median([x for x,_ in r]),3), [round(x,2) for x,_ in r], 'p99 B/A', [round(y,2) for _,y in r])
