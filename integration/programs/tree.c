// A binary search tree of 60k pseudo-random keys with values, then lookups,
// an in-order checksum and deletion of the whole tree.
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

struct tree { uint32_t key; uint64_t value; struct tree *left, *right; };

static struct tree *insert(struct tree *t, uint32_t key, uint64_t value) {
    struct tree **at = &t;
    while (*at) {
        if (key == (*at)->key) { (*at)->value += value; return t; }
        at = key < (*at)->key ? &(*at)->left : &(*at)->right;
    }
    *at = calloc(1, sizeof **at);
    (*at)->key = key;
    (*at)->value = value;
    return t;
}

static uint64_t walk(struct tree *t, uint64_t *n) {
    if (!t) return 0;
    uint64_t h = walk(t->left, n);
    h = h * 1000003u ^ (t->key + t->value);
    (*n)++;
    return walk(t->right, n) ^ (h * 31u);
}

static void drop(struct tree *t) { if (t) { drop(t->left); drop(t->right); free(t); } }

int main(void) {
    struct tree *root = NULL;
    uint32_t x = 12345;
    for (int i = 0; i < 60000; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        root = insert(root, x % 50000, i);
    }
    uint64_t n = 0, h = walk(root, &n);
    printf("nodes %llu hash %llu\n", (unsigned long long)n, (unsigned long long)h);
    uint64_t found = 0;
    for (uint32_t k = 0; k < 50000; k += 7) {
        struct tree *t = root;
        while (t && t->key != k) t = k < t->key ? t->left : t->right;
        if (t) found += t->value;
    }
    printf("lookup sum %llu\n", (unsigned long long)found);
    drop(root);
    return 0;
}
