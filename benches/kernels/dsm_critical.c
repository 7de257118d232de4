// Critical sections guarding a small shared structure (a 64-bin histogram
// and a running total) interleaved with private work that reads a shared
// read-only table of weights (serially initialised by the initial thread):
// each iteration is a parallel loop over ITEMS items, each item scoring 32
// weights and then adding its score to the histogram inside a critical.
// Prints the checksum on stdout; 'result MS ms', 'iterations N' and
// 'modified B bytes/iteration' on stderr. Usage: dsm_critical [items] [iterations]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

#define WEIGHTS (64 * 1024 / 8) /* 64 KiB */
#define BINS 64

struct shared_hist {
  uint64_t bin[BINS];
  uint64_t total;
};

int main(int argc, char **argv) {
  long items = argc > 1 ? atol(argv[1]) : 1000;
  int iters = argc > 2 ? atoi(argv[2]) : 10;
  uint64_t *w = malloc(WEIGHTS * sizeof *w);
  struct shared_hist *h = calloc(1, sizeof *h);
  if (!w || !h) return 1;
  uint64_t s = 7;
  for (long i = 0; i < WEIGHTS; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    w[i] = s >> 40;
  }
  double t0 = omp_get_wtime();
  for (int it = 0; it < iters; it++) {
    #pragma omp parallel for schedule(static)
    for (long item = 0; item < items; item++) {
      uint64_t x = (uint64_t)(item + 1) * 0x9e3779b97f4a7c15ULL + (uint64_t)it, score = 0;
      for (int k = 0; k < 32; k++) { /* private work on shared read-only data */
        x ^= x >> 29; x *= 0xbf58476d1ce4e5b9ULL; x ^= x >> 32;
        score += w[x % WEIGHTS];
      }
      #pragma omp critical
      {
        h->bin[score % BINS] += 1;
        h->total += score;
      }
    }
  }
  double ms = (omp_get_wtime() - t0) * 1e3;
  uint64_t sum = h->total;
  for (int b = 0; b < BINS; b++) sum = sum * 31 + h->bin[b];
  fprintf(stderr, "result %.2f ms\niterations %d\nmodified %ld bytes/iteration\n", ms, iters,
          items * 2 * (long)sizeof(uint64_t));
  printf("critical %ld items: %llu\n", items, (unsigned long long)sum);
  return 0;
}
