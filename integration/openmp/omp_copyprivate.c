// loco-expect-error: LOCO does not support OpenMP single copyprivate yet
// single copyprivate: one thread produces a value and broadcasts it to
// every thread's private copy (scalars, a struct, a pointer to heap data).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

struct conf { int a; long b; double c; };

int main(void) {
    int mismatched = 0;
    #pragma omp parallel reduction(+ : mismatched)
    {
        int mine = -1;
        #pragma omp single copyprivate(mine)
        mine = 4242;
        if (mine != 4242) mismatched++;
    }
    printf("copyprivate: mismatched %d\n", mismatched);

    int bad = 0;
    long total = 0;
    #pragma omp parallel reduction(+ : bad, total)
    {
        struct conf c;
        long *data;
        #pragma omp single copyprivate(c, data)
        {
            c.a = 3;
            c.b = 1L << 40;
            c.c = 0.75;
            data = malloc(100 * sizeof *data);
            for (int i = 0; i < 100; i++) data[i] = i * 3;
        }
        if (c.a != 3 || c.b != 1L << 40 || c.c != 0.75) bad++;
        #pragma omp for
        for (int i = 0; i < 100; i++) total += data[i];
        #pragma omp barrier
        #pragma omp single
        free(data);
    }
    printf("copyprivate struct and pointer: mismatched %d, sum %ld\n", bad, total);
    return 0;
}
