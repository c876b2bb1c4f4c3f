import os, time, threading, sys
d='/var/tmp/dz'; os.makedirs(d, exist_ok=True)
size=64*1024*1024
step=int(sys.argv[1])*1024*1024; pause=float(sys.argv[2])/1e3
def mk(p):
    fd=os.open(p, os.O_CREAT|os.O_WRONLY|os.O_TRUNC)
    b=os.urandom(1<<20)
    for _ in range(size>>20): os.write(fd,b)
    os.fsync(fd); os.close(fd)
lat=[]; stop=False
def syncer():
    fd=os.open(d+'/w', os.O_CREAT|os.O_WRONLY)
    os.write(fd, b'\0'*(1<<20)); os.fsync(fd)
    b=b'x'*4096; off=0
    while not stop:
        t=time.perf_counter(); os.pwrite(fd,b,off); os.fdatasync(fd); lat.append((t,time.perf_counter()-t)); off=(off+4096)%(1<<20)
for i in range(3):
    mk(d+'/seg'); time.sleep(0.5)
    lat.clear(); stop=False
    th=threading.Thread(target=syncer); th.start(); time.sleep(0.3)
    t0=time.perf_counter()
    fd=os.open(d+'/seg', os.O_WRONLY); steps=[]
    n=size
    while n>0:
        n=max(0,n-step); s=time.perf_counter(); os.ftruncate(fd,n); steps.append(time.perf_counter()-s); time.sleep(pause)
    os.close(fd); os.unlink(d+'/seg')
    t1=time.perf_counter()
    time.sleep(0.5); stop=True; th.join()
    before=sorted(l for (t,l) in lat if t<t0-0.01)
    during=sorted(l for (t,l) in lat if t>=t0-0.01 and t<=t1)
    print(f"total {1e3*(t1-t0):.1f} ms, step max {1e3*max(steps):.2f} ms mean {1e3*sum(steps)/len(steps):.2f}; fsync p50 before {1e6*before[len(before)//2]:.0f} us; during p50 {1e6*during[len(during)//2]:.0f} us max {1e3*during[-1]:.1f} ms; max overall {1e3*max(l for _,l in lat):.1f}")
