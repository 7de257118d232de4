// Locks: an omp_lock_t guards a shared linked list that every thread
// appends to (then the initial thread sorts and prints it), omp_test_lock
// spins until it gets the lock, and a nestable lock is taken recursively.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

struct node { int value; struct node *next; };

static omp_lock_t list_lock;
static struct node *head;
static int length;

static void push(int value) {
    struct node *n = malloc(sizeof *n);
    n->value = value;
    omp_set_lock(&list_lock);
    n->next = head;
    head = n;
    length++;
    omp_unset_lock(&list_lock);
}

static int cmp(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

static omp_nest_lock_t nest;
static long nested_total;

static void add_recursive(int depth, int v) {
    omp_set_nest_lock(&nest);
    nested_total += v;
    if (depth > 0) add_recursive(depth - 1, v + 1);
    omp_unset_nest_lock(&nest);
}

int main(void) {
    omp_init_lock(&list_lock);
    #pragma omp parallel for schedule(dynamic, 5)
    for (int i = 0; i < 300; i++) push((i * 7919) % 1000);
    int *values = malloc(length * sizeof *values);
    int k = 0;
    for (struct node *n = head; n; n = n->next) values[k++] = n->value;
    qsort(values, k, sizeof *values, cmp);
    printf("list: %d nodes (length %d)\n", k, length);
    for (int i = 0; i < k; i++) printf("%d%c", values[i], i % 20 == 19 || i == k - 1 ? '\n' : ' ');

    // omp_test_lock: spin until acquired, count the attempts that failed only as a yes/no.
    omp_lock_t spin;
    omp_init_lock(&spin);
    long guarded = 0;
    int acquired = 0;
    #pragma omp parallel for
    for (int i = 0; i < 200; i++) {
        while (!omp_test_lock(&spin)) {
        }
        guarded += i;
        acquired++;
        omp_unset_lock(&spin);
    }
    // A held lock cannot be taken by omp_test_lock.
    omp_set_lock(&spin);
    int while_held = -1;
    #pragma omp parallel num_threads(2)
    {
        if (omp_get_thread_num() == omp_get_num_threads() - 1) while_held = omp_test_lock(&spin);
    }
    omp_unset_lock(&spin);
    int when_free = omp_test_lock(&spin);
    if (when_free) omp_unset_lock(&spin);
    omp_destroy_lock(&spin);
    printf("test_lock: sum %ld acquired %d; while held %d, when free %d\n", guarded, acquired,
           while_held, when_free);

    // Nestable lock: the owner takes it again; omp_test_nest_lock returns the nesting depth.
    omp_init_nest_lock(&nest);
    #pragma omp parallel for
    for (int i = 0; i < 100; i++) add_recursive(i % 4, i);
    int depth1 = omp_test_nest_lock(&nest);
    int depth2 = omp_test_nest_lock(&nest);
    omp_unset_nest_lock(&nest);
    omp_unset_nest_lock(&nest);
    omp_destroy_nest_lock(&nest);
    printf("nest lock: total %ld, depths %d %d\n", nested_total, depth1, depth2);

    // A lock per bucket: many locks in a heap array.
    omp_lock_t *locks = malloc(16 * sizeof *locks);
    long *buckets = calloc(16, sizeof *buckets);
    for (int b = 0; b < 16; b++) omp_init_lock(&locks[b]);
    #pragma omp parallel for schedule(static, 1)
    for (int i = 0; i < 1000; i++) {
        int b = (i * 11) % 16;
        omp_set_lock(&locks[b]);
        buckets[b] += i;
        omp_unset_lock(&locks[b]);
    }
    printf("bucket locks:");
    for (int b = 0; b < 16; b++) {
        printf(" %ld", buckets[b]);
        omp_destroy_lock(&locks[b]);
    }
    printf("\n");
    while (head) { struct node *n = head->next; free(head); head = n; }
    omp_destroy_lock(&list_lock);
    free(values);
    free(locks);
    free(buckets);
    return 0;
}
