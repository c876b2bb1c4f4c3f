import os, time, threading, sys
d='/var/tmp/dz'
mode='whole'; size=8<<20
lat=[]; stop=False
def syncer():
    fd=os.open(d+'/w', os.O_CREAT|os.O_WRONLY)
    b=b'x'*4096; off=0
    while not stop:
        t=time.perf_counter(); os.pwrite(fd,b,off); os.fdatasync(fd); lat.append((t,time.perf_counter()-t)); off=(off+4096)%(1<<20)
data=os.urandom(size)
for i in range(4):
    lat.clear(); stop=False
    th=threading.Thread(target=syncer); th.start(); time.sleep(0.3)
    t0=time.perf_counter()
    fd=os.open(d+'/snap.tmp', os.O_CREAT|os.O_WRONLY|os.O_TRUNC)
    os.write(fd,data); os.fsync(fd)
    os.close(fd); os.rename(d+'/snap.tmp', d+'/snap')
    t1=time.perf_counter()
    time.sleep(0.3); stop=True; th.join()
    during=sorted(l for (t,l) in lat if t>=t0-0.01 and t<=t1)
    print(f"{mode}: write {1e3*(t1-t0):.1f} ms; probe during: n {len(during)} p50 {1e6*during[len(during)//2]:.0f} us max {1e3*during[-1]:.1f} ms")
