import sys,glob,collections,statistics as st,bisect
d=sys.argv[1]
T={k:int(open(f'{d}/t_{k}').read()) for k in ['pre','burst','post','end']}
ev={}
for f in glob.glob(d+'/marks/*.tl'):
    pid=f.split('/')[-1][:-3]; L=[]
    for line in open(f):
        p=line.split()
        if len(p)==3 and not p[1].startswith('task:'): L.append((int(p[0]),p[1],int(p[2])))
    L.sort(); ev[pid]=L
leader=max(ev,key=lambda p: sum(1 for e in ev[p] if e[1]=='put_in'))
puts=[e[0] for e in ev[leader] if e[1]=='put_in']
names=['send','o_write','fsync_start','fsync_end','o_read','reply','hold','apply','put_out','c_write','c_read']
mnames=['p_read','f_recv','append','fsync_start','fsync_end','f_reply','p_write']
def window(a,b):
    P=[t for t in puts if a<t<b][100:-10]
    res=collections.defaultdict(list)
    for i in range(len(P)-1):
        x,y=P[i],P[i+1]
        for pid,L in ev.items():
            lo=bisect.bisect_left(L,(x,'',0)); hi=bisect.bisect_left(L,(y,'',0))
            seen={}
            for t,n,_ in L[lo:hi]:
                if n not in seen: seen[n]=t-x
            tag='L' if pid==leader else 'M'
            for n,v in seen.items():
                if tag=='L' and n in names: res['L:'+n].append(v/1000)
                if tag=='M' and n in mnames: res[f'{pid}:'+n].append(v/1000)
        res['cycle'].append((y-x)/1000)
    return res
pre=window(T['pre'],T['burst']); post=window(T['post'],T['end'])
keys=sorted(set(pre)|set(post), key=lambda k: st.median(pre.get(k,[1e9])))
for k in keys:
    a=pre.get(k); b=post.get(k)
    if not a or not b or len(a)<len(pre['cycle'])*0.5: continue
    print('%-22s pre %7.1f  post %7.1f  (n %d/%d)'%(k,st.median(a),st.median(b),len(a),len(b)))
