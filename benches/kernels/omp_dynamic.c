// A dynamic-schedule loop (chunk 16) over N iterations of uneven work (the
// cost of iteration i grows with i % 64); prints a checksum and the loop's
// total time (stderr: "result MS ms/loop"). Usage: omp_dynamic [N]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static long work(long i) {
    long x = i + 1;
    for (long k = 0; k < (i % 64) * 200; k++) x = (x * 6364136223846793005L + 1442695040888963407L) >> 1;
    return x & 0xffff;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    long *out = malloc(n * sizeof *out);
    long sum = 0;
    double t0 = omp_get_wtime();
    #pragma omp parallel for schedule(dynamic, 16) reduction(+ : sum)
    for (long i = 0; i < n; i++) {
        out[i] = work(i);
        sum += out[i];
    }
    double t1 = omp_get_wtime();
    printf("checksum %ld\n", sum);
    fprintf(stderr, "result %.3f ms/loop\n", (t1 - t0) * 1e3);
    free(out);
    return 0;
}
