// XSBench shape: a read-mostly lookup table (a sorted grid of keys and four
// values per key, about SIZE MiB) malloc'd and filled by the initial thread;
// each iteration is a parallel region where every thread does many random
// lookups (a binary search on the grid, then a read of that row's values)
// from its own deterministic LCG and the team reduces their sum. The only
// shared byte an iteration stores is the reduction's result.
// Prints the checksum on stdout; 'result MS ms', 'iterations N' and
// 'modified B bytes/iteration' on stderr. Usage: dsm_table [MiB] [iterations]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

#define LOOKUPS 40000 /* per thread and iteration */

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 4;
  int iters = argc > 2 ? atoi(argv[2]) : 20;
  size_t n = (mib << 20) / (sizeof(uint64_t) + 4 * sizeof(uint32_t));
  uint64_t *keys = malloc(n * sizeof *keys);
  uint32_t *vals = malloc(4 * n * sizeof *vals);
  if (!keys || !vals) return 1;
  uint64_t seed = 12345;
  for (size_t i = 0; i < n; i++) {
    keys[i] = 16 * i + lcg(&seed) % 16;
    for (int k = 0; k < 4; k++) vals[4 * i + k] = (uint32_t)lcg(&seed) & 0xffff;
  }
  uint64_t span = 16 * n;
  uint64_t total = 0;
  double t0 = omp_get_wtime();
  for (int it = 0; it < iters; it++) {
    uint64_t sum = 0;
    #pragma omp parallel reduction(+:sum)
    {
      uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(omp_get_thread_num() + 1) + (uint64_t)it;
      for (int l = 0; l < LOOKUPS; l++) {
        uint64_t key = lcg(&s) % span;
        size_t lo = 0, hi = n; /* the last grid point <= key */
        while (hi - lo > 1) {
          size_t mid = lo + (hi - lo) / 2;
          if (keys[mid] <= key) lo = mid; else hi = mid;
        }
        const uint32_t *v = &vals[4 * lo];
        sum += v[0] + 2 * v[1] + 3 * v[2] + 4 * v[3];
      }
    }
    total += sum;
  }
  double ms = (omp_get_wtime() - t0) * 1e3;
  fprintf(stderr, "result %.2f ms\niterations %d\nmodified %zu bytes/iteration\n", ms, iters,
          sizeof(uint64_t));
  printf("table %zu entries: %llu\n", n, (unsigned long long)total);
  return 0;
}
