// Volatile objects across nodes: OpenMP reads a volatile object as if a
// flush of it came first and writes one as if a flush came after, so a
// spin-wait on a volatile flag set by a thread on another node ends
// (libomp's own tests rely on it). A ping-pong between the first and the
// last thread, a hand-rolled counter barrier (atomic increments, volatile
// spin), and a flag whose page other threads keep writing meanwhile.
#include <omp.h>
#include <stdio.h>

#define ROUNDS 40
volatile int ping, pong;
volatile long message;
volatile int arrived;
int neighbours[64 * 64]; /* near the flags: written while they spin */

int main(void) {
    int bad = 0;
    long exchanged = 0;
    #pragma omp parallel reduction(+ : bad, exchanged)
    {
        int me = omp_get_thread_num(), n = omp_get_num_threads();
        if (n > 1 && me == 0) {
            for (int round = 1; round <= ROUNDS; round++) {
                message = 1000L * round;
                ping = round;
                while (pong != round)
                    ;
                exchanged += message;
            }
        } else if (n > 1 && me == n - 1) {
            for (int round = 1; round <= ROUNDS; round++) {
                while (ping != round)
                    ;
                if (message != 1000L * round) bad++;
                message = 1000L * round + 1;
                pong = round;
            }
        } else if (n == 1) {
            for (int round = 1; round <= ROUNDS; round++) exchanged += 1000L * round + 1;
        } else {
            for (int i = 0; i < 2000; i++) neighbours[me * 64 + i % 64] += 1;
        }

        // Every thread arrives, then spins until all have.
        #pragma omp atomic
        arrived++;
        while (arrived < n)
            ;
    }
    printf("volatile ping-pong: %d bad, exchanged %ld, arrived %d\n", bad, exchanged, arrived);
    return 0;
}
