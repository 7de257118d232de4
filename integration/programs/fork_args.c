// Many parallel regions whose threads read shared variables that the
// initial thread changes before each one (they live on main's stack, so a
// fork carries their page to the other nodes), and write results into a
// heap array. Prints a checksum that depends on every region seeing the
// values of its own fork.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define REGIONS 200
#define N 4096

int main(void) {
    long *out = calloc(N, sizeof *out);
    long scale = 1, shift = 0;
    for (int r = 0; r < REGIONS; r++) {
        scale = r % 7 + 1;
        shift = 3 * r;
        #pragma omp parallel for schedule(static) shared(scale, shift)
        for (int i = 0; i < N; i++) out[i] += scale * i + shift;
    }
    long sum = 0;
    for (int i = 0; i < N; i++) sum += out[i] * (i % 13 + 1);
    printf("fork args: %d regions, checksum %ld\n", REGIONS, sum);
    free(out);
    return 0;
}
