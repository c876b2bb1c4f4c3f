#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
static int N=1500, K; static pthread_barrier_t bar; static double lat[8][4000];
static void* run(void*a){ long id=(long)a; char p[64]; sprintf(p,"/var/tmp/fsc%ld.dat",id);
  int fd=open(p,O_RDWR|O_CREAT,0644); char buf[4096]; memset(buf,0,4096);
  for(int i=0;i<256;i++) pwrite(fd,buf,4096,i*4096); fsync(fd);
  for(int i=0;i<N;i++){ pthread_barrier_wait(&bar); memset(buf,i,400); pwrite(fd,buf,400,(i%256)*4096);
    double t0=now(); fdatasync(fd); lat[id][i]=now()-t0; pthread_barrier_wait(&bar); if(id==0) usleep(500); }
  return 0;}
int main(int argc,char**argv){ K=atoi(argv[1]); pthread_barrier_init(&bar,0,K); pthread_t t[8];
  for(long i=0;i<K;i++) pthread_create(&t[i],0,run,(void*)i); for(int i=0;i<K;i++) pthread_join(t[i],0);
  double all[8*4000]; int m=0; for(int i=0;i<K;i++) for(int j=0;j<N;j++) all[m++]=lat[i][j];
  qsort(all,m,sizeof(double),cmp); printf("K=%d p10 %.0f p50 %.0f p90 %.0f p99 %.0f\n",K,all[m/10],all[m/2],all[m*9/10],all[m*99/100]); }
