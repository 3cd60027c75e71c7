/* io.h -- a client connection's socket I/O, without a bufferevent.
 *
 * Every connection is registered once, edge-triggered for reading and
 * writing, with the worker's own epoll set, its io record as the event's
 * data: no epoll_ctl per write and no struct event per connection. The
 * epoll set is one libevent event in the worker's loop, beside timers,
 * signals and channels.
 *
 * Input is read into one worker-wide scratch buffer and handed to the
 * connection at once: the HTTP and frame parsers keep what they need,
 * so an idle connection holds no input buffer.
 *
 * Output is a list of pieces referring to reference-counted blocks.
 * Bytes a connection writes are copied into the worker's current block;
 * a broadcast frame is put into a block once and referenced by every
 * recipient. Pieces that continue each other in the same block merge, so
 * a recipient owed several consecutive frames gets one iovec. Written
 * output puts the connection on the worker's pending list, written at
 * the end of the loop turn: one writev per connection covering all it is
 * owed. What is left after EAGAIN is copied into a block of the
 * connection's own (a slow reader does not pin the shared blocks) and
 * waits for EPOLLOUT; write_wait without progress is a timeout.
 */
#ifndef WSH_IO_H
#define WSH_IO_H

#include "core/core.h"

#include <event2/event.h>
#include <openssl/ssl.h>

typedef struct wsh_oblock_s wsh_oblock_t;
typedef struct wsh_opiece_s wsh_opiece_t;
typedef struct wsh_io_s wsh_io_t;

struct wsh_io_s {
    wsh_opiece_t   *out_last;       /* output: the newest piece */
    /* Not stalled: on the list of this turn's writes and cut-short
     * reads, or (delayed) on the list of broadcasts waiting for
     * write_delay, or on none. Stalled: on the stalled list, by
     * progress. */
    wsh_queue_t     link;
    SSL            *ssl;            /* NULL: plain TCP */
    uint32_t        progress;       /* last write progress, msec mod 2^32 */
    uint32_t        out_bytes;
    int             fd;
    uint8_t         read_more:1;    /* a read round was cut short */
    uint8_t         stalled:1;      /* output blocked: waiting for EPOLLOUT */
    uint8_t         handshake:1;    /* TLS handshake under way */
    uint8_t         stopped:1;      /* closed: no more callbacks */
    uint8_t         delayed:1;      /* on the write_delay list */
    uint8_t         held:1;         /* the owner takes no input now */
    uint8_t         unread:1;       /* input may wait while held */
};

enum {
    WSH_IO_EOF = 1,                 /* the peer closed */
    WSH_IO_ERROR,                   /* why: errno's or OpenSSL's words */
    WSH_IO_TIMEOUT                  /* write_wait without progress */
};

typedef struct {
    /* LEN bytes arrived; all of them are consumed (DATA is scratch). */
    void (*read)(wsh_io_t *io, u_char *data, size_t len);
    void (*error)(wsh_io_t *io, int what, const char *why);
    /* The output that was queued has all been written. */
    void (*drained)(wsh_io_t *io);
} wsh_io_handler_t;

/* Per worker: the epoll set and its event, the pending-list event, the
 * scratch buffer. WRITE_WAIT: 0 for none. WRITE_DELAY: how long output
 * queued with wsh_io_write_block() may wait to be written with more
 * (0: at the end of the loop turn, like the rest). READ_PAUSE: a
 * connection whose blocked output reaches it is not read until that
 * output is gone (backpressure: a client that sends faster than it
 * reads its answers is slowed down by TCP, not closed). */
int wsh_io_init_worker(struct event_base *base, const wsh_io_handler_t *h,
    wsh_msec_t write_wait, wsh_msec_t write_delay, size_t read_pause);
void wsh_io_exit_worker(void);

/* Take over the non-blocking socket FD; a TLS server session on it when
 * SSL is not NULL (the handshake runs before the first read callback). */
int wsh_io_open(wsh_io_t *io, int fd, SSL *ssl);

/* HOLD: no read callbacks until released (the owner cannot take input
 * yet: an HTTP answer it awaits); the socket keeps what arrives, and on
 * release it is read at the end of the turn. */
void wsh_io_hold(wsh_io_t *io, bool hold);

/* No more callbacks for IO (the connection is closing). */
void wsh_io_stop(wsh_io_t *io);

/* Free the output, leave the epoll set, close the socket. */
void wsh_io_close(wsh_io_t *io);

/* Queue a copy of LEN bytes; -1 on ENOMEM. */
int wsh_io_write(wsh_io_t *io, const void *data, size_t len);

/* Queue LEN bytes at P inside block B by reference, written within
 * write_delay (a broadcast); -1 on ENOMEM. */
int wsh_io_write_block(wsh_io_t *io, wsh_oblock_t *b, const u_char *p,
    size_t len);

/* LEN contiguous bytes in an output block, to fill and then queue on
 * any number of connections; *B holds one reference for the caller. */
u_char *wsh_io_reserve(size_t len, wsh_oblock_t **b);
void wsh_oblock_release(wsh_oblock_t *b);

/* One last non-blocking write of what is queued (about to be freed). */
void wsh_io_write_now(wsh_io_t *io);

/* End the write side after the output: TLS close_notify, then
 * shutdown(SHUT_WR). -1 when the socket is already gone. */
int wsh_io_shutdown(wsh_io_t *io);

/* Bytes queued on connections that are waiting for EPOLLOUT: the
 * worker's backlog, for limits.worker_send_buffer. */
size_t wsh_io_backlog(void);

#endif /* WSH_IO_H */
