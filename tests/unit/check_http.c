/* check_http.c -- unit tests of the HTTP request parser and handshake.
 *
 * The request head parser (RFC 9112) must give the same result whether a
 * request arrives whole, one byte at a time or cut anywhere in two, and
 * report in *used where the head ends so WebSocket bytes that follow it
 * in the same read are kept. The handshake check (RFC 6455 section 4.2.1)
 * must answer each flaw with its own status.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "net/http.h"
#include "net/handshake.h"

#define MAX_HEADER 8192
#define MAX_FIELDS 64
#define SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* What Chrome sends, with the RFC 6455 section 1.3 sample key. */
static const char browser[] =
    "GET /chat?room=1&x=%20 HTTP/1.1\r\n"
    "Host: example.com:8080\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; "
    "client_max_window_bits\r\n"
    "\r\n";

/* A masked "Hello" text frame, as it may follow the head in one read. */
static const char ws_bytes[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

typedef struct {
    int    rc;
    size_t consumed;            /* bytes of the input that were the head */
    char   summary[2048];
} result_t;

static void sum_add(result_t *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sum_add(result_t *res, const char *fmt, ...)
{
    size_t len = strlen(res->summary);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->summary + len, sizeof(res->summary) - len, fmt, ap);
    va_end(ap);
}

/* Everything the parser extracted, as text, to compare runs. */
static void
summarise(const wsh_request_t *r, result_t *res)
{
    unsigned i;

    res->summary[0] = '\0';
    sum_add(res, "rc %d", res->rc);
    if (res->rc != WSH_OK) {
        return;
    }
    sum_add(res, " [%.*s] [%.*s] path %zu v%d ka %d body %d\n",
            (int) r->method_len, r->method, (int) r->target_len, r->target,
            r->path_len, r->version, r->keep_alive, r->has_body);
    for (i = 0; i < r->nheaders; i++) {
        sum_add(res, "[%.*s]=[%.*s]\n", (int) r->headers[i].name_len,
                r->headers[i].name, (int) r->headers[i].value_len,
                r->headers[i].value);
    }
}

/* Parse TEXT cut at the positions in CUTS (ascending, the last being the
 * length); stops at the first result other than WSH_AGAIN. The request
 * is left parsed in R for the caller to inspect and free. */
static void
parse_cuts(wsh_request_t *r, const char *text, const size_t *cuts,
    size_t ncuts, result_t *res)
{
    size_t i, from = 0, used;

    res->rc = WSH_AGAIN;
    res->consumed = 0;
    for (i = 0; i < ncuts && res->rc == WSH_AGAIN; i++) {
        used = SIZE_MAX;
        res->rc = wsh_http_parse(r, text + from, cuts[i] - from, &used);
        if (res->rc == WSH_AGAIN || res->rc == WSH_OK) {
            ck_assert_uint_le(used, cuts[i] - from);
            res->consumed = from + used;
        }
        if (res->rc == WSH_AGAIN) {
            ck_assert_uint_eq(used, cuts[i] - from);
        }
        from = cuts[i];
    }
    summarise(r, res);
}

static void
parse_whole(wsh_request_t *r, const char *text, size_t len, result_t *res)
{
    parse_cuts(r, text, &len, 1, res);
}

/* Parse with a fresh request and free it: just the result. */
static void
parse_once(const char *text, size_t len, size_t max, unsigned maxh,
    result_t *res)
{
    wsh_request_t r;

    wsh_http_request_init(&r, max, maxh);
    parse_whole(&r, text, len, res);
    wsh_http_request_free(&r);
}

static int
status_of(const char *text, size_t max, unsigned maxh)
{
    result_t res;

    parse_once(text, strlen(text), max, maxh, &res);
    return res.rc;
}

/* TEXT must give the same result and the same head length whole, one
 * byte at a time and cut in two at every position. */
static void
check_all_ways(const char *text, size_t len, size_t max, unsigned maxh,
    int expect_rc, size_t expect_used)
{
    wsh_request_t r;
    result_t whole, res;
    size_t *cuts, i, k;

    parse_once(text, len, max, maxh, &whole);
    ck_assert_msg(whole.rc == expect_rc, "whole: %d, expected %d", whole.rc,
                  expect_rc);
    if (expect_rc == WSH_OK) {
        ck_assert_uint_eq(whole.consumed, expect_used);
    }

    cuts = malloc((len + 1) * sizeof(*cuts));
    ck_assert_ptr_nonnull(cuts);
    for (i = 0; i < len; i++) {
        cuts[i] = i + 1;
    }
    wsh_http_request_init(&r, max, maxh);
    parse_cuts(&r, text, cuts, len, &res);
    wsh_http_request_free(&r);
    ck_assert_msg(strcmp(res.summary, whole.summary) == 0,
                  "byte at a time:\n%s\nwhole:\n%s", res.summary,
                  whole.summary);
    if (expect_rc == WSH_OK) {
        ck_assert_uint_eq(res.consumed, whole.consumed);
    }

    for (k = 0; k <= len; k++) {
        cuts[0] = k;
        cuts[1] = len;
        wsh_http_request_init(&r, max, maxh);
        parse_cuts(&r, text, cuts, 2, &res);
        wsh_http_request_free(&r);
        ck_assert_msg(strcmp(res.summary, whole.summary) == 0,
                      "split at %zu:\n%s\nwhole:\n%s", k, res.summary,
                      whole.summary);
        if (expect_rc == WSH_OK) {
            ck_assert_uint_eq(res.consumed, whole.consumed);
        }
    }
    free(cuts);
}

static void
assert_header(const wsh_request_t *r, const char *name, const char *value)
{
    const wsh_http_header_t *h = wsh_http_header(r, name);

    ck_assert_msg(h != NULL, "no %s header", name);
    ck_assert_msg(h->value_len == strlen(value)
                  && memcmp(h->value, value, h->value_len) == 0,
                  "%s: [%.*s], expected [%s]", name, (int) h->value_len,
                  h->value, value);
}

START_TEST(test_browser_request)
{
    wsh_request_t r;
    result_t res;

    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, browser, sizeof(browser) - 1, &res);
    ck_assert_int_eq(res.rc, WSH_OK);
    ck_assert_uint_eq(res.consumed, sizeof(browser) - 1);

    ck_assert_uint_eq(r.method_len, 3);
    ck_assert_mem_eq(r.method, "GET", 3);
    ck_assert_uint_eq(r.target_len, strlen("/chat?room=1&x=%20"));
    ck_assert_mem_eq(r.target, "/chat?room=1&x=%20", r.target_len);
    ck_assert_uint_eq(r.path_len, 5);
    ck_assert_int_eq(r.version, 11);
    ck_assert(r.keep_alive);
    ck_assert(!r.has_body);
    ck_assert_uint_eq(r.nheaders, 12);

    assert_header(&r, "Host", "example.com:8080");
    assert_header(&r, "host", "example.com:8080");
    assert_header(&r, "SEC-WEBSOCKET-KEY", SAMPLE_KEY);
    assert_header(&r, "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) "
                  "AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36");
    assert_header(&r, "Sec-WebSocket-Extensions",
                  "permessage-deflate; client_max_window_bits");
    ck_assert_ptr_null(wsh_http_header(&r, "Cookie"));
    ck_assert_ptr_null(wsh_http_header(&r, "Hos"));
    ck_assert_ptr_null(wsh_http_header(&r, "Hostx"));
    ck_assert(wsh_http_header_has_token(&r, "Connection", "Upgrade"));
    ck_assert(wsh_http_header_has_token(&r, "connection", "upgrade"));
    ck_assert(wsh_http_header_has_token(&r, "Connection", "keep-alive"));
    ck_assert(wsh_http_header_has_token(&r, "Upgrade", "WebSocket"));
    ck_assert(!wsh_http_header_has_token(&r, "Connection", "close"));
    wsh_http_request_free(&r);
}
END_TEST

START_TEST(test_browser_request_pieces)
{
    check_all_ways(browser, sizeof(browser) - 1, MAX_HEADER, MAX_FIELDS,
                   WSH_OK, sizeof(browser) - 1);
}
END_TEST

/* WebSocket bytes right behind the head: *used stops at the blank line. */
START_TEST(test_used_with_frame_after)
{
    static const char two[] = "GET / HTTP/1.1\nHost: a\n\nGET /x HTTP/1.1\n";
    char buf[sizeof(browser) + sizeof(ws_bytes)];
    size_t head = sizeof(browser) - 1, len;

    memcpy(buf, browser, head);
    memcpy(buf + head, ws_bytes, sizeof(ws_bytes) - 1);
    len = head + sizeof(ws_bytes) - 1;
    check_all_ways(buf, len, MAX_HEADER, MAX_FIELDS, WSH_OK, head);

    /* the same with bare LF line ends and a second request behind */
    check_all_ways(two, strlen(two), MAX_HEADER, MAX_FIELDS, WSH_OK, 24);
}
END_TEST

START_TEST(test_bare_lf)
{
    static const char text[] =
        "GET /ws HTTP/1.1\n"
        "Host: h\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\n"
        "Sec-WebSocket-Version: 13\n"
        "Sec-WebSocket-Key: " SAMPLE_KEY "\n"
        "\n";
    char accept[WSH_WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    wsh_request_t r;
    result_t res;

    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, text, sizeof(text) - 1, &res);
    ck_assert_int_eq(res.rc, WSH_OK);
    ck_assert_uint_eq(r.nheaders, 5);
    assert_header(&r, "Host", "h");
    assert_header(&r, "Upgrade", "websocket");
    assert_header(&r, "Sec-WebSocket-Key", SAMPLE_KEY);
    ck_assert_int_eq(wsh_handshake_check(&r, accept, &why), WSH_OK);
    ck_assert_str_eq(accept, SAMPLE_ACCEPT);
    wsh_http_request_free(&r);

    check_all_ways(text, sizeof(text) - 1, MAX_HEADER, MAX_FIELDS, WSH_OK,
                   sizeof(text) - 1);
    /* CRLF line ends with a bare LF blank line, and the reverse */
    ck_assert_int_eq(status_of("GET / HTTP/1.1\r\nHost: a\r\n\n", MAX_HEADER,
                               MAX_FIELDS), WSH_OK);
    ck_assert_int_eq(status_of("GET / HTTP/1.1\nHost: a\n\r\n", MAX_HEADER,
                               MAX_FIELDS), WSH_OK);
}
END_TEST

/* RFC 9112 section 2.2: empty lines before the request line are
 * skipped. */
START_TEST(test_leading_empty_lines)
{
    static const char *const texts[] = {
        "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\n\n\r\n\nGET / HTTP/1.1\nHost: a\n\n",
    };
    wsh_request_t r;
    result_t res;
    size_t i, len;

    for (i = 0; i < wsh_nelems(texts); i++) {
        len = strlen(texts[i]);
        wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
        parse_whole(&r, texts[i], len, &res);
        ck_assert_msg(res.rc == WSH_OK, "text %zu: %d", i, res.rc);
        ck_assert_uint_eq(res.consumed, len);
        ck_assert_uint_eq(r.method_len, 3);
        ck_assert_mem_eq(r.method, "GET", 3);
        ck_assert_uint_eq(r.nheaders, 1);
        wsh_http_request_free(&r);
        check_all_ways(texts[i], len, MAX_HEADER, MAX_FIELDS, WSH_OK, len);
    }
}
END_TEST

/* Only empty lines may precede the request line: a line holding one
 * character is not empty and must not be dropped. */
START_TEST(test_junk_before_request_line)
{
    static const char *const junk[] = {
        "X\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\nX\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "X\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "XY\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    char msg[256] = "";
    size_t i, len;
    int rc;

    for (i = 0; i < wsh_nelems(junk); i++) {
        rc = status_of(junk[i], MAX_HEADER, MAX_FIELDS);
        if (rc != 400) {
            len = strlen(msg);
            snprintf(msg + len, sizeof(msg) - len, " case %zu gave %d;", i,
                     rc);
        }
    }
    ck_assert_msg(msg[0] == '\0', "junk before the request line "
                  "accepted:%s", msg);
}
END_TEST

/* RFC 9112 section 3.2: 400 for more than one Host field line. */
START_TEST(test_duplicate_host)
{
    ck_assert_int_eq(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                               MAX_HEADER, MAX_FIELDS), 400);
    ck_assert_int_eq(status_of("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
                               MAX_HEADER, MAX_FIELDS), 400);
}
END_TEST

/* A request line that does not fit in max_header_size: 414. */
START_TEST(test_request_line_too_long)
{
    char text[512];
    size_t len;

    len = (size_t) snprintf(text, sizeof(text), "GET /%0200d HTTP/1.1\r\n"
                            "Host: a\r\n\r\n", 7);
    check_all_ways(text, len, 128, MAX_FIELDS, 414, 0);
    /* the error comes without waiting for the end of the line */
    ck_assert_int_eq(status_of("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                               64, MAX_FIELDS), 414);
    /* and a request line with room to spare is fine */
    ck_assert_int_eq(status_of(text, 512, MAX_FIELDS), WSH_OK);
}
END_TEST

/* Headers that do not fit: 431; exactly max_header_size is fine. */
START_TEST(test_headers_too_large)
{
    char text[1024];
    size_t len;

    len = (size_t) snprintf(text, sizeof(text), "GET / HTTP/1.1\r\n"
                            "Host: a\r\nX-Big: %0300d\r\n\r\n", 1);
    check_all_ways(text, len, 256, MAX_FIELDS, 431, 0);

    /* the boundary: max_header_size of exactly the head, one byte less */
    ck_assert_int_eq(status_of(text, len, MAX_FIELDS), WSH_OK);
    ck_assert_int_eq(status_of(text, len - 1, MAX_FIELDS), 431);
    check_all_ways(text, len, len, MAX_FIELDS, WSH_OK, len);
}
END_TEST

START_TEST(test_too_many_headers)
{
    static const char four[] =
        "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    static const char five[] =
        "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";

    ck_assert_int_eq(status_of(four, MAX_HEADER, 4), WSH_OK);
    check_all_ways(five, sizeof(five) - 1, MAX_HEADER, 4, 431, 0);
    ck_assert_int_eq(status_of(five, MAX_HEADER, 5), WSH_OK);
}
END_TEST

/* Malformed heads: 400. */
START_TEST(test_bad_requests)
{
    static const char *const bad[] = {
        /* request line */
        "GET\r\nHost: a\r\n\r\n",
        "GET /\r\nHost: a\r\n\r\n",
        "GET / \r\nHost: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET / HTTP/1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
        "GET / HTTP/x.1\r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "GET / FOO/1.1\r\nHost: a\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET chat HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a/chat HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
        /* header fields */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01 c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n",
        /* obs-fold (RFC 9112 section 5.2) */
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        /* bare CR */
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n",
        "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
        /* HTTP/1.1 needs Host (RFC 9112 section 3.2) */
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
    };
    size_t i;

    for (i = 0; i < wsh_nelems(bad); i++) {
        ck_assert_msg(status_of(bad[i], MAX_HEADER, MAX_FIELDS) == 400,
                      "request %zu: %d, expected 400", i,
                      status_of(bad[i], MAX_HEADER, MAX_FIELDS));
    }
    /* in pieces too */
    check_all_ways(bad[26], strlen(bad[26]), MAX_HEADER, MAX_FIELDS, 400, 0);
    check_all_ways(bad[29], strlen(bad[29]), MAX_HEADER, MAX_FIELDS, 400, 0);
}
END_TEST

START_TEST(test_versions)
{
    static const char v2[] = "GET / HTTP/2.0\r\nHost: a\r\n\r\n";
    static const char v10[] = "GET / HTTP/1.0\r\n\r\n";
    static const char v10ka[] =
        "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    static const char v11close[] =
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    wsh_request_t r;
    result_t res;

    ck_assert_int_eq(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n",
                               MAX_HEADER, MAX_FIELDS), 505);
    ck_assert_int_eq(status_of("GET / HTTP/3.0\r\nHost: a\r\n\r\n",
                               MAX_HEADER, MAX_FIELDS), 505);
    ck_assert_int_eq(status_of("GET / HTTP/0.9\r\nHost: a\r\n\r\n",
                               MAX_HEADER, MAX_FIELDS), 505);
    check_all_ways(v2, strlen(v2), MAX_HEADER, MAX_FIELDS, 505, 0);

    /* HTTP/1.0: no Host needed, no keep-alive unless asked */
    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, v10, strlen(v10), &res);
    ck_assert_int_eq(res.rc, WSH_OK);
    ck_assert_int_eq(r.version, 10);
    ck_assert(!r.keep_alive);
    wsh_http_request_free(&r);

    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, v10ka, strlen(v10ka), &res);
    ck_assert_int_eq(res.rc, WSH_OK);
    ck_assert(r.keep_alive);
    wsh_http_request_free(&r);

    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, v11close, strlen(v11close), &res);
    ck_assert_int_eq(res.rc, WSH_OK);
    ck_assert_int_eq(r.version, 11);
    ck_assert(!r.keep_alive);
    wsh_http_request_free(&r);
}
END_TEST

START_TEST(test_body)
{
    static const struct {
        const char *text;
        bool        body;
    } t[] = {
        { "GET / HTTP/1.1\r\nHost: a\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", true },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", true },
        { "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
          true },
    };
    wsh_request_t r;
    result_t res;
    size_t i;

    for (i = 0; i < wsh_nelems(t); i++) {
        wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
        parse_whole(&r, t[i].text, strlen(t[i].text), &res);
        ck_assert_int_eq(res.rc, WSH_OK);
        ck_assert_msg(r.has_body == t[i].body, "request %zu: has_body %d",
                      i, r.has_body);
        wsh_http_request_free(&r);
    }
}
END_TEST

/* RFC 9112 section 6.3: a body whose length is in doubt is refused with
 * 400, for a proxy in front may have framed it otherwise (request
 * smuggling). Content-Length is one field of one plain decimal, and never
 * comes with Transfer-Encoding. */
START_TEST(test_content_length)
{
    static const struct {
        const char *fields;
        uint64_t    length;     /* when accepted */
    } good[] = {
        { "Content-Length: 0\r\n", 0 },
        { "Content-Length: 5\r\n", 5 },
        { "content-length:\t12 \r\n", 12 },
        { "Content-Length: 0000000000000000000000042\r\n", 42 },
        { "Content-Length: 18446744073709551615\r\n", UINT64_MAX },
        { "X-Content-Length: 5\r\nContent-Length: 6\r\n", 6 },
    };
    static const char *const bad[] = {
        /* two fields that differ: which one a proxy used is unknown */
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 6\r\nContent-Length: 5\r\n",
        "Content-Length: 0\r\nContent-Length: 40\r\n",
        "Content-Length: 5\r\nX-A: b\r\ncontent-length: 50\r\n",
        "Content-Length: 5\r\nContent-Length:\r\n",
        /* the same value twice or as a list: refused too (our choice;
         * RFC 9110 section 8.6 allows either) */
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5,5\r\n",
        "Content-Length: 5, 6\r\n",
        /* with Transfer-Encoding, in either order */
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
        /* not a plain decimal */
        "Content-Length:\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 0x10\r\n",
        "Content-Length: 5a\r\n",
        "Content-Length: 1e3\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length: 5.0\r\n",
        "Content-Length: \"5\"\r\n",
        "Content-Length: \xd9\xa5\r\n",
        /* more than 64 bits */
        "Content-Length: 18446744073709551616\r\n",
        "Content-Length: 99999999999999999999999999\r\n",
    };
    char text[512];
    wsh_request_t r;
    result_t res;
    size_t i, len;

    for (i = 0; i < wsh_nelems(good); i++) {
        len = (size_t) snprintf(text, sizeof(text), "POST /api HTTP/1.1\r\n"
                                "Host: a\r\n%s\r\n", good[i].fields);
        wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
        parse_whole(&r, text, len, &res);
        ck_assert_msg(res.rc == WSH_OK, "good %zu: %d", i, res.rc);
        ck_assert_msg(r.content_length == good[i].length,
                      "good %zu: length %llu", i,
                      (unsigned long long) r.content_length);
        ck_assert(r.has_body == (good[i].length > 0));
        wsh_http_request_free(&r);
    }
    for (i = 0; i < wsh_nelems(bad); i++) {
        len = (size_t) snprintf(text, sizeof(text), "POST /api HTTP/1.1\r\n"
                                "Host: a\r\n%s\r\n", bad[i]);
        ck_assert_msg(status_of(text, MAX_HEADER, MAX_FIELDS) == 400,
                      "bad %zu (%s): %d, expected 400", i, bad[i],
                      status_of(text, MAX_HEADER, MAX_FIELDS));
        /* HTTP/1.0 too: no Host needed, the same rule */
        len = (size_t) snprintf(text, sizeof(text), "POST /api HTTP/1.0\r\n"
                                "%s\r\n", bad[i]);
        ck_assert_msg(status_of(text, MAX_HEADER, MAX_FIELDS) == 400,
                      "bad %zu over HTTP/1.0", i);
    }
    /* wherever the reads end */
    len = (size_t) snprintf(text, sizeof(text), "POST /api HTTP/1.1\r\n"
                            "Host: a\r\n%s\r\n", bad[0]);
    check_all_ways(text, len, MAX_HEADER, MAX_FIELDS, 400, 0);
}
END_TEST

/* Header values: optional whitespace trimmed, inner spaces kept. */
START_TEST(test_header_values)
{
    static const char text[] =
        "GET / HTTP/1.1\r\n"
        "Host:a\r\n"
        "X-Pad: \t padded \t \r\n"
        "X-Empty:\r\n"
        "X-Spaces:    \r\n"
        "X-Dup: first\r\n"
        "x-dup: second\r\n"
        "\r\n";
    wsh_request_t r;
    result_t res;

    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, text, sizeof(text) - 1, &res);
    ck_assert_int_eq(res.rc, WSH_OK);
    assert_header(&r, "Host", "a");
    assert_header(&r, "X-Pad", "padded");
    assert_header(&r, "X-Empty", "");
    assert_header(&r, "X-Spaces", "");
    assert_header(&r, "X-DUP", "first");    /* the first one */
    ck_assert_uint_eq(r.nheaders, 6);
    wsh_http_request_free(&r);
}
END_TEST

/* Comma-separated token lists, case-insensitive, over every field of
 * the name. */
START_TEST(test_tokens)
{
    static const char text[] =
        "GET / HTTP/1.1\r\n"
        "Host: a\r\n"
        "Connection: keep-alive\r\n"
        "X-List: , ,alpha ,\tBeta\t, gamma delta,,\r\n"
        "Upgrade: websockets, h2c\r\n"
        "CONNECTION: close ,  UPGRADE\r\n"
        "\r\n";
    wsh_request_t r;
    result_t res;

    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, text, sizeof(text) - 1, &res);
    ck_assert_int_eq(res.rc, WSH_OK);

    /* several Connection fields, each a list */
    ck_assert(wsh_http_header_has_token(&r, "Connection", "keep-alive"));
    ck_assert(wsh_http_header_has_token(&r, "Connection", "upgrade"));
    ck_assert(wsh_http_header_has_token(&r, "connection", "Close"));
    ck_assert(!wsh_http_header_has_token(&r, "Connection", "keep"));
    ck_assert(!wsh_http_header_has_token(&r, "Connection", "alive"));
    ck_assert(!wsh_http_header_has_token(&r, "Connection", "upgrades"));
    ck_assert(!r.keep_alive);           /* "close" wins */

    ck_assert(wsh_http_header_has_token(&r, "X-List", "alpha"));
    ck_assert(wsh_http_header_has_token(&r, "X-List", "BETA"));
    ck_assert(wsh_http_header_has_token(&r, "X-List", "gamma delta"));
    ck_assert(!wsh_http_header_has_token(&r, "X-List", "gamma"));

    /* tokens are whole list members, not substrings */
    ck_assert(!wsh_http_header_has_token(&r, "Upgrade", "websocket"));
    ck_assert(wsh_http_header_has_token(&r, "Upgrade", "H2C"));
    ck_assert(!wsh_http_header_has_token(&r, "Missing", "x"));
    wsh_http_request_free(&r);
}
END_TEST

START_TEST(test_accept)
{
    char accept[WSH_WS_ACCEPT_LEN + 1];

    memset(accept, 'x', sizeof(accept));
    wsh_handshake_accept(SAMPLE_KEY, strlen(SAMPLE_KEY), accept);
    ck_assert_str_eq(accept, SAMPLE_ACCEPT);

    /* a second key, computed with sha1sum and base64 */
    wsh_handshake_accept("x3JJHMbDL1EzLkh9GBhXDw==", 24, accept);
    ck_assert_str_eq(accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}
END_TEST

START_TEST(test_handshake_ok)
{
    char accept[WSH_WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    wsh_request_t r;
    result_t res;

    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, browser, sizeof(browser) - 1, &res);
    ck_assert_int_eq(res.rc, WSH_OK);
    memset(accept, 'x', sizeof(accept));
    ck_assert_int_eq(wsh_handshake_check(&r, accept, &why), WSH_OK);
    ck_assert_str_eq(accept, SAMPLE_ACCEPT);
    wsh_http_request_free(&r);
}
END_TEST

/* Build a handshake request from a request line and header lines (each
 * ending in CRLF) and return the handshake status. */
static int
handshake_status(const char *line, const char *headers)
{
    char text[2048], accept[WSH_WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    wsh_request_t r;
    result_t res;
    int rc;

    snprintf(text, sizeof(text), "%s\r\n%s\r\n", line, headers);
    wsh_http_request_init(&r, MAX_HEADER, MAX_FIELDS);
    parse_whole(&r, text, strlen(text), &res);
    ck_assert_msg(res.rc == WSH_OK, "HTTP parse: %d for\n%s", res.rc, text);
    rc = wsh_handshake_check(&r, accept, &why);
    if (rc == WSH_OK) {
        ck_assert_uint_eq(strlen(accept), WSH_WS_ACCEPT_LEN);
    } else {
        ck_assert_msg(why != NULL && *why != '\0', "no reason for %d", rc);
    }
    wsh_http_request_free(&r);
    return rc;
}

#define H_HOST    "Host: example.com\r\n"
#define H_UPGRADE "Upgrade: websocket\r\n"
#define H_CONN    "Connection: Upgrade\r\n"
#define H_VERSION "Sec-WebSocket-Version: 13\r\n"
#define H_KEY     "Sec-WebSocket-Key: " SAMPLE_KEY "\r\n"
#define H_ALL     H_HOST H_UPGRADE H_CONN H_VERSION H_KEY
#define GET       "GET /chat HTTP/1.1"

START_TEST(test_handshake_status)
{
    static const struct {
        const char *line;
        const char *headers;
        int         status;
    } t[] = {
        { GET, H_ALL, WSH_OK },
        { GET, H_HOST "upgrade: WebSocket\r\nconnection: keep-alive, "
          "upgrade\r\n" H_VERSION H_KEY, WSH_OK },
        { GET, H_HOST H_UPGRADE "Connection: keep-alive\r\n"
          "Connection: Upgrade\r\n" H_VERSION H_KEY, WSH_OK },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n", WSH_OK },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: ++++++++++++++++++++/w==\r\n", WSH_OK },
        /* method */
        { "POST /chat HTTP/1.1", H_ALL, 405 },
        { "HEAD /chat HTTP/1.1", H_ALL, 405 },
        { "get /chat HTTP/1.1", H_ALL, 405 },
        /* HTTP/1.0 */
        { "GET /chat HTTP/1.0", H_ALL, 400 },
        /* Upgrade */
        { GET, H_HOST H_CONN H_VERSION H_KEY, 426 },
        { GET, H_HOST "Upgrade: h2c\r\n" H_CONN H_VERSION H_KEY, 426 },
        { GET, H_HOST "Upgrade: websocket2\r\n" H_CONN H_VERSION H_KEY, 426 },
        { GET, H_HOST, 426 },
        /* Connection */
        { GET, H_HOST H_UPGRADE H_VERSION H_KEY, 400 },
        { GET, H_HOST H_UPGRADE "Connection: keep-alive\r\n" H_VERSION H_KEY,
          400 },
        { GET, H_HOST H_UPGRADE "Connection: upgraded\r\n" H_VERSION H_KEY,
          400 },
        /* version */
        { GET, H_HOST H_UPGRADE H_CONN H_KEY, 426 },
        { GET, H_HOST H_UPGRADE H_CONN "Sec-WebSocket-Version: 8\r\n" H_KEY,
          426 },
        { GET, H_HOST H_UPGRADE H_CONN "Sec-WebSocket-Version: 12\r\n" H_KEY,
          426 },
        { GET, H_HOST H_UPGRADE H_CONN "Sec-WebSocket-Version: 130\r\n"
          H_KEY, 426 },
        /* key */
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION, 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION "Sec-WebSocket-Key:\r\n",
          400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==dGhl\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZXM=\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2-jZQ==\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=A\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSB=b25jZQ==\r\n", 400 },
        { GET, H_HOST H_UPGRADE H_CONN H_VERSION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25j"
          "ZQ==\r\n", 400 },
        /* a body */
        { GET, H_ALL "Content-Length: 5\r\n", 400 },
    };
    size_t i;
    int rc;

    for (i = 0; i < wsh_nelems(t); i++) {
        rc = handshake_status(t[i].line, t[i].headers);
        ck_assert_msg(rc == t[i].status, "case %zu (%s):\n%s-> %d, "
                      "expected %d", i, t[i].line, t[i].headers, rc,
                      t[i].status);
    }
}
END_TEST

/* RFC 6455 section 11.3.1: Sec-WebSocket-Key must not appear more than
 * once, and a handshake that breaks the rules gets 400 (section 4.2.1). */
START_TEST(test_handshake_duplicate_key)
{
    ck_assert_int_eq(handshake_status(GET, H_ALL H_KEY), 400);
    ck_assert_int_eq(handshake_status(GET, H_ALL "Sec-WebSocket-Key: "
                                      "AAAAAAAAAAAAAAAAAAAAAA==\r\n"), 400);
}
END_TEST

/* Every status wshubd sends: the core (net/, ws/) and the modules. The
 * one list of them: test_handshake.py scans the sources for statuses
 * and fails when one is missing here. */
static const int http_sent[] = {
    101, 200, 202, 400, 401, 403, 404, 405, 408, 411, 413, 414, 426, 429,
    431, 500, 503, 504, 505,
};

/* The status codes RFC 9110 section 15 and RFC 6585 define, and their
 * reason phrases. */
static const struct {
    int         status;
    const char *text;
} http_registry[] = {
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

/* Every status the server sends has its reason phrase (202 went out as
 * "Unknown"), and so has every registered one. */
START_TEST(test_status_text)
{
    static const int unregistered[] = { -1, 0, 99, 102, 226, 299, 306,
                                        418, 451, 499, 599, 600, 1000 };
    const char *text;
    size_t i;

    for (i = 0; i < wsh_nelems(http_sent); i++) {
        text = wsh_http_status_text(http_sent[i]);
        ck_assert_msg(text != NULL && strcmp(text, "Unknown") != 0
                      && text[0] != '\0', "%d is sent with \"%s\"",
                      http_sent[i], text);
    }
    for (i = 0; i < wsh_nelems(http_registry); i++) {
        ck_assert_msg(strcmp(wsh_http_status_text(http_registry[i].status),
                             http_registry[i].text) == 0,
                      "%d: \"%s\", expected \"%s\"",
                      http_registry[i].status,
                      wsh_http_status_text(http_registry[i].status),
                      http_registry[i].text);
    }
    for (i = 0; i < wsh_nelems(unregistered); i++) {
        ck_assert_str_eq(wsh_http_status_text(unregistered[i]), "Unknown");
    }
}
END_TEST

static Suite *
http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *parse = tcase_create("parse");
    TCase *hs = tcase_create("handshake");

    tcase_add_test(parse, test_browser_request);
    tcase_add_test(parse, test_browser_request_pieces);
    tcase_add_test(parse, test_used_with_frame_after);
    tcase_add_test(parse, test_bare_lf);
    tcase_add_test(parse, test_leading_empty_lines);
    tcase_add_test(parse, test_junk_before_request_line);
    tcase_add_test(parse, test_duplicate_host);
    tcase_add_test(parse, test_request_line_too_long);
    tcase_add_test(parse, test_headers_too_large);
    tcase_add_test(parse, test_too_many_headers);
    tcase_add_test(parse, test_bad_requests);
    tcase_add_test(parse, test_versions);
    tcase_add_test(parse, test_body);
    tcase_add_test(parse, test_content_length);
    tcase_add_test(parse, test_header_values);
    tcase_add_test(parse, test_tokens);
    tcase_add_test(parse, test_status_text);
    suite_add_tcase(s, parse);

    tcase_add_test(hs, test_accept);
    tcase_add_test(hs, test_handshake_ok);
    tcase_add_test(hs, test_handshake_status);
    tcase_add_test(hs, test_handshake_duplicate_key);
    suite_add_tcase(s, hs);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
