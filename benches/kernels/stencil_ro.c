// 5-point stencil from a read-only input grid into an output grid
// (2048 x 2048 doubles on the heap), 21 sweeps, the first (which first
// touches the output) untimed: only the output is written.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    const size_t n = 2048;
    double *in = malloc(n * n * sizeof *in), *out = calloc(n * n, sizeof *out);
    for (size_t k = 0; k < n * n; k++) in[k] = (double)(k % 101);
    double t = 0;
    for (int s = 0; s < 21; s++) {
        if (s == 1) t = now();
        double w = 0.2 + s * 1e-3;
        for (size_t i = 1; i < n - 1; i++)
            for (size_t j = 1; j < n - 1; j++)
                out[i * n + j] = w * (in[(i - 1) * n + j] + in[(i + 1) * n + j] + in[i * n + j - 1] + in[i * n + j + 1] + in[i * n + j]);
    }
    t = now() - t;
    double h = 0;
    for (size_t k = 0; k < n * n; k += 3) h += out[k];
    printf("stencil_ro %.6f\n", h);
    fprintf(stderr, "kernel-seconds %.6f\n", t);
    return 0;
}
