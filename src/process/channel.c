/* channel.c -- framing on the master/worker socketpairs.
 *
 * The worker reads EOF on its channel when the master dies, so orphaned
 * workers drain and exit instead of lingering.
 */
#include "process/channel.h"
#include "core/log.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

int
wsh_channel_open(int fds[2])
{
    /* Non-blocking at both ends: a stopped or wedged worker must cost
     * the master queued bytes (bounded, master.c), never a blocked
     * loop. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                   fds) == -1)
    {
        wsh_log(WSH_LOG_ALERT, "socketpair() failed: %s", strerror(errno));
        return WSH_ERROR;
    }
    return WSH_OK;
}

int
wsh_channel_write(struct bufferevent *bev, uint32_t cmd,
    const struct iovec *iov, int n)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    wsh_channel_msg_t msg = { cmd, 0 };
    size_t len = 0;
    int i;

    for (i = 0; i < n; i++) {
        len += iov[i].iov_len;
    }
    if (len > WSH_CHANNEL_MAX_FRAME) {
        wsh_log(WSH_LOG_ERR, "channel frame of %zu bytes is too large", len);
        return WSH_ERROR;
    }
    msg.len = (uint32_t) len;
    if (evbuffer_add(out, &msg, sizeof(msg)) != 0) {
        return WSH_ERROR;
    }
    for (i = 0; i < n; i++) {
        if (iov[i].iov_len > 0
            && evbuffer_add(out, iov[i].iov_base, iov[i].iov_len) != 0)
        {
            return WSH_ERROR;
        }
    }
    return WSH_OK;
}

int
wsh_channel_next(struct bufferevent *bev, wsh_channel_msg_t *msg,
    u_char **payload)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t avail = evbuffer_get_length(in);

    if (avail < sizeof(*msg)) {
        return WSH_AGAIN;
    }
    evbuffer_copyout(in, msg, sizeof(*msg));
    if (msg->len > WSH_CHANNEL_MAX_FRAME) {
        return WSH_ERROR;
    }
    if (avail < sizeof(*msg) + msg->len) {
        return WSH_AGAIN;
    }
    *payload = evbuffer_pullup(in, (ev_ssize_t) (sizeof(*msg) + msg->len));
    if (*payload == NULL) {
        return WSH_ERROR;
    }
    *payload += sizeof(*msg);
    return WSH_OK;
}

void
wsh_channel_consume(struct bufferevent *bev, const wsh_channel_msg_t *msg)
{
    evbuffer_drain(bufferevent_get_input(bev), sizeof(*msg) + msg->len);
}

size_t
wsh_channel_flush(struct bufferevent *bev, wsh_msec_t timeout)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    wsh_msec_t deadline = wsh_monotonic_msec() + timeout, now;
    struct pollfd pfd;

    pfd.fd = bufferevent_getfd(bev);
    pfd.events = POLLOUT;
    /* Ours from here on. A socket bufferevent keeps the start of its
     * output frozen for everybody but itself. */
    bufferevent_disable(bev, EV_WRITE);
    evbuffer_unfreeze(out, 1);
    while (evbuffer_get_length(out) > 0) {
        if (evbuffer_write(out, pfd.fd) > 0) {
            continue;
        }
        if (errno != EAGAIN && errno != EINTR) {
            break;                          /* the peer is gone */
        }
        now = wsh_monotonic_msec();
        if (now >= deadline) {
            break;
        }
        (void) poll(&pfd, 1, (int) (deadline - now));
    }
    evbuffer_freeze(out, 1);
    return evbuffer_get_length(out);
}

size_t
wsh_channel_read_rest(struct bufferevent *bev,
    void (*consume)(struct bufferevent *bev, void *arg), void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    int fd = bufferevent_getfd(bev);

    /* Its input's end is frozen for everybody but the bufferevent. */
    bufferevent_disable(bev, EV_READ);
    evbuffer_unfreeze(in, 0);
    consume(bev, arg);                      /* what libevent read before */
    while (evbuffer_read(in, fd, 1 << 16) > 0) {
        consume(bev, arg);
    }
    evbuffer_freeze(in, 0);
    return evbuffer_get_length(in);
}
