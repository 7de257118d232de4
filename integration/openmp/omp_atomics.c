// The atomic construct on int, long and double: update (x++, ++x, x--,
// x += expr, x -= expr, x *= , x |= ...), capture (tickets handed out once
// each), read and write.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define N 2000

static int gi;
static long gl;
static double gd;

int main(void) {
    int ii = 0, idec = 10000;
    long ll = 0, lmul = 1, lor = 0, land = -1, lxor = 0;
    double dd = 0, dsub = 100000.0;
    #pragma omp parallel for
    for (int i = 0; i < N; i++) {
        #pragma omp atomic
        ii++;
        #pragma omp atomic update
        idec--;
        #pragma omp atomic
        ll += (long)i * i;
        #pragma omp atomic
        dd += i * 0.5;
        #pragma omp atomic update
        dsub -= 2.0;
        if (i % 200 == 0) {
            #pragma omp atomic
            lmul *= 2;
        }
        #pragma omp atomic
        lor |= 1L << (i % 50);
        #pragma omp atomic
        land &= ~(1L << (i % 40));
        #pragma omp atomic
        lxor ^= (long)i * 40503;
        #pragma omp atomic
        ++gi;
        #pragma omp atomic
        gl += 3;
        #pragma omp atomic
        gd += 0.25;
    }
    printf("update: int %d %d long %ld %ld %ld %ld %ld double %.1f %.1f\n", ii, idec, ll, lmul, lor,
           land, lxor, dd, dsub);
    printf("update globals: %d %ld %.2f\n", gi, gl, gd);

    // Capture: every iteration takes a ticket; each ticket is taken exactly once.
    int next = 0;
    long lnext = 100;
    double dnext = 0;
    int *taken = calloc(N, sizeof *taken);
    int *ltaken = calloc(N, sizeof *ltaken);
    int *dtaken = calloc(N, sizeof *dtaken);
    #pragma omp parallel for schedule(dynamic, 3)
    for (int i = 0; i < N; i++) {
        int t;
        long lt;
        double dt;
        #pragma omp atomic capture
        t = next++;
        #pragma omp atomic capture
        { lt = lnext; lnext += 1; }
        #pragma omp atomic capture
        { dnext += 1.0; dt = dnext; }
        #pragma omp atomic
        taken[t]++;
        #pragma omp atomic
        ltaken[lt - 100]++;
        #pragma omp atomic
        dtaken[(int)dt - 1]++;
    }
    int once = 1;
    for (int i = 0; i < N; i++)
        if (taken[i] != 1 || ltaken[i] != 1 || dtaken[i] != 1) once = 0;
    printf("capture: next %d %ld %.0f each ticket once %s\n", next, lnext, dnext, once ? "yes" : "no");

    // Read and write: writers store values from a known set; readers see only those.
    int flag = 7;
    long lval = 1L << 40;
    double dval = 1.5;
    int odd = 0;
    #pragma omp parallel for reduction(+ : odd)
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) {
            #pragma omp atomic write
            flag = 7 + (i % 2) * 2;
            #pragma omp atomic write
            lval = (1L << 40) + (i % 2);
            #pragma omp atomic write
            dval = 1.5 + (i % 2);
        } else {
            int f;
            long l;
            double d;
            #pragma omp atomic read
            f = flag;
            #pragma omp atomic read
            l = lval;
            #pragma omp atomic read
            d = dval;
            if ((f != 7 && f != 9) || (l >> 40) != 1 || (d != 1.5 && d != 2.5)) odd++;
        }
    }
    // The last writes: whichever thread wrote last, the value is from the set.
    int fin;
    #pragma omp atomic read
    fin = flag;
    printf("read/write: torn or foreign values %d, final flag from the set %s\n", odd,
           fin == 7 || fin == 9 ? "yes" : "no");

    // Atomics on a plain region: each thread adds its share of 0..N-1.
    long share = 0;
    #pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int i = t; i < N; i += nt) {
            #pragma omp atomic
            share += i;
        }
    }
    printf("region atomics: %ld\n", share);
    free(taken);
    free(ltaken);
    free(dtaken);
    return 0;
}
