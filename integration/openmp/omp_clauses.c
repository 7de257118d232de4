// Data-sharing clauses on worksharing loops and regions: private (a fresh
// copy per thread), firstprivate (initialised from the original),
// lastprivate (the value of the sequentially last iteration), collapse(2)
// over a rectangular and a non-power-of-two nest.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

struct pair { int a; long b; };

int main(void) {
    // private: each thread's copy is its own; the original is untouched.
    int p = 12345, bad = 0;
    #pragma omp parallel private(p) reduction(+ : bad)
    {
        p = omp_get_thread_num();
        for (int k = 0; k < 1000; k++) p += 0;
        if (p != omp_get_thread_num()) bad++;
    }
    printf("private: original %d, clashes %d\n", p, bad);

    // firstprivate: scalars, an array and a struct start from the original.
    int base = 7;
    int arr[4] = {1, 2, 3, 4};
    struct pair pr = {5, 60};
    long fsum = 0;
    #pragma omp parallel for firstprivate(base, arr, pr) reduction(+ : fsum)
    for (int i = 0; i < 100; i++) {
        fsum += base + arr[i % 4] + pr.a + pr.b;
        arr[i % 4] += 0;
    }
    printf("firstprivate: sum %ld, originals %d %d %d %ld\n", fsum, base, arr[3], pr.a, pr.b);

    // firstprivate copy changed inside: the original stays.
    int counter = 100;
    #pragma omp parallel firstprivate(counter)
    {
        counter += omp_get_thread_num() + 1;
    }
    printf("firstprivate original after region %d\n", counter);

    // lastprivate: the value from the last iteration, under static schedules. (Not dynamic:
    // libomp 16, the reference, often leaves the original unset there.)
    int last = -1, last2 = -1, last3 = 5;
    long lastsq = -1;
    #pragma omp parallel for lastprivate(last)
    for (int i = 0; i < 997; i++) last = i * 2;
    #pragma omp parallel for schedule(static, 5) lastprivate(last2, lastsq)
    for (int i = 0; i < 503; i++) { last2 = i + 1; lastsq = (long)i * i; }
    #pragma omp parallel for schedule(static, 1) firstprivate(last3) lastprivate(last3)
    for (int i = 0; i < 10; i++) last3 = (last3 & 0xff) | (i << 8);
    printf("lastprivate: %d %d %ld, firstprivate+lastprivate %d\n", last, last2, lastsq, last3);

    // The loop variable itself is lastprivate in a parallel for over a declared-outside index.
    int j;
    #pragma omp parallel for lastprivate(j)
    for (j = 0; j < 77; j++) {}
    printf("loop variable after loop %d\n", j);

    // collapse(2): a 37 x 23 nest, each cell written once.
    int rows = 37, cols = 23;
    int *grid = calloc(rows * cols, sizeof *grid);
    #pragma omp parallel for collapse(2) schedule(dynamic, 4)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) grid[r * cols + c] += r * 100 + c;
    long gsum = 0, once = 1;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            gsum += grid[r * cols + c];
            if (grid[r * cols + c] != r * 100 + c) once = 0;
        }
    printf("collapse(2) dynamic: sum %ld, each cell once %s\n", gsum, once ? "yes" : "no");

    // collapse(2) static with a reduction and lastprivate of both indices.
    long csum = 0;
    int li = -1, lj = -1;
    #pragma omp parallel for collapse(2) reduction(+ : csum) lastprivate(li, lj)
    for (int x = 0; x < 16; x++)
        for (int y = 0; y < 9; y++) { csum += x * y; li = x; lj = y; }
    printf("collapse(2) static: sum %ld, last %d %d\n", csum, li, lj);
    free(grid);
    return 0;
}
