/* client.c -- the client module: wshub.js, and a chat to try it, over HTTP.
 *
 * An endpoint of this module (by default /client) answers GET PATH?wshub.js
 * with clients/js/wshub.js, the browser client of wshub-protocol(7), and,
 * unless client.demo is off, GET PATH with the chat page of examples/chat
 * (whose script is PATH?chat.js). The files are compiled in, as the status
 * page is (make writes modules/client/client-files.c): nothing to install
 * beside the binary, and the library served is always the one of the
 * server that speaks to it. Each answer has a strong ETag (a hash of the
 * file, computed once per worker) and Cache-Control: a browser asks again
 * with If-None-Match and gets 304.
 */
#include "wshub.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

extern const char   wsh_client_wshub_js[];
extern const size_t wsh_client_wshub_js_len;
extern const char   wsh_client_index_html[];
extern const size_t wsh_client_index_html_len;
extern const char   wsh_client_chat_js[];
extern const size_t wsh_client_chat_js_len;

/* client: in wshub.yaml. */
typedef struct {
    int       demo;             /* serve the chat page */
    uint64_t  max_age;          /* ms: Cache-Control max-age; 0 no-cache */
} client_conf_t;

static const wsh_conf_field_t client_fields[] = {
    { WSH_CONF_FIELD(client_conf_t, demo, BOOL, "on", 0, 0) },
    { WSH_CONF_FIELD(client_conf_t, max_age, MSEC, "1h", 0,
                     365ULL * 24 * 3600 * 1000) },
    WSH_CONF_END
};

static const wsh_conf_section_t client_section = {
    "client", sizeof(client_conf_t), client_fields, NULL, NULL
};

typedef struct {
    const char   *name;         /* the query that asks for it; "": none */
    const char   *type;         /* Content-Type */
    const char   *data;
    const size_t *len;
    int           demo;         /* part of the chat page */
    char          etag[20];     /* "16 hex digits", once computed */
} client_file_t;

static client_file_t client_files[] = {
    { "wshub.js", "text/javascript; charset=utf-8", wsh_client_wshub_js,
      &wsh_client_wshub_js_len, 0, "" },
    { "", "text/html; charset=utf-8", wsh_client_index_html,
      &wsh_client_index_html_len, 1, "" },
    { "chat.js", "text/javascript; charset=utf-8", wsh_client_chat_js,
      &wsh_client_chat_js_len, 1, "" },
};

extern const wsh_module_t wsh_client_module;

/* The file the query Q (QLEN bytes, may be NULL) asks for: its first
 * '&'-separated part names it, so that "?wshub.js&v=2" may bust a cache.
 * NULL when there is none, or it is the demo's and the demo is off. */
static client_file_t *
client_file(const char *q, size_t qlen, int demo)
{
    const char *amp;
    client_file_t *f;
    size_t i, n;

    amp = q != NULL ? memchr(q, '&', qlen) : NULL;
    n = amp != NULL ? (size_t) (amp - q) : q != NULL ? qlen : 0;
    for (i = 0; i < sizeof(client_files) / sizeof(client_files[0]); i++) {
        f = &client_files[i];
        if (strlen(f->name) == n && memcmp(f->name, q != NULL ? q : "", n) == 0
            && (demo || !f->demo))
        {
            return f;
        }
    }
    return NULL;
}

/* A strong validator of F's bytes: FNV-1a, 64 bits, quoted. The files
 * change only with the binary, and a worker starts with its binary. */
static const char *
client_etag(client_file_t *f)
{
    if (f->etag[0] == '\0') {
        snprintf(f->etag, sizeof(f->etag), "\"%016" PRIx64 "\"",
                 wsh_fnv1a64(f->data, *f->len));
    }
    return f->etag;
}

/* Whether If-None-Match (RFC 9110 section 13.1.2) holds ETAG or "*":
 * a weak comparison, W/ ignored. */
static int
client_not_modified(const wsh_request_t *r, const char *etag)
{
    const char *v, *p;
    size_t len, elen = strlen(etag);

    v = wsh_request_header(r, "If-None-Match", &len);
    if (v == NULL) {
        return 0;
    }
    if (len == 1 && v[0] == '*') {
        return 1;
    }
    for (p = v; (size_t) (p - v) + elen <= len; p++) {
        if (memcmp(p, etag, elen) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
client_http(wsh_conn_t *c, const wsh_request_t *r)
{
    const client_conf_t *cf = wsh_module_conf(&wsh_client_module);
    client_file_t *f;
    const char *q, *etag;
    char headers[160];
    size_t qlen;

    if (!wsh_request_is_get(r)) {
        (void) wsh_http_respond_headers(c, 405, "Allow: GET, HEAD\r\n",
                                        "text/plain", "use GET\n", 8);
        return 0;
    }
    q = wsh_request_query(r, &qlen);
    f = client_file(q, qlen, cf->demo);
    if (f == NULL) {
        (void) wsh_http_respond(c, 404, "text/plain",
                                "not found: ask for ?wshub.js\n", 29);
        return 0;
    }
    etag = client_etag(f);
    if (cf->max_age >= 1000) {
        snprintf(headers, sizeof(headers), "ETag: %s\r\nCache-Control: "
                 "public, max-age=%" PRIu64 "\r\n"
                 "X-Content-Type-Options: nosniff\r\n", etag,
                 cf->max_age / 1000);
    } else {
        snprintf(headers, sizeof(headers), "ETag: %s\r\nCache-Control: "
                 "no-cache\r\nX-Content-Type-Options: nosniff\r\n", etag);
    }
    /* A 304 carries the 200's validators and length, never a body
     * (the core sends none). */
    (void) wsh_http_respond_headers(c, client_not_modified(r, etag) ? 304
                                    : 200, headers, f->type, f->data,
                                    *f->len);
    return 0;
}

static const wsh_default_endpoint_t client_default = { "/client", NULL, 0 };

const wsh_module_t wsh_client_module = {
    .name = "client",
    .api_version = WSHUB_API_VERSION,
    .default_endpoint = &client_default,
    .conf = &client_section,
    .handshake = wsh_http_only_handshake,
    .http = client_http,
};
