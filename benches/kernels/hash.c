// Open-addressing hash table on the heap: 4M inserts/updates of 64-bit keys.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

struct slot { uint64_t key, count; };

int main(void) {
    const size_t cap = 1u << 22;
    struct slot *table = calloc(cap, sizeof *table);
    uint64_t x = 88172645463325252ull;
    double t = now();
    for (int i = 0; i < 4000000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint64_t key = (x % 1500000) + 1;
        size_t h = (key * 0x9e3779b97f4a7c15ull) >> 42;
        while (table[h].key && table[h].key != key) h = (h + 1) & (cap - 1);
        table[h].key = key;
        table[h].count++;
    }
    t = now() - t;
    uint64_t used = 0, total = 0;
    for (size_t i = 0; i < cap; i++) if (table[i].key) { used++; total += table[i].count * (i & 7); }
    printf("hash %llu %llu\n", (unsigned long long)used, (unsigned long long)total);
    fprintf(stderr, "kernel-seconds %.6f\n", t);
    return 0;
}
