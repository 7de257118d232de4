// Barriers in a loop of phases: in each phase every thread reads what the
// whole team wrote in the previous phase (a 1-D Jacobi-like update between
// two heap buffers, then a global array), so a missing or leaky barrier
// shows as a wrong checksum. Also: many barriers in a row, and a region
// whose threads run different numbers of loop iterations between barriers.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 4096
#define PHASES 30

static long g[N], h[N];

int main(void) {
    long *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (int i = 0; i < N; i++) a[i] = (i * 37) % 101;
    #pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int lo = (int)((long)N * t / nt), hi = (int)((long)N * (t + 1) / nt);
        for (int p = 0; p < PHASES; p++) {
            long *src = p % 2 ? b : a, *dst = p % 2 ? a : b;
            for (int i = lo; i < hi; i++) {
                long l = src[(i + N - 1) % N], r = src[(i + 1) % N];
                dst[i] = (l + 2 * src[i] + r + p) % 1000003;
            }
            #pragma omp barrier
        }
        // Phase two: a global array; each thread then reads across its block's edges and
        // another thread's whole block.
        for (int i = lo; i < hi; i++) g[i] = a[i] * 2 + 1;
        #pragma omp barrier
        for (int i = lo; i < hi; i++) h[i] = g[(i + N - 1) % N] + g[(i + 1) % N] + g[(i + N / 2) % N];
    }
    long sum = 0, hsum = 0;
    for (int i = 0; i < N; i++) {
        sum += a[i] * (i % 17 + 1);
        hsum += h[i] * (i % 5 + 1);
    }
    printf("phases: checksum %ld, global array %ld\n", sum, hsum);

    // Many barriers in a row, each guarding a counter every thread checks.
    int counter = 0, wrong = 0;
    #pragma omp parallel reduction(+ : wrong)
    {
        for (int k = 0; k < 100; k++) {
            #pragma omp single
            counter++;
            if (counter != k + 1) wrong++;
            #pragma omp barrier
        }
    }
    printf("100 barriers: counter %d, wrong reads %d\n", counter, wrong);

    // Uneven work between barriers: thread t spins t times longer.
    long stage[3] = {0, 0, 0};
    #pragma omp parallel
    {
        int t = omp_get_thread_num();
        for (int s = 0; s < 3; s++) {
            volatile long x = 0;
            for (long k = 0; k < (t + 1) * 20000L; k++) x += k;
            #pragma omp atomic
            stage[s] += 1;
            #pragma omp barrier
            // Everyone has finished stage s before anyone reads it.
            #pragma omp master
            stage[s] = stage[s] == omp_get_num_threads() ? 1 : -1;
            #pragma omp barrier
        }
    }
    printf("uneven stages: %ld %ld %ld\n", stage[0], stage[1], stage[2]);
    free(a);
    free(b);
    return 0;
}
