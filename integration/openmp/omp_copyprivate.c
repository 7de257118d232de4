// single copyprivate: one thread produces values and broadcasts them to
// every thread's private copies (scalars, a struct, an array, a pointer to
// heap data, several variables at once, in a loop, in an orphaned function,
// threadprivate variables). Every thread checks what it got; the output is
// the same for any team size.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conf { int a; long b; double c; char tag[5]; };

static int tp_counter;
#pragma omp threadprivate(tp_counter)

// Orphaned: the single binds to whichever team calls it; `value` is the
// calling thread's own local.
static long orphaned(int round) {
    long value = -1;
    double scale[3] = {0, 0, 0};
    #pragma omp single copyprivate(value, scale)
    {
        value = 1000L * round + 7;
        for (int i = 0; i < 3; i++) scale[i] = round + i * 0.5;
    }
    long ok = value == 1000L * round + 7;
    for (int i = 0; i < 3; i++) ok = ok && scale[i] == round + i * 0.5;
    return ok ? value : -1000000;
}

int main(void) {
    int mismatched = 0;
    #pragma omp parallel reduction(+ : mismatched)
    {
        int mine = -1;
        #pragma omp single copyprivate(mine)
        mine = 4242;
        if (mine != 4242) mismatched++;
    }
    printf("scalar: mismatched %d\n", mismatched);

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
            strcpy(c.tag, "abcd");
            data = malloc(100 * sizeof *data);
            for (int i = 0; i < 100; i++) data[i] = i * 3;
        }
        if (c.a != 3 || c.b != 1L << 40 || c.c != 0.75 || strcmp(c.tag, "abcd") != 0) bad++;
        #pragma omp for
        for (int i = 0; i < 100; i++) total += data[i];
        #pragma omp barrier
        #pragma omp single
        free(data);
    }
    printf("struct and pointer: mismatched %d, sum %ld\n", bad, total);

    // Several variables of every size at once, an array of 3000 ints (more
    // than a page) among them.
    bad = 0;
    long checksum = 0;
    #pragma omp parallel reduction(+ : bad) reduction(max : checksum)
    {
        char ch = 0;
        short sh = 0;
        float fl = 0;
        long double ld = 0;
        _Bool flag = 0;
        int arr[3000];
        double pair[2] = {0, 0};
        #pragma omp single copyprivate(ch, sh, fl, ld, flag, arr, pair)
        {
            ch = 'q';
            sh = -1234;
            fl = 2.5f;
            ld = 1.25L;
            flag = 1;
            for (int i = 0; i < 3000; i++) arr[i] = i * i;
            pair[0] = -1;
            pair[1] = 1e300;
        }
        long sum = 0;
        for (int i = 0; i < 3000; i++) sum += arr[i];
        if (ch != 'q' || sh != -1234 || fl != 2.5f || ld != 1.25L || !flag ||
            pair[0] != -1 || pair[1] != 1e300)
            bad++;
        checksum = sum;
    }
    printf("many variables: mismatched %d, array sum %ld\n", bad, checksum);

    // Again and again in one region: each round's value reaches everybody,
    // with and without other work in between.
    bad = 0;
    #pragma omp parallel reduction(+ : bad)
    {
        for (int round = 0; round < 20; round++) {
            int r = -1;
            long big = 0;
            #pragma omp single copyprivate(r, big)
            {
                r = round;
                big = (long)round << 33;
            }
            if (r != round || big != (long)round << 33) bad++;
            if (round % 5 == 0) {
                #pragma omp barrier
            }
        }
    }
    printf("loop: mismatched %d\n", bad);

    // Orphaned, from a parallel region and from serial code.
    bad = 0;
    long sum = 0;
    #pragma omp parallel reduction(+ : bad) reduction(max : sum)
    {
        for (int round = 1; round <= 3; round++) {
            long v = orphaned(round);
            if (v < 0) bad++;
            sum = v > sum ? v : sum;
        }
    }
    printf("orphaned: mismatched %d, last %ld, serial %ld\n", bad, sum, orphaned(9));

    // threadprivate variables broadcast from the single thread.
    bad = 0;
    #pragma omp parallel reduction(+ : bad)
    {
        tp_counter = -1;
        #pragma omp single copyprivate(tp_counter)
        tp_counter = 77;
        if (tp_counter != 77) bad++;
    }
    printf("threadprivate: mismatched %d\n", bad);
    return 0;
}
