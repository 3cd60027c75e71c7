/* redis.c -- the Redis engine: workers and hosts meet in one Redis.
 *
 * Each worker holds two hiredis async connections on its event_base: one
 * in subscribe mode for the channels of its topics, one for commands
 * (PUBLISH and the presence scripts). Channels are PREFIX "all:" REALM
 * "#", PREFIX "room:" REALM "#" NAME and PREFIX "client:" REALM "#" ID
 * (topic names carry their realm, wshub.h), and PREFIX "all" for an
 * unnamed all-topic. What wshub publishes is
 * the envelope line "#wshub1 NODE/PID\n" followed by the data; the
 * origin worker skips its own data messages (it delivered locally
 * first), and a message without the envelope (a backend's redis-cli
 * PUBLISH) is delivered as is. A control message is an envelope whose
 * data starts with \x02:
 *
 *     \x02P J CONN_ID ID      ID joined the room (CONN_ID on the origin)
 *     \x02P L 0 ID            ID left the room (last entry gone)
 *
 * Presence is in redis_presence.c, its Lua scripts in redis_script.c.
 *
 * The worker part of the tag is the pid, not the slot: after a reload a
 * draining worker and its successor share a slot, not a pid.
 *
 * hiredis 0.14 (Debian 12) has no timeouts: connect and command timeouts
 * are libevent timers. Reconnects run from a back-off timer, never from
 * a hiredis callback; ac->data is NULL once we let go of a context and
 * every callback then returns.
 *
 * The circuit breaker is in redis_breaker.c; with engine.redis.sentinel
 * the server is the master the sentinels name (redis_sentinel.c).
 */
#include "engine/redis.h"
#include "engine/recovery.h"
#include "engine/topic.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/runtime.h"

#include <hiredis/adapters/libevent.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDIS_TICK      250         /* ms between timeout checks */
#define REDIS_LOG_EVERY 10000       /* ms between repeated log lines */
#define REDIS_FLUSH_MS  2000        /* for the last commands at exit */

redis_conn_t  redis_sub = { .name = "subscriber" };
redis_conn_t  redis_cmd = { .name = "command" };
bool          redis_exiting;
char          redis_tag[128];
size_t        redis_taglen;
char          redis_host[256];
unsigned      redis_port;

static bool redis_up(void);

static struct event *redis_tick;
static wsh_hash_t   *redis_wanted;      /* channel -> 1: local topics */
static wsh_hash_t   *redis_confirmed;   /* channel -> 1: Redis said so */

static wsh_msec_t    redis_drop_logged;
static unsigned long redis_dropped;

static bool redis_check_rooms;     /* the subscription was lost */
static void redis_connect(redis_conn_t *rc);
static void redis_subscribe_all(void);

const wsh_conf_engine_t *
redis_conf(void)
{
    return &wsh_worker.conf->engine;
}

/* ---- names -------------------------------------------------------------- */

/* The channel of a topic into BUF (at least 16 + prefix + name bytes);
 * returns its length. */
size_t
redis_channel(char *buf, int kind, const char *name, size_t len)
{
    const char *prefix = redis_conf()->prefix;
    size_t n = strlen(prefix);
    const char *part = kind == WSH_TOPIC_ROOM ? "room:"
                       : kind == WSH_TOPIC_CLIENT ? "client:"
                       : len > 0 ? "all:" : "all";

    memcpy(buf, prefix, n);
    memcpy(buf + n, part, strlen(part));
    n += strlen(part);
    memcpy(buf + n, name, len);
    return n + len;
}


/* A topic of ours from a channel name: WSH_OK and KIND/NAME/LEN. */
static int
redis_parse_channel(const char *ch, size_t chlen, int *kind,
    const char **name, size_t *len)
{
    const char *prefix = redis_conf()->prefix;
    size_t n = strlen(prefix);

    if (chlen < n || memcmp(ch, prefix, n) != 0) {
        return WSH_ERROR;
    }
    ch += n;
    chlen -= n;
    if (chlen == 3 && memcmp(ch, "all", 3) == 0) {
        *kind = WSH_TOPIC_ALL;
        *name = "";
        *len = 0;
    } else if (chlen >= 4 && memcmp(ch, "all:", 4) == 0) {
        *kind = WSH_TOPIC_ALL;          /* a realm's: "all:" REALM "#" */
        *name = ch + 4;
        *len = chlen - 4;
    } else if (chlen >= 5 && memcmp(ch, "room:", 5) == 0) {
        *kind = WSH_TOPIC_ROOM;
        *name = ch + 5;
        *len = chlen - 5;
    } else if (chlen >= 7 && memcmp(ch, "client:", 7) == 0) {
        *kind = WSH_TOPIC_CLIENT;
        *name = ch + 7;
        *len = chlen - 7;
    } else {
        return WSH_ERROR;
    }
    return WSH_OK;
}

/* "#wshub1 NODE/PID\n" into BUF; returns its length. */
size_t
redis_envelope(char *buf)
{
    memcpy(buf, REDIS_ENVELOPE, sizeof(REDIS_ENVELOPE) - 1);
    memcpy(buf + sizeof(REDIS_ENVELOPE) - 1, redis_tag, redis_taglen);
    buf[sizeof(REDIS_ENVELOPE) - 1 + redis_taglen] = '\n';
    return sizeof(REDIS_ENVELOPE) + redis_taglen;
}

/* ---- connections -------------------------------------------------------- */

/* RC failed at WHAT (connect, AUTH...) for ERR: logged once per
 * REDIS_LOG_EVERY while it stays down, not at every retry. */
void
redis_log_failure(redis_conn_t *rc, const char *what, const char *err)
{
    wsh_msec_t now = wsh_monotonic_msec();
    const wsh_conf_engine_t *e = redis_conf();

    if (rc->logged != 0 && now - rc->logged < REDIS_LOG_EVERY) {
        return;
    }
    rc->logged = now;
    err = redis_tls_why(err);
    if (e->unix_socket != NULL) {
        wsh_log(WSH_LOG_ERR, "redis %s connection to %s: %s: %s, retrying",
                rc->name, e->unix_socket, what, err);
    } else {
        wsh_log(WSH_LOG_ERR, "redis %s connection to %s:%u: %s: %s, "
                "retrying", rc->name, redis_host, redis_port, what, err);
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
    wsh_stat_set(WSH_STAT_ENGINE_UP, 0);
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
    if (rc == &redis_sub) {
        wsh_hash_free(redis_confirmed, NULL);
        redis_confirmed = wsh_hash_new();
        /* Messages published meanwhile passed us by. */
        redis_check_rooms = true;
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

    if (ac == NULL) {
        return;
    }
    ac->data = NULL;
    rc->ac = NULL;
    redisAsyncFree(ac);
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
        wsh_log(WSH_LOG_ERR, "redis %s connection lost: %s", rc->name,
                ac->errstr);
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

/* The PING after AUTH and SELECT: this connection works. */
static void
redis_ready_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_conn_t *rc = redis_replied(ac);

    (void) privdata;
    if (rc != NULL && reply != NULL && reply->type == REDIS_REPLY_STATUS) {
        rc->ready = true;
        rc->backoff = 0;
        if (rc->logged != 0) {
            wsh_log(WSH_LOG_NOTICE, "redis %s connection restored",
                    rc->name);
            rc->logged = 0;
        }
        redis_breaker_ok(rc);
        redis_presence_reconnected();
        if (rc == &redis_sub) {
            redis_presence_resync();    /* learn what we missed */
        }
        if (redis_check_rooms && redis_up() && redis_sub.ready
            && redis_cmd.ready)
        {
            /* Rooms with history whose messages passed us by while the
             * subscription was down, or whose history Redis lost: their
             * members are told to rejoin with since (the next message
             * would tell too, but a quiet room has none). */
            redis_check_rooms = false;
            wsh_recovery_each_room(redis_history_check);
        }
    }
}

static void
redis_connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;
    redis_conn_t *rc = ac->data;
    const wsh_conf_engine_t *e = redis_conf();

    if (rc == NULL) {
        return;
    }
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
    if (e->password != NULL) {
        if (e->user != NULL) {
            redisAsyncCommand(ac, redis_setup_cb, "AUTH", "AUTH %s %s",
                              e->user, e->password);
        } else {
            redisAsyncCommand(ac, redis_setup_cb, "AUTH", "AUTH %s",
                              e->password);
        }
        redis_sent(rc);
    }
    if (e->sentinel_master != NULL) {
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
    const wsh_conf_engine_t *e = redis_conf();
    redisAsyncContext *ac = rc->ac;

    rc->state = REDIS_UP;
    wsh_stat_set(WSH_STAT_ENGINE_UP, redis_up());
    if (rc == &redis_cmd && e->db != 0) {
        redisAsyncCommand(ac, redis_setup_cb, "SELECT", "SELECT %u", e->db);
        redis_sent(rc);
    }
    if (redisAsyncCommand(ac, redis_ready_cb, NULL, "PING") == REDIS_OK) {
        redis_sent(rc);
    }
    if (rc == &redis_sub) {
        redis_subscribe_all();
        return;
    }
    redis_script_load();
    redis_presence_resync();    /* what changed while we were cut off */
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
        redis_breaker_probe();
        redis_connect(rc);
    }
}

/* A hiredis context connecting to HOST:PORT, or to the UNIX socket
 * PATH when not NULL, attached to the worker's loop; NULL with the
 * reason in ERR. For the Redis server and the sentinels. */
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
    if (redis_conf()->sentinel_master != NULL) {
        rc->state = REDIS_CONNECTING;
        redis_sentinel_resolve(rc);
        return;
    }
    redis_connect_to(rc);
}

/* Connect RC to the server in use, redis_host:redis_port (or the
 * UNIX socket). */
void
redis_connect_to(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    redisAsyncContext *ac;
    struct timeval tv;
    char err[128];

    ac = redis_open(redis_host, redis_port, e->unix_socket, err, sizeof(err));
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

/* The server to use changed (a failover): let go of the old one and
 * connect at once, whatever the back-off had reached. */
void
redis_restart(void)
{
    redis_conn_t *conns[2] = { &redis_sub, &redis_cmd };
    struct timeval now = { 0, 0 };
    size_t i;

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
    redis_conn_t *conns[2] = { &redis_sub, &redis_cmd };
    wsh_msec_t now = wsh_monotonic_msec();
    size_t i;

    (void) fd;
    (void) what;
    (void) arg;
    for (i = 0; i < 2; i++) {
        if (conns[i]->state == REDIS_UP && conns[i]->pending > 0
            && now - conns[i]->progress > redis_conf()->command_timeout)
        {
            redis_log_failure(conns[i], "command", "timed out");
            if (!conns[i]->ready) {
                redis_breaker_failed(conns[i]);     /* AUTH or PING hung */
            }
            redis_drop(conns[i]);
        }
    }
    redis_presence_tick();
}

/* ---- subscriptions ------------------------------------------------------ */

static void
redis_message(const char *ch, size_t chlen, const char *p, size_t len)
{
    const char *name, *nl, *id, *sp;
    size_t nlen;
    int kind;
    bool own = false, joined;
    uint64_t conn_id;

    if (redis_parse_channel(ch, chlen, &kind, &name, &nlen) != WSH_OK) {
        return;
    }
    if (len >= sizeof(REDIS_ENVELOPE) - 1
        && memcmp(p, REDIS_ENVELOPE, sizeof(REDIS_ENVELOPE) - 1) == 0
        && (nl = memchr(p, '\n', len)) != NULL)
    {
        own = (size_t) (nl - p) == sizeof(REDIS_ENVELOPE) - 1 + redis_taglen
              && memcmp(p + sizeof(REDIS_ENVELOPE) - 1, redis_tag,
                        redis_taglen) == 0;
        len -= (size_t) (nl + 1 - p);
        p = nl + 1;
        /* "\x02P J|L CONN_ID ID": presence (ours too: the members
         * know it already, redis_presence_tell drops it). */
        if (len > 7 && p[0] == '\x02' && p[1] == 'P' && p[2] == ' '
            && kind == WSH_TOPIC_ROOM)
        {
            joined = p[3] == 'J';
            conn_id = strtoull(p + 5, NULL, 10);
            sp = memchr(p + 5, ' ', len - 5);
            if (sp == NULL) {
                return;
            }
            id = sp + 1;
            redis_presence_tell(name, nlen, id, (size_t) (p + len - id),
                                joined, own ? conn_id : 0);
            return;
        }
        /* "\x02S CONN_ID OFFSET EPOCH\n": numbered by Redis, for every
         * worker, the publisher's too (redis_history.c). */
        if (len > 3 && p[0] == '\x02' && p[1] == 'S' && p[2] == ' '
            && kind == WSH_TOPIC_ROOM)
        {
            redis_history_message(name, nlen, own, p, len);
            return;
        }
        if (own) {
            return;     /* delivered locally before publishing */
        }
    }
    wsh_engine_deliver(kind, name, nlen, p, len);
}

static void
redis_sub_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r, **el;
    redis_conn_t *rc = ac->data;
    const char *type;

    (void) privdata;
    if (rc == NULL || reply == NULL || redis_exiting) {
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }
    el = reply->element;
    type = el[0]->str;
    if (strcmp(type, "message") == 0) {
        if (el[2]->type == REDIS_REPLY_STRING) {
            redis_message(el[1]->str, el[1]->len, el[2]->str, el[2]->len);
        }
        return;
    }
    (void) redis_replied(ac);
    if (strcmp(type, "subscribe") == 0) {
        /* Only now does the subscription count (private "found"). */
        (void) wsh_hash_put(redis_confirmed, el[1]->str, el[1]->len,
                            (void *) 1);
        redis_history_subscribed(el[1]->str, el[1]->len);
    } else if (strcmp(type, "unsubscribe") == 0) {
        wsh_hash_remove(redis_confirmed, el[1]->str, el[1]->len);
        /* The topic came back while UNSUBSCRIBE was in flight; hiredis
         * 0.14 has just dropped the channel's callback: subscribe again. */
        if (wsh_hash_get(redis_wanted, el[1]->str, el[1]->len) != NULL) {
            redisAsyncCommand(ac, redis_sub_cb, NULL, "SUBSCRIBE %b",
                              el[1]->str, el[1]->len);
            redis_sent(rc);
        }
    }
}

static void
redis_send_sub(const char *cmd, const char *ch, size_t chlen)
{
    if (redis_sub.state != REDIS_UP) {
        return;         /* done on connect */
    }
    if (redisAsyncCommand(redis_sub.ac, redis_sub_cb, NULL, "%s %b", cmd, ch,
                          chlen) == REDIS_OK)
    {
        redis_sent(&redis_sub);
    }
}

/* On (re)connect: SUBSCRIBE every channel of our local topics. */
static void
redis_subscribe_all(void)
{
    wsh_hash_iter_t it;
    const void *key;
    size_t len;

    wsh_hash_iter_init(redis_wanted, &it);
    while (wsh_hash_next(&it, &key, &len, NULL)) {
        redis_send_sub("SUBSCRIBE", key, len);
    }
}

bool
redis_subscribed(const char *ch, size_t n)
{
    return redis_confirmed != NULL && wsh_hash_get(redis_confirmed, ch, n)
                                      != NULL;
}

static void
redis_subscribe(int kind, const char *name, size_t len)
{
    char ch[REDIS_NAME_MAX];
    size_t n;

    if (len > WSH_TOPIC_NAME_MAX) {
        return;
    }
    n = redis_channel(ch, kind, name, len);
    if (wsh_hash_put(redis_wanted, ch, n, (void *) 1) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "out of memory for a subscription");
        return;
    }
    redis_send_sub("SUBSCRIBE", ch, n);
}

static void
redis_unsubscribe(int kind, const char *name, size_t len)
{
    char ch[REDIS_NAME_MAX];
    size_t n;

    if (len > WSH_TOPIC_NAME_MAX) {
        return;
    }
    n = redis_channel(ch, kind, name, len);
    wsh_hash_remove(redis_wanted, ch, n);
    redis_send_sub("UNSUBSCRIBE", ch, n);
}

/* ---- publish ------------------------------------------------------------ */

redis_req_t *
redis_req(const char *name, size_t len, const char *sender, size_t slen,
    uint64_t conn_id, int flags)
{
    redis_req_t *q = malloc(sizeof(*q) + len + slen);

    if (q == NULL) {
        return NULL;
    }
    q->sent = wsh_monotonic_msec();
    q->conn_id = conn_id;
    q->flags = flags;
    q->len = len;
    q->slen = slen;
    memcpy(q->name, name, len);
    if (slen > 0) {
        memcpy(q->name + len, sender, slen);
    }
    return q;
}

/* Report a private publish as the engine core expects. */
static void
redis_result(const redis_req_t *q, bool found)
{
    if (!found || (q->flags & WSH_ENG_F_CONFIRM)) {
        wsh_engine_result(q->name, q->len, q->name + q->len, q->slen,
                          q->conn_id, found);
    }
}

/* PUBLISH to a client channel: the number of receivers tells whether
 * the id is connected anywhere but here. */
static void
redis_publish_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_req_t *q = privdata;
    char ch[REDIS_NAME_MAX];
    long long n;
    bool found;

    (void) redis_replied(ac);
    if (redis_exiting) {
        free(q);
        return;
    }
    found = q->flags & WSH_ENG_F_DELIVERED;
    if (!found && reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        n = reply->integer;
        /* We are among the receivers when we are subscribed to it. */
        if (wsh_hash_get(redis_confirmed, ch,
                         redis_channel(ch, WSH_TOPIC_CLIENT, q->name, q->len))
            != NULL)
        {
            n--;
        }
        found = n > 0;
    }
    redis_result(q, found);
    free(q);
}

static void
redis_dropped_publish(void)
{
    wsh_msec_t now = wsh_monotonic_msec();

    redis_dropped++;
    wsh_stat_error(WSH_ERR_ENGINE_PUBLISH);
    if (redis_drop_logged == 0 || now - redis_drop_logged >= REDIS_LOG_EVERY)
    {
        wsh_log(WSH_LOG_WARN, "redis is down: %lu publish(es) not sent to "
                "other workers and hosts", redis_dropped);
        redis_drop_logged = now;
        redis_dropped = 0;
    }
}

static void
redis_publish(int kind, const char *name, size_t len, int flags,
    const char *sender, size_t slen, uint64_t conn_id, const void *data,
    size_t dlen)
{
    char ch[REDIS_NAME_MAX];
    redis_req_t *q = NULL;
    u_char *buf;
    size_t n, hlen;

    if (len > WSH_TOPIC_NAME_MAX) {
        return;
    }
    if (kind == WSH_TOPIC_CLIENT) {
        q = redis_req(name, len, sender, slen, conn_id, flags);
        if (q == NULL) {
            return;
        }
    }
    if (redis_cmd.state != REDIS_UP) {
        redis_dropped_publish();
        if (q != NULL) {
            redis_result(q, flags & WSH_ENG_F_DELIVERED);
            free(q);
        }
        return;
    }
    buf = malloc(sizeof(REDIS_ENVELOPE) + redis_taglen + dlen);
    if (buf == NULL) {
        wsh_log(WSH_LOG_ALERT, "out of memory for a %zu-byte publish", dlen);
        free(q);
        return;
    }
    hlen = redis_envelope((char *) buf);
    memcpy(buf + hlen, data, dlen);
    n = redis_channel(ch, kind, name, len);
    if (redisAsyncCommand(redis_cmd.ac, q ? redis_publish_cb : NULL, q,
                          "PUBLISH %b %b", ch, n, buf, hlen + dlen)
        != REDIS_OK)
    {
        if (q != NULL) {
            redis_result(q, flags & WSH_ENG_F_DELIVERED);
        }
        free(q);
    } else if (q != NULL) {
        redis_sent(&redis_cmd);
    }
    free(buf);
}

/* ---- life cycle --------------------------------------------------------- */

static int
redis_init_worker(void)
{
    struct timeval tv = { 0, REDIS_TICK * 1000 };
    int n;

    n = snprintf(redis_tag, sizeof(redis_tag), "%s/%ld",
                 redis_conf()->node_id, (long) getpid());
    redis_taglen = (size_t) n;
    srandom((unsigned) getpid() ^ (unsigned) wsh_monotonic_msec());
    redis_wanted = wsh_hash_new();
    redis_confirmed = wsh_hash_new();
    redis_sub.timer = evtimer_new(wsh_worker.base, redis_timer_cb,
                                  &redis_sub);
    redis_cmd.timer = evtimer_new(wsh_worker.base, redis_timer_cb,
                                  &redis_cmd);
    redis_tick = event_new(wsh_worker.base, -1, EV_PERSIST, redis_tick_cb,
                           NULL);
    if (redis_wanted == NULL || redis_confirmed == NULL
        || redis_presence_init() != WSH_OK || redis_sub.timer == NULL
        || redis_cmd.timer == NULL || redis_tick == NULL)
    {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis engine");
        return WSH_ERROR;
    }
    if (redis_conf()->sentinel_master == NULL) {
        snprintf(redis_host, sizeof(redis_host), "%s", redis_conf()->host);
        redis_port = redis_conf()->port;
    } else if (redis_sentinel_init() != WSH_OK) {
        return WSH_ERROR;
    }
    evtimer_add(redis_tick, &tv);
    redis_connect(&redis_sub);
    redis_connect(&redis_cmd);
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
        wsh_log(WSH_LOG_WARN, "exiting with commands for redis unsent on "
                "the %s connection (%s): presence entries of this worker "
                "expire after presence_ttl", rc->name,
                rc->ac->c.err ? rc->ac->c.errstr : "it did not read in "
                "time");
    }
}

static void
redis_exit_worker(void)
{
    redis_conn_t *conns[2] = { &redis_sub, &redis_cmd };
    redisAsyncContext *ac;
    size_t i;

    redis_exiting = true;
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
    if (redis_tick != NULL) {
        event_free(redis_tick);
        redis_tick = NULL;
    }
    wsh_hash_free(redis_wanted, NULL);
    wsh_hash_free(redis_confirmed, NULL);
    redis_sentinel_exit();
    redis_presence_exit();
    redis_history_exit();
    redis_wanted = redis_confirmed = NULL;
}

bool
redis_cmd_up(void)
{
    return redis_cmd.state == REDIS_UP;
}

/* The breaker's state, and the server in use, for /health. */
static void
redis_info(wsh_server_info_t *info)
{
    static char address[sizeof(redis_host) + 16];

    redis_breaker_info(info);
    if (redis_conf()->unix_socket != NULL) {
        info->engine_address = redis_conf()->unix_socket;
    } else if (redis_host[0] != '\0') {
        snprintf(address, sizeof(address), strchr(redis_host, ':') != NULL
                 ? "[%s]:%u" : "%s:%u", redis_host, redis_port);
        info->engine_address = address;
    }
}

/* Up when both connections are: a worker that can publish but not
 * receive (or the reverse) is cut off all the same. */
static bool
redis_up(void)
{
    return redis_sub.state == REDIS_UP && redis_cmd.state == REDIS_UP;
}

const wsh_engine_ops_t wsh_engine_redis = {
    .name = "redis",
    .init_worker = redis_init_worker,
    .exit_worker = redis_exit_worker,
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .publish = redis_publish,
    .join = redis_room_join,
    .leave = redis_room_leave,
    .who = redis_who,
    .up = redis_up,
    .publish_acked = redis_publish_acked,
    .history = redis_history,
    .info = redis_info,
};
