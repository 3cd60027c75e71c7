/* cycle.h -- everything built from one configuration (nginx's cycle).
 *
 * A cycle holds the parsed configuration and the listening sockets made
 * from it. A reload builds a new cycle next to the old one, reusing the
 * old listening sockets whose address did not change, and only replaces
 * it once the new one is complete. Every layer reads a cycle; the
 * master builds them (process/cycle.c), from the layers' parts: its
 * listeners, net's TLS context and limits.
 */
#ifndef WSH_CYCLE_H
#define WSH_CYCLE_H

#include "core/core.h"
#include "core/conf.h"

/* One listening socket. With reuseport each worker slot has its own
 * socket per address (SHARD = the slot) and the kernel spreads new
 * connections evenly among them; otherwise all workers accept on one
 * socket (SHARD -1). */
typedef struct {
    wsh_listen_addr_t addr;
    int               fd;
    int               shard;
    unsigned          index;        /* in conf->listen */
} wsh_listening_t;

typedef struct {
    wsh_conf_t       *conf;
    wsh_listening_t  *listening;
    size_t            nlistening;
    struct ssl_ctx_st *tls_ctx;     /* "ADDRESS tls" listeners', or NULL */
    struct ssl_ctx_st *redis_tls_ctx; /* engine.redis.tls's, or NULL */
} wsh_cycle_t;

#endif /* WSH_CYCLE_H */
