// flush with a flag handshake between two threads: the producer writes the
// data, flushes, sets the flag; the consumer spins on the flag, flushes,
// and then must see the data. Repeated in both directions.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 20

int main(void) {
    long *data = calloc(256, sizeof *data);
    int flag = 0, ack = 0, team = 0;
    long seen[ROUNDS];
    #pragma omp parallel num_threads(2) shared(flag, ack, data, seen, team)
    {
        int t = omp_get_thread_num();
        #pragma omp single
        team = omp_get_num_threads();
        if (team == 2) {
            for (int r = 1; r <= ROUNDS; r++) {
                if (t == 0) {
                    for (int i = 0; i < 256; i++) data[i] = (long)r * 1000 + i;
                    #pragma omp flush
                    #pragma omp atomic write
                    flag = r;
                    #pragma omp flush
                    // Wait for the consumer's acknowledgement before the next round.
                    int a;
                    do {
                        #pragma omp flush
                        #pragma omp atomic read
                        a = ack;
                    } while (a != r);
                    #pragma omp flush
                } else {
                    int f;
                    do {
                        #pragma omp flush
                        #pragma omp atomic read
                        f = flag;
                    } while (f != r);
                    #pragma omp flush
                    long s = 0;
                    for (int i = 0; i < 256; i++) s += data[i];
                    seen[r - 1] = s;
                    #pragma omp flush
                    #pragma omp atomic write
                    ack = r;
                    #pragma omp flush
                }
            }
        }
    }
    if (team != 2) {
        printf("team of %d, not 2\n", team);
        return 1;
    }
    int right = 1;
    for (int r = 1; r <= ROUNDS; r++) {
        long expect = (long)r * 1000 * 256 + 255 * 256 / 2;
        if (seen[r - 1] != expect) right = 0;
    }
    printf("handshake: %d rounds, consumer saw every round's data %s, last %ld\n", ROUNDS,
           right ? "yes" : "NO", seen[ROUNDS - 1]);

    // A flag handshake on a plain region of the default size: thread 0 publishes, all wait.
    int ready = 0, missing = 0;
    long payload = 0;
    #pragma omp parallel shared(ready, payload) reduction(+ : missing)
    {
        if (omp_get_thread_num() == 0) {
            payload = 987654321;
            #pragma omp flush
            #pragma omp atomic write
            ready = 1;
            #pragma omp flush
        } else {
            int r;
            do {
                #pragma omp flush
                #pragma omp atomic read
                r = ready;
            } while (!r);
            #pragma omp flush
            if (payload != 987654321) missing++;
        }
    }
    printf("broadcast: payload %ld, threads that missed it %d\n", payload, missing);
    free(data);
    return 0;
}
