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
static struct {
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
} sentinel_ask;

/* The watch: subscribed to +switch-master on one sentinel. */
static struct {
    redisAsyncContext *ac;
    struct event      *timer;       /* until subscribed, then reconnect */
    size_t             at;          /* the sentinel watched */
    wsh_msec_t         backoff;
    wsh_msec_t         logged;      /* a failure logged */
} sentinel_watch;

static void sentinel_ask_next(void);
static void sentinel_watch_start(void);

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
sentinel_question(redisAsyncContext *ac, redisCallbackFn *answer)
{
    const wsh_conf_engine_t *e = redis_conf();

    if (e->sentinel_password != NULL) {
        (void) redisAsyncCommand(ac, NULL, NULL, "AUTH %s",
                                 e->sentinel_password);
    }
    return redisAsyncCommand(ac, answer, NULL,
                             "SENTINEL get-master-addr-by-name %s",
                             e->sentinel_master);
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
sentinel_use(const char *host, unsigned port)
{
    const char *name = redis_conf()->sentinel_master;
    bool first = redis_host[0] == '\0';

    if (strcmp(host, redis_host) == 0 && port == redis_port) {
        return;
    }
    if (first) {
        wsh_log(WSH_LOG_NOTICE, "redis master of %s is %s:%u", name, host,
                port);
    } else {
        wsh_log(WSH_LOG_NOTICE, "redis master of %s is now %s:%u (was "
                "%s:%u)", name, host, port, redis_host, redis_port);
    }
    snprintf(redis_host, sizeof(redis_host), "%s", host);
    redis_port = port;
    if (!first) {
        redis_breaker_reset();
        redis_restart();
    }
}

/* ---- the question ------------------------------------------------------- */

void
redis_sentinel_resolve(redis_conn_t *rc)
{
    sentinel_ask.waiting[rc == &redis_sub ? 0 : 1] = rc;
    if (sentinel_ask.ac != NULL
        || evtimer_pending(sentinel_ask.timer, NULL))
    {
        return;         /* asked already: its answer serves both */
    }
    sentinel_ask.tried = 0;
    sentinel_ask_next();
}

/* Ask again from the first sentinel: an answer on its way may be older
 * than a switch just announced. */
static void
sentinel_ask_again(void)
{
    struct timeval now = { 0, 0 };

    if (sentinel_ask.ac == NULL && !evtimer_pending(sentinel_ask.timer, NULL))
    {
        return;
    }
    sentinel_free(&sentinel_ask.ac);
    sentinel_ask.found = false;
    sentinel_ask.tried = 0;
    evtimer_add(sentinel_ask.timer, &now);
}

/* Hand each connection waiting for the answer to GO. */
static void
sentinel_ask_done(void (*go)(redis_conn_t *rc))
{
    redis_conn_t *rc;
    size_t i;

    for (i = 0; i < 2; i++) {
        rc = sentinel_ask.waiting[i];
        if (rc != NULL) {
            sentinel_ask.waiting[i] = NULL;
            go(rc);
        }
    }
}

static void
sentinel_ask_failed(void)
{
    const wsh_conf_engine_t *e = redis_conf();
    wsh_msec_t now = wsh_monotonic_msec();

    if (sentinel_ask.logged == 0
        || now - sentinel_ask.logged >= SENTINEL_LOG_EVERY)
    {
        wsh_log(WSH_LOG_ERR, "redis: none of the %zu sentinels named the "
                "master of %s (the last one: %s), retrying", e->nsentinels,
                e->sentinel_master, sentinel_ask.err);
        sentinel_ask.logged = now;
    }
    sentinel_ask_done(redis_connect_failed);
}

static void
sentinel_answer_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    const wsh_conf_sentinel_t *s;
    redisReply *reply = r;
    struct timeval now = { 0, 0 };

    (void) privdata;
    if (ac->data == NULL) {
        return;
    }
    ac->data = NULL;
    sentinel_ask.ac = NULL;
    if (reply == NULL) {
        /* Not connected, or lost: hiredis frees the context. */
        snprintf(sentinel_ask.err, sizeof(sentinel_ask.err), "%s",
                 ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
    } else {
        if (sentinel_address(reply, sentinel_ask.host,
                             sizeof(sentinel_ask.host), &sentinel_ask.port)
            == WSH_OK)
        {
            sentinel_ask.found = true;
            sentinel_ask.first = sentinel_ask.at;
        } else {
            snprintf(sentinel_ask.err, sizeof(sentinel_ask.err), "%s",
                     reply->type == REDIS_REPLY_ERROR ? reply->str
                     : "it monitors no master of that name");
        }
        redisAsyncDisconnect(ac);
    }
    if (!sentinel_ask.found) {
        s = &redis_conf()->sentinels[sentinel_ask.at];
        wsh_log(WSH_LOG_INFO, "redis sentinel %s:%u: %s", s->host, s->port,
                sentinel_ask.err);
    }
    /* Go on from the timer, out of hiredis's callbacks. */
    evtimer_add(sentinel_ask.timer, &now);
}

/* The next sentinel, from the first that answered last time. */
static void
sentinel_ask_next(void)
{
    const wsh_conf_engine_t *e = redis_conf();
    const wsh_conf_sentinel_t *s;
    redisAsyncContext *ac;

    while (sentinel_ask.tried < e->nsentinels) {
        sentinel_ask.at = (sentinel_ask.first + sentinel_ask.tried++)
                          % e->nsentinels;
        s = &e->sentinels[sentinel_ask.at];
        ac = redis_open(s->host, s->port, NULL, sentinel_ask.err,
                        sizeof(sentinel_ask.err));
        if (ac == NULL) {
            continue;
        }
        ac->data = &sentinel_ask;
        if (sentinel_question(ac, sentinel_answer_cb) != REDIS_OK) {
            snprintf(sentinel_ask.err, sizeof(sentinel_ask.err),
                     "redisAsyncCommand() failed");
            sentinel_free(&ac);
            continue;
        }
        sentinel_ask.ac = ac;
        sentinel_arm(sentinel_ask.timer, e->connect_timeout);
        return;
    }
    sentinel_ask_failed();
}

/* The time to answer is over, or an answer came. */
static void
sentinel_ask_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    (void) arg;
    if (sentinel_ask.ac != NULL) {
        sentinel_free(&sentinel_ask.ac);
        snprintf(sentinel_ask.err, sizeof(sentinel_ask.err), "no answer "
                 "in %" PRIu64 " ms", (uint64_t) redis_conf()->connect_timeout);
    }
    if (!sentinel_ask.found) {
        sentinel_ask_next();
        return;
    }
    sentinel_ask.found = false;
    sentinel_ask.logged = 0;
    sentinel_use(sentinel_ask.host, sentinel_ask.port);
    sentinel_ask_done(redis_connect_to);
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
                 "asking the sentinels again", redis_conf()->sentinel_master,
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
sentinel_watch_failed(const char *err)
{
    const wsh_conf_engine_t *e = redis_conf();
    const wsh_conf_sentinel_t *s = &e->sentinels[sentinel_watch.at];
    wsh_msec_t now = wsh_monotonic_msec(), delay;

    sentinel_watch.ac = NULL;
    if (redis_exiting) {
        return;
    }
    if (sentinel_watch.logged == 0
        || now - sentinel_watch.logged >= SENTINEL_LOG_EVERY)
    {
        wsh_log(WSH_LOG_WARN, "redis sentinel %s:%u: %s; watching for "
                "+switch-master on the next one", s->host, s->port, err);
        sentinel_watch.logged = now;
    }
    sentinel_watch.at = (sentinel_watch.at + 1) % e->nsentinels;
    if (sentinel_watch.backoff == 0) {
        sentinel_watch.backoff = e->reconnect_min;
    }
    delay = sentinel_watch.backoff / 2
            + (wsh_msec_t) random() % (sentinel_watch.backoff / 2 + 1);
    sentinel_watch.backoff = sentinel_watch.backoff * 2 > e->reconnect_max
                             ? e->reconnect_max : sentinel_watch.backoff * 2;
    sentinel_arm(sentinel_watch.timer, delay);
}

static void
sentinel_watch_connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;

    if (ac->data == NULL || status == REDIS_OK) {
        return;
    }
    ac->data = NULL;            /* hiredis frees it */
    sentinel_watch_failed(ac->errstr);
}

static void
sentinel_watch_disconnect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;

    (void) status;
    if (ac->data == NULL) {
        return;
    }
    ac->data = NULL;
    sentinel_watch_failed(ac->errstr[0] != '\0' ? ac->errstr
                                                : "connection closed");
}

/* The master is HOST:PORT by the watched sentinel's word, which is the
 * first to know. */
static void
sentinel_watch_switch(const char *host, unsigned port)
{
    sentinel_ask.first = sentinel_watch.at;
    if (redis_host[0] == '\0'
        || (strcmp(host, redis_host) == 0 && port == redis_port))
    {
        return;         /* the question in flight sets the first one */
    }
    sentinel_use(host, port);
    sentinel_ask_again();
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
        sentinel_watch_switch(host, port);
    }
}

/* +switch-master "NAME OLD-HOST OLD-PORT NEW-HOST NEW-PORT". */
static void
sentinel_switch_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    const wsh_conf_engine_t *e = redis_conf();
    const wsh_conf_sentinel_t *s;
    redisReply *reply = r, **el;
    char name[256], host[256];
    unsigned port;

    (void) privdata;
    if (ac->data == NULL || reply == NULL
        || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }
    el = reply->element;
    if (strcmp(el[0]->str, "subscribe") == 0) {
        evtimer_del(sentinel_watch.timer);
        sentinel_watch.backoff = 0;
        if (sentinel_watch.logged != 0) {
            s = &e->sentinels[sentinel_watch.at];
            wsh_log(WSH_LOG_NOTICE, "redis sentinel %s:%u: watching for "
                    "+switch-master", s->host, s->port);
            sentinel_watch.logged = 0;
        }
        return;
    }
    if (strcmp(el[0]->str, "message") == 0
        && el[2]->type == REDIS_REPLY_STRING
        && sscanf(el[2]->str, "%255s %*s %*u %255s %u", name, host, &port)
           == 3
        && strcmp(name, e->sentinel_master) == 0 && port >= 1
        && port <= 65535)
    {
        sentinel_watch_switch(host, port);
    }
}

static void
sentinel_watch_start(void)
{
    const wsh_conf_engine_t *e = redis_conf();
    const wsh_conf_sentinel_t *s = &e->sentinels[sentinel_watch.at];
    redisAsyncContext *ac;
    char err[128];

    ac = redis_open(s->host, s->port, NULL, err, sizeof(err));
    if (ac == NULL) {
        sentinel_watch_failed(err);
        return;
    }
    ac->data = &sentinel_watch;
    redisAsyncSetConnectCallback(ac, sentinel_watch_connect_cb);
    redisAsyncSetDisconnectCallback(ac, sentinel_watch_disconnect_cb);
    /* Pipelined: a subscribed connection takes no other command, and
     * the question is answered before the subscription starts. */
    if (sentinel_question(ac, sentinel_check_cb) != REDIS_OK
        || redisAsyncCommand(ac, sentinel_switch_cb, NULL,
                             "SUBSCRIBE +switch-master") != REDIS_OK)
    {
        sentinel_free(&ac);
        sentinel_watch_failed("redisAsyncCommand() failed");
        return;
    }
    sentinel_watch.ac = ac;
    sentinel_arm(sentinel_watch.timer, e->connect_timeout);
}

/* Not subscribed in time, or the back-off is over. */
static void
sentinel_watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    (void) arg;
    if (sentinel_watch.ac != NULL) {
        sentinel_free(&sentinel_watch.ac);
        sentinel_watch_failed("not subscribed in time");
        return;
    }
    sentinel_watch_start();
}

/* ---- life cycle --------------------------------------------------------- */

int
redis_sentinel_init(void)
{
    sentinel_ask.timer = evtimer_new(wsh_worker.base, sentinel_ask_timer_cb,
                                     NULL);
    sentinel_watch.timer = evtimer_new(wsh_worker.base,
                                       sentinel_watch_timer_cb, NULL);
    if (sentinel_ask.timer == NULL || sentinel_watch.timer == NULL) {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis sentinels");
        return WSH_ERROR;
    }
    /* The workers of a host spread their watches over the sentinels. */
    sentinel_watch.at = (size_t) random() % redis_conf()->nsentinels;
    sentinel_watch_start();
    return WSH_OK;
}

void
redis_sentinel_exit(void)
{
    sentinel_free(&sentinel_ask.ac);
    sentinel_free(&sentinel_watch.ac);
    if (sentinel_ask.timer != NULL) {
        event_free(sentinel_ask.timer);
        sentinel_ask.timer = NULL;
    }
    if (sentinel_watch.timer != NULL) {
        event_free(sentinel_watch.timer);
        sentinel_watch.timer = NULL;
    }
}
