// Reductions with every operator (+ * - & | ^ && || max min) on int, long
// and double, on a parallel for and on a plain parallel region (each thread
// taking a stride of the iterations). Doubles hold integers or powers of two
// only, so no combining order can change a printed digit.
#include <omp.h>
#include <stdio.h>

#define N 240

static void ints_for(void) {
    int add = 0, mul = 1, sub = 1000, band = -1, bor = 0, bxor = 0, land = 1, lor = 0;
    int land2 = 1, lor2 = 0, mx = -1000000, mn = 1000000;
    #pragma omp parallel for reduction(+ : add) reduction(* : mul) reduction(- : sub) \
        reduction(& : band) reduction(| : bor) reduction(^ : bxor) reduction(&& : land, land2) \
        reduction(|| : lor, lor2) reduction(max : mx) reduction(min : mn)
    for (int i = 0; i < N; i++) {
        add += i;
        mul *= (i % 20 == 0) ? 2 : 1;
        sub -= i;
        band &= ~(1 << (i % 17));
        bor |= 1 << (i % 23);
        bxor ^= i * 7919;
        land = land && (i < N);
        land2 = land2 && (i != 117);
        lor = lor || (i == 200);
        lor2 = lor2 || (i > N);
        mx = (i * 37) % 101 > mx ? (i * 37) % 101 : mx;
        mn = (i * 53) % 89 - 40 < mn ? (i * 53) % 89 - 40 : mn;
    }
    printf("int for: + %d * %d - %d & %d | %d ^ %d && %d %d || %d %d max %d min %d\n",
           add, mul, sub, band, bor, bxor, land, land2, lor, lor2, mx, mn);
}

static void longs_for(void) {
    long add = 0, mul = 1, sub = 0, band = -1, bor = 0, bxor = 0, land = 1, lor = 0;
    long mx = -1, mn = 1L << 60;
    #pragma omp parallel for schedule(dynamic, 7) reduction(+ : add) reduction(* : mul) \
        reduction(- : sub) reduction(& : band) reduction(| : bor) reduction(^ : bxor) \
        reduction(&& : land) reduction(|| : lor) reduction(max : mx) reduction(min : mn)
    for (long i = 0; i < N; i++) {
        add += i * 1000000007L;
        mul *= (i % 16 == 3) ? 3 : 1;
        sub -= i * i;
        band &= ~(1L << (i % 61));
        bor |= 1L << ((i * 5) % 47);
        bxor ^= i * 0x9E3779B97F4A7C15L;
        land = land && (i % 239 != 238 || i == 238);
        lor = lor || (i == 3);
        long v = (i * 2654435761L) % 1000003;
        if (v > mx) mx = v;
        if (v < mn) mn = v;
    }
    printf("long for: + %ld * %ld - %ld & %ld | %ld ^ %ld && %ld || %ld max %ld min %ld\n",
           add, mul, sub, band, bor, bxor, land, lor, mx, mn);
}

static void doubles_for(void) {
    double add = 0, mul = 1, sub = 0.5, land = 1, lor = 0, mx = -1e300, mn = 1e300;
    #pragma omp parallel for schedule(guided) reduction(+ : add) reduction(* : mul) \
        reduction(- : sub) reduction(&& : land) reduction(|| : lor) reduction(max : mx) \
        reduction(min : mn)
    for (int i = 0; i < N; i++) {
        add += i * 0.25;
        mul *= (i % 3 == 0) ? 2.0 : (i % 3 == 1 ? 0.5 : 1.0);
        mul *= (i % 40 == 0) ? 4.0 : 1.0;
        sub -= i;
        land = land && (i + 0.5);
        lor = lor || (i == 17 ? 2.5 : 0.0);
        double v = ((i * 7) % 113) - 56.5;
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
    }
    printf("double for: + %.2f * %.1f - %.1f && %.0f || %.0f max %.1f min %.1f\n", add, mul, sub,
           land, lor, mx, mn);
}

// The same operators on a plain parallel region: thread t takes i = t, t + n, ...
static void plain_region(void) {
    int iadd = 0, imul = 1, isub = 0, iand = -1, ior = 0, ixor = 0, iland = 1, ilor = 0;
    int imx = -1, imn = 1 << 30;
    long ladd = 0, lmax = 0;
    double dadd = 0, dmul = 1, dmn = 1e9;
    #pragma omp parallel reduction(+ : iadd, ladd, dadd) reduction(* : imul, dmul) \
        reduction(- : isub) reduction(& : iand) reduction(| : ior) reduction(^ : ixor) \
        reduction(&& : iland) reduction(|| : ilor) reduction(max : imx, lmax) \
        reduction(min : imn, dmn)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int i = t; i < N; i += nt) {
            iadd += i;
            imul *= (i % 30 == 1) ? 2 : 1;
            isub -= 2 * i;
            iand &= ~(1 << (i % 9));
            ior |= 1 << (i % 29);
            ixor ^= i << 3;
            iland = iland && i >= 0;
            ilor = ilor || i == 211;
            imx = i % 50 > imx ? i % 50 : imx;
            imn = (i * 3) % 71 + 5 < imn ? (i * 3) % 71 + 5 : imn;
            ladd += (long)i << 33;
            lmax = (long)i * i > lmax ? (long)i * i : lmax;
            dadd += i * 0.125;
            dmul *= (i % 60 == 0) ? 8.0 : 1.0;
            dmn = i * 0.5 < dmn ? i * 0.5 : dmn;
        }
    }
    printf("region int: + %d * %d - %d & %d | %d ^ %d && %d || %d max %d min %d\n", iadd, imul,
           isub, iand, ior, ixor, iland, ilor, imx, imn);
    printf("region long/double: + %ld max %ld + %.3f * %.0f min %.1f\n", ladd, lmax, dadd, dmul,
           dmn);
}

int main(void) {
    ints_for();
    longs_for();
    doubles_for();
    plain_region();

    // Reductions inside an outer loop of iterations, each feeding the next.
    long x = 1;
    double d = 0;
    for (int it = 0; it < 25; it++) {
        long s = 0, m = 0;
        double ds = 0;
        #pragma omp parallel for reduction(+ : s, ds) reduction(max : m)
        for (int i = 0; i < 200; i++) {
            long v = (x + i * it) % 1009;
            s += v;
            ds += (double)(v % 8) * 0.5;
            if (v > m) m = v;
        }
        x = (s + m) % 100003;
        d += ds;
    }
    printf("iterated: x %ld d %.1f\n", x, d);

    // An array section reduction: a histogram.
    long hist[8] = {0};
    #pragma omp parallel for reduction(+ : hist[:8])
    for (int i = 0; i < 1000; i++) hist[(i * i) % 8]++;
    printf("histogram:");
    for (int k = 0; k < 8; k++) printf(" %ld", hist[k]);
    printf("\n");

    // A reduction on a worksharing loop inside a region, with nowait.
    long r1 = 0, r2 = 0;
    #pragma omp parallel
    {
        #pragma omp for reduction(+ : r1) nowait
        for (int i = 0; i < 500; i++) r1 += i;
        #pragma omp for reduction(+ : r2)
        for (int i = 0; i < 500; i++) r2 += 2 * i;
    }
    printf("in-region: %ld %ld\n", r1, r2);
    return 0;
}
