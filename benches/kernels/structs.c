// Five fields of a 32-byte struct written per element: 2M records (64 MiB)
// on the heap, written 11 times, the first (which first touches the
// memory) untimed.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

struct rec { double x, y; int32_t id, flags; int64_t stamp; };

int main(void) {
    const size_t n = 2u << 20;
    struct rec *r = malloc(n * sizeof *r);
    double t = 0;
    for (int round = 0; round < 11; round++) {
        if (round == 1) t = now();
        for (size_t i = 0; i < n; i++) {
            r[i].x = (double)i * 0.5 + round;
            r[i].y = (double)(i ^ (size_t)round);
            r[i].id = (int32_t)i;
            r[i].flags = round;
            r[i].stamp = (int64_t)i * round;
        }
    }
    t = now() - t;
    double s = 0;
    for (size_t i = 0; i < n; i += 1021) s += r[i].x + r[i].y + r[i].id + r[i].flags + (double)r[i].stamp;
    printf("structs %.1f\n", s);
    fprintf(stderr, "kernel-seconds %.6f\n", t);
    return 0;
}
