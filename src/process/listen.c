/* listen.c -- bind the configured addresses in the master.
 *
 * The master binds (it may be started as root for a low port) and the
 * workers inherit the sockets across fork and accept on them.
 */
#include "process/listen.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
wsh_listen_probe(const wsh_listen_addr_t *addr)
{
    int fd, on = 1, err;

    fd = socket(addr->sockaddr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return WSH_OK;          /* the real socket() will say why */
    }
    (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (addr->sockaddr.ss_family == AF_INET6) {
        (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    err = bind(fd, (const struct sockaddr *) &addr->sockaddr, addr->socklen)
          == -1 ? errno : 0;
    close(fd);
    if (err == EADDRINUSE) {
        wsh_log(WSH_LOG_EMERG, "bind() to %s failed: %s (another server is "
                "listening there: stop it or change \"listen\"; with "
                "reuseport the kernel would have shared the connections "
                "with it)", addr->text, strerror(err));
        return WSH_ERROR;
    }
    return WSH_OK;
}

int
wsh_listen_open(const wsh_listen_addr_t *addr, int backlog, bool reuseport)
{
    int fd, on = 1;

    /* Non-blocking: workers share the socket and must not sleep in
     * accept() when another worker took the connection. */
    fd = socket(addr->sockaddr.ss_family,
                SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd == -1) {
        wsh_log(WSH_LOG_EMERG, "socket() for %s failed: %s", addr->text,
                strerror(errno));
        return -1;
    }
    /* Rebinding right after a restart must not fail on TIME_WAIT. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1) {
        wsh_log(WSH_LOG_EMERG, "setsockopt(SO_REUSEADDR) for %s failed: %s",
                addr->text, strerror(errno));
        goto failed;
    }
    if (reuseport
        && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1)
    {
        wsh_log(WSH_LOG_EMERG, "setsockopt(SO_REUSEPORT) for %s failed: %s",
                addr->text, strerror(errno));
        goto failed;
    }
    if (addr->sockaddr.ss_family == AF_INET6
        && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
    {
        wsh_log(WSH_LOG_EMERG, "setsockopt(IPV6_V6ONLY) for %s failed: %s",
                addr->text, strerror(errno));
        goto failed;
    }
    if (bind(fd, (const struct sockaddr *) &addr->sockaddr, addr->socklen)
        == -1)
    {
        wsh_log(WSH_LOG_EMERG, "bind() to %s failed: %s%s", addr->text,
                strerror(errno), errno == EADDRINUSE
                ? " (another server is listening there: stop it or change "
                  "\"listen\")" : errno == EACCES ? " (ports below 1024 "
                  "need root or CAP_NET_BIND_SERVICE)" : "");
        goto failed;
    }
    if (listen(fd, backlog) == -1) {
        wsh_log(WSH_LOG_EMERG, "listen() on %s failed: %s", addr->text,
                strerror(errno));
        goto failed;
    }
    return fd;

failed:
    close(fd);
    return -1;
}
