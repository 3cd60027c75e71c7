/* health.c -- the health module: GET /health for load balancers.
 *
 * Answers from the worker that takes the request: 200 and "ok" while it
 * serves, 503 and "draining" once it is stopping or being replaced by a
 * reload (so a balancer stops sending it clients), and "degraded" when
 * the engine cannot reach the other workers and hosts (503 with
 * health.engine_required: on). The object "engine" details the engine
 * as this worker sees it: type, up, circuit breaker state (null without
 * one), connections re-established, failed connects in a row, and with
 * engine.redis.shards each of them the same way, with its role.
 * "connections" counts the WebSockets of every worker (from the shared
 * counters), "worker_connections" this worker's; the rest of the
 * counters summed over all workers are the metrics module's business.
 */
/* Modules see wshub.h, not the build's config.h: POSIX is asked for
 * here (clock_gettime, gmtime_r). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "wshub.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/* health: in wshub.yaml. */
typedef struct {
    int engine_required;        /* 503 while the engine is down */
} health_conf_t;

static const wsh_conf_field_t health_fields[] = {
    { WSH_CONF_FIELD(health_conf_t, engine_required, BOOL, "off", 0, 0) },
    WSH_CONF_END
};

static const wsh_conf_section_t health_section = {
    "health", sizeof(health_conf_t), health_fields, NULL, NULL
};

extern const wsh_module_t wsh_health_module;

static const health_conf_t *
health_conf(void)
{
    return wsh_module_conf(&wsh_health_module);
}

/* The engine's servers (Redis shards), each as this worker sees it;
 * NULL out of memory. */
static json_t *
health_shards(const wsh_server_info_t *info)
{
    const wsh_engine_shard_t *d;
    json_t *list = json_array(), *o;
    size_t i;

    for (i = 0; list != NULL && i < info->engine_nshards; i++) {
        d = &info->engine_shards[i];
        o = json_pack("{s:I, s:s?, s:b, s:s?, s:s, s:I, s:i}",
                      "shard", (json_int_t) i, "address", d->address,
                      "up", d->up, "role", d->role, "breaker", d->breaker,
                      "reconnects", (json_int_t) d->reconnects,
                      "failures", (int) d->failures);
        if (o == NULL || json_array_append_new(list, o) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static int
health_http(wsh_conn_t *c, const wsh_request_t *r)
{
    struct timespec t0, t1, now;
    wsh_server_info_t info;
    const char *status;
    char stamp[32], *text;
    struct tm tm;
    json_t *obj, *shards;
    int code;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!wsh_request_is_get(r)) {
        (void) wsh_http_respond(c, 405, "text/plain", "use GET\n", 8);
        return 0;
    }
    wsh_server_info(&info);
    if (info.draining) {
        status = "draining";
        code = 503;
    } else if (!info.engine_up) {
        status = "degraded";
        code = health_conf()->engine_required ? 503 : 200;
    } else {
        status = "ok";
        code = 200;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    obj = json_pack("{s:s, s:s, s:f, s:{s:s, s:s}, s:{s:f, s:s, s:s, s:i, "
                    "s:i, s:I, s:i, s:I}, s:{s:s, s:b, s:s?, s:I, s:i, s:s?}}",
                    "status", status, "timestamp", stamp,
                    "duration", (double) (t1.tv_sec - t0.tv_sec)
                                + (t1.tv_nsec - t0.tv_nsec) / 1e9,
                    "checks",
                    "websocket", info.draining ? "draining" : "ok",
                    "engine", info.engine_up ? "ok" : "down",
                    "system",
                    "uptime", (double) info.uptime_ms / 1000,
                    "version", info.version, "engine", info.engine,
                    "worker", info.worker, "workers", info.workers,
                    "connections", (json_int_t) wsh_stats_gauge(
                                       WSH_STAT_CONNECTIONS_ACTIVE),
                    "worker_connections", (int) info.connections,
                    "memory_rss", (json_int_t) wsh_stats_rss(
                                      (uint64_t) getpid()),
                    "engine",
                    "type", info.engine, "up", info.engine_up,
                    "breaker", info.engine_breaker,
                    "reconnects", (json_int_t) info.engine_reconnects,
                    "failures", (int) info.engine_failures,
                    "address", info.engine_address);
    if (obj != NULL && info.engine_sharded) {
        shards = health_shards(&info);
        if (shards == NULL
            || json_object_set_new(json_object_get(obj, "engine"), "shards",
                                   shards) != 0)
        {
            json_decref(obj);
            obj = NULL;
        }
    }
    text = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6))
               : NULL;
    json_decref(obj);
    if (text == NULL) {
        (void) wsh_http_respond(c, 500, "text/plain", "", 0);
        return 0;
    }
    (void) wsh_http_respond(c, code, "application/json", text, strlen(text));
    free(text);
    return 0;
}

static const wsh_default_endpoint_t health_default = { "/health", NULL, 0 };

const wsh_module_t wsh_health_module = {
    .name = "health",
    .api_version = WSHUB_API_VERSION,
    .default_endpoint = &health_default,
    .conf = &health_section,
    .handshake = wsh_http_only_handshake,
    .http = health_http,
};
