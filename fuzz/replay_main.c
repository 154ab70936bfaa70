/*
 * replay_main.c — runs a libFuzzer target over files without libFuzzer.
 *
 * Linked with one fuzz_<name>.c, it calls LLVMFuzzerTestOneInput() once for each file named
 * on the command line and each regular file directly inside each named directory (not
 * recursive; files over DUKA_REPLAY_FILE_MAX are skipped with a note). This lets the gcc
 * ASan+UBSan build replay the corpus in `make test` where clang is not installed. A crash is
 * the sanitizer's or abort()'s; otherwise it prints "replayed N inputs" and exits 0.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DUKA_REPLAY_FILE_MAX (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replays one file; returns 1 when it was run, 0 when skipped. */
static int replay_file(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    if (sb.st_size > DUKA_REPLAY_FILE_MAX) {
        fprintf(stderr, "replay: skipping %s (over %d bytes)\n", path, DUKA_REPLAY_FILE_MAX);
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(1);
    }
    size_t cap = (size_t)sb.st_size + 1; /* never 0, so data is never NULL */
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        fclose(f);
        fprintf(stderr, "replay: out of memory reading %s\n", path);
        exit(1);
    }
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 1;
}

/* Replays the files of dir in name order (so a run is reproducible). */
static int replay_dir(const char *dir)
{
    struct dirent **entries = NULL;
    int count = scandir(dir, &entries, NULL, alphasort);
    if (count < 0) {
        fprintf(stderr, "replay: cannot read directory %s\n", dir);
        exit(1);
    }
    int replayed = 0;
    char path[4096];
    for (int i = 0; i < count; i++) {
        if (entries[i]->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, entries[i]->d_name);
            replayed += replay_file(path);
        }
        free(entries[i]);
    }
    free(entries);
    return replayed;
}

int main(int argc, char **argv)
{
    int replayed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            return 1;
        }
        replayed += S_ISDIR(sb.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
    }
    printf("replayed %d inputs\n", replayed);
    return 0;
}
