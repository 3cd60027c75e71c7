/* redis_presence.c -- room presence of the Redis engine.
 *
 * Presence lives in the sorted set PREFIX "presence:" ROOM: members
 * "ID\tNODE/PID" (one per id and worker; the worker counts its own
 * connections), scores the expiry in ms of Redis TIME, so hosts with
 * skewed clocks agree on what expired; beside it the hash PREFIX
 * "presence_ids:" ROOM counts each id's entries, so the room's size is
 * HLEN and pages of ids come from HSCAN, and no join, leave or refresh
 * walks the room (redis_script.c). Every worker re-scores its own
 * entries every presence_ttl/3 and sweeps the expired ones of its rooms,
 * announcing who left: the Lua scripts make each step atomic, so a
 * crashed node's members are announced gone exactly once.
 *
 * Each worker keeps, per room with local members, the ids its members
 * were told about ("known"): the joiner's member list, then the join
 * and leave events. An event about a known join or an unknown leave is
 * not told twice, so every path may announce: the worker tells its own
 * members of its clients' joins at once, and its own events coming
 * back from Redis are dropped as known.
 *
 * Joins and leaves while the command connection is down are told to
 * this worker's members at once and remembered; on reconnect the sync
 * script puts our entries back (a restarted Redis lost them), drops
 * those we no longer hold, and announces the remembered changes. As
 * a worker whose subscriber was down then misses them, every sync also
 * returns the room's live ids, and the worker tells its members the
 * difference with what they know: joins at once, leaves only once it
 * has been connected for presence_ttl (a restarted Redis is empty until
 * every worker has put its entries back). The snapshot may be older
 * than an event seen meanwhile: ids told of since the sync was sent are
 * left alone, as "known" and "left" record when.
 *
 * A room's keys are on its shard (redis_shard_for), where its scripts
 * run; "cut off" and "reconnect" above are of that shard, whose rooms
 * alone are resynced when it comes back, and refreshed while it is up.
 *
 * The Lua scripts are in redis_script.c.
 */
#include "engine/redis.h"
#include "engine/redis_slot.h"
#include "engine/topic.h"
#include "core/hash.h"
#include "core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Pending changes of a room made while cut off: id -> 'J' or 'L'. */
#define REDIS_JOINED ((void *) (uintptr_t) 'J')
#define REDIS_LEFT   ((void *) (uintptr_t) 'L')

/* A room with members on this worker. */
typedef struct {
    wsh_hash_t *count;          /* our ids -> connections of ours */
    wsh_hash_t *known;          /* ids our members know of -> REDIS_WHEN */
    wsh_hash_t *left;           /* ids told gone lately -> REDIS_WHEN */
    size_t      announce_max;   /* the room's rule, as our last join or
                                 * leave brought it (for refreshes) */
} redis_room_t;

/* When an id was told of, as a hash value (never NULL). */
#define REDIS_WHEN(ms)   ((void *) (uintptr_t) ((ms) + 1))
#define REDIS_MSEC(v)    ((wsh_msec_t) ((uintptr_t) (v) - 1))

static wsh_hash_t  *redis_rooms;       /* room -> redis_room_t */
static wsh_hash_t  *redis_pending;     /* room -> (id -> J or L) */

static redis_shard_t *
redis_room_shard(const char *room, size_t len)
{
    return redis_shard_for(WSH_TOPIC_ROOM, room, len);
}

/* ---- names -------------------------------------------------------------- */

/* A presence key of ROOM into BUF (REDIS_NAME_MAX bytes): KIND
 * "presence:" (the entries) or "presence_ids:" (the ids and their entry
 * counts), hash-tagged in cluster mode; returns its length. */
static size_t
redis_room_key(char *buf, const char *kind, const char *room, size_t len)
{
    size_t n = strlen(redis_conf()->prefix), k = strlen(kind);

    if (redis_clustered()) {
        return redis_slot_key(buf, REDIS_NAME_MAX, redis_conf()->prefix,
                              kind, room, len);
    }

    memcpy(buf, redis_conf()->prefix, n);
    memcpy(buf + n, kind, k);
    memcpy(buf + n + k, room, len);
    return n + k + len;
}

/* The two keys of ROOM's presence as the scripts' KEYS[1] and KEYS[2]
 * (redis_script.c) into ARGV/ARGL, in buffers of REDIS_NAME_MAX. */
static void
redis_presence_keys(char *zkey, char *hkey, const char *room, size_t len,
    const char **argv, size_t *argl)
{
    argv[0] = zkey;
    argl[0] = redis_room_key(zkey, "presence:", room, len);
    argv[1] = hkey;
    argl[1] = redis_room_key(hkey, "presence_ids:", room, len);
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

/* The event "ENVELOPE\x02P E CONN_ID ID" into BUF (room for the
 * envelope, 32 bytes and the id). */
static size_t
redis_event(char *buf, char event, uint64_t conn_id, const char *id,
    size_t idlen)
{
    size_t n = redis_envelope(buf);

    n += (size_t) sprintf(buf + n, "\x02P %c %" PRIu64 " ", event, conn_id);
    memcpy(buf + n, id, idlen);
    return n + idlen;
}

/* The key and arguments shared by the join and leave scripts. */
typedef struct {
    char        key[REDIS_NAME_MAX];
    char        hkey[REDIS_NAME_MAX];
    char        ch[REDIS_NAME_MAX];
    char        entry[UINT16_MAX + 160];
    char        ev[UINT16_MAX + 200];
    char        ttl[24];
    char        list_max[24];
    char        announce_max[24];
    const char *argv[9];
    size_t      argl[9];
} redis_args_t;

/* KEYS[1] and KEYS[2], then ARGV: our entry of ID, ID, the room's
 * channel and the event E; then the join's ttl and list_max, and
 * announce_max (RULE). Returns the count. */
static int
redis_args(redis_args_t *a, const char *room, size_t len, const char *id,
    size_t idlen, char e, uint64_t conn_id, const wsh_presence_rule_t *rule)
{
    int n = 6;

    redis_presence_keys(a->key, a->hkey, room, len, a->argv, a->argl);
    a->argv[2] = a->entry;
    a->argl[2] = redis_entry(a->entry, id, idlen);
    a->argv[3] = id;
    a->argl[3] = idlen;
    a->argv[4] = a->ch;
    a->argl[4] = redis_channel(a->ch, WSH_TOPIC_ROOM, room, len);
    a->argv[5] = a->ev;
    a->argl[5] = redis_event(a->ev, e, conn_id, id, idlen);
    if (e == 'J') {
        snprintf(a->ttl, sizeof(a->ttl), "%" PRIu64,
                 (uint64_t) redis_conf()->presence_ttl);
        a->argv[n] = a->ttl;
        a->argl[n++] = strlen(a->ttl);
        snprintf(a->list_max, sizeof(a->list_max), "%zu", rule->list_max);
        a->argv[n] = a->list_max;
        a->argl[n++] = strlen(a->list_max);
    }
    snprintf(a->announce_max, sizeof(a->announce_max), "%zu",
             rule->announce_max);
    a->argv[n] = a->announce_max;
    a->argl[n++] = strlen(a->announce_max);
    return n;
}

/* ---- rooms and what their members know ---------------------------------- */

static void
redis_free_ids(void *p)
{
    wsh_hash_free(p, NULL);
}

static void
redis_free_room(void *p)
{
    redis_room_t *r = p;

    wsh_hash_free(r->count, NULL);
    wsh_hash_free(r->known, NULL);
    wsh_hash_free(r->left, NULL);
    free(r);
}

static redis_room_t *
redis_room_get(const char *room, size_t len, bool create)
{
    redis_room_t *r = wsh_hash_get(redis_rooms, room, len);

    if (r != NULL || !create) {
        return r;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || (r->count = wsh_hash_new()) == NULL
        || (r->known = wsh_hash_new()) == NULL
        || (r->left = wsh_hash_new()) == NULL
        || wsh_hash_put(redis_rooms, room, len, r) != WSH_OK)
    {
        if (r != NULL) {
            redis_free_room(r);
        } else {
            free(r);
        }
        wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
        return NULL;
    }
    return r;
}

/* Tell our members of ROOM that ID joined or left, unless they know;
 * EXCLUDE_CONN: the joining connection, if ours. */
void
redis_presence_tell(const char *room, size_t len, const char *id,
    size_t idlen, bool joined, uint64_t exclude_conn)
{
    redis_room_t *r = redis_room_get(room, len, false);

    if (r == NULL
        || (wsh_hash_get(r->known, id, idlen) != NULL) == joined)
    {
        return;
    }
    if (joined) {
        if (wsh_hash_put(r->known, id, idlen,
                         REDIS_WHEN(wsh_monotonic_msec())) != WSH_OK)
        {
            return;
        }
        wsh_hash_remove(r->left, id, idlen);
    } else {
        wsh_hash_remove(r->known, id, idlen);
        (void) wsh_hash_put(r->left, id, idlen,
                            REDIS_WHEN(wsh_monotonic_msec()));
    }
    wsh_engine_presence(room, len, id, idlen, joined, exclude_conn);
}

/* Whether our members may be told that ID joined ROOM from a snapshot
 * taken after SENT: not if they were told it left since. */
static bool
redis_may_tell_joined(redis_room_t *room, const char *id, size_t idlen,
    wsh_msec_t sent)
{
    void *v = wsh_hash_get(room->left, id, idlen);

    return v == NULL || REDIS_MSEC(v) < sent;
}

/* ---- pending changes ---------------------------------------------------- */

/* Remember that ID joined or left ROOM while cut off. A join undoes a
 * pending leave and the reverse: the other workers never heard of the
 * first. */
static void
redis_pending_note(const char *room, size_t len, const char *id,
    size_t idlen, void *what)
{
    wsh_hash_t *ids = wsh_hash_get(redis_pending, room, len);
    void *was;

    if (ids == NULL) {
        ids = wsh_hash_new();
        if (ids == NULL
            || wsh_hash_put(redis_pending, room, len, ids) != WSH_OK)
        {
            wsh_hash_free(ids, NULL);
            wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
            return;
        }
    }
    was = wsh_hash_get(ids, id, idlen);
    if (was != NULL && was != what) {
        wsh_hash_remove(ids, id, idlen);
    } else if (wsh_hash_put(ids, id, idlen, what) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
    }
}

/* ---- join and leave ----------------------------------------------------- */


/* The ids our members of ROOM know, for a joiner while Redis is down. */
static void
redis_known_members(const char *room, size_t len, uint64_t conn_id)
{
    redis_room_t *r = redis_room_get(room, len, false);
    wsh_hash_iter_t it;
    const void *key;
    size_t klen, total = 0;
    u_char *buf, *p;

    if (r == NULL) {
        return;
    }
    wsh_hash_iter_init(r->known, &it);
    while (wsh_hash_next(&it, &key, &klen, NULL)) {
        total += 2 + klen;
    }
    buf = malloc(total + 1);
    if (buf == NULL) {
        return;
    }
    p = buf;
    wsh_hash_iter_init(r->known, &it);
    while (wsh_hash_next(&it, &key, &klen, NULL)) {
        wsh_engine_put_id(&p, key, klen);
    }
    wsh_engine_members(room, len, conn_id, buf, total,
                       wsh_hash_count(r->known));
    free(buf);
}

static void
redis_join_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r, *e;
    redis_req_t *q = privdata;
    redis_room_t *room;
    u_char *buf, *p;
    size_t i, total = 0, count;

    (void) ac;
    if (redis_exiting) {
        free(q);
        return;
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            wsh_log(WSH_LOG_ERR, "redis join script failed: %s", reply->str);
        }
        redis_known_members(q->name, q->len, q->conn_id);
        redis_pending_note(q->name, q->len, q->name + q->len, q->slen,
                           REDIS_JOINED);
        free(q);
        return;
    }
    /* {count, ids...}: no ids past the room's list_max. */
    count = reply->elements > 0
            && reply->element[0]->type == REDIS_REPLY_INTEGER
            ? (size_t) reply->element[0]->integer : 0;
    room = redis_room_get(q->name, q->len, false);
    for (i = 1; i < reply->elements; i++) {
        e = reply->element[i];
        total += 2 + e->len;
        /* Members whose join event we missed: tell ours too. */
        if (room != NULL
            && redis_may_tell_joined(room, e->str, e->len, q->sent))
        {
            redis_presence_tell(q->name, q->len, e->str, e->len, true,
                                q->conn_id);
        }
    }
    buf = malloc(total + 1);
    if (buf != NULL) {
        p = buf;
        for (i = 1; i < reply->elements; i++) {
            wsh_engine_put_id(&p, reply->element[i]->str,
                              reply->element[i]->len);
        }
        wsh_engine_members(q->name, q->len, q->conn_id, buf, total, count);
        free(buf);
    }
    free(q);
}

void
redis_join(const char *room, size_t len, const char *id, size_t idlen,
    uint64_t conn_id, const wsh_presence_rule_t *rule)
{
    redis_args_t a;
    redis_room_t *r;
    redis_shard_t *s;
    uintptr_t count;
    int n;
    redis_req_t *q;

    if (len > WSH_TOPIC_NAME_MAX
        || (r = redis_room_get(room, len, true)) == NULL)
    {
        return;
    }
    r->announce_max = rule->announce_max;
    count = (uintptr_t) wsh_hash_get(r->count, id, idlen);
    if (wsh_hash_put(r->count, id, idlen, (void *) (count + 1)) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
        return;
    }
    /* Our members hear of it now (unless the room is too big for it);
     * our own event from Redis is known. */
    if (wsh_hash_count(r->known) < rule->announce_max) {
        redis_presence_tell(room, len, id, idlen, true, conn_id);
    }
    s = redis_room_shard(room, len);
    q = count == 0 && redis_cmd_up(s)
        ? redis_req(room, len, id, idlen, conn_id, 0) : NULL;
    if (q == NULL) {
        redis_known_members(room, len, conn_id);
        if (count == 0) {
            redis_pending_note(room, len, id, idlen, REDIS_JOINED);
        }
        return;
    }
    n = redis_args(&a, room, len, id, idlen, 'J', conn_id, rule);
    if (redis_script(s, REDIS_LUA_JOIN, n, a.argv, a.argl, redis_join_cb, q)
        != WSH_OK)
    {
        redis_known_members(room, len, conn_id);
        redis_pending_note(room, len, id, idlen, REDIS_JOINED);
        free(q);
    }
}

/* A presence page asked of Redis: whose, and of which room. */
typedef struct {
    uint64_t conn_id;
    uint64_t ticket;
    size_t   len;
    char     room[];
} redis_who_t;

static void
redis_who_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_who_t *w = privdata;
    u_char *buf = NULL, *p;
    size_t i, total = 0;

    (void) ac;
    if (redis_exiting) {
        free(w);
        return;
    }
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            wsh_log(WSH_LOG_ERR, "redis presence script failed: %s",
                    reply->str);
        }
        wsh_engine_page(w->room, w->len, w->conn_id, w->ticket, true, 0,
                        NULL, 0, NULL, 0);
        free(w);
        return;
    }
    for (i = 2; i < reply->elements; i++) {
        total += 2 + reply->element[i]->len;
    }
    p = buf = malloc(total + 1);
    if (buf != NULL) {
        for (i = 2; i < reply->elements; i++) {
            wsh_engine_put_id(&p, reply->element[i]->str,
                              reply->element[i]->len);
        }
    }
    wsh_engine_page(w->room, w->len, w->conn_id, w->ticket, buf == NULL,
                    (size_t) reply->element[1]->integer, buf, total,
                    reply->element[0]->str, reply->element[0]->len);
    free(buf);
    free(w);
}

int
redis_who(const char *room, size_t len, uint64_t conn_id, uint64_t ticket,
    const char *cursor, size_t clen, size_t limit)
{
    char key[REDIS_NAME_MAX], hkey[REDIS_NAME_MAX], lim[24];
    const char *argv[4];
    size_t argl[4];
    redis_shard_t *s = redis_room_shard(room, len);
    redis_who_t *w;

    if (!redis_cmd_up(s) || (w = malloc(sizeof(*w) + len)) == NULL)
    {
        return -1;
    }
    w->conn_id = conn_id;
    w->ticket = ticket;
    w->len = len;
    memcpy(w->room, room, len);
    redis_presence_keys(key, hkey, room, len, argv, argl);
    argv[2] = cursor;
    argl[2] = clen;
    argl[3] = (size_t) snprintf(lim, sizeof(lim), "%zu", limit);
    argv[3] = lim;
    if (redis_script(s, REDIS_LUA_WHO, 4, argv, argl, redis_who_cb, w)
        != WSH_OK)
    {
        free(w);
        return -1;
    }
    return 0;
}

/* A leave Redis did not take: we cannot tell whether the id is on
 * another worker still; as it was ours, say it left. */
static void
redis_leave_offline(const char *room, size_t len, const char *id,
    size_t idlen)
{
    redis_presence_tell(room, len, id, idlen, false, 0);
    redis_pending_note(room, len, id, idlen, REDIS_LEFT);
}

static void
redis_leave_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redis_req_t *q = privdata;

    (void) ac;
    if (!redis_exiting && r == NULL) {
        redis_leave_offline(q->name, q->len, q->name + q->len, q->slen);
    }
    free(q);
}

void
redis_leave(const char *room, size_t len, const char *id, size_t idlen,
    const wsh_presence_rule_t *rule)
{
    redis_room_t *r = redis_room_get(room, len, false);
    redis_shard_t *s;
    redis_args_t a;
    uintptr_t count;
    int n;
    redis_req_t *q;

    count = r ? (uintptr_t) wsh_hash_get(r->count, id, idlen) : 0;
    if (count == 0) {
        return;
    }
    r->announce_max = rule->announce_max;
    if (count > 1) {
        (void) wsh_hash_put(r->count, id, idlen, (void *) (count - 1));
        return;         /* another connection of the id is still here */
    }
    wsh_hash_remove(r->count, id, idlen);
    s = redis_room_shard(room, len);
    q = redis_cmd_up(s) ? redis_req(room, len, id, idlen, 0, 0) : NULL;
    if (q == NULL) {
        redis_leave_offline(room, len, id, idlen);
    } else {
        n = redis_args(&a, room, len, id, idlen, 'L', 0, rule);
        if (redis_script(s, REDIS_LUA_LEAVE, n, a.argv, a.argl,
                         redis_leave_cb, q) != WSH_OK)
        {
            redis_leave_offline(room, len, id, idlen);
            free(q);
        }
    }
    if (wsh_hash_count(r->count) == 0) {
        /* No member of ours left to tell anything. */
        wsh_hash_remove(redis_rooms, room, len);
        redis_free_room(r);
    }
}

/* ---- refresh and resync ------------------------------------------------- */

/* The ids of H told of before BEFORE and not in LIVE (may be NULL), as
 * (uint16 length, bytes) pairs into a new buffer of *BYTES: copied, as
 * acting on them changes H. NULL: out of memory. */
static char *
redis_pick(wsh_hash_t *h, wsh_hash_t *live, wsh_msec_t before, size_t *bytes)
{
    wsh_hash_iter_t it;
    const void *id;
    size_t idlen, total = 0;
    char *buf, *p;
    uint16_t l;
    void *v;

    wsh_hash_iter_init(h, &it);
    while (wsh_hash_next(&it, &id, &idlen, NULL)) {
        total += 2 + idlen;
    }
    buf = malloc(total + 1);
    if (buf == NULL) {
        return NULL;
    }
    p = buf;
    wsh_hash_iter_init(h, &it);
    while (wsh_hash_next(&it, &id, &idlen, &v)) {
        if (REDIS_MSEC(v) < before
            && (live == NULL || wsh_hash_get(live, id, idlen) == NULL))
        {
            l = (uint16_t) idlen;
            memcpy(p, &l, 2);
            memcpy(p + 2, id, idlen);
            p += 2 + idlen;
        }
    }
    *bytes = (size_t) (p - buf);
    return buf;
}

/* The live ids of a room from a sync: tell our members what they miss,
 * but for what they were told of since the sync was sent. */
static void
redis_sync_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply *reply = r;
    redis_req_t *q = privdata;
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_msec_t ct = redis_conf()->command_timeout;
    redis_room_t *room;
    wsh_hash_t *live = NULL;
    size_t i, bytes = 0;
    char *gone = NULL, *old = NULL, *p;
    redisReply *e;
    uint16_t l;

    (void) ac;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        wsh_log(WSH_LOG_ERR, "redis presence refresh failed: %s", reply->str);
    }
    /* {count, ids...}; a room past its announce_max gives {count}: no
     * join or leave is told there, so nothing to compare. */
    if (redis_exiting || reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || (size_t) reply->element[0]->integer != reply->elements - 1
        || (room = redis_room_get(q->name, q->len, false)) == NULL
        || (live = wsh_hash_new()) == NULL)
    {
        goto done;
    }
    for (i = 1; i < reply->elements; i++) {
        e = reply->element[i];
        (void) wsh_hash_put(live, e->str, e->len, (void *) 1);
        if (redis_may_tell_joined(room, e->str, e->len, q->sent)) {
            redis_presence_tell(q->name, q->len, e->str, e->len, true, 0);
        }
    }
    /* Forget leaves older than any sync still waiting for its reply. */
    old = redis_pick(room->left, NULL, now > ct ? now - ct : 0, &bytes);
    for (p = old; p != NULL && p < old + bytes; p += 2 + l) {
        memcpy(&l, p, 2);
        wsh_hash_remove(room->left, p + 2, l);
    }
    if (now < redis_room_shard(q->name, q->len)->settled
        || (gone = redis_pick(room->known, live, q->sent, &bytes)) == NULL)
    {
        goto done;
    }
    for (p = gone; p < gone + bytes; p += 2 + l) {
        memcpy(&l, p, 2);
        redis_presence_tell(q->name, q->len, p + 2, l, false, 0);
    }
done:
    wsh_hash_free(live, NULL);
    free(old);
    free(gone);
    free(q);
}

/* Append the ids of IDS (a pending table) marked WHAT to ARGV. */
static size_t
redis_sync_ids(wsh_hash_t *ids, void *what, const char **argv, size_t *argl)
{
    wsh_hash_iter_t it;
    const void *id;
    size_t idlen, n = 0;
    void *v;

    if (ids == NULL) {
        return 0;
    }
    wsh_hash_iter_init(ids, &it);
    while (wsh_hash_next(&it, &id, &idlen, &v)) {
        if (v == what) {
            argv[n] = id;
            argl[n++] = idlen;
        }
    }
    return n;
}

/* The sync script for ROOM: our ids IDS (may be NULL), the changes
 * PENDING (may be NULL); RESYNC drops our entries not in IDS. */
static void
redis_sync_room(redis_shard_t *s, const char *room, size_t rlen,
    wsh_hash_t *ids, wsh_hash_t *pending, bool resync)
{
    char key[REDIS_NAME_MAX], ch[REDIS_NAME_MAX], ttl[24], nj[24], nl[24];
    char evJ[200], evL[200], sfx[sizeof(redis_tag) + 1], hkey[REDIS_NAME_MAX];
    char amax[24];
    redis_room_t *r = redis_room_get(room, rlen, false);
    size_t nids = ids ? wsh_hash_count(ids) : 0;
    size_t npend = pending ? wsh_hash_count(pending) : 0;
    size_t argc = 10 + npend + nids, i, j, n, idlen, bytes = 0;
    const char **argv = calloc(argc, sizeof(*argv));
    size_t *argl = calloc(argc, sizeof(*argl));
    char *entries = NULL, *p;
    redis_req_t *q = redis_req(room, rlen, NULL, 0, 0, 0);
    wsh_hash_iter_t it;
    const void *id;

    if (argv == NULL || argl == NULL || q == NULL) {
        goto done;
    }
    snprintf(ttl, sizeof(ttl), "%" PRIu64,
             (uint64_t) redis_conf()->presence_ttl);
    redis_presence_keys(key, hkey, room, rlen, argv, argl);
    argv[2] = ttl;
    argv[3] = ch;
    argl[3] = redis_channel(ch, WSH_TOPIC_ROOM, room, rlen);
    argv[4] = evJ;
    argl[4] = redis_event(evJ, 'J', 0, "", 0);
    argv[5] = evL;
    argl[5] = redis_event(evL, 'L', 0, "", 0);
    sfx[0] = '\t';
    memcpy(sfx + 1, redis_tag, redis_taglen);
    argv[6] = sfx;
    argl[6] = resync ? redis_taglen + 1 : 0;
    /* A room none of ours is in any more: as v1, announce its leaves. */
    snprintf(amax, sizeof(amax), "%zu", r ? r->announce_max : SIZE_MAX);
    argv[9] = amax;
    i = 10;
    n = redis_sync_ids(pending, REDIS_JOINED, argv + i, argl + i);
    snprintf(nj, sizeof(nj), "%zu", n);
    i += n;
    n = redis_sync_ids(pending, REDIS_LEFT, argv + i, argl + i);
    snprintf(nl, sizeof(nl), "%zu", n);
    i += n;
    argv[7] = nj;
    argv[8] = nl;
    argc = i + nids;
    if (nids > 0) {
        wsh_hash_iter_init(ids, &it);
        while (wsh_hash_next(&it, &id, &idlen, NULL)) {
            bytes += idlen + 1 + redis_taglen;
        }
        entries = malloc(bytes);
        if (entries == NULL) {
            goto done;
        }
        p = entries;
        wsh_hash_iter_init(ids, &it);
        while (wsh_hash_next(&it, &id, &idlen, NULL) && i < argc) {
            argv[i] = p;
            argl[i] = redis_entry(p, id, idlen);
            p += argl[i++];
        }
    }
    for (j = 0; j < 10; j++) {
        if (argl[j] == 0 && j != 6) {
            argl[j] = strlen(argv[j]);
        }
    }
    if (redis_script(s, REDIS_LUA_SYNC, (int) i, argv, argl, redis_sync_cb, q)
        == WSH_OK)
    {
        q = NULL;
    }
done:
    free(q);
    free(entries);
    free(argv);
    free(argl);
}

/* Every presence_ttl / 3 per shard: re-score our entries of its rooms
 * and sweep the expired ones, on the shards whose command connection
 * is up (a shard's resync counts as its refresh). */
void
redis_presence_tick(void)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_hash_iter_t it;
    const void *room;
    redis_shard_t *s;
    size_t rlen, i, due = 0;
    void *r;

    for (i = 0; i < redis_nshards; i++) {
        s = &redis_shards[i];
        s->refresh = now - s->refreshed >= redis_conf()->presence_ttl / 3;
        if (s->refresh) {
            s->refreshed = now;
            s->refresh = redis_cmd_up(s);
            due += s->refresh;
        }
    }
    if (due == 0) {
        return;
    }
    wsh_hash_iter_init(redis_rooms, &it);
    while (wsh_hash_next(&it, &room, &rlen, &r)) {
        s = redis_room_shard(room, rlen);
        if (s->refresh) {
            redis_sync_room(s, room, rlen, ((redis_room_t *) r)->count, NULL,
                            false);
        }
    }
}

void
redis_presence_reconnected(redis_shard_t *s)
{
    s->settled = wsh_monotonic_msec() + redis_conf()->presence_ttl;
}

/* S is back: sync its rooms, ours and those we left altogether while
 * cut off; the changes pending for other shards' rooms wait for
 * theirs. */
void
redis_presence_resync(redis_shard_t *s)
{
    wsh_hash_t *others;
    wsh_hash_iter_t it;
    const void *room;
    size_t rlen;
    void *r;

    s->refreshed = wsh_monotonic_msec();
    if (!redis_cmd_up(s)) {
        return;
    }
    wsh_hash_iter_init(redis_rooms, &it);
    while (wsh_hash_next(&it, &room, &rlen, &r)) {
        if (redis_room_shard(room, rlen) == s) {
            redis_sync_room(s, room, rlen, ((redis_room_t *) r)->count,
                            wsh_hash_get(redis_pending, room, rlen), true);
        }
    }
    others = wsh_hash_new();
    if (others == NULL) {
        wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
        return;
    }
    wsh_hash_iter_init(redis_pending, &it);
    while (wsh_hash_next(&it, &room, &rlen, &r)) {
        if (redis_room_shard(room, rlen) != s) {
            if (wsh_hash_put(others, room, rlen, r) != WSH_OK) {
                wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
                redis_free_ids(r);
            }
            continue;
        }
        if (wsh_hash_get(redis_rooms, room, rlen) == NULL) {
            redis_sync_room(s, room, rlen, NULL, r, true);
        }
        redis_free_ids(r);
    }
    wsh_hash_free(redis_pending, NULL);
    redis_pending = others;
}

/* ---- life cycle --------------------------------------------------------- */

int
redis_presence_init(void)
{
    if (redis_script_init() != WSH_OK) {
        return WSH_ERROR;
    }
    redis_rooms = wsh_hash_new();
    redis_pending = wsh_hash_new();
    return redis_rooms != NULL && redis_pending != NULL ? WSH_OK : WSH_ERROR;
}

void
redis_presence_exit(void)
{
    wsh_hash_free(redis_rooms, redis_free_room);
    wsh_hash_free(redis_pending, redis_free_ids);
    redis_rooms = redis_pending = NULL;
    redis_script_exit();
}
