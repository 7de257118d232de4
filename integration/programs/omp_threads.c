// loco-test: -fopenmp
// OpenMP threads (one team, which the runtime spreads over the nodes) work
// concurrently on heap memory spread over every node: page faults from
// several threads at once, interleaved byte writes to shared pages, a
// critical section growing a shared list. Integer results only, so the
// output does not depend on the order of floating-point sums.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

struct item { long value; struct item *next; };

int main(void) {
    const long n = 1 << 21;
    long *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    unsigned char *bytes = calloc(n, 1);
    #pragma omp parallel for schedule(static, 1000)
    for (long i = 0; i < n; i++) a[i] = (i * 2654435761u) % 1000003;
    // Neighbouring bytes written by different threads (false sharing).
    #pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (long i = t; i < n; i += nt) bytes[i] = (unsigned char)(i % 251 + 1);
    }
    b[0] = a[0];
    b[n - 1] = a[n - 1];
    for (int step = 0; step < 5; step++) {
        #pragma omp parallel for schedule(dynamic, 4096)
        for (long i = 1; i < n - 1; i++) b[i] = (a[i] + (a[i - 1] ^ a[i + 1]) % 97) % 1000003;
        long *t = a; a = b; b = t;
    }
    struct item *head = NULL;
    #pragma omp parallel for
    for (int i = 0; i < 2000; i++) {
        struct item *it = malloc(sizeof *it);
        it->value = i;
        #pragma omp critical
        { it->next = head; head = it; }
    }
    long sum = 0, bsum = 0, lsum = 0, count = 0;
    #pragma omp parallel for reduction(+ : sum, bsum)
    for (long i = 0; i < n; i++) { sum += a[i]; bsum += bytes[i]; }
    for (struct item *it = head; it; it = it->next) { lsum += it->value; count++; }
    printf("sum %ld bytes %ld list %ld of %ld\n", sum, bsum, lsum, count);
    while (head) { struct item *next = head->next; free(head); head = next; }
    free(a);
    free(b);
    free(bytes);
    return 0;
}
