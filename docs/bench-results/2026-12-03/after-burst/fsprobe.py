import os,time,statistics as st,sys
path='/tmp/aegis-bench/fsprobe.dat'
fd=os.open(path,os.O_RDWR|os.O_CREAT,0o644)
os.pwrite(fd,b'\0'*(4<<20),0); os.fsync(fd)
n=int(sys.argv[1]) if len(sys.argv)>1 else 1500
lat=[]; off=0; buf=b'x'*350
for i in range(n):
    t=time.perf_counter_ns(); os.pwrite(fd,buf,off); os.fdatasync(fd); lat.append((time.perf_counter_ns()-t)/1000)
    off=(off+350)%(4<<20)
    time.sleep(0.0005)
lat.sort(); print('fsync p50 %.0f p90 %.0f p99 %.0f'%(lat[n//2],lat[n*9//10],lat[n*99//100]))
