/* redis_breaker.c -- the Redis engine's circuit breaker, per worker.
 *
 * It spares a dead Redis: after breaker_failures failed connects in a
 * row, of both connections together (refused, timed out, closed before
 * answering, AUTH or SELECT refused, AUTH or PING unanswered) it opens,
 * and for breaker_open no connection is tried; then one connection
 * probes (half-open) and either closes the breaker, waking the other,
 * or opens it again. A connect counts as good once Redis answers a PING
 * after the AUTH: a wrong password keeps it failing. Each change of
 * state is logged once.
 */
#include "engine/redis.h"
#include "core/log.h"
#include "core/stats.h"

#include <event2/event.h>

#include <inttypes.h>
#include <stdio.h>

typedef enum {
    REDIS_BREAKER_CLOSED = 0,
    REDIS_BREAKER_OPEN,
    REDIS_BREAKER_HALF_OPEN
} redis_breaker_e;

static const char *const redis_breaker_names[] = {
    "closed", "open", "half-open"
};

static struct {
    redis_breaker_e  state;
    unsigned         failures;      /* failed connects in a row */
    wsh_msec_t       until;         /* open: the probe's time */
    redis_conn_t    *probe;         /* the connection that will probe */
    uint64_t         reconnects;    /* connections re-established */
} redis_breaker;

static void
redis_breaker_set(redis_breaker_e state, int level, const char *why)
{
    redis_breaker.state = state;
    wsh_log(level, "redis circuit breaker %s: %s",
            redis_breaker_names[state], why);
}

/* A connect of RC failed: count it; the breaker opens at
 * breaker_failures in a row, or again when the probe failed. */
void
redis_breaker_failed(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    char why[96];

    (void) rc;
    redis_breaker.failures++;
    if (redis_breaker.state == REDIS_BREAKER_HALF_OPEN) {
        snprintf(why, sizeof(why), "the probe failed, next in %" PRIu64
                 " ms", (uint64_t) e->breaker_open);
        redis_breaker_set(REDIS_BREAKER_OPEN, WSH_LOG_INFO, why);
    } else if (redis_breaker.state == REDIS_BREAKER_CLOSED
               && e->breaker_failures > 0
               && redis_breaker.failures >= e->breaker_failures)
    {
        snprintf(why, sizeof(why), "%u failed connects in a row, no "
                 "connect for %" PRIu64 " ms", redis_breaker.failures,
                 (uint64_t) e->breaker_open);
        redis_breaker_set(REDIS_BREAKER_OPEN, WSH_LOG_ERR, why);
    } else {
        return;
    }
    redis_breaker.until = wsh_monotonic_msec() + e->breaker_open;
    redis_breaker.probe = NULL;
}

/* A connection of ours works: close the breaker and wake the connection
 * that waited for it. */
void
redis_breaker_ok(redis_conn_t *rc)
{
    redis_conn_t *conns[2] = { &redis_sub, &redis_cmd };
    struct timeval now = { 0, 0 };
    size_t i;

    if (rc->connected) {
        redis_breaker.reconnects++;
        wsh_stat_add(WSH_STAT_ENGINE_RECONNECTS, 1);
    }
    rc->connected = true;
    redis_breaker.failures = 0;
    if (redis_breaker.state == REDIS_BREAKER_CLOSED) {
        return;
    }
    redis_breaker.probe = NULL;
    redis_breaker_set(REDIS_BREAKER_CLOSED, WSH_LOG_NOTICE,
                      "redis answers again");
    for (i = 0; i < 2; i++) {
        if (conns[i]->state == REDIS_DOWN
            && !evtimer_pending(conns[i]->timer, NULL))
        {
            evtimer_add(conns[i]->timer, &now);
        }
    }
}

int
redis_breaker_wait(redis_conn_t *rc, wsh_msec_t *delay)
{
    wsh_msec_t now;

    if (redis_breaker.state == REDIS_BREAKER_CLOSED) {
        return 0;
    }
    if (redis_breaker.probe != NULL && redis_breaker.probe != rc) {
        return -1;
    }
    redis_breaker.probe = rc;
    now = wsh_monotonic_msec();
    *delay = redis_breaker.until > now ? redis_breaker.until - now : 0;
    return 1;
}

void
redis_breaker_probe(void)
{
    if (redis_breaker.state == REDIS_BREAKER_OPEN) {
        redis_breaker_set(REDIS_BREAKER_HALF_OPEN, WSH_LOG_INFO,
                          "probing with one connection");
    }
}

/* A failover: the failures were the old master's, and the new one is
 * to be tried at once (redis_restart wakes both connections). */
void
redis_breaker_reset(void)
{
    redis_breaker.failures = 0;
    redis_breaker.probe = NULL;
    if (redis_breaker.state != REDIS_BREAKER_CLOSED) {
        redis_breaker_set(REDIS_BREAKER_CLOSED, WSH_LOG_NOTICE,
                          "the sentinels named a new master");
    }
}

void
redis_breaker_info(wsh_server_info_t *info)
{
    info->engine_breaker = redis_breaker_names[redis_breaker.state];
    info->engine_reconnects = redis_breaker.reconnects;
    info->engine_failures = redis_breaker.failures;
}
