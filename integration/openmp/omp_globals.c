// Where shared data lives: file-scope statics, function-local statics, an
// extern global defined in this file, a large global array (several pages),
// stack variables of main captured by reference (an array and a struct),
// and heap data reached through a pointer, all updated in parallel.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define BIG (1 << 20)

extern long ext_total;
long ext_total;
static int file_static[64];
static long big[BIG];
int zeroed_global[256];
double initialised_global[4] = {1.0, 2.0, 3.0, 4.0};

struct stats { long count; long sum; int max; char tag[8]; };

static int bump(void) {
    static int calls;
    int mine;
    #pragma omp atomic capture
    mine = ++calls;
    return mine;
}

int main(void) {
    // Large global array: each element written once by whichever thread owns it.
    #pragma omp parallel for schedule(static, 4096)
    for (long i = 0; i < BIG; i++) big[i] = i % 1000 + 1;
    long bsum = 0;
    #pragma omp parallel for reduction(+ : bsum)
    for (long i = 0; i < BIG; i += 3) bsum += big[i];
    printf("big global: %ld\n", bsum);

    // File-scope static array and extern global.
    #pragma omp parallel for
    for (int i = 0; i < 6400; i++) {
        #pragma omp atomic
        file_static[i % 64] += i;
        #pragma omp atomic
        ext_total += i % 10;
    }
    long fsum = 0;
    for (int i = 0; i < 64; i++) fsum += file_static[i] * (i + 1);
    printf("file static: %ld, extern global: %ld\n", fsum, ext_total);

    // Function-local static through a function called from every iteration.
    int maxcall = 0;
    #pragma omp parallel for reduction(max : maxcall)
    for (int i = 0; i < 500; i++) {
        int c = bump();
        if (c > maxcall) maxcall = c;
    }
    printf("function static: %d calls\n", maxcall);

    // Initialised and zeroed globals.
    #pragma omp parallel for
    for (int i = 0; i < 256; i++) zeroed_global[i] = i * (int)initialised_global[i % 4];
    long zsum = 0;
    for (int i = 0; i < 256; i++) zsum += zeroed_global[i];
    printf("globals: %ld\n", zsum);

    // main's stack: an array and a struct, shared by reference.
    int local[1000];
    struct stats st = {0, 0, -1, "none"};
    #pragma omp parallel for
    for (int i = 0; i < 1000; i++) local[i] = 1000 - i;
    #pragma omp parallel for
    for (int i = 0; i < 1000; i++) {
        #pragma omp critical
        {
            st.count++;
            st.sum += local[i];
            if (local[i] > st.max) st.max = local[i];
        }
    }
    #pragma omp parallel
    {
        #pragma omp single
        { st.tag[0] = 'd'; st.tag[1] = 'o'; st.tag[2] = 'n'; st.tag[3] = 'e'; }
    }
    printf("stack: local[0] %d local[999] %d, struct count %ld sum %ld max %d tag %s\n", local[0],
           local[999], st.count, st.sum, st.max, st.tag);

    // A pointer to a stack variable passed into the region.
    long acc = 0;
    long *accp = &acc;
    #pragma omp parallel for
    for (int i = 0; i < 300; i++) {
        #pragma omp atomic
        *accp += i;
    }
    printf("through a pointer: %ld\n", acc);

    // Heap: an array of structs and an array of pointers to rows.
    struct stats *hs = calloc(32, sizeof *hs);
    long **rows = malloc(32 * sizeof *rows);
    for (int r = 0; r < 32; r++) rows[r] = calloc(257, sizeof **rows);
    #pragma omp parallel for collapse(2)
    for (int r = 0; r < 32; r++)
        for (int c = 0; c < 257; c++) rows[r][c] = r * 1000 + c;
    #pragma omp parallel for schedule(dynamic)
    for (int r = 0; r < 32; r++) {
        for (int c = 0; c < 257; c++) { hs[r].count++; hs[r].sum += rows[r][c]; }
        hs[r].max = (int)rows[r][256];
    }
    long hsum = 0, hmax = 0;
    for (int r = 0; r < 32; r++) { hsum += hs[r].sum + hs[r].count; hmax += hs[r].max; }
    printf("heap: %ld %ld\n", hsum, hmax);
    for (int r = 0; r < 32; r++) free(rows[r]);
    free(rows);
    free(hs);
    return 0;
}
