// K empty barriers in one parallel region; the primary thread times them
// with omp_get_wtime between two extra barriers and prints the mean cost of
// one barrier (stderr: "result NS ns/barrier"). Usage: omp_barrier [K]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int k = argc > 1 ? atoi(argv[1]) : 2000;
    double t0 = 0, t1 = 0;
    int team = 0;
    #pragma omp parallel
    {
        // Warm up: every thread has arrived once before timing starts.
        for (int i = 0; i < 10; i++) {
            #pragma omp barrier
        }
        #pragma omp master
        { team = omp_get_num_threads(); t0 = omp_get_wtime(); }
        for (int i = 0; i < k; i++) {
            #pragma omp barrier
        }
        #pragma omp master
        t1 = omp_get_wtime();
    }
    printf("%d barriers\n", k);
    fprintf(stderr, "team %d\nresult %.1f ns/barrier\n", team, (t1 - t0) * 1e9 / k);
    return 0;
}
