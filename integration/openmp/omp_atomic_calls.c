// libomp's atomic entry points called directly (what a compiler may emit
// for an atomic it cannot lower itself): the same results natively and
// across nodes, on shared globals and on main's variables.
#include <omp.h>
#include <stdio.h>

typedef struct ident ident_t;
extern void __kmpc_atomic_fixed4_add(ident_t *, int, int *, int);
extern void __kmpc_atomic_fixed8_mul(ident_t *, int, long long *, long long);
extern void __kmpc_atomic_fixed4_max(ident_t *, int, int *, int);
extern void __kmpc_atomic_float8_add(ident_t *, int, double *, double);
extern void __kmpc_atomic_float8_min(ident_t *, int, double *, double);
extern void __kmpc_atomic_fixed8_xor(ident_t *, int, long long *, long long);
extern int __kmpc_atomic_fixed4_rd(ident_t *, int, int *);
extern void __kmpc_atomic_fixed4_wr(ident_t *, int, int *, int);
extern void __kmpc_atomic_start(void);
extern void __kmpc_atomic_end(void);

int hits;
long long product = 1;
double sum;

int main(void) {
    int best = -1, flag = 0;
    long long bits = 0;
    double low = 1e9;
    long long pairs = 0;
    #pragma omp parallel for
    for (int i = 0; i < 400; i++) {
        __kmpc_atomic_fixed4_add(0, 0, &hits, 1);
        if (i % 100 == 7) __kmpc_atomic_fixed8_mul(0, 0, &product, 3);
        __kmpc_atomic_fixed4_max(0, 0, &best, (i * 37) % 401);
        __kmpc_atomic_float8_add(0, 0, &sum, 0.5);
        __kmpc_atomic_float8_min(0, 0, &low, 1000.0 - i);
        __kmpc_atomic_fixed8_xor(0, 0, &bits, 1LL << (i % 63));
        if (i == 399) __kmpc_atomic_fixed4_wr(0, 0, &flag, 42);
        __kmpc_atomic_start();
        pairs += 2;
        __kmpc_atomic_end();
    }
    printf("hits %d product %lld best %d sum %.1f low %.1f bits %llx flag %d pairs %lld\n", hits,
           product, best, sum, low, bits, __kmpc_atomic_fixed4_rd(0, 0, &flag), pairs);
    return 0;
}
