// Output whose order the program fixes: printf inside an ordered loop (every
// iteration in turn, whichever node runs it), and lines printed before a
// barrier by every thread in turn (a critical section passing a token)
// followed by one line printed after it.
#include <omp.h>
#include <stdio.h>

int main(void) {
    #pragma omp parallel for ordered schedule(dynamic, 3)
    for (int i = 0; i < 40; i++) {
        int sq = i * i;
        #pragma omp ordered
        printf("iteration %d: %d\n", i, sq);
    }
    int turn = 0;
    #pragma omp parallel
    {
        int me = omp_get_thread_num(), done = 0;
        while (!done) {
            #pragma omp critical
            {
                if (turn == me) {
                    printf("thread %d of %d\n", me, omp_get_num_threads());
                    turn++;
                    done = 1;
                }
            }
        }
        #pragma omp barrier
        #pragma omp single
        printf("after the barrier: %d turns\n", turn);
    }
    return 0;
}
