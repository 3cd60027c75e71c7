/* master.h -- the master process: workers, signals, reload. */
#ifndef WSH_MASTER_H
#define WSH_MASTER_H

#include "core/cycle.h"

#include <sys/uio.h>

/* Run the master loop with CYCLE (already built: config loaded,
 * listeners bound) until stopped; returns the process exit status. The
 * master owns CYCLE from here and frees it. */
int wsh_master_run(wsh_cycle_t *cycle);

/* Queue a channel frame to the worker tracked as process entry PROC
 * (the index the relay was given); WSH_ERROR if it is gone. */
int wsh_master_send(size_t proc, uint32_t cmd, const struct iovec *iov,
    int n);

#endif /* WSH_MASTER_H */
