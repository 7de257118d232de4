// Every thread of the team reads a whole shared array (written by node 0)
// three times: the cost of fetching remote pages in a sequential scan, where
// read-ahead fetches several pages per fault when they share a home.
// Prints 'result MS ms' on stderr. Usage: omp_scan [MiB]
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
int main(int argc, char **argv) {
  size_t n = (size_t)(argc > 1 ? atoi(argv[1]) : 32) << 20 >> 3;
  long *a = malloc(n * sizeof *a);
  for (size_t i = 0; i < n; i++) a[i] = (long)i;
  long total = 0;
  double t0 = omp_get_wtime();
  for (int round = 0; round < 3; round++) {
    long seen = 0; /* every thread sums the same array: the same for any team size */
    #pragma omp parallel reduction(max:seen)
    {
      long s = 0;
      for (size_t i = 0; i < n; i += 1) s += a[i];
      seen = s;
    }
    total += seen;
  }
  fprintf(stderr, "result %.1f ms\n", (omp_get_wtime() - t0) * 1e3);
  printf("%ld\n", total);
}
