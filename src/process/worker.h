/* worker.h -- one worker process: its event loop and connections. */
#ifndef WSH_WORKER_H
#define WSH_WORKER_H

#include "core/core.h"
#include "core/cycle.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

typedef struct {
    struct event_base  *base;
    wsh_cycle_t        *cycle;
    const wsh_conf_t   *conf;
    int                 id;             /* slot, 0..worker_processes-1 */
    struct bufferevent *chan;           /* channel to the master */

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
    struct event       *exit_timer;

    struct evconnlistener **listeners;
    size_t              nlisteners;

    wsh_msec_t          started;
    bool                draining;
    int                 drain_code;     /* 1001 stop, 1012 restart */
} wsh_worker_t;

/* The worker of this process (valid only in a worker). */
extern wsh_worker_t wsh_worker;

/* Worker main: never returns (exits the process). Called by the master
 * right after fork with the slot ID and its channel end. */
void wsh_worker_run(wsh_cycle_t *cycle, int id, int channel)
    __attribute__((noreturn));

/* Start a graceful drain: stop accepting, close every WebSocket with
 * CODE, exit when the last connection is gone or at shutdown_timeout. */
void wsh_worker_drain(int code);

/* A connection is gone: exit if draining and none are left. */
void wsh_worker_conn_gone(void);

#endif /* WSH_WORKER_H */
