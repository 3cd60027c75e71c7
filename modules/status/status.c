/* status.c -- the status module: a live page for people.
 *
 * GET PATH answers a self-contained HTML page (modules/status/status.html,
 * compiled in: no CDN, nothing to install next to the binary) whose
 * script polls GET PATH?json every second and draws per-worker figures
 * and a rolling chart of messages per second. The JSON is built from
 * the same shared counters as /metrics, so every worker answers for all.
 * Not a default endpoint: configure it, with an allow list.
 */
/* Modules see wshub.h, not the build's config.h: POSIX is asked for
 * here (clock_gettime). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "wshub.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const char wsh_status_page[];

static void
status_worker_json(wsh_text_t *t, const wsh_stats_slot_t *w, bool first)
{
    wsh_text_printf(t, "%s{\"worker\":%" PRIu64 ",\"pid\":%" PRIu64
                    ",\"generation\":%" PRIu64 ",\"connections\":%" PRIu64
                    ",\"messages_in\":%" PRIu64 ",\"messages_out\":%" PRIu64
                    ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
                    ",\"rooms\":%" PRIu64 ",\"engine_up\":%s"
                    ",\"memory_rss\":%ld}",
                    first ? "" : ",", w->worker, w->pid, w->generation,
                    w->v[WSH_STAT_CONNECTIONS_ACTIVE],
                    w->v[WSH_STAT_MSG_IN_TEXT] + w->v[WSH_STAT_MSG_IN_BINARY],
                    w->v[WSH_STAT_MSG_OUT_TEXT]
                    + w->v[WSH_STAT_MSG_OUT_BINARY],
                    w->v[WSH_STAT_BYTES_IN], w->v[WSH_STAT_BYTES_OUT],
                    w->v[WSH_STAT_ROOMS],
                    w->v[WSH_STAT_ENGINE_UP] ? "true" : "false",
                    wsh_stats_rss(w->pid));
}

/* Totals are counters over every worker that ever ran (the page turns
 * them into rates), the per-worker figures those of the live ones. */
static int
status_json(wsh_text_t *t, const wsh_stats_snapshot_t *snap)
{
    const wsh_stats_slot_t *s = &snap->total;
    wsh_server_info_t info;
    struct timespec now;
    size_t i;

    wsh_server_info(&info);
    clock_gettime(CLOCK_MONOTONIC, &now);
    wsh_text_printf(t, "{\"version\":\"%s\",\"engine\":\"%s\","
                    "\"time\":%.6f,\"uptime\":%.3f,\"reloads\":%" PRIu64 ","
                    "\"totals\":{\"connections\":%" PRIu64
                    ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64
                    ",\"messages_in\":%" PRIu64 ",\"messages_out\":%" PRIu64
                    ",\"rooms\":%" PRIu64 "},\"workers\":[",
                    info.version, info.engine,
                    (double) now.tv_sec + now.tv_nsec / 1000 / 1e6,
                    (double) info.uptime_ms / 1000,
                    snap->reloads, s->v[WSH_STAT_CONNECTIONS_ACTIVE],
                    s->v[WSH_STAT_CONN_ACCEPTED], s->v[WSH_STAT_CONN_REJECTED],
                    s->v[WSH_STAT_MSG_IN_TEXT] + s->v[WSH_STAT_MSG_IN_BINARY],
                    s->v[WSH_STAT_MSG_OUT_TEXT]
                    + s->v[WSH_STAT_MSG_OUT_BINARY],
                    s->v[WSH_STAT_ROOMS]);
    for (i = 0; i < snap->nlive; i++) {
        status_worker_json(t, &snap->live[i], i == 0);
    }
    wsh_text_printf(t, "]}\n");
    return t->data != NULL ? 0 : -1;
}

static int
status_http(wsh_conn_t *c, const wsh_request_t *r)
{
    const wsh_stats_snapshot_t *snap;
    wsh_text_t t = { NULL, 0, 0 };
    size_t qlen;
    const char *q;

    if (!wsh_request_is_get(r)) {
        (void) wsh_http_respond(c, 405, "text/plain", "use GET\n", 8);
        return 0;
    }
    q = wsh_request_query(r, &qlen);
    if (q == NULL || qlen != 4 || memcmp(q, "json", 4) != 0) {
        (void) wsh_http_respond(c, 200, "text/html; charset=utf-8",
                                wsh_status_page, strlen(wsh_status_page));
        return 0;
    }
    snap = wsh_stats_snapshot();
    if (snap == NULL || status_json(&t, snap) != 0) {
        (void) wsh_http_respond(c, 500, "text/plain", "out of memory\n", 14);
    } else {
        (void) wsh_http_respond(c, 200, "application/json", t.data, t.len);
    }
    free(t.data);
    return 0;
}

const wsh_module_t wsh_status_module = {
    .name = "status",
    .api_version = WSHUB_API_VERSION,
    .handshake = wsh_http_only_handshake,
    .http = status_http,
};
