// 5-point Jacobi stencil on a 2048 x 2048 heap grid, 20 sweeps.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    const int n = 2048;
    double *a = calloc((size_t)n * n, sizeof *a), *b = calloc((size_t)n * n, sizeof *b);
    for (int j = 0; j < n; j++) a[j] = b[j] = 100.0;
    double t = now();
    for (int s = 0; s < 20; s++) {
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                b[(size_t)i * n + j] = 0.25 * (a[(size_t)(i - 1) * n + j] + a[(size_t)(i + 1) * n + j] + a[(size_t)i * n + j - 1] + a[(size_t)i * n + j + 1]);
        double *x = a; a = b; b = x;
    }
    t = now() - t;
    double h = 0;
    for (size_t k = 0; k < (size_t)n * n; k++) h += a[k];
    printf("stencil %.6f\n", h);
    fprintf(stderr, "kernel-seconds %.6f\n", t);
    return 0;
}
