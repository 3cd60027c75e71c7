/* replay.c -- run fuzz inputs once, without libFuzzer.
 *
 * Linked with one fuzz_*.c harness instead of libFuzzer's main(), so the
 * checked-in corpora replay as ordinary tests in "make check" (and under
 * --enable-sanitizers). Each argument is a file, or a directory whose
 * regular files are all run; any crash in the harness fails the test.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read PATH whole and pass it to the harness. Returns 0, or -1 when the
 * file cannot be read (reported on stderr). */
static int
replay_file(const char *path)
{
    FILE *fp;
    uint8_t *data = NULL, *copy;
    size_t len = 0, cap = 0, n;

    fp = fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for ( ;; ) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            data = realloc(data, cap);
            if (data == NULL) {
                fprintf(stderr, "replay: out of memory\n");
                exit(1);
            }
        }
        n = fread(data + len, 1, cap - len, fp);
        if (n == 0) {
            break;
        }
        len += n;
    }
    if (ferror(fp)) {
        fprintf(stderr, "replay: %s: read error\n", path);
        fclose(fp);
        free(data);
        return -1;
    }
    fclose(fp);

    /* An exact-size copy, so ASan sees reads past the input's end. */
    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        fprintf(stderr, "replay: out of memory\n");
        exit(1);
    }
    memcpy(copy, data, len);
    free(data);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    return 0;
}

/* Run every regular file of directory PATH; adds to *count. */
static int
replay_dir(const char *path, unsigned *count)
{
    DIR *dir;
    struct dirent *de;
    struct stat st;
    char file[4096];
    int rc = 0;

    dir = opendir(path);
    if (dir == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        if (stat(file, &st) == -1 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if (replay_file(file) != 0) {
            rc = -1;
        }
        (*count)++;
    }
    closedir(dir);
    return rc;
}

int
main(int argc, char **argv)
{
    struct stat st;
    unsigned count = 0;
    int i, rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (replay_dir(argv[i], &count) != 0) {
                rc = 1;
            }
        } else {
            if (replay_file(argv[i]) != 0) {
                rc = 1;
            }
            count++;
        }
    }
    printf("%s: %u inputs replayed\n", argv[0], count);
    return rc;
}
