import sys,os,glob,statistics as st
d=sys.argv[1]
marks=[]
for f in glob.glob(d+'/*.tl'):
    pid=int(os.path.basename(f)[:-3])
    for line in open(f):
        p=line.split()
        if len(p)==3: marks.append((int(p[0]),pid,p[1],int(p[2])))
marks.sort()
leader=max(set(m[1] for m in marks if m[2]=='put_in'), key=lambda p: sum(1 for m in marks if m[1]==p and m[2]=='put_in'))
L=[m for m in marks if m[1]==leader]
# per put: put_out -> first c_write after; last c_read before next put_in -> put_in
ins=[m[0] for m in L if m[2]=='put_in']
outs=[m[0] for m in L if m[2]=='put_out']
cw=[m[0] for m in L if m[2]=='c_write']
cr=[m[0] for m in L if m[2]=='c_read']
import bisect
a=[];b=[];c=[]
for o in outs[100:-1]:
    i=bisect.bisect_left(cw,o)
    if i<len(cw): a.append((cw[i]-o)/1000)
    j=bisect.bisect_right(ins,o)
    if j<len(ins):
        nxt=ins[j]
        k=bisect.bisect_left(cr,nxt)-1
        if k>=0 and cr[k]>o: b.append((nxt-cr[k])/1000); c.append((cr[k]-cw[i])/1000 if i<len(cw) else 0)
def q(v):
    v=sorted(v); n=len(v)
    return ' '.join(f"{v[int(n*x)]:.0f}" for x in (0.1,0.25,0.5,0.75,0.9,0.99))
print("put_out->c_write  p10 p25 p50 p75 p90 p99:",q(a))
print("c_write->c_read (client+net):           ",q(c))
print("last c_read->put_in:                     ",q(b))
# which events happen on leader between c_read and put_in
from collections import Counter
cnt=Counter(); n=0
for o in outs[100:600]:
    j=bisect.bisect_right(ins,o)
    if j>=len(ins): break
    nxt=ins[j]; k=bisect.bisect_left(cr,nxt)-1
    if k<0: continue
    n+=1
    for m in marks:
        if cr[k]<m[0]<nxt: cnt[(m[1]==leader and 'L' or 'o', m[2])]+=1
print(n, cnt.most_common(12))
cnt=Counter(); n=0
for o in outs[100:1100]:
    i=bisect.bisect_left(cw,o)
    if i>=len(cw): break
    n+=1
    for m in marks:
        if o<m[0]<cw[i]: cnt[(m[1]==leader and 'L' or 'o', m[2])]+=1
print('between put_out and c_write:', n, cnt.most_common(12))
