/* io.c -- a client connection's socket I/O: see io.h for the design. */
#include "net/io.h"
#include "net/tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>

struct wsh_oblock_s {
    unsigned  refs;
    uint32_t  size;
    uint32_t  used;
    u_char    data[];
};

struct wsh_opiece_s {
    wsh_opiece_t   *next;
    wsh_oblock_t   *block;
    u_char         *pos;
    size_t          len;
};

/* A connection's output is a circular list held by its newest piece
 * (one pointer in every connection instead of two): out_last->next is
 * the oldest. */
#define io_first(c)     ((c)->out_last != NULL ? (c)->out_last->next : NULL)
#define io_next(c, p)   ((p) == (c)->out_last ? NULL : (p)->next)

/* Shared blocks: big enough that one holds a loop turn's broadcasts,
 * small enough that a pool of them is cheap. Writes over a quarter of
 * that get a block of their own. */
#define IO_BLOCK_SIZE   (32 * 1024)
#define IO_BLOCK_POOL   64
/* Free pieces kept for reuse: this many, and one more per open
 * connection, so that a broadcast to a room of every connection takes
 * and gives back its pieces without malloc and free for each recipient
 * (a piece each: 10,000 of them for one message to 10,000). What a
 * burst leaves in the pool is at most 32 bytes (48 with malloc's) an
 * open connection. */
#define IO_PIECE_POOL   4096
#define IO_SCRATCH      (64 * 1024)
/* Reads per connection per wakeup: a client that floods does not keep
 * the others waiting; it is read again at the end of the turn. */
#define IO_READ_ROUNDS  4
/* Broadcast deliveries per loop turn after which a connection gets no
 * second read in that turn: a publisher to a hot room then publishes
 * one read's worth per turn, and the rest of the worker (other
 * clients, timers, handshakes) has its turn between. */
#define IO_TURN_DELIVERIES  (256 * 1024)
#define IO_IOV          64
#define IO_EVENTS       256
/* A TLS record holds at most 16 KiB. */
#define IO_TLS_CHUNK    (16 * 1024)

static struct {
    const wsh_io_handler_t *h;
    struct event   *epoll_event;
    struct event   *pending_event;
    struct event   *stall_timer;
    struct event   *delay_timer;
    wsh_msec_t      write_wait;
    wsh_msec_t      write_delay;
    size_t          read_pause;
    size_t          read_size;      /* at most read_pause: see io_read */
    int             epfd;
    wsh_queue_t     pending;
    bool            turn_end;       /* inside io_pending_cb */
    size_t          deliveries;     /* broadcast appends this turn */
    wsh_queue_t     delayed;
    wsh_queue_t     stalled;
    size_t          backlog;
    wsh_oblock_t   *cur;            /* the block being filled */
    wsh_oblock_t   *free_blocks[IO_BLOCK_POOL];
    unsigned        nfree_blocks;
    wsh_opiece_t   *free_pieces;
    unsigned        nfree_pieces;
    unsigned        nopen;          /* connections open: the pool's size */
    u_char         *scratch;
} io;

static wsh_oblock_t *
io_block_new(size_t len)
{
    wsh_oblock_t *b;

    if (len <= IO_BLOCK_SIZE && io.nfree_blocks > 0) {
        b = io.free_blocks[--io.nfree_blocks];
    } else {
        if (len < IO_BLOCK_SIZE) {
            len = IO_BLOCK_SIZE;
        }
        b = malloc(sizeof(*b) + len);
        if (b == NULL) {
            return NULL;
        }
        b->size = (uint32_t) len;
    }
    b->refs = 1;
    b->used = 0;
    return b;
}

void
wsh_oblock_release(wsh_oblock_t *b)
{
    if (--b->refs != 0) {
        return;
    }
    if (b->size == IO_BLOCK_SIZE && io.nfree_blocks < IO_BLOCK_POOL) {
        io.free_blocks[io.nfree_blocks++] = b;
        return;
    }
    free(b);
}

u_char *
wsh_io_reserve(size_t len, wsh_oblock_t **bp)
{
    wsh_oblock_t *b;
    u_char *p;

    if (len > IO_BLOCK_SIZE / 4) {
        b = io_block_new(len);
        if (b == NULL) {
            return NULL;
        }
        b->used = (uint32_t) len;
        *bp = b;
        return b->data;
    }
    if (io.cur == NULL || io.cur->size - io.cur->used < len) {
        b = io_block_new(IO_BLOCK_SIZE);
        if (b == NULL) {
            return NULL;
        }
        if (io.cur != NULL) {
            wsh_oblock_release(io.cur);
        }
        io.cur = b;
    }
    p = io.cur->data + io.cur->used;
    io.cur->used += (uint32_t) len;
    io.cur->refs++;
    *bp = io.cur;
    return p;
}

static wsh_opiece_t *
io_piece_new(void)
{
    wsh_opiece_t *p = io.free_pieces;

    if (p != NULL) {
        io.free_pieces = p->next;
        io.nfree_pieces--;
        return p;
    }
    return malloc(sizeof(*p));
}

static void
io_piece_free(wsh_opiece_t *p)
{
    wsh_oblock_release(p->block);
    if (io.nfree_pieces < IO_PIECE_POOL + io.nopen) {
        p->next = io.free_pieces;
        io.free_pieces = p;
        io.nfree_pieces++;
        return;
    }
    free(p);
}

static void
io_count(wsh_io_t *c, size_t added, size_t removed)
{
    c->out_bytes = (uint32_t) (c->out_bytes + added - removed);
    if (c->stalled) {
        io.backlog += added;
        io.backlog -= removed;
    }
}

/* io_pending_cb at the end of this loop turn; from io_pending_cb itself,
 * at the end of the next one. libevent runs an event activated from its
 * own callback in the same pass, before it polls again: a client that
 * always had more to read kept the worker there, and nobody else was
 * served (two flooding clients starved every other connection). */
static void
io_schedule_turn_end(void)
{
    static const struct timeval next_turn = { 0, 0 };

    if (io.turn_end) {
        evtimer_add(io.pending_event, &next_turn);
    } else {
        event_active(io.pending_event, EV_TIMEOUT, 0);
    }
}

/* Write at the end of this loop turn. Inlined where output is
 * queued, once per recipient of a broadcast: what a fan-out pays for
 * its calls (the registers saved and restored at each of the four
 * levels down from the engine's loop) was as much as their work. */
static inline __attribute__((always_inline)) void
io_pending(wsh_io_t *c)
{
    if (c->stopped || c->stalled) {
        return;                 /* a stalled one waits for EPOLLOUT */
    }
    if (c->delayed) {
        /* Written this turn after all, its broadcasts with the rest. */
        c->delayed = 0;
        wsh_queue_remove(&c->link);
    } else if (wsh_queue_linked(&c->link)) {
        return;
    }
    if (wsh_queue_empty(&io.pending)) {
        io_schedule_turn_end();
    }
    wsh_queue_insert_tail(&io.pending, &c->link);
}

/* Write within write_delay: a busy room's messages of that time leave
 * together, one write per recipient instead of one per loop turn. */
static void
io_delay(wsh_io_t *c)
{
    struct timeval tv;

    if (c->stopped || c->stalled || wsh_queue_linked(&c->link)) {
        return;
    }
    if (wsh_queue_empty(&io.delayed)) {
        tv.tv_sec = (time_t) (io.write_delay / 1000);
        tv.tv_usec = (suseconds_t) (io.write_delay % 1000) * 1000;
        evtimer_add(io.delay_timer, &tv);
    }
    c->delayed = 1;
    wsh_queue_insert_tail(&io.delayed, &c->link);
}

/* Append LEN bytes at P of B (one new reference) to C's output: the
 * last piece grows when P continues it. DELAY: a broadcast, which may
 * wait for write_delay. Inlined into its three callers (see
 * io_pending). */
static inline __attribute__((always_inline)) int
io_append(wsh_io_t *c, wsh_oblock_t *b, u_char *p, size_t len, bool delay)
{
    wsh_opiece_t *last = c->out_last, *n;

    if (last != NULL && last->block == b && last->pos + last->len == p) {
        last->len += len;
        wsh_oblock_release(b);
    } else {
        n = io_piece_new();
        if (n == NULL) {
            wsh_oblock_release(b);
            return -1;
        }
        n->block = b;
        n->pos = p;
        n->len = len;
        if (last != NULL) {
            n->next = last->next;
            last->next = n;
        } else {
            n->next = n;
        }
        c->out_last = n;
    }
    io_count(c, len, 0);
    if (delay && io.write_delay != 0) {
        io_delay(c);
    } else {
        io_pending(c);
    }
    return 0;
}

/* A stalled connection's output goes into its own block: the room at
 * the end of its last piece's block when that block is its alone (the
 * bytes then extend that piece), else a new block. */
static int
io_append_private(wsh_io_t *c, const void *data, size_t len)
{
    wsh_opiece_t *last = c->out_last;
    wsh_oblock_t *b;
    u_char *p;

    if (last != NULL && last->block->refs == 1
        && last->pos + last->len == last->block->data + last->block->used
        && last->block->size - last->block->used >= len)
    {
        b = last->block;
        b->refs++;              /* io_append's, dropped when it merges */
    } else {
        b = io_block_new(len);
        if (b == NULL) {
            return -1;
        }
    }
    p = b->data + b->used;
    memcpy(p, data, len);
    b->used += (uint32_t) len;
    return io_append(c, b, p, len, false);
}

int
wsh_io_write(wsh_io_t *c, const void *data, size_t len)
{
    wsh_oblock_t *b;
    u_char *p;

    if (len == 0) {
        return 0;
    }
    if (c->stalled) {
        return io_append_private(c, data, len);
    }
    p = wsh_io_reserve(len, &b);
    if (p == NULL) {
        return -1;
    }
    memcpy(p, data, len);
    return io_append(c, b, p, len, false);
}

int
wsh_io_write_block(wsh_io_t *c, wsh_oblock_t *b, const u_char *p,
    size_t len)
{
    if (c->stalled) {
        return io_append_private(c, p, len);
    }
    b->refs++;
    io.deliveries++;
    return io_append(c, b, (u_char *) p, len, true);
}

/* Drop N written bytes from the front of C's output. */
static void
io_consume(wsh_io_t *c, size_t n)
{
    wsh_opiece_t *p;

    io_count(c, 0, n);
    while (n > 0) {
        p = io_first(c);
        if (n < p->len) {
            p->pos += n;
            p->len -= n;
            return;
        }
        n -= p->len;
        if (p == c->out_last) {
            c->out_last = NULL;
        } else {
            c->out_last->next = p->next;
        }
        io_piece_free(p);
    }
}

static void
io_stall_arm(void)
{
    wsh_io_t *c;
    wsh_msec_t at, idle;
    struct timeval tv;

    if (io.write_wait == 0 || wsh_queue_empty(&io.stalled)) {
        return;
    }
    c = wsh_queue_data(wsh_queue_head(&io.stalled), wsh_io_t, link);
    idle = (uint32_t) ((uint32_t) wsh_monotonic_msec() - c->progress);
    at = idle < io.write_wait ? io.write_wait - idle : 0;
    tv.tv_sec = (time_t) (at / 1000);
    tv.tv_usec = (suseconds_t) (at % 1000) * 1000;
    evtimer_add(io.stall_timer, &tv);
}

/* C's blocked output made progress (or just blocked): to the end of the
 * stalled list, which stays ordered by last progress. */
static void
io_stall_touch(wsh_io_t *c)
{
    c->progress = (uint32_t) wsh_monotonic_msec();
    if (wsh_queue_linked(&c->link)) {
        wsh_queue_remove(&c->link);
    }
    wsh_queue_insert_tail(&io.stalled, &c->link);
}

/* The output is blocked: copy it out of the shared blocks into one of
 * C's own, and wait for EPOLLOUT. */
static void
io_stall(wsh_io_t *c)
{
    wsh_opiece_t *first = io_first(c), *p, *next;
    wsh_oblock_t *b;
    size_t n = c->out_bytes, at = 0;

    if (!c->stalled) {
        c->stalled = 1;
        io.backlog += n;
        /* Under ENOMEM the pieces stay where they are. */
        b = first != c->out_last || first->block->refs > 1
            ? io_block_new(n) : NULL;
        if (b != NULL) {
            for (p = first; p != NULL; p = next) {
                next = io_next(c, p);
                memcpy(b->data + at, p->pos, p->len);
                at += p->len;
                if (p != first) {
                    io_piece_free(p);
                }
            }
            wsh_oblock_release(first->block);
            b->used = (uint32_t) n;
            first->block = b;
            first->pos = b->data;
            first->len = n;
            first->next = first;
            c->out_last = first;
        }
    }
    c->delayed = 0;             /* off the pending or delayed list */
    io_stall_touch(c);
    if (!evtimer_pending(io.stall_timer, NULL)) {
        io_stall_arm();
    }
}

static void
io_unstall(wsh_io_t *c)
{
    if (!c->stalled) {
        return;
    }
    c->stalled = 0;
    io.backlog -= c->out_bytes;
    if (wsh_queue_linked(&c->link)) {
        wsh_queue_remove(&c->link);
    }
    if (c->read_more) {
        io_pending(c);          /* input left waiting while blocked */
    }
}

static const char *
io_errno_text(void)
{
    return errno == 0 ? "connection lost" : strerror(errno);
}

/* What the failed SSL call on C that returned R means: -2 try again on
 * the next readiness, 0 the peer closed, -1 an error (*WHY, WHAT naming
 * the step for OpenSSL's reason). errno is cleared before each call. */
static int
io_tls_failed(wsh_io_t *c, int r, const char *what, const char **why)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -2;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        /* Most clients just close the TCP connection: an EOF. */
        if (errno == 0) {
            return 0;
        }
        *why = io_errno_text();
        return -1;
    default:
        *why = wsh_tls_reason(what);
        return -1;
    }
}

/* One TLS write of up to a record from the front of the output.
 * OpenSSL wants a blocked write repeated with the same bytes: output
 * only grows at the end, so the next gathering starts with them and is
 * no shorter. Returns bytes written, 0 to wait, -1 failed. */
static ssize_t
io_tls_write(wsh_io_t *c, const char **why)
{
    u_char buf[IO_TLS_CHUNK];
    size_t n = 0, k;
    wsh_opiece_t *p;
    int r;

    for (p = io_first(c); p != NULL && n < sizeof(buf); p = io_next(c, p)) {
        k = p->len < sizeof(buf) - n ? p->len : sizeof(buf) - n;

        memcpy(buf + n, p->pos, k);
        n += k;
    }
    ERR_clear_error();
    errno = 0;
    r = SSL_write(c->ssl, buf, (int) n);
    if (r > 0) {
        return r;
    }
    switch (io_tls_failed(c, r, "TLS error", why)) {
    case -2:
        return 0;
    case 0:
        *why = io_errno_text();     /* closed under a write */
        return -1;
    default:
        return -1;
    }
}

/* One writev of the front of C's plain output; as writev(). */
static ssize_t
io_writev(wsh_io_t *c)
{
    struct iovec iov[IO_IOV];
    wsh_opiece_t *p;
    int n = 0;

    for (p = io_first(c); p != NULL && n < IO_IOV; p = io_next(c, p)) {
        iov[n].iov_base = p->pos;
        iov[n++].iov_len = p->len;
    }
    return writev(c->fd, iov, n);
}

/* Write C's output until it is gone or the socket is full. */
static void
io_flush(wsh_io_t *c)
{
    const char *why = NULL;
    ssize_t r;

    while (c->out_last != NULL && !c->stopped) {
        if (c->ssl != NULL) {
            if (c->handshake) {
                return;         /* output waits for the handshake */
            }
            r = io_tls_write(c, &why);
        } else {
            r = io_writev(c);
            if (r < 0) {
                if (errno == EINTR) {
                    continue;
                }
                r = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
                why = io_errno_text();
            }
        }
        if (r < 0) {
            io.h->error(c, WSH_IO_ERROR, why);
            return;
        }
        if (r == 0) {
            io_stall(c);
            return;
        }
        io_consume(c, (size_t) r);
        if (c->stalled) {
            io_stall_touch(c);
        }
    }
    if (c->out_last == NULL) {
        io_unstall(c);
        if (!c->stopped) {
            io.h->drained(c);
        }
    }
}

static void
io_read_tls_handshake(wsh_io_t *c)
{
    const char *why = NULL;
    int r;

    ERR_clear_error();
    errno = 0;
    r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->handshake = 0;
        return;
    }
    switch (io_tls_failed(c, r, "TLS handshake failed", &why)) {
    case -2:
        return;
    case 0:
        io.h->error(c, WSH_IO_EOF, NULL);
        return;
    default:
        io.h->error(c, WSH_IO_ERROR, why);
    }
}

/* One read: bytes, 0 at EOF, -1 error (*why), -2 nothing now. */
static ssize_t
io_read_once(wsh_io_t *c, const char **why)
{
    ssize_t n;

    if (c->ssl == NULL) {
        do {
            n = read(c->fd, io.scratch, io.read_size);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return -2;
            }
            *why = io_errno_text();
        }
        return n;
    }
    ERR_clear_error();
    errno = 0;
    n = SSL_read(c->ssl, io.scratch, (int) io.read_size);
    if (n > 0) {
        return n;
    }
    n = io_tls_failed(c, (int) n, "TLS error", why);
    if (n == -2 && SSL_want_write(c->ssl)) {
        c->read_more = 1;       /* retried at the end of the turn */
    }
    return n;
}

static void
io_read(wsh_io_t *c)
{
    const char *why = NULL;
    ssize_t n;
    int i;

    if (c->held) {
        c->unread = 1;          /* read when released: wsh_io_hold */
        c->read_more = 0;
        return;
    }
    if (c->out_bytes >= io.read_pause) {
        /* Read again once the output has left (at the end of this turn,
         * or when the socket takes it: io_unstall). */
        c->read_more = 1;
        return;
    }
    c->read_more = 0;
    if (c->handshake) {
        io_read_tls_handshake(c);
        if (c->handshake || c->stopped) {
            return;
        }
    }
    for (i = 0; i < IO_READ_ROUNDS && !c->stopped && !c->held
                && c->out_bytes < io.read_pause
                && (i == 0 || io.deliveries < IO_TURN_DELIVERIES); i++)
    {
        n = io_read_once(c, &why);
        if (n == -2) {
            return;
        }
        if (n <= 0) {
            io.h->error(c, n == 0 ? WSH_IO_EOF : WSH_IO_ERROR, why);
            return;
        }
        io.h->read(c, io.scratch, (size_t) n);
        /* A short plain read emptied the socket; TLS may hold more
         * decrypted bytes than the socket shows. */
        if (c->ssl == NULL && (size_t) n < io.read_size) {
            return;
        }
    }
    if (c->held) {
        c->unread = 1;
    } else if (!c->stopped) {
        c->read_more = 1;
    }
}

void
wsh_io_hold(wsh_io_t *c, bool hold)
{
    c->held = hold;
    if (!hold && c->unread && !c->stopped) {
        c->unread = 0;
        c->read_more = 1;
        io_pending(c);
    }
}

static void
io_ready(wsh_io_t *c, uint32_t events)
{
    if (c->stopped) {
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        io_read(c);
    } else if (c->handshake) {
        io_read(c);             /* the handshake wanted to write */
    }
    if (c->stalled && !c->stopped) {
        io_flush(c);
    }
    if (c->read_more) {
        io_pending(c);
    }
}

static void
io_epoll_cb(evutil_socket_t fd, short what, void *arg)
{
    struct epoll_event ev[IO_EVENTS];
    int i, n;

    io.deliveries = 0;          /* a new turn */
    n = epoll_wait(io.epfd, ev, IO_EVENTS, 0);
    for (i = 0; i < n; i++) {
        io_ready(ev[i].data.ptr, ev[i].events);
    }
}

/* The end of the loop turn: the reads that were cut short, then one
 * write per connection for everything it was given this turn. */
static void
io_pending_cb(evutil_socket_t fd, short what, void *arg)
{
    wsh_queue_t list, *q;
    wsh_io_t *c;

    if (wsh_queue_empty(&io.pending)) {
        return;
    }
    /* Work on this turn's list: what is queued meanwhile waits for the
     * next turn (io_schedule_turn_end), so a flood cannot hold the loop
     * here. */
    list = io.pending;
    list.next->prev = &list;
    list.prev->next = &list;
    wsh_queue_init(&io.pending);
    io.turn_end = true;
    while (!wsh_queue_empty(&list)) {
        q = wsh_queue_head(&list);
        wsh_queue_remove(q);
        c = wsh_queue_data(q, wsh_io_t, link);
        if (c->read_more && !c->stopped) {
            io_read(c);
        }
        if (c->out_last != NULL && !c->stalled && !c->stopped) {
            io_flush(c);
        }
        if (c->read_more) {
            io_pending(c);
        }
    }
    io.turn_end = false;
    io.deliveries = 0;
}

/* write_delay is up: the delayed connections join this turn's writes. */
static void
io_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    wsh_queue_t *q;

    while (!wsh_queue_empty(&io.delayed)) {
        q = wsh_queue_head(&io.delayed);
        wsh_queue_remove(q);
        wsh_queue_data(q, wsh_io_t, link)->delayed = 0;
        io_pending(wsh_queue_data(q, wsh_io_t, link));
    }
}

static void
io_stall_cb(evutil_socket_t fd, short what, void *arg)
{
    uint32_t now = (uint32_t) wsh_monotonic_msec();
    wsh_io_t *c;

    while (!wsh_queue_empty(&io.stalled)) {
        c = wsh_queue_data(wsh_queue_head(&io.stalled), wsh_io_t, link);
        if ((uint32_t) (now - c->progress) < io.write_wait) {
            break;
        }
        wsh_queue_remove(&c->link);
        if (!c->stopped) {
            io.h->error(c, WSH_IO_TIMEOUT, NULL);
        }
    }
    io_stall_arm();
}

int
wsh_io_init_worker(struct event_base *base, const wsh_io_handler_t *h,
    wsh_msec_t write_wait, wsh_msec_t write_delay, size_t read_pause)
{
    io.h = h;
    io.read_pause = read_pause;
    /* One read's answers (an echo's) must fit under the pause mark
     * with room to spare, or a small send_buffer would be overrun by a
     * single read before backpressure could act. */
    io.read_size = read_pause / 2 < IO_SCRATCH ? read_pause / 2 : IO_SCRATCH;
    if (io.read_size < 4096) {
        io.read_size = 4096;
    }
    io.write_wait = write_wait;
    io.write_delay = write_delay;
    wsh_queue_init(&io.pending);
    wsh_queue_init(&io.delayed);
    wsh_queue_init(&io.stalled);
    io.epfd = epoll_create1(EPOLL_CLOEXEC);
    io.scratch = malloc(IO_SCRATCH);
    if (io.epfd == -1 || io.scratch == NULL) {
        return WSH_ERROR;
    }
    io.epoll_event = event_new(base, io.epfd, EV_READ | EV_PERSIST,
                               io_epoll_cb, NULL);
    io.pending_event = event_new(base, -1, 0, io_pending_cb, NULL);
    io.stall_timer = evtimer_new(base, io_stall_cb, NULL);
    io.delay_timer = evtimer_new(base, io_delay_cb, NULL);
    if (io.epoll_event == NULL || io.pending_event == NULL
        || io.stall_timer == NULL || io.delay_timer == NULL
        || event_add(io.epoll_event, NULL) != 0)
    {
        return WSH_ERROR;
    }
    return WSH_OK;
}

void
wsh_io_exit_worker(void)
{
    wsh_opiece_t *p;

    if (io.epoll_event != NULL) {
        event_free(io.epoll_event);
    }
    if (io.pending_event != NULL) {
        event_free(io.pending_event);
    }
    if (io.stall_timer != NULL) {
        event_free(io.stall_timer);
    }
    if (io.delay_timer != NULL) {
        event_free(io.delay_timer);
    }
    if (io.cur != NULL) {
        wsh_oblock_release(io.cur);
        io.cur = NULL;
    }
    while (io.nfree_blocks > 0) {
        free(io.free_blocks[--io.nfree_blocks]);
    }
    while ((p = io.free_pieces) != NULL) {
        io.free_pieces = p->next;
        free(p);
    }
    io.nfree_pieces = 0;
    free(io.scratch);
    io.scratch = NULL;
    if (io.epfd != -1) {
        close(io.epfd);
    }
}

int
wsh_io_open(wsh_io_t *c, int fd, SSL *ssl)
{
    struct epoll_event ev;

    c->fd = fd;
    c->ssl = ssl;
    c->handshake = ssl != NULL;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (epoll_ctl(io.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        return WSH_ERROR;
    }
    io.nopen++;
    return WSH_OK;
}

void
wsh_io_stop(wsh_io_t *c)
{
    c->stopped = 1;
    if (!c->stalled && wsh_queue_linked(&c->link)) {
        wsh_queue_remove(&c->link);
        c->delayed = 0;
    }
}

void
wsh_io_close(wsh_io_t *c)
{
    wsh_io_stop(c);
    io_unstall(c);
    if (c->out_last != NULL) {
        io_consume(c, c->out_bytes);
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        ERR_clear_error();
        c->ssl = NULL;
    }
    (void) epoll_ctl(io.epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    io.nopen--;
}

void
wsh_io_write_now(wsh_io_t *c)
{
    const char *why;
    ssize_t r;

    if (c->out_last == NULL || c->handshake) {
        return;
    }
    r = c->ssl != NULL ? io_tls_write(c, &why) : io_writev(c);
    if (r > 0) {
        io_consume(c, (size_t) r);
    }
}

int
wsh_io_shutdown(wsh_io_t *c)
{
    if (c->ssl != NULL && SSL_is_init_finished(c->ssl)) {
        (void) SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    return shutdown(c->fd, SHUT_WR);
}

size_t
wsh_io_backlog(void)
{
    return io.backlog;
}
