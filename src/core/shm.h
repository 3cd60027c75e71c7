/* shm.h -- named shared memory zones made by the master before fork.
 *
 * A zone is an anonymous MAP_SHARED mapping: every worker forked after
 * it was made sees the same bytes, so counters and tables in it are
 * shared by all workers of all generations (nginx's shared zones). The
 * master makes zones once and keeps them for its whole life: a reload
 * does not replace them, so the counts of old workers still draining go
 * on counting. Zones are zero-filled when made. Data in a zone must be
 * position-independent (no pointers) and use C11 atomics or a lock the
 * master can recover when a worker dies.
 */
#ifndef WSH_SHM_H
#define WSH_SHM_H

#include "core/core.h"

/* The zone NAME of SIZE bytes: made (zero-filled) on the first call,
 * the same memory on later calls with the same name and size. Master
 * only, before the workers that use it are forked. Returns NULL after
 * logging when mmap() fails or NAME exists with another size. */
void *wsh_shm_zone(const char *name, size_t size);

/* The zone NAME made earlier (any process), or NULL. */
void *wsh_shm_lookup(const char *name);

/* Unmap every zone (the master at exit; a worker's mappings go with
 * its process). */
void wsh_shm_free_all(void);

#endif /* WSH_SHM_H */
