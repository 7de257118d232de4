// threadprivate variables: copyin from the primary thread's copy (whichever
// node a thread is on), and each thread's copy kept from one parallel region
// to the next (same team size).
#include <omp.h>
#include <stdio.h>

int counter = 0;
static long scale[4] = {1, 2, 3, 4};
#pragma omp threadprivate(counter, scale)

int main(void) {
    counter = 7;
    scale[2] = 10;
    long total = 0;
    #pragma omp parallel copyin(counter, scale) reduction(+ : total)
    {
        counter += omp_get_thread_num();
        total += counter * scale[2] + scale[3];
    }
    printf("copyin: total %ld\n", total);
    long again = 0;
    #pragma omp parallel reduction(+ : again)
    again += counter - omp_get_thread_num();
    printf("kept between regions: %ld (threads %d)\n", again, omp_get_max_threads());
    return 0;
}
