/* A first fill of a 128 MiB array in a parallel loop: with 2 nodes and
 * allocating-node placement, node 1 writes 64 MiB homed at node 0 (pages
 * nobody has written, through its cache). docs/performance.md, "farmem:
 * untouched pages, masked write-back, pipelined release":
 *
 *   loco-cc -O2 -fopenmp farmem_fill.c -o fill
 *   OMP_NUM_THREADS=2 loco-daemon run -n 2 --placement allocating-node \
 *       --cache 32MiB -- ./fill
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  long n = 16L << 20; /* 16M doubles */
  double *a = malloc(n * sizeof *a);
  double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; i++)
    a[i] = (double)i;
  double t1 = omp_get_wtime();
  double s = 0;
  for (long i = 0; i < n; i += 4096)
    s += a[i];
  printf("fill %.1f ms (%.0f MB/s) sum %g\n", (t1 - t0) * 1e3,
         n * 8 / (t1 - t0) / 1e6, s);
  return 0;
}
