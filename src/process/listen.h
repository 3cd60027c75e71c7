/* listen.h -- listening sockets, opened by the master before fork. */
#ifndef WSH_LISTEN_H
#define WSH_LISTEN_H

#include "core/conf.h"

/* Bind and listen on ADDR (with SO_REUSEPORT if asked); returns the
 * socket or -1 after logging. */
/* Before the first SO_REUSEPORT socket of ADDR: WSH_ERROR (logged) when
 * another process listens there. SO_REUSEPORT would let us join its
 * group and silently take half of its connections; a socket without it
 * gets EADDRINUSE, as nginx users expect. */
int wsh_listen_probe(const wsh_listen_addr_t *addr);

int wsh_listen_open(const wsh_listen_addr_t *addr, int backlog,
    bool reuseport);

#endif /* WSH_LISTEN_H */
