/* Sequential scans of a 64 MiB array that node 0 filled, by the team's
 * last thread: with 2 nodes (one thread each) and allocating-node
 * placement, node 1 reads 64 MiB homed at node 0 through its cache.
 * Prints the best of 20 scans. docs/performance.md, "farmem: untouched
 * pages, masked write-back, pipelined release":
 *
 *   loco-cc -O2 -fopenmp farmem_scan.c -o scan
 *   OMP_NUM_THREADS=2 loco-daemon run -n 2 --placement allocating-node \
 *       --cache 16MiB -- ./scan
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  long n = 8L << 20; /* 8M longs */
  long *a = malloc(n * sizeof *a);
  for (long i = 0; i < n; i++)
    a[i] = i;
  double best = 1e9;
  long sum = 0;
#pragma omp parallel reduction(+ : sum)
  {
    if (omp_get_thread_num() == omp_get_num_threads() - 1) {
      for (int r = 0; r < 20; r++) {
        double t0 = omp_get_wtime();
        long s = 0;
        for (long i = 0; i < n; i += 8)
          s += a[i];
        double t = omp_get_wtime() - t0;
        if (t < best)
          best = t;
        sum += s;
      }
    }
  }
  printf("scan best %.1f ms (%.0f MB/s) sum %ld\n", best * 1e3,
         n * 8 / best / 1e6, sum);
  return 0;
}
