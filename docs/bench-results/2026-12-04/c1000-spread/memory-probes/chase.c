// gcc -O2 -o chase chase.c && ./chase
// Latency of a dependent load to a random cache line over working sets of several sizes:
// a pointer chase, so each load waits for the one before (no overlap).
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
  size_t sizes_mb[] = {1, 8, 64, 512};
  for (int s = 0; s < 4; s++) {
    size_t n = (sizes_mb[s] << 20) / 64;  // one pointer per 64-byte line
    uintptr_t *a = aligned_alloc(64, n * 64);
    size_t *perm = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    srand(1);
    for (size_t i = n - 1; i > 0; i--) { size_t j = ((size_t)rand() * 65536 + rand()) % (i + 1); size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    for (size_t i = 0; i < n; i++) a[perm[i] * 8] = (uintptr_t)&a[perm[(i + 1) % n] * 8];
    uintptr_t *p = &a[perm[0] * 8];
    size_t steps = 4000000;
    double t0 = now();
    for (size_t i = 0; i < steps; i++) p = (uintptr_t *)*p;
    double t = now() - t0;
    printf("%4zu MiB: %.0f ns per dependent load (%p)\n", sizes_mb[s], t * 1e9 / steps, (void *)p);
    free(a); free(perm);
  }
  return 0;
}
