// gcc -O2 -o touch touch.c && ./touch 5
// First touch of anonymous memory (256 MiB, one write per 4 KiB page): right after the previous region was unmapped, and after a
// pause long enough for the guest to report the freed pages to the host.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double touch(size_t len) {
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); exit(1); }
  double t0 = now();
  for (size_t i = 0; i < len; i += 4096) p[i] = 1;
  double t = now() - t0;
  munmap(p, len);
  return t * 1e9 / (len / 4096);
}
int main(int argc, char **argv) {
  size_t len = (size_t)256 << 20;
  int pause = argc > 1 ? atoi(argv[1]) : 5;
  for (int r = 0; r < 4; r++) {
    double a = touch(len);
    double b = touch(len);
    sleep(pause);
    double c = touch(len);
    printf("round %d: first touch ns/page: fresh %.0f, right after unmap %.0f, after %d s pause %.0f\n", r, a, b, pause, c);
  }
  return 0;
}
