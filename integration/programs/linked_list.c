// A singly linked list of 200k heap nodes: build, sum, reverse, filter, free.
#include <stdio.h>
#include <stdlib.h>

struct node { long value; struct node *next; };

int main(void) {
    struct node *head = NULL;
    for (long i = 0; i < 200000; i++) {
        struct node *n = malloc(sizeof *n);
        n->value = (i * 7919) % 100003;
        n->next = head;
        head = n;
    }
    long sum = 0, count = 0;
    for (struct node *n = head; n; n = n->next) { sum += n->value; count++; }
    printf("count %ld sum %ld\n", count, sum);
    struct node *prev = NULL;
    while (head) { struct node *next = head->next; head->next = prev; prev = head; head = next; }
    head = prev;
    printf("first after reverse %ld\n", head->value);
    // Drop the odd values.
    struct node **link = &head;
    while (*link) {
        if ((*link)->value % 2) { struct node *dead = *link; *link = dead->next; free(dead); }
        else link = &(*link)->next;
    }
    sum = count = 0;
    for (struct node *n = head; n; n = n->next) { sum += n->value; count++; }
    printf("even count %ld sum %ld\n", count, sum);
    while (head) { struct node *next = head->next; free(head); head = next; }
    return 0;
}
