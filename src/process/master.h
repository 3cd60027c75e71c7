/* master.h -- the master process: workers, signals, reload. */
#ifndef WSH_MASTER_H
#define WSH_MASTER_H

#include "core/cycle.h"

/* Run the master loop with CYCLE (already built: config loaded,
 * listeners bound) until stopped; returns the process exit status. The
 * master owns CYCLE from here and frees it. */
int wsh_master_run(wsh_cycle_t *cycle);

#endif /* WSH_MASTER_H */
