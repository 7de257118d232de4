// ordered: the ordered block of each iteration runs in iteration order,
// under static, chunked, dynamic and guided schedules; the order is
// recorded in a shared array and printed by the initial thread afterwards.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 120

static int seq[N];
static int pos;

static int in_order(const int *v, int n, int first, int step) {
    for (int i = 0; i < n; i++)
        if (v[i] != first + i * step) return 0;
    return 1;
}

static void show(const char *name, int n) {
    printf("%-10s %d appended, in order %s:", name, n, in_order(seq, n, 0, 1) ? "yes" : "NO");
    for (int i = 0; i < n && i < 12; i++) printf(" %d", seq[i]);
    printf(" ... %d\n", seq[n - 1]);
    pos = 0;
}

int main(void) {
    long work = 0;
    #pragma omp parallel for ordered reduction(+ : work)
    for (int i = 0; i < N; i++) {
        work += i * i;
        #pragma omp ordered
        seq[pos++] = i;
    }
    show("default", pos);

    #pragma omp parallel for ordered schedule(static, 3)
    for (int i = 0; i < N; i++) {
        #pragma omp ordered
        seq[pos++] = i;
    }
    show("static,3", pos);

    #pragma omp parallel for ordered schedule(dynamic, 2)
    for (int i = 0; i < N; i++) {
        int spin = (N - i) % 9 * 100;
        volatile int x = 0;
        for (int k = 0; k < spin; k++) x += k;
        #pragma omp ordered
        seq[pos++] = i;
    }
    show("dynamic,2", pos);

    #pragma omp parallel for ordered schedule(guided)
    for (int i = 0; i < N; i++) {
        #pragma omp ordered
        seq[pos++] = i;
    }
    show("guided", pos);

    // A running value that only ordered execution computes right.
    long chain = 1;
    int *heap_seq = malloc(N * sizeof *heap_seq);
    #pragma omp parallel for ordered schedule(dynamic)
    for (int i = 0; i < N; i++) {
        int v = i * 3;
        #pragma omp ordered
        {
            chain = (chain * 31 + v) % 1000000007L;
            heap_seq[i] = (int)(chain % 1000);
        }
    }
    long check = 1;
    int same = 1;
    for (int i = 0; i < N; i++) {
        check = (check * 31 + i * 3) % 1000000007L;
        if (heap_seq[i] != (int)(check % 1000)) same = 0;
    }
    printf("ordered chain %ld, matches sequential %s, work %ld\n", chain, same ? "yes" : "no", work);
    free(heap_seq);
    return 0;
}
