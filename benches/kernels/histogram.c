// Scattered increments: a histogram of 1M 32-bit bins (a global array)
// taking 24M pseudo-random samples, timed after 2M untimed ones (so that
// the first touch of the pages, in random order, is not in the time).
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

#define BINS (1u << 20)
static uint32_t hist[BINS];

int main(void) {
    uint64_t x = 0x2545f4914f6cdd1dull;
    double t = 0;
    for (int i = 0; i < 26000000; i++) {
        if (i == 2000000) t = now();
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        hist[(x >> 20) & (BINS - 1)]++;
    }
    t = now() - t;
    uint64_t s = 0;
    for (uint32_t k = 0; k < BINS; k++) s += (uint64_t)hist[k] * (k & 31);
    printf("histogram %llu\n", (unsigned long long)s);
    fprintf(stderr, "kernel-seconds %.6f\n", t);
    return 0;
}
