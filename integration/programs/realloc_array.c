// An array grown by realloc from 1 to 1.5M elements, shrunk again; its
// contents must survive every move.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    size_t cap = 1, len = 0;
    int *a = malloc(cap * sizeof *a);
    for (int i = 0; i < 1500000; i++) {
        if (len == cap) { cap = cap * 3 / 2 + 1; a = realloc(a, cap * sizeof *a); }
        a[len++] = i ^ (i >> 3);
    }
    long long sum = 0;
    for (size_t i = 0; i < len; i++) sum += a[i];
    printf("len %zu cap %zu sum %lld\n", len, cap, sum);
    a = realloc(a, 1000 * sizeof *a);
    sum = 0;
    for (int i = 0; i < 1000; i++) sum += a[i];
    printf("after shrink %lld\n", sum);
    int *b = calloc(5000, sizeof *b);
    memcpy(b, a, 1000 * sizeof *a);
    memset(b + 1000, 0x11, 4000 * sizeof *b);
    sum = 0;
    for (int i = 0; i < 5000; i++) sum += b[i];
    printf("copy and fill %lld\n", sum);
    void *aligned = aligned_alloc(4096, 8192);
    printf("aligned %d\n", (int)((size_t)aligned % 4096));
    free(aligned);
    free(a);
    free(b);
    return 0;
}
