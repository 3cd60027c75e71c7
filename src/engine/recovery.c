/* recovery.c -- the worker side of room history: joins that recover.
 *
 * A connection joining a room with history subscribes first, then asks
 * the engine for its position (and, with since, the messages it
 * missed), then joins presence. Until the members answer comes, the
 * membership carries a wsh_recovery_t: live messages that arrive before
 * the position are held in "live", replayed ones in "queue"; when the
 * position comes, held live messages newer than it follow the replay,
 * and later live messages are appended if newer than the last queued.
 * After the module's members hook has answered the join, the queue is
 * sent in order. So the client sees room_joined, the missed messages,
 * then live traffic: no gap, no duplicate, whatever the interleaving.
 *
 * The worker also remembers, per history room with local members, the
 * last offset delivered here: the position its clients would rejoin
 * from (server_shutdown).
 */
#include "engine/recovery.h"
#include "engine/engine.h"
#include "core/hash.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

/* A join that buffers more than this was not answered by the engine in
 * time: the client is told to come back rather than the worker grow. */
#define RECOVERY_MAX_HELD 65536

typedef struct {
    uint64_t            offset;
    wsh_shared_frame_t *f;
} recovery_item_t;

typedef struct {
    recovery_item_t *v;
    size_t           n;
    size_t           cap;
} recovery_list_t;

typedef struct wsh_recovery_s {
    uint64_t            join;       /* this join's request id */
    wsh_room_position_t pos;
    bool                positioned;
    recovery_list_t     live;       /* arrived before the position */
    recovery_list_t     queue;      /* sent after the members hook */
} wsh_recovery_t;

typedef struct {
    uint64_t offset;
    char     epoch[WSH_EPOCH_MAX + 1];
} recovery_room_t;

static wsh_hash_t *recovery_rooms;  /* room -> recovery_room_t */
static uint64_t recovery_joins;     /* the last request id given */

/* Joins under way: membership (the pointer's bytes) -> wsh_recovery_t.
 * Beside the memberships rather than in them: few joins recover at a
 * time, and a pointer in each membership would cost every connection 8
 * bytes a room. Each topic counts its own (nrecovering), so a delivery
 * to a room where none recovers looks nothing up. */
static wsh_hash_t *recovery_members;

/* M's recovery, or NULL when it is not joining. */
static wsh_recovery_t *
recovery_of(const wsh_member_t *m)
{
    if (m->topic->nrecovering == 0) {
        return NULL;
    }
    return wsh_hash_get(recovery_members, &m, sizeof(m));
}

static void
recovery_list_clear(recovery_list_t *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        wsh_engine_conns->frame_release(l->v[i].f);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Append (taking a reference to F); WSH_ERROR on ENOMEM or past the
 * cap. */
static int
recovery_list_push(recovery_list_t *l, uint64_t offset,
    wsh_shared_frame_t *f)
{
    recovery_item_t *v;
    size_t cap;

    if (l->n == l->cap) {
        cap = l->cap ? l->cap * 2 : 16;
        if (cap > RECOVERY_MAX_HELD) {
            return WSH_ERROR;
        }
        v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            return WSH_ERROR;
        }
        l->v = v;
        l->cap = cap;
    }
    wsh_engine_conns->frame_hold(f);
    l->v[l->n].offset = offset;
    l->v[l->n].f = f;
    l->n++;
    return WSH_OK;
}

int
wsh_recovery_start(wsh_member_t *m, const wsh_since_t *since, bool history)
{
    wsh_recovery_t *r;

    if (recovery_members == NULL
        && (recovery_members = wsh_hash_new()) == NULL)
    {
        return WSH_ERROR;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL
        || wsh_hash_put(recovery_members, &m, sizeof(m), r) != WSH_OK)
    {
        free(r);
        return WSH_ERROR;
    }
    r->join = ++recovery_joins;
    r->pos.recovered = since != NULL ? 0 : -1;
    /* Without history there is nothing to ask: the position is known. */
    r->positioned = !history;
    m->topic->nrecovering++;
    return WSH_OK;
}

uint64_t
wsh_recovery_join(const wsh_member_t *m)
{
    return recovery_of(m)->join;
}

bool
wsh_recovery_waiting(const wsh_member_t *m)
{
    wsh_recovery_t *r = m != NULL ? recovery_of(m) : NULL;

    return r != NULL && !r->positioned;
}

void
wsh_recovery_free(wsh_member_t *m)
{
    wsh_recovery_t *r = recovery_of(m);

    if (r != NULL) {
        (void) wsh_hash_remove(recovery_members, &m, sizeof(m));
        m->topic->nrecovering--;
        recovery_list_clear(&r->live);
        recovery_list_clear(&r->queue);
        free(r);
    }
}

static void
recovery_overflow(wsh_member_t *m)
{
    wsh_log(WSH_LOG_WARN, "*%llu room history recovery not answered in "
            "time: closing", (unsigned long long) wsh_conn_id(m->owner));
    wsh_recovery_free(m);
    wsh_conn_close(m->owner, WSH_CLOSE_TRY_AGAIN, "history recovery");
}

bool
wsh_recovery_live(wsh_member_t *m, uint64_t offset, wsh_shared_frame_t *f)
{
    wsh_recovery_t *r = recovery_of(m);
    uint64_t last;

    if (r == NULL) {
        return false;
    }
    if (r->positioned) {
        last = r->queue.n > 0 ? r->queue.v[r->queue.n - 1].offset
                              : r->pos.offset;
        if (offset <= last) {
            return true;        /* already replayed */
        }
    }
    if (recovery_list_push(r->positioned ? &r->queue : &r->live, offset, f)
        != WSH_OK)
    {
        recovery_overflow(m);
    }
    return true;
}

/* The joining membership of CONN_ID in ROOM, or NULL if it is gone or
 * no longer recovering. */
static wsh_member_t *
recovery_member(const char *room, size_t len, uint64_t conn_id)
{
    wsh_topic_t *t = wsh_topic_find(WSH_TOPIC_ROOM, room, len);
    wsh_queue_t *q;
    wsh_member_t *m;

    if (t == NULL) {
        return NULL;
    }
    for (q = t->members.next; q != &t->members; q = q->next) {
        m = wsh_queue_data(q, wsh_member_t, topic_link);
        if (wsh_conn_id(m->owner) == conn_id) {
            return recovery_of(m) != NULL ? m : NULL;
        }
    }
    return NULL;
}

void
wsh_engine_replay(const char *room, size_t len, uint64_t conn_id,
    uint64_t offset, const char *epoch, size_t elen, const void *data,
    size_t dlen)
{
    wsh_member_t *m = recovery_member(room, len, conn_id);
    wsh_recovery_t *r = m != NULL ? recovery_of(m) : NULL;
    wsh_shared_frame_t *f = NULL;

    if (r == NULL || r->positioned) {
        return;
    }
    /* As the live message was: written by the module of the one that
     * recovers, the module of the room's members. */
    data = wsh_engine_numbered(wsh_engine_conns->module(m->owner), room,
                               len, offset, epoch, elen, data, &dlen);
    if (data != NULL) {
        f = wsh_engine_conns->frame(WSH_OPCODE_TEXT, data, dlen);
    }
    if (f == NULL || recovery_list_push(&r->queue, offset, f) != WSH_OK) {
        recovery_overflow(m);
    }
    if (f != NULL) {
        wsh_engine_conns->frame_release(f);
    }
}

/* ROOM's entry, created at (OFFSET, EPOCH) when absent: *CREATED
 * tells. NULL on ENOMEM or a bad epoch. */
static recovery_room_t *
recovery_room(const char *room, size_t len, uint64_t offset,
    const char *epoch, size_t elen, bool *created)
{
    recovery_room_t *rr;

    *created = false;
    if (elen > WSH_EPOCH_MAX) {
        return NULL;
    }
    if (recovery_rooms == NULL && (recovery_rooms = wsh_hash_new()) == NULL) {
        return NULL;
    }
    rr = wsh_hash_get(recovery_rooms, room, len);
    if (rr != NULL) {
        return rr;
    }
    rr = calloc(1, sizeof(*rr));
    if (rr == NULL || wsh_hash_put(recovery_rooms, room, len, rr) != WSH_OK) {
        free(rr);
        return NULL;
    }
    rr->offset = offset;
    memcpy(rr->epoch, epoch, elen);
    *created = true;
    return rr;
}

/* Where RR's members stand, as a position to rejoin from. */
static void
recovery_position(const recovery_room_t *rr, wsh_room_position_t *pos)
{
    memset(pos, 0, sizeof(*pos));
    pos->history = 1;
    pos->recovered = -1;
    pos->offset = rr->offset;
    memcpy(pos->epoch, rr->epoch, sizeof(rr->epoch));
}

/* Is (OFFSET, EPOCH) past what RR's members have, beyond NEXT more?
 * *SINCE is then where to rejoin from: their position, or the start of
 * the new epoch. */
static bool
recovery_hole(const recovery_room_t *rr, uint64_t offset,
    const char *epoch, size_t elen, uint64_t next,
    wsh_room_position_t *since)
{
    recovery_position(rr, since);
    if (strlen(rr->epoch) != elen || memcmp(rr->epoch, epoch, elen) != 0) {
        since->offset = 0;                      /* from the new start */
        memset(since->epoch, 0, sizeof(since->epoch));
        memcpy(since->epoch, epoch, elen);
        return true;
    }
    return offset > rr->offset + next;
}

bool
wsh_recovery_advance(const char *room, size_t len, uint64_t offset,
    const char *epoch, size_t elen, wsh_room_position_t *since)
{
    recovery_room_t *rr;
    bool created, hole;

    rr = recovery_room(room, len, offset, epoch, elen, &created);
    if (rr == NULL || created) {
        return false;
    }
    hole = recovery_hole(rr, offset, epoch, elen, 1, since);
    if (hole || offset > rr->offset) {
        memcpy(rr->epoch, epoch, elen);
        rr->epoch[elen] = '\0';
        rr->offset = offset;
    }
    return hole;
}

void
wsh_recovery_seed(const char *room, size_t len, uint64_t offset,
    const char *epoch, size_t elen)
{
    bool created;

    (void) recovery_room(room, len, offset, epoch, elen, &created);
}

bool
wsh_recovery_check(const char *room, size_t len, uint64_t offset,
    const char *epoch, size_t elen, wsh_room_position_t *since)
{
    recovery_room_t *rr;

    rr = recovery_rooms ? wsh_hash_get(recovery_rooms, room, len) : NULL;
    return rr != NULL && elen <= WSH_EPOCH_MAX
           && recovery_hole(rr, offset, epoch, elen, 0, since);
}

void
wsh_recovery_each_room(void (*cb)(const char *room, size_t len,
    const wsh_room_position_t *pos))
{
    char room[WSH_TOPIC_NAME_MAX];
    wsh_room_position_t pos;
    const recovery_room_t *rr;
    wsh_hash_iter_t it;
    const void *key;
    size_t klen;
    void *value;

    if (recovery_rooms == NULL) {
        return;
    }
    wsh_hash_iter_init(recovery_rooms, &it);
    while (wsh_hash_next(&it, &key, &klen, &value)) {
        /* Copies: CB may remove the entry, its key and value with it. */
        rr = value;
        recovery_position(rr, &pos);
        if (klen <= sizeof(room)) {
            memcpy(room, key, klen);
            cb(room, klen, &pos);
        }
    }
}

void
wsh_recovery_room_gone(const char *room, size_t len)
{
    if (recovery_rooms != NULL) {
        free(wsh_hash_remove(recovery_rooms, room, len));
    }
}

/* A recovery left at exit (a wsh_hash_free callback). */
static void
recovery_destroy(void *value)
{
    wsh_recovery_t *r = value;

    recovery_list_clear(&r->live);
    recovery_list_clear(&r->queue);
    free(r);
}

void
wsh_recovery_exit(void)
{
    wsh_hash_free(recovery_rooms, free);
    recovery_rooms = NULL;
    wsh_hash_free(recovery_members, recovery_destroy);
    recovery_members = NULL;
}

void
wsh_engine_position(const char *room, size_t len, uint64_t conn_id,
    uint64_t join, bool history, bool recovered, uint64_t offset,
    const char *epoch, size_t elen)
{
    wsh_member_t *m = recovery_member(room, len, conn_id);
    wsh_recovery_t *r = m != NULL ? recovery_of(m) : NULL;
    wsh_room_position_t since;
    size_t i;

    if (conn_id == 0) {
        /* A check of the room's position, after a reconnect (no epoch:
         * the engine could not tell). */
        if (history && elen > 0
            && wsh_recovery_check(room, len, offset, epoch, elen, &since))
        {
            wsh_engine_room_gap(room, len, &since);
        }
        return;
    }
    if (r == NULL || r->positioned || elen > WSH_EPOCH_MAX) {
        return;
    }
    if (join != r->join) {
        /* The answer to a join the connection left before: the replay
         * just received was its, not ours, which follows. */
        recovery_list_clear(&r->queue);
        return;
    }
    r->positioned = true;
    r->pos.history = history;
    if (history) {
        r->pos.offset = offset;
        memcpy(r->pos.epoch, epoch, elen);
        r->pos.epoch[elen] = '\0';
        /* The first join here sets where the room's members stand;
         * a hole after it shows in the next message (advance). */
        wsh_recovery_seed(room, len, offset, epoch, elen);
    }
    if (r->pos.recovered >= 0) {
        r->pos.recovered = history && recovered;
    }
    if (!history || !recovered) {
        recovery_list_clear(&r->queue);
    }
    /* Live messages up to the position are in the replay (or were
     * missed for good when not recovered); the newer ones follow it. */
    for (i = 0; i < r->live.n; i++) {
        if (r->live.v[i].offset > offset
            && recovery_list_push(&r->queue, r->live.v[i].offset,
                                  r->live.v[i].f) != WSH_OK)
        {
            recovery_overflow(m);
            return;
        }
    }
    recovery_list_clear(&r->live);
}

void
wsh_recovery_finish(wsh_member_t *m)
{
    wsh_recovery_t *r = recovery_of(m);
    size_t i;

    /* A failed send closes the connection later, never here. */
    for (i = 0; r != NULL && i < r->queue.n; i++) {
        (void) wsh_engine_conns->deliver(m->owner, r->queue.v[i].f, 0);
    }
    wsh_recovery_free(m);
}

int
wsh_topic_position(const wsh_conn_t *c, const char *room, size_t len,
    wsh_room_position_t *pos)
{
    wsh_member_t *m = wsh_topic_membership(*wsh_engine_conns->topics(c),
                                           WSH_TOPIC_ROOM, room, len);
    wsh_recovery_t *r = m != NULL ? recovery_of(m) : NULL;
    recovery_room_t *rr;

    if (m == NULL) {
        return -1;
    }
    if (r != NULL) {
        *pos = r->pos;
        return 0;
    }
    memset(pos, 0, sizeof(*pos));
    pos->recovered = -1;
    rr = recovery_rooms ? wsh_hash_get(recovery_rooms, room, len) : NULL;
    if (rr != NULL && wsh_topic_has_history(room, len)) {
        pos->history = 1;
        pos->offset = rr->offset;
        memcpy(pos->epoch, rr->epoch, sizeof(pos->epoch));
    }
    return 0;
}

void
wsh_topic_positions(const wsh_conn_t *c, void (*cb)(void *arg,
    const char *room, size_t len, const wsh_room_position_t *pos),
    void *arg)
{
    wsh_room_position_t pos;
    const wsh_member_t *m;

    for (m = *wsh_engine_conns->topics(c); m != NULL; m = m->owner_next) {
        /* A join still recovering has no position to give yet. */
        if (m->topic->kind != WSH_TOPIC_ROOM || recovery_of(m) != NULL) {
            continue;
        }
        if (wsh_topic_position(c, m->topic->name, m->topic->len, &pos) == 0
            && pos.history)
        {
            cb(arg, m->topic->name, m->topic->len, &pos);
        }
    }
}
