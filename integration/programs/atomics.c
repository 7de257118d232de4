// C11 atomics on heap memory (single-threaded, so the result is defined).
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    _Atomic long *counters = malloc(16 * sizeof *counters);
    for (int i = 0; i < 16; i++) atomic_init(&counters[i], i);
    for (int r = 0; r < 2000; r++) {
        atomic_fetch_add(&counters[r % 16], 3);
        atomic_fetch_sub_explicit(&counters[(r * 7) % 16], 1, memory_order_relaxed);
    }
    long expected = 5, desired = 500, swaps = 0;
    for (int i = 0; i < 16; i++) {
        long e = atomic_load(&counters[i]);
        if (atomic_compare_exchange_strong(&counters[i], &e, e * 2)) swaps++;
        if (atomic_compare_exchange_strong(&counters[i], &expected, desired)) swaps += 100;
    }
    _Atomic unsigned char *flags = calloc(8, 1);
    atomic_fetch_or(&flags[3], 0x81);
    atomic_fetch_and(&flags[3], 0x0f);
    atomic_store(&flags[5], 7);
    long sum = 0;
    for (int i = 0; i < 16; i++) sum += atomic_load(&counters[i]);
    printf("sum %ld swaps %ld flags %d %d\n", sum, swaps, atomic_load(&flags[3]), atomic_load(&flags[5]));
    free((void *)counters);
    free((void *)flags);
    return 0;
}
