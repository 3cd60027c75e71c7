/* channel.h -- master <-> worker channels (one socketpair per worker).
 *
 * A stream of frames: an 8-byte header (command, payload length) and the
 * payload. Process commands have no payload; the local engine's messages
 * (engine/wire.h) ride the same channel, so every worker's view of the
 * master stays in one order. Both ends use bufferevents: neither side
 * ever blocks on the other.
 */
#ifndef WSH_CHANNEL_H
#define WSH_CHANNEL_H

#include "core/core.h"

#include <sys/uio.h>

#include <event2/bufferevent.h>

enum {
    WSH_CMD_QUIT = 1,       /* drain with 1001, then exit (stop, QUIT) */
    WSH_CMD_RESTART,        /* drain with 1012, then exit (reload) */
    WSH_CMD_TERMINATE,      /* close everything now, exit */
    WSH_CMD_REOPEN          /* reopen log files */
};

typedef struct {
    uint32_t cmd;
    uint32_t len;           /* payload bytes following */
} wsh_channel_msg_t;

/* A frame larger than this is a bug on the other side: the channel is
 * then considered broken. */
#define WSH_CHANNEL_MAX_FRAME ((uint32_t) 256 << 20)

/* A socketpair for one worker: fds[0] stays in the master, fds[1] goes
 * to the worker. Both close-on-exec. */
int wsh_channel_open(int fds[2]);

/* Queue a frame of CMD whose payload is the N iovecs. */
int wsh_channel_write(struct bufferevent *bev, uint32_t cmd,
    const struct iovec *iov, int n);

/* The next complete frame in BEV's input: WSH_OK with its header and a
 * contiguous payload (valid until wsh_channel_consume()), WSH_AGAIN when
 * incomplete, WSH_ERROR when the length is absurd. */
int wsh_channel_next(struct bufferevent *bev, wsh_channel_msg_t *msg,
    u_char **payload);

void wsh_channel_consume(struct bufferevent *bev, const wsh_channel_msg_t *msg);

#endif /* WSH_CHANNEL_H */
