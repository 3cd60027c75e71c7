/* shm.c -- named shared memory zones (see shm.h).
 *
 * Each zone is its own mapping, listed in a small process-local array
 * that forked workers inherit along with the mappings themselves. Few
 * zones exist (limits, later metrics), so lookups are linear.
 */
#include "core/shm.h"
#include "core/log.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define SHM_ZONES_MAX 16

typedef struct {
    char    name[32];
    void   *addr;
    size_t  size;
} shm_zone_t;

static shm_zone_t shm_zones[SHM_ZONES_MAX];
static size_t shm_nzones;

static shm_zone_t *
shm_find(const char *name)
{
    size_t i;

    for (i = 0; i < shm_nzones; i++) {
        if (strcmp(shm_zones[i].name, name) == 0) {
            return &shm_zones[i];
        }
    }
    return NULL;
}

void *
wsh_shm_zone(const char *name, size_t size)
{
    shm_zone_t *z = shm_find(name);
    void *addr;

    if (z != NULL) {
        if (z->size != size) {
            wsh_log(WSH_LOG_ALERT, "shared zone \"%s\" exists with %zu bytes, "
                    "not %zu", name, z->size, size);
            return NULL;
        }
        return z->addr;
    }
    if (shm_nzones == SHM_ZONES_MAX || strlen(name) >= sizeof(z->name)) {
        wsh_log(WSH_LOG_ALERT, "cannot add shared zone \"%s\"", name);
        return NULL;
    }
    addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
    if (addr == MAP_FAILED) {
        wsh_log(WSH_LOG_ALERT, "mmap(%zu) failed for shared zone \"%s\": %s",
                size, name, strerror(errno));
        return NULL;
    }
    z = &shm_zones[shm_nzones++];
    strcpy(z->name, name);
    z->addr = addr;
    z->size = size;
    return addr;
}

void *
wsh_shm_lookup(const char *name)
{
    shm_zone_t *z = shm_find(name);

    return z != NULL ? z->addr : NULL;
}

void
wsh_shm_free_all(void)
{
    while (shm_nzones > 0) {
        shm_nzones--;
        munmap(shm_zones[shm_nzones].addr, shm_zones[shm_nzones].size);
    }
}
