#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
static int fd; static atomic_int req=0, done=0, stop=0;
static void* helper(void*a){ while(!atomic_load(&stop)){ if(atomic_load(&req)){ fdatasync(fd); atomic_store(&req,0); atomic_store(&done,1);} else sched_yield(); } return 0;}
static void* helper_block(void*a){ return 0;}
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int mode=atoi(argv[1]); int n=atoi(argv[2]);
  fd=open("/var/tmp/fsprobe.dat",O_RDWR|O_CREAT,0644);
  char buf[4096]; memset(buf,0,4096);
  for(int i=0;i<256;i++) pwrite(fd,buf,4096,i*4096); fsync(fd);
  pthread_t th; if(mode==1) pthread_create(&th,0,helper,0);
  double *lat=malloc(n*sizeof(double));
  for(int i=0;i<n;i++){
    memset(buf,i,400);
    pwrite(fd,buf,400,(i%256)*4096);
    double t0=now();
    if(mode==0){ fdatasync(fd); }
    else { atomic_store(&done,0); atomic_store(&req,1); while(!atomic_load(&done)) sched_yield(); }
    lat[i]=now()-t0;
    usleep(600); /* idle gap like between puts */
  }
  atomic_store(&stop,1);
  qsort(lat,n,sizeof(double),cmp);
  printf("mode %d p10 %.0f p50 %.0f p90 %.0f p99 %.0f\n",mode,lat[n/10],lat[n/2],lat[n*9/10],lat[n*99/100]);
}
