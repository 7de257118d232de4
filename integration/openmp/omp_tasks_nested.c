// Tasks that create tasks and wait for them inside a task: EPCC taskbench's
// "NESTED TASK" (every thread creates tasks, each creating untied children
// and then waiting for them) and "NESTED MASTER TASK" (the same from the
// master only), a deeper recursion with taskwait at every level, tasks
// creating tasks while the other threads wait (and help) at a barrier,
// untied tasks that stop at taskwait, taskyield and task creation, and a
// task waiting for its child inside a critical section. An untied task's
// body hands itself back to the runtime at every task scheduling point, so
// these cover the runtime resuming it.
// (Not here, because clang-16's libomp, the native reference, fails them:
// an untied if(0) task that creates tasks trips an assertion, and untied
// tasks that recurse, each waiting for untied children, sometimes hang.)
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

enum { OUTER = 96, INNER = 8 };

static void delay(int n) {
    volatile int x = 0;
    for (int i = 0; i < n; i++) x += i;
}

static long value(long j, long i) { return j * 1000 + i * 7 + 1; }

// A tree of 3^depth leaves; every level waits for its children inside a
// task; one leaf in three is untied.
static long tree(int depth, long id) {
    if (depth == 0) {
        delay(50);
        return id % 97;
    }
    long part[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        if (k == 1 && depth == 1) {
            #pragma omp task untied shared(part) firstprivate(depth, id, k)
            part[k] = tree(depth - 1, id * 3 + k);
        } else {
            #pragma omp task shared(part) firstprivate(depth, id, k)
            part[k] = tree(depth - 1, id * 3 + k);
        }
    }
    #pragma omp taskwait
    return part[0] + part[1] + part[2] + depth;
}

static long fib(int n) {
    if (n < 2) return n;
    long a, b;
    #pragma omp task shared(a) firstprivate(n)
    a = fib(n - 1);
    #pragma omp task shared(b) firstprivate(n)
    b = fib(n - 2);
    #pragma omp taskwait
    return a + b;
}

int main(void) {
    long *cells = calloc(OUTER * INNER, sizeof *cells);
    long *sums = calloc(OUTER, sizeof *sums);
    long *msums = calloc(OUTER, sizeof *msums);
    long bad = 0, trees = 0, f = 0, helped = 0, untied = 0, locked = 0;

    // NESTED TASK: each thread creates its share of the outer tasks.
    #pragma omp parallel
    {
        int me = omp_get_thread_num(), n = omp_get_num_threads();
        for (int j = me; j < OUTER; j += n) {
            #pragma omp task firstprivate(j)
            {
                for (int i = 0; i < INNER; i++) {
                    #pragma omp task untied firstprivate(i, j)
                    {
                        delay(200);
                        cells[j * INNER + i] = value(j, i);
                    }
                }
                #pragma omp taskwait
                long s = 0;
                for (int i = 0; i < INNER; i++) s += cells[j * INNER + i];
                sums[j] = s;
            }
        }
    }
    long nested = 0;
    for (int j = 0; j < OUTER; j++) {
        long want = 0;
        for (int i = 0; i < INNER; i++) want += value(j, i);
        if (sums[j] != want) bad++;
        nested += sums[j];
    }

    // NESTED MASTER TASK: only the master creates the outer tasks.
    #pragma omp parallel
    {
        #pragma omp master
        {
            for (int j = 0; j < OUTER; j++) {
                #pragma omp task firstprivate(j)
                {
                    long part[INNER];
                    for (int i = 0; i < INNER; i++) {
                        #pragma omp task untied shared(part) firstprivate(i, j)
                        {
                            delay(200);
                            part[i] = value(j, i) * 2;
                        }
                    }
                    #pragma omp taskwait
                    long s = 0;
                    for (int i = 0; i < INNER; i++) s += part[i];
                    msums[j] = s;
                }
            }
        }
    }
    long master = 0;
    for (int j = 0; j < OUTER; j++) master += msums[j];

    // Deeper recursion, started by one thread; fib with untied tasks.
    #pragma omp parallel
    {
        #pragma omp single
        trees = tree(6, 1);
        #pragma omp single
        f = fib(18);
    }

    // One thread creates task trees and leaves them to the others, which
    // are already waiting at the barrier (a task scheduling point).
    #pragma omp parallel
    {
        #pragma omp single nowait
        {
            for (int j = 0; j < 24; j++) {
                #pragma omp task firstprivate(j)
                {
                    long got = 0;
                    for (int i = 0; i < 4; i++) {
                        #pragma omp task untied shared(got) firstprivate(i, j)
                        {
                            long t = tree(2, j * 4 + i);
                            #pragma omp atomic
                            got += t;
                        }
                    }
                    #pragma omp taskwait
                    #pragma omp atomic
                    helped += got;
                }
            }
        }
        #pragma omp barrier
    }

    // Untied tasks stopping at taskwait, taskyield and around an if(0) task.
    #pragma omp parallel
    {
        #pragma omp single
        {
            for (int j = 0; j < 16; j++) {
                #pragma omp task untied firstprivate(j)
                {
                    long local = j;
                    #pragma omp task shared(local) firstprivate(j)
                    local += j * 10;
                    #pragma omp taskwait
                    #pragma omp taskyield
                    long inner = 0;
                    #pragma omp task if (j % 2) shared(inner) firstprivate(j)
                    {
                        #pragma omp task shared(inner) firstprivate(j)
                        inner = j * 100;
                        #pragma omp taskwait
                    }
                    #pragma omp taskwait
                    #pragma omp atomic
                    untied += local + inner;
                }
            }
        }
    }

    // A task waiting for its child inside a critical section: while it
    // waits, its thread may run only its descendants, never a sibling that
    // would block on the same critical section held by that thread.
    #pragma omp parallel
    {
        #pragma omp single
        {
            for (int j = 0; j < 32; j++) {
                #pragma omp task firstprivate(j)
                {
                    #pragma omp critical(nested_wait)
                    {
                        long v = 0;
                        #pragma omp task shared(v) firstprivate(j)
                        v = j + 1;
                        #pragma omp taskwait
                        locked += v;
                    }
                }
            }
        }
    }

    printf("nested %ld bad %ld master %ld tree %ld fib %ld helped %ld untied %ld locked %ld\n",
           nested, bad, master, trees, f, helped, untied, locked);
    free(cells);
    free(sums);
    free(msums);
    return 0;
}
