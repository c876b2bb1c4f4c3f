import os, time, sys
# fsync prober: logs every write+fdatasync slower than 8 ms, and disk queue stats around it
out=open(sys.argv[1],'w'); dur=float(sys.argv[2])
fd=os.open('/var/tmp/dz/probe', os.O_CREAT|os.O_WRONLY)
os.write(fd, b'\0'*(1<<20)); os.fsync(fd)
b=b'y'*4096; off=0; end=time.time()+dur; n=0
while time.time()<end:
    t=time.time(); s=time.perf_counter(); os.pwrite(fd,b,off); os.fdatasync(fd); l=time.perf_counter()-s
    n+=1
    if l>0.008: out.write(f"{t:.3f} fsync {l*1e3:.1f} ms\n"); out.flush()
    off=(off+4096)%(1<<20); time.sleep(0.002)
out.write(f"done {n}\n")
