/* service.h -- what the master runs for its workers besides processes.
 *
 * A service of the master (the local engine's relay) gets the frames
 * the workers send on their channels and hears when a worker process
 * is gone; it answers a worker with the send function the master gives
 * it. The master calls its services by this table (process/master.c)
 * and a service never calls the master, so a layer below the processes
 * can offer one.
 */
#ifndef WSH_SERVICE_H
#define WSH_SERVICE_H

#include "core/core.h"
#include "core/conf.h"

#include <sys/uio.h>

struct event_base;

/* Queue a frame CMD whose payload is the N iovecs to the worker process
 * entry PROC: WSH_OK, or WSH_ERROR when it is gone or so far behind
 * that its frames are dropped (it is told later, engine/wire.h GAP). */
typedef int (*wsh_service_send_pt)(size_t proc, uint32_t cmd,
    const struct iovec *iov, int n);

typedef struct {
    const char *name;
    /* The master starts or reloaded: CF is the configuration now in
     * force (it outlives the next configure), BASE the master's loop,
     * SEND how to reach a worker. WSH_ERROR (logged) stops a start; a
     * reload goes on. */
    int  (*configure)(struct event_base *base, const wsh_conf_t *cf,
                      wsh_service_send_pt send);
    /* A frame CMD from the worker process entry PROC; P is valid during
     * the call. */
    void (*message)(size_t proc, uint32_t cmd, const u_char *p,
                    size_t len);
    /* The worker process PROC exited (its entry may be reused). */
    void (*proc_gone)(size_t proc);
    /* The master exits. */
    void (*free)(void);
} wsh_service_t;

#endif /* WSH_SERVICE_H */
