// Worksharing loops under every schedule: each iteration runs exactly once
// and the results are those of the sequential loop, whatever the team size.
// Dynamic and guided loops get uneven work per iteration; runtime uses the
// default schedule (OMP_SCHEDULE unset); nowait loops are followed by an
// explicit barrier before their results are read.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1000

static int count[N];
static long val[N];

// Uneven work: iteration i loops about i % 97 times.
static long work(int i) {
    long x = i;
    for (int k = 0; k < (i % 97) * 20; k++) x = (x * 1103515245 + 12345) % 2147483648L;
    return x % 1000;
}

static void report(const char *name) {
    int once = 1;
    long sum = 0;
    for (int i = 0; i < N; i++) {
        if (count[i] != 1) once = 0;
        sum += val[i] * (i + 1);
    }
    printf("%-16s every iteration once: %s, checksum %ld\n", name, once ? "yes" : "NO", sum);
    memset(count, 0, sizeof count);
    memset(val, 0, sizeof val);
}

int main(void) {
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("static");

    #pragma omp parallel for schedule(static, 7)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("static,7");

    #pragma omp parallel for schedule(static, 1)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("static,1");

    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("dynamic");

    #pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("dynamic,16");

    #pragma omp parallel for schedule(guided)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("guided");

    #pragma omp parallel for schedule(guided, 5)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("guided,5");

    #pragma omp parallel for schedule(runtime)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("runtime");

    #pragma omp parallel for schedule(auto)
    for (int i = 0; i < N; i++) { count[i]++; val[i] = work(i); }
    report("auto");

    // Loops that do not start at 0, count down, and step by more than one.
    long s1 = 0, s2 = 0, s3 = 0;
    #pragma omp parallel for schedule(dynamic, 3) reduction(+ : s1)
    for (int i = 17; i < 533; i += 5) s1 += i;
    #pragma omp parallel for schedule(static, 4) reduction(+ : s2)
    for (int i = 900; i > -100; i -= 3) s2 += i;
    #pragma omp parallel for schedule(guided) reduction(+ : s3)
    for (long i = -50; i <= 50; i++) s3 += i * i;
    printf("strided sums %ld %ld %ld\n", s1, s2, s3);

    // Several loops in one region, nowait, then a barrier before reading.
    long *a = calloc(N, sizeof *a), *b = calloc(N, sizeof *b), *c = calloc(N, sizeof *c);
    #pragma omp parallel
    {
        #pragma omp for schedule(static) nowait
        for (int i = 0; i < N; i++) a[i] = i * 3;
        #pragma omp for schedule(dynamic, 8) nowait
        for (int i = 0; i < N; i++) b[i] = i * 5 + 1;
        #pragma omp barrier
        #pragma omp for schedule(guided)
        for (int i = 0; i < N; i++) c[i] = a[N - 1 - i] + b[(i * 7) % N];
        #pragma omp for schedule(static, 3) nowait
        for (int i = 0; i < N; i++) a[i] = c[i] - 1;
    }
    long sa = 0, sc = 0;
    for (int i = 0; i < N; i++) { sa += a[i] * (i % 13); sc += c[i]; }
    printf("nowait + barrier: %ld %ld\n", sa, sc);
    // Loops with fewer iterations than threads, and with none.
    int tiny[3] = {0, 0, 0};
    int none = 0;
    #pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < 3; i++) tiny[i] = i + 100;
    #pragma omp parallel for
    for (int i = 0; i < 0; i++) none++;
    printf("tiny %d %d %d none %d\n", tiny[0], tiny[1], tiny[2], none);
    free(a);
    free(b);
    free(c);
    return 0;
}
