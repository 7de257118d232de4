// Explicit tasks: a recursive tree sum with taskwait, a taskloop with
// lastprivate, and a chain of tasks ordered by depend(inout).
#include <stdio.h>
#include <stdlib.h>
#include <omp.h>
typedef struct node { int v; struct node *l, *r; } node;
node *build(int d, int *c) { if (!d) return NULL; node *n = malloc(sizeof *n); n->v = (*c)++; n->l = build(d-1, c); n->r = build(d-1, c); return n; }
long sum(node *n) {
  if (!n) return 0;
  long a = 0, b = 0;
  #pragma omp task shared(a)
  a = sum(n->l);
  #pragma omp task shared(b)
  b = sum(n->r);
  #pragma omp taskwait
  return a + b + n->v;
}
int main(void) {
  int c = 0; node *t = build(12, &c);
  long s = 0, tl = 0; int last = -1;
  int data[1000];
  #pragma omp parallel
  #pragma omp single
  {
    s = sum(t);
    #pragma omp taskloop lastprivate(last) grainsize(10)
    for (int i = 0; i < 1000; i++) { data[i] = i * 2; last = i; }
  }
  #pragma omp parallel
  {
    #pragma omp for reduction(+:tl)
    for (int i = 0; i < 1000; i++) tl += data[i];
  }
  int x = 0;
  #pragma omp parallel
  {
    #pragma omp single
    for (int k = 0; k < 10; k++) {
      #pragma omp task depend(inout: x) firstprivate(k)
      x = x * 3 + k;
    }
  }
  printf("tree %ld taskloop %ld last %d deps %d\n", s, tl, last, x);
  return 0;
}
