/* metrics.c -- the metrics module: GET /metrics in Prometheus's text
 * exposition format (version 0.0.4).
 *
 * Any worker can answer: it sums the shared counter slots of every
 * worker (wsh_stats_snapshot), so a scrape sees the whole server whichever
 * worker the kernel hands it to, and counters of workers that exited
 * (reloads, crashes) stay in the totals.
 */
#include "wshub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define metrics_nelems(a) (sizeof(a) / sizeof((a)[0]))

/* Label values: backslash, double quote and newline escaped. */
static void
metrics_label(wsh_text_t *t, const char *s)
{
    for ( ; *s != '\0'; s++) {
        switch (*s) {
        case '\\': wsh_text_printf(t, "\\\\"); break;
        case '"':  wsh_text_printf(t, "\\\""); break;
        case '\n': wsh_text_printf(t, "\\n"); break;
        default:   wsh_text_printf(t, "%c", *s); break;
        }
    }
}

static void
metrics_family(wsh_text_t *t, const char *name, const char *type,
    const char *help)
{
    wsh_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_value(wsh_text_t *t, const char *name, const char *labels,
    uint64_t v)
{
    wsh_text_printf(t, "%s%s%s%s %" PRIu64 "\n", name, labels ? "{" : "",
                    labels ? labels : "", labels ? "}" : "", v);
}

static void
metrics_histogram(wsh_text_t *t, const wsh_stats_slot_t *s, int h,
    const char **last_family)
{
    const wsh_hist_info_t *info = wsh_stats_hist_info(h);
    const wsh_hist_t *hist = &s->hist[h];
    const char *sep = info->label ? "," : "";
    const char *lb = info->label ? info->label : "";
    uint64_t cum = 0;
    size_t i;

    if (*last_family == NULL || strcmp(*last_family, info->name) != 0) {
        metrics_family(t, info->name, "histogram", info->help);
        *last_family = info->name;
    }
    for (i = 0; i < info->nbounds; i++) {
        cum += hist->bucket[i];
        wsh_text_printf(t, "%s_bucket{%s%sle=\"%.9g\"} %" PRIu64 "\n",
                        info->name, lb, sep,
                        (double) info->bounds[i] / info->scale, cum);
    }
    cum += hist->bucket[info->nbounds];
    wsh_text_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n",
                    info->name, lb, sep, cum);
    if (info->scale == 1) {
        wsh_text_printf(t, "%s_sum%s%s%s %" PRIu64 "\n", info->name,
                        *lb ? "{" : "", lb, *lb ? "}" : "", hist->sum);
    } else {
        wsh_text_printf(t, "%s_sum%s%s%s %.6f\n", info->name,
                        *lb ? "{" : "", lb, *lb ? "}" : "",
                        (double) hist->sum / info->scale);
    }
    wsh_text_printf(t, "%s_count%s%s%s %" PRIu64 "\n", info->name,
                    *lb ? "{" : "", lb, *lb ? "}" : "", cum);
}

/* The plain counters: one row per sample, families in order. */
static const struct {
    const char *name, *help, *labels;
    int         stat;
} metrics_counter_rows[] = {
    { "websocket_connections_total",
      "WebSocket handshakes, accepted or rejected.",
      "status=\"accepted\"", WSH_STAT_CONN_ACCEPTED },
    { "websocket_connections_total", NULL,
      "status=\"rejected\"", WSH_STAT_CONN_REJECTED },
    { "websocket_messages_total",
      "WebSocket messages received and sent (each delivery).",
      "direction=\"in\",type=\"text\"", WSH_STAT_MSG_IN_TEXT },
    { "websocket_messages_total", NULL,
      "direction=\"in\",type=\"binary\"", WSH_STAT_MSG_IN_BINARY },
    { "websocket_messages_total", NULL,
      "direction=\"out\",type=\"text\"", WSH_STAT_MSG_OUT_TEXT },
    { "websocket_messages_total", NULL,
      "direction=\"out\",type=\"binary\"", WSH_STAT_MSG_OUT_BINARY },
    { "websocket_message_bytes_total",
      "Payload bytes of WebSocket messages.",
      "direction=\"in\"", WSH_STAT_BYTES_IN },
    { "websocket_message_bytes_total", NULL,
      "direction=\"out\"", WSH_STAT_BYTES_OUT },
    { "wshub_engine_publish_total",
      "Messages handed to the engine for other workers and hosts.", NULL,
      WSH_STAT_ENGINE_PUBLISH },
    { "wshub_engine_reconnects_total",
      "Connections to the engine's backend (Redis) re-established.", NULL,
      WSH_STAT_ENGINE_RECONNECTS },
    { "wshub_slow_consumer_drops_total",
      "Messages dropped because a client's output was over send_buffer.",
      NULL, WSH_STAT_SLOW_CONSUMER_DROPS },
    { "wshub_rate_limited_total",
      "Client messages over rate_limit (dropped or closing).", NULL,
      WSH_STAT_RATE_LIMITED },
    { "wshub_room_resets_total",
      "Members of rooms with history told to rejoin with since: their "
      "messages had a hole, or the history was lost.", NULL,
      WSH_STAT_ROOM_RESETS },
    { "wshub_refused_total",
      "Connections refused or closed when accepted: an address over "
      "limits.per_ip_pending, the oldest handshake of the heaviest "
      "address closed to make room, no socket left.",
      "reason=\"per_ip_pending\"", WSH_STAT_REFUSED_PENDING },
    { "wshub_refused_total", NULL, "reason=\"evicted\"",
      WSH_STAT_REFUSED_EVICTED },
    { "wshub_refused_total", NULL, "reason=\"sockets\"",
      WSH_STAT_REFUSED_SOCKETS },
    { "wshub_relay_dropped_total",
      "Engine frames the master dropped for a worker that stopped reading "
      "its channel: deliveries (their members of rooms with history get "
      "room_reset), join and leave events (shed first), other.",
      "kind=\"message\"", WSH_STAT_RELAY_DROPPED_MESSAGE },
    { "wshub_relay_dropped_total", NULL, "kind=\"presence\"",
      WSH_STAT_RELAY_DROPPED_PRESENCE },
    { "wshub_relay_dropped_total", NULL, "kind=\"other\"",
      WSH_STAT_RELAY_DROPPED_OTHER },
};

static void
metrics_counters(wsh_text_t *t, const wsh_stats_slot_t *s)
{
    const wsh_err_info_t *e;
    char labels[128];
    size_t i;

    for (i = 0; i < metrics_nelems(metrics_counter_rows); i++) {
        if (metrics_counter_rows[i].help != NULL) {
            metrics_family(t, metrics_counter_rows[i].name, "counter",
                           metrics_counter_rows[i].help);
        }
        metrics_value(t, metrics_counter_rows[i].name,
                      metrics_counter_rows[i].labels,
                      s->v[metrics_counter_rows[i].stat]);
    }
    metrics_family(t, "websocket_errors_total", "counter",
                   "Errors answered or closed on, by component and type.");
    for (i = 0; i < WSH_ERR_N; i++) {
        e = wsh_stats_err_info((int) i);
        snprintf(labels, sizeof(labels), "component=\"%s\",error_type=\"%s\"",
                 e->component, e->type);
        metrics_value(t, "websocket_errors_total", labels,
                      s->v[WSH_STAT_ERRORS + i]);
    }
}

static void
metrics_workers(wsh_text_t *t, const wsh_stats_snapshot_t *snap)
{
    const wsh_stats_slot_t *w;
    uint64_t gens[WSH_STATS_SLOTS];
    size_t i, j, ngens = 0, n;

    metrics_family(t, "wshub_workers", "gauge",
                   "Worker processes alive, by configuration generation "
                   "(old ones are draining after a reload).");
    for (i = 0; i < snap->nlive; i++) {
        for (j = 0; j < ngens && gens[j] != snap->live[i].generation; j++) {
        }
        if (j == ngens) {
            gens[ngens++] = snap->live[i].generation;
        }
    }
    for (j = 0; j < ngens; j++) {
        for (i = 0, n = 0; i < snap->nlive; i++) {
            n += snap->live[i].generation == gens[j];
        }
        wsh_text_printf(t, "wshub_workers{generation=\"%" PRIu64 "\"} %zu\n",
                        gens[j], n);
    }
    metrics_family(t, "wshub_reloads_total", "counter",
                   "Configuration reloads done (SIGHUP) since the master "
                   "started.");
    metrics_value(t, "wshub_reloads_total", NULL, snap->reloads);

    metrics_family(t, "wshub_worker_resident_memory_bytes", "gauge",
                   "Resident memory of each worker process.");
    for (i = 0; i < snap->nlive; i++) {
        w = &snap->live[i];
        wsh_text_printf(t, "wshub_worker_resident_memory_bytes{worker=\"%"
                        PRIu64 "\",pid=\"%" PRIu64 "\"} %ld\n", w->worker,
                        w->pid, wsh_stats_rss(w->pid));
    }
    metrics_family(t, "wshub_worker_connections", "gauge",
                   "Open WebSocket connections of each worker process.");
    for (i = 0; i < snap->nlive; i++) {
        w = &snap->live[i];
        wsh_text_printf(t, "wshub_worker_connections{worker=\"%" PRIu64
                        "\",pid=\"%" PRIu64 "\"} %" PRIu64 "\n", w->worker,
                        w->pid, w->v[WSH_STAT_CONNECTIONS_ACTIVE]);
    }
}

/* wshub_rooms{size_le}: the rooms now of at most size_le members, as
 * cumulative as a histogram's le so that one series answers "how many
 * rooms over N", but a gauge: a room that shrinks moves down a class. */
static void
metrics_room_sizes(wsh_text_t *t, const wsh_stats_slot_t *s)
{
    const uint64_t *bounds = wsh_stats_room_bounds();
    uint64_t cum = 0;
    size_t i;

    metrics_family(t, "wshub_rooms", "gauge",
                   "Rooms with members now, of at most size_le members "
                   "(counted once per worker holding members).");
    for (i = 0; i < WSH_ROOM_SIZES - 1; i++) {
        cum += s->v[WSH_STAT_ROOM_SIZES + i];
        wsh_text_printf(t, "wshub_rooms{size_le=\"%" PRIu64 "\"} %" PRIu64
                        "\n", bounds[i], cum);
    }
    cum += s->v[WSH_STAT_ROOM_SIZES + i];
    wsh_text_printf(t, "wshub_rooms{size_le=\"+Inf\"} %" PRIu64 "\n", cum);
}

/* The Redis engine's servers, by shard (the index in
 * engine.redis.shards, 0 for the one server): the gauges over the live
 * workers, the counters over all that ever ran. */
static void
metrics_shards(wsh_text_t *t, const wsh_stats_snapshot_t *snap,
    const wsh_server_info_t *info)
{
    static const struct {
        const char *name, *type, *help;
        int         stat;
    } rows[] = {
        { "wshub_redis_up", "gauge", "1 when every worker has both its "
          "connections to the shard up.", WSH_SHARD_STAT_UP },
        { "wshub_redis_breaker_open", "gauge", "Workers whose circuit "
          "breaker for the shard is open or half-open.",
          WSH_SHARD_STAT_BREAKER_OPEN },
        { "wshub_redis_reconnects_total", "counter", "Connections to the "
          "shard re-established.", WSH_SHARD_STAT_RECONNECTS },
        { "wshub_redis_publishes_total", "counter", "Publishes sent to the "
          "shard (PUBLISH and the publish scripts).",
          WSH_SHARD_STAT_PUBLISHES },
        { "wshub_redis_commands_total", "counter", "Commands sent to the "
          "shard, publishes included.", WSH_SHARD_STAT_COMMANDS },
    };
    size_t n = info->engine_nshards, i, r, w;
    uint64_t v;

    if (n > WSH_STATS_SHARDS) {
        n = WSH_STATS_SHARDS;
    }
    if (n == 0) {
        return;
    }
    metrics_family(t, "wshub_redis_shard_info", "gauge",
                   "The Redis server of each shard, as the answering "
                   "worker uses it.");
    for (i = 0; i < n; i++) {
        wsh_text_printf(t, "wshub_redis_shard_info{shard=\"%zu\","
                        "address=\"", i);
        metrics_label(t, info->engine_shards[i].address
                         ? info->engine_shards[i].address : "");
        wsh_text_printf(t, "\"} 1\n");
    }
    for (r = 0; r < metrics_nelems(rows); r++) {
        metrics_family(t, rows[r].name, rows[r].type, rows[r].help);
        for (i = 0; i < n; i++) {
            if (rows[r].stat == WSH_SHARD_STAT_UP) {
                v = snap->nlive > 0;
                for (w = 0; w < snap->nlive; w++) {
                    v &= snap->live[w].shard[i][WSH_SHARD_STAT_UP] != 0;
                }
            } else {
                v = snap->total.shard[i][rows[r].stat];
            }
            wsh_text_printf(t, "%s{shard=\"%zu\"} %" PRIu64 "\n",
                            rows[r].name, i, v);
        }
    }
}

static int
metrics_render(wsh_text_t *t, const wsh_stats_snapshot_t *snap)
{
    const wsh_stats_slot_t *s = &snap->total;
    const char *family = NULL;
    uint64_t up = snap->nlive > 0;
    wsh_server_info_t info;
    size_t i;
    int h;

    wsh_server_info(&info);
    for (i = 0; i < snap->nlive; i++) {
        up &= snap->live[i].v[WSH_STAT_ENGINE_UP] != 0;
    }
    metrics_family(t, "wshub_build_info", "gauge",
                   "The running wshub version.");
    wsh_text_printf(t, "wshub_build_info{version=\"");
    metrics_label(t, info.version);
    wsh_text_printf(t, "\"} 1\n");

    metrics_family(t, "websocket_active_connections", "gauge",
                   "Open WebSocket connections, all workers.");
    metrics_value(t, "websocket_active_connections", NULL,
                  s->v[WSH_STAT_CONNECTIONS_ACTIVE]);
    metrics_family(t, "websocket_rooms_total", "gauge",
                   "Rooms with members, counted once per worker holding "
                   "members.");
    metrics_value(t, "websocket_rooms_total", NULL, s->v[WSH_STAT_ROOMS]);
    metrics_room_sizes(t, s);
    metrics_family(t, "wshub_engine_up", "gauge",
                   "1 when every worker's engine is connected.");
    wsh_text_printf(t, "wshub_engine_up{engine=\"");
    metrics_label(t, wsh_engine_name());
    wsh_text_printf(t, "\"} %" PRIu64 "\n", up);
    metrics_shards(t, snap, &info);

    metrics_counters(t, s);
    for (h = 0; h < WSH_HIST_N; h++) {
        metrics_histogram(t, s, h, &family);
    }
    metrics_workers(t, snap);
    return t->data != NULL ? 0 : -1;
}

static int
metrics_http(wsh_conn_t *c, const wsh_request_t *r)
{
    const wsh_stats_snapshot_t *snap;
    wsh_text_t t = { NULL, 0, 0 };

    if (!wsh_request_is_get(r)) {
        (void) wsh_http_respond(c, 405, "text/plain", "use GET\n", 8);
        return 0;
    }
    snap = wsh_stats_snapshot();
    if (snap == NULL || metrics_render(&t, snap) != 0) {
        (void) wsh_http_respond(c, 500, "text/plain", "out of memory\n", 14);
    } else {
        (void) wsh_http_respond(c, 200, "text/plain; version=0.0.4; "
                                "charset=utf-8", t.data, t.len);
    }
    free(t.data);
    return 0;
}

/* Counters say much about the traffic: loopback unless told. */
static const wsh_default_endpoint_t metrics_default = { "/metrics", NULL, 1 };

const wsh_module_t wsh_metrics_module = {
    .name = "metrics",
    .api_version = WSHUB_API_VERSION,
    .default_endpoint = &metrics_default,
    .handshake = wsh_http_only_handshake,
    .http = metrics_http,
};
