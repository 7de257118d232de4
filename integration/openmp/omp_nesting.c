// Serialized and nested regions and the queries about them: if(0) gives a
// team of one, a region inside a region gets an inner team of one (nesting
// is off by default), omp_get_level counts both, omp_get_active_level and
// omp_in_parallel count only teams of more than one; omp_get_wtime is
// monotonic.
#include <omp.h>
#include <stdio.h>

int main(void) {
    int n_if0 = -1, lvl_if0 = -1, inpar_if0 = -1;
    #pragma omp parallel if(0)
    {
        n_if0 = omp_get_num_threads();
        lvl_if0 = omp_get_level();
        inpar_if0 = omp_in_parallel();
    }
    printf("if(0): team %d level %d in_parallel %d\n", n_if0, lvl_if0, inpar_if0);

    int cond = 0;
    long sum = 0;
    #pragma omp parallel if(cond) reduction(+ : sum)
    for (int i = 0; i < 100; i++) sum += i;
    printf("if(cond=0) reduction: %ld\n", sum);

    int outer = 0, inner_bad = 0, level_bad = 0, active_bad = 0, inpar_bad = 0;
    int inner_total = 0, max_bad = 0;
    int top_max = omp_get_max_threads();
    #pragma omp parallel
    {
        int nt = omp_get_num_threads();
        #pragma omp master
        outer = nt;
        if (omp_get_level() != 1) {
            #pragma omp atomic
            level_bad++;
        }
        if (omp_get_active_level() != (nt > 1)) {
            #pragma omp atomic
            active_bad++;
        }
        if (omp_in_parallel() != (nt > 1)) {
            #pragma omp atomic
            inpar_bad++;
        }
        if (omp_get_max_threads() != top_max) {
            #pragma omp atomic
            max_bad++;
        }
        #pragma omp parallel
        {
            if (omp_get_num_threads() != 1 || omp_get_thread_num() != 0) {
                #pragma omp atomic
                inner_bad++;
            }
            if (omp_get_level() != 2 || omp_get_active_level() != (nt > 1)) {
                #pragma omp atomic
                level_bad++;
            }
            #pragma omp atomic
            inner_total++;
        }
    }
    printf("nested: inner teams of one %s, levels %s, active levels %s, in_parallel %s, max_threads %s\n",
           inner_bad ? "NO" : "yes", level_bad ? "WRONG" : "right",
           active_bad ? "WRONG" : "right", inpar_bad ? "WRONG" : "right",
           max_bad ? "WRONG" : "right");
    printf("nested: one inner region per outer thread %s\n", inner_total == outer ? "yes" : "no");
    printf("back at level %d, in_parallel %d\n", omp_get_level(), omp_in_parallel());

    // omp_get_wtime never goes backwards, in any thread.
    int backwards = 0;
    double t0 = omp_get_wtime();
    #pragma omp parallel reduction(+ : backwards)
    {
        double a = omp_get_wtime();
        for (int i = 0; i < 1000; i++) {
            double b = omp_get_wtime();
            if (b < a) backwards++;
            a = b;
        }
    }
    double t1 = omp_get_wtime();
    printf("wtime: elapsed >= 0 %s, backwards steps %d, tick > 0 %s\n",
           t1 - t0 >= 0 ? "yes" : "no", backwards, omp_get_wtick() > 0 ? "yes" : "no");
    return 0;
}
