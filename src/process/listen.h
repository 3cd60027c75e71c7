/* listen.h -- listening sockets, opened by the master before fork. */
#ifndef WSH_LISTEN_H
#define WSH_LISTEN_H

#include "core/conf.h"

/* Bind and listen on ADDR (with SO_REUSEPORT if asked); returns the
 * socket or -1 after logging. */
int wsh_listen_open(const wsh_listen_addr_t *addr, int backlog,
    bool reuseport);

#endif /* WSH_LISTEN_H */
