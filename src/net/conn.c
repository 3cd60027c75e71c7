/* conn.c -- one client connection: HTTP head, upgrade, WebSocket, close.
 *
 * Each connection is this struct around its socket I/O (net/io.c). Input
 * goes straight from the worker's read buffer to the HTTP parser, then
 * the frame parser, then the endpoint's module. Output is queued by
 * net/io.c and bounded by send_buffer.
 *
 * Timers cost no memory per connection: handshake deadlines and keepalive
 * pings are FIFO queues (every connection has the same timeout, so the
 * head is always the next to expire) each driven by one worker timer.
 * Silence (pong_wait) is checked when a ping is due; a stuck writer
 * (write_wait) is net/io.c's; a closing connection's close_timeout is
 * another FIFO queue.
 *
 * A connection is never freed inside a callback that may still use it:
 * closing moves it to the worker's dead list, freed on the next loop turn.
 */
#include "net/conn.h"
#include "core/log.h"
#include "core/stats.h"
#include "engine/engine.h"
#include "net/tls.h"
#include "net/limit.h"
#include "net/pending.h"
#include "process/worker.h"
#include "ws/handshake.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_finalize(wsh_conn_t *c, const char *why);

static struct timeval
conn_tv(wsh_msec_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t) (ms / 1000);
    tv.tv_usec = (suseconds_t) ((ms % 1000) * 1000);
    return tv;
}

/* "ip:port" of the peer in a static buffer, valid until the next call. */
/* "ip:port" or "[ip6]:port" of SA, in a static buffer. */
static const char *
conn_addr_text(const struct sockaddr *sa)
{
    static char text[INET6_ADDRSTRLEN + 8];
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;
    const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(text, sizeof(text), "%s:%u", ip, ntohs(sin->sin_port));
    }
    return text;
}

const char *
wsh_conn_peer(const wsh_conn_t *c)
{
    return conn_addr_text(&c->peer.sa);
}

static void conn_log(int level, const wsh_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conn_log(int level, const wsh_conn_t *c, const char *fmt, ...)
{
    va_list ap;

    if (!wsh_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    wsh_log_verror(level, c->id, wsh_conn_peer(c), fmt, ap);
    va_end(ap);
}

/* Deadlines are kept in 32 bits, msec mod 2^32 (timeouts are far
 * shorter than the 49 days that wrap around): is NOW before AT? */
static bool
conn_before(wsh_msec_t now, uint32_t at)
{
    return (int32_t) (at - (uint32_t) now) > 0;
}

/* Arm a FIFO timer queue's event for its head, if not armed yet. */
static void
conn_timer_arm(wsh_queue_t *q, struct event *ev)
{
    wsh_conn_t *head;
    wsh_msec_t now;
    struct timeval tv;

    if (wsh_queue_empty(q) || evtimer_pending(ev, NULL)) {
        return;
    }
    head = wsh_queue_data(wsh_queue_head(q), wsh_conn_t, timer_link);
    now = wsh_monotonic_msec();
    tv = conn_tv(conn_before(now, head->deadline)
                 ? (uint32_t) (head->deadline - (uint32_t) now) : 0);
    evtimer_add(ev, &tv);
}

static void
conn_timer_unlink(wsh_conn_t *c)
{
    if (wsh_queue_linked(&c->timer_link)) {
        wsh_queue_remove(&c->timer_link);
    }
}

/* The head of a FIFO timer queue, unlinked, if its deadline has come. */
static wsh_conn_t *
conn_timer_due(wsh_queue_t *q, wsh_msec_t now)
{
    wsh_conn_t *c;

    if (wsh_queue_empty(q)) {
        return NULL;
    }
    c = wsh_queue_data(wsh_queue_head(q), wsh_conn_t, timer_link);
    if (conn_before(now, c->deadline)) {
        return NULL;
    }
    wsh_queue_remove(&c->timer_link);
    return c;
}

/* Put C at the end of timer queue Q (every entry of a queue waits as
 * long: AFTER msec), driven by EV. */
static void
conn_timer_add(wsh_conn_t *c, wsh_queue_t *q, struct event *ev,
    wsh_msec_t after)
{
    conn_timer_unlink(c);
    c->deadline = (uint32_t) (wsh_monotonic_msec() + after);
    wsh_queue_insert_tail(q, &c->timer_link);
    conn_timer_arm(q, ev);
}

static void
conn_handshake_deadline(wsh_conn_t *c)
{
    conn_timer_add(c, &wsh_worker.handshakes, wsh_worker.handshake_timer,
                   wsh_worker.conf->handshake_timeout);
}

/* A connection refused at accept time: counted (STAT), logged at most
 * once a second, and answered 503 with Retry-After where that can be
 * written at once (not before a TLS handshake). Best effort: a client
 * that sent its request already may see a reset instead. */
static void
conn_refuse(int fd, const struct sockaddr *sa, bool tls, int stat,
    const char *why)
{
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\nServer: wshub\r\n"
        "Retry-After: 1\r\nContent-Type: text/plain\r\n"
        "Content-Length: 32\r\nConnection: close\r\n\r\n"
        "503 Service Unavailable: busy\r\n\r\n";
    unsigned skipped;

    wsh_stat_add(stat, 1);
    if (wsh_limit_log_ok(&skipped)) {
        wsh_log(WSH_LOG_WARN, "refused %s: %s (%u refusals before this one "
                "not logged)", conn_addr_text(sa), why, skipped);
    }
    if (!tls) {
        (void) send(fd, resp, sizeof(resp) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    close(fd);
}

/* Out of sockets: close the oldest handshake of the address holding
 * most, so that one client's half-sent requests cannot lock others out.
 * False when every socket is a WebSocket. */
static bool
conn_make_room(void)
{
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\nServer: wshub\r\n"
        "Retry-After: 1\r\nContent-Length: 0\r\nConnection: close"
        "\r\n\r\n";
    wsh_conn_t *victim = wsh_pending_victim();
    unsigned skipped;

    if (victim == NULL) {
        return false;
    }
    wsh_stat_add(WSH_STAT_REFUSED_EVICTED, 1);
    if (wsh_limit_log_ok(&skipped)) {
        conn_log(WSH_LOG_WARN, victim, "out of sockets: closing the oldest "
                 "handshake of the address holding most (%u not logged)",
                 skipped);
    }
    if (victim->io.ssl == NULL && victim->io.out_bytes == 0) {
        (void) send(victim->io.fd, resp, sizeof(resp) - 1,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    conn_finalize(victim, NULL);
    wsh_conn_free_dead();               /* its socket, now */
    return true;
}

void
wsh_conn_accept(int fd, const struct sockaddr *sa, socklen_t len,
    const wsh_listening_t *ls)
{
    struct ssl_ctx_st *tls = ls->addr.tls ? wsh_worker.cycle->tls_ctx : NULL;
    const wsh_conf_t *cf = wsh_worker.conf;
    wsh_conn_t *c;
    SSL *ssl;
    int one = 1, sndbuf = (int) cf->send_buffer;

    /* Handshakes are bounded in time by handshake_timeout, in number by
     * per_ip_pending for each address, and all sockets by this hard cap,
     * which keeps a flood from exhausting file descriptors: at the cap
     * the heaviest address's oldest handshake makes room. */
    if (wsh_pending_full(sa, cf->limits.per_ip_pending)) {
        conn_refuse(fd, sa, tls != NULL, WSH_STAT_REFUSED_PENDING,
                    "limits.per_ip_pending reached for this address");
        return;
    }
    if (wsh_worker.nconns >= cf->max_connections + cf->max_connections / 8
                             + 64 && !conn_make_room())
    {
        conn_refuse(fd, sa, tls != NULL, WSH_STAT_REFUSED_SOCKETS,
                    "out of sockets (max_connections x 9/8 + 64), all of "
                    "them WebSockets");
        return;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        wsh_log(WSH_LOG_ALERT, "calloc() failed for a connection");
        close(fd);
        return;
    }
    /* Writes are already coalesced per loop turn: Nagle would only add
     * up to 40 ms to every small reply and fan-out message. */
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* The kernel's part of a client's backlog is bounded too: with the
     * send buffer left to autotuning, a client that stops reading made
     * Linux queue megabytes before send_buffer could act. */
    (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    c->listener = (uint8_t) ls->index;
    ssl = tls != NULL ? wsh_tls_session(tls, fd) : NULL;
    if ((tls != NULL && ssl == NULL) || wsh_io_open(&c->io, fd, ssl) != WSH_OK)
    {
        wsh_log(WSH_LOG_ALERT, "%s failed for a connection: %s",
                tls != NULL && ssl == NULL ? "SSL_new()" : "epoll_ctl()",
                strerror(errno));
        SSL_free(ssl);
        close(fd);
        free(c);
        return;
    }
    if (len <= sizeof(c->peer)) {
        memcpy(&c->peer, sa, len);
    }
    c->id = ++wsh_worker.last_conn_id;
    c->start = wsh_monotonic_msec();
    c->state = WSH_CONN_HTTP;
    c->keep_alive = 1;
    wsh_queue_init(&c->topics);
    wsh_queue_insert_tail(&wsh_worker.conns, &c->link);
    wsh_worker.nconns++;
    wsh_pending_add(c);
    conn_handshake_deadline(c);
    conn_log(WSH_LOG_DEBUG, c, "accepted");
}

/* One access log line: an HTTP answer of BODY bytes, or (WS) a closed
 * WebSocket. A query is left out where it may carry a token. */
static void
conn_access_log(wsh_conn_t *c, int status, size_t body, bool ws)
{
    const wsh_request_t *r = c->req;
    char buf[2048];
    wsh_access_t a;
    size_t n;

    memset(&a, 0, sizeof(a));
    a.client = wsh_conn_peer(c);
    a.method = "-";
    a.method_len = 1;
    a.target = "-";
    a.target_len = 1;
    if (ws) {
        a.method = "GET";
        a.method_len = 3;
        a.target = c->endpoint->path;
        a.target_len = strlen(a.target);
    } else if (r != NULL && r->method != NULL) {
        a.method = r->method;
        a.method_len = r->method_len;
        if (r->target != NULL) {
            a.target = r->target;
            a.target_len = c->endpoint != NULL && c->endpoint->auth != NULL
                           ? r->path_len : r->target_len;
        }
    }
    a.status = status;
    a.websocket = ws;
    a.duration = wsh_monotonic_msec() - c->start;
    a.messages_in = c->msgs_in;
    a.bytes_in = c->bytes_in;
    a.messages_out = c->msgs_out;
    a.bytes_out = c->bytes_out;
    a.body_bytes = body;
    a.close_code = c->close_code;
    a.worker = wsh_worker.id;
    a.user = wsh_conn_user(c, &a.user_len);
    n = wsh_access_format(&wsh_worker.conf->access_format, &a, buf,
                          sizeof(buf) - 1);
    wsh_log_access_line(buf, n);
}

/* Take C out of service now; it is freed on the next loop turn, so the
 * caller (and any module callback up the stack) may still look at it. */
static void
conn_finalize(wsh_conn_t *c, const char *why)
{
    if (c->state == WSH_CONN_DEAD) {
        return;
    }
    if (why != NULL) {
        conn_log(WSH_LOG_INFO, c, "closing: %s", why);
    }
    if (c->websocket && c->close_code == 0) {
        /* Dropped without a closing handshake (RFC 6455 section 7.1.5). */
        c->close_code = WSH_CLOSE_ABNORMAL;
    }
    c->state = WSH_CONN_DEAD;
    wsh_io_stop(&c->io);
    conn_timer_unlink(c);
    wsh_queue_remove(&c->link);
    wsh_queue_insert_tail(&wsh_worker.dead, &c->link);
    event_active(wsh_worker.dead_event, EV_TIMEOUT, 0);
}

static void
conn_free(wsh_conn_t *c)
{
    wsh_pending_remove(c);
    if (c->limited) {
        wsh_limit_release(c->limit_entry);
    }
    if (c->opened && c->endpoint->module->close != NULL) {
        c->endpoint->module->close(c, c->close_code);
    }
    wsh_engine_conn_closed(c);
    if (c->websocket) {
        if (c->ws != NULL) {
            free(c->ws->buf);
            free(c->ws);
        }
        wsh_worker.nwebsockets--;
        wsh_stat_sub(WSH_STAT_CONNECTIONS_ACTIVE, 1);
        wsh_stat_connection_ended(c->close_code,
                                  wsh_monotonic_msec() - c->start);
        if (wsh_log_access_enabled()) {
            conn_access_log(c, 101, 0, true);
        }
    } else if (c->req != NULL) {
        wsh_http_request_free(c->req);
        free(c->req);
    }
    wsh_deflate_free(c->deflate);
    free(c->identity);
    wsh_io_close(&c->io);
    free(c);
    wsh_worker.nconns--;
}

void
wsh_conn_free_dead(void)
{
    wsh_queue_t *q;

    while (!wsh_queue_empty(&wsh_worker.dead)) {
        q = wsh_queue_head(&wsh_worker.dead);
        wsh_queue_remove(q);
        conn_free(wsh_queue_data(q, wsh_conn_t, link));
    }
    wsh_worker_conn_gone();
}

/* The closing handshake, flushing and lingering all end by close_timeout
 * at the latest. */
static void
conn_close_deadline(wsh_conn_t *c)
{
    conn_timer_add(c, &wsh_worker.closes, wsh_worker.close_timer,
                   wsh_worker.conf->close_timeout);
}

static void conn_io_drained(wsh_io_t *io);

/* After the output drains: shut the write side and wait for the peer's
 * EOF, so the last bytes are not lost to a reset (RFC 6455 section 7.1.1:
 * the server closes the TCP connection first), or close outright. */
static void
conn_after_flush(wsh_conn_t *c, bool linger)
{
    conn_close_deadline(c);
    c->state = WSH_CONN_FLUSHING;
    c->linger = linger;
    if (c->io.out_bytes == 0) {
        conn_io_drained(&c->io);
    }
}

/* Is the worker's output over limits.worker_send_buffer, and a client
 * with QUEUED bytes one of the slow ones? Over the cap, the clients
 * holding at least the average backlog are refused first: the fast
 * ones, whose outputs drain every turn, go on being served. */
static bool
conn_worker_output_full(size_t queued)
{
    size_t cap = wsh_worker.conf->limits.worker_send_buffer;

    size_t backlog = wsh_io_backlog();

    return cap != 0 && backlog > cap && queued > 0
           && queued >= backlog / (wsh_worker.nconns ? wsh_worker.nconns : 1);
}

/* May one more frame be queued on C? Not when its output is over
 * send_buffer: a client that does not read must not make the server
 * grow. Then, by hub.slow_consumer, the frame is dropped (and counted)
 * or the client is closed with 1008. */
static bool
conn_output_allowed(wsh_conn_t *c)
{
    size_t queued = c->io.out_bytes;
    const char *over;

    if (queued <= wsh_worker.conf->send_buffer
        && !conn_worker_output_full(queued))
    {
        return true;
    }
    over = queued > wsh_worker.conf->send_buffer
           ? "send_buffer" : "its share of limits.worker_send_buffer";
    if (wsh_worker.conf->slow_consumer_drop) {
        wsh_stat_add(WSH_STAT_SLOW_CONSUMER_DROPS, 1);
        if (!c->dropped) {
            c->dropped = 1;
            conn_log(WSH_LOG_WARN, c, "slow client: output over %s "
                     "(%zu bytes), dropping its messages", over, queued);
        }
        return false;
    }
    c->close_code = WSH_CLOSE_POLICY;
    wsh_stat_error(WSH_ERR_WS_SLOW_CONSUMER);
    conn_log(WSH_LOG_WARN, c, "slow client: output over %s "
             "(%zu bytes), closing with 1008", over, queued);
    conn_finalize(c, NULL);
    return false;
}

/* Queue raw bytes (a frame header and its payload). */
static bool
conn_output(wsh_conn_t *c, const void *p1, size_t n1, const void *p2,
    size_t n2)
{
    if (wsh_io_write(&c->io, p1, n1) != 0
        || wsh_io_write(&c->io, p2, n2) != 0)
    {
        c->close_code = WSH_CLOSE_INTERNAL;
        conn_finalize(c, "out of memory for output");
        return false;
    }
    return true;
}

wsh_shared_frame_t *
wsh_shared_frame_new(int opcode, const void *data, size_t len)
{
    wsh_shared_frame_t *f = malloc(sizeof(*f));
    u_char hdr[WSH_WS_HEADER_MAX];
    size_t n;

    if (f == NULL) {
        return NULL;
    }
    n = wsh_ws_frame_header(hdr, opcode, len);
    f->data = wsh_io_reserve(n + len, &f->block);
    if (f->data == NULL) {
        free(f);
        return NULL;
    }
    memcpy(f->data, hdr, n);
    memcpy(f->data + n, data, len);
    f->refs = 1;
    f->payload = len;
    f->len = n + len;
    f->deflated = NULL;
    f->deflate_tried = false;
    return f;
}

void
wsh_shared_frame_release(wsh_shared_frame_t *f)
{
    if (--f->refs == 0) {
        if (f->deflated != NULL) {
            wsh_shared_frame_release(f->deflated);
        }
        wsh_oblock_release(f->block);
        free(f);
    }
}

/* The frame of F that C gets: F itself, or its compressed variant
 * (compressed once, on the first connection that needs it), or NULL
 * when C compresses with its own context and so needs a frame of its
 * own. */
static wsh_shared_frame_t *
conn_shared_variant(wsh_conn_t *c, wsh_shared_frame_t *f)
{
    const u_char *payload = f->data + f->len - f->payload;
    u_char *z;
    size_t zlen;

    if (c->deflate == NULL) {
        return f;
    }
    if (!wsh_deflate_shareable(c->deflate)) {
        return NULL;
    }
    if (!f->deflate_tried) {
        f->deflate_tried = true;
        if (wsh_deflate_compress(c->deflate, payload, f->payload, &z, &zlen)
            == WSH_OK)
        {
            f->deflated = wsh_shared_frame_new(f->data[0] & 0x0f, z, zlen);
            if (f->deflated != NULL) {
                f->deflated->data[0] |= WSH_WS_RSV1;
                f->deflated->payload = f->payload;
            }
        }
    }
    return f->deflated != NULL ? f->deflated : f;
}

static void
conn_count_out(wsh_conn_t *c, int opcode, size_t len)
{
    c->msgs_out++;
    c->bytes_out += len;
    wsh_stat_add(opcode == WSH_WS_OP_TEXT ? WSH_STAT_MSG_OUT_TEXT
                                          : WSH_STAT_MSG_OUT_BINARY, 1);
    wsh_stat_add(WSH_STAT_BYTES_OUT, len);
    wsh_stat_observe(WSH_HIST_SIZE_OUT, len);
}

int
wsh_conn_send_shared(wsh_conn_t *c, wsh_shared_frame_t *f)
{
    wsh_shared_frame_t *v;

    if (c->state != WSH_CONN_WS) {
        return -1;
    }
    v = conn_shared_variant(c, f);
    if (v == NULL) {
        return wsh_conn_send(c, f->data[0] & 0x0f, f->data + f->len
                             - f->payload, f->payload);
    }
    f = v;
    if (!conn_output_allowed(c)) {
        return -1;
    }
    if (wsh_io_write_block(&c->io, f->block, f->data, f->len) != 0) {
        return -1;
    }
    conn_count_out(c, f->data[0] & 0x0f, f->payload);
    return 0;
}

/* Queue one frame. Close frames always go (one per connection, small);
 * everything else is subject to send_buffer. */
static bool
conn_send_frame(wsh_conn_t *c, int opcode, const void *data, size_t len)
{
    u_char hdr[WSH_WS_HEADER_MAX], *z;
    size_t n, zlen;
    bool deflated;

    if (opcode != WSH_WS_OP_CLOSE && !conn_output_allowed(c)) {
        return false;
    }
    /* Control frames are never compressed (RFC 7692 section 6.1). */
    deflated = c->deflate != NULL
               && (opcode == WSH_WS_OP_TEXT || opcode == WSH_WS_OP_BINARY)
               && wsh_deflate_compress(c->deflate, data, len, &z, &zlen)
                  == WSH_OK;
    if (deflated) {
        data = z;
        len = zlen;
    }
    n = wsh_ws_frame_header(hdr, opcode, len);
    if (deflated) {
        hdr[0] |= WSH_WS_RSV1;
    }
    return conn_output(c, hdr, n, data, len);
}

/* Queue a close frame; the reason is cut to fit a control frame. */
static void
conn_send_close(wsh_conn_t *c, int code, const char *reason)
{
    u_char payload[WSH_WS_CONTROL_MAX];
    size_t len = 0, rlen;

    if (code != WSH_CLOSE_NO_STATUS) {
        payload[0] = (u_char) (code >> 8);
        payload[1] = (u_char) code;
        len = 2;
        if (reason != NULL) {
            rlen = strlen(reason);
            if (rlen > sizeof(payload) - 2) {
                rlen = sizeof(payload) - 2;
            }
            memcpy(payload + 2, reason, rlen);
            len += rlen;
        }
    }
    c->close_sent = 1;
    if (c->close_code == 0) {
        c->close_code = (uint16_t) code;
    }
    (void) conn_send_frame(c, WSH_WS_OP_CLOSE, payload, len);
}

static void
conn_count_ws_error(int code)
{
    switch (code) {
    case WSH_CLOSE_PROTOCOL:
    case WSH_CLOSE_UNSUPPORTED:
        wsh_stat_error(WSH_ERR_WS_PROTOCOL);
        break;
    case WSH_CLOSE_INVALID_DATA:
        wsh_stat_error(WSH_ERR_WS_INVALID_DATA);
        break;
    case WSH_CLOSE_TOO_BIG:
        wsh_stat_error(WSH_ERR_WS_TOO_BIG);
        break;
    case WSH_CLOSE_INTERNAL:
        wsh_stat_error(WSH_ERR_WS_INTERNAL);
        break;
    default:
        wsh_stat_error(WSH_ERR_WS_POLICY);
        break;
    }
}

/* Fail the WebSocket connection (RFC 6455 section 7.1.7). */
static void
conn_ws_fail(wsh_conn_t *c, int code, const char *why)
{
    conn_log(WSH_LOG_INFO, c, "closing with %d: %s", code, why);
    conn_count_ws_error(code);
    c->close_code = (uint16_t) code;
    conn_send_close(c, code, why);
    if (c->state != WSH_CONN_DEAD) {
        conn_after_flush(c, true);
    }
}

int
wsh_conn_send(wsh_conn_t *c, int opcode, const void *data, size_t len)
{
    if (c->state != WSH_CONN_WS) {
        return -1;
    }
    if (!conn_send_frame(c, opcode, data, len)) {
        return -1;
    }
    conn_count_out(c, opcode, len);
    return 0;
}

void
wsh_conn_close(wsh_conn_t *c, int code, const char *reason)
{
    if (c->state != WSH_CONN_WS) {
        return;
    }
    conn_send_close(c, code, reason);
    if (c->state == WSH_CONN_DEAD) {
        return;
    }
    c->state = WSH_CONN_CLOSING;
    conn_close_deadline(c);
}

void *
wsh_conn_get_data(const wsh_conn_t *c)
{
    return c->data;
}

void
wsh_conn_set_data(wsh_conn_t *c, void *data)
{
    c->data = data;
}

uint64_t
wsh_conn_id(const wsh_conn_t *c)
{
    return c->id;
}

static void conn_http_next(wsh_conn_t *c);
static void conn_io_read(wsh_io_t *io, u_char *p, size_t len);

/* An answer the module gave after its http hook returned (an engine's
 * acknowledgement): on to the requests that came meanwhile. */
static void
conn_http_resume(wsh_conn_t *c)
{
    u_char *next = c->req->next;
    size_t len = c->req->next_len;

    c->req->next = NULL;
    conn_http_next(c);
    if (next != NULL) {
        conn_io_read(&c->io, next, len);
        free(next);
    }
}

/* Input while an answer is awaited: kept for after it, up to
 * max_header_size (pipelining beyond that is not worth holding). */
static size_t
conn_http_stash(wsh_conn_t *c, const u_char *p, size_t len)
{
    wsh_request_t *r = c->req;
    u_char *next;

    if (r->next_len + len > wsh_worker.conf->max_header_size) {
        conn_finalize(c, "pipelined past max_header_size while an answer "
                      "was awaited");
        return len;
    }
    next = realloc(r->next, r->next_len + len);
    if (next == NULL) {
        conn_finalize(c, "out of memory");
        return len;
    }
    memcpy(next + r->next_len, p, len);
    r->next = next;
    r->next_len += len;
    return len;
}

/* A complete HTTP response; the connection stays open for the next
 * request only if both sides want keep-alive and no body is pending.
 * Every HTTP answer, the core's and the modules', is written here. */
static void
conn_http_respond(wsh_conn_t *c, int status, const char *extra,
    const char *ctype, const void *body, size_t len)
{
    wsh_request_t *r = c->req;
    char head[1024];
    size_t sent = len;
    int n;
    /* Only answers about a well-formed request keep the connection: after
     * 400, 408, 414 or 431 the rest of the stream cannot be trusted. */
    bool keep = c->keep_alive && r != NULL && r->keep_alive && !r->has_body
                && !wsh_worker.draining
                && (status < 400 || status == 404 || status == 405
                    || status == 426);
    bool later;

    /* RFC 9110 section 9.3.2: HEAD gets the head a GET would get, its
     * Content-Length included, and never the body, which the client
     * would read as the start of the next answer. */
    if (r != NULL && r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0)
    {
        sent = 0;
    }
    c->status = (uint16_t) status;
    n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: wshub\r\n"
                 "Content-Type: %s\r\nContent-Length: %zu\r\n"
                 "Connection: %s\r\n%s\r\n", status,
                 wsh_http_status_text(status), ctype, len,
                 keep ? "keep-alive" : "close", extra ? extra : "");
    if (n < 0 || (size_t) n >= sizeof(head)
        || !conn_output(c, head, (size_t) n, body, sent))
    {
        conn_finalize(c, "response head too long or out of memory");
        return;
    }

    if (wsh_log_access_enabled()) {
        conn_access_log(c, status, sent, false);
    }
    /* Answered after the module's http hook returned: input was held. */
    later = c->awaiting && c->io.held;
    c->awaiting = 0;
    c->keep_alive = keep;
    if (later) {
        wsh_io_hold(&c->io, false);
    }
    if (!keep) {
        conn_after_flush(c, true);
    } else if (later) {
        conn_http_resume(c);
    }
}

static void
conn_count_http_error(const wsh_conn_t *c, int status)
{
    int err;

    switch (status) {
    case 400: case 411: err = WSH_ERR_HTTP_BAD_REQUEST; break;
    case 401: err = WSH_ERR_HTTP_UNAUTHORIZED; break;
    case 403: err = WSH_ERR_HTTP_FORBIDDEN; break;
    case 404: err = WSH_ERR_HTTP_NOT_FOUND; break;
    case 405: case 426: case 505: err = WSH_ERR_HTTP_BAD_HANDSHAKE; break;
    case 408: err = WSH_ERR_HTTP_TIMEOUT; break;
    case 413: case 414: case 431: err = WSH_ERR_HTTP_TOO_LARGE; break;
    case 429: err = WSH_ERR_HTTP_RATE_LIMITED; break;
    case 503: err = WSH_ERR_HTTP_UNAVAILABLE; break;
    default: err = WSH_ERR_HTTP_OTHER; break;
    }
    wsh_stat_error(err);
    if (c->req != NULL && c->req->method != NULL
        && wsh_http_header_has_token(c->req, "Upgrade", "websocket"))
    {
        wsh_stat_add(WSH_STAT_CONN_REJECTED, 1);
    }
}

/* Errors the core answers itself: a short text body saying why. */
/* An error answer with EXTRA header lines: a short text body saying
 * why. Not logged here: the callers decide how often. */
static void
conn_http_answer(wsh_conn_t *c, int status, const char *extra,
    const char *why)
{
    char body[256];
    int n;

    conn_count_http_error(c, status);
    n = snprintf(body, sizeof(body), "%d %s: %s\n", status,
                 wsh_http_status_text(status), why);
    conn_http_respond(c, status, extra, "text/plain",
                      body, (size_t) n < sizeof(body) ? (size_t) n
                                                       : sizeof(body) - 1);
}

/* Errors the core answers itself, each logged. */
static void
conn_http_error(wsh_conn_t *c, int status, const char *why)
{
    const char *extra = NULL;

    conn_log(WSH_LOG_INFO, c, "HTTP %d: %s", status, why);

    switch (status) {
    case 426:
        extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
        break;
    case 401:
        /* Only an endpoint's auth module refuses with 401 (RFC 6750
         * section 3). */
        extra = "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";
        break;
    case 405:
        extra = "Allow: GET\r\n";
        break;
    case 503:
        extra = "Retry-After: 1\r\n";
        break;
    }
    conn_http_answer(c, status, extra, why);
}

/* The shared limits (net/limit.c), checked last before the 101: a
 * refusal is 429 (per-IP) or 503 (total) with Retry-After, logged with
 * the address at most once a second. Returns true when admitted. */
static bool
conn_limits_admit(wsh_conn_t *c)
{
    const char *why;
    char extra[40];
    unsigned retry = 1, skipped;
    int entry, status;

    status = wsh_limit_admit(&c->peer.sa, &wsh_worker.conf->limits, &entry,
                             &retry, &why);
    if (status == WSH_OK) {
        c->limited = 1;
        c->limit_entry = (int16_t) entry;
        if (why != NULL && wsh_limit_log_ok(&skipped)) {
            conn_log(WSH_LOG_WARN, c, "%s: admitted untracked", why);
        }
        return true;
    }
    if (wsh_limit_log_ok(&skipped)) {
        conn_log(WSH_LOG_INFO, c, "refused: %s (%u refusals before this one "
                 "not logged)",
                 why, skipped);
    }
    snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", retry);
    conn_http_answer(c, status, extra, why);
    return false;
}

int
wsh_http_respond_headers(wsh_conn_t *c, int status, const char *headers,
    const char *content_type, const void *body, size_t len)
{
    if (c->state != WSH_CONN_HTTP) {
        return -1;
    }
    conn_http_respond(c, status, headers, content_type, body, len);
    return 0;
}

int
wsh_http_respond(wsh_conn_t *c, int status, const char *content_type,
    const void *body, size_t len)
{
    return wsh_http_respond_headers(c, status, NULL, content_type, body, len);
}

static void
conn_upgrade(wsh_conn_t *c, const char *accept)
{
    const wsh_conf_t *cf = wsh_worker.conf;
    char ext[WSH_DEFLATE_RESPONSE_MAX + 40];
    char head[sizeof(ext) + 200];
    wsh_deflate_params_t dp;
    int n;

    ext[0] = '\0';
    if (cf->compression.enabled
        && wsh_deflate_negotiate(&cf->compression, c->req, &dp) == WSH_OK)
    {
        c->deflate = wsh_deflate_new(&dp, &cf->compression);
        if (c->deflate != NULL) {
            /* Declined when out of memory: the client copes without. */
            memcpy(ext, "Sec-WebSocket-Extensions: ", 26);
            memcpy(ext + 26 + wsh_deflate_response(&dp, ext + 26), "\r\n", 3);
        }
    }
    n = snprintf(head, sizeof(head), "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n%s\r\n", accept, ext);
    if (!conn_output(c, head, (size_t) n, NULL, 0)) {
        return;
    }
    c->status = 101;
    c->state = WSH_CONN_WS;
    wsh_pending_remove(c);
    c->websocket = 1;
    wsh_worker.nwebsockets++;
    wsh_stat_add(WSH_STAT_CONNECTIONS_ACTIVE, 1);
    wsh_stat_add(WSH_STAT_CONN_ACCEPTED, 1);

    c->last_rx = (uint32_t) wsh_monotonic_msec();
    conn_timer_unlink(c);
    if (cf->ping_period) {
        conn_timer_add(c, &wsh_worker.pings, wsh_worker.ping_timer,
                       cf->ping_period);
    }
    conn_log(WSH_LOG_DEBUG, c, "WebSocket open on %s", c->endpoint->path);
    c->opened = 1;
    if (c->endpoint->module->open != NULL) {
        c->endpoint->module->open(c, c->req);
    }
    if (wsh_worker.draining && c->state == WSH_CONN_WS) {
        /* A handshake that was under way when the drain began: it is
         * completed (a refusal would be a failed connection for the
         * client) and the socket closed politely at once. */
        conn_timer_add(c, &wsh_worker.drains, wsh_worker.drain_timer, 0);
    }
    wsh_http_request_free(c->req);
    free(c->req);
    c->req = NULL;
}

/* A module's plain HTTP request, once its body (if any) is in. */
static void
conn_http_module(wsh_conn_t *c)
{
    c->req->has_body = false;           /* read: keep-alive is possible */
    c->awaiting = 1;                    /* until an answer is queued */
    if (c->endpoint->module->http(c, c->req) != 0) {
        conn_http_error(c, 426, "this endpoint speaks WebSocket: send an "
                        "Upgrade request");
    }
    if (c->awaiting && c->state == WSH_CONN_HTTP) {
        /* The module answers later (wsh_http_respond), within what is
         * left of handshake_timeout, else 504: the request stays, and
         * the input waits in the socket. */
        wsh_io_hold(&c->io, true);
    }
}

/* Decide whether to read a body for the module: only Content-Length
 * bodies up to MAX bytes (the endpoint's max_message_size, or what its
 * module's http_head hook said; the parser has refused a doubtful
 * Content-Length already). Returns true when the request was
 * answered or the body is awaited. */
static bool
conn_http_body(wsh_conn_t *c, size_t max)
{
    wsh_request_t *r = c->req;
    uint64_t n = r->content_length;

    if (wsh_http_header(r, "Transfer-Encoding") != NULL) {
        conn_http_error(c, 411, "send the body with a Content-Length");
        return true;
    }
    if (n > max) {
        conn_http_error(c, 413, "body over the endpoint's limit");
        return true;
    }
    if (n == 0) {
        return false;
    }
    r->body = malloc(n);
    if (r->body == NULL) {
        conn_http_error(c, 503, "out of memory");
        return true;
    }
    r->body_want = n;
    if (wsh_http_header_has_token(r, "Expect", "100-continue")) {
        /* The head was accepted: the client may send the body now
         * rather than after its own timeout (curl waits 1s). */
        (void) conn_output(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, NULL, 0);
    }
    return true;
}

/* A complete request head is in c->req. */
static void
conn_http_request(wsh_conn_t *c)
{
    wsh_request_t *r = c->req;
    const wsh_http_header_t *h;
    const wsh_module_t *m;
    char accept[WSH_WS_ACCEPT_LEN + 1];
    const char *why;
    size_t max;
    int status;

    c->endpoint = wsh_conf_endpoint(wsh_worker.conf, r->target, r->path_len);
    if (c->endpoint == NULL) {
        conn_http_error(c, 404, "no endpoint at this path");
        return;
    }
    if (c->endpoint->listeners != 0
        && !(c->endpoint->listeners & ((uint64_t) 1 << c->listener)))
    {
        /* Served on other listeners only (a metrics port, say): here it
         * does not exist. */
        conn_http_error(c, 404, "no endpoint at this path");
        return;
    }
    if (!wsh_conf_allowed(c->endpoint, &c->peer.sa)) {
        conn_log(WSH_LOG_WARN, c, "address not in the allow list of %s",
                 c->endpoint->path);
        conn_http_error(c, 403, "your address may not use this endpoint");
        return;
    }
    m = c->endpoint->module;
    if (!wsh_http_header_has_token(r, "Upgrade", "websocket")
        && m->http != NULL)
    {
        max = c->endpoint->max_message_size;
        if (m->http_head != NULL) {
            c->status = 0;
            if (m->http_head(c, r, &max) != 0) {
                if (c->status == 0) {
                    conn_http_error(c, 500, "refused without an answer");
                }
                return;
            }
        }
        if (!r->has_body || !conn_http_body(c, max)) {
            conn_http_module(c);
        }
        return;
    }
    status = wsh_handshake_check(r, accept, &why);
    if (status != WSH_OK) {
        conn_http_error(c, status, why);
        return;
    }
    h = wsh_http_header(r, "Origin");
    if (h != NULL
        && !wsh_conf_origin_allowed(wsh_worker.conf, h->value, h->value_len))
    {
        /* Cross-site WebSocket hijacking: a browser on another site
         * would carry the user's cookies here. */
        conn_log(WSH_LOG_WARN, c, "origin \"%.*s\" not in allowed_origins",
                 (int) (h->value_len > 200 ? 200 : h->value_len), h->value);
        conn_http_error(c, 403, "origin not allowed");
        return;
    }
    if (wsh_worker.draining && wsh_worker.drain_code != WSH_CLOSE_RESTART) {
        conn_http_error(c, 503, "the server is shutting down");
        return;
    }
    if (wsh_worker.nwebsockets >= wsh_worker.conf->max_connections) {
        conn_log(WSH_LOG_WARN, c, "max_connections (%u) reached",
                 wsh_worker.conf->max_connections);
        conn_http_error(c, 503, "too many connections");
        return;
    }
    /* An earlier request on this keep-alive connection proves nothing
     * for this one. */
    free(c->identity);
    c->identity = NULL;
    if (c->endpoint->auth != NULL) {
        /* Authentication first, so the endpoint's module sees only
         * verified clients (wsh_conn_user()). */
        status = c->endpoint->auth->handshake(c, r);
        if (status != 0) {
            conn_http_error(c, status, "authentication failed");
            return;
        }
    }
    if (m->handshake != NULL) {
        status = m->handshake(c, r);
        if (status != 0) {
            conn_http_error(c, status, "refused by the endpoint");
            return;
        }
    }
    if (!conn_limits_admit(c)) {
        return;
    }
    conn_upgrade(c, accept);
}

/* Answered and kept alive: get ready for the next request. */
static void
conn_http_next(wsh_conn_t *c)
{
    if (c->state == WSH_CONN_HTTP && c->req != NULL && !c->awaiting) {
        wsh_http_request_free(c->req);
        free(c->req);
        c->req = NULL;
        conn_handshake_deadline(c);
    }
}

/* Feed one chunk to the HTTP parser (or a request body); returns bytes
 * used. */
static size_t
conn_http_input(wsh_conn_t *c, const u_char *p, size_t len)
{
    const wsh_conf_t *cf = wsh_worker.conf;
    size_t used = 0;
    int rc;

    if (c->awaiting) {
        return conn_http_stash(c, p, len);
    }
    if (c->req != NULL && c->req->body_want > 0) {
        used = c->req->body_want - c->req->body_len;
        if (used > len) {
            used = len;
        }
        memcpy(c->req->body + c->req->body_len, p, used);
        c->req->body_len += used;
        if (c->req->body_len == c->req->body_want) {
            c->req->body_want = 0;
            conn_http_module(c);
            conn_http_next(c);
        }
        return used;
    }
    if (c->req == NULL) {
        c->req = malloc(sizeof(*c->req));
        if (c->req == NULL) {
            conn_finalize(c, "out of memory");
            return len;
        }
        wsh_http_request_init(c->req, cf->max_header_size, cf->max_headers);
    }
    rc = wsh_http_parse(c->req, (const char *) p, len, &used);
    if (rc == WSH_AGAIN) {
        return used;
    }
    if (rc != WSH_OK) {
        conn_http_error(c, rc, rc == 414 ? "request line too long"
                               : rc == 431 ? "request headers too large"
                               : rc == 505 ? "HTTP version not supported"
                               : "malformed request");
        return len;
    }
    conn_http_request(c);
    if (c->req == NULL || c->req->body_want == 0) {
        conn_http_next(c);
    }
    return used;
}

static void
conn_ws_close_received(wsh_conn_t *c, const wsh_ws_event_t *ev)
{
    c->close_received = 1;
    if (c->state == WSH_CONN_WS) {
        /* Echo the code (section 5.5.1); a close without one is answered
         * without one. */
        c->close_code = (uint16_t) ev->code;
        conn_send_close(c, ev->code, NULL);
    }
    if (c->state != WSH_CONN_DEAD) {
        conn_after_flush(c, false);
    }
}

/* The per-connection token bucket of rate_limit: RPS tokens a second,
 * at most BURST saved up; each message or ping takes one. A client
 * over it is closed with 1008, or its messages dropped (counted). */
static bool
conn_rate_allowed(wsh_conn_t *c)
{
    const wsh_conf_t *cf = wsh_worker.conf;
    uint32_t now;

    if (cf->rate_rps == 0) {
        return true;
    }
    now = (uint32_t) wsh_monotonic_msec();
    if (!c->rate_started) {
        c->rate_started = 1;
        c->rate_tokens = (float) cf->rate_burst;
    } else {
        c->rate_tokens += (float) ((double) (uint32_t) (now - c->rate_last)
                                   * cf->rate_rps / 1000);
        if (c->rate_tokens > (float) cf->rate_burst) {
            c->rate_tokens = (float) cf->rate_burst;
        }
    }
    c->rate_last = now;
    if (c->rate_tokens >= 1) {
        c->rate_tokens -= 1;
        return true;
    }
    wsh_stat_add(WSH_STAT_RATE_LIMITED, 1);
    if (cf->rate_drop) {
        if (!c->rate_limited) {
            c->rate_limited = 1;
            conn_log(WSH_LOG_WARN, c, "over rate_limit (%u/s, burst %u): "
                     "dropping its messages", cf->rate_rps, cf->rate_burst);
        }
        return false;
    }
    c->rate_limited = 1;
    wsh_stat_error(WSH_ERR_WS_RATE_LIMITED);
    conn_ws_fail(c, WSH_CLOSE_POLICY, "rate limit exceeded");
    return false;
}

/* A complete message for the module, counted and timed. */
static void
conn_message(wsh_conn_t *c, const wsh_ws_event_t *ev)
{
    const wsh_module_t *m = c->endpoint->module;
    uint64_t t0;

    c->msgs_in++;
    c->bytes_in += ev->len;
    wsh_stat_add(ev->opcode == WSH_WS_OP_TEXT ? WSH_STAT_MSG_IN_TEXT
                                              : WSH_STAT_MSG_IN_BINARY, 1);
    wsh_stat_add(WSH_STAT_BYTES_IN, ev->len);
    wsh_stat_observe(WSH_HIST_SIZE_IN, ev->len);
    if (c->state == WSH_CONN_WS && m->message != NULL) {
        t0 = wsh_monotonic_usec();
        m->message(c, ev->opcode, ev->data, ev->len);
        wsh_stat_observe(WSH_HIST_PROCESSING, wsh_monotonic_usec() - t0);
    }
}

/* Replace a compressed message by its inflated bytes; false when that
 * failed the connection (1007, 1009 or 1011). */
static bool
conn_ws_inflate(wsh_conn_t *c, wsh_ws_event_t *ev)
{
    const char *why;
    u_char *data;
    size_t len;
    int code;

    code = wsh_deflate_inflate(c->deflate, ev->data, ev->len,
                               c->endpoint->max_message_size,
                               ev->opcode == WSH_WS_OP_TEXT, &data, &len,
                               &why);
    if (code != 0) {
        if (c->state == WSH_CONN_CLOSING) {
            conn_finalize(c, why);
        } else {
            conn_ws_fail(c, code, why);
        }
        return false;
    }
    ev->data = data;
    ev->len = len;
    return true;
}

/* The frame parser for C's next input. Between frames a connection
 * keeps no parser state: the worker's own parser is set up for it (its
 * message buffer reused from one connection to the next), and only a
 * frame left incomplete gets a parser of the connection's own. */
static wsh_ws_t conn_parser_shared;

/* Bigger message buffers are not kept for the next connection. */
#define CONN_PARSER_KEEP  (64 * 1024)

static wsh_ws_t *
conn_parser(wsh_conn_t *c)
{
    wsh_ws_t *ws = &conn_parser_shared;
    u_char *buf = ws->buf;
    size_t cap = ws->buf_cap;

    if (c->ws != NULL) {
        return c->ws;
    }
    wsh_ws_init(ws, c->endpoint->max_message_size);
    ws->buf = buf;
    ws->buf_cap = cap;
    ws->max_fragments = wsh_worker.conf->limits.max_fragments;
    if (c->deflate != NULL) {
        wsh_ws_allow_rsv1(ws);
    }
    return ws;
}

/* After the input: keep WS with C only if a frame is partial. */
static void
conn_parser_done(wsh_conn_t *c, wsh_ws_t *ws)
{
    if (wsh_ws_idle(ws)) {
        if (ws == c->ws) {
            free(ws->buf);
            free(ws);
            c->ws = NULL;
        } else if (ws->buf_cap > CONN_PARSER_KEEP) {
            free(ws->buf);
            ws->buf = NULL;
            ws->buf_cap = 0;
        }
        return;
    }
    if (ws == c->ws || c->state == WSH_CONN_DEAD) {
        return;
    }
    c->ws = malloc(sizeof(*c->ws));
    if (c->ws == NULL) {
        c->close_code = WSH_CLOSE_INTERNAL;
        conn_finalize(c, "out of memory for a partial frame");
        return;
    }
    *c->ws = *ws;
    ws->buf = NULL;             /* the connection's now */
    ws->buf_cap = 0;
    ws->buf_len = 0;
}

static size_t conn_ws_parse(wsh_conn_t *c, wsh_ws_t *ws, u_char *p,
    size_t len);

/* Feed one chunk to the frame parser; returns bytes used. */
static size_t
conn_ws_input(wsh_conn_t *c, u_char *p, size_t len)
{
    wsh_ws_t *ws = conn_parser(c);
    size_t used = conn_ws_parse(c, ws, p, len);

    conn_parser_done(c, ws);
    return used;
}

static size_t
conn_ws_parse(wsh_conn_t *c, wsh_ws_t *ws, u_char *p, size_t len)
{
    u_char *pos = p, *last = p + len;
    wsh_ws_event_t ev;
    int rc;

    while (pos < last
           && (c->state == WSH_CONN_WS || c->state == WSH_CONN_CLOSING))
    {
        rc = wsh_ws_parse(ws, &pos, last, &ev);
        if (rc == WSH_AGAIN) {
            break;
        }
        if (rc == WSH_ERROR) {
            if (c->state == WSH_CONN_CLOSING) {
                conn_finalize(c, ev.error);
            } else {
                conn_ws_fail(c, ev.code, ev.error);
            }
            return len;
        }
        if ((ev.type == WSH_WS_EV_MESSAGE || ev.type == WSH_WS_EV_PING)
            && c->state == WSH_CONN_WS && !conn_rate_allowed(c))
        {
            if (c->state != WSH_CONN_WS) {
                return len;     /* closed with 1008 */
            }
            continue;           /* dropped */
        }
        if (ev.type == WSH_WS_EV_MESSAGE && ev.compressed
            && !conn_ws_inflate(c, &ev))
        {
            return len;
        }
        switch (ev.type) {
        case WSH_WS_EV_MESSAGE:
            conn_message(c, &ev);
            break;
        case WSH_WS_EV_PING:
            if (c->state == WSH_CONN_WS) {
                (void) conn_send_frame(c, WSH_WS_OP_PONG, ev.data, ev.len);
            }
            break;
        case WSH_WS_EV_PONG:
            break;              /* its arrival already reset pong_wait */
        case WSH_WS_EV_CLOSE:
            conn_ws_close_received(c, &ev);
            return (size_t) (pos - p);
        }
    }
    return (size_t) (pos - p);
}

static void
conn_io_read(wsh_io_t *io, u_char *p, size_t len)
{
    wsh_conn_t *c = (wsh_conn_t *) io;
    size_t used;

    c->last_rx = (uint32_t) wsh_monotonic_msec();
    while (len > 0) {
        switch (c->state) {
        case WSH_CONN_HTTP:
            used = conn_http_input(c, p, len);
            break;
        case WSH_CONN_WS:
        case WSH_CONN_CLOSING:
            used = conn_ws_input(c, p, len);
            break;
        default:
            used = len;         /* closing: input is discarded */
            break;
        }
        if (used == 0) {
            break;
        }
        p += used;
        len -= used;
    }
}

static void
conn_io_drained(wsh_io_t *io)
{
    wsh_conn_t *c = (wsh_conn_t *) io;

    if (c->state != WSH_CONN_FLUSHING) {
        return;
    }
    if (!c->linger) {
        (void) wsh_io_shutdown(&c->io);     /* a clean TLS end */
        conn_finalize(c, NULL);
        return;
    }
    c->state = WSH_CONN_LINGER;
    if (wsh_io_shutdown(&c->io) == -1) {
        conn_finalize(c, NULL);
    }
}

static void
conn_io_error(wsh_io_t *io, int what, const char *why)
{
    wsh_conn_t *c = (wsh_conn_t *) io;

    if (what == WSH_IO_EOF) {
        why = c->state == WSH_CONN_LINGER || c->state == WSH_CONN_HTTP
              ? NULL : "connection closed by the client";
        if (c->state == WSH_CONN_HTTP && c->req != NULL && c->req->len > 0) {
            why = "client closed the connection inside a request";
        }
    } else if (what == WSH_IO_TIMEOUT) {
        if (c->state == WSH_CONN_WS) {
            wsh_stat_error(WSH_ERR_WS_WRITE_TIMEOUT);
        }
        why = "write_wait expired: the client does not read";
    }
    conn_finalize(c, why);
}

static const wsh_io_handler_t conn_io_handler = {
    conn_io_read, conn_io_error, conn_io_drained
};

int
wsh_conn_init_worker(void)
{
    if (wsh_pending_init() != WSH_OK) {
        return WSH_ERROR;
    }
    return wsh_io_init_worker(wsh_worker.base, &conn_io_handler,
                              wsh_worker.conf->write_wait,
                              wsh_worker.conf->write_delay,
                              wsh_worker.conf->send_buffer / 2);
}

void
wsh_conn_close_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.closes, now)) != NULL) {
        conn_finalize(c, c->state == WSH_CONN_LINGER ? NULL
                                                     : "close_timeout expired");
    }
    conn_timer_arm(&wsh_worker.closes, wsh_worker.close_timer);
}

void
wsh_conn_handshake_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.handshakes, now)) != NULL) {
        if (c->awaiting) {
            conn_http_error(c, 504, "the answer did not come within "
                            "handshake_timeout");
        } else if (c->req != NULL && c->req->len > 0) {
            conn_http_error(c, 408, "handshake_timeout expired");
        } else {
            conn_finalize(c, c->status ? NULL : "handshake_timeout expired "
                          "before a request");
        }
    }
    conn_timer_arm(&wsh_worker.handshakes, wsh_worker.handshake_timer);
}

void
wsh_conn_ping_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.pings, now)) != NULL) {
        /* Silence is checked when a ping is due (pong_wait is longer
         * than ping_period): a live client has answered the last one. */
        if ((uint32_t) ((uint32_t) now - c->last_rx)
            >= wsh_worker.conf->pong_wait)
        {
            wsh_stat_error(WSH_ERR_WS_PONG_TIMEOUT);
            conn_finalize(c, "pong_wait expired: no data from the client");
            continue;
        }
        if (!conn_send_frame(c, WSH_WS_OP_PING, NULL, 0)) {
            continue;
        }
        c->deadline = (uint32_t) (now + wsh_worker.conf->ping_period);
        wsh_queue_insert_tail(&wsh_worker.pings, &c->timer_link);
    }
    conn_timer_arm(&wsh_worker.pings, wsh_worker.ping_timer);
}

/* A draining WebSocket's turn: the module's last word, then close. */
static void
conn_drain_one(wsh_conn_t *c)
{
    int code = wsh_worker.drain_code;

    if (c->endpoint->module->shutdown != NULL) {
        c->endpoint->module->shutdown(c, code);
    }
    wsh_conn_close(c, code, code == WSH_CLOSE_RESTART ? "server restarting"
                                                      : "server shutting down");
}

void
wsh_conn_drain_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.drains, now)) != NULL) {
        if (c->state == WSH_CONN_WS) {
            conn_drain_one(c);
        }
    }
    conn_timer_arm(&wsh_worker.drains, wsh_worker.drain_timer);
}

/* Close the WebSockets evenly over shutdown_spread, in the order they
 * connected, so that a reload does not send every client back in the
 * same millisecond; idle HTTP connections go at once. */
void
wsh_conn_drain_all(int code)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_msec_t spread = wsh_worker.conf->shutdown_spread;
    unsigned n = wsh_worker.nwebsockets, i = 0;
    wsh_queue_t *q, *next;
    wsh_conn_t *c;

    (void) code;
    for (q = wsh_queue_head(&wsh_worker.conns); q != &wsh_worker.conns;
         q = next)
    {
        next = q->next;
        c = wsh_queue_data(q, wsh_conn_t, link);
        if (c->state == WSH_CONN_WS) {
            conn_timer_unlink(c);       /* no more pings */
            c->deadline = (uint32_t) (now + (n ? spread * i++ / n : 0));
            wsh_queue_insert_tail(&wsh_worker.drains, &c->timer_link);
        }
    }
    /* A connection that has not sent its first request yet is served. */
    wsh_conn_close_idle(false);
    wsh_conn_drain_timer(-1, 0, NULL);
}

void
wsh_conn_close_idle(bool fresh)
{
    wsh_queue_t *q, *next;
    wsh_conn_t *c;

    for (q = wsh_queue_head(&wsh_worker.conns); q != &wsh_worker.conns;
         q = next)
    {
        next = q->next;
        c = wsh_queue_data(q, wsh_conn_t, link);
        if (c->state != WSH_CONN_HTTP || c->awaiting
            || (c->req != NULL && c->req->len > 0)
            || (c->status == 0 && !fresh))
        {
            continue;                   /* a request is under way */
        }
        if (c->io.out_bytes > 0) {
            conn_after_flush(c, true);  /* its last answer goes first */
        } else {
            conn_finalize(c, NULL);
        }
    }
}

void
wsh_conn_terminate_all(void)
{
    wsh_queue_t *q, *next;
    wsh_conn_t *c;

    for (q = wsh_queue_head(&wsh_worker.conns); q != &wsh_worker.conns;
         q = next)
    {
        next = q->next;
        c = wsh_queue_data(q, wsh_conn_t, link);
        if (c->state == WSH_CONN_WS) {
            conn_send_close(c, WSH_CLOSE_GOING_AWAY, "server stopping");
            /* One last non-blocking write so the close frame has its
             * chance to leave before the socket is closed. */
            wsh_io_write_now(&c->io);
            (void) wsh_io_shutdown(&c->io);
        }
        conn_finalize(c, NULL);
    }
}

const char *
wsh_request_method(const wsh_request_t *r, size_t *len)
{
    *len = r->method_len;
    return r->method;
}

const char *
wsh_request_path(const wsh_request_t *r, size_t *len)
{
    *len = r->path_len;
    return r->target;
}

const char *
wsh_request_query(const wsh_request_t *r, size_t *len)
{
    if (r->path_len == r->target_len) {
        *len = 0;
        return NULL;
    }
    *len = r->target_len - r->path_len - 1;
    return r->target + r->path_len + 1;
}

int
wsh_request_is_get(const wsh_request_t *r)
{
    return (r->method_len == 3 && memcmp(r->method, "GET", 3) == 0)
           || (r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0);
}

int
wsh_http_only_handshake(wsh_conn_t *c, const wsh_request_t *r)
{
    return 404;
}

const char *
wsh_request_body(const wsh_request_t *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}

const char *
wsh_request_header(const wsh_request_t *r, const char *name, size_t *len)
{
    const wsh_http_header_t *h = wsh_http_header(r, name);

    if (h == NULL) {
        return NULL;
    }
    *len = h->value_len;
    return h->value;
}

void
wsh_module_log(int level, const wsh_conn_t *c, const char *fmt, ...)
{
    va_list ap;

    if (!wsh_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    wsh_log_verror(level, c ? c->id : 0, c ? wsh_conn_peer(c) : NULL, fmt, ap);
    va_end(ap);
}
