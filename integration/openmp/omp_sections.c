// sections: each section runs exactly once, by some thread of the team;
// results land in shared variables; lastprivate takes the lexically last
// section's value; sections nowait and a following barrier; a reduction
// over sections.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

int main(void) {
    long r[5] = {0, 0, 0, 0, 0};
    int runs[5] = {0, 0, 0, 0, 0};
    #pragma omp parallel sections
    {
        #pragma omp section
        { r[0] = fib(20); runs[0]++; }
        #pragma omp section
        { r[1] = fib(21); runs[1]++; }
        #pragma omp section
        { r[2] = fib(15); runs[2]++; }
        #pragma omp section
        { r[3] = fib(10) * 2; runs[3]++; }
        #pragma omp section
        { r[4] = 99; runs[4]++; }
    }
    printf("sections: %ld %ld %ld %ld %ld, runs %d %d %d %d %d\n", r[0], r[1], r[2], r[3], r[4],
           runs[0], runs[1], runs[2], runs[3], runs[4]);

    int last = -1;
    long sum = 0;
    #pragma omp parallel sections lastprivate(last) reduction(+ : sum)
    {
        #pragma omp section
        { last = 1; sum += 10; }
        #pragma omp section
        { last = 2; sum += 20; }
        #pragma omp section
        { last = 3; sum += 30; }
    }
    printf("lastprivate %d, reduction %ld\n", last, sum);

    // sections nowait inside a region, then a barrier, then a loop reading their results.
    long *parts = calloc(3, sizeof *parts);
    long total = 0;
    #pragma omp parallel
    {
        #pragma omp sections nowait
        {
            #pragma omp section
            for (int i = 0; i < 1000; i++) parts[0] += i;
            #pragma omp section
            for (int i = 0; i < 1000; i++) parts[1] += 2 * i;
            #pragma omp section
            for (int i = 0; i < 1000; i++) parts[2] += 3 * i;
        }
        #pragma omp barrier
        #pragma omp for reduction(+ : total)
        for (int i = 0; i < 3; i++) total += parts[i];
    }
    printf("nowait + barrier: %ld %ld %ld total %ld\n", parts[0], parts[1], parts[2], total);

    // firstprivate into sections.
    int base = 1000;
    int out[2] = {0, 0};
    #pragma omp parallel sections firstprivate(base)
    {
        #pragma omp section
        out[0] = base + 1;
        #pragma omp section
        { base += 5; out[1] = base; }
    }
    printf("firstprivate: %d %d original %d\n", out[0], out[1], base);
    free(parts);
    return 0;
}
