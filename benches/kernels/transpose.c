// Out-of-place transpose of a 2048 x 2048 matrix of doubles on the heap,
// 8 times (the writes walk down columns), the first two (which first touch
// the memory) untimed.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    const size_t n = 2048;
    double *a = malloc(n * n * sizeof *a), *b = malloc(n * n * sizeof *b);
    for (size_t k = 0; k < n * n; k++) a[k] = (double)(k % 1009);
    double t = 0;
    for (int r = 0; r < 8; r++) {
        if (r == 2) t = now();
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                b[j * n + i] = a[i * n + j] + r;
        double *x = a; a = b; b = x;
    }
    t = now() - t;
    double s = 0;
    for (size_t k = 0; k < n * n; k += 777) s += a[k] * (double)(k & 15);
    printf("transpose %.1f\n", s);
    fprintf(stderr, "kernel-seconds %.6f\n", t);
    return 0;
}
