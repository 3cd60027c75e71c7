/* worker.h -- one worker process: its event loop and connections. */
#ifndef WSH_WORKER_H
#define WSH_WORKER_H

#include "core/core.h"
#include "core/cycle.h"
#include "core/runtime.h"

/* Worker main: never returns (exits the process). Called by the master
 * right after fork with the slot ID and its channel end. */
void wsh_worker_run(wsh_cycle_t *cycle, int id, int channel)
    __attribute__((noreturn));

/* Start a graceful drain: stop accepting, close every WebSocket with
 * CODE, exit when the last connection is gone or at shutdown_timeout. */
void wsh_worker_drain(int code);

#endif /* WSH_WORKER_H */
