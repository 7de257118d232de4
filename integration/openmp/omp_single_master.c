// single (one thread runs it, the others wait at its implicit barrier and
// then see what it wrote), single nowait, master and masked
// (the primary thread only, no barrier: an explicit one follows).
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    // single: run once per encounter, and its writes are visible after its barrier.
    int runs = 0, late = 0;
    long value = 0;
    #pragma omp parallel
    {
        for (int round = 1; round <= 10; round++) {
            #pragma omp single
            {
                value = value * 3 + round;
                runs++;
            }
            // Everyone reads the single's result after its implicit barrier.
            long expect = 0;
            for (int r = 1; r <= round; r++) expect = expect * 3 + r;
            if (value != expect) {
                #pragma omp atomic
                late++;
            }
            #pragma omp barrier
        }
    }
    printf("single: runs %d value %ld stale reads %d\n", runs, value, late);

    // single nowait: each of several singles runs once; a barrier before reading.
    int a = 0, b = 0, c = 0;
    #pragma omp parallel
    {
        #pragma omp single nowait
        a += 1;
        #pragma omp single nowait
        b += 2;
        #pragma omp single nowait
        c += 3;
        #pragma omp barrier
        #pragma omp single
        { a *= 10; b *= 10; c *= 10; }
    }
    printf("single nowait: %d %d %d\n", a, b, c);

    // master and masked: only thread 0 runs them.
    int master_runs = 0, masked_runs = 0, master_tid = -1, masked_tid = -1;
    int filtered_runs = 0, team = 0;
    long *shared = calloc(16, sizeof *shared);
    #pragma omp parallel
    {
        #pragma omp master
        {
            master_runs++;
            master_tid = omp_get_thread_num();
            team = omp_get_num_threads();
            for (int i = 0; i < 16; i++) shared[i] = i * i;
        }
        #pragma omp barrier
        #pragma omp masked
        {
            masked_runs++;
            masked_tid = omp_get_thread_num();
        }
        // filter(1): thread 1 runs it, if the team has one.
        #pragma omp masked filter(1)
        filtered_runs++;
        #pragma omp barrier
    }
    long s = 0;
    for (int i = 0; i < 16; i++) s += shared[i];
    printf("master: runs %d tid %d; masked: runs %d tid %d; filter(1) ran %s; data %ld\n",
           master_runs, master_tid, masked_runs, masked_tid,
           filtered_runs == (team > 1 ? 1 : 0) ? "as expected" : "WRONG", s);

    // single + barrier as a pipeline: single produces, everyone consumes, barrier, repeat.
    long *buf = calloc(64, sizeof *buf);
    long consumed = 0;
    #pragma omp parallel reduction(+ : consumed)
    {
        for (int step = 0; step < 8; step++) {
            #pragma omp single
            for (int i = 0; i < 64; i++) buf[i] = step * 64 + i;
            #pragma omp for
            for (int i = 0; i < 64; i++) consumed += buf[i];
        }
    }
    printf("single + barrier pipeline: %ld\n", consumed);
    free(shared);
    free(buf);
    return 0;
}
