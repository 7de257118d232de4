// 2D Jacobi stencil on two heap grids (ROWS x 1024 doubles) initialised in
// parallel (first touch) with the same static row split as the sweeps; each
// iteration is one parallel sweep over the interior rows, so neighbouring
// threads share only the halo rows at their boundary. The initial thread
// swaps the grids between sweeps.
// Prints the checksum on stdout; 'result MS ms', 'iterations N' and
// 'modified B bytes/iteration' on stderr. Usage: dsm_stencil [rows] [iterations]
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>

#define COLS 1024

int main(int argc, char **argv) {
  long rows = argc > 1 ? atol(argv[1]) : 1024;
  int iters = argc > 2 ? atoi(argv[2]) : 20;
  if (rows < 3) return 1;
  double *u = malloc(rows * COLS * sizeof *u), *v = malloc(rows * COLS * sizeof *v);
  if (!u || !v) return 1;
  #pragma omp parallel for schedule(static)
  for (long i = 0; i < rows; i++)
    for (long j = 0; j < COLS; j++) {
      double edge = (i == 0 || j == 0) ? 100.0 : 0.0; /* hot top and left edges */
      u[i * COLS + j] = edge + (double)((i * 31 + j * 17) % 13);
      v[i * COLS + j] = u[i * COLS + j];
    }
  double t0 = omp_get_wtime();
  for (int it = 0; it < iters; it++) {
    #pragma omp parallel for schedule(static)
    for (long i = 1; i < rows - 1; i++)
      for (long j = 1; j < COLS - 1; j++)
        v[i * COLS + j] = 0.25 * (u[(i - 1) * COLS + j] + u[(i + 1) * COLS + j] +
                                  u[i * COLS + j - 1] + u[i * COLS + j + 1]);
    double *t = u; u = v; v = t;
  }
  double ms = (omp_get_wtime() - t0) * 1e3;
  double sum = 0;
  for (long i = 0; i < rows * COLS; i++) sum += u[i] * (double)(i % 5 + 1);
  fprintf(stderr, "result %.2f ms\niterations %d\nmodified %ld bytes/iteration\n", ms, iters,
          (rows - 2) * (COLS - 2) * (long)sizeof(double));
  printf("stencil %ldx%d: %.17g\n", rows, COLS, sum);
  return 0;
}
