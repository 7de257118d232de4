// K critical sections in all, spread over the team by a static loop, each
// incrementing one shared counter; prints the mean time per critical
// section (stderr: "result NS ns/critical"), i.e. per hand-over of the lock
// when threads contend. Usage: omp_critical [K]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long k = argc > 1 ? atol(argv[1]) : 20000;
    long counter = 0;
    double t0 = 0, t1 = 0;
    #pragma omp parallel
    {
        #pragma omp barrier
        #pragma omp master
        t0 = omp_get_wtime();
        #pragma omp for schedule(static)
        for (long i = 0; i < k; i++) {
            #pragma omp critical
            counter++;
        }
        #pragma omp master
        t1 = omp_get_wtime();
    }
    printf("counter %ld of %ld\n", counter, k);
    fprintf(stderr, "result %.1f ns/critical\n", (t1 - t0) * 1e9 / k);
    return counter == k ? 0 : 1;
}
