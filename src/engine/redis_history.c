/* redis_history.c -- rooms with history on the Redis engine.
 *
 * Redis is the sequencer, so every node sees one order and the same
 * offsets: one script (REDIS_LUA_HPUB) takes the room's next offset
 * (INCR), appends the message as published to the room's list (trimmed
 * to the rule's size, keys expiring after its ttl of silence) and
 * PUBLISHes it behind its offset and epoch, atomically. Every
 * subscribed worker, the publisher's included, delivers it from the
 * channel, formatted for its members by their module
 * (wsh_engine_deliver_seq); the publisher only skips its own
 * connection. A join reads the position and what was missed with
 * REDIS_LUA_HREAD on the command connection, ahead of the presence join
 * sent after it, so the position comes before the members (engine.h).
 * Keys: PREFIX "hist:" ROOM ":s" (offset), ":e" (epoch: Redis TIME in
 * hex when the history starts, so a lost history gets a new one), ":l"
 * (entries "MSEC MESSAGE", the message as published), on the room's
 * shard (redis_shard_for) beside its channel: a room that moves to
 * another shard (engine.redis.shards changed) starts a new history
 * there, a new epoch, so a rejoin with since is recovered: false.
 */
#include "engine/redis.h"
#include "engine/redis_slot.h"
#include "engine/history.h"
#include "engine/recovery.h"
#include "engine/topic.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct redis_hist_req_s redis_hist_req_t;

/* A history read, or a presence join or leave of the same room waiting
 * behind one (so that the position comes before the members). */
enum { REDIS_OP_READ, REDIS_OP_JOIN, REDIS_OP_LEAVE };

struct redis_hist_req_s {
    redis_hist_req_t *next;     /* waiting for the same subscription */
    int      op;
    uint64_t conn_id;
    uint64_t join;
    uint64_t since;
    bool     want;              /* the join came with since */
    size_t   elen;
    char     epoch[WSH_EPOCH_MAX];  /* since's, none: the current */
    wsh_presence_rule_t rule;   /* JOIN, LEAVE: the room's */
    size_t   idlen;             /* JOIN, LEAVE: the id after the room */
    size_t   len;
    char     room[];
};

/* Reads waiting for their room's subscription: channel -> list. A read
 * that ran before Redis had the SUBSCRIBE would give a position from
 * which the messages published until then never reach this worker. */
static wsh_hash_t *redis_hist_waiting;

/* ROOM's history key base into BUF (REDIS_NAME_MAX bytes), hash-tagged
 * in cluster mode. */
static size_t
redis_hist_key(char *buf, const char *room, size_t len)
{
    const char *prefix = redis_conf()->prefix;
    size_t n = strlen(prefix);

    if (redis_clustered()) {
        return redis_slot_key(buf, REDIS_NAME_MAX, prefix, "hist:", room,
                              len);
    }

    memcpy(buf, prefix, n);
    memcpy(buf + n, "hist:", 5);
    memcpy(buf + n + 5, room, len);
    return n + 5 + len;
}

/* A publish waiting for its script's reply, to acknowledge. */
typedef struct {
    uint64_t conn_id;
    uint64_t ticket;
    int      kind;
} redis_ack_t;

/* HPUB's {offset, epoch, duplicate} or KPUB's {receivers, duplicate};
 * anything else (NULL: the connection was lost) is a failure, which a
 * retry with the same key makes safe. */
static void
redis_acked_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_ack_t *q = privdata;
    redisReply **el;
    int flags;

    (void) ac;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[reply->elements - 1]->type != REDIS_REPLY_INTEGER
        || (reply->elements == 3
            && reply->element[1]->type != REDIS_REPLY_STRING))
    {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            wsh_log(WSH_LOG_ERR, "redis publish failed: %s", reply->str);
        }
        wsh_stat_error(WSH_ERR_ENGINE_PUBLISH);
        wsh_engine_acked(q->conn_id, q->ticket, q->kind, true, 0, NULL, 0, 0);
        free(q);
        return;
    }
    el = reply->element;
    flags = el[reply->elements - 1]->integer == 1 ? WSH_ENG_F_DUPLICATE : 0;
    if (reply->elements == 3) {
        wsh_engine_acked(q->conn_id, q->ticket, q->kind, false,
                         (uint64_t) el[0]->integer, el[1]->str, el[1]->len,
                         flags);
    } else {
        wsh_engine_acked(q->conn_id, q->ticket, q->kind, false, 0, NULL, 0,
                         flags | (el[0]->integer > 0 ? WSH_ENG_F_FOUND : 0));
    }
    free(q);
}

/* engine.idempotency_window in ms, as a script argument, into BUF. */
static size_t
redis_window(char buf[24])
{
    return (size_t) snprintf(buf, 24, "%" PRIu64,
                             (uint64_t) wsh_worker.conf->engine
                             .idempotency_window);
}

/* A keyed publish to a topic without history: KPUB, in an envelope the
 * origin worker does not skip (it did not deliver locally). */
static int
redis_publish_keyed(redis_shard_t *s, int kind, const char *name, size_t len,
    const char *key, size_t klen, const void *data, size_t dlen,
    redis_ack_t *q)
{
    char dk[REDIS_NAME_MAX + WSH_IDEMPOTENCY_KEY_MAX], ch[REDIS_NAME_MAX];
    char window[24];
    const char *argv[4];
    size_t argl[4], n;
    char *msg;
    int rv;

    /* The envelope fits in REDIS_NAME_MAX, as in HPUB's prefix. */
    msg = malloc(REDIS_NAME_MAX + sizeof(REDIS_TAG_SEQUENCED) + dlen);
    if (msg == NULL) {
        return WSH_ERROR;
    }
    n = redis_envelope(msg) - 1;
    memcpy(msg + n, REDIS_TAG_SEQUENCED "\n", sizeof(REDIS_TAG_SEQUENCED));
    n += sizeof(REDIS_TAG_SEQUENCED);
    memcpy(msg + n, data, dlen);
    argl[0] = redis_channel(dk, kind, name, len);
    memcpy(dk + argl[0], ":k:", 3);
    memcpy(dk + argl[0] + 3, key, klen);
    argl[0] += 3 + klen;
    argl[1] = redis_window(window);
    argl[2] = redis_channel(ch, kind, name, len);
    argl[3] = n + dlen;
    argv[0] = dk;
    argv[1] = window;
    argv[2] = ch;
    argv[3] = msg;
    rv = redis_script(s, REDIS_LUA_KPUB, 4, argv, argl,
                      q ? redis_acked_cb : NULL, q);
    free(msg);
    return rv;
}

/* A room with history: HPUB numbers, keeps and publishes it at once. */
static int
redis_publish_numbered(redis_shard_t *s, const wsh_history_rule_t *rule,
    const char *room, size_t len, uint64_t conn_id, const char *key, size_t klen,
    const void *data, size_t dlen, redis_ack_t *q)
{
    char hk[REDIS_NAME_MAX], ch[REDIS_NAME_MAX], size[24], ttl[24];
    char prefix[REDIS_NAME_MAX], window[24];
    const char *argv[8];
    size_t argl[8];
    int n;

    argl[0] = redis_hist_key(hk, room, len);
    argl[1] = (size_t) snprintf(size, sizeof(size), "%zu", rule->size);
    argl[2] = (size_t) snprintf(ttl, sizeof(ttl), "%" PRIu64,
                                (uint64_t) rule->ttl);
    argl[3] = redis_channel(ch, WSH_TOPIC_ROOM, room, len);
    argl[4] = redis_envelope(prefix);
    n = snprintf(prefix + argl[4], sizeof(prefix) - argl[4],
                 "\x02S %" PRIu64 " ", conn_id);
    argl[4] += (size_t) n;
    argl[5] = dlen;
    argl[6] = klen;
    argl[7] = redis_window(window);
    argv[0] = hk;
    argv[1] = size;
    argv[2] = ttl;
    argv[3] = ch;
    argv[4] = prefix;
    argv[5] = data;
    argv[6] = key ? key : "";
    argv[7] = window;
    return redis_script(s, REDIS_LUA_HPUB, 8, argv, argl,
                        q ? redis_acked_cb : NULL, q);
}

void
redis_publish_acked(int kind, const char *name, size_t len,
    uint64_t conn_id, uint64_t ticket, const char *key, size_t klen,
    const void *data, size_t dlen)
{
    redis_shard_t *s = redis_shard_for(kind, name, len);
    redis_ack_t *q = NULL;
    wsh_history_rule_t rule;
    bool history;
    int rv = WSH_ERROR;

    history = kind == WSH_TOPIC_ROOM
              && wsh_history_rule(wsh_worker.conf, name, len, &rule);
    if (ticket != 0) {
        q = malloc(sizeof(*q));
        if (q == NULL) {
            wsh_engine_acked(conn_id, ticket, kind, true, 0, NULL, 0, 0);
            return;
        }
        q->conn_id = conn_id;
        q->ticket = ticket;
        q->kind = kind;
    }
    if (len <= WSH_TOPIC_NAME_MAX && redis_cmd_up(s)) {
        if (history) {
            rv = redis_publish_numbered(s, &rule, name, len, conn_id, key,
                                        klen, data, dlen, q);
        } else if (key != NULL) {
            rv = redis_publish_keyed(s, kind, name, len, key, klen, data,
                                     dlen, q);
        }
    }
    if (rv == WSH_OK) {
        redis_shard_count(s, 0, 1);
        return;
    }
    wsh_stat_error(WSH_ERR_ENGINE_PUBLISH);
    if (key == NULL && kind == WSH_TOPIC_ROOM) {
        /* Not numbered: this worker's members still get it. A keyed
         * publish goes nowhere: its retry must be the one that counts. */
        wsh_engine_deliver_seq(name, len, conn_id, 0, NULL, 0, data, dlen);
    }
    if (q != NULL) {
        wsh_engine_acked(conn_id, ticket, kind, true, 0, NULL, 0, 0);
        free(q);
    }
}

/* "\x02S CONN_ID OFFSET EPOCH\n" MESSAGE from the room's channel. */
void
redis_history_message(const char *room, size_t len, bool own,
    const char *p, size_t plen)
{
    const char *nl, *epoch, *end = p + plen;
    uint64_t conn_id, offset;
    char *e;

    nl = memchr(p, '\n', plen);
    if (nl == NULL || plen < 4) {
        return;
    }
    conn_id = strtoull(p + 3, &e, 10);
    if (e >= nl || *e != ' ') {
        return;
    }
    offset = strtoull(e + 1, &e, 10);
    if (e >= nl || *e != ' ') {
        return;
    }
    epoch = e + 1;
    wsh_engine_deliver_seq(room, len, own ? conn_id : 0, offset, epoch,
                           (size_t) (nl - epoch), nl + 1,
                           (size_t) (end - nl - 1));
}

/* The check of Q's room found Redis at LAST, behind the members' offset
 * in the same epoch: it lost the messages after LAST (a failover to a
 * replica that had not got them, a restart from an older save) and will
 * number the next ones with offsets the members already have. They are
 * told to rejoin from where they are, which Redis answers with
 * recovered: false and its own position. */
static void
redis_history_behind(const redis_hist_req_t *q, uint64_t last)
{
    wsh_room_position_t since;

    memset(&since, 0, sizeof(since));
    since.history = 1;
    since.recovered = -1;
    since.offset = q->since;
    memcpy(since.epoch, q->epoch, q->elen);
    wsh_log(WSH_LOG_WARN, "room \"%.*s\": redis is at offset %" PRIu64
            " of epoch %s, behind the %" PRIu64 " delivered here: it lost "
            "messages", (int) q->len, q->room, last, since.epoch, q->since);
    wsh_engine_room_gap(q->room, q->len, &since);
}

static void
redis_history_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_hist_req_t *q = privdata;
    redisReply *reply = r, *el;
    uint64_t last = 0, offset;
    const char *epoch = "";
    size_t elen = 0, i;
    bool recovered = false;

    (void) ac;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY
        && reply->elements >= 3
        && reply->element[0]->type == REDIS_REPLY_INTEGER
        && reply->element[1]->type == REDIS_REPLY_STRING
        && reply->element[2]->type == REDIS_REPLY_INTEGER)
    {
        last = (uint64_t) reply->element[0]->integer;
        epoch = reply->element[1]->str;
        elen = reply->element[1]->len;
        recovered = q->want && reply->element[2]->integer == 1;
        offset = q->since;
        for (i = 3; recovered && i < reply->elements; i++) {
            el = reply->element[i];
            if (el->type != REDIS_REPLY_STRING) {
                recovered = false;
                break;
            }
            wsh_engine_replay(q->room, q->len, q->conn_id, ++offset,
                              epoch, elen, el->str, el->len);
        }
    } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        wsh_log(WSH_LOG_ERR, "redis history read of \"%.*s\" failed: %s",
                (int) q->len, q->room, reply->str);
    }
    if (q->conn_id == 0 && q->elen == elen && elen > 0
        && memcmp(q->epoch, epoch, elen) == 0 && last < q->since)
    {
        redis_history_behind(q, last);
    } else {
        wsh_engine_position(q->room, q->len, q->conn_id, q->join, true,
                            recovered, last, epoch, elen);
    }
    free(q);
}

/* Send Q's HREAD; answers the position itself when it cannot. */
static void
redis_history_send(redis_hist_req_t *q)
{
    redis_shard_t *s = redis_shard_for(WSH_TOPIC_ROOM, q->room, q->len);
    char key[REDIS_NAME_MAX], ttl[24], off[24];
    const char *argv[5];
    size_t argl[5];
    wsh_history_rule_t rule;
    bool history;

    history = wsh_history_rule(wsh_worker.conf, q->room, q->len, &rule);
    if (!history || !redis_cmd_up(s)) {
        /* Nothing to read now: the client resyncs. */
        wsh_engine_position(q->room, q->len, q->conn_id, q->join,
                            history, false, 0, "", 0);
        free(q);
        return;
    }
    argl[0] = redis_hist_key(key, q->room, q->len);
    argl[1] = (size_t) snprintf(ttl, sizeof(ttl), "%" PRIu64,
                                (uint64_t) rule.ttl);
    argl[2] = 1;
    argl[3] = (size_t) snprintf(off, sizeof(off), "%" PRIu64, q->since);
    argv[0] = key;
    argv[1] = ttl;
    argv[2] = q->want ? "1" : "0";
    argv[3] = off;
    argv[4] = q->epoch;
    argl[4] = q->elen;
    if (redis_script(s, REDIS_LUA_HREAD, 5, argv, argl, redis_history_cb, q)
        != WSH_OK)
    {
        wsh_engine_position(q->room, q->len, q->conn_id, q->join, true,
                            false, 0, "", 0);
        free(q);
    }
}

/* Queue Q behind the room's reads waiting for its subscription: true;
 * false when nothing waits (ALWAYS: a read, when the subscription is
 * not confirmed yet, starts the wait). */
static bool
redis_history_defer(redis_hist_req_t *q, bool always)
{
    char ch[REDIS_NAME_MAX];
    redis_hist_req_t *tail;
    size_t n = redis_channel(ch, WSH_TOPIC_ROOM, q->room, q->len);
    redis_shard_t *s = redis_shard_of_channel(WSH_TOPIC_ROOM, ch, n);

    if (redis_hist_waiting == NULL
        && (!always || (redis_hist_waiting = wsh_hash_new()) == NULL))
    {
        return false;
    }
    tail = wsh_hash_get(redis_hist_waiting, ch, n);
    if (tail == NULL) {
        return always && !redis_subscribed(s, ch, n) && redis_cmd_up(s)
               && wsh_hash_put(redis_hist_waiting, ch, n, q) == WSH_OK;
    }
    while (tail->next != NULL) {        /* run in request order */
        tail = tail->next;
    }
    tail->next = q;
    return true;
}

static redis_hist_req_t *
redis_history_req(int op, const char *room, size_t len, const char *id,
    size_t idlen, uint64_t conn_id)
{
    redis_hist_req_t *q;

    if (len > WSH_TOPIC_NAME_MAX) {
        return NULL;
    }
    q = calloc(1, sizeof(*q) + len + idlen);
    if (q != NULL) {
        q->op = op;
        q->conn_id = conn_id;
        q->len = len;
        q->idlen = idlen;
        memcpy(q->room, room, len);
        if (idlen > 0) {
            memcpy(q->room + len, id, idlen);
        }
    }
    return q;
}

/* A read of ROOM's position for CONN_ID's join JOIN, with the messages
 * after SINCE if WANT (else SINCE, if any, is only kept for the
 * check). */
static void
redis_history_read(const char *room, size_t len, uint64_t conn_id,
    uint64_t join, const wsh_since_t *since, bool want)
{
    redis_hist_req_t *q;

    q = redis_history_req(REDIS_OP_READ, room, len, NULL, 0, conn_id);
    if (q == NULL || (since && since->epoch_len > WSH_EPOCH_MAX)) {
        free(q);
        wsh_engine_position(room, len, conn_id, join, true, false, 0, "", 0);
        return;
    }
    q->join = join;
    q->want = want;
    q->since = since ? since->offset : 0;
    q->elen = since && since->epoch ? since->epoch_len : 0;
    memcpy(q->epoch, since && since->epoch ? since->epoch : "", q->elen);
    if (!redis_history_defer(q, true)) {
        redis_history_send(q);
    }
}

void
redis_history(const char *room, size_t len, uint64_t conn_id,
    uint64_t join, const wsh_since_t *since)
{
    redis_history_read(room, len, conn_id, join, since, since != NULL);
}

/* The shard whose rooms redis_history_check_room reads. */
static redis_shard_t *redis_hist_checking;

/* After a reconnect: ROOM's position in Redis, compared with POS, its
 * members' here when asked (redis_history_cb): everything delivered
 * here by then was numbered before the read, so Redis can only be
 * behind it if it lost those messages. */
static void
redis_history_check_room(const char *room, size_t len,
    const wsh_room_position_t *pos)
{
    wsh_since_t at;

    if (redis_shard_for(WSH_TOPIC_ROOM, room, len) != redis_hist_checking) {
        return;                 /* another shard's: it was not cut off */
    }
    at.offset = pos->offset;
    at.epoch = pos->epoch;
    at.epoch_len = strlen(pos->epoch);
    redis_history_read(room, len, 0, 0, &at, false);
}

void
redis_history_check(redis_shard_t *s)
{
    redis_hist_checking = s;
    wsh_recovery_each_room(redis_history_check_room);
    redis_hist_checking = NULL;
}

void
redis_room_join(const char *room, size_t len, const char *id, size_t idlen,
    uint64_t conn_id, const wsh_presence_rule_t *rule)
{
    redis_hist_req_t *q;

    q = redis_history_req(REDIS_OP_JOIN, room, len, id, idlen, conn_id);
    if (q != NULL) {
        q->rule = *rule;
    }
    if (q == NULL || !redis_history_defer(q, false)) {
        free(q);
        redis_join(room, len, id, idlen, conn_id, rule);
    }
}

void
redis_room_leave(const char *room, size_t len, const char *id, size_t idlen,
    const wsh_presence_rule_t *rule)
{
    redis_hist_req_t *q;

    q = redis_history_req(REDIS_OP_LEAVE, room, len, id, idlen, 0);
    if (q != NULL) {
        q->rule = *rule;
    }
    if (q == NULL || !redis_history_defer(q, false)) {
        free(q);
        redis_leave(room, len, id, idlen, rule);
    }
}

void
redis_history_subscribed(const char *ch, size_t n)
{
    redis_hist_req_t *q, *next;

    if (redis_hist_waiting == NULL) {
        return;
    }
    for (q = wsh_hash_remove(redis_hist_waiting, ch, n); q != NULL;
         q = next)
    {
        next = q->next;
        switch (q->op) {
        case REDIS_OP_READ:
            redis_history_send(q);
            continue;           /* Q is the read's now */
        case REDIS_OP_JOIN:
            redis_join(q->room, q->len, q->room + q->len, q->idlen,
                       q->conn_id, &q->rule);
            break;
        case REDIS_OP_LEAVE:
            redis_leave(q->room, q->len, q->room + q->len, q->idlen,
                        &q->rule);
            break;
        }
        free(q);
    }
}

void
redis_history_exit(void)
{
    wsh_hash_iter_t it;
    redis_hist_req_t *q, *next;
    void *value;

    if (redis_hist_waiting == NULL) {
        return;
    }
    wsh_hash_iter_init(redis_hist_waiting, &it);
    while (wsh_hash_next(&it, NULL, NULL, &value)) {
        for (q = value; q != NULL; q = next) {
            next = q->next;
            free(q);
        }
    }
    wsh_hash_free(redis_hist_waiting, NULL);
    redis_hist_waiting = NULL;
}
