// Constructs working together in one small application: integer k-means.
// Each iteration, in one parallel region: a dynamic loop assigns points to
// their nearest centre (ties to the lower index) and counts changes with a
// reduction; per-cluster locks guard the cluster sums; a single computes the
// new centres while the others wait at its barrier; a critical section
// keeps a shared log of per-iteration totals, which a master prints after
// the region. Integer arithmetic throughout.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define NP 1000
#define K 6
#define ITERS 10

struct entry { int iter; long moved; struct entry *next; };

int main(void) {
    int *px = malloc(NP * sizeof *px), *py = malloc(NP * sizeof *py), *which = malloc(NP * sizeof *which);
    for (int i = 0; i < NP; i++) {
        px[i] = (int)((i * 7919L) % 1000);
        py[i] = (int)((i * 104729L + (i % K) * 333) % 1000);
        which[i] = -1;
    }
    long cx[K], cy[K], sx[K], sy[K], cnt[K];
    for (int k = 0; k < K; k++) { cx[k] = px[k * 13]; cy[k] = py[k * 13]; }
    omp_lock_t locks[K];
    for (int k = 0; k < K; k++) omp_init_lock(&locks[k]);
    struct entry *log = NULL;
    long moved = 0;
    int done_iters = 0;
    #pragma omp parallel shared(moved, log, done_iters)
    {
        for (int it = 0; it < ITERS; it++) {
            #pragma omp single
            {
                moved = 0;
                for (int k = 0; k < K; k++) sx[k] = sy[k] = cnt[k] = 0;
            }
            #pragma omp for schedule(dynamic, 32) reduction(+ : moved)
            for (int i = 0; i < NP; i++) {
                int best = 0;
                long bestd = -1;
                for (int k = 0; k < K; k++) {
                    long dx = px[i] - cx[k], dy = py[i] - cy[k], d = dx * dx + dy * dy;
                    if (bestd < 0 || d < bestd) { bestd = d; best = k; }
                }
                if (which[i] != best) moved++;
                which[i] = best;
                omp_set_lock(&locks[best]);
                sx[best] += px[i];
                sy[best] += py[i];
                cnt[best]++;
                omp_unset_lock(&locks[best]);
            }
            #pragma omp single
            {
                for (int k = 0; k < K; k++)
                    if (cnt[k]) { cx[k] = sx[k] / cnt[k]; cy[k] = sy[k] / cnt[k]; }
            }
            #pragma omp master
            {
                struct entry *e = malloc(sizeof *e);
                e->iter = it;
                e->moved = moved;
                #pragma omp critical(log)
                { e->next = log; log = e; }
                done_iters++;
            }
            #pragma omp barrier
        }
    }
    printf("k-means: %d iterations\n", done_iters);
    // The log is newest first; print it oldest first.
    struct entry *rev = NULL;
    while (log) { struct entry *n = log->next; log->next = rev; rev = log; log = n; }
    for (struct entry *e = rev; e; e = e->next) printf("  iter %d moved %ld\n", e->iter, e->moved);
    for (int k = 0; k < K; k++) printf("  centre %d: (%ld, %ld) with %ld points\n", k, cx[k], cy[k], cnt[k]);
    while (rev) { struct entry *n = rev->next; free(rev); rev = n; }
    for (int k = 0; k < K; k++) omp_destroy_lock(&locks[k]);
    free(px);
    free(py);
    free(which);
    return 0;
}
