/* conn_ws.c -- a connection's WebSocket session: frames in and out.
 *
 * From the 101 on, input goes to the frame parser (ws/frame.c) and each
 * complete message to the endpoint's module, within rate_limit; output
 * is a frame built for this connection, or a shared frame built once for
 * any number of recipients and queued by reference. Either is bounded by
 * send_buffer (slow_consumer says what happens over it). permessage-
 * deflate compresses and inflates here, and the closing handshake of RFC
 * 6455 section 7 starts and ends here.
 */
#include "net/conn.h"
#include "net/conn_int.h"
#include "core/log.h"
#include "core/stats.h"
#include "net/handshake.h"
#include "net/pending.h"
#include "core/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is the worker's output over limits.worker_send_buffer, and a client
 * with QUEUED bytes one of the slow ones? Over the cap, the clients
 * holding at least the average backlog are refused first: the fast
 * ones, whose outputs drain every turn, go on being served. */
static bool
conn_worker_output_full(size_t queued)
{
    size_t cap = wsh_worker.conf->limits.worker_send_buffer, backlog;

    if (cap == 0 || (backlog = wsh_io_backlog()) <= cap) {
        return false;
    }
    return queued > 0
           && queued >= backlog / (wsh_worker.nconns ? wsh_worker.nconns : 1);
}

/* C's output is over send_buffer, or over its share of the worker's
 * (QUEUED bytes): by slow_consumer, the frame is dropped (and counted)
 * or the client is closed with 1008. Returns false. Apart from
 * conn_output_allowed so that the check, made once per recipient of a
 * broadcast, is a few instructions inlined into its callers. */
static bool __attribute__((noinline, cold))
conn_output_refused(wsh_conn_t *c, size_t queued)
{
    const char *over;

    over = queued > wsh_worker.conf->send_buffer
           ? "send_buffer" : "its share of limits.worker_send_buffer";
    if (wsh_worker.conf->slow_consumer_drop) {
        wsh_stat_add(WSH_STAT_SLOW_CONSUMER_DROPS, 1);
        if (!c->dropped) {
            c->dropped = 1;
            wsh_conn_log(WSH_LOG_WARN, c, "slow client: output over %s "
                         "(%zu bytes), dropping its messages", over, queued);
        }
        return false;
    }
    c->close_code = WSH_CLOSE_POLICY;
    wsh_stat_error(WSH_ERR_WS_SLOW_CONSUMER);
    wsh_conn_log(WSH_LOG_WARN, c, "slow client: output over %s "
                 "(%zu bytes), closing with 1008", over, queued);
    wsh_conn_finalize(c, NULL);
    return false;
}

/* May one more frame be queued on C? Not when its output is over
 * send_buffer: a client that does not read must not make the server
 * grow (conn_output_refused). */
static inline bool
conn_output_allowed(wsh_conn_t *c)
{
    size_t queued = c->io.out_bytes;

    /* Nothing queued: always room (a fan-out's usual recipient). */
    if (queued == 0
        || (queued <= wsh_worker.conf->send_buffer
            && !conn_worker_output_full(queued)))
    {
        return true;
    }
    return conn_output_refused(c, queued);
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
    f->unstated = 0;
    f->payload = len;
    f->len = n + len;
    f->deflated = NULL;
    f->deflate_tried = false;
    return f;
}

/* F's deliveries since the last time into the server's counters, as
 * conn_count_out would have counted each. */
static void
conn_count_shared(wsh_shared_frame_t *f)
{
    uint64_t n = f->unstated;

    f->unstated = 0;
    wsh_stat_add((f->data[0] & 0x0f) == WSH_WS_OP_TEXT
                 ? WSH_STAT_MSG_OUT_TEXT : WSH_STAT_MSG_OUT_BINARY, n);
    wsh_stat_add(WSH_STAT_BYTES_OUT, n * f->payload);
    wsh_stat_observe_n(WSH_HIST_SIZE_OUT, f->payload, n);
}

void
wsh_shared_frame_release(wsh_shared_frame_t *f)
{
    /* The holder that fanned F out releases it once done: its
     * deliveries are counted then, in the same loop turn. */
    if (f->unstated > 0) {
        conn_count_shared(f);
    }
    if (f->deflated != NULL && f->deflated->unstated > 0) {
        conn_count_shared(f->deflated);
    }
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
    return wsh_conn_deliver(c, f, 0);
}

int
wsh_conn_deliver(wsh_conn_t *c, wsh_shared_frame_t *f, uint64_t except)
{
    wsh_shared_frame_t *v;

    if (c->id == except) {
        return 1;
    }
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
    c->msgs_out++;
    c->bytes_out += f->payload;
    f->unstated++;              /* counted in wsh_shared_frame_release */
    return 0;
}

/* Queue one frame. Close frames always go (one per connection, small);
 * everything else is subject to send_buffer. */
bool
wsh_conn_send_frame(wsh_conn_t *c, int opcode, const void *data, size_t len)
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
void
wsh_conn_send_close(wsh_conn_t *c, int code, const char *reason)
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
    (void) wsh_conn_send_frame(c, WSH_WS_OP_CLOSE, payload, len);
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
    wsh_conn_log(WSH_LOG_INFO, c, "closing with %d: %s", code, why);
    conn_count_ws_error(code);
    c->close_code = (uint16_t) code;
    wsh_conn_send_close(c, code, why);
    if (c->state != WSH_CONN_DEAD) {
        wsh_conn_after_flush(c, true);
    }
}

int
wsh_conn_send(wsh_conn_t *c, int opcode, const void *data, size_t len)
{
    if (c->state != WSH_CONN_WS) {
        return -1;
    }
    if (!wsh_conn_send_frame(c, opcode, data, len)) {
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
    wsh_conn_send_close(c, code, reason);
    if (c->state == WSH_CONN_DEAD) {
        return;
    }
    c->state = WSH_CONN_CLOSING;
    wsh_conn_close_deadline(c);
}

void
wsh_conn_upgrade(wsh_conn_t *c, const char *accept)
{
    const wsh_conf_t *cf = wsh_worker.conf;
    char ext[WSH_DEFLATE_RESPONSE_MAX + 40];
    char head[sizeof(ext) + 200];
    wsh_deflate_params_t dp;
    int n;

    /* Out of its handshake slot first: the WebSocket's fields below
     * share its memory (net/conn.h). */
    wsh_pending_remove(c);
    ext[0] = '\0';
    if (cf->compression.enabled
        && wsh_handshake_deflate(&cf->compression, c->req, &dp) == WSH_OK)
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
    c->websocket = 1;
    wsh_worker.nwebsockets++;
    wsh_stat_add(WSH_STAT_CONNECTIONS_ACTIVE, 1);
    wsh_stat_add(WSH_STAT_CONN_ACCEPTED, 1);

    c->last_rx = (uint32_t) wsh_monotonic_msec();
    conn_timer_unlink(c);
    if (cf->ping_period) {
        wsh_conn_timer_add(c, &wsh_worker.pings, wsh_worker.ping_timer,
                           cf->ping_period);
    }
    wsh_conn_log(WSH_LOG_DEBUG, c, "WebSocket open on %s", c->endpoint->path);
    c->opened = 1;
    if (c->endpoint->module->open != NULL) {
        c->endpoint->module->open(c, c->req);
    }
    if (wsh_worker.draining && c->state == WSH_CONN_WS) {
        /* A handshake that was under way when the drain began: it is
         * completed (a refusal would be a failed connection for the
         * client) and the socket closed politely at once. */
        wsh_conn_timer_add(c, &wsh_worker.drains, wsh_worker.drain_timer, 0);
    }
    wsh_http_request_free(c->req);
    free(c->req);
    c->req = NULL;
}

static void
conn_ws_close_received(wsh_conn_t *c, const wsh_ws_event_t *ev)
{
    c->close_received = 1;
    if (c->state == WSH_CONN_WS) {
        /* Echo the code (section 5.5.1); a close without one is answered
         * without one. */
        c->close_code = (uint16_t) ev->code;
        wsh_conn_send_close(c, ev->code, NULL);
    }
    if (c->state != WSH_CONN_DEAD) {
        wsh_conn_after_flush(c, false);
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
            wsh_conn_log(WSH_LOG_WARN, c, "over rate_limit (%u/s, burst %u): "
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
            wsh_conn_finalize(c, why);
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
        wsh_conn_finalize(c, "out of memory for a partial frame");
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
size_t
wsh_conn_ws_input(wsh_conn_t *c, u_char *p, size_t len)
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
                wsh_conn_finalize(c, ev.error);
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
                (void) wsh_conn_send_frame(c, WSH_WS_OP_PONG, ev.data, ev.len);
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
