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

/* A process about to exit: write what BEV still queues to its socket,
 * waiting up to TIMEOUT ms for the peer to make room. Returns the bytes
 * left unsent (the peer is gone, or did not read in time). */
size_t wsh_channel_flush(struct bufferevent *bev, wsh_msec_t timeout);

/* The peer exited: read what it left in the socket up to EOF, calling
 * CONSUME after each read (and once for what is already buffered), so
 * that no frame it sent is lost. Returns the bytes of an incomplete
 * last frame (CONSUME left them). */
size_t wsh_channel_read_rest(struct bufferevent *bev,
    void (*consume)(struct bufferevent *bev, void *arg), void *arg);

#endif /* WSH_CHANNEL_H */
