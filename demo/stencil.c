// The LOCO demo: a 2-D heat-diffusion stencil (Jacobi iterations) on two
// grids of doubles allocated on the heap, an ordinary OpenMP program.
// Compiled with `loco-cc -fopenmp` and run under `loco-daemon run -n N`,
// the grids live in LOCO's shared heap, spread over every node's memory,
// and each parallel loop runs as one team of threads spanning the nodes;
// the same source compiled with `clang -fopenmp` gives the reference.
// The first parallel loop initialises the rows each thread later updates,
// so with first-touch placement (the default) every node is home to its
// own rows and fetches only its neighbours' boundary rows at each step.
//
// usage: stencil [N] [STEPS]      (default 1024 x 1024, 50 steps)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    int steps = argc > 2 ? atoi(argv[2]) : 50;
    double *a = malloc((size_t)n * n * sizeof *a);
    double *b = malloc((size_t)n * n * sizeof *b);
    if (!a || !b) { fprintf(stderr, "out of memory\n"); return 1; }
    // A hot edge and a cold interior.
    #pragma omp parallel for
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            a[(size_t)i * n + j] = b[(size_t)i * n + j] = (i == 0) ? 100.0 : 0.0;
    double t0 = now();
    for (int s = 0; s < steps; s++) {
        #pragma omp parallel for
        for (int i = 1; i < n - 1; i++)
            for (int j = 1; j < n - 1; j++)
                b[(size_t)i * n + j] = 0.25 * (a[(size_t)(i - 1) * n + j] + a[(size_t)(i + 1) * n + j] +
                                               a[(size_t)i * n + j - 1] + a[(size_t)i * n + j + 1]);
        double *t = a; a = b; b = t;
    }
    double t1 = now();
    double heat = 0;
    #pragma omp parallel for reduction(+ : heat)
    for (size_t k = 0; k < (size_t)n * n; k++) heat += a[k];
    printf("grid %dx%d, %d steps: total heat %.6f, near the hot edge %.9f\n", n, n, steps, heat,
           a[(size_t)4 * n + n / 2]);
    fprintf(stderr, "stencil: %.3f s for the steps\n", t1 - t0);
    free(a);
    free(b);
    return 0;
}
