/* conn.c -- one client connection: accept, close and free.
 *
 * Each connection is this struct around its socket I/O (net/io.c). Input
 * goes straight from the worker's read buffer to the HTTP parser
 * (conn_http.c), then the frame parser (conn_ws.c), then the endpoint's
 * module. Output is queued by net/io.c and bounded by send_buffer. The
 * deadlines of handshakes, pings, drains and closes are conn_timer.c's.
 *
 * Here: accepting a socket (within the handshake slots of net/pending.c),
 * the io layer's callbacks, closing and freeing, and the accessors that
 * include/wshub.h offers the modules.
 *
 * A connection is never freed inside a callback that may still use it:
 * closing moves it to the worker's dead list, freed on the next loop turn.
 */
#include "net/conn.h"
#include "net/conn_int.h"
#include "core/log.h"
#include "core/slab.h"
#include "core/stats.h"
#include "net/tls.h"
#include "net/limit.h"
#include "net/pending.h"
#include "core/runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static const wsh_conn_handler_t *conn_handler;     /* the worker's */

/* Connections come from a slab: without malloc's header and rounding, a
 * few bytes less each, by the ten thousand. */
static wsh_slab_t conn_slab = WSH_SLAB(sizeof(wsh_conn_t));

/* "ip:port" or "[ip6]:port" of SA, in a static buffer valid until the
 * next call. */
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

void
wsh_conn_log(int level, const wsh_conn_t *c, const char *fmt, ...)
{
    va_list ap;

    if (!wsh_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    wsh_log_verror(level, c->id, wsh_conn_peer(c), fmt, ap);
    va_end(ap);
}

/* The answer to a connection refused or closed when accepted, written
 * at once in one send(): a fixed text, its length checked here. */
#define CONN_BUSY_BODY "503 Service Unavailable: busy\n"
static const char conn_busy[] =
    "HTTP/1.1 503 Service Unavailable\r\nServer: wshub\r\n"
    "Retry-After: 1\r\nContent-Type: text/plain\r\n"
    "Content-Length: 30\r\nConnection: close\r\n\r\n" CONN_BUSY_BODY;
_Static_assert(sizeof(CONN_BUSY_BODY) - 1 == 30,
               "conn_busy's Content-Length is its body's length");

/* A connection refused at accept time: counted (STAT), logged at most
 * once a second, and answered 503 with Retry-After where that can be
 * written at once (not before a TLS handshake). Best effort: a client
 * that sent its request already may see a reset instead. */
static void
conn_refuse(int fd, const struct sockaddr *sa, bool tls, int stat,
    const char *why)
{
    unsigned skipped;

    wsh_stat_add(stat, 1);
    if (wsh_limit_log_ok(&skipped)) {
        wsh_log(WSH_LOG_WARN, "refused %s: %s (%u refusals before this one "
                "not logged)", conn_addr_text(sa), why, skipped);
    }
    if (!tls) {
        (void) send(fd, conn_busy, sizeof(conn_busy) - 1,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    close(fd);
}

/* Out of sockets: close the oldest handshake of the address holding
 * most, so that one client's half-sent requests cannot lock others out.
 * False when every socket is a WebSocket. */
static bool
conn_make_room(void)
{
    wsh_conn_t *victim = wsh_pending_victim();
    unsigned skipped;

    if (victim == NULL) {
        return false;
    }
    wsh_stat_add(WSH_STAT_REFUSED_EVICTED, 1);
    if (wsh_limit_log_ok(&skipped)) {
        wsh_conn_log(WSH_LOG_WARN, victim, "out of sockets: closing the oldest "
                     "handshake of the address holding most (%u not logged)",
                     skipped);
    }
    if (victim->io.ssl == NULL && victim->io.out_bytes == 0) {
        (void) send(victim->io.fd, conn_busy, sizeof(conn_busy) - 1,
                    MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    wsh_conn_finalize(victim, NULL);
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

    c = wsh_slab_calloc(&conn_slab);
    if (c == NULL) {
        wsh_log(WSH_LOG_ALERT, "out of memory for a connection");
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
        wsh_slab_free(&conn_slab, c);
        return;
    }
    if (len <= sizeof(c->peer)) {
        memcpy(&c->peer, sa, len);
    }
    c->id = ++wsh_worker.last_conn_id;
    c->start = wsh_monotonic_msec();
    c->state = WSH_CONN_HTTP;
    c->keep_alive = 1;
    c->topics = NULL;           /* calloc'd: said for the reader */
    wsh_queue_insert_tail(&wsh_worker.conns, &c->link);
    wsh_worker.nconns++;
    wsh_pending_add(c);
    wsh_conn_handshake_deadline(c);
    wsh_conn_log(WSH_LOG_DEBUG, c, "accepted");
}

/* One access log line: an HTTP answer of BODY bytes, or (WS) a closed
 * WebSocket. A query is left out where it may carry a token. */
void
wsh_conn_access_log(wsh_conn_t *c, int status, size_t body, bool ws)
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
void
wsh_conn_finalize(wsh_conn_t *c, const char *why)
{
    if (c->state == WSH_CONN_DEAD) {
        return;
    }
    if (why != NULL) {
        wsh_conn_log(WSH_LOG_INFO, c, "closing: %s", why);
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
    conn_handler->closed(c);
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
            wsh_conn_access_log(c, 101, 0, true);
        }
    } else if (c->req != NULL) {
        wsh_http_request_free(c->req);
        free(c->req);
    }
    wsh_deflate_free(c->deflate);
    free(c->identity);
    wsh_io_close(&c->io);
    wsh_slab_free(&conn_slab, c);
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
    conn_handler->gone();
}

static void conn_io_drained(wsh_io_t *io);

/* After the output drains: shut the write side and wait for the peer's
 * EOF, so the last bytes are not lost to a reset (RFC 6455 section 7.1.1:
 * the server closes the TCP connection first), or close outright. */
void
wsh_conn_after_flush(wsh_conn_t *c, bool linger)
{
    wsh_conn_close_deadline(c);
    c->state = WSH_CONN_FLUSHING;
    c->linger = linger;
    if (c->io.out_bytes == 0) {
        conn_io_drained(&c->io);
    }
}

void
wsh_conn_io_read(wsh_io_t *io, u_char *p, size_t len)
{
    wsh_conn_t *c = (wsh_conn_t *) io;
    size_t used;

    c->last_rx = (uint32_t) wsh_monotonic_msec();
    while (len > 0) {
        switch (c->state) {
        case WSH_CONN_HTTP:
            used = wsh_conn_http_input(c, p, len);
            break;
        case WSH_CONN_WS:
        case WSH_CONN_CLOSING:
            used = wsh_conn_ws_input(c, p, len);
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
        wsh_conn_finalize(c, NULL);
        return;
    }
    c->state = WSH_CONN_LINGER;
    if (wsh_io_shutdown(&c->io) == -1) {
        wsh_conn_finalize(c, NULL);
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
    wsh_conn_finalize(c, why);
}

static const wsh_io_handler_t conn_io_handler = {
    wsh_conn_io_read, conn_io_error, conn_io_drained
};

int
wsh_conn_init_worker(const wsh_conn_handler_t *h)
{
    conn_handler = h;
    if (wsh_pending_init() != WSH_OK) {
        return WSH_ERROR;
    }
    return wsh_io_init_worker(wsh_worker.base, &conn_io_handler,
                              wsh_worker.conf->write_wait,
                              wsh_worker.conf->write_delay,
                              wsh_worker.conf->send_buffer / 2);
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
            wsh_conn_after_flush(c, true);  /* its last answer goes first */
        } else {
            wsh_conn_finalize(c, NULL);
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
            wsh_conn_send_close(c, WSH_CLOSE_GOING_AWAY, "server stopping");
            /* One last non-blocking write so the close frame has its
             * chance to leave before the socket is closed. */
            wsh_io_write_now(&c->io);
            (void) wsh_io_shutdown(&c->io);
        }
        wsh_conn_finalize(c, NULL);
    }
}

/* The accessors of include/wshub.h. */

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
