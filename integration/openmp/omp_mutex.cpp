// pthread and std::mutex inside parallel regions: a mutex in shared memory
// must exclude threads on every node (loco-cc routes the calls to the
// runtime's distributed locks); recursive mutexes nest; try_lock spins.
#include <cstdio>
#include <mutex>
#include <vector>
#include <pthread.h>
#include <omp.h>
std::mutex mu;
std::recursive_mutex rmu;
pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
long a, b, c;
std::vector<int> log_v;
void bump(int depth) { std::lock_guard<std::recursive_mutex> g(rmu); c++; if (depth) bump(depth - 1); }
int main() {
  #pragma omp parallel
  {
    for (int i = 0; i < 200; i++) {
      { std::lock_guard<std::mutex> g(mu); a++; log_v.push_back(i); }
      pthread_mutex_lock(&pm); b += 2; pthread_mutex_unlock(&pm);
      if (i % 20 == 0) bump(2);
    }
    while (true) { if (mu.try_lock()) { a += 1000; mu.unlock(); break; } }
  }
  long s = 0; for (int x : log_v) s += x;
  int n = omp_get_max_threads();
  printf("a %ld b %ld c %ld log %zu sum %ld (threads %d)\n", a, b, c, log_v.size(), s, n);
}
