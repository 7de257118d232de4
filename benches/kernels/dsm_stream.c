// STREAM shape on global (static) arrays: each iteration copy, scale, add
// and triad, each its own '#pragma omp parallel for schedule(static)' (a
// barrier between them); the arrays are initialised in parallel with the
// same split. Every iteration stores all of c twice, b and a once.
// The globals are placed like the heap (first-touch by default).
// Prints the checksum on stdout; 'result MS ms', 'iterations N' and
// 'modified B bytes/iteration' on stderr. Usage: dsm_stream [n] [iterations]
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

#define NMAX (1 << 20)
static double a[NMAX], b[NMAX], c[NMAX];

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1 << 18;
  int iters = argc > 2 ? atoi(argv[2]) : 10;
  if (n < 1 || n > NMAX) return 1;
  const double s = 0.5;
  #pragma omp parallel for schedule(static)
  for (long i = 0; i < n; i++) {
    a[i] = 1.0 + (double)(i % 7);
    b[i] = 2.0;
    c[i] = 0.0;
  }
  double t0 = omp_get_wtime();
  for (int it = 0; it < iters; it++) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) c[i] = a[i];
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) b[i] = s * c[i];
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) c[i] = a[i] + b[i];
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
  }
  double ms = (omp_get_wtime() - t0) * 1e3;
  double sa = 0, sb = 0, sc = 0;
  for (long i = 0; i < n; i++) { sa += a[i]; sb += b[i]; sc += c[i]; }
  fprintf(stderr, "result %.2f ms\niterations %d\nmodified %ld bytes/iteration\n", ms, iters,
          4 * n * (long)sizeof(double));
  printf("stream %ld: %.17g %.17g %.17g\n", n, sa, sb, sc);
  return 0;
}
