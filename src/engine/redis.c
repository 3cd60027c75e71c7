/* redis.c -- the Redis engine: workers and hosts meet in one Redis.
 *
 * Each worker holds two hiredis async connections on its event_base: one
 * in subscribe mode for the channels of its topics, one for commands
 * (PUBLISH and the presence scripts). Channels are PREFIX "all",
 * PREFIX "room:" NAME and PREFIX "client:" ID. What wshub publishes is
 * the envelope line "#wshub1 NODE/PID\n" followed by the data; the
 * origin worker skips its own data messages (it delivered locally
 * first), and a message without the envelope (a backend's redis-cli
 * PUBLISH) is delivered as is. A control message is an envelope whose
 * data starts with \x02:
 *
 *     \x02P J CONN_ID ID      ID joined the room (CONN_ID on the origin)
 *     \x02P L 0 ID            ID left the room (last entry gone)
 *
 * Presence lives in the sorted set PREFIX "presence:" ROOM: members
 * "ID\tNODE/PID" (one per id and worker; the worker counts its own
 * connections), scores the expiry in ms of Redis TIME, so hosts with
 * skewed clocks agree on what expired. Every worker re-scores its own
 * entries every presence_ttl/3 and sweeps the expired ones of its rooms,
 * announcing who left: the Lua scripts make each step atomic, so a
 * crashed node's members are announced gone exactly once.
 *
 * The worker part of the tag is the pid, not the slot: after a reload a
 * draining worker and its successor share a slot, not a pid.
 *
 * hiredis 0.14 (Debian 12) has no timeouts: connect and command timeouts
 * are libevent timers. Reconnects run from a back-off timer, never from
 * a hiredis callback; ac->data is NULL once we let go of a context and
 * every callback then returns.
 */
#include "engine/engine.h"
#include "engine/topic.h"
#include "core/hash.h"
#include "core/log.h"
#include "net/conn.h"
#include "process/worker.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDIS_ENVELOPE  "#wshub1 "
#define REDIS_TICK      250         /* ms between timeout checks */
#define REDIS_LOG_EVERY 10000       /* ms between repeated log lines */

typedef enum {
    REDIS_DOWN = 0,             /* waiting for the reconnect timer */
    REDIS_CONNECTING,
    REDIS_UP
} redis_state_e;

typedef struct {
    const char         *name;       /* "subscriber" or "command" */
    redisAsyncContext  *ac;
    redis_state_e       state;
    struct event       *timer;      /* reconnect or connect timeout */
    wsh_msec_t          backoff;    /* next reconnect delay, un-jittered */
    unsigned            pending;    /* commands without a reply */
    wsh_msec_t          progress;   /* last reply, or first pending send */
    wsh_msec_t          logged;     /* last failure logged */
} redis_conn_t;

/* Context of a reply callback: the connection it belongs to. */
typedef struct {
    redis_conn_t *rc;
    uint64_t      conn_id;
    int           flags;
    size_t        len;          /* room or recipient */
    size_t        slen;         /* sender */
    char          name[];       /* name, then sender */
} redis_req_t;

static redis_conn_t  redis_sub = { .name = "subscriber" };
static redis_conn_t  redis_cmd = { .name = "command" };
static struct event *redis_tick;
static wsh_msec_t    redis_refreshed;
static bool          redis_exiting;

static char          redis_tag[128];    /* "NODE/PID" */
static size_t        redis_taglen;
static wsh_hash_t   *redis_wanted;      /* channel -> 1: local topics */
static wsh_hash_t   *redis_confirmed;   /* channel -> 1: Redis said so */
static wsh_hash_t   *redis_rooms;       /* room -> (id -> local count) */

static wsh_msec_t    redis_drop_logged;
static unsigned long redis_dropped;

/* Shared head of the scripts: NOW from Redis TIME (one clock for all
 * hosts) and the id of an entry "ID\tNODE/PID". */
#define REDIS_LUA_HEAD \
    "local t = redis.call('TIME')\n" \
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n" \
    "local function idof(e) return string.match(e, '^([^\\t]*)') end\n"

/* Join. ARGV: ttl, entry, id, channel, joined event. Adds the entry,
 * returns the live ids (the joiner's included) and announces the id
 * unless it was present already. */
static const char redis_lua_join[] = REDIS_LUA_HEAD
    "local ids, seen = {}, {}\n"
    "for _, e in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1],\n"
    "                               '(' .. now, '+inf')) do\n"
    "  local id = idof(e)\n"
    "  if not seen[id] then seen[id] = true; ids[#ids + 1] = id end\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now + ARGV[1], ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[1], 2 * ARGV[1])\n"
    "if not seen[ARGV[3]] then\n"
    "  ids[#ids + 1] = ARGV[3]\n"
    "  redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
    "end\n"
    "return ids\n";

/* Leave. ARGV: entry, id, channel, left event. Announces the id when
 * no live entry of it remains. */
static const char redis_lua_leave[] = REDIS_LUA_HEAD
    "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
    "for _, e in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1],\n"
    "                               '(' .. now, '+inf')) do\n"
    "  if idof(e) == ARGV[2] then return 0 end\n"
    "end\n"
    "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
    "return 1\n";

/* Refresh and sweep. ARGV: ttl, channel, left event prefix, entries...
 * Re-scores this worker's entries, removes the expired ones and
 * announces each id with no live entry left, once. */
static const char redis_lua_refresh[] = REDIS_LUA_HEAD
    "for i = 4, #ARGV do\n"
    "  redis.call('ZADD', KEYS[1], now + ARGV[1], ARGV[i])\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], 2 * ARGV[1])\n"
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "if #gone == 0 then return 0 end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local alive, told = {}, {}\n"
    "for _, e in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  alive[idof(e)] = true\n"
    "end\n"
    "for _, e in ipairs(gone) do\n"
    "  local id = idof(e)\n"
    "  if not alive[id] and not told[id] then\n"
    "    told[id] = true\n"
    "    redis.call('PUBLISH', ARGV[2], ARGV[3] .. id)\n"
    "  end\n"
    "end\n"
    "return #gone\n";

static void redis_connect(redis_conn_t *rc);
static void redis_subscribe_all(void);
static void redis_refresh(void);

static const wsh_conf_engine_t *
redis_conf(void)
{
    return &wsh_worker.conf->engine;
}

/* ---- names -------------------------------------------------------------- */

/* The channel of a topic into BUF (at least 16 + prefix + name bytes);
 * returns its length. */
static size_t
redis_channel(char *buf, int kind, const char *name, size_t len)
{
    const char *prefix = redis_conf()->prefix;
    size_t n = strlen(prefix);
    const char *part = kind == WSH_TOPIC_ROOM ? "room:"
                       : kind == WSH_TOPIC_CLIENT ? "client:" : "all";

    memcpy(buf, prefix, n);
    memcpy(buf + n, part, strlen(part));
    n += strlen(part);
    if (kind != WSH_TOPIC_ALL) {
        memcpy(buf + n, name, len);
        n += len;
    }
    return n;
}

#define REDIS_NAME_MAX (WSH_TOPIC_NAME_MAX + 512)

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

/* The presence key of ROOM into BUF; returns its length. */
static size_t
redis_presence_key(char *buf, const char *room, size_t len)
{
    size_t n = strlen(redis_conf()->prefix);

    memcpy(buf, redis_conf()->prefix, n);
    memcpy(buf + n, "presence:", 9);
    memcpy(buf + n + 9, room, len);
    return n + 9 + len;
}

/* This worker's presence entry of ID, "ID\tNODE/PID", into BUF. */
static size_t
redis_entry(char *buf, const char *id, size_t idlen)
{
    memcpy(buf, id, idlen);
    buf[idlen] = '\t';
    memcpy(buf + idlen + 1, redis_tag, redis_taglen);
    return idlen + 1 + redis_taglen;
}

/* "#wshub1 NODE/PID\n" into BUF; returns its length. */
static size_t
redis_envelope(char *buf)
{
    memcpy(buf, REDIS_ENVELOPE, sizeof(REDIS_ENVELOPE) - 1);
    memcpy(buf + sizeof(REDIS_ENVELOPE) - 1, redis_tag, redis_taglen);
    buf[sizeof(REDIS_ENVELOPE) - 1 + redis_taglen] = '\n';
    return sizeof(REDIS_ENVELOPE) + redis_taglen;
}

/* ---- connections -------------------------------------------------------- */

static void
redis_log_failure(redis_conn_t *rc, const char *what, const char *err)
{
    wsh_msec_t now = wsh_monotonic_msec();
    const wsh_conf_engine_t *e = redis_conf();

    /* Once per REDIS_LOG_EVERY while it stays down: not at every retry. */
    if (rc->logged != 0 && now - rc->logged < REDIS_LOG_EVERY) {
        return;
    }
    rc->logged = now;
    if (e->unix_socket != NULL) {
        wsh_log(WSH_LOG_ERR, "redis %s connection to %s: %s: %s, retrying",
                rc->name, e->unix_socket, what, err);
    } else {
        wsh_log(WSH_LOG_ERR, "redis %s connection to %s:%u: %s: %s, "
                "retrying", rc->name, e->host, e->port, what, err);
    }
}

/* Arm the reconnect timer: the back-off with jitter in [1/2, 1], then
 * doubled up to reconnect_max. */
static void
redis_schedule(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    wsh_msec_t delay;
    struct timeval tv;

    rc->state = REDIS_DOWN;
    rc->pending = 0;
    if (redis_exiting) {
        return;
    }
    if (rc->backoff == 0) {
        rc->backoff = e->reconnect_min;
    }
    delay = rc->backoff / 2 + (wsh_msec_t) random() % (rc->backoff / 2 + 1);
    rc->backoff = rc->backoff * 2 > e->reconnect_max ? e->reconnect_max
                                                     : rc->backoff * 2;
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
    }
    rc->ac = NULL;
    redis_schedule(rc);
}

/* Let go of a live context from outside hiredis callbacks (a timer):
 * free it now, its pending callbacks see ac->data == NULL. */
static void
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
    if (status != REDIS_OK) {
        wsh_log(WSH_LOG_ERR, "redis %s connection lost: %s", rc->name,
                ac->errstr);
        rc->logged = wsh_monotonic_msec();
    }
    redis_lost(rc);
}

/* Count a command sent on RC, for the command timeout. */
static void
redis_sent(redis_conn_t *rc)
{
    if (rc->pending++ == 0) {
        rc->progress = wsh_monotonic_msec();
    }
}

/* A reply arrived on the connection of AC; NULL if we let go of it. */
static redis_conn_t *
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
        redisAsyncDisconnect(ac);   /* allowed in a reply callback */
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
        redis_lost(rc);
        return;
    }
    rc->state = REDIS_UP;
    rc->backoff = 0;
    if (rc->logged != 0) {
        wsh_log(WSH_LOG_NOTICE, "redis %s connection restored", rc->name);
        rc->logged = 0;
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
    if (rc == &redis_sub) {
        redis_subscribe_all();
        return;
    }
    if (e->db != 0) {
        redisAsyncCommand(ac, redis_setup_cb, "SELECT", "SELECT %u", e->db);
        redis_sent(rc);
    }
    redis_refresh();    /* a restarted Redis lost our presence */
}

static void
redis_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    redis_conn_t *rc = arg;

    (void) fd;
    (void) what;
    if (rc->state == REDIS_CONNECTING) {
        redis_log_failure(rc, "connect", "timed out");
        redis_drop(rc);
    } else if (rc->state == REDIS_DOWN) {
        redis_connect(rc);
    }
}

static void
redis_connect(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    redisAsyncContext *ac;
    struct timeval tv;

    tv.tv_sec = (time_t) (e->connect_timeout / 1000);
    tv.tv_usec = (suseconds_t) (e->connect_timeout % 1000) * 1000;
#if HIREDIS_MAJOR >= 1
    {
        redisOptions opt;

        memset(&opt, 0, sizeof(opt));
        if (e->unix_socket != NULL) {
            REDIS_OPTIONS_SET_UNIX(&opt, e->unix_socket);
        } else {
            REDIS_OPTIONS_SET_TCP(&opt, e->host, (int) e->port);
        }
        opt.connect_timeout = &tv;
        ac = redisAsyncConnectWithOptions(&opt);
    }
#else
    ac = e->unix_socket != NULL ? redisAsyncConnectUnix(e->unix_socket)
                                : redisAsyncConnect(e->host, (int) e->port);
#endif
    if (ac == NULL || ac->err) {
        redis_log_failure(rc, "connect", ac ? ac->errstr : strerror(ENOMEM));
        if (ac != NULL) {
            redisAsyncFree(ac);
        }
        redis_schedule(rc);
        return;
    }
    ac->data = rc;
    if (redisLibeventAttach(ac, wsh_worker.base) != REDIS_OK) {
        ac->data = NULL;
        redisAsyncFree(ac);
        redis_log_failure(rc, "connect", "redisLibeventAttach() failed");
        redis_schedule(rc);
        return;
    }
    redisAsyncSetConnectCallback(ac, redis_connect_cb);
    redisAsyncSetDisconnectCallback(ac, redis_disconnect_cb);
    rc->ac = ac;
    rc->state = REDIS_CONNECTING;
    rc->pending = 0;
    evtimer_add(rc->timer, &tv);
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
            redis_drop(conns[i]);
        }
    }
    if (now - redis_refreshed >= redis_conf()->presence_ttl / 3) {
        redis_refresh();
    }
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
        /* "\x02P J|L CONN_ID ID": presence, also our own (the origin's
         * other members need it too). */
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
            wsh_engine_presence(name, nlen, id, (size_t) (p + len - id),
                                joined, own ? conn_id : 0);
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

static redis_req_t *
redis_req(const char *name, size_t len, const char *sender, size_t slen,
    uint64_t conn_id, int flags)
{
    redis_req_t *q = malloc(sizeof(*q) + len + slen);

    if (q == NULL) {
        return NULL;
    }
    q->rc = &redis_cmd;
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

/* ---- presence ----------------------------------------------------------- */

/* Members of ROOM on this worker only: the answer while Redis is down. */
static void
redis_local_members(const char *room, size_t len, uint64_t conn_id)
{
    wsh_hash_t *ids = wsh_hash_get(redis_rooms, room, len);
    wsh_hash_iter_t it;
    const void *key;
    size_t klen, total = 0;
    u_char *buf, *p;
    uint16_t l;

    if (ids == NULL) {
        return;
    }
    wsh_hash_iter_init(ids, &it);
    while (wsh_hash_next(&it, &key, &klen, NULL)) {
        total += 2 + klen;
    }
    buf = malloc(total + 1);
    if (buf == NULL) {
        return;
    }
    p = buf;
    wsh_hash_iter_init(ids, &it);
    while (wsh_hash_next(&it, &key, &klen, NULL)) {
        l = (uint16_t) klen;
        memcpy(p, &l, 2);
        memcpy(p + 2, key, klen);
        p += 2 + klen;
    }
    wsh_engine_members(room, len, conn_id, buf, total);
    free(buf);
}

static void
redis_join_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_req_t *q = privdata;
    u_char *buf, *p;
    size_t i, total = 0;
    uint16_t l;

    (void) redis_replied(ac);
    if (redis_exiting) {
        free(q);
        return;
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            wsh_log(WSH_LOG_ERR, "redis join script failed: %s", reply->str);
        }
        redis_local_members(q->name, q->len, q->conn_id);
        free(q);
        return;
    }
    for (i = 0; i < reply->elements; i++) {
        total += 2 + reply->element[i]->len;
    }
    buf = malloc(total + 1);
    if (buf != NULL) {
        p = buf;
        for (i = 0; i < reply->elements; i++) {
            l = (uint16_t) reply->element[i]->len;
            memcpy(p, &l, 2);
            memcpy(p + 2, reply->element[i]->str, l);
            p += 2 + l;
        }
        wsh_engine_members(q->name, q->len, q->conn_id, buf, total);
        free(buf);
    }
    free(q);
}

/* The event "ENVELOPE\x02P J|L CONN_ID ID" into BUF (room for the
 * envelope, 32 bytes and the id). */
static size_t
redis_event(char *buf, bool joined, uint64_t conn_id, const char *id,
    size_t idlen)
{
    size_t n = redis_envelope(buf);

    n += (size_t) sprintf(buf + n, "\x02P %c %" PRIu64 " ", joined ? 'J' : 'L',
                          conn_id);
    memcpy(buf + n, id, idlen);
    return n + idlen;
}

static void
redis_join(const char *room, size_t len, const char *id, size_t idlen,
    uint64_t conn_id)
{
    char key[REDIS_NAME_MAX], ch[REDIS_NAME_MAX], ttl[24];
    char entry[UINT16_MAX + 160], ev[UINT16_MAX + 200];
    wsh_hash_t *ids = wsh_hash_get(redis_rooms, room, len);
    uintptr_t count;
    redis_req_t *q;
    size_t elen;

    if (len > WSH_TOPIC_NAME_MAX) {
        return;
    }
    if (ids == NULL) {
        ids = wsh_hash_new();
        if (ids == NULL || wsh_hash_put(redis_rooms, room, len, ids) != WSH_OK)
        {
            wsh_hash_free(ids, NULL);
            wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
            return;
        }
    }
    count = (uintptr_t) wsh_hash_get(ids, id, idlen);
    if (wsh_hash_put(ids, id, idlen, (void *) (count + 1)) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
        return;
    }
    if (redis_cmd.state != REDIS_UP) {
        /* Down: this worker's view; the refresh on reconnect adds us. */
        redis_local_members(room, len, conn_id);
        if (count == 0) {
            wsh_engine_presence(room, len, id, idlen, true, conn_id);
        }
        return;
    }
    q = redis_req(room, len, NULL, 0, conn_id, 0);
    if (q == NULL) {
        return;
    }
    elen = redis_entry(entry, id, idlen);
    snprintf(ttl, sizeof(ttl), "%" PRIu64,
             (uint64_t) redis_conf()->presence_ttl);
    if (redisAsyncCommand(redis_cmd.ac, redis_join_cb, q,
                          "EVAL %s 1 %b %s %b %b %b %b", redis_lua_join, key,
                          redis_presence_key(key, room, len), ttl, entry,
                          elen, id, idlen, ch,
                          redis_channel(ch, WSH_TOPIC_ROOM, room, len), ev,
                          redis_event(ev, true, conn_id, id, idlen))
        != REDIS_OK)
    {
        redis_local_members(room, len, conn_id);
        free(q);
        return;
    }
    redis_sent(&redis_cmd);
}

static void
redis_leave(const char *room, size_t len, const char *id, size_t idlen)
{
    char key[REDIS_NAME_MAX], ch[REDIS_NAME_MAX];
    char entry[UINT16_MAX + 160], ev[UINT16_MAX + 200];
    wsh_hash_t *ids = wsh_hash_get(redis_rooms, room, len);
    uintptr_t count;

    count = ids ? (uintptr_t) wsh_hash_get(ids, id, idlen) : 0;
    if (count == 0) {
        return;
    }
    if (count > 1) {
        (void) wsh_hash_put(ids, id, idlen, (void *) (count - 1));
        return;         /* another connection of the id is still here */
    }
    wsh_hash_remove(ids, id, idlen);
    if (wsh_hash_count(ids) == 0) {
        wsh_hash_remove(redis_rooms, room, len);
        wsh_hash_free(ids, NULL);
    }
    if (redis_cmd.state != REDIS_UP) {
        wsh_engine_presence(room, len, id, idlen, false, 0);
        return;
    }
    redisAsyncCommand(redis_cmd.ac, NULL, NULL, "EVAL %s 1 %b %b %b %b %b",
                      redis_lua_leave, key,
                      redis_presence_key(key, room, len), entry,
                      redis_entry(entry, id, idlen), id, idlen, ch,
                      redis_channel(ch, WSH_TOPIC_ROOM, room, len), ev,
                      redis_event(ev, false, 0, id, idlen));
}

static void
redis_refresh_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;

    (void) privdata;
    if (redis_replied(ac) == NULL || reply == NULL) {
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        wsh_log(WSH_LOG_ERR, "redis presence refresh failed: %s", reply->str);
    }
}

/* Re-score our entries of every room we have members in and sweep the
 * expired ones: one pipelined EVAL per room. */
static void
redis_refresh(void)
{
    char key[REDIS_NAME_MAX], ch[REDIS_NAME_MAX], ttl[24], ev[200];
    wsh_hash_iter_t it, iit;
    const void *room, *id;
    size_t rlen, idlen, n, i, argc;
    void *ids;
    const char **argv;
    size_t *argl;

    redis_refreshed = wsh_monotonic_msec();
    if (redis_cmd.state != REDIS_UP) {
        return;
    }
    snprintf(ttl, sizeof(ttl), "%" PRIu64,
             (uint64_t) redis_conf()->presence_ttl);
    wsh_hash_iter_init(redis_rooms, &it);
    while (wsh_hash_next(&it, &room, &rlen, &ids)) {
        n = wsh_hash_count(ids);
        argc = 7 + n;
        argv = calloc(argc, sizeof(*argv));
        argl = calloc(argc, sizeof(*argl));
        if (argv == NULL || argl == NULL) {
            goto next;
        }
        argv[0] = "EVAL";
        argv[1] = redis_lua_refresh;
        argv[2] = "1";
        argv[3] = key;
        argl[3] = redis_presence_key(key, room, rlen);
        argv[4] = ttl;
        argv[5] = ch;
        argl[5] = redis_channel(ch, WSH_TOPIC_ROOM, room, rlen);
        argv[6] = ev;
        argl[6] = redis_event(ev, false, 0, "", 0);
        i = 7;
        wsh_hash_iter_init(ids, &iit);
        while (wsh_hash_next(&iit, &id, &idlen, NULL) && i < argc) {
            argl[i] = idlen + 1 + redis_taglen;
            argv[i] = malloc(argl[i]);
            if (argv[i] == NULL) {
                break;
            }
            (void) redis_entry((char *) argv[i], id, idlen);
            i++;
        }
        for (n = 0; n < 7; n++) {
            if (argl[n] == 0) {
                argl[n] = strlen(argv[n]);
            }
        }
        if (redisAsyncCommandArgv(redis_cmd.ac, redis_refresh_cb, NULL,
                                  (int) i, argv, argl) == REDIS_OK)
        {
            redis_sent(&redis_cmd);
        }
        while (i > 7) {
            free((void *) argv[--i]);
        }
    next:
        free(argv);
        free(argl);
    }
}

/* ---- life cycle --------------------------------------------------------- */

static void
redis_free_room(void *p)
{
    wsh_hash_free(p, NULL);
}

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
    redis_rooms = wsh_hash_new();
    redis_sub.timer = evtimer_new(wsh_worker.base, redis_timer_cb,
                                  &redis_sub);
    redis_cmd.timer = evtimer_new(wsh_worker.base, redis_timer_cb,
                                  &redis_cmd);
    redis_tick = event_new(wsh_worker.base, -1, EV_PERSIST, redis_tick_cb,
                           NULL);
    if (redis_wanted == NULL || redis_confirmed == NULL
        || redis_rooms == NULL || redis_sub.timer == NULL
        || redis_cmd.timer == NULL || redis_tick == NULL)
    {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis engine");
        return WSH_ERROR;
    }
    evtimer_add(redis_tick, &tv);
    redis_refreshed = wsh_monotonic_msec();
    redis_connect(&redis_sub);
    redis_connect(&redis_cmd);
    return WSH_OK;
}

/* Push out what hiredis still buffers (the last leaves), without
 * blocking: a few tries, then presence expiry does the rest. */
static void
redis_flush(redisAsyncContext *ac)
{
    int done = 0, tries;

    for (tries = 0; tries < 3 && !done; tries++) {
        if (redisBufferWrite(&ac->c, &done) != REDIS_OK) {
            break;
        }
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
                redis_flush(ac);
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
    wsh_hash_free(redis_rooms, redis_free_room);
    redis_wanted = redis_confirmed = redis_rooms = NULL;
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
    .join = redis_join,
    .leave = redis_leave,
    .up = redis_up,
};
