// LULESH shape: many small parallel regions over several heap arrays that the
// initial thread allocated and initialised serially; region k updates one
// array from two others, each thread only its own static slice. An
// iteration is one region.
// Prints the checksum on stdout; 'result MS ms', 'iterations N' and
// 'modified B bytes/iteration' on stderr. Usage: dsm_regions [n] [regions]
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

#define ARRAYS 6

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1 << 15;
  int regions = argc > 2 ? atoi(argv[2]) : 300;
  double *f[ARRAYS];
  for (int k = 0; k < ARRAYS; k++) {
    f[k] = malloc(n * sizeof(double));
    if (!f[k]) return 1;
    for (long i = 0; i < n; i++) f[k][i] = (double)((i + k) % 11);
  }
  double t0 = omp_get_wtime();
  for (int r = 0; r < regions; r++) {
    double *out = f[r % ARRAYS];
    const double *p = f[(r + 1) % ARRAYS], *q = f[(r + 2) % ARRAYS];
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) out[i] = 0.5 * p[i] + 0.25 * q[i] + 1.0;
  }
  double ms = (omp_get_wtime() - t0) * 1e3;
  double sum = 0;
  for (int k = 0; k < ARRAYS; k++)
    for (long i = 0; i < n; i++) sum += f[k][i] * (double)(k + 1);
  fprintf(stderr, "result %.2f ms\niterations %d\nmodified %ld bytes/iteration\n", ms, regions,
          n * (long)sizeof(double));
  printf("regions %d x %ld: %.17g\n", regions, n, sum);
  return 0;
}
