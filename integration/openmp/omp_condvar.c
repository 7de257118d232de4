// pthread condition variables with pthread mutexes in shared memory,
// between team threads that may be on different nodes: a bounded
// producer/consumer queue (in the heap) guarded by a mutex and two
// condition variables, a broadcast that must wake every waiter, and timed
// waits that time out (CLOCK_REALTIME and CLOCK_MONOTONIC). Half the team
// produces and half consumes; a team of one does both in turn.
#define _GNU_SOURCE  // pthread_cond_clockwait
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CAP = 4, ITEMS = 600 };

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    long items[CAP];
    int head, count, produced, consumed;
};

static void put(struct queue *q, long v) {
    pthread_mutex_lock(&q->lock);
    while (q->count == CAP) pthread_cond_wait(&q->not_full, &q->lock);
    q->items[(q->head + q->count) % CAP] = v;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

// Takes an item into *v; 0 once every item has been consumed.
static int take(struct queue *q, long *v) {
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && q->consumed < ITEMS) pthread_cond_wait(&q->not_empty, &q->lock);
    if (q->consumed == ITEMS) {
        // Wake the other consumers so that they see it too.
        pthread_cond_broadcast(&q->not_empty);
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    *v = q->items[q->head];
    q->head = (q->head + 1) % CAP;
    q->count--;
    q->consumed++;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return 1;
}

// Claims the next item to produce (1..ITEMS); 0 when all are claimed.
static long claim(struct queue *q) {
    pthread_mutex_lock(&q->lock);
    long v = q->produced < ITEMS ? ++q->produced : 0;
    pthread_mutex_unlock(&q->lock);
    return v;
}

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_open = PTHREAD_COND_INITIALIZER;
static pthread_cond_t gate_arrived = PTHREAD_COND_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_cond_t never_monotonic;
static int arrived, open_gate, woken;

static void deadline(clockid_t clock, struct timespec *t, long ms) {
    clock_gettime(clock, t);
    t->tv_nsec += ms * 1000000;
    t->tv_sec += t->tv_nsec / 1000000000;
    t->tv_nsec %= 1000000000;
}

int main(void) {
    struct queue *q = calloc(1, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&never_monotonic, &attr);
    pthread_condattr_destroy(&attr);

    long total = 0, taken = 0;
    int timeouts = 0, all_woken = 0;
    #pragma omp parallel reduction(+ : total, taken)
    {
        int me = omp_get_thread_num(), n = omp_get_num_threads();
        if (n == 1) {
            long v;
            for (long i = 1; i <= ITEMS; i++) {
                put(q, i);
                q->produced++;
                if (q->count == CAP)
                    while (q->count > 0 && take(q, &v)) total += v, taken++;
            }
            while (q->count > 0 && take(q, &v)) total += v, taken++;
        } else if (me < n / 2) {
            for (long v; (v = claim(q)) != 0;) put(q, v);
        } else {
            for (long v; take(q, &v);) total += v, taken++;
        }

        // Every thread but 0 waits at the gate; 0 opens it for all at once.
        #pragma omp barrier
        pthread_mutex_lock(&gate_lock);
        if (me == 0) {
            while (arrived < n - 1) pthread_cond_wait(&gate_arrived, &gate_lock);
            open_gate = 1;
            pthread_cond_broadcast(&gate_open);
        } else {
            arrived++;
            pthread_cond_signal(&gate_arrived);
            while (!open_gate) pthread_cond_wait(&gate_open, &gate_lock);
            woken++;
        }
        pthread_mutex_unlock(&gate_lock);
        #pragma omp barrier
        #pragma omp single
        all_woken = woken == n - 1;

        // Nobody signals these: each wait ends at its deadline.
        #pragma omp master
        {
            struct timespec t;
            pthread_mutex_lock(&gate_lock);
            deadline(CLOCK_REALTIME, &t, 30);
            int r1 = pthread_cond_timedwait(&never, &gate_lock, &t);
            deadline(CLOCK_MONOTONIC, &t, 30);
            int r2 = pthread_cond_timedwait(&never_monotonic, &gate_lock, &t);
            deadline(CLOCK_MONOTONIC, &t, 30);
            int r3 = pthread_cond_clockwait(&never, &gate_lock, CLOCK_MONOTONIC, &t);
            // A deadline in the past, and the mutex is held again after each.
            int r4 = pthread_cond_timedwait(&never, &gate_lock, &(struct timespec){0, 0});
            timeouts = (r1 == ETIMEDOUT) + (r2 == ETIMEDOUT) + (r3 == ETIMEDOUT) +
                       (r4 == ETIMEDOUT) + (pthread_mutex_trylock(&gate_lock) != 0);
            pthread_mutex_unlock(&gate_lock);
        }
    }
    printf("consumed %ld items, sum %ld (expected %ld), queue left %d\n", taken, total,
           (long)ITEMS * (ITEMS + 1) / 2, q->count);
    printf("broadcast woke every waiter: %s\n", all_woken ? "yes" : "no");
    printf("timed waits that timed out: %d of 5\n", timeouts);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->lock);
    free(q);
    return 0;
}
