/* redis_sentinel.c -- the Redis engine finds its server through Redis
 * Sentinel (engine.redis.sentinel).
 *
 * Before each connect of either of its connections a worker asks the
 * sentinels which server is the master (SENTINEL get-master-addr-by-name),
 * one after the other from the last one that answered, each given
 * connect_timeout; the first answer wins, and the two connections share
 * one question. A connection then sends ROLE ahead of everything but
 * AUTH and goes up only if the server says it is a master: the sentinels
 * may still name a demoted master for a moment, and one must never be
 * written to.
 *
 * One more connection per worker, to one sentinel, is subscribed to
 * +switch-master, so that a failover is followed when the sentinels
 * announce it, not only when the old master's connections break (a
 * master cut off by the network may keep them open). On a switch of our
 * master both connections are dropped and reconnect at once; the
 * reconnect does what any does (scripts, subscriptions, presence, and
 * the check of rooms with history). The watch asks for the master before
 * it subscribes, so that a switch it missed while it was down is seen.
 *
 * Each shard with a sentinel master (engine.redis.sentinel, or a shard
 * of engine.redis.shards) has its own question and watch.
 *
 * redis.c's hiredis rules hold: a context is freed from a timer or from
 * another context's callback, never from its own; ac->data is NULL once
 * we let go of it, and its callbacks then return.
 */
#include "engine/redis.h"
#include "core/log.h"
#include "core/runtime.h"

#include <event2/event.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL_LOG_EVERY 10000    /* ms between repeated log lines */

/* The question: which server is the master? */
typedef struct {
    redisAsyncContext *ac;          /* to the sentinel asked */
    struct event      *timer;       /* its time to answer; 0: go on */
    redis_conn_t      *waiting[2];  /* the connections waiting for it */
    size_t             at;          /* the sentinel asked */
    size_t             tried;       /* sentinels asked this time */
    size_t             first;       /* asked first: the last to answer */
    bool               found;
    char               host[256];   /* its answer */
    unsigned           port;
    char               err[128];    /* why the last one did not answer */
    wsh_msec_t         logged;      /* no sentinel answered, logged */
} sentinel_ask_t;

/* The watch: subscribed to +switch-master on one sentinel. */
typedef struct {
    redisAsyncContext *ac;
    struct event      *timer;       /* until subscribed, then reconnect */
    size_t             at;          /* the sentinel watched */
    wsh_msec_t         backoff;
    wsh_msec_t         logged;      /* a failure logged */
} sentinel_watch_t;

/* A shard's sentinels: its question, and its watch. */
struct redis_sentinel_s {
    redis_shard_t     *shard;
    sentinel_ask_t     ask;
    sentinel_watch_t   watch;
};

static void sentinel_ask_next(redis_sentinel_t *st);
static void sentinel_watch_start(redis_sentinel_t *st);

static void
sentinel_arm(struct event *ev, wsh_msec_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t) (ms / 1000);
    tv.tv_usec = (suseconds_t) (ms % 1000) * 1000;
    evtimer_add(ev, &tv);
}

/* Let go of *ACP, from outside its callbacks. */
static void
sentinel_free(redisAsyncContext **acp)
{
    redisAsyncContext *ac = *acp;

    if (ac != NULL) {
        *acp = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

/* AUTH (its error comes back as the next command's NOAUTH) and the
 * question, queued on AC before it is even connected. */
static int
sentinel_question(redis_sentinel_t *st, redisAsyncContext *ac,
    redisCallbackFn *answer)
{
    const wsh_conf_redis_server_t *v = st->shard->conf;

    if (v->sentinel_password != NULL) {
        (void) redisAsyncCommand(ac, NULL, NULL, "AUTH %s",
                                 v->sentinel_password);
    }
    return redisAsyncCommand(ac, answer, NULL,
                             "SENTINEL get-master-addr-by-name %s",
                             v->sentinel_master);
}

/* An answer {HOST, PORT} into HOST (LEN bytes) and *PORT: WSH_OK; a nil
 * (the sentinel monitors no master of that name), an error or anything
 * else: WSH_ERROR. */
static int
sentinel_address(const redisReply *reply, char *host, size_t len,
    unsigned *port)
{
    unsigned long n;
    char *end;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[0]->len == 0 || reply->element[0]->len >= len)
    {
        return WSH_ERROR;
    }
    n = strtoul(reply->element[1]->str, &end, 10);
    if (*end != '\0' || n < 1 || n > 65535) {
        return WSH_ERROR;
    }
    memcpy(host, reply->element[0]->str, reply->element[0]->len + 1);
    *port = (unsigned) n;
    return WSH_OK;
}

/* HOST:PORT is the master. When that is news, it is logged, and
 * connections to the one before are dropped to reconnect at once. */
static void
sentinel_use(redis_sentinel_t *st, const char *host, unsigned port)
{
    redis_shard_t *s = st->shard;
    const char *name = s->conf->sentinel_master;
    bool first = s->host[0] == '\0';

    if (strcmp(host, s->host) == 0 && port == s->port) {
        return;
    }
    if (first) {
        wsh_log(WSH_LOG_NOTICE, "redis%s master of %s is %s:%u", s->label,
                name, host, port);
    } else {
        wsh_log(WSH_LOG_NOTICE, "redis%s master of %s is now %s:%u (was "
                "%s:%u)", s->label, name, host, port, s->host, s->port);
    }
    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = port;
    if (!first) {
        redis_breaker_reset(s);
        redis_restart(s);
    }
}

/* ---- the question ------------------------------------------------------- */

void
redis_sentinel_resolve(redis_conn_t *rc)
{
    redis_sentinel_t *st = rc->shard->sentinel;

    st->ask.waiting[rc == &rc->shard->sub ? 0 : 1] = rc;
    if (st->ask.ac != NULL
        || evtimer_pending(st->ask.timer, NULL))
    {
        return;         /* asked already: its answer serves both */
    }
    st->ask.tried = 0;
    sentinel_ask_next(st);
}

/* Ask again from the first sentinel: an answer on its way may be older
 * than a switch just announced. */
static void
sentinel_ask_again(redis_sentinel_t *st)
{
    struct timeval now = { 0, 0 };

    if (st->ask.ac == NULL && !evtimer_pending(st->ask.timer, NULL))
    {
        return;
    }
    sentinel_free(&st->ask.ac);
    st->ask.found = false;
    st->ask.tried = 0;
    evtimer_add(st->ask.timer, &now);
}

/* Hand each connection waiting for the answer to GO. */
static void
sentinel_ask_done(redis_sentinel_t *st, void (*go)(redis_conn_t *rc))
{
    redis_conn_t *rc;
    size_t i;

    for (i = 0; i < 2; i++) {
        rc = st->ask.waiting[i];
        if (rc != NULL) {
            st->ask.waiting[i] = NULL;
            go(rc);
        }
    }
}

static void
sentinel_ask_failed(redis_sentinel_t *st)
{
    const wsh_conf_redis_server_t *v = st->shard->conf;
    wsh_msec_t now = wsh_monotonic_msec();

    if (st->ask.logged == 0
        || now - st->ask.logged >= SENTINEL_LOG_EVERY)
    {
        wsh_log(WSH_LOG_ERR, "redis%s: none of the %zu sentinels named the "
                "master of %s (the last one: %s), retrying", st->shard->label,
                v->nsentinels, v->sentinel_master, st->ask.err);
        st->ask.logged = now;
    }
    sentinel_ask_done(st, redis_connect_failed);
}

static void
sentinel_answer_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_sentinel_t *st = ac->data;
    const wsh_conf_sentinel_t *s;
    redisReply *reply = r;
    struct timeval now = { 0, 0 };

    (void) privdata;
    if (st == NULL) {
        return;
    }
    ac->data = NULL;
    st->ask.ac = NULL;
    if (reply == NULL) {
        /* Not connected, or lost: hiredis frees the context. */
        snprintf(st->ask.err, sizeof(st->ask.err), "%s",
                 ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
    } else {
        if (sentinel_address(reply, st->ask.host,
                             sizeof(st->ask.host), &st->ask.port)
            == WSH_OK)
        {
            st->ask.found = true;
            st->ask.first = st->ask.at;
        } else {
            snprintf(st->ask.err, sizeof(st->ask.err), "%s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str
                     : "it monitors no master of that name");
        }
        redisAsyncDisconnect(ac);
    }
    if (!st->ask.found) {
        s = &st->shard->conf->sentinels[st->ask.at];
        wsh_log(WSH_LOG_INFO, "redis sentinel %s:%u: %s", s->host, s->port,
                st->ask.err);
    }
    /* Go on from the timer, out of hiredis's callbacks. */
    evtimer_add(st->ask.timer, &now);
}

/* The next sentinel, from the first that answered last time. */
static void
sentinel_ask_next(redis_sentinel_t *st)
{
    const wsh_conf_redis_server_t *v = st->shard->conf;
    const wsh_conf_sentinel_t *s;
    redisAsyncContext *ac;

    while (st->ask.tried < v->nsentinels) {
        st->ask.at = (st->ask.first + st->ask.tried++) % v->nsentinels;
        s = &v->sentinels[st->ask.at];
        ac = redis_open(s->host, s->port, NULL, st->ask.err,
                        sizeof(st->ask.err));
        if (ac == NULL) {
            continue;
        }
        ac->data = st;
        if (sentinel_question(st, ac, sentinel_answer_cb) != REDIS_OK) {
            snprintf(st->ask.err, sizeof(st->ask.err),
                     "redisAsyncCommand() failed");
            sentinel_free(&ac);
            continue;
        }
        st->ask.ac = ac;
        sentinel_arm(st->ask.timer, redis_conf()->connect_timeout);
        return;
    }
    sentinel_ask_failed(st);
}

/* The time to answer is over, or an answer came. */
static void
sentinel_ask_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    redis_sentinel_t *st = arg;

    (void) fd;
    (void) what;
    if (st->ask.ac != NULL) {
        sentinel_free(&st->ask.ac);
        snprintf(st->ask.err, sizeof(st->ask.err), "no answer "
                 "in %" PRIu64 " ms", (uint64_t) redis_conf()->connect_timeout);
    }
    if (!st->ask.found) {
        sentinel_ask_next(st);
        return;
    }
    st->ask.found = false;
    st->ask.logged = 0;
    sentinel_use(st, st->ask.host, st->ask.port);
    sentinel_ask_done(st, redis_connect_to);
}

/* ---- ROLE --------------------------------------------------------------- */

static void
sentinel_role_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_conn_t *rc = redis_replied(ac);
    char what[160];

    (void) privdata;
    if (rc == NULL || reply == NULL || (ac->c.flags & REDIS_DISCONNECTING)) {
        return;         /* gone, or AUTH failed (logged and counted) */
    }
    redis_shard_role(rc->shard, reply);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
        && reply->element[0]->type == REDIS_REPLY_STRING
        && strcmp(reply->element[0]->str, "master") == 0)
    {
        evtimer_del(rc->timer);
        redis_setup(rc);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        redis_log_failure(rc, "ROLE", reply->str);
    } else {
        snprintf(what, sizeof(what), "not the master of %s (ROLE: %s), "
                 "asking the sentinels again",
                 rc->shard->conf->sentinel_master,
                 reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
                 && reply->element[0]->type == REDIS_REPLY_STRING
                 ? reply->element[0]->str : "?");
        redis_log_failure(rc, "ROLE", what);
    }
    redis_breaker_failed(rc);
    redisAsyncDisconnect(ac);   /* allowed in a reply callback */
}

void
redis_sentinel_role(redis_conn_t *rc)
{
    /* Not up until it answers: nothing else is sent meanwhile. */
    if (redisAsyncCommand(rc->ac, sentinel_role_cb, NULL, "ROLE")
        == REDIS_OK)
    {
        redis_sent(rc);
    }
    sentinel_arm(rc->timer, redis_conf()->connect_timeout);
}

/* ---- the watch ---------------------------------------------------------- */

/* The watch is lost (ERR): watch on the next sentinel after the
 * back-off. */
static void
sentinel_watch_failed(redis_sentinel_t *st, const char *err)
{
    const wsh_conf_engine_t *e = redis_conf();
    const wsh_conf_redis_server_t *v = st->shard->conf;
    const wsh_conf_sentinel_t *s = &v->sentinels[st->watch.at];
    wsh_msec_t now = wsh_monotonic_msec(), delay;

    st->watch.ac = NULL;
    if (redis_exiting) {
        return;
    }
    if (st->watch.logged == 0
        || now - st->watch.logged >= SENTINEL_LOG_EVERY)
    {
        wsh_log(WSH_LOG_WARN, "redis%s sentinel %s:%u: %s; watching for "
                "+switch-master on the next one", st->shard->label, s->host,
                s->port, err);
        st->watch.logged = now;
    }
    st->watch.at = (st->watch.at + 1) % v->nsentinels;
    if (st->watch.backoff == 0) {
        st->watch.backoff = e->reconnect_min;
    }
    delay = st->watch.backoff / 2
            + (wsh_msec_t) random() % (st->watch.backoff / 2 + 1);
    st->watch.backoff = st->watch.backoff * 2 > e->reconnect_max
                             ? e->reconnect_max : st->watch.backoff * 2;
    sentinel_arm(st->watch.timer, delay);
}

static void
sentinel_watch_connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;
    redis_sentinel_t *st = ac->data;

    if (st == NULL || status == REDIS_OK) {
        return;
    }
    ac->data = NULL;            /* hiredis frees it */
    sentinel_watch_failed(st, ac->errstr);
}

static void
sentinel_watch_disconnect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;
    redis_sentinel_t *st = ac->data;

    (void) status;
    if (st == NULL) {
        return;
    }
    ac->data = NULL;
    sentinel_watch_failed(st, ac->errstr[0] != '\0' ? ac->errstr
                                                    : "connection closed");
}

/* The master is HOST:PORT by the watched sentinel's word, which is the
 * first to know. */
static void
sentinel_watch_switch(redis_sentinel_t *st, const char *host, unsigned port)
{
    redis_shard_t *s = st->shard;

    st->ask.first = st->watch.at;
    if (s->host[0] == '\0' || (strcmp(host, s->host) == 0 && port == s->port))
    {
        return;         /* the question in flight sets the first one */
    }
    sentinel_use(st, host, port);
    sentinel_ask_again(st);
}

/* The watched sentinel's master before the subscription: a switch may
 * have passed while no one watched. */
static void
sentinel_check_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    char host[256];
    unsigned port;

    (void) privdata;
    if (ac->data != NULL && reply != NULL
        && sentinel_address(reply, host, sizeof(host), &port) == WSH_OK)
    {
        sentinel_watch_switch(ac->data, host, port);
    }
}

/* +switch-master "NAME OLD-HOST OLD-PORT NEW-HOST NEW-PORT". */
static void
sentinel_switch_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_sentinel_t *st = ac->data;
    const wsh_conf_redis_server_t *v;
    const wsh_conf_sentinel_t *s;
    redisReply *reply = r, **el;
    char name[256], host[256];
    unsigned port;

    (void) privdata;
    if (st == NULL || reply == NULL
        || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }
    v = st->shard->conf;
    el = reply->element;
    if (strcmp(el[0]->str, "subscribe") == 0) {
        evtimer_del(st->watch.timer);
        st->watch.backoff = 0;
        if (st->watch.logged != 0) {
            s = &v->sentinels[st->watch.at];
            wsh_log(WSH_LOG_NOTICE, "redis%s sentinel %s:%u: watching for "
                    "+switch-master", st->shard->label, s->host, s->port);
            st->watch.logged = 0;
        }
        return;
    }
    if (strcmp(el[0]->str, "message") == 0
        && el[2]->type == REDIS_REPLY_STRING
        && sscanf(el[2]->str, "%255s %*s %*u %255s %u", name, host, &port)
           == 3
        && strcmp(name, v->sentinel_master) == 0 && port >= 1
        && port <= 65535)
    {
        sentinel_watch_switch(st, host, port);
    }
}

static void
sentinel_watch_start(redis_sentinel_t *st)
{
    const wsh_conf_sentinel_t *s = &st->shard->conf->sentinels[st->watch.at];
    redisAsyncContext *ac;
    char err[128];

    ac = redis_open(s->host, s->port, NULL, err, sizeof(err));
    if (ac == NULL) {
        sentinel_watch_failed(st, err);
        return;
    }
    ac->data = st;
    redisAsyncSetConnectCallback(ac, sentinel_watch_connect_cb);
    redisAsyncSetDisconnectCallback(ac, sentinel_watch_disconnect_cb);
    /* Pipelined: a subscribed connection takes no other command, and
     * the question is answered before the subscription starts. */
    if (sentinel_question(st, ac, sentinel_check_cb) != REDIS_OK
        || redisAsyncCommand(ac, sentinel_switch_cb, NULL,
                             "SUBSCRIBE +switch-master") != REDIS_OK)
    {
        sentinel_free(&ac);
        sentinel_watch_failed(st, "redisAsyncCommand() failed");
        return;
    }
    st->watch.ac = ac;
    sentinel_arm(st->watch.timer, redis_conf()->connect_timeout);
}

/* Not subscribed in time, or the back-off is over. */
static void
sentinel_watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    redis_sentinel_t *st = arg;

    (void) fd;
    (void) what;
    if (st->watch.ac != NULL) {
        sentinel_free(&st->watch.ac);
        sentinel_watch_failed(st, "not subscribed in time");
        return;
    }
    sentinel_watch_start(st);
}

/* ---- life cycle --------------------------------------------------------- */

int
redis_sentinel_init(redis_shard_t *s)
{
    redis_sentinel_t *st = calloc(1, sizeof(*st));

    if (st == NULL) {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis sentinels");
        return WSH_ERROR;
    }
    s->sentinel = st;
    st->shard = s;
    st->ask.timer = evtimer_new(wsh_worker.base, sentinel_ask_timer_cb, st);
    st->watch.timer = evtimer_new(wsh_worker.base, sentinel_watch_timer_cb,
                                  st);
    if (st->ask.timer == NULL || st->watch.timer == NULL) {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis sentinels");
        return WSH_ERROR;
    }
    /* The workers of a host spread their watches over the sentinels. */
    st->watch.at = (size_t) random() % s->conf->nsentinels;
    sentinel_watch_start(st);
    return WSH_OK;
}

void
redis_sentinel_exit(redis_shard_t *s)
{
    redis_sentinel_t *st = s->sentinel;

    if (st == NULL) {
        return;
    }
    sentinel_free(&st->ask.ac);
    sentinel_free(&st->watch.ac);
    if (st->ask.timer != NULL) {
        event_free(st->ask.timer);
    }
    if (st->watch.timer != NULL) {
        event_free(st->watch.timer);
    }
    free(st);
    s->sentinel = NULL;
}
