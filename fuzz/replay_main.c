/* Replay driver for the fuzz targets: runs LLVMFuzzerTestOneInput over
 * every regular file in each directory (or file) named on the command
 * line, so CTest can replay the committed corpus under gcc and ASan
 * without libFuzzer. A replay that ran no input fails: a missing or empty
 * corpus directory is an error, not a pass. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPLAY_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Run one file; returns 1 when it ran, 0 when skipped, -1 on error. */
static int run_file(const char *path)
{
    struct stat st;
    uint8_t *buf;
    size_t n;
    FILE *f;

    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if ((size_t)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: %s: larger than %u bytes\n", path, REPLAY_MAX_INPUT);
        return -1;
    }
    if ((f = fopen(path, "rb")) == NULL) {
        perror(path);
        return -1;
    }
    /* exactly the input's size, so ASan sees any read past its end */
    buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (n != (size_t)st.st_size) {
        fprintf(stderr, "replay: %s: short read\n", path);
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 1;
}

static long run_dir(const char *dir)
{
    char path[4096];
    struct dirent *e;
    long count = 0;
    DIR *d = opendir(dir);

    if (d == NULL) {
        perror(dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        int rc = run_file(path);
        if (rc < 0) {
            closedir(d);
            return -1;
        }
        count += rc;
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    long total = 0;

    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: no such corpus\n", argv[i]);
            return 1;
        }
        n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
        if (n < 0)
            return 1;
        printf("replay: %ld inputs from %s\n", n, argv[i]);
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "replay: ran 0 inputs: the corpus is missing or empty\n");
        return 1;
    }
    printf("replay: %ld inputs, no crash\n", total);
    return 0;
}
