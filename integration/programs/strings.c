// Strings made and changed by libc: strdup, strcpy, strcat, sprintf,
// snprintf, qsort, fgets/fread from a file, strtok.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int by_text(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    char **words = malloc(500 * sizeof *words);
    for (int i = 0; i < 500; i++) {
        char tmp[64];
        sprintf(tmp, "word-%03d-%x", (i * 37) % 500, i * 2654435761u);
        words[i] = strdup(tmp);
    }
    qsort(words, 500, sizeof *words, by_text);
    printf("%s %s %s\n", words[0], words[250], words[499]);
    char *joined = malloc(500 * 24);
    joined[0] = 0;
    for (int i = 0; i < 500; i += 50) { strcat(joined, words[i]); strcat(joined, ","); }
    printf("%s\n", joined);
    char *buf = malloc(128);
    int n = snprintf(buf, 128, "%d-%s-%.3f", 42, "x", 3.14159);
    printf("%d %s\n", n, buf);
    strcpy(buf, "alpha beta gamma");
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) printf("[%s]", t);
    printf("\n");
    char path[] = "/tmp/loco-strings-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w+");
    for (int i = 0; i < 100; i++) fprintf(f, "line %d %s\n", i, words[i]);
    rewind(f);
    char *line = malloc(256);
    long total = 0;
    while (fgets(line, 256, f)) total += (long)strlen(line) + line[5];
    rewind(f);
    char *all = calloc(1, 8192);
    size_t got = fread(all, 1, 8191, f);
    fclose(f);
    unlink(path);
    printf("fgets %ld fread %zu last %.20s\n", total, got, all + got - 21);
    for (int i = 0; i < 500; i++) free(words[i]);
    free(words); free(joined); free(buf); free(line); free(all);
    return 0;
}
