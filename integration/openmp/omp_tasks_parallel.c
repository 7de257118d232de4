// Tasks run by the threads of the node that creates them: a producer in a
// single region with the others picking tasks up at the barrier, every
// thread creating tasks, recursive tasks with taskwait, taskgroup waiting
// for descendants, tasks with dependences, final tasks, and if(0) tasks.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static long fib(int n) {
    if (n < 2) return n;
    long a, b;
    #pragma omp task shared(a) if (n > 12)
    a = fib(n - 1);
    #pragma omp task shared(b) if (n > 12)
    b = fib(n - 2);
    #pragma omp taskwait
    return a + b;
}

int main(void) {
    enum { N = 2000 };
    long *cells = calloc(N, sizeof *cells);
    long f = 0, grouped = 0, chain = 1, finals = 0;
    #pragma omp parallel
    {
        #pragma omp single
        {
            for (int i = 0; i < N; i++) {
                #pragma omp task firstprivate(i)
                cells[i] = (long)i * i;
            }
        }
        // Every thread creates tasks too; the barrier waits for all of them.
        int me = omp_get_thread_num();
        for (int k = 0; k < 50; k++) {
            #pragma omp task firstprivate(k, me)
            {
                #pragma omp atomic
                cells[(me * 50 + k) % N] += 1;
            }
        }
        #pragma omp barrier
        #pragma omp single
        f = fib(22);
        #pragma omp single
        {
            #pragma omp taskgroup
            {
                for (int i = 0; i < 20; i++) {
                    #pragma omp task firstprivate(i)
                    {
                        #pragma omp task firstprivate(i)
                        {
                            #pragma omp atomic
                            grouped += i;
                        }
                    }
                }
            }
            // Every task of the group, grandchildren too, is done here.
            grouped *= 2;
        }
        #pragma omp single
        {
            for (int i = 1; i <= 10; i++) {
                #pragma omp task depend(inout : chain) firstprivate(i)
                chain = chain * 3 + i;
            }
            #pragma omp taskwait
            #pragma omp task final(1)
            {
                for (int i = 0; i < 10; i++) {
                    #pragma omp task firstprivate(i)
                    {
                        #pragma omp atomic
                        finals += i;
                    }
                }
            }
            #pragma omp task if (0)
            finals += 1000;
        }
    }
    long sum = 0;
    for (int i = 0; i < N; i++) sum += cells[i];
    printf("cells %ld fib %ld grouped %ld chain %ld finals %ld\n", sum, f, grouped, chain, finals);
    free(cells);
    return 0;
}
