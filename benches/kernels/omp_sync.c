// The overhead of each OpenMP construct in microseconds, measured the way
// EPCC's syncbench defines it: a loop of R constructs, each around a short
// busy delay (DELAY_US), timed with omp_get_wtime; the overhead is that
// time divided by R, minus one delay. R doubles until a loop takes at
// least TARGET_MS; the fastest of 5 such loops is reported (the machine's
// other load only ever adds time).
//
// critical, lock and atomic: each thread runs R / M of them (M threads), so
// they are serialised R in all; dynamic: like for (M iterations, one each),
// with schedule(dynamic, 1): what claiming chunks adds to a loop.
//
// stdout: what the constructs computed (the same for any team size);
// stderr: "result NAME US us" per construct.
// Usage: omp_sync [TARGET_MS [DELAY_US [NAME...]]]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Busy-waits n iterations; the empty asm keeps the loop from being removed.
static void delay(long n) {
    for (long i = 0; i < n; i++) __asm__ volatile("");
}

static omp_lock_t lock;
static long atomic_count;
static long reduction_sum;
static long wrong;

static void t_parallel(long reps, long n) {
    for (long j = 0; j < reps; j++) {
        #pragma omp parallel firstprivate(n)
        delay(n);
    }
}

static void t_for(long reps, long n) {
    #pragma omp parallel firstprivate(reps, n)
    {
        int m = omp_get_num_threads();
        for (long j = 0; j < reps; j++) {
            #pragma omp for
            for (int i = 0; i < m; i++) delay(n);
        }
    }
}

static void t_barrier(long reps, long n) {
    #pragma omp parallel firstprivate(reps, n)
    for (long j = 0; j < reps; j++) {
        delay(n);
        #pragma omp barrier
    }
}

static void t_single(long reps, long n) {
    #pragma omp parallel firstprivate(reps, n)
    for (long j = 0; j < reps; j++) {
        #pragma omp single
        delay(n);
    }
}

static void t_critical(long reps, long n) {
    #pragma omp parallel firstprivate(reps, n)
    {
        long mine = reps / omp_get_num_threads();
        for (long j = 0; j < mine; j++) {
            #pragma omp critical
            delay(n);
        }
    }
}

static void t_lock(long reps, long n) {
    #pragma omp parallel firstprivate(reps, n)
    {
        long mine = reps / omp_get_num_threads();
        for (long j = 0; j < mine; j++) {
            omp_set_lock(&lock);
            delay(n);
            omp_unset_lock(&lock);
        }
    }
}

static void t_ordered(long reps, long n) {
    #pragma omp parallel for ordered schedule(static, 1) firstprivate(n)
    for (long j = 0; j < reps; j++) {
        #pragma omp ordered
        delay(n);
    }
}

static void t_atomic(long reps, long n) {
    (void)n;
    atomic_count = 0;
    long expected = 0;
    #pragma omp parallel firstprivate(reps)
    {
        long mine = reps / omp_get_num_threads();
        #pragma omp single
        expected = mine * omp_get_num_threads();
        for (long j = 0; j < mine; j++) {
            #pragma omp atomic
            atomic_count += 1;
        }
    }
    if (atomic_count != expected) wrong++;
}

static void t_reduction(long reps, long n) {
    long m = 0;
    for (long j = 0; j < reps; j++) {
        long s = 0;
        #pragma omp parallel reduction(+ : s) firstprivate(n)
        {
            delay(n);
            s += 1;
        }
        reduction_sum += s;
        m = s;
    }
    if (reduction_sum != reps * m) wrong++;
    reduction_sum = 0;
}

static void t_dynamic(long reps, long n) {
    #pragma omp parallel firstprivate(reps, n)
    {
        int m = omp_get_num_threads();
        for (long j = 0; j < reps; j++) {
            #pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < m; i++) delay(n);
        }
    }
}

struct test {
    const char *name;
    void (*run)(long reps, long n);
    int delayed; // whether each construct includes one delay
};

static const struct test tests[] = {
    {"parallel", t_parallel, 1}, {"for", t_for, 1},           {"barrier", t_barrier, 1},
    {"single", t_single, 1},     {"critical", t_critical, 1}, {"lock", t_lock, 1},
    {"ordered", t_ordered, 1},   {"atomic", t_atomic, 0},     {"reduction", t_reduction, 1},
    {"dynamic", t_dynamic, 1},
};

static int by_time(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    double target = (argc > 1 ? atof(argv[1]) : 20.0) * 1e-3;
    double delay_us = argc > 2 ? atof(argv[2]) : 0.1;
    omp_init_lock(&lock);
    // Iterations of delay() that take delay_us.
    long calib = 10000000;
    double t0 = omp_get_wtime();
    delay(calib);
    double per_iter = (omp_get_wtime() - t0) / calib;
    long n = (long)(delay_us * 1e-6 / per_iter);
    t0 = omp_get_wtime();
    delay(n * 1000);
    double delay_s = (omp_get_wtime() - t0) / 1000;
    for (size_t k = 0; k < sizeof tests / sizeof tests[0]; k++) {
        const struct test *t = &tests[k];
        int wanted = argc <= 3;
        for (int a = 3; a < argc; a++) wanted |= strcmp(argv[a], t->name) == 0;
        if (!wanted) continue;
        long reps = 8;
        for (;;) {
            double s = omp_get_wtime();
            t->run(reps, n);
            if (omp_get_wtime() - s >= target || reps >= (1L << 26)) break;
            reps *= 2;
        }
        double times[5];
        for (int r = 0; r < 5; r++) {
            double s = omp_get_wtime();
            t->run(reps, n);
            times[r] = omp_get_wtime() - s;
        }
        qsort(times, 5, sizeof times[0], by_time);
        double us = (times[0] / reps - (t->delayed ? delay_s : 0)) * 1e6;
        printf("%s %s\n", t->name, wrong ? "WRONG" : "ok");
        fprintf(stderr, "result %s %.3f us\n", t->name, us);
        wrong = 0;
    }
    omp_destroy_lock(&lock);
    return 0;
}
