/* cycle.h -- build and free configuration cycles (core/cycle.h). */
#ifndef WSH_PROCESS_CYCLE_H
#define WSH_PROCESS_CYCLE_H

#include "core/cycle.h"

/* Load FILE, read its TLS certificate and open its listeners, taking
 * over any of OLD's sockets with the same address (OLD may be NULL).
 * Returns NULL after logging why (the configuration error with its
 * FILE:LINE:COL, or the socket or certificate that failed). Master
 * (and wshubd -t). */
wsh_cycle_t *wsh_cycle_create(const char *file, wsh_cycle_t *old);

/* Give up a cycle built from OLD that will not be used: the sockets it
 * took over go back to OLD, the rest are closed. */
void wsh_cycle_abandon(wsh_cycle_t *cycle, wsh_cycle_t *old);

/* Close the listeners not taken over by a newer cycle and free. */
void wsh_cycle_free(wsh_cycle_t *cycle);

/* The files CF names that a (re)start reads in the master: the limits'
 * check, the listeners' certificate into *TLS and engine.redis.tls's
 * into *REDIS_TLS (each NULL when not configured). WSH_ERROR with
 * "FILE:LINE:COL: ..." in ERR, nothing left allocated. For the cycle
 * and for "wshubd -t". */
int wsh_cycle_check(const wsh_conf_t *cf, struct ssl_ctx_st **tls,
    struct ssl_ctx_st **redis_tls, char *err, size_t errlen);

#endif /* WSH_PROCESS_CYCLE_H */
