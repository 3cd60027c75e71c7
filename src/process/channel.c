/* channel.c -- master <-> worker socketpairs.
 *
 * One SOCK_STREAM socketpair per worker. The master writes commands; the
 * worker reads them in its event loop, and an EOF there means the master
 * is gone, so orphaned workers drain and exit instead of lingering.
 */
#include "process/channel.h"
#include "core/log.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
wsh_channel_open(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == -1) {
        wsh_log(WSH_LOG_ALERT, "socketpair() failed: %s", strerror(errno));
        return WSH_ERROR;
    }
    return WSH_OK;
}

int
wsh_channel_send(int fd, uint32_t cmd)
{
    wsh_channel_msg_t msg = { cmd, 0 };
    ssize_t n;

    do {
        n = write(fd, &msg, sizeof(msg));
    } while (n == -1 && errno == EINTR);
    if (n == -1 && errno == EPIPE) {
        /* The worker exited on its own and is about to be reaped. */
        wsh_log(WSH_LOG_INFO, "worker channel %d is closed", fd);
        return WSH_ERROR;
    }
    if (n != (ssize_t) sizeof(msg)) {
        wsh_log(WSH_LOG_ALERT, "write() to worker channel %d failed: %s", fd,
                n == -1 ? strerror(errno) : "short write");
        return WSH_ERROR;
    }
    return WSH_OK;
}
