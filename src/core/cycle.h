/* cycle.h -- everything built from one configuration (nginx's cycle).
 *
 * A cycle holds the parsed configuration and the listening sockets made
 * from it. A reload builds a new cycle next to the old one, reusing the
 * old listening sockets whose address did not change, and only replaces
 * it once the new one is complete.
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
} wsh_cycle_t;

/* Load FILE, read its TLS certificate and open its listeners, taking
 * over any of OLD's sockets with the same address (OLD may be NULL).
 * Returns NULL after logging why (the configuration error with its
 * FILE:LINE:COL, or the socket or certificate that failed). */
wsh_cycle_t *wsh_cycle_create(const char *file, wsh_cycle_t *old);

/* Give up a cycle built from OLD that will not be used: the sockets it
 * took over go back to OLD, the rest are closed. */
void wsh_cycle_abandon(wsh_cycle_t *cycle, wsh_cycle_t *old);

/* Close the listeners not taken over by a newer cycle and free. */
void wsh_cycle_free(wsh_cycle_t *cycle);

#endif /* WSH_CYCLE_H */
