// A parallel region inside an inactive (if(0)) one is the first active level:
// it gets the whole team, and the levels, active levels and ancestors say so.
#include <stdio.h>
#include <omp.h>
int main() {
  int inner = 0, lvl = 0, act = 0, anc = -1, tsize = 0; long sum = 0;
  #pragma omp parallel if(0)
  {
    #pragma omp parallel reduction(+:sum)
    {
      #pragma omp single
      { inner = omp_get_num_threads(); lvl = omp_get_level(); act = omp_get_active_level(); anc = omp_get_ancestor_thread_num(1); tsize = omp_get_team_size(1); }
      sum += omp_get_thread_num();
    }
  }
  printf("inner %d level %d active %d anc %d tsize %d sum %ld in_par %d\n", inner, lvl, act, anc, tsize, sum, omp_in_parallel());
}
