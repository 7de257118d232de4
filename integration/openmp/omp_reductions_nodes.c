// Reductions whose parts come from every node: variables of several sizes
// and types in one clause list (char, short, int, long, float, double, a
// struct with a user-defined reduction, arrays), every operator, nowait
// reductions back to back (more bytes than node 0 keeps for one barrier
// interval), reductions in a loop of many regions each feeding the next,
// teams where some node has no thread or two, an orphaned reduction into
// a global that every thread reads after the barrier, and shapes loco-pass
// cannot size (a VLA section, an array too large to send in one message)
// that take the lock instead. Floating-point values are integers, halves or
// powers of two only, so no combining order changes a printed digit.
#include <omp.h>
#include <stdio.h>
#include <string.h>

#define N 1000

struct stats {
    long count;
    long sum;
    int lo, hi;
    double total;
    char tag[5];
};

static void stats_merge(struct stats *out, const struct stats *in) {
    out->count += in->count;
    out->sum += in->sum;
    if (in->lo < out->lo) out->lo = in->lo;
    if (in->hi > out->hi) out->hi = in->hi;
    out->total += in->total;
    for (int k = 0; k < 5; k++) out->tag[k] ^= in->tag[k];
}

#pragma omp declare reduction(merge : struct stats : stats_merge(&omp_out, &omp_in)) \
    initializer(omp_priv = (struct stats){0, 0, 1 << 30, -(1 << 30), 0.0, {0, 0, 0, 0, 0}})

static void mixed_types(void) {
    char c = 3;
    unsigned char uc_or = 0;
    short sh = -7;
    int i = 11, imul = 1, imn = 1 << 30, imx = -(1 << 30), iand = -1, ior = 0, ixor = 0;
    int land = 1, lor = 0, sub = 0;
    long l = 1L << 40, lmul = 1, lxor = 0, lmn = 1L << 62, lmx = -(1L << 62);
    float f = 0.5f, fmul = 1.0f, fmx = -1e30f;
    double d = 0.25, dmul = 1.0, dmn = 1e300;
    struct stats st = {0, 0, 1 << 30, -(1 << 30), 0.0, {0, 0, 0, 0, 0}};
    long hist[16];
    memset(hist, 0, sizeof hist);
    #pragma omp parallel for reduction(+ : c, sh, i, l, f, d, hist) reduction(* : imul, lmul, fmul, dmul) \
        reduction(min : imn, lmn, dmn) reduction(max : imx, lmx, fmx) reduction(& : iand) \
        reduction(| : ior, uc_or) reduction(^ : ixor, lxor) reduction(&& : land) \
        reduction(|| : lor) reduction(- : sub) reduction(merge : st)
    for (int k = 0; k < N; k++) {
        c += (char)(k % 7);
        uc_or |= (unsigned char)(1 << (k % 8));
        sh += (short)(k % 13 - 6);
        i += k;
        imul *= (k % 100 == 7) ? 3 : 1;
        imn = (k * 37) % 1009 - 500 < imn ? (k * 37) % 1009 - 500 : imn;
        imx = (k * 53) % 997 > imx ? (k * 53) % 997 : imx;
        iand &= ~(1 << (k % 31));
        ior |= 1 << (k % 19);
        ixor ^= k * 2654435761u;
        land = land && (k != N);
        lor = lor || (k == 777);
        sub -= k % 3;
        l += (long)k * 1000003L;
        lmul *= (k % 125 == 4) ? 5 : 1;
        lxor ^= (long)k * 0x9E3779B97F4A7C15L;
        long v = ((long)k * 2862933555777941757L) >> 20;
        if (v < lmn) lmn = v;
        if (v > lmx) lmx = v;
        f += (k % 4) * 0.5f;
        fmul *= (k % 200 == 0) ? 2.0f : 1.0f;
        fmx = (k % 91) * 0.5f > fmx ? (k % 91) * 0.5f : fmx;
        d += (k % 8) * 0.25;
        dmul *= (k % 250 == 1) ? 0.5 : 1.0;
        dmn = (k % 77) - 30.5 < dmn ? (k % 77) - 30.5 : dmn;
        st.count++;
        st.sum += k;
        if (k % 401 < st.lo) st.lo = k % 401;
        if (k % 409 > st.hi) st.hi = k % 409;
        st.total += (k % 5) * 0.5;
        st.tag[k % 5] ^= (char)k;
        hist[(k * k) % 16] += k;
    }
    printf("types: c %d | %u sh %d i %d * %d min %d max %d & %d | %d ^ %d && %d || %d - %d\n", c,
           uc_or, sh, i, imul, imn, imx, iand, ior, ixor, land, lor, sub);
    printf("long: + %ld * %ld ^ %ld min %ld max %ld\n", l, lmul, lxor, lmn, lmx);
    printf("float: + %.2f * %.1f max %.1f double: + %.2f * %.4f min %.1f\n", f, fmul, fmx, d, dmul,
           dmn);
    printf("struct: count %ld sum %ld lo %d hi %d total %.1f tag %d %d %d %d %d\n", st.count, st.sum,
           st.lo, st.hi, st.total, st.tag[0], st.tag[1], st.tag[2], st.tag[3], st.tag[4]);
    printf("hist:");
    for (int k = 0; k < 16; k++) printf(" %ld", hist[k]);
    printf("\n");
}

// Nowait reductions back to back inside one region, then a barrier (each
// round reduces into elements of its own: an original variable may be
// read only after a barrier). The arrays make the parts of the last three
// loops larger than what node 0 keeps for one barrier interval (the third
// waits for a barrier first). Whole arrays: clang 16 compiles the loop of
// a section of a global array, reduction(+ : big_a[:BIG]), to update the
// global itself rather than the thread's copy.
#define ROUNDS 20
#define BIG 12000
static long big_a[BIG], big_b[BIG], big_c[BIG];

static void back_to_back(void) {
    long s1[ROUNDS] = {0}, s2[ROUNDS] = {0}, s3[ROUNDS] = {0}, m1[ROUNDS] = {0};
    double d1[ROUNDS] = {0};
    #pragma omp parallel
    {
        for (int r = 0; r < ROUNDS; r++) {
            #pragma omp for reduction(+ : s1[r:1]) nowait
            for (int k = 0; k < 300; k++) s1[r] += k + r;
            #pragma omp for reduction(max : m1[r:1]) reduction(+ : d1[r:1]) nowait
            for (int k = 0; k < 300; k++) {
                if ((k * 7 + r) % 311 > m1[r]) m1[r] = (k * 7 + r) % 311;
                d1[r] += 0.5;
            }
            #pragma omp for reduction(+ : s2[r:1]) nowait
            for (int k = 0; k < 300; k++) s2[r] += (long)k * r;
            #pragma omp for reduction(^ : s3[r:1]) nowait
            for (int k = 0; k < 300; k++) s3[r] ^= (long)(k + 1) << (r % 40);
        }
        #pragma omp for reduction(+ : big_a) nowait
        for (int k = 0; k < 3 * BIG; k++) big_a[k % BIG] += k;
        #pragma omp for reduction(+ : big_b) nowait
        for (int k = 0; k < 3 * BIG; k++) big_b[(k * 7) % BIG] += 1;
        #pragma omp for reduction(+ : big_c) nowait
        for (int k = 0; k < 2 * BIG; k++) big_c[(k * 13) % BIG] += k & 3;
    }
    long t1 = 0, t2 = 0, t3 = 0, tm = 0;
    double td = 0;
    for (int r = 0; r < ROUNDS; r++) {
        t1 += s1[r] * (r + 1);
        t2 += s2[r] * (r + 1);
        t3 ^= s3[r] + r;
        tm += m1[r] * (r + 1);
        td += d1[r];
    }
    long sa = 0, sb = 0, sc = 0;
    for (int k = 0; k < BIG; k++) {
        sa += big_a[k] * (k % 5 + 1);
        sb += big_b[k] * (k % 3 + 1);
        sc += big_c[k] * (k % 7 + 1);
    }
    printf("back to back: s1 %ld m1 %ld d1 %.1f s2 %ld s3 %ld big %ld %ld %ld\n", t1, tm, td, t2,
           t3, sa, sb, sc);
}

// Many regions, each reduction's result feeding the next region.
static void many_regions(void) {
    long x = 7;
    double y = 1.0;
    int flags = 0;
    for (int it = 0; it < 200; it++) {
        long s = 0, mx = 0;
        double ds = 0;
        int any = 0;
        #pragma omp parallel for reduction(+ : s, ds) reduction(max : mx) reduction(|| : any)
        for (int k = 0; k < 64; k++) {
            long v = (x * 31 + k * (it + 1)) % 10007;
            s += v;
            if (v > mx) mx = v;
            ds += (v % 4) * 0.5;
            any = any || v == 0;
        }
        x = (s ^ mx) % 100003 + 1;
        y += ds;
        flags += any;
    }
    printf("many regions: x %ld y %.1f zeros %d\n", x, y, flags);
}

// Teams of other sizes than the default: num_threads(2) on four nodes
// leaves two nodes without a thread; num_threads(3) puts two threads on a
// node of two; num_threads(5) two on some node of four.
static void odd_teams(void) {
    for (int size = 1; size <= 5; size++) {
        long s = 0, p = 1;
        int members = 0, mn = 1 << 30;
        #pragma omp parallel num_threads(size) reduction(+ : s, members) reduction(* : p) \
            reduction(min : mn)
        {
            members += 1;
            int t = omp_get_thread_num(), n = omp_get_num_threads();
            for (int k = t; k < 100; k += n) {
                s += k * k;
                p *= (k % 25 == 3) ? 2 : 1;
                mn = (k * 29) % 83 < mn ? (k * 29) % 83 : mn;
            }
        }
        long s2 = 0, s3 = 0;
        #pragma omp parallel num_threads(size)
        {
            #pragma omp for reduction(+ : s2) nowait
            for (int k = 0; k < 500; k++) s2 += k;
            #pragma omp for reduction(+ : s3)
            for (int k = 0; k < 500; k++) s3 += 2 * k;
        }
        printf("team of %d: members %d s %ld p %ld min %d s2 %ld s3 %ld\n", size, members, s, p, mn,
               s2, s3);
    }
}

// An orphaned worksharing reduction into a global: after the loop's
// barrier every thread must read the whole result, as after an explicit
// barrier following a nowait one.
static long gsum, gsum2;

static void orphaned(int rep) {
    #pragma omp for reduction(+ : gsum)
    for (int k = 0; k < 400; k++) gsum += k + rep;
}

static void orphaned_globals(void) {
    int wrong = 0;
    gsum = 0;
    gsum2 = 0;
    #pragma omp parallel reduction(+ : wrong)
    {
        for (int rep = 0; rep < 10; rep++) {
            orphaned(rep);
            long want = 0;
            for (int r = 0; r <= rep; r++) want += 79800 + 400L * r;
            if (gsum != want) wrong++;
            #pragma omp barrier
        }
        #pragma omp for reduction(+ : gsum2) nowait
        for (int k = 0; k < 400; k++) gsum2 += 3 * k;
        #pragma omp barrier
        if (gsum2 != 3 * 79800) wrong++;
    }
    printf("orphaned: gsum %ld gsum2 %ld threads that read a stale value %d\n", gsum, gsum2, wrong);
}

// Shapes the runtime cannot send as bytes: a section of a VLA (its length
// travels in the reduction list itself) and an array larger than one
// message; both go through the reduction's lock.
#define HUGE 70000
static int huge[HUGE];

static void unsized(int n) {
    long vla[n];
    for (int k = 0; k < n; k++) vla[k] = k;
    #pragma omp parallel for reduction(+ : vla[:n])
    for (int k = 0; k < 10 * n; k++) vla[k % n] += k;
    long s = 0;
    for (int k = 0; k < n; k++) s += vla[k] * (k + 1);
    #pragma omp parallel for reduction(+ : huge)
    for (int k = 0; k < 3 * HUGE; k++) huge[(k * 11) % HUGE] += k % 5;
    long h = 0;
    for (int k = 0; k < HUGE; k++) h += (long)huge[k] * (k % 9);
    printf("unsized: vla %ld huge %ld\n", s, h);
}

int main(int argc, char **argv) {
    (void)argv;
    mixed_types();
    back_to_back();
    many_regions();
    odd_teams();
    orphaned_globals();
    unsized(37 + argc - 1);
    return 0;
}
