// CG shape: a read-only CSR sparse matrix (N rows, 16 non-zeros per row at
// random columns within a band of +-BAND around the diagonal, fixed seed,
// each row summing to 1) and the vectors built serially by the initial
// thread; each iteration y = A*x, then x = (x + y) / 2 + a source term, each
// a parallel loop with a static split. Rows near the split read x entries
// the other thread wrote.
// Prints the checksum on stdout; 'result MS ms', 'iterations N' and
// 'modified B bytes/iteration' on stderr. Usage: dsm_spmv [rows] [iterations]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

#define NNZ_ROW 16
#define BAND 512

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1 << 15;
  int iters = argc > 2 ? atoi(argv[2]) : 20;
  if (n < 2 * BAND) return 1;
  long *rowptr = malloc((n + 1) * sizeof *rowptr);
  int *col = malloc(n * NNZ_ROW * sizeof *col);
  double *val = malloc(n * NNZ_ROW * sizeof *val);
  double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  if (!rowptr || !col || !val || !x || !y) return 1;
  uint64_t s = 42;
  for (long i = 0; i < n; i++) {
    rowptr[i] = i * NNZ_ROW;
    for (int k = 0; k < NNZ_ROW; k++) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      long j = i - BAND + (long)((s >> 33) % (2 * BAND + 1));
      if (j < 0) j += n;
      if (j >= n) j -= n;
      col[i * NNZ_ROW + k] = (int)j;
      val[i * NNZ_ROW + k] = 1.0 / NNZ_ROW;
    }
    x[i] = (double)(i % 100);
    y[i] = 0;
  }
  rowptr[n] = n * NNZ_ROW;
  double t0 = omp_get_wtime();
  for (int it = 0; it < iters; it++) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
      double acc = 0;
      for (long k = rowptr[i]; k < rowptr[i + 1]; k++) acc += val[k] * x[col[k]];
      y[i] = acc;
    }
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) x[i] = 0.5 * (x[i] + y[i]) + (double)(i % 3);
  }
  double ms = (omp_get_wtime() - t0) * 1e3;
  double sum = 0;
  for (long i = 0; i < n; i++) sum += x[i] * (double)(i % 7 + 1);
  fprintf(stderr, "result %.2f ms\niterations %d\nmodified %ld bytes/iteration\n", ms, iters,
          2 * n * (long)sizeof(double));
  printf("spmv %ld rows: %.17g\n", n, sum);
  return 0;
}
