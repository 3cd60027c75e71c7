/* fuzz_conf.c -- libFuzzer harness of the configuration loader.
 *
 * wsh_conf_load() reads a file, so each input is written to an anonymous
 * memfd and loaded through its /proc/self/fd path: nothing touches the
 * disk and nothing is left behind when a run is killed.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsh_conf_t *cf;
    char path[64], err[WSH_CONF_ERR_MAX];
    size_t off = 0;
    ssize_t n;
    int fd;

    fd = memfd_create("fuzz_conf", MFD_CLOEXEC);
    if (fd == -1) {
        perror("memfd_create() failed");
        abort();
    }
    while (off < size) {
        n = write(fd, data + off, size - off);
        if (n <= 0) {
            perror("write() failed");
            abort();
        }
        off += (size_t) n;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    err[0] = '\0';
    cf = wsh_conf_load(path, err, sizeof(err));
    if (cf != NULL) {
        wsh_conf_free(cf);
    }

    close(fd);
    return 0;
}
