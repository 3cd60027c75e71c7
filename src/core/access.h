/* access.h -- the access log's line format (access_log_format).
 *
 * One line per HTTP answer and one per closed WebSocket. The format is
 * "main" (the default: what wshub always wrote), "json" (one object per
 * line, for log shippers) or a template of literal text and $variables
 * (nginx style, ${name} where a letter follows), compiled once at
 * config load so a typo is a config error with its line and column.
 */
#ifndef WSH_ACCESS_H
#define WSH_ACCESS_H

#include "core/core.h"

enum {
    WSH_ACCESS_MAIN = 0,
    WSH_ACCESS_JSON,
    WSH_ACCESS_TEMPLATE
};

/* A compiled template: literal runs and variables, in order. */
typedef struct {
    uint8_t     var;            /* 0: literal TEXT */
    uint16_t    len;
    const char *text;           /* into the format string */
} wsh_access_part_t;

typedef struct {
    int                kind;
    char              *text;    /* the template, owned */
    wsh_access_part_t *parts;
    size_t             nparts;
} wsh_access_format_t;

/* What one line can say. Strings need not be NUL-terminated. */
typedef struct {
    const char *client;         /* "ip:port" */
    const char *method;
    size_t      method_len;
    const char *target;         /* without a query that may hold secrets */
    size_t      target_len;
    int         status;
    bool        websocket;      /* a closed WebSocket, else an HTTP answer */
    wsh_msec_t  duration;
    uint64_t    messages_in, bytes_in, messages_out, bytes_out;
    size_t      body_bytes;     /* HTTP answers */
    int         close_code;     /* WebSockets */
    int         worker;
    const char *user;           /* verified id (auth), or NULL */
    size_t      user_len;
} wsh_access_t;

/* Compile TEXT ("main", "json" or a template). WSH_ERROR with a message
 * in ERR (naming the bad variable and its offset) when it is not one. */
int  wsh_access_format_compile(const char *text, wsh_access_format_t *f,
    char *err, size_t errlen);
void wsh_access_format_free(wsh_access_format_t *f);

/* Format A by F into BUF; returns the length (cut to fit). */
size_t wsh_access_format(const wsh_access_format_t *f, const wsh_access_t *a,
    char *buf, size_t size);

#endif /* WSH_ACCESS_H */
