/* pending.h -- handshake slots: the sockets of connections that are not
 * WebSockets yet, by client address.
 *
 * A half-sent request holds a socket until handshake_timeout; without a
 * cap per address, one client renewing a few hundred of them takes all
 * of a worker's sockets and locks everyone else out (slowloris). Each
 * address may hold limits.per_ip_pending of them per worker, and when
 * the worker's sockets run short the oldest one of the address holding
 * most goes first, so that newcomers from other addresses are served.
 */
#ifndef WSH_PENDING_H
#define WSH_PENDING_H

#include "core/core.h"

#include <sys/socket.h>

typedef struct wsh_conn_s wsh_conn_t;
typedef struct wsh_pending_ip_s wsh_pending_ip_t;

int  wsh_pending_init(void);
void wsh_pending_free(void);

/* Whether the address SA holds LIMIT pending connections already (0: no
 * limit), so that a new one from it is refused. */
bool wsh_pending_full(const struct sockaddr *sa, unsigned limit);

/* Count C (its peer set, state HTTP) against its address. */
void wsh_pending_add(wsh_conn_t *c);

/* C is a WebSocket now, or gone; nothing if it was not counted. */
void wsh_pending_remove(wsh_conn_t *c);

/* The oldest pending connection of the address holding most, or NULL
 * when nothing is pending. */
wsh_conn_t *wsh_pending_victim(void);

#endif /* WSH_PENDING_H */
