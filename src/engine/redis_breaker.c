/* redis_breaker.c -- the Redis engine's circuit breaker, per worker and
 * per shard.
 *
 * It spares a dead Redis: after breaker_failures failed connects in a
 * row, of both connections of the shard together (refused, timed out, closed before
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

static const char *const redis_breaker_names[] = {
    "closed", "open", "half-open"
};

static void
redis_breaker_set(redis_shard_t *s, redis_breaker_e state, int level,
    const char *why)
{
    s->breaker.state = state;
    if (s->index < WSH_STATS_SHARDS) {
        wsh_stat_shard_set(s->index, WSH_SHARD_STAT_BREAKER_OPEN,
                           state != REDIS_BREAKER_CLOSED);
    }
    wsh_log(level, "redis%s circuit breaker %s: %s", s->label,
            redis_breaker_names[state], why);
}

/* A connect of RC failed: count it; the breaker opens at
 * breaker_failures in a row, or again when the probe failed. */
void
redis_breaker_failed(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    redis_shard_t *s = rc->shard;
    redis_breaker_t *b = &s->breaker;
    char why[96];

    b->failures++;
    if (b->state == REDIS_BREAKER_HALF_OPEN) {
        snprintf(why, sizeof(why), "the probe failed, next in %" PRIu64
                 " ms", (uint64_t) e->breaker_open);
        redis_breaker_set(s, REDIS_BREAKER_OPEN, WSH_LOG_INFO, why);
    } else if (b->state == REDIS_BREAKER_CLOSED && e->breaker_failures > 0
               && b->failures >= e->breaker_failures)
    {
        snprintf(why, sizeof(why), "%u failed connects in a row, no "
                 "connect for %" PRIu64 " ms", b->failures,
                 (uint64_t) e->breaker_open);
        redis_breaker_set(s, REDIS_BREAKER_OPEN, WSH_LOG_ERR, why);
    } else {
        return;
    }
    b->until = wsh_monotonic_msec() + e->breaker_open;
    b->probe = NULL;
}

/* A connection of ours works: close the breaker and wake the connection
 * that waited for it. */
void
redis_breaker_ok(redis_conn_t *rc)
{
    redis_shard_t *s = rc->shard;
    redis_conn_t *conns[2] = { &s->sub, &s->cmd };
    struct timeval now = { 0, 0 };
    size_t i;

    if (rc->connected) {
        s->breaker.reconnects++;
        wsh_stat_add(WSH_STAT_ENGINE_RECONNECTS, 1);
        if (s->index < WSH_STATS_SHARDS) {
            wsh_stat_shard_add(s->index, WSH_SHARD_STAT_RECONNECTS, 1);
        }
    }
    rc->connected = true;
    s->breaker.failures = 0;
    if (s->breaker.state == REDIS_BREAKER_CLOSED) {
        return;
    }
    s->breaker.probe = NULL;
    redis_breaker_set(s, REDIS_BREAKER_CLOSED, WSH_LOG_NOTICE,
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
    redis_breaker_t *b = &rc->shard->breaker;
    wsh_msec_t now;

    if (b->state == REDIS_BREAKER_CLOSED) {
        return 0;
    }
    if (b->probe != NULL && b->probe != rc) {
        return -1;
    }
    b->probe = rc;
    now = wsh_monotonic_msec();
    *delay = b->until > now ? b->until - now : 0;
    return 1;
}

void
redis_breaker_probe(redis_shard_t *s)
{
    if (s->breaker.state == REDIS_BREAKER_OPEN) {
        redis_breaker_set(s, REDIS_BREAKER_HALF_OPEN, WSH_LOG_INFO,
                          "probing with one connection");
    }
}

/* A failover: the failures were the old master's, and the new one is
 * to be tried at once (redis_restart wakes both connections). */
void
redis_breaker_reset(redis_shard_t *s)
{
    s->breaker.failures = 0;
    s->breaker.probe = NULL;
    if (s->breaker.state != REDIS_BREAKER_CLOSED) {
        redis_breaker_set(s, REDIS_BREAKER_CLOSED, WSH_LOG_NOTICE,
                          "the sentinels named a new master");
    }
}

const char *
redis_breaker_name(const redis_shard_t *s)
{
    return redis_breaker_names[s->breaker.state];
}
