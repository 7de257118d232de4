// The team: every thread of a parallel region has its own id in [0, n),
// the ids cover the team exactly once, omp_get_num_threads() agrees in
// every thread, and the num_threads clause fixes the team size whatever
// OMP_NUM_THREADS says.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define MAXT 64

// Runs a region of the default size; returns whether ids and sizes were consistent.
static int check_default_team(int *size_out) {
    int ids[MAXT], sizes[MAXT], seen = 0, size = 0, ok = 1;
    for (int i = 0; i < MAXT; i++) ids[i] = sizes[i] = -1;
    #pragma omp parallel shared(ids, sizes, size)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        if (t < MAXT) { ids[t] = t; sizes[t] = n; }
        #pragma omp master
        size = n;
    }
    for (int i = 0; i < MAXT; i++) {
        if (i < size) {
            if (ids[i] != i || sizes[i] != size) ok = 0;
            seen++;
        } else if (ids[i] != -1) {
            ok = 0;
        }
    }
    *size_out = size;
    return ok && seen == size && size == omp_get_max_threads();
}

// A region with num_threads(k): the array of ids written by the team.
static void fixed_team(int k) {
    int *ids = malloc(sizeof(int) * k);
    int size = -1;
    for (int i = 0; i < k; i++) ids[i] = -1;
    #pragma omp parallel num_threads(k)
    {
        int t = omp_get_thread_num();
        ids[t] = t * 10;
        if (t == 0) size = omp_get_num_threads();
    }
    printf("num_threads(%d): team of %d, ids", k, size);
    for (int i = 0; i < k; i++) printf(" %d", ids[i]);
    printf("\n");
    free(ids);
}

int main(void) {
    int size = 0;
    printf("outside: thread %d of %d\n", omp_get_thread_num(), omp_get_num_threads());
    for (int round = 0; round < 3; round++) {
        int ok = check_default_team(&size);
        printf("default team round %d: %s\n", round, ok ? "consistent" : "INCONSISTENT");
        if (!ok) printf("  size %d max %d\n", size, omp_get_max_threads());
    }
    for (int k = 1; k <= 6; k++) fixed_team(k);
    // Every thread counts itself into its own slot of a shared counter array.
    long hits[MAXT] = {0};
    for (int rep = 0; rep < 20; rep++) {
        #pragma omp parallel
        hits[omp_get_thread_num()] += rep;
    }
    long total = 0;
    for (int i = 0; i < size; i++) total += hits[i];
    printf("hits per thread equal: %s\n", total == (long)size * 190 ? "yes" : "no");
    // After the region the initial thread is alone again.
    printf("after: thread %d of %d\n", omp_get_thread_num(), omp_get_num_threads());
    return 0;
}
