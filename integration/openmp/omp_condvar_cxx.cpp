// std::condition_variable with std::mutex and std::unique_lock between team
// threads that may be on different nodes (libstdc++ calls the pthread
// condition variable functions, which the runtime provides): a bounded
// producer/consumer queue, notify_all waking every waiter (on a condition
// variable in the heap), a wait_for that is notified in time, timeouts of
// wait_for and wait_until, and std::condition_variable_any. Half the team
// produces and half consumes; a team of one does both in turn.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <omp.h>

using namespace std::chrono_literals;

constexpr int CAP = 4, ITEMS = 500;

std::mutex mu;
std::condition_variable not_full, not_empty;
std::deque<long> items;
int produced, consumed;

static void put(long v) {
    std::unique_lock<std::mutex> lk(mu);
    not_full.wait(lk, [] { return items.size() < CAP; });
    items.push_back(v);
    not_empty.notify_one();
}

// Takes an item into v; false once every item has been consumed.
static bool take(long &v) {
    std::unique_lock<std::mutex> lk(mu);
    not_empty.wait(lk, [] { return !items.empty() || consumed == ITEMS; });
    if (items.empty()) {
        not_empty.notify_all();  // the other consumers see it too
        return false;
    }
    v = items.front();
    items.pop_front();
    consumed++;
    not_full.notify_one();
    return true;
}

static long claim() {
    std::lock_guard<std::mutex> g(mu);
    return produced < ITEMS ? ++produced : 0;
}

struct Gate {
    std::mutex m;
    std::condition_variable cv;
    int arrived = 0, woken = 0;
    bool open = false, pinged = false;
};

std::mutex any_mu;
std::condition_variable_any any_cv;
int any_turns;

int main() {
    Gate *gate = new Gate;
    long total = 0, taken = 0;
    int timeouts = 0, all_woken = 0, pinged = 0, any_ok = 0;
    #pragma omp parallel reduction(+ : total, taken)
    {
        int me = omp_get_thread_num(), n = omp_get_num_threads();
        long v;
        if (n == 1) {
            for (long i = 1; i <= ITEMS; i++) {
                put(i);
                produced++;
                if (items.size() == CAP)
                    while (!items.empty() && take(v)) total += v, taken++;
            }
            while (!items.empty() && take(v)) total += v, taken++;
        } else if (me < n / 2) {
            while ((v = claim()) != 0) put(v);
        } else {
            while (take(v)) total += v, taken++;
        }

        // Every thread but 0 waits at the gate; 0 opens it for all at once.
        #pragma omp barrier
        {
            std::unique_lock<std::mutex> lk(gate->m);
            if (me == 0) {
                gate->cv.wait(lk, [&] { return gate->arrived == n - 1; });
                gate->open = true;
                gate->cv.notify_all();
            } else {
                gate->arrived++;
                gate->cv.notify_all();
                gate->cv.wait(lk, [&] { return gate->open; });
                gate->woken++;
            }
        }
        #pragma omp barrier
        #pragma omp single
        all_woken = gate->woken == n - 1;

        // The last thread pings thread 0, which waits for it with a timeout.
        if (me == n - 1) {
            std::lock_guard<std::mutex> g(gate->m);
            gate->pinged = true;
            gate->cv.notify_all();
        }
        if (me == 0) {
            std::unique_lock<std::mutex> lk(gate->m);
            pinged = gate->cv.wait_for(lk, 30s, [&] { return gate->pinged; });
        }

        // condition_variable_any: the threads take turns in order.
        {
            std::unique_lock<std::mutex> lk(any_mu);
            any_cv.wait(lk, [&] { return any_turns == me; });
            any_turns++;
            any_cv.notify_all();
        }
        #pragma omp barrier
        #pragma omp single
        any_ok = any_turns == n;

        // Nobody notifies: every wait ends at its deadline.
        #pragma omp master
        {
            std::unique_lock<std::mutex> lk(gate->m);
            timeouts += gate->cv.wait_for(lk, 30ms) == std::cv_status::timeout;
            timeouts += !gate->cv.wait_for(lk, 30ms, [] { return false; });
            timeouts += gate->cv.wait_until(lk, std::chrono::system_clock::now() + 30ms) ==
                        std::cv_status::timeout;
            timeouts += gate->cv.wait_until(lk, std::chrono::steady_clock::now() + 30ms) ==
                        std::cv_status::timeout;
            timeouts += lk.owns_lock();  // held again after each
        }
    }
    printf("consumed %ld items, sum %ld (expected %ld), queue left %zu\n", taken, total,
           (long)ITEMS * (ITEMS + 1) / 2, items.size());
    printf("notify_all woke every waiter: %s; pinged in time: %s; condition_variable_any: %s\n",
           all_woken ? "yes" : "no", pinged ? "yes" : "no", any_ok ? "yes" : "no");
    printf("timed waits that timed out: %d of 5\n", timeouts);
    delete gate;
    return 0;
}
