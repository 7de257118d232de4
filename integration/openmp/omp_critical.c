// Critical sections: the unnamed one, named ones (independent of each
// other), named sections nested inside differently named ones, and a
// dynamic loop whose uneven iterations meet in a critical section.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static long counter;

static long work(int i) {
    long x = i + 1;
    for (int k = 0; k < (i % 13) * 50; k++) x = (x * 31 + 7) % 65521;
    return x;
}

int main(void) {
    // Unnamed: a read-modify-write of two variables that must stay in step.
    long a = 0, b = 0;
    #pragma omp parallel for
    for (int i = 0; i < 400; i++) {
        #pragma omp critical
        {
            long t = a;
            a = t + i;
            b = b + 2 * i;
            counter++;
        }
    }
    printf("unnamed: a %ld b %ld in step %s counter %ld\n", a, b, 2 * a == b ? "yes" : "no", counter);

    // Named sections guard different data; both are mutually exclusive within their name.
    long x = 0, y = 1;
    int xs = 0, ys = 0;
    #pragma omp parallel for schedule(static, 3)
    for (int i = 0; i < 300; i++) {
        if (i % 2) {
            #pragma omp critical(xlock)
            { x += i; xs++; }
        } else {
            #pragma omp critical(ylock)
            { y = (y * 3 + i) % 1000003; ys++; }
        }
    }
    // y depends on the order of updates, so print only a property of it.
    printf("named: x %ld updates %d/%d y in range %s\n", x, xs, ys, y >= 0 && y < 1000003 ? "yes" : "no");

    // Nested critical sections with different names (never the same name twice).
    long outer = 0, inner = 0, both = 0;
    #pragma omp parallel for schedule(dynamic, 2)
    for (int i = 0; i < 200; i++) {
        #pragma omp critical(outer)
        {
            outer += i;
            #pragma omp critical(inner)
            {
                inner += 1;
                both += outer - outer + i % 7;
            }
        }
        #pragma omp critical(inner)
        inner += 2;
    }
    printf("nested names: outer %ld inner %ld both %ld\n", outer, inner, both);

    // A dynamic loop over uneven work; results are merged under critical.
    long *results = calloc(64, sizeof *results);
    long total = 0;
    int merged = 0;
    #pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < 500; i++) {
        long v = work(i);
        #pragma omp critical(merge)
        {
            results[v % 64] += 1;
            total += v;
            merged++;
        }
    }
    long hsum = 0, hweighted = 0;
    for (int k = 0; k < 64; k++) { hsum += results[k]; hweighted += results[k] * k; }
    printf("dynamic + critical: merged %d total %ld buckets %ld weighted %ld\n", merged, total, hsum, hweighted);

    // Critical inside a plain region: every thread appends to a shared counter many times.
    long hits = 0;
    int team = 0;
    #pragma omp parallel
    {
        #pragma omp single
        team = omp_get_num_threads();
        for (int k = 0; k < 50; k++) {
            #pragma omp critical
            hits++;
        }
    }
    printf("hits per thread %ld\n", hits / team);
    free(results);
    return 0;
}
