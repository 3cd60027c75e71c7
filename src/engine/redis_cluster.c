/* redis_cluster.c -- engine.redis.cluster: the shards are the masters
 * of a Redis Cluster, found with CLUSTER SLOTS, and a topic lives on the
 * master that serves the hash slot of its channel.
 *
 * Every name of a topic is hash-tagged (redis_slot.h): its channel, its
 * presence and its history keys share one slot, so one master holds
 * them and its scripts touch one slot. Each shard (a master) has the
 * usual command connection (hiredis async: SPUBLISH and the scripts)
 * and, instead of a SUBSCRIBE connection, a sharded pub/sub one
 * (redis_ssub.c: hiredis's async layer cannot carry SSUBSCRIBE), both
 * under the shard's back-off and circuit breaker (redis_shard.c).
 *
 * The map is asked of the seeds in turn, then of the known masters: at
 * start, when a subscriber connection is lost, on a -MOVED or a dropped
 * subscription (the slot moved), and every REDIS_CLUSTER_EVERY; at most
 * once per REDIS_CLUSTER_MIN. A new map keeps each master's shard; a new
 * master takes the shard of a master that no longer is one and served
 * its first slot (a failover: the promoted replica), like a Sentinel
 * switch (redis_restart), so that shard's rooms with history check their
 * position once it is back; then the subscriptions move to the masters
 * of their slots (redis_cluster_rehome).
 *
 * Before the first map every topic is on shard 0, which is down: its
 * channels wait in shard 0's wanted set and move when the map comes.
 */
#include "engine/redis.h"
#include "engine/redis_cluster_map.h"
#include "engine/redis_ssub.h"
#include "engine/topic.h"
#include "core/log.h"
#include "core/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDIS_CLUSTER_MIN    500     /* ms between two maps, at least */
#define REDIS_CLUSTER_EVERY  5000    /* ms between periodic maps */
#define REDIS_CLUSTER_NEXT   100     /* ms before asking the next address */

/* Slot -> index in redis_shards. */
static uint8_t            redis_slot_shard[REDIS_SLOTS];
static redisAsyncContext *redis_map_ac;        /* asking for the map */
static struct event      *redis_map_timer;
static size_t             redis_map_next;      /* next address to ask */
static wsh_msec_t         redis_map_asked;     /* last request sent */
static wsh_msec_t         redis_map_got;       /* last map applied */
static bool               redis_map_due;       /* asked for while busy */

static void redis_cluster_ask(void);

bool
redis_clustered(void)
{
    return redis_conf()->cluster_seeds != NULL;
}

redis_shard_t *
redis_cluster_shard(const char *ch, size_t n)
{
    return &redis_shards[redis_slot_shard[redis_slot(ch, n)]];
}

/* ---- the map ------------------------------------------------------------ */

static void
redis_map_arm(wsh_msec_t delay)
{
    struct timeval tv;

    tv.tv_sec = (time_t) (delay / 1000);
    tv.tv_usec = (suseconds_t) (delay % 1000) * 1000;
    evtimer_add(redis_map_timer, &tv);
}

/* Ask for the map again, soon: rate-limited, one request at a time. */
void
redis_cluster_refresh(void)
{
    wsh_msec_t now = wsh_monotonic_msec();

    if (redis_exiting || redis_map_timer == NULL) {
        return;
    }
    if (redis_map_ac != NULL) {
        redis_map_due = true;
        return;
    }
    redis_map_arm(now - redis_map_asked >= REDIS_CLUSTER_MIN ? 0
                  : REDIS_CLUSTER_MIN - (now - redis_map_asked));
}

/* The shard of the master at HOST:PORT, or NULL. */
static redis_shard_t *
redis_cluster_find(const char *host, unsigned port)
{
    size_t i;

    for (i = 0; i < redis_nshards; i++) {
        if (!redis_shards[i].retired && redis_shards[i].port == port
            && strcmp(redis_shards[i].host, host) == 0)
        {
            return &redis_shards[i];
        }
    }
    return NULL;
}

/* The shard that takes the new master N (index K in M): the one that
 * served its first slot when its node is no master in M any more (a
 * failover), else a retired one, else a new one. */
static redis_shard_t *
redis_cluster_take(const redis_cluster_map_t *m, size_t k, const bool *taken)
{
    const redis_cluster_node_t *old;
    redis_shard_t *s;
    unsigned slot;
    size_t i;
    int j;

    for (slot = 0; slot < REDIS_SLOTS && m->slot[slot] != k; slot++) {
        /* its first slot */
    }
    if (slot < REDIS_SLOTS && redis_nshards > 0) {
        s = &redis_shards[redis_slot_shard[slot]];
        j = redis_cluster_map_find(m, s->host, s->port);
        old = j < 0 ? NULL : &m->nodes[j];
        if (!taken[s->index]
            && (s->host[0] == '\0' || old == NULL || !old->master))
        {
            return s;
        }
    }
    for (i = 0; i < redis_nshards; i++) {
        if (redis_shards[i].retired && !taken[i]) {
            return &redis_shards[i];
        }
    }
    if (redis_nshards == WSH_REDIS_SHARDS_MAX) {
        return NULL;
    }
    s = &redis_shards[redis_nshards];
    if (redis_shard_init(s, (unsigned) redis_nshards,
                         &redis_conf()->servers[0]) != WSH_OK)
    {
        return NULL;
    }
    redis_nshards++;
    s->retired = true;      /* not yet a master's */
    return s;
}

/* S now is the master at HOST:PORT. */
static void
redis_cluster_assign(redis_shard_t *s, const char *host, unsigned port)
{
    bool switched = s->host[0] != '\0' && !s->retired;

    snprintf(s->host, sizeof(s->host), "%s", host);
    s->port = port;
    s->retired = false;
    redis_shard_address(s);
    if (switched) {
        /* A failover: what failed was the old master. */
        wsh_log(WSH_LOG_NOTICE, "redis%s: the master of its slots is now "
                "%s", s->label, s->address);
        redis_breaker_reset(s);
    }
    redis_restart(s);
}

static void
redis_cluster_apply(const redis_cluster_map_t *m)
{
    redis_shard_t *mine[REDIS_CLUSTER_NODES_MAX], *s;
    bool master[WSH_REDIS_SHARDS_MAX];
    unsigned slot;
    size_t i;

    memset(master, 0, sizeof(master));
    /* The masters that keep their shard, then the new ones. */
    for (i = 0; i < m->nnodes; i++) {
        mine[i] = m->nodes[i].master
                  ? redis_cluster_find(m->nodes[i].host, m->nodes[i].port)
                  : NULL;
        if (mine[i] != NULL) {
            master[mine[i]->index] = true;
        }
    }
    for (i = 0; i < m->nnodes; i++) {
        if (!m->nodes[i].master || mine[i] != NULL) {
            continue;
        }
        mine[i] = redis_cluster_take(m, i, master);
        if (mine[i] == NULL) {
            wsh_log(WSH_LOG_ERR, "redis cluster: more than %d masters: "
                    "%s:%u not used", WSH_REDIS_SHARDS_MAX, m->nodes[i].host,
                    m->nodes[i].port);
            continue;
        }
        master[mine[i]->index] = true;
        redis_cluster_assign(mine[i], m->nodes[i].host, m->nodes[i].port);
    }
    for (slot = 0; slot < REDIS_SLOTS; slot++) {
        if (m->slot[slot] != REDIS_CLUSTER_NONE
            && mine[m->slot[slot]] != NULL)
        {
            redis_slot_shard[slot] = (uint8_t) mine[m->slot[slot]]->index;
        }
    }
    /* A master no more (removed from the cluster): its connections
     * go; its topics move with the rehome below. */
    for (i = 0; i < redis_nshards; i++) {
        s = &redis_shards[i];
        if (!master[i] && !s->retired && s->host[0] != '\0') {
            wsh_log(WSH_LOG_NOTICE, "redis%s: %s is no master any more",
                    s->label, s->address);
            s->retired = true;
            s->host[0] = '\0';
            redis_shard_address(s);
            redis_restart(s);
        }
    }
    redis_cluster_rehome();
}

static void
redis_map_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_cluster_map_t *m;
    char err[256];

    (void) privdata;
    if (ac->data == NULL || r == NULL || redis_exiting) {
        return;
    }
    m = redis_cluster_map_parse(r, ac->c.tcp.host, err, sizeof(err));
    if (m == NULL) {
        wsh_log(WSH_LOG_ERR, "redis cluster: CLUSTER SLOTS of %s:%d: %s",
                ac->c.tcp.host, ac->c.tcp.port, err);
    } else if (m->masters == 0) {
        wsh_log(WSH_LOG_ERR, "redis cluster: %s:%d serves no slots",
                ac->c.tcp.host, ac->c.tcp.port);
    } else {
        redis_map_got = wsh_monotonic_msec();
        redis_map_next = 0;
        redis_cluster_apply(m);
    }
    redis_cluster_map_free(m);
    redisAsyncDisconnect(ac);       /* allowed in a reply callback */
}

static void
redis_map_auth_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;

    (void) privdata;
    if (ac->data != NULL && reply != NULL
        && reply->type == REDIS_REPLY_ERROR)
    {
        wsh_log(WSH_LOG_ERR, "redis cluster: AUTH to %s:%d: %s",
                ac->c.tcp.host, ac->c.tcp.port, reply->str);
    }
}

static void
redis_map_disconnect_cb(const redisAsyncContext *ac, int status)
{
    (void) status;
    if (ac->data == NULL) {
        return;
    }
    ((redisAsyncContext *) ac)->data = NULL;
    redis_map_ac = NULL;
    evtimer_del(redis_map_timer);
    if (!redis_exiting) {
        /* No map from this one: the next address at once; after a map,
         * what was asked meanwhile, or the periodic one. */
        redis_map_arm(redis_map_got < redis_map_asked ? REDIS_CLUSTER_NEXT
                      : redis_map_due ? REDIS_CLUSTER_MIN
                      : REDIS_CLUSTER_EVERY);
        redis_map_due = false;
    }
}

static void
redis_map_connect_cb(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *) cac;
    const wsh_conf_redis_server_t *v = &redis_conf()->servers[0];

    if (ac->data == NULL) {
        return;
    }
    if (status != REDIS_OK) {
        wsh_log(WSH_LOG_ERR, "redis cluster: connect to %s:%d: %s",
                ac->c.tcp.host, ac->c.tcp.port, redis_tls_why(ac->errstr));
        redis_map_disconnect_cb(ac, status);
        return;
    }
    if (v->password != NULL) {
        if (v->user != NULL) {
            redisAsyncCommand(ac, redis_map_auth_cb, NULL, "AUTH %s %s",
                              v->user, v->password);
        } else {
            redisAsyncCommand(ac, redis_map_auth_cb, NULL, "AUTH %s",
                              v->password);
        }
    }
    redisAsyncCommand(ac, redis_map_cb, NULL, "CLUSTER SLOTS");
}

/* The address to ask, in turn: the seeds, then the masters known. */
static void
redis_cluster_ask(void)
{
    const wsh_conf_engine_t *e = redis_conf();
    size_t n = e->ncluster_seeds + redis_nshards, i;
    const char *host = NULL;
    unsigned port = 0;
    char err[128];

    for (i = 0; i < n && host == NULL; i++, redis_map_next++) {
        redis_map_next %= n;
        if (redis_map_next < e->ncluster_seeds) {
            host = e->cluster_seeds[redis_map_next].host;
            port = e->cluster_seeds[redis_map_next].port;
        } else if (redis_shards[redis_map_next - e->ncluster_seeds].host[0]) {
            host = redis_shards[redis_map_next - e->ncluster_seeds].host;
            port = redis_shards[redis_map_next - e->ncluster_seeds].port;
        }
    }
    redis_map_asked = wsh_monotonic_msec();
    redis_map_ac = redis_open(host, port, NULL, err, sizeof(err));
    if (redis_map_ac == NULL) {
        wsh_log(WSH_LOG_ERR, "redis cluster: %s:%u: %s", host, port, err);
        redis_map_arm(REDIS_CLUSTER_MIN);
        return;
    }
    redis_map_ac->data = &redis_map_ac;
    redisAsyncSetConnectCallback(redis_map_ac, redis_map_connect_cb);
    redisAsyncSetDisconnectCallback(redis_map_ac, redis_map_disconnect_cb);
    redis_map_arm(e->connect_timeout + e->command_timeout);
}

/* The map timer: ask, or give up on a request that hangs. */
static void
redis_map_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    redisAsyncContext *ac = redis_map_ac;

    (void) fd;
    (void) what;
    (void) arg;
    if (ac != NULL) {
        wsh_log(WSH_LOG_ERR, "redis cluster: CLUSTER SLOTS of %s:%d: timed "
                "out", ac->c.tcp.host, ac->c.tcp.port);
        redis_map_disconnect_cb(ac, REDIS_ERR);
        redisAsyncFree(ac);
        return;
    }
    redis_cluster_ask();
}

/* ---- subscriptions ------------------------------------------------------ */

/* Move each wanted channel to the shard of its slot, and subscribe
 * there what is not confirmed yet. */
void
redis_cluster_rehome(void)
{
    wsh_hash_iter_t it;
    redis_shard_t *s, *to;
    const void *key;
    size_t i, len;
    bool moved;

    for (i = 0; i < redis_nshards; i++) {
        s = &redis_shards[i];
        do {
            moved = false;
            wsh_hash_iter_init(s->wanted, &it);
            while (wsh_hash_next(&it, &key, &len, NULL)) {
                to = redis_cluster_shard(key, len);
                if (to == s) {
                    continue;
                }
                if (wsh_hash_put(to->wanted, key, len, (void *) 1) != WSH_OK) {
                    wsh_log(WSH_LOG_ALERT, "out of memory for a "
                            "subscription");
                    return;
                }
                /* Messages published on the new master before our
                 * SSUBSCRIBE there pass us by: its rooms with history
                 * check their position once it is confirmed. */
                to->check_rooms = true;
                redis_cluster_ssub_send(to, true, key, len);
                if (redis_subscribed(s, key, len)) {
                    redis_cluster_ssub_send(s, false, key, len);
                    wsh_hash_remove(s->confirmed, key, len);
                }
                wsh_hash_remove(s->wanted, key, len);
                moved = true;
                break;          /* the iterator is stale */
            }
        } while (moved);
    }
}

/* SSUBSCRIBE (or SUNSUBSCRIBE) CH on S's subscriber, if up (else done
 * when it is). */
void
redis_cluster_ssub_send(redis_shard_t *s, bool sub, const char *ch, size_t n)
{
    if (s->sub.state != REDIS_UP || s->ssub == NULL) {
        return;
    }
    if ((sub ? redis_ssub_subscribe(s->ssub, ch, n)
             : redis_ssub_unsubscribe(s->ssub, ch, n)) == WSH_OK)
    {
        redis_shard_count(s, 1, 0);
    }
}

static void
redis_cluster_ssub_event(redis_ssub_t *ss, const redis_ssub_event_t *ev, void *arg)
{
    redis_shard_t *s = arg;
    redis_conn_t *rc = &s->sub;
    redis_cluster_redirect_t rd;

    if (redis_exiting) {
        return;
    }
    switch (ev->type) {
    case REDIS_SSUB_UP:
        redis_ssub_ready(rc);
        break;
    case REDIS_SSUB_SUBSCRIBED:
        if (wsh_hash_get(s->wanted, ev->channel, ev->chlen) == NULL) {
            redis_cluster_ssub_send(s, false, ev->channel, ev->chlen);
            break;
        }
        (void) wsh_hash_put(s->confirmed, ev->channel, ev->chlen,
                            (void *) 1);
        redis_history_subscribed(ev->channel, ev->chlen);
        if (s->check_rooms && redis_shard_up(s) && s->cmd.ready) {
            s->check_rooms = false;
            redis_history_check(s);
        }
        break;
    case REDIS_SSUB_UNSUBSCRIBED:
    case REDIS_SSUB_DROPPED:
        wsh_hash_remove(s->confirmed, ev->channel, ev->chlen);
        if (wsh_hash_get(s->wanted, ev->channel, ev->chlen) != NULL) {
            /* Wanted again while SUNSUBSCRIBE was in flight, or its slot
             * left this master: subscribe again, where the new map
             * says. */
            s->check_rooms = true;
            if (ev->type == REDIS_SSUB_DROPPED) {
                redis_cluster_refresh();
            } else {
                redis_cluster_ssub_send(s, true, ev->channel, ev->chlen);
            }
        }
        break;
    case REDIS_SSUB_MESSAGE:
        redis_message(ev->channel, ev->chlen, ev->data, ev->len);
        break;
    case REDIS_SSUB_ERROR:
        if (redis_cluster_redirect(ev->data, ev->len, &rd) == WSH_OK) {
            s->check_rooms = true;
            redis_cluster_refresh();    /* the map is stale */
            break;
        }
        wsh_log(WSH_LOG_ERR, "redis%s subscriber %s: %.*s", s->label,
                redis_ssub_name(ss), (int) ev->len, ev->data);
        break;
    case REDIS_SSUB_CLOSED:
        s->ssub = NULL;
        redis_ssub_free(ss);
        if (!rc->ready) {
            redis_log_failure(rc, "connect", ev->data);
            redis_breaker_failed(rc);
        } else {
            wsh_log(WSH_LOG_ERR, "redis%s subscriber connection lost: %.*s",
                    s->label, (int) ev->len, ev->data);
            rc->logged = wsh_monotonic_msec();
        }
        redis_cluster_refresh();        /* a failover? */
        redis_ssub_lost(rc);
        break;
    }
}

/* Connect S's sharded subscriber to its master. */
void
redis_cluster_ssub_connect(redis_conn_t *rc)
{
    const wsh_conf_engine_t *e = redis_conf();
    redis_shard_t *s = rc->shard;
    redis_ssub_conf_t conf;
    char err[128];

    memset(&conf, 0, sizeof(conf));
    conf.host = s->host;
    conf.port = s->port;
    conf.password = e->servers[0].password;
    conf.connect_timeout = e->connect_timeout;
    conf.max_reply = REDIS_SSUB_MAX_REPLY + WSH_TOPIC_NAME_MAX * 4;
    rc->ready = false;
    rc->state = REDIS_CONNECTING;
    s->ssub = redis_ssub_open(wsh_worker.base, &conf, redis_cluster_ssub_event, s,
                              err, sizeof(err));
    if (s->ssub == NULL) {
        redis_log_failure(rc, "connect", err);
        redis_connect_failed(rc);
    }
}

/* ---- life cycle --------------------------------------------------------- */

int
redis_cluster_init(void)
{
    memset(redis_slot_shard, 0, sizeof(redis_slot_shard));
    redis_map_next = 0;
    redis_map_asked = redis_map_got = 0;
    redis_map_due = false;
    redis_map_timer = evtimer_new(wsh_worker.base, redis_map_timer_cb, NULL);
    if (redis_map_timer == NULL) {
        return WSH_ERROR;
    }
    redis_map_arm(0);
    return WSH_OK;
}

void
redis_cluster_exit(void)
{
    redisAsyncContext *ac = redis_map_ac;

    if (ac != NULL) {
        ac->data = NULL;
        redis_map_ac = NULL;
        redisAsyncFree(ac);
    }
    if (redis_map_timer != NULL) {
        event_free(redis_map_timer);
        redis_map_timer = NULL;
    }
}

/* ---- redirections ------------------------------------------------------- */

redis_shard_t *
redis_cluster_redirected(const redisReply *reply, bool *ask)
{
    redis_cluster_redirect_t rd;
    redis_shard_t *s;

    if (!redis_clustered() || reply == NULL
        || reply->type != REDIS_REPLY_ERROR
        || redis_cluster_redirect(reply->str, reply->len, &rd) != WSH_OK)
    {
        return NULL;
    }
    if (!rd.ask) {
        redis_cluster_refresh();        /* the map is stale */
    }
    *ask = rd.ask;
    s = rd.host[0] != '\0' ? redis_cluster_find(rd.host, rd.port) : NULL;
    if (s == NULL || !redis_cmd_up(s)) {
        return NULL;    /* a node we have no shard for yet */
    }
    if (*ask) {
        /* ASKING holds for the next command on that connection only. */
        if (redisAsyncCommand(s->cmd.ac, NULL, NULL, "ASKING") != REDIS_OK) {
            return NULL;
        }
        redis_shard_count(s, 1, 0);
    }
    return s;
}
