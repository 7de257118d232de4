// loco-expect-error: LOCO does not support OpenMP single copyprivate of a C++ object with a non-trivial copy assignment
// single copyprivate of a std::string: its copy calls operator= (at -O2,
// the _M_assign it inlines to), which may follow the string's pointer into
// the single thread's own stack (its short-string buffer). Staging its bytes
// in shared memory would not carry that buffer to other nodes, so loco-cc
// refuses it.
#include <cstdio>
#include <string>

int main() {
    int mismatched = 0;
    #pragma omp parallel reduction(+ : mismatched)
    {
        std::string name;
        #pragma omp single copyprivate(name)
        name = "copied";
        if (name != "copied") mismatched++;
    }
    std::printf("copyprivate string: mismatched %d\n", mismatched);
    return 0;
}
