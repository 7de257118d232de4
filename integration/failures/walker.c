// Walks a 64 MiB heap array (pages spread over every node) until killed,
// announcing on stdout when it has started.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
    size_t n = (64u << 20) / sizeof(long);
    long *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i += 512) a[i] = (long)i;
    printf("walking\n");
    fflush(stdout);
    long sum = 0;
    for (int round = 0; round < 100000; round++) {
        for (size_t i = 0; i < n; i += 512) sum += a[i];
        usleep(1000);
    }
    printf("%ld\n", sum);
    return 0;
}
