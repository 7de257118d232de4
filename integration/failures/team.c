// An OpenMP team that keeps synchronising (barriers, critical sections, a
// dynamic loop) until killed, announcing on stdout when every thread of the
// team is running.
#include <omp.h>
#include <stdio.h>
#include <unistd.h>

long counter;

int main(void) {
    #pragma omp parallel
    {
        #pragma omp barrier
        #pragma omp master
        {
            printf("walking with %d threads\n", omp_get_num_threads());
            fflush(stdout);
        }
        for (int round = 0; round < 1000000; round++) {
            #pragma omp critical
            counter++;
            #pragma omp for schedule(dynamic)
            for (int i = 0; i < 64; i++)
                usleep(10);
        }
    }
    printf("%ld\n", counter);
    return 0;
}
