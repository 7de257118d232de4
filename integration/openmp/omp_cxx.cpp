// C++ with OpenMP across nodes: STL containers on the shared heap (a vector
// filled by a parallel loop, a map grown inside a critical section), a global
// std::vector and std::string built by static constructors on node 0, std::atomic,
// and a member function called under a critical section.
#include <cstdio>
#include <vector>
#include <map>
#include <string>
#include <atomic>
#include <omp.h>
std::vector<long> global_v(1000, 1);
static std::string label = "sum";
struct Acc { long total = 0; void add(long x) { total += x; } };
int main() {
  std::vector<int> v(5000);
  for (int i = 0; i < 5000; i++) v[i] = i % 97;
  long s = 0;
  Acc acc;
  std::atomic<long> hits{0};
  std::map<int, int> m;
  #pragma omp parallel
  {
    #pragma omp for reduction(+:s)
    for (int i = 0; i < 5000; i++) s += v[i];
    #pragma omp for
    for (int i = 0; i < 1000; i++) global_v[i] = i;
    hits.fetch_add(1);
    #pragma omp critical
    { acc.add(omp_get_thread_num() + 1); m[omp_get_thread_num()] = omp_get_thread_num() * 2; }
  }
  long g = 0; for (long x : global_v) g += x;
  long ms = 0; for (auto &kv : m) ms += kv.second;
  int n = omp_get_max_threads();
  printf("%s %ld global %ld acc %ld hits %ld map %zu %ld (expect acc %d)\n", label.c_str(), s, g, acc.total, hits.load(), m.size(), ms, n*(n+1)/2);
  return 0;
}
