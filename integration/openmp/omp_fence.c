// Thread fences across nodes: plain data published with a relaxed atomic
// flag between a release fence and an acquire fence (C11
// atomic_thread_fence, and GCC's __sync_synchronize, a seq_cst fence)
// must be seen whole by the thread that reads the flag, whichever node it
// runs on. The first thread produces, the last one checks and answers,
// round after round, so the consumer's node holds a copy of the data from
// the round before when the next one comes. Both arrays live in shared
// globals and on the heap.
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define N 3000
#define ROUNDS 12

static long data[N];
static atomic_int flag, ack;

static long expected(int round, int i) { return round * 100000L + i; }

static void produce(long *heap, int round) {
    for (int i = 0; i < N; i++) {
        data[i] = expected(round, i);
        heap[i] = -expected(round, i);
    }
}

static long check(const long *heap, int round) {
    long wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += (data[i] != expected(round, i)) + (heap[i] != -expected(round, i));
    return wrong;
}

int main(void) {
    long *heap = calloc(N, sizeof *heap);
    long wrong = 0;
    #pragma omp parallel reduction(+ : wrong)
    {
        int t = omp_get_thread_num(), last = omp_get_num_threads() - 1;
        for (int r = 1; r <= ROUNDS && last > 0; r++) {
            int c11 = r % 2;
            if (t == 0) {
                produce(heap, r);
                if (c11)
                    atomic_thread_fence(memory_order_release);
                else
                    __sync_synchronize();
                atomic_store_explicit(&flag, r, memory_order_relaxed);
                while (atomic_load_explicit(&ack, memory_order_relaxed) != r)
                    ;
                if (c11)
                    atomic_thread_fence(memory_order_acquire);
                else
                    __sync_synchronize();
            } else if (t == last) {
                while (atomic_load_explicit(&flag, memory_order_relaxed) != r)
                    ;
                if (c11)
                    atomic_thread_fence(memory_order_acquire);
                else
                    __sync_synchronize();
                wrong += check(heap, r);
                if (c11)
                    atomic_thread_fence(memory_order_release);
                else
                    __sync_synchronize();
                atomic_store_explicit(&ack, r, memory_order_relaxed);
            }
        }
    }
    printf("fenced message passing: %ld wrong values\n", wrong);
    free(heap);
    return 0;
}
