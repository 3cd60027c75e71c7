/* redis_shard.c -- the Redis engine's shards: each Redis server it uses,
 * with the worker's two connections to it, and where a topic lives.
 *
 * Without engine.redis.shards there is one shard, the server of
 * engine.redis (at host and port, a UNIX socket, or through Sentinel).
 * With it, each shard is an independent server (or Sentinel master),
 * with its own subscriber and command connections, back-off, circuit
 * breaker and subscriptions: a shard that is down stops only its own
 * topics. A room or a client channel lives on the shard its channel name
 * hashes to by jump consistent hash (placement.c), with its presence
 * and history keys, so that its scripts run where its messages are
 * published; broadcasts ("all" topics) live on shard 0, where every
 * worker with a client subscribes. redis_shard_of_channel is the only
 * place that says so. With engine.redis.cluster, the shards are the
 * masters and a channel is on the master of its slot (redis_cluster.c),
 * broadcasts too (one slot per realm).
 *
 * hiredis 0.14 (Debian 12) has no timeouts: connect and command timeouts
 * are libevent timers. Reconnects run from a back-off timer, never from
 * a hiredis callback; ac->data is NULL once we let go of a context and
 * every callback then returns.
 */
#include "engine/redis.h"
#include "engine/redis_ssub.h"
#include "engine/placement.h"
#include "engine/topic.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/runtime.h"

#include <hiredis/adapters/libevent.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDIS_TICK      250         /* ms between timeout checks */
#define REDIS_LOG_EVERY 10000       /* ms between repeated log lines */
#define REDIS_FLUSH_MS  2000        /* for the last commands at exit */

redis_shard_t *redis_shards;
size_t         redis_nshards;

static struct event *redis_tick;

static void redis_connect(redis_conn_t *rc);

/* ---- placement ---------------------------------------------------------- */

redis_shard_t *
redis_shard_of_channel(int kind, const char *ch, size_t n)
{
    if (redis_clustered()) {
        return redis_cluster_shard(ch, n);
    }
    if (redis_nshards == 1 || kind == WSH_TOPIC_ALL) {
        return &redis_shards[0];
    }
    return &redis_shards[wsh_placement_shard(ch, n, (unsigned) redis_nshards)];
}

redis_shard_t *
redis_shard_for(int kind, const char *name, size_t len)
{
    char ch[REDIS_NAME_MAX];

    if (len > WSH_TOPIC_NAME_MAX
        || (!redis_clustered() && (redis_nshards == 1
                                   || kind == WSH_TOPIC_ALL)))
    {
        return &redis_shards[0];
    }
    return redis_shard_of_channel(kind, ch,
                                  redis_channel(ch, kind, name, len));
}

/* ---- state -------------------------------------------------------------- */

bool
redis_shard_up(const redis_shard_t *s)
{
    return s->sub.state == REDIS_UP && s->cmd.state == REDIS_UP;
}

bool
redis_cmd_up(const redis_shard_t *s)
{
    return s->cmd.state == REDIS_UP;
}

/* Up when every shard's both connections are: a worker that can publish
 * but not receive (or the reverse) is cut off all the same. */
bool
redis_all_up(void)
{
    size_t i;

    for (i = 0; i < redis_nshards; i++) {
        if (!redis_shards[i].retired && !redis_shard_up(&redis_shards[i])) {
            return false;
        }
    }
    return redis_nshards > 0;
}

/* The gauges of S and of the engine, after a change of state. */
static void
redis_shard_state(redis_shard_t *s)
{
    wsh_stat_set(WSH_STAT_ENGINE_UP, redis_all_up());
    if (s->index < WSH_STATS_SHARDS) {
        wsh_stat_shard_set(s->index, WSH_SHARD_STAT_UP, redis_shard_up(s));
    }
}

void
redis_shard_count(redis_shard_t *s, unsigned commands, unsigned publishes)
{
    if (s->index < WSH_STATS_SHARDS) {
        wsh_stat_shard_add(s->index, WSH_SHARD_STAT_COMMANDS, commands);
        wsh_stat_shard_add(s->index, WSH_SHARD_STAT_PUBLISHES, publishes);
    }
}

/* The server in use, for /health and the logs. */
void
redis_shard_address(redis_shard_t *s)
{
    if (s->conf->unix_socket != NULL) {
        snprintf(s->address, sizeof(s->address), "%s", s->conf->unix_socket);
    } else if (s->host[0] != '\0') {
        snprintf(s->address, sizeof(s->address),
                 strchr(s->host, ':') != NULL ? "[%s]:%u" : "%s:%u", s->host,
                 s->port);
    } else {
        s->address[0] = '\0';
    }
}

void
redis_shard_role(redis_shard_t *s, const redisReply *reply)
{
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY
        && reply->elements > 0
        && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        snprintf(s->role, sizeof(s->role), "%s", reply->element[0]->str);
    }
}

/* ---- connections -------------------------------------------------------- */

/* RC failed at WHAT (connect, AUTH...) for ERR: logged once per
 * REDIS_LOG_EVERY while it stays down, not at every retry. */
void
redis_log_failure(redis_conn_t *rc, const char *what, const char *err)
{
    wsh_msec_t now = wsh_monotonic_msec();
    redis_shard_t *s = rc->shard;

    if (rc->logged != 0 && now - rc->logged < REDIS_LOG_EVERY) {
        return;
    }
    rc->logged = now;
    err = redis_tls_why(err);
    if (s->conf->unix_socket != NULL) {
        wsh_log(WSH_LOG_ERR, "redis%s %s connection to %s: %s: %s, retrying",
                s->label, rc->name, s->conf->unix_socket, what, err);
    } else {
        wsh_log(WSH_LOG_ERR, "redis%s %s connection to %s:%u: %s: %s, "
                "retrying", s->label, rc->name, s->host, s->port, what, err);
    }
}

/* Arm the reconnect timer: the back-off with jitter in [1/2, 1], then
 * doubled up to reconnect_max. While the breaker is open only one
 * connection waits for its end, the other for the breaker to close. */
static void
redis_schedule(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    wsh_msec_t delay;
    struct timeval tv;
    int wait;

    if (rc->state == REDIS_UP) {
        wsh_stat_error(WSH_ERR_ENGINE_DISCONNECTED);
    }
    rc->state = REDIS_DOWN;
    rc->pending = 0;
    redis_shard_state(rc->shard);
    if (redis_exiting) {
        return;
    }
    wait = redis_breaker_wait(rc, &delay);
    if (wait < 0) {
        return;
    }
    if (wait == 0) {
        if (rc->backoff == 0) {
            rc->backoff = e->reconnect_min;
        }
        delay = rc->backoff / 2
                + (wsh_msec_t) random() % (rc->backoff / 2 + 1);
        rc->backoff = rc->backoff * 2 > e->reconnect_max
                      ? e->reconnect_max : rc->backoff * 2;
    }
    tv.tv_sec = (time_t) (delay / 1000);
    tv.tv_usec = (suseconds_t) (delay % 1000) * 1000;
    evtimer_add(rc->timer, &tv);
}

/* The connection went away (hiredis frees the context). */
static void
redis_lost(redis_conn_t *rc)
{
    if (rc == &rc->shard->sub) {
        redis_subscriptions_lost(rc->shard);
    }
    rc->ac = NULL;
    redis_schedule(rc);
}

/* Let go of a live context from outside its own hiredis callbacks (a
 * timer, another context's reply): free it now, its pending callbacks
 * see ac->data == NULL. */
void
redis_drop(redis_conn_t *rc)
{
    redisAsyncContext *ac = rc->ac;

    if (rc->shard->ssub != NULL && rc == &rc->shard->sub) {
        redis_ssub_free(rc->shard->ssub);
        rc->shard->ssub = NULL;
        redis_lost(rc);
        return;
    }
    if (ac == NULL) {
        return;
    }
    ac->data = NULL;
    rc->ac = NULL;
    redisAsyncFree(ac);
    redis_lost(rc);
}

/* Cluster mode: the sharded subscriber RC answered. */
void
redis_ssub_ready(redis_conn_t *rc)
{
    rc->state = REDIS_UP;
    redis_shard_state(rc->shard);
    redis_ready(rc);
    redis_subscribe_all(rc->shard);
}

/* Cluster mode: the sharded subscriber RC is gone (freed, logged). */
void
redis_ssub_lost(redis_conn_t *rc)
{
    redis_lost(rc);
}

static void
redis_disconnect_cb(const redisAsyncContext *ac, int status)
{
    redis_conn_t *rc = ac->data;

    if (rc == NULL) {
        return;
    }
    ((redisAsyncContext *) ac)->data = NULL;
    if (status != REDIS_OK && !rc->ready) {
        /* Closed before it answered: a failed connect. */
        redis_log_failure(rc, "connect", ac->errstr);
        redis_breaker_failed(rc);
    } else if (status != REDIS_OK) {
        wsh_log(WSH_LOG_ERR, "redis%s %s connection lost: %s",
                rc->shard->label, rc->name, ac->errstr);
        rc->logged = wsh_monotonic_msec();
    }
    redis_lost(rc);
}

/* Count a command sent on RC, for the command timeout. */
void
redis_sent(redis_conn_t *rc)
{
    if (rc->pending++ == 0) {
        rc->progress = wsh_monotonic_msec();
    }
    redis_shard_count(rc->shard, 1, 0);
}

/* A reply arrived on the connection of AC; NULL if we let go of it. */
redis_conn_t *
redis_replied(const redisAsyncContext *ac)
{
    redis_conn_t *rc = ac->data;

    if (rc != NULL) {
        if (rc->pending > 0) {
            rc->pending--;
        }
        rc->progress = wsh_monotonic_msec();
    }
    return rc;
}

/* AUTH and SELECT replies: a failure closes the connection, to retry. */
static void
redis_setup_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_conn_t *rc = redis_replied(ac);

    if (rc == NULL || reply == NULL) {
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        redis_log_failure(rc, (const char *) privdata, reply->str);
        redis_breaker_failed(rc);
        redisAsyncDisconnect(ac);   /* allowed in a reply callback */
    }
}

/* ROLE of a server not found through Sentinel: shown, not checked. */
static void
redis_role_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_conn_t *rc = redis_replied(ac);

    (void) privdata;
    if (rc != NULL) {
        redis_shard_role(rc->shard, r);
    }
}

/* The PING after AUTH and SELECT: this connection works. */
static void
redis_ready_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_conn_t *rc = redis_replied(ac);

    (void) privdata;
    if (rc != NULL && reply != NULL && reply->type == REDIS_REPLY_STATUS) {
        redis_ready(rc);
    }
}

/* RC works: the back-off, the breaker and presence are told. */
void
redis_ready(redis_conn_t *rc)
{
    redis_shard_t *s = rc->shard;

    rc->ready = true;
    rc->backoff = 0;
    if (rc->logged != 0) {
        wsh_log(WSH_LOG_NOTICE, "redis%s %s connection restored", s->label,
                rc->name);
        rc->logged = 0;
    }
    redis_breaker_ok(rc);
    redis_presence_reconnected(s);
    if (rc == &s->sub) {
        redis_presence_resync(s);       /* learn what we missed */
    }
    if (s->check_rooms && redis_shard_up(s) && s->sub.ready && s->cmd.ready)
    {
        /* Rooms with history whose messages passed us by while the
         * subscription was down, or whose history Redis lost: their
         * members are told to rejoin with since (the next message would
         * tell too, but a quiet room has none). */
        s->check_rooms = false;
        redis_history_check(s);
    }
}

static void
redis_connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;
    redis_conn_t *rc = ac->data;
    const wsh_conf_redis_server_t *v;

    if (rc == NULL) {
        return;
    }
    v = rc->shard->conf;
    evtimer_del(rc->timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after we return: no free here. */
        ac->data = NULL;
        redis_log_failure(rc, "connect", ac->errstr);
        redis_breaker_failed(rc);
        redis_lost(rc);
        return;
    }
    (void) redisEnableKeepAlive(&ac->c);
    if (v->password != NULL) {
        if (v->user != NULL) {
            redisAsyncCommand(ac, redis_setup_cb, "AUTH", "AUTH %s %s",
                              v->user, v->password);
        } else {
            redisAsyncCommand(ac, redis_setup_cb, "AUTH", "AUTH %s",
                              v->password);
        }
        redis_sent(rc);
    }
    if (rc->shard->sentinel != NULL) {
        redis_sentinel_role(rc);    /* redis_setup once it is the master */
        return;
    }
    redis_setup(rc);
}

/* RC is connected (and authenticated, AUTH being ahead in the
 * pipeline) to the server to use: up, and set up. */
void
redis_setup(redis_conn_t *rc)
{
    redis_shard_t *s = rc->shard;
    redisAsyncContext *ac = rc->ac;

    rc->state = REDIS_UP;
    redis_shard_state(s);
    if (rc == &s->cmd && s->conf->db != 0) {
        redisAsyncCommand(ac, redis_setup_cb, "SELECT", "SELECT %u",
                          s->conf->db);
        redis_sent(rc);
    }
    if (redisAsyncCommand(ac, redis_ready_cb, NULL, "PING") == REDIS_OK) {
        redis_sent(rc);
    }
    if (rc == &s->sub) {
        redis_subscribe_all(s);
        return;
    }
    if (s->sentinel == NULL
        && redisAsyncCommand(ac, redis_role_cb, NULL, "ROLE") == REDIS_OK)
    {
        redis_sent(rc);
    }
    redis_script_load(s);
    redis_presence_resync(s);   /* what changed while we were cut off */
}

static void
redis_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    redis_conn_t *rc = arg;

    (void) fd;
    (void) what;
    if (rc->state == REDIS_CONNECTING) {
        redis_log_failure(rc, "connect", "timed out");
        redis_breaker_failed(rc);
        redis_drop(rc);
    } else if (rc->state == REDIS_DOWN) {
        redis_breaker_probe(rc->shard);
        redis_connect(rc);
    }
}

/* A hiredis context connecting to HOST:PORT, or to the UNIX socket
 * PATH when not NULL, attached to the worker's loop; NULL with the
 * reason in ERR. For the Redis servers and the sentinels. */
redisAsyncContext *
redis_open(const char *host, unsigned port, const char *path, char *err,
    size_t len)
{
    redisAsyncContext *ac;

#if HIREDIS_MAJOR >= 1
    {
        const wsh_conf_engine_t *e = redis_conf();
        redisOptions opt;
        struct timeval tv;

        tv.tv_sec = (time_t) (e->connect_timeout / 1000);
        tv.tv_usec = (suseconds_t) (e->connect_timeout % 1000) * 1000;
        memset(&opt, 0, sizeof(opt));
        if (path != NULL) {
            REDIS_OPTIONS_SET_UNIX(&opt, path);
        } else {
            REDIS_OPTIONS_SET_TCP(&opt, host, (int) port);
        }
        opt.connect_timeout = &tv;
        ac = redisAsyncConnectWithOptions(&opt);
    }
#else
    ac = path != NULL ? redisAsyncConnectUnix(path)
                      : redisAsyncConnect(host, (int) port);
#endif
    if (ac == NULL || ac->err) {
        snprintf(err, len, "%s", ac ? ac->errstr : strerror(ENOMEM));
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        return NULL;
    }
    if (path == NULL && redis_tls_start(ac, host, err, len) != WSH_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    if (redisLibeventAttach(ac, wsh_worker.base) != REDIS_OK) {
        snprintf(err, len, "redisLibeventAttach() failed");
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

/* With Sentinel, ask for the master first (redis_sentinel.c), which
 * then calls redis_connect_to or redis_connect_failed. */
static void
redis_connect(redis_conn_t *rc)
{
    if (redis_clustered()) {
        if (rc->shard->host[0] == '\0') {
            rc->state = REDIS_DOWN;     /* no master yet, or retired */
            redis_shard_state(rc->shard);
        } else if (rc == &rc->shard->sub) {
            redis_cluster_ssub_connect(rc);
        } else {
            redis_connect_to(rc);
        }
        return;
    }
    if (rc->shard->sentinel != NULL) {
        rc->state = REDIS_CONNECTING;
        redis_sentinel_resolve(rc);
        return;
    }
    redis_connect_to(rc);
}

/* Connect RC to its shard's server in use, host:port (or the UNIX
 * socket). */
void
redis_connect_to(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    redis_shard_t *s = rc->shard;
    redisAsyncContext *ac;
    struct timeval tv;
    char err[128];

    redis_shard_address(s);
    ac = redis_open(s->host, s->port, s->conf->unix_socket, err, sizeof(err));
    if (ac == NULL) {
        redis_log_failure(rc, "connect", err);
        redis_connect_failed(rc);
        return;
    }
    ac->data = rc;
    redisAsyncSetConnectCallback(ac, redis_connect_cb);
    redisAsyncSetDisconnectCallback(ac, redis_disconnect_cb);
    rc->ac = ac;
    rc->ready = false;
    rc->state = REDIS_CONNECTING;
    rc->pending = 0;
    tv.tv_sec = (time_t) (e->connect_timeout / 1000);
    tv.tv_usec = (suseconds_t) (e->connect_timeout % 1000) * 1000;
    evtimer_add(rc->timer, &tv);
}

/* RC could not connect (logged): retry after the back-off. */
void
redis_connect_failed(redis_conn_t *rc)
{
    redis_breaker_failed(rc);
    redis_schedule(rc);
}

/* S's server changed (a failover): let go of the old one and connect at
 * once, whatever the back-off had reached. */
void
redis_restart(redis_shard_t *s)
{
    redis_conn_t *conns[2] = { &s->sub, &s->cmd };
    struct timeval now = { 0, 0 };
    size_t i;

    s->role[0] = '\0';
    for (i = 0; i < 2 && !redis_exiting; i++) {
        redis_drop(conns[i]);
        if (conns[i]->state == REDIS_DOWN) {
            conns[i]->backoff = 0;
            evtimer_add(conns[i]->timer, &now);
        }
    }
}

/* Every REDIS_TICK: command timeouts, and the presence refresh. */
static void
redis_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    redis_conn_t *rc;
    size_t i;

    (void) fd;
    (void) what;
    (void) arg;
    for (i = 0; i < 2 * redis_nshards; i++) {
        rc = i % 2 ? &redis_shards[i / 2].cmd : &redis_shards[i / 2].sub;
        if (rc->state == REDIS_UP && rc->pending > 0
            && now - rc->progress > redis_conf()->command_timeout)
        {
            redis_log_failure(rc, "command", "timed out");
            if (!rc->ready) {
                redis_breaker_failed(rc);       /* AUTH or PING hung */
            }
            redis_drop(rc);
        }
    }
    redis_presence_tick();
}

/* ---- life cycle --------------------------------------------------------- */

int
redis_shard_init(redis_shard_t *s, unsigned index,
    const wsh_conf_redis_server_t *v)
{
    s->index = index;
    s->conf = v;
    if (redis_conf()->sharded) {
        snprintf(s->label, sizeof(s->label), " shard %u", index);
    }
    s->refreshed = wsh_monotonic_msec();
    s->sub.name = "subscriber";
    s->cmd.name = "command";
    s->sub.shard = s->cmd.shard = s;
    s->wanted = wsh_hash_new();
    s->confirmed = wsh_hash_new();
    s->sub.timer = evtimer_new(wsh_worker.base, redis_timer_cb, &s->sub);
    s->cmd.timer = evtimer_new(wsh_worker.base, redis_timer_cb, &s->cmd);
    if (s->wanted == NULL || s->confirmed == NULL || s->sub.timer == NULL
        || s->cmd.timer == NULL)
    {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis engine");
        return WSH_ERROR;
    }
    if (v->sentinel_master == NULL) {
        snprintf(s->host, sizeof(s->host), "%s", v->host);
        s->port = v->port;
        redis_shard_address(s);
        return WSH_OK;
    }
    return redis_sentinel_init(s);
}

/* The shards of the configuration, connecting; in cluster mode, shard
 * 0 waiting for the map, and room for a shard per master. */
int
redis_shards_init(void)
{
    const wsh_conf_engine_t *e = redis_conf();
    struct timeval tv = { 0, REDIS_TICK * 1000 };
    size_t i;

    redis_shards = calloc(redis_clustered() ? WSH_REDIS_SHARDS_MAX
                                            : e->nservers,
                          sizeof(*redis_shards));
    redis_tick = event_new(wsh_worker.base, -1, EV_PERSIST, redis_tick_cb,
                           NULL);
    if (redis_shards == NULL || redis_tick == NULL) {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis engine");
        return WSH_ERROR;
    }
    for (i = 0; i < e->nservers; i++) {
        redis_nshards++;
        if (redis_shard_init(&redis_shards[i], (unsigned) i, &e->servers[i])
            != WSH_OK)
        {
            return WSH_ERROR;
        }
    }
    if (redis_clustered()) {
        redis_shards[0].host[0] = '\0';
        redis_shard_address(&redis_shards[0]);
        if (redis_cluster_init() != WSH_OK) {
            wsh_log(WSH_LOG_EMERG, "out of memory for the redis engine");
            return WSH_ERROR;
        }
    }
    evtimer_add(redis_tick, &tv);
    for (i = 0; i < redis_nshards; i++) {
        redis_connect(&redis_shards[i].sub);
        redis_connect(&redis_shards[i].cmd);
    }
    return WSH_OK;
}

/* Push out what hiredis still buffers (the last leaves and
 * publishes), waiting for Redis to take it up to REDIS_FLUSH_MS; what
 * it does not take is logged (presence expiry removes the leaves). */
static void
redis_flush(redis_conn_t *rc)
{
    wsh_msec_t deadline = wsh_monotonic_msec() + REDIS_FLUSH_MS, now;
    struct pollfd pfd;
    int done = 0;

    pfd.fd = rc->ac->c.fd;
    pfd.events = POLLOUT;
    while (redisBufferWrite(&rc->ac->c, &done) == REDIS_OK && !done) {
        now = wsh_monotonic_msec();
        if (now >= deadline) {
            break;
        }
        (void) poll(&pfd, 1, (int) (deadline - now));
    }
    if (!done) {
        wsh_log(WSH_LOG_WARN, "exiting with commands for redis%s unsent on "
                "the %s connection (%s): presence entries of this worker "
                "expire after presence_ttl", rc->shard->label, rc->name,
                rc->ac->c.err ? rc->ac->c.errstr : "it did not read in "
                "time");
    }
}

static void
redis_shard_exit(redis_shard_t *s)
{
    redis_conn_t *conns[2] = { &s->sub, &s->cmd };
    redisAsyncContext *ac;
    size_t i;

    if (s->ssub != NULL) {
        redis_ssub_free(s->ssub);
        s->ssub = NULL;
    }
    for (i = 0; i < 2; i++) {
        ac = conns[i]->ac;
        if (ac != NULL) {
            if (conns[i]->state == REDIS_UP) {
                redis_flush(conns[i]);
            }
            ac->data = NULL;
            conns[i]->ac = NULL;
            redisAsyncFree(ac);
        }
        if (conns[i]->timer != NULL) {
            event_free(conns[i]->timer);
            conns[i]->timer = NULL;
        }
    }
    redis_sentinel_exit(s);
    wsh_hash_free(s->wanted, NULL);
    wsh_hash_free(s->confirmed, NULL);
    s->wanted = s->confirmed = NULL;
}

void
redis_shards_exit(void)
{
    size_t i;

    if (redis_tick != NULL) {
        event_free(redis_tick);
        redis_tick = NULL;
    }
    redis_cluster_exit();
    for (i = 0; i < redis_nshards; i++) {
        redis_shard_exit(&redis_shards[i]);
    }
    free(redis_shards);
    redis_shards = NULL;
    redis_nshards = 0;
}
