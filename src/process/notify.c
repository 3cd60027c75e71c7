/* notify.c -- the sd_notify(3) datagram protocol in a few lines. */
#include "process/notify.h"
#include "core/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void
notify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t len;
    int fd;

    /* "/path" or "@abstract"; anything else (vsock) is not ours. */
    if (path == NULL || (path[0] != '/' && path[0] != '@')) {
        return;
    }
    len = strlen(path);
    if (len >= sizeof(sa.sun_path)) {
        wsh_log(WSH_LOG_WARN, "NOTIFY_SOCKET \"%s\" is too long", path);
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, len);
    if (sa.sun_path[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1
        || sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                  (struct sockaddr *) &sa,
                  (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len))
           == -1)
    {
        wsh_log(WSH_LOG_WARN, "notifying systemd (%s) failed: %s", path,
                strerror(errno));
    }
    if (fd != -1) {
        close(fd);
    }
}

void
wsh_notify_ready(void)
{
    char state[64];

    snprintf(state, sizeof(state), "READY=1\nMAINPID=%ld",
             (long) getpid());
    notify_send(state);
}

void
wsh_notify_reloading(void)
{
    struct timespec ts;
    char state[64];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long) ts.tv_sec * 1000000ULL
             + (unsigned long long) ts.tv_nsec / 1000ULL);
    notify_send(state);
}

void
wsh_notify_stopping(void)
{
    notify_send("STOPPING=1");
}
