/* http.c -- incremental HTTP/1.1 request head parser.
 *
 * Bytes are appended to one buffer bounded by max_header_size while a
 * small matcher looks for the blank line that ends the head, so input
 * may arrive in any pieces and is scanned once. The complete head is then
 * split into the request line and header fields in place. Strict where
 * laxness is a smuggling risk (no whitespace before ':', no obs-fold,
 * no bare CR), lenient where RFC 9112 allows (bare LF line ends).
 */
#include "net/http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
wsh_http_request_init(wsh_request_t *r, size_t max_header_size,
    unsigned max_headers)
{
    memset(r, 0, sizeof(*r));
    r->max = max_header_size;
    r->max_headers = max_headers;
}

void
wsh_http_request_free(wsh_request_t *r)
{
    free(r->buf);
    free(r->headers);
    free(r->body);
    free(r->next);
    r->buf = NULL;
    r->headers = NULL;
    r->body = NULL;
    r->next = NULL;
}

/* tchar of RFC 9110 section 5.6.2 */
static bool
http_tchar(u_char ch)
{
    return isalnum(ch) || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int
http_parse_request_line(wsh_request_t *r, char *line, size_t len)
{
    char *p = line, *last = line + len, *sp;

    for (sp = p; sp < last && http_tchar((u_char) *sp); sp++) { }
    if (sp == p || sp == last || *sp != ' ') {
        return 400;
    }
    r->method = p;
    r->method_len = (size_t) (sp - p);

    p = sp + 1;
    for (sp = p; sp < last && *sp != ' '; sp++) {
        if ((u_char) *sp <= 0x20 || (u_char) *sp == 0x7f) {
            return 400;
        }
    }
    if (sp == p || sp == last || (*p != '/' && *p != '*')) {
        return 400;             /* absolute-form is for proxies */
    }
    r->target = p;
    r->target_len = (size_t) (sp - p);
    r->path_len = r->target_len;
    for (size_t i = 0; i < r->target_len; i++) {
        if (p[i] == '?') {
            r->path_len = i;
            break;
        }
    }

    p = sp + 1;
    if (last - p != 8 || memcmp(p, "HTTP/", 5) != 0 || !isdigit((u_char) p[5])
        || p[6] != '.' || !isdigit((u_char) p[7]))
    {
        return 400;
    }
    if (p[5] != '1') {
        return 505;
    }
    r->version = p[7] == '0' ? 10 : 11;
    r->keep_alive = r->version == 11;
    return WSH_OK;
}

static int
http_parse_header(wsh_request_t *r, char *line, size_t len)
{
    wsh_http_header_t *h;
    char *colon, *v, *last = line + len;

    if (*line == ' ' || *line == '\t') {
        return 400;             /* obs-fold: RFC 9112 section 5.2 */
    }
    for (colon = line; colon < last && http_tchar((u_char) *colon); colon++) { }
    if (colon == line || colon == last || *colon != ':') {
        return 400;             /* includes whitespace before the colon */
    }
    if (r->nheaders == r->max_headers) {
        return 431;
    }
    for (v = colon + 1; v < last && (*v == ' ' || *v == '\t'); v++) { }
    while (last > v && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }
    for (char *q = v; q < last; q++) {
        if (((u_char) *q < 0x20 && *q != '\t') || *q == 0x7f) {
            return 400;
        }
    }
    h = &r->headers[r->nheaders++];
    h->name = line;
    h->name_len = (size_t) (colon - line);
    h->value = v;
    h->value_len = (size_t) (last - v);
    *last = '\0';
    return WSH_OK;
}

/* The body's length (RFC 9112 section 6.3): one Content-Length field of
 * one plain decimal, never beside Transfer-Encoding. A proxy in front
 * may have framed a doubtful request otherwise than we would, and the
 * bytes that one of us takes for a body the other takes for the next
 * request (request smuggling): so differing values, a list, a sign,
 * spaces or more than 64 bits are refused, and so is a repeated field
 * even with the same value (RFC 9110 section 8.6 allows accepting that;
 * nginx does not either). Returns WSH_OK or 400. */
static int
http_content_length(wsh_request_t *r)
{
    const wsh_http_header_t *h = wsh_http_header(r, "Content-Length");
    uint64_t n = 0;
    unsigned d;
    size_t i;

    if (h == NULL) {
        return WSH_OK;
    }
    if (h->value_len == 0 || wsh_http_header_count(r, "Content-Length") != 1
        || wsh_http_header(r, "Transfer-Encoding") != NULL)
    {
        return 400;
    }
    for (i = 0; i < h->value_len; i++) {
        d = (unsigned) ((u_char) h->value[i] - '0');
        if (d > 9 || n > (UINT64_MAX - d) / 10) {
            return 400;
        }
        n = n * 10 + d;
    }
    r->content_length = n;
    return WSH_OK;
}

static int
http_parse_head(wsh_request_t *r)
{
    char *p = r->buf, *last = r->buf + r->len, *eol, *end;
    bool first = true;
    int rc;

    r->headers = calloc(r->max_headers, sizeof(*r->headers));
    if (r->headers == NULL) {
        return 500;
    }
    while (p < last) {
        eol = memchr(p, '\n', (size_t) (last - p));
        if (eol == NULL) {
            return 400;
        }
        end = eol;
        if (end > p && end[-1] == '\r') {
            end--;
        }
        if (memchr(p, '\r', (size_t) (end - p)) != NULL) {
            return 400;         /* bare CR inside a line */
        }
        if (end == p) {
            break;              /* the blank line */
        }
        rc = first ? http_parse_request_line(r, p, (size_t) (end - p))
                   : http_parse_header(r, p, (size_t) (end - p));
        if (rc != WSH_OK) {
            return rc;
        }
        first = false;
        p = eol + 1;
    }

    if (wsh_http_header_has_token(r, "Connection", "close")) {
        r->keep_alive = false;
    } else if (wsh_http_header_has_token(r, "Connection", "keep-alive")) {
        r->keep_alive = true;
    }
    rc = http_content_length(r);
    if (rc != WSH_OK) {
        return rc;
    }
    r->has_body = r->content_length > 0
                  || wsh_http_header(r, "Transfer-Encoding") != NULL;
    if (r->version == 11 && wsh_http_header_count(r, "Host") != 1) {
        return 400;             /* RFC 9112 section 3.2: exactly one */
    }
    return WSH_OK;
}

int
wsh_http_parse(wsh_request_t *r, const char *p, size_t len, size_t *used)
{
    size_t i;
    char ch;

    if (r->buf == NULL) {
        r->cap = r->max < 1024 ? r->max : 1024;
        r->buf = malloc(r->cap + 1);
        if (r->buf == NULL) {
            return 500;
        }
    }
    for (i = 0; i < len; i++) {
        ch = p[i];
        if (r->len == r->max) {
            return r->line_done ? 431 : 414;
        }
        if (r->len == r->cap) {
            size_t cap = r->cap * 2 > r->max ? r->max : r->cap * 2;
            char *nb = realloc(r->buf, cap + 1);

            if (nb == NULL) {
                return 500;
            }
            r->buf = nb;
            r->cap = cap;
        }
        r->buf[r->len++] = ch;

        /* Empty lines before the request line are allowed and skipped
         * (RFC 9112 section 2.2); nothing else before it is. */
        if (!r->line_done
            && ((ch == '\r' && r->len == 1)
                || (ch == '\n' && (r->len == 1
                                   || (r->len == 2 && r->buf[0] == '\r')))))
        {
            if (ch == '\n') {
                r->len = 0;
            }
            continue;
        }
        if (ch == '\n') {
            r->line_done = true;
            if (r->crlf == 1) {
                r->buf[r->len] = '\0';
                *used = i + 1;
                return http_parse_head(r);
            }
            r->crlf = 1;
        } else if (ch != '\r') {
            r->crlf = 0;
        }
    }
    *used = len;
    return WSH_AGAIN;
}

const wsh_http_header_t *
wsh_http_header(const wsh_request_t *r, const char *name)
{
    size_t n = strlen(name);
    unsigned i;

    for (i = 0; i < r->nheaders; i++) {
        if (r->headers[i].name_len == n
            && strncasecmp(r->headers[i].name, name, n) == 0)
        {
            return &r->headers[i];
        }
    }
    return NULL;
}

unsigned
wsh_http_header_count(const wsh_request_t *r, const char *name)
{
    size_t n = strlen(name);
    unsigned i, count = 0;

    for (i = 0; i < r->nheaders; i++) {
        count += r->headers[i].name_len == n
                 && strncasecmp(r->headers[i].name, name, n) == 0;
    }
    return count;
}

bool
wsh_http_header_has_token(const wsh_request_t *r, const char *name,
    const char *token)
{
    size_t n = strlen(name), tlen = strlen(token), len;
    const char *p, *last, *start;
    unsigned i;

    for (i = 0; i < r->nheaders; i++) {
        if (r->headers[i].name_len != n
            || strncasecmp(r->headers[i].name, name, n) != 0)
        {
            continue;
        }
        p = r->headers[i].value;
        last = p + r->headers[i].value_len;
        while (p < last) {
            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }
            start = p;
            while (p < last && *p != ',') {
                p++;
            }
            len = (size_t) (p - start);
            while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t')) {
                len--;
            }
            if (len == tlen && strncasecmp(start, token, tlen) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* The reason phrases of every status RFC 9110 section 15 and RFC 6585
 * define, whether wshubd sends it today or not, so that a status a module
 * starts sending never goes out as "Unknown". Sorted by status. */
static const struct {
    int         status;
    const char *text;
} http_reasons[] = {
    { 100, "Continue" },
    { 101, "Switching Protocols" },
    { 200, "OK" },
    { 201, "Created" },
    { 202, "Accepted" },
    { 203, "Non-Authoritative Information" },
    { 204, "No Content" },
    { 205, "Reset Content" },
    { 206, "Partial Content" },
    { 300, "Multiple Choices" },
    { 301, "Moved Permanently" },
    { 302, "Found" },
    { 303, "See Other" },
    { 304, "Not Modified" },
    { 305, "Use Proxy" },
    { 307, "Temporary Redirect" },
    { 308, "Permanent Redirect" },
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 402, "Payment Required" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 406, "Not Acceptable" },
    { 407, "Proxy Authentication Required" },
    { 408, "Request Timeout" },
    { 409, "Conflict" },
    { 410, "Gone" },
    { 411, "Length Required" },
    { 412, "Precondition Failed" },
    { 413, "Content Too Large" },
    { 414, "URI Too Long" },
    { 415, "Unsupported Media Type" },
    { 416, "Range Not Satisfiable" },
    { 417, "Expectation Failed" },
    { 421, "Misdirected Request" },
    { 422, "Unprocessable Content" },
    { 426, "Upgrade Required" },
    { 428, "Precondition Required" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },
    { 501, "Not Implemented" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
    { 505, "HTTP Version Not Supported" },
    { 511, "Network Authentication Required" },
};

/* The reason phrase of STATUS, a static string; "Unknown" for a status
 * no RFC defines. Any process may call it. */
const char *
wsh_http_status_text(int status)
{
    size_t lo = 0, hi = wsh_nelems(http_reasons), mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (http_reasons[mid].status == status) {
            return http_reasons[mid].text;
        }
        if (http_reasons[mid].status < status) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return "Unknown";
}
