// STREAM-like triad on heap arrays: a[i] = b[i] + s * c[i]. Prints its
// checksum on stdout and the kernel's seconds on stderr as "kernel-seconds X".
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    const size_t n = 8u << 20;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++) { a[i] = 0; b[i] = i % 97; c[i] = i % 89; }
    double t = now();
    for (int r = 0; r < 20; r++)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i] + r;
    t = now() - t;
    double s = 0;
    for (size_t i = 0; i < n; i += 4096) s += a[i];
    printf("triad %.1f\n", s);
    fprintf(stderr, "kernel-seconds %.6f\n", t);
    return 0;
}
