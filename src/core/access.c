/* access.c -- access log line formats (see access.h). */
#include "core/access.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    VAR_NONE = 0,
    VAR_TIME_LOCAL, VAR_TIME_ISO8601, VAR_MSEC,
    VAR_CLIENT, VAR_REMOTE_ADDR, VAR_REQUEST, VAR_METHOD, VAR_PATH,
    VAR_STATUS, VAR_DURATION, VAR_MESSAGES_IN, VAR_BYTES_IN,
    VAR_MESSAGES_OUT, VAR_BYTES_OUT, VAR_BODY_BYTES, VAR_CLOSE_CODE,
    VAR_WORKER, VAR_USER
};

static const char *const access_vars[] = {
    NULL, "time_local", "time_iso8601", "msec", "client", "remote_addr",
    "request", "method", "path", "status", "duration", "messages_in",
    "bytes_in", "messages_out", "bytes_out", "body_bytes", "close_code",
    "worker", "user"
};

/* "main": the lines wshub has always written. */
static const char access_main_ws[] =
    "$time_local $client \"$request\" $status ${duration}s "
    "in=$messages_in/$bytes_in out=$messages_out/$bytes_out "
    "close=$close_code worker=$worker";
static const char access_main_http[] =
    "$time_local $client \"$request\" $status $body_bytes worker=$worker";

static wsh_access_format_t access_main[2];

typedef struct {
    char   *p;
    size_t  left;
} access_buf_t;

static void
access_put(access_buf_t *b, const char *s, size_t len)
{
    if (len > b->left) {
        len = b->left;
    }
    if (len == 0) {
        return;         /* S may be NULL then */
    }
    memcpy(b->p, s, len);
    b->p += len;
    b->left -= len;
}

static void
access_printf(access_buf_t *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) {
        access_put(b, tmp, (size_t) n < sizeof(tmp) ? (size_t) n
                                                    : sizeof(tmp) - 1);
    }
}

/* A JSON string: quotes, backslashes and control characters escaped;
 * bytes above 0x7f too, so a line is valid JSON whatever a client sent. */
static void
access_json_string(access_buf_t *b, const char *s, size_t len)
{
    size_t i;

    access_put(b, "\"", 1);
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) s[i];

        if (ch == '"' || ch == '\\') {
            access_put(b, "\\", 1);
            access_put(b, s + i, 1);
        } else if (ch < 0x20 || ch > 0x7e) {
            access_printf(b, "\\u%04x", ch);
        } else {
            access_put(b, s + i, 1);
        }
    }
    access_put(b, "\"", 1);
}

static size_t
access_addr_len(const char *client)
{
    const char *colon = strrchr(client, ':');

    return colon ? (size_t) (colon - client) : strlen(client);
}

static void
access_time(access_buf_t *b, int var)
{
    struct timespec ts;
    struct tm tm;
    char tmp[40];
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (var == VAR_MSEC) {
        access_printf(b, "%lld.%03ld", (long long) ts.tv_sec,
                      ts.tv_nsec / 1000000);
        return;
    }
    if (var == VAR_TIME_LOCAL) {
        localtime_r(&ts.tv_sec, &tm);
        n = strftime(tmp, sizeof(tmp), "%Y/%m/%d %H:%M:%S", &tm);
    } else {
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t) snprintf(tmp + n, sizeof(tmp) - n, ".%03ldZ",
                               ts.tv_nsec / 1000000);
    }
    access_put(b, tmp, n);
}

/* One variable; "-" where it does not apply to this kind of line. */
static void
access_var(access_buf_t *b, int var, const wsh_access_t *a)
{
    bool ws = a->websocket;

    switch (var) {
    case VAR_TIME_LOCAL: case VAR_TIME_ISO8601: case VAR_MSEC:
        access_time(b, var);
        break;
    case VAR_CLIENT:
        access_put(b, a->client, strlen(a->client));
        break;
    case VAR_REMOTE_ADDR:
        access_put(b, a->client, access_addr_len(a->client));
        break;
    case VAR_REQUEST:
        access_put(b, a->method, a->method_len);
        access_put(b, " ", 1);
        access_put(b, a->target, a->target_len);
        break;
    case VAR_METHOD:
        access_put(b, a->method, a->method_len);
        break;
    case VAR_PATH:
        access_put(b, a->target, a->target_len);
        break;
    case VAR_STATUS:
        access_printf(b, "%d", a->status);
        break;
    case VAR_DURATION:
        access_printf(b, "%" PRIu64 ".%03" PRIu64, a->duration / 1000,
                      a->duration % 1000);
        break;
    case VAR_MESSAGES_IN: case VAR_BYTES_IN: case VAR_MESSAGES_OUT:
    case VAR_BYTES_OUT: case VAR_CLOSE_CODE:
        if (!ws) {
            access_put(b, "-", 1);
        } else {
            access_printf(b, "%" PRIu64,
                          var == VAR_MESSAGES_IN ? a->messages_in
                          : var == VAR_BYTES_IN ? a->bytes_in
                          : var == VAR_MESSAGES_OUT ? a->messages_out
                          : var == VAR_BYTES_OUT ? a->bytes_out
                          : (uint64_t) a->close_code);
        }
        break;
    case VAR_BODY_BYTES:
        if (ws) {
            access_put(b, "-", 1);
        } else {
            access_printf(b, "%zu", a->body_bytes);
        }
        break;
    case VAR_WORKER:
        access_printf(b, "%d", a->worker);
        break;
    case VAR_USER:
        if (a->user != NULL) {
            access_put(b, a->user, a->user_len);
        } else {
            access_put(b, "-", 1);
        }
        break;
    }
}

static void
access_json(access_buf_t *b, const wsh_access_t *a)
{
    access_put(b, "{\"time\":\"", 9);
    access_time(b, VAR_TIME_ISO8601);
    access_put(b, "\",\"client\":", 11);
    access_json_string(b, a->client, strlen(a->client));
    access_put(b, ",\"method\":", 10);
    access_json_string(b, a->method, a->method_len);
    access_put(b, ",\"path\":", 8);
    access_json_string(b, a->target, a->target_len);
    access_printf(b, ",\"status\":%d,\"websocket\":%s,\"worker\":%d",
                  a->status, a->websocket ? "true" : "false", a->worker);
    if (a->websocket) {
        access_printf(b, ",\"duration\":%" PRIu64 ".%03" PRIu64,
                      a->duration / 1000, a->duration % 1000);
        access_printf(b, ",\"messages_in\":%" PRIu64, a->messages_in);
        access_printf(b, ",\"bytes_in\":%" PRIu64, a->bytes_in);
        access_printf(b, ",\"messages_out\":%" PRIu64, a->messages_out);
        access_printf(b, ",\"bytes_out\":%" PRIu64, a->bytes_out);
        access_printf(b, ",\"close_code\":%d", a->close_code);
    } else {
        access_printf(b, ",\"body_bytes\":%zu", a->body_bytes);
    }
    if (a->user != NULL) {
        access_put(b, ",\"user\":", 8);
        access_json_string(b, a->user, a->user_len);
    }
    access_put(b, "}", 1);
}

static int
access_compile_template(const char *text, wsh_access_format_t *f, char *err,
    size_t errlen)
{
    const char *p = text, *start, *name;
    size_t n = 0, len, v;
    bool brace;

    f->parts = calloc(strlen(text) + 1, sizeof(*f->parts));
    if (f->parts == NULL) {
        snprintf(err, errlen, "out of memory");
        return WSH_ERROR;
    }
    while (*p != '\0') {
        start = p;
        while (*p != '\0' && *p != '$') {
            p++;
        }
        if (p > start) {
            f->parts[n].text = start;
            f->parts[n++].len = (uint16_t) (p - start);
        }
        if (*p == '\0') {
            break;
        }
        brace = p[1] == '{';
        name = p + 1 + brace;
        for (len = 0; (name[len] >= 'a' && name[len] <= 'z')
                      || name[len] == '_' || (name[len] >= '0'
                                              && name[len] <= '9'); len++)
        {
        }
        for (v = 1; v < wsh_nelems(access_vars); v++) {
            if (strlen(access_vars[v]) == len
                && memcmp(access_vars[v], name, len) == 0)
            {
                break;
            }
        }
        if (v == wsh_nelems(access_vars) || (brace && name[len] != '}')) {
            snprintf(err, errlen, "unknown variable \"$%.*s\" at offset "
                     "%zu (known: $time_local, $time_iso8601, $msec, "
                     "$client, $remote_addr, $request, $method, $path, "
                     "$status, $duration, $messages_in, $bytes_in, "
                     "$messages_out, $bytes_out, $body_bytes, $close_code, "
                     "$worker, $user; write ${name} before a letter)",
                     (int) (len + brace), name - brace, (size_t) (p - text));
            return WSH_ERROR;
        }
        f->parts[n++].var = (uint8_t) v;
        p = name + len + brace;
    }
    f->nparts = n;
    return WSH_OK;
}

int
wsh_access_format_compile(const char *text, wsh_access_format_t *f,
    char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    if (text == NULL || strcmp(text, "main") == 0) {
        f->kind = WSH_ACCESS_MAIN;
        return WSH_OK;
    }
    if (strcmp(text, "json") == 0) {
        f->kind = WSH_ACCESS_JSON;
        return WSH_OK;
    }
    if (strlen(text) > 1024) {
        snprintf(err, errlen, "a template is at most 1024 bytes");
        return WSH_ERROR;
    }
    if (strchr(text, '$') == NULL) {
        snprintf(err, errlen, "\"%s\" is not main, json or a template with "
                 "$variables", text);
        return WSH_ERROR;
    }
    f->kind = WSH_ACCESS_TEMPLATE;
    f->text = strdup(text);
    if (f->text == NULL) {
        snprintf(err, errlen, "out of memory");
        return WSH_ERROR;
    }
    if (access_compile_template(f->text, f, err, errlen) != WSH_OK) {
        wsh_access_format_free(f);
        return WSH_ERROR;
    }
    return WSH_OK;
}

void
wsh_access_format_free(wsh_access_format_t *f)
{
    free(f->parts);
    free(f->text);
    memset(f, 0, sizeof(*f));
}

size_t
wsh_access_format(const wsh_access_format_t *f, const wsh_access_t *a,
    char *buf, size_t size)
{
    access_buf_t b = { buf, size };
    char err[8];
    size_t i;

    if (f->kind == WSH_ACCESS_JSON) {
        access_json(&b, a);
        return size - b.left;
    }
    if (f->kind == WSH_ACCESS_MAIN) {
        if (access_main[a->websocket].parts == NULL) {
            /* Built-in templates: they compile. */
            (void) access_compile_template(a->websocket ? access_main_ws
                                                        : access_main_http,
                                           &access_main[a->websocket], err,
                                           sizeof(err));
        }
        f = &access_main[a->websocket];
    }
    for (i = 0; i < f->nparts; i++) {
        if (f->parts[i].var == VAR_NONE) {
            access_put(&b, f->parts[i].text, f->parts[i].len);
        } else {
            access_var(&b, f->parts[i].var, a);
        }
    }
    return size - b.left;
}
