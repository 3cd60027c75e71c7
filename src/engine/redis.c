/* redis.c -- the Redis engine: workers and hosts meet in one Redis, or
 * in the shards of engine.redis.shards.
 *
 * Each worker holds, per shard, two hiredis async connections on its
 * event_base: one in subscribe mode for the channels of its topics that
 * live there, one for commands (PUBLISH and the presence scripts). Channels are PREFIX "all:" REALM
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
 * The connections, one pair per shard (a Redis server: one, or those of
 * engine.redis.shards), and where a topic lives are in redis_shard.c;
 * the circuit breaker is in redis_breaker.c; with a sentinel the server
 * is the master the sentinels name (redis_sentinel.c).
 */
#include "engine/redis.h"
#include "engine/redis_slot.h"
#include "engine/topic.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDIS_LOG_EVERY 10000       /* ms between repeated log lines */

bool          redis_exiting;
char          redis_tag[128];
size_t        redis_taglen;

const wsh_conf_engine_t *
redis_conf(void)
{
    return &wsh_worker.conf->engine;
}

/* ---- names -------------------------------------------------------------- */

/* The channel of a topic into BUF (REDIS_NAME_MAX bytes); returns its
 * length. In cluster mode the name is a hash tag, PREFIX KIND "{" TAG
 * "}" (redis_slot.h), the unnamed all-topic's PREFIX "all:{}". */
size_t
redis_channel(char *buf, int kind, const char *name, size_t len)
{
    const char *prefix = redis_conf()->prefix;
    size_t n = strlen(prefix);
    const char *part = kind == WSH_TOPIC_ROOM ? "room:"
                       : kind == WSH_TOPIC_CLIENT ? "client:"
                       : len > 0 || redis_clustered() ? "all:" : "all";

    if (redis_clustered()) {
        return redis_slot_key(buf, REDIS_NAME_MAX, prefix, part, name, len);
    }

    memcpy(buf, prefix, n);
    memcpy(buf + n, part, strlen(part));
    n += strlen(part);
    memcpy(buf + n, name, len);
    return n + len;
}


/* Cluster mode: a hash-tagged channel, the name decoded into a static
 * buffer. */
static int
redis_parse_tagged(const char *ch, size_t chlen, int *kind,
    const char **name, size_t *len)
{
    static const char *const parts[] = { "room:", "client:", "all:" };
    static const int kinds[] = { WSH_TOPIC_ROOM, WSH_TOPIC_CLIENT,
                                 WSH_TOPIC_ALL };
    static char buf[WSH_TOPIC_NAME_MAX];
    size_t i;

    for (i = 0; i < 3; i++) {
        if (redis_slot_key_name(ch, chlen, redis_conf()->prefix, parts[i],
                                buf, sizeof(buf), len) == WSH_OK)
        {
            *kind = kinds[i];
            *name = buf;
            return WSH_OK;
        }
    }
    return WSH_ERROR;
}

/* A topic of ours from a channel name: WSH_OK and KIND/NAME/LEN. */
static int
redis_parse_channel(const char *ch, size_t chlen, int *kind,
    const char **name, size_t *len)
{
    const char *prefix = redis_conf()->prefix;
    size_t n = strlen(prefix);

    if (redis_clustered()) {
        return redis_parse_tagged(ch, chlen, kind, name, len);
    }

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

/* ---- subscriptions ------------------------------------------------------ */

void
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
    redis_shard_t *s;
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
    s = rc->shard;
    (void) redis_replied(ac);
    if (strcmp(type, "subscribe") == 0) {
        /* Only now does the subscription count (private "found"). */
        (void) wsh_hash_put(s->confirmed, el[1]->str, el[1]->len,
                            (void *) 1);
        redis_history_subscribed(el[1]->str, el[1]->len);
    } else if (strcmp(type, "unsubscribe") == 0) {
        wsh_hash_remove(s->confirmed, el[1]->str, el[1]->len);
        /* The topic came back while UNSUBSCRIBE was in flight; hiredis
         * 0.14 has just dropped the channel's callback: subscribe again. */
        if (wsh_hash_get(s->wanted, el[1]->str, el[1]->len) != NULL) {
            redisAsyncCommand(ac, redis_sub_cb, NULL, "SUBSCRIBE %b",
                              el[1]->str, el[1]->len);
            redis_sent(rc);
        }
    }
}

static void
redis_send_sub(redis_shard_t *s, const char *cmd, const char *ch,
    size_t chlen)
{
    if (redis_clustered()) {
        redis_cluster_ssub_send(s, cmd[0] == 'S', ch, chlen);
        return;
    }
    if (s->sub.state != REDIS_UP) {
        return;         /* done on connect */
    }
    if (redisAsyncCommand(s->sub.ac, redis_sub_cb, NULL, "%s %b", cmd, ch,
                          chlen) == REDIS_OK)
    {
        redis_sent(&s->sub);
    }
}

/* On (re)connect of S's subscriber: SUBSCRIBE every channel of our
 * local topics there. */
void
redis_subscribe_all(redis_shard_t *s)
{
    wsh_hash_iter_t it;
    const void *key;
    size_t len;

    wsh_hash_iter_init(s->wanted, &it);
    while (wsh_hash_next(&it, &key, &len, NULL)) {
        redis_send_sub(s, "SUBSCRIBE", key, len);
    }
}

/* S's subscriber went away: no subscription holds, and messages
 * published meanwhile pass us by. */
void
redis_subscriptions_lost(redis_shard_t *s)
{
    wsh_hash_free(s->confirmed, NULL);
    s->confirmed = wsh_hash_new();
    s->check_rooms = true;
}

bool
redis_subscribed(const redis_shard_t *s, const char *ch, size_t n)
{
    return s->confirmed != NULL && wsh_hash_get(s->confirmed, ch, n) != NULL;
}

static void
redis_subscribe(int kind, const char *name, size_t len)
{
    char ch[REDIS_NAME_MAX];
    redis_shard_t *s;
    size_t n;

    if (len > WSH_TOPIC_NAME_MAX) {
        return;
    }
    n = redis_channel(ch, kind, name, len);
    s = redis_shard_of_channel(kind, ch, n);
    if (wsh_hash_put(s->wanted, ch, n, (void *) 1) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "out of memory for a subscription");
        return;
    }
    redis_send_sub(s, "SUBSCRIBE", ch, n);
}

static void
redis_unsubscribe(int kind, const char *name, size_t len)
{
    char ch[REDIS_NAME_MAX];
    redis_shard_t *s;
    size_t n;

    if (len > WSH_TOPIC_NAME_MAX) {
        return;
    }
    n = redis_channel(ch, kind, name, len);
    s = redis_shard_of_channel(kind, ch, n);
    wsh_hash_remove(s->wanted, ch, n);
    redis_send_sub(s, "UNSUBSCRIBE", ch, n);
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
redis_publish_done(redis_req_t *q, const redisReply *reply)
{
    char ch[REDIS_NAME_MAX];
    long long n;
    size_t m;
    bool found;

    if (redis_exiting) {
        free(q);
        return;
    }
    found = q->flags & WSH_ENG_F_DELIVERED;
    if (!found && reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        n = reply->integer;
        /* We are among the receivers when we are subscribed to it. */
        m = redis_channel(ch, WSH_TOPIC_CLIENT, q->name, q->len);
        if (redis_subscribed(redis_shard_of_channel(WSH_TOPIC_CLIENT, ch, m),
                             ch, m))
        {
            n--;
        }
        found = n > 0;
    }
    redis_result(q, found);
    free(q);
}

static void
redis_publish_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    (void) redis_replied(ac);
    redis_publish_done(privdata, r);
}

/* Cluster mode: an SPUBLISH kept until its reply, to send again to the
 * slot's master after a MOVED or an ASK. */
typedef struct {
    redis_req_t *q;             /* a client channel's, else NULL */
    bool         redirected;
    size_t       chlen;
    size_t       dlen;
    char         data[];        /* the channel, then the message */
} redis_spub_t;

static int redis_spublish_send(redis_shard_t *s, redis_spub_t *p);

static void
redis_spublish_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_spub_t *p = privdata;
    redis_shard_t *to;
    bool ask;

    if (redis_replied(ac) != NULL && !redis_exiting && !p->redirected
        && (to = redis_cluster_redirected(r, &ask)) != NULL)
    {
        p->redirected = true;
        if (redis_spublish_send(to, p) == WSH_OK) {
            return;
        }
    }
    if (p->q != NULL) {
        redis_publish_done(p->q, r);
    }
    free(p);
}

static int
redis_spublish_send(redis_shard_t *s, redis_spub_t *p)
{
    if (redisAsyncCommand(s->cmd.ac, redis_spublish_cb, p, "SPUBLISH %b %b",
                          p->data, p->chlen, p->data + p->chlen, p->dlen)
        != REDIS_OK)
    {
        return WSH_ERROR;
    }
    redis_sent(&s->cmd);
    redis_shard_count(s, 0, 1);
    return WSH_OK;
}

/* Cluster mode: SPUBLISH the envelope and DATA (DLEN bytes) to channel
 * CH on S, Q (may be NULL) told the result. One allocation holds the
 * command for its retries: the message is written there, not copied. */
static int
redis_spublish(redis_shard_t *s, const char *ch, size_t n, const void *data,
    size_t dlen, redis_req_t *q)
{
    redis_spub_t *p = malloc(sizeof(*p) + n + sizeof(REDIS_ENVELOPE)
                             + redis_taglen + dlen);
    size_t hlen;

    if (p == NULL) {
        return WSH_ERROR;
    }
    p->q = q;
    p->redirected = false;
    p->chlen = n;
    memcpy(p->data, ch, n);
    hlen = redis_envelope(p->data + n);
    memcpy(p->data + n + hlen, data, dlen);
    p->dlen = hlen + dlen;
    if (redis_spublish_send(s, p) != WSH_OK) {
        free(p);
        return WSH_ERROR;
    }
    return WSH_OK;
}

/* A publish for shard S, which is down: counted, logged once in a
 * while. */
static void
redis_dropped_publish(redis_shard_t *s)
{
    wsh_msec_t now = wsh_monotonic_msec();

    s->dropped++;
    wsh_stat_error(WSH_ERR_ENGINE_PUBLISH);
    if (s->drop_logged == 0 || now - s->drop_logged >= REDIS_LOG_EVERY) {
        wsh_log(WSH_LOG_WARN, "redis%s is down: %lu publish(es) not sent to "
                "other workers and hosts", s->label, s->dropped);
        s->drop_logged = now;
        s->dropped = 0;
    }
}

static void
redis_publish(int kind, const char *name, size_t len, int flags,
    const char *sender, size_t slen, uint64_t conn_id, const void *data,
    size_t dlen)
{
    char ch[REDIS_NAME_MAX];
    redis_req_t *q = NULL;
    redis_shard_t *s;
    u_char *buf;
    size_t n, hlen;
    bool ok;

    if (len > WSH_TOPIC_NAME_MAX) {
        return;
    }
    if (kind == WSH_TOPIC_CLIENT) {
        q = redis_req(name, len, sender, slen, conn_id, flags);
        if (q == NULL) {
            return;
        }
    }
    n = redis_channel(ch, kind, name, len);
    s = redis_shard_of_channel(kind, ch, n);
    if (!redis_cmd_up(s)) {
        redis_dropped_publish(s);
        goto failed;
    }
    if (redis_clustered()) {
        if (redis_spublish(s, ch, n, data, dlen, q) != WSH_OK) {
            goto failed;
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
    ok = redisAsyncCommand(s->cmd.ac, q ? redis_publish_cb : NULL, q,
                           "PUBLISH %b %b", ch, n, buf, hlen + dlen)
         == REDIS_OK;
    free(buf);
    if (!ok) {
        goto failed;
    }
    if (q != NULL) {
        redis_sent(&s->cmd);
        redis_shard_count(s, 0, 1);
    } else {
        redis_shard_count(s, 1, 1);     /* no reply awaited */
    }
    return;

failed:
    /* A private message not sent: its sender learns whether it was
     * delivered here. */
    if (q != NULL) {
        redis_result(q, flags & WSH_ENG_F_DELIVERED);
        free(q);
    }
}

/* ---- life cycle --------------------------------------------------------- */

static wsh_engine_shard_t *redis_shard_info;    /* for /health */

static int
redis_init_worker(void)
{
    int n;

    n = snprintf(redis_tag, sizeof(redis_tag), "%s/%ld",
                 redis_conf()->node_id, (long) getpid());
    redis_taglen = (size_t) n;
    srandom((unsigned) getpid() ^ (unsigned) wsh_monotonic_msec());
    redis_shard_info = calloc(redis_clustered() ? WSH_REDIS_SHARDS_MAX
                                                : redis_conf()->nservers,
                              sizeof(*redis_shard_info));
    if (redis_shard_info == NULL || redis_presence_init() != WSH_OK) {
        wsh_log(WSH_LOG_EMERG, "out of memory for the redis engine");
        return WSH_ERROR;
    }
    return redis_shards_init();
}

static void
redis_exit_worker(void)
{
    redis_exiting = true;
    redis_shards_exit();
    redis_presence_exit();
    redis_history_exit();
    free(redis_shard_info);
    redis_shard_info = NULL;
}

/* Each shard's state, and the engine's as one (the worst breaker, the
 * sum of reconnects, the most failures, the address without shards),
 * for /health. */
static void
redis_info(wsh_server_info_t *info)
{
    static const int rank[] = { 0, 2, 1 };  /* closed, open, half-open */
    redis_shard_t *s, *worst = &redis_shards[0];
    wsh_engine_shard_t *d;
    size_t i;

    for (i = 0; i < redis_nshards; i++) {
        s = &redis_shards[i];
        d = &redis_shard_info[i];
        d->address = s->address[0] != '\0' ? s->address : NULL;
        d->up = redis_shard_up(s);
        d->role = s->role[0] != '\0' && redis_cmd_up(s) ? s->role : NULL;
        d->breaker = redis_breaker_name(s);
        d->reconnects = s->breaker.reconnects;
        d->failures = s->breaker.failures;
        info->engine_reconnects += d->reconnects;
        if (d->failures > info->engine_failures) {
            info->engine_failures = d->failures;
        }
        if (rank[s->breaker.state] > rank[worst->breaker.state]) {
            worst = s;
        }
    }
    info->engine_breaker = redis_breaker_name(worst);
    info->engine_address = redis_conf()->sharded ? NULL
                                                 : redis_shard_info[0].address;
    info->engine_shards = redis_shard_info;
    info->engine_nshards = redis_nshards;
    info->engine_sharded = redis_conf()->sharded;
}

static bool
redis_up(void)
{
    return redis_all_up();
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
