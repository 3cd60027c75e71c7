/* http.h -- HTTP/1.1 request parser and responses (RFC 9112).
 *
 * Just enough HTTP for a WebSocket server: the request line and headers,
 * collected incrementally into one bounded buffer, and small complete
 * responses. The parser reads no body: it judges the framing
 * (Content-Length, Transfer-Encoding) and the connection (net/conn.c)
 * reads a Content-Length body for a module that wants one, answering
 * 411 for a chunked one and 413 past the endpoint's limit.
 */
#ifndef WSH_HTTP_H
#define WSH_HTTP_H

#include "core/core.h"

typedef struct {
    const char *name;
    size_t      name_len;
    const char *value;
    size_t      value_len;
} wsh_http_header_t;

typedef struct wsh_request_s {
    char              *buf;         /* the raw head, NUL-terminated lines */
    size_t             len;
    size_t             cap;
    size_t             max;         /* max_header_size */
    unsigned           max_headers;
    uint8_t            crlf;        /* end-of-head matcher state */
    bool               line_done;   /* the request line has ended */

    const char        *method;
    size_t             method_len;
    const char        *target;      /* path plus optional ?query */
    size_t             target_len;
    size_t             path_len;    /* target up to '?' */
    int                version;     /* 10 or 11 */
    bool               has_body;    /* Content-Length > 0 or chunked */
    uint64_t           content_length; /* its value, 0 when absent */
    bool               keep_alive;
    wsh_http_header_t *headers;
    unsigned           nheaders;

    char              *body;        /* POST body, when a module reads one */
    size_t             body_len;
    size_t             body_want;

    /* Bytes of the next requests that arrived while this one's answer
     * was awaited (pipelining), fed to the parser after it. */
    u_char            *next;
    size_t             next_len;
} wsh_request_t;

void wsh_http_request_init(wsh_request_t *r, size_t max_header_size,
    unsigned max_headers);
void wsh_http_request_free(wsh_request_t *r);

/* Feed bytes. Returns WSH_AGAIN (all consumed, head incomplete), WSH_OK
 * (head complete and parsed; *used says how many bytes of p belonged to
 * it, the rest is the next request or WebSocket data), or an HTTP error
 * status: 400 malformed (also a Content-Length repeated, not one plain
 * decimal, or with Transfer-Encoding), 414 request line too long, 431
 * headers too large or too many, 505 unsupported version. */
int wsh_http_parse(wsh_request_t *r, const char *p, size_t len, size_t *used);

/* First header NAME (case-insensitive), or NULL. */
const wsh_http_header_t *wsh_http_header(const wsh_request_t *r,
    const char *name);

/* How many NAME header fields the request has. */
unsigned wsh_http_header_count(const wsh_request_t *r, const char *name);

/* True if any NAME header holds TOKEN in its comma-separated list,
 * compared case-insensitively (Connection: keep-alive, Upgrade). */
bool wsh_http_header_has_token(const wsh_request_t *r, const char *name,
    const char *token);

const char *wsh_http_status_text(int status);

#endif /* WSH_HTTP_H */
