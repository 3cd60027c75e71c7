/* conn_admit.c -- the admission of a request: an ordered list of checks.
 *
 * A complete request head goes through conn_checks[] in order. Each check
 * lets the request go on (WSH_OK), or answers it itself and stops the
 * walk (WSH_DECLINED): a refusal with its status and reason, or a plain
 * HTTP request handed to its module. A request that passes them all is
 * upgraded to a WebSocket. Adding a check is adding a row.
 *
 * The order is part of the behaviour: what an address may not see (no
 * such endpoint, not on this listener, not in the allow list) is said
 * before anything about the request; cheap refusals come before the
 * authentication module; the shared limits are last, because admitting
 * takes an entry of theirs that only the 101 may keep.
 */
#include "net/conn.h"
#include "net/conn_int.h"
#include "core/log.h"
#include "net/limit.h"
#include "core/runtime.h"
#include "net/handshake.h"

#include <stdio.h>
#include <stdlib.h>

/* What the checks of one request share. */
typedef struct {
    wsh_request_t *r;
    char           accept[WSH_WS_ACCEPT_LEN + 1]; /* for the 101 */
} conn_admit_t;

typedef int (*conn_check_pt)(wsh_conn_t *c, conn_admit_t *a);

static int
conn_check_endpoint(wsh_conn_t *c, conn_admit_t *a)
{
    c->endpoint = wsh_conf_endpoint(wsh_worker.conf, a->r->target,
                                    a->r->path_len);
    if (c->endpoint == NULL) {
        wsh_conn_http_error(c, 404, "no endpoint at this path");
        return WSH_DECLINED;
    }
    return WSH_OK;
}

static int
conn_check_listener(wsh_conn_t *c, conn_admit_t *a)
{
    if (c->endpoint->listeners != 0
        && !(c->endpoint->listeners & ((uint64_t) 1 << c->listener)))
    {
        /* Served on other listeners only (a metrics port, say): here it
         * does not exist. */
        wsh_conn_http_error(c, 404, "no endpoint at this path");
        return WSH_DECLINED;
    }
    return WSH_OK;
}

static int
conn_check_allow(wsh_conn_t *c, conn_admit_t *a)
{
    if (!wsh_conf_allowed(c->endpoint, &c->peer.sa)) {
        wsh_conn_log(WSH_LOG_WARN, c, "address not in the allow list of %s",
                     c->endpoint->path);
        wsh_conn_http_error(c, 403, "your address may not use this endpoint");
        return WSH_DECLINED;
    }
    return WSH_OK;
}

/* Not a check but a fork: a request without Upgrade to a module that
 * serves plain HTTP is the module's from here (conn_http.c). */
static int
conn_check_http(wsh_conn_t *c, conn_admit_t *a)
{
    if (wsh_http_header_has_token(a->r, "Upgrade", "websocket")
        || c->endpoint->module->http == NULL)
    {
        return WSH_OK;
    }
    wsh_conn_http_serve(c);
    return WSH_DECLINED;
}

/* RFC 6455 section 4.2.1: a valid opening handshake, and its accept. */
static int
conn_check_handshake(wsh_conn_t *c, conn_admit_t *a)
{
    const char *why;
    int status;

    status = wsh_handshake_check(a->r, a->accept, &why);
    if (status != WSH_OK) {
        wsh_conn_http_error(c, status, why);
        return WSH_DECLINED;
    }
    return WSH_OK;
}

static int
conn_check_origin(wsh_conn_t *c, conn_admit_t *a)
{
    const wsh_http_header_t *h = wsh_http_header(a->r, "Origin");

    if (h != NULL
        && !wsh_conf_origin_allowed(wsh_worker.conf, h->value, h->value_len))
    {
        /* Cross-site WebSocket hijacking: a browser on another site
         * would carry the user's cookies here. */
        wsh_conn_log(WSH_LOG_WARN, c, "origin \"%.*s\" not in allowed_origins",
                     (int) (h->value_len > 200 ? 200 : h->value_len), h->value);
        wsh_conn_http_error(c, 403, "origin not allowed");
        return WSH_DECLINED;
    }
    return WSH_OK;
}

/* A reload's drain still upgrades (wsh_conn_upgrade closes at once,
 * politely); a stop refuses. */
static int
conn_check_drain(wsh_conn_t *c, conn_admit_t *a)
{
    if (wsh_worker.draining && wsh_worker.drain_code != WSH_CLOSE_RESTART) {
        wsh_conn_http_error(c, 503, "the server is shutting down");
        return WSH_DECLINED;
    }
    return WSH_OK;
}

static int
conn_check_max_connections(wsh_conn_t *c, conn_admit_t *a)
{
    if (wsh_worker.nwebsockets >= wsh_worker.conf->max_connections) {
        wsh_conn_log(WSH_LOG_WARN, c, "max_connections (%u) reached",
                     wsh_worker.conf->max_connections);
        wsh_conn_http_error(c, 503, "too many connections");
        return WSH_DECLINED;
    }
    return WSH_OK;
}

/* The endpoint's auth module, before its own module, so that the
 * module sees only verified clients (wsh_conn_user()). */
static int
conn_check_auth(wsh_conn_t *c, conn_admit_t *a)
{
    int status;

    /* An earlier request on this keep-alive connection proves nothing
     * for this one. */
    free(c->identity);
    c->identity = NULL;
    if (c->endpoint->auth != NULL) {
        status = c->endpoint->auth->handshake(c, a->r);
        if (status != 0) {
            wsh_conn_http_error(c, status, "authentication failed");
            return WSH_DECLINED;
        }
    }
    return WSH_OK;
}

static int
conn_check_module(wsh_conn_t *c, conn_admit_t *a)
{
    const wsh_module_t *m = c->endpoint->module;
    int status;

    if (m->handshake != NULL) {
        status = m->handshake(c, a->r);
        if (status != 0) {
            wsh_conn_http_error(c, status, "refused by the endpoint");
            return WSH_DECLINED;
        }
    }
    return WSH_OK;
}

/* The shared limits (net/limit.c): a refusal is 429 (per-IP) or 503
 * (total) with Retry-After, logged with the address at most once a
 * second. Admitted, C holds a limit entry until it is freed. */
static int
conn_check_limits(wsh_conn_t *c, conn_admit_t *a)
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
            wsh_conn_log(WSH_LOG_WARN, c, "%s: admitted untracked", why);
        }
        return WSH_OK;
    }
    if (wsh_limit_log_ok(&skipped)) {
        wsh_conn_log(WSH_LOG_INFO, c, "refused: %s (%u refusals before "
                     "this one not logged)", why, skipped);
    }
    snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", retry);
    wsh_conn_http_answer(c, status, extra, why);
    return WSH_DECLINED;
}

/* In order: the first that does not return WSH_OK ends the walk. */
static const conn_check_pt conn_checks[] = {
    conn_check_endpoint,            /* 404 */
    conn_check_listener,            /* 404 */
    conn_check_allow,               /* 403 */
    conn_check_http,                /* plain HTTP: the module's */
    conn_check_handshake,           /* 400, 405, 426, ... */
    conn_check_origin,              /* 403 */
    conn_check_drain,               /* 503 */
    conn_check_max_connections,     /* 503 */
    conn_check_auth,                /* the auth module's status */
    conn_check_module,              /* the module's status */
    conn_check_limits               /* 429, 503 */
};

void
wsh_conn_admit(wsh_conn_t *c)
{
    conn_admit_t a;
    size_t i;

    a.r = c->req;
    for (i = 0; i < wsh_nelems(conn_checks); i++) {
        if (conn_checks[i](c, &a) != WSH_OK) {
            return;
        }
    }
    wsh_conn_upgrade(c, a.accept);
}
