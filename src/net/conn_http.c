/* conn_http.c -- a connection's HTTP side: requests, bodies, answers.
 *
 * Before the upgrade a connection is an HTTP/1.1 one: the request head
 * goes to the parser (net/http.c), then through the admission checks
 * (conn_admit.c); a plain request to a module with an http hook gets its
 * body read (up to the endpoint's limit, with Expect: 100-continue) and
 * is answered by the module, at once or later (within handshake_timeout,
 * else 504), and requests pipelined meanwhile wait their turn. Every
 * answer, the core's and the modules', is written by conn_http_respond().
 */
#include "net/conn.h"
#include "net/conn_int.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void conn_http_next(wsh_conn_t *c);

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
        wsh_conn_io_read(&c->io, next, len);
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
        wsh_conn_finalize(c, "pipelined past max_header_size while an answer "
                          "was awaited");
        return len;
    }
    next = realloc(r->next, r->next_len + len);
    if (next == NULL) {
        wsh_conn_finalize(c, "out of memory");
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
     * would read as the start of the next answer. Section 15.4.5: nor
     * does a 304, whose Content-Length is the 200's. */
    if ((r != NULL && r->method_len == 4
         && memcmp(r->method, "HEAD", 4) == 0) || status == 304)
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
        wsh_conn_finalize(c, "response head too long or out of memory");
        return;
    }

    if (wsh_log_access_enabled()) {
        wsh_conn_access_log(c, status, sent, false);
    }
    /* Answered after the module's http hook returned: input was held. */
    later = c->awaiting && c->io.held;
    c->awaiting = 0;
    c->keep_alive = keep;
    if (later) {
        wsh_io_hold(&c->io, false);
    }
    if (!keep) {
        wsh_conn_after_flush(c, true);
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

/* An error answer with EXTRA header lines: a short text body saying
 * why. Not logged here: the callers decide how often. */
void
wsh_conn_http_answer(wsh_conn_t *c, int status, const char *extra,
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
void
wsh_conn_http_error(wsh_conn_t *c, int status, const char *why)
{
    const char *extra = NULL;

    wsh_conn_log(WSH_LOG_INFO, c, "HTTP %d: %s", status, why);

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
    wsh_conn_http_answer(c, status, extra, why);
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

/* A module's plain HTTP request, once its body (if any) is in. */
static void
conn_http_module(wsh_conn_t *c)
{
    c->req->has_body = false;           /* read: keep-alive is possible */
    c->awaiting = 1;                    /* until an answer is queued */
    if (c->endpoint->module->http(c, c->req) != 0) {
        wsh_conn_http_error(c, 426, "this endpoint speaks WebSocket: send an "
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
        wsh_conn_http_error(c, 411, "send the body with a Content-Length");
        return true;
    }
    if (n > max) {
        wsh_conn_http_error(c, 413, "body over the endpoint's limit");
        return true;
    }
    if (n == 0) {
        return false;
    }
    r->body = malloc(n);
    if (r->body == NULL) {
        wsh_conn_http_error(c, 503, "out of memory");
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

/* A plain HTTP request for the endpoint's module (the admission checks
 * sent it here): its http_head hook may refuse it or change the body
 * limit, then the body, if any, is read and the http hook called. */
void
wsh_conn_http_serve(wsh_conn_t *c)
{
    wsh_request_t *r = c->req;
    const wsh_module_t *m = c->endpoint->module;
    size_t max;

    max = c->endpoint->max_message_size;
    if (m->http_head != NULL) {
        c->status = 0;
        if (m->http_head(c, r, &max) != 0) {
            if (c->status == 0) {
                wsh_conn_http_error(c, 500, "refused without an answer");
            }
            return;
        }
    }
    if (!r->has_body || !conn_http_body(c, max)) {
        conn_http_module(c);
    }
}

/* Answered and kept alive: get ready for the next request. */
static void
conn_http_next(wsh_conn_t *c)
{
    if (c->state == WSH_CONN_HTTP && c->req != NULL && !c->awaiting) {
        wsh_http_request_free(c->req);
        free(c->req);
        c->req = NULL;
        wsh_conn_handshake_deadline(c);
    }
}

/* Feed one chunk to the HTTP parser (or a request body); returns bytes
 * used. */
size_t
wsh_conn_http_input(wsh_conn_t *c, const u_char *p, size_t len)
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
            wsh_conn_finalize(c, "out of memory");
            return len;
        }
        wsh_http_request_init(c->req, cf->max_header_size, cf->max_headers);
    }
    rc = wsh_http_parse(c->req, (const char *) p, len, &used);
    if (rc == WSH_AGAIN) {
        return used;
    }
    if (rc != WSH_OK) {
        wsh_conn_http_error(c, rc, rc == 414 ? "request line too long"
                                   : rc == 431 ? "request headers too large"
                                   : rc == 505 ? "HTTP version not supported"
                                   : "malformed request");
        return len;
    }
    wsh_conn_admit(c);
    if (c->req == NULL || c->req->body_want == 0) {
        conn_http_next(c);
    }
    return used;
}
