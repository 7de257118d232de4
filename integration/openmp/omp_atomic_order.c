// Program order on one location: a thread's own plain store, then its own
// atomic on the same location (omp atomic update/read/write/capture, C11
// atomics relaxed and seq_cst, libomp's __kmpc_atomic_* calls) must see
// the store, and the store must never be written back over the atomic's
// result later. Every thread works on its own slots, which share pages
// with other threads' slots (on other nodes, across nodes), in shared
// globals and in a heap array.
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ident ident_t;
extern void __kmpc_atomic_fixed4_add(ident_t *, int, int *, int);
extern int __kmpc_atomic_fixed4_rd(ident_t *, int, int *);

#define ROUNDS 50
int slot[64];
long wide[64];
double real[64];

int main(void) {
    long *heap = calloc(64, sizeof *heap);
    int bad = 0;
    #pragma omp parallel reduction(+ : bad)
    {
        int r = omp_get_thread_num();
        for (int round = 0; round < ROUNDS; round++) {
            int v;
            slot[r] = 10 * r + round;
            #pragma omp atomic
            slot[r] += 1;
            #pragma omp atomic read
            v = slot[r];
            if (v != 10 * r + round + 1) bad++;

            slot[r] = 7 * round;
            #pragma omp atomic read
            v = slot[r];
            if (v != 7 * round) bad++;

            slot[r] = round;
            #pragma omp atomic capture
            v = slot[r]++;
            if (v != round) bad++;

            wide[r] = 1000L * round;
            __atomic_fetch_add(&wide[r], 5, __ATOMIC_RELAXED);
            if (__atomic_load_n(&wide[r], __ATOMIC_RELAXED) != 1000L * round + 5) bad++;

            heap[r] = round;
            atomic_fetch_add((_Atomic long *)&heap[r], 3);
            if (heap[r] != round + 3) bad++;

            real[r] = round * 0.5;
            #pragma omp atomic
            real[r] += 0.25;
            if (real[r] != round * 0.5 + 0.25) bad++;

            slot[r] = 3 * round;
            __kmpc_atomic_fixed4_add(0, 0, &slot[r], 2);
            if (__kmpc_atomic_fixed4_rd(0, 0, &slot[r]) != 3 * round + 2) bad++;

            slot[r] = -round;
            #pragma omp atomic write
            slot[r] = round + 100;
            if (slot[r] != round + 100) bad++;
            #pragma omp barrier
        }
        // The last plain stores were before atomics: after the barrier
        // every value is the atomic's, never the store's.
        #pragma omp barrier
        int n = omp_get_num_threads();
        #pragma omp single
        for (int t = 0; t < n; t++) {
            if (slot[t] != ROUNDS - 1 + 100) bad++;
            if (wide[t] != 1000L * (ROUNDS - 1) + 5) bad++;
            if (heap[t] != ROUNDS - 1 + 3) bad++;
            if (real[t] != (ROUNDS - 1) * 0.5 + 0.25) bad++;
        }
    }
    printf("atomic program order: %d wrong values\n", bad);
    free(heap);
    return 0;
}
