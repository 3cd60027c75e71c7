/* channel.c -- framing on the master/worker socketpairs.
 *
 * The worker reads EOF on its channel when the master dies, so orphaned
 * workers drain and exit instead of lingering.
 */
#include "process/channel.h"
#include "core/log.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>

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
