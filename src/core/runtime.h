/* runtime.h -- the state of the running worker that every layer reads.
 *
 * One per worker process: its configuration, event loop, connection
 * lists and counters. Declared here, below the layers that read it (the
 * connections in net, the engine), and set up by the worker process
 * (process/worker.c), which owns it; what only the worker needs (its
 * listeners, its channel to the master, its exit timer) stays there.
 */
#ifndef WSH_RUNTIME_H
#define WSH_RUNTIME_H

#include "core/core.h"
#include "core/cycle.h"

struct event;
struct event_base;

typedef struct {
    struct event_base  *base;
    wsh_cycle_t        *cycle;
    const wsh_conf_t   *conf;
    int                 id;             /* slot, 0..worker_processes-1 */

    wsh_queue_t         conns;          /* every client connection */
    wsh_queue_t         handshakes;     /* HTTP phase, by deadline */
    wsh_queue_t         pings;          /* WebSockets, by next ping */
    wsh_queue_t         drains;         /* draining, by close time */
    wsh_queue_t         closes;         /* closing, by close_timeout */
    wsh_queue_t         dead;           /* closed, freed on next loop turn */
    unsigned            nconns;
    unsigned            nwebsockets;
    uint64_t            last_conn_id;

    struct event       *handshake_timer;
    struct event       *ping_timer;
    struct event       *drain_timer;
    struct event       *close_timer;
    struct event       *dead_event;

    wsh_msec_t          started;
    bool                draining;
    int                 drain_code;     /* 1001 stop, 1012 restart */
} wsh_worker_t;

/* The worker of this process (valid only in a worker). */
extern wsh_worker_t wsh_worker;

#endif /* WSH_RUNTIME_H */
