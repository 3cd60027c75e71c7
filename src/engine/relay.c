/* relay.c -- the master side of the local engine.
 *
 * Workers subscribe to topics that have local members; the master relays
 * each publish to every other subscribed worker, in arrival order, so the
 * messages of one publisher reach every recipient in the same order. It
 * also holds presence: room -> client id -> connection counts per worker,
 * announcing an id when its first connection joins a room and when its
 * last one leaves, closes, or dies with its worker.
 *
 * Worker processes are identified by their entry in the master's process
 * table ("proc"), which also covers draining workers of older
 * generations: they keep receiving until they exit.
 *
 * For rooms with history (hub.history) the master is the sequencer:
 * SEQPUB messages get the room's next offset and go to every subscribed
 * worker, the publisher's included, and are kept in the room's ring
 * (history.c). A message travels and is kept as published, its offset
 * and epoch in the frame's header fields (wire.h); the workers format
 * it for their members. The master survives reloads, so does the
 * history.
 */
#include "engine/relay.h"
#include "engine/engine.h"
#include "engine/dedup.h"
#include "engine/history.h"
#include "core/hash.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#define RELAY_SWEEP_MS 1000         /* ttl trimming and forgetting */

typedef struct {
    size_t *procs;              /* subscribed process entries */
    size_t  n;
    size_t  cap;
} relay_subs_t;

typedef struct {
    size_t proc;
    size_t count;
} relay_count_t;

typedef struct {
    size_t         total;       /* connections of this id in the room */
    relay_count_t *per;         /* ... per worker */
    size_t         n;
} relay_member_t;

/* A room's presence: its ids, and its rule as the last join or leave
 * brought it (for the leaves of a worker that died). */
typedef struct {
    wsh_hash_t     *ids;        /* id -> relay_member_t */
    wsh_eng_rule_t  rule;
} relay_room_t;

static wsh_hash_t *relay_topics;    /* kind + name -> relay_subs_t */
static wsh_hash_t *relay_rooms;     /* room -> relay_room_t */
static wsh_history_t *relay_history;
static wsh_dedup_t *relay_dedup;           /* idempotency keys */
static uint64_t relay_evicted;             /* keys evicted, as logged */
static const wsh_conf_t *relay_conf;       /* the current cycle's */
static struct event *relay_sweep_ev;
static wsh_service_send_pt relay_send_fn;  /* the master's, to a worker */

static int
relay_init(void)
{
    if (relay_topics == NULL) {
        relay_topics = wsh_hash_new();
        relay_rooms = wsh_hash_new();
    }
    if (relay_history == NULL) {
        relay_history = wsh_history_new();
    }
    if (relay_dedup == NULL) {
        relay_dedup = wsh_dedup_new();
    }
    return relay_topics && relay_rooms && relay_history && relay_dedup
           ? WSH_OK : WSH_ERROR;
}

static void
relay_free_subs(void *p)
{
    relay_subs_t *s = p;

    free(s->procs);
    free(s);
}

static void
relay_free_member(void *p)
{
    relay_member_t *m = p;

    free(m->per);
    free(m);
}

static void
relay_free_room(void *p)
{
    relay_room_t *r = p;

    wsh_hash_free(r->ids, relay_free_member);
    free(r);
}

/* The master exits. */
static void
relay_free(void)
{
    wsh_hash_free(relay_topics, relay_free_subs);
    wsh_hash_free(relay_rooms, relay_free_room);
    relay_topics = relay_rooms = NULL;
    wsh_history_free(relay_history);
    relay_history = NULL;
    wsh_dedup_free(relay_dedup);
    relay_dedup = NULL;
    if (relay_sweep_ev != NULL) {
        event_free(relay_sweep_ev);
        relay_sweep_ev = NULL;
    }
}

static void
relay_send_at(size_t proc, uint32_t cmd, int kind, int flags,
    const char *name, size_t nlen, const char *id, size_t idlen,
    uint64_t conn_id, uint64_t offset, const void *data, size_t dlen)
{
    wsh_eng_hdr_t h;
    struct iovec iov[4];

    wsh_eng_pack(&h, iov, kind, flags, name, nlen, id, idlen, conn_id, data,
                 dlen);
    h.offset = offset;
    (void) relay_send_fn(proc, cmd, iov, 4);
}

static void
relay_send(size_t proc, uint32_t cmd, int kind, int flags, const char *name,
    size_t nlen, const char *id, size_t idlen, uint64_t conn_id,
    const void *data, size_t dlen)
{
    relay_send_at(proc, cmd, kind, flags, name, nlen, id, idlen, conn_id, 0,
                  data, dlen);
}

static size_t
relay_key(u_char *key, int kind, const char *name, size_t len)
{
    key[0] = (u_char) kind;
    memcpy(key + 1, name, len);
    return len + 1;
}

static relay_subs_t *
relay_subs(int kind, const char *name, size_t len)
{
    u_char key[1 + UINT16_MAX];

    return wsh_hash_get(relay_topics, key, relay_key(key, kind, name, len));
}

static void
relay_subscribe(size_t proc, const wsh_eng_msg_t *m)
{
    u_char key[1 + UINT16_MAX];
    size_t klen = relay_key(key, m->h.kind, m->name, m->h.name_len), i;
    relay_subs_t *s = wsh_hash_get(relay_topics, key, klen);
    size_t *p;

    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL || wsh_hash_put(relay_topics, key, klen, s) != WSH_OK) {
            free(s);
            wsh_log(WSH_LOG_ALERT, "out of memory for a subscription");
            return;
        }
    }
    for (i = 0; i < s->n; i++) {
        if (s->procs[i] == proc) {
            return;
        }
    }
    if (s->n == s->cap) {
        p = realloc(s->procs, (s->cap ? s->cap * 2 : 4) * sizeof(*p));
        if (p == NULL) {
            wsh_log(WSH_LOG_ALERT, "out of memory for a subscription");
            return;
        }
        s->procs = p;
        s->cap = s->cap ? s->cap * 2 : 4;
    }
    s->procs[s->n++] = proc;
}

/* Remove PROC from S; frees S (under KEY) when nobody is left. */
static void
relay_unsubscribe_one(relay_subs_t *s, size_t proc, const u_char *key,
    size_t klen)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        if (s->procs[i] == proc) {
            s->procs[i] = s->procs[--s->n];
            break;
        }
    }
    if (s->n == 0) {
        wsh_hash_remove(relay_topics, key, klen);
        relay_free_subs(s);
    }
}

static void
relay_unsubscribe(size_t proc, const wsh_eng_msg_t *m)
{
    u_char key[1 + UINT16_MAX];
    size_t klen = relay_key(key, m->h.kind, m->name, m->h.name_len);
    relay_subs_t *s = wsh_hash_get(relay_topics, key, klen);

    if (s != NULL) {
        relay_unsubscribe_one(s, proc, key, klen);
    }
}

static void
relay_publish(size_t proc, const wsh_eng_msg_t *m)
{
    relay_subs_t *s = relay_subs(m->h.kind, m->name, m->h.name_len);
    size_t i, reached = 0;
    bool found;

    for (i = 0; s != NULL && i < s->n; i++) {
        if (s->procs[i] != proc) {
            relay_send(s->procs[i], WSH_ENG_DELIVER, m->h.kind, 0, m->name,
                       m->h.name_len, NULL, 0, 0, m->data, m->data_len);
            reached++;
        }
    }
    if (m->h.kind != WSH_TOPIC_CLIENT) {
        return;
    }
    found = reached > 0 || (m->h.flags & WSH_ENG_F_DELIVERED);
    if (!found || (m->h.flags & WSH_ENG_F_CONFIRM)) {
        relay_send(proc, WSH_ENG_RESULT, m->h.kind,
                   found ? WSH_ENG_F_FOUND : 0, m->name, m->h.name_len,
                   m->id, m->h.id_len, m->h.conn_id, NULL, 0);
    }
}

/* Tell the workers with members in ROOM that ID joined or left, while
 * the room (of SIZE ids) is within the rule's announce_max;
 * EXCLUDE_CONN (on worker ORIGIN) is the connection that joined. */
static void
relay_announce(const relay_room_t *r, size_t size, const char *room,
    size_t rlen, const char *id, size_t idlen, bool joined, size_t origin,
    uint64_t exclude_conn)
{
    relay_subs_t *s;
    size_t i;

    if (size > r->rule.announce_max) {
        return;         /* a big room: O(1) a join, nobody is told */
    }
    s = relay_subs(WSH_TOPIC_ROOM, room, rlen);
    for (i = 0; s != NULL && i < s->n; i++) {
        relay_send(s->procs[i], WSH_ENG_PRESENCE, WSH_TOPIC_ROOM,
                   joined ? WSH_ENG_F_JOINED : 0, room, rlen, id, idlen,
                   s->procs[i] == origin ? exclude_conn : 0, NULL, 0);
    }
}


/* MEMBERS for a joining connection: the room's count, and every id in
 * it while that is within the rule's list_max. */
static void
relay_members(size_t proc, const wsh_eng_msg_t *m, const relay_room_t *r)
{
    size_t count = wsh_hash_count(r->ids), len, total = 0;
    wsh_hash_iter_t it;
    const void *key;
    u_char *buf = NULL, *p;

    if (count <= r->rule.list_max) {
        wsh_hash_iter_init(r->ids, &it);
        while (wsh_hash_next(&it, NULL, &len, NULL)) {
            total += 2 + len;
        }
        buf = malloc(total ? total : 1);
        if (buf == NULL) {
            wsh_log(WSH_LOG_ALERT, "out of memory for a member list");
            return;
        }
        p = buf;
        wsh_hash_iter_init(r->ids, &it);
        while (wsh_hash_next(&it, &key, &len, NULL)) {
            wsh_engine_put_id(&p, key, len);
        }
    }
    relay_send_at(proc, WSH_ENG_MEMBERS, WSH_TOPIC_ROOM, 0, m->name,
                  m->h.name_len, NULL, 0, m->h.conn_id, count, buf, total);
    free(buf);
}

/* The rule a JOIN or LEAVE brought: v1's (no limits) if none. */
static void
relay_rule(const wsh_eng_msg_t *m, wsh_eng_rule_t *rule)
{
    rule->list_max = UINT32_MAX;
    rule->announce_max = UINT32_MAX;
    if (m->data_len == sizeof(*rule)) {
        memcpy(rule, m->data, sizeof(*rule));
    }
}

static void
relay_join(size_t proc, const wsh_eng_msg_t *m)
{
    relay_room_t *r = wsh_hash_get(relay_rooms, m->name, m->h.name_len);
    relay_member_t *mb;
    relay_count_t *per;
    size_t i;

    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL || (r->ids = wsh_hash_new()) == NULL
            || wsh_hash_put(relay_rooms, m->name, m->h.name_len, r) != WSH_OK)
        {
            if (r != NULL) {
                relay_free_room(r);
            }
            goto nomem;
        }
    }
    relay_rule(m, &r->rule);
    mb = wsh_hash_get(r->ids, m->id, m->h.id_len);
    if (mb == NULL) {
        mb = calloc(1, sizeof(*mb));
        if (mb == NULL
            || wsh_hash_put(r->ids, m->id, m->h.id_len, mb) != WSH_OK)
        {
            free(mb);
            goto nomem;
        }
    }
    for (i = 0; i < mb->n && mb->per[i].proc != proc; i++) { }
    if (i == mb->n) {
        per = realloc(mb->per, (mb->n + 1) * sizeof(*per));
        if (per == NULL) {
            goto nomem;
        }
        mb->per = per;
        mb->per[mb->n].proc = proc;
        mb->per[mb->n].count = 0;
        mb->n++;
    }
    mb->per[i].count++;
    mb->total++;
    relay_members(proc, m, r);
    if (mb->total == 1) {
        relay_announce(r, wsh_hash_count(r->ids), m->name, m->h.name_len,
                       m->id, m->h.id_len, true, proc, m->h.conn_id);
    }
    return;

nomem:
    wsh_log(WSH_LOG_ALERT, "out of memory for room presence");
}

/* Take COUNT connections of worker slot I from member MB (of ID in
 * room R); announces and frees when the id is gone. */
static void
relay_drop(relay_room_t *r, relay_member_t *mb, size_t i, size_t count,
    const char *room, size_t rlen, const void *id, size_t idlen)
{
    mb->per[i].count -= count;
    mb->total -= count;
    if (mb->per[i].count == 0) {
        mb->per[i] = mb->per[--mb->n];
    }
    if (mb->total > 0) {
        return;
    }
    relay_announce(r, wsh_hash_count(r->ids), room, rlen, id, idlen, false,
                   SIZE_MAX, 0);
    wsh_hash_remove(r->ids, id, idlen);
    relay_free_member(mb);
}

static void
relay_leave(size_t proc, const wsh_eng_msg_t *m)
{
    relay_room_t *r = wsh_hash_get(relay_rooms, m->name, m->h.name_len);
    relay_member_t *mb = r ? wsh_hash_get(r->ids, m->id, m->h.id_len) : NULL;
    size_t i;

    if (mb == NULL) {
        return;
    }
    relay_rule(m, &r->rule);
    for (i = 0; i < mb->n && mb->per[i].proc != proc; i++) { }
    if (i < mb->n) {
        relay_drop(r, mb, i, 1, m->name, m->h.name_len, m->id,
                   m->h.id_len);
    }
    if (wsh_hash_count(r->ids) == 0) {
        wsh_hash_remove(relay_rooms, m->name, m->h.name_len);
        relay_free_room(r);
    }
}

/* A page of a room's ids (wsh_hash_scan): the buffer it fills, after
 * room for the answer's head. */
typedef struct {
    u_char *buf;
    size_t  len;
    size_t  cap;
} relay_page_t;

static bool
relay_page_id(void *arg, const void *key, size_t len, void *value)
{
    relay_page_t *pg = arg;
    size_t cap = pg->cap;
    u_char *p;

    (void) value;
    while (cap - pg->len < 2 + len) {
        cap *= 2;
    }
    if (cap != pg->cap) {
        if ((p = realloc(pg->buf, cap)) == NULL) {
            return false;       /* a shorter page */
        }
        pg->buf = p;
        pg->cap = cap;
    }
    p = pg->buf + pg->len;
    wsh_engine_put_id(&p, key, len);
    pg->len += 2 + len;
    return true;
}

/* WHO: the count of a room's ids and a page of them, from a cursor of
 * its table; an unknown room is an empty one. */
static void
relay_who(size_t proc, const wsh_eng_msg_t *m)
{
    relay_room_t *r = wsh_hash_get(relay_rooms, m->name, m->h.name_len);
    size_t count = r ? wsh_hash_count(r->ids) : 0;
    wsh_eng_page_t answer;
    relay_page_t pg;
    wsh_eng_who_t w;

    if (m->data_len != sizeof(w)) {
        wsh_log(WSH_LOG_ALERT, "malformed presence request from a worker");
        return;
    }
    memcpy(&w, m->data, sizeof(w));
    pg.cap = sizeof(answer) + 64 * (w.limit ? w.limit : 1);
    pg.len = sizeof(answer);
    if ((pg.buf = malloc(pg.cap)) == NULL) {
        wsh_log(WSH_LOG_ALERT, "out of memory for a presence page");
        return;
    }
    answer.ticket = w.ticket;
    answer.cursor = r != NULL && w.limit > 0
                    ? wsh_hash_scan(r->ids, w.cursor,
                                    w.limit < WSH_PRESENCE_PAGE_MAX
                                    ? w.limit : WSH_PRESENCE_PAGE_MAX,
                                    relay_page_id, &pg)
                    : 0;
    memcpy(pg.buf, &answer, sizeof(answer));
    relay_send_at(proc, WSH_ENG_PAGE, WSH_TOPIC_ROOM, 0, m->name,
                  m->h.name_len, NULL, 0, m->h.conn_id, count, pg.buf,
                  pg.len);
    free(pg.buf);
}

/* ACKED for a SEQPUB of PROC: its ticket rode in the offset. */
static void
relay_ack(size_t proc, const wsh_eng_msg_t *m, const wsh_dedup_result_t *r)
{
    uint64_t ticket = m->h.offset;

    relay_send_at(proc, WSH_ENG_ACKED, m->h.kind, r->flags, m->name,
                  m->h.name_len, r->epoch, strlen(r->epoch), m->h.conn_id,
                  r->offset, &ticket, sizeof(ticket));
}

/* Number a message of a room with history and keep it, when a rule
 * matches (else, a reload changed the rules: delivered as is); NULL
 * when it is not numbered. *R is its room. */
static const wsh_history_entry_t *
relay_sequence(const wsh_eng_msg_t *m, wsh_history_room_t **r)
{
    const wsh_history_entry_t *e = NULL;
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_history_rule_t rule;

    *r = NULL;
    if (m->h.kind != WSH_TOPIC_ROOM || relay_history == NULL
        || !wsh_history_rule(relay_conf, m->name, m->h.name_len, &rule))
    {
        return NULL;
    }
    *r = wsh_history_room(relay_history, m->name, m->h.name_len, true, now);
    e = *r ? wsh_history_append(*r, &rule, m->data, m->data_len, now) : NULL;
    if (e == NULL) {
        wsh_log(WSH_LOG_ALERT, "a message of a history room was not "
                "sequenced (out of memory)");
    }
    return e;
}

/* A publish through the sequencer: a retry of an idempotency key seen
 * within the window is answered with the first outcome and goes
 * nowhere; otherwise the message is numbered (rooms with history) and
 * sent to every subscribed worker, the publisher's included (its
 * sender skipped there), then acknowledged when asked. */
static void
relay_seqpub(size_t proc, const wsh_eng_msg_t *m)
{
    relay_subs_t *s = relay_subs(m->h.kind, m->name, m->h.name_len);
    const wsh_dedup_result_t *seen = NULL;
    const wsh_history_entry_t *e = NULL;
    wsh_history_room_t *r = NULL;
    wsh_dedup_result_t result;
    wsh_msec_t now = wsh_monotonic_msec();
    size_t i;

    if (m->h.id_len > 0) {
        seen = wsh_dedup_find(relay_dedup, m->h.kind, m->name,
                              m->h.name_len, m->id, m->h.id_len, now);
    }
    if (seen != NULL) {
        result = *seen;
        result.flags |= WSH_ENG_F_DUPLICATE;
        if (m->h.flags & WSH_ENG_F_ACK) {
            relay_ack(proc, m, &result);
        }
        return;
    }
    e = relay_sequence(m, &r);
    for (i = 0; s != NULL && i < s->n; i++) {
        if (m->h.kind != WSH_TOPIC_ROOM) {
            relay_send(s->procs[i], WSH_ENG_DELIVER, m->h.kind, 0, m->name,
                       m->h.name_len, NULL, 0, 0, m->data, m->data_len);
            continue;
        }
        relay_send_at(s->procs[i], WSH_ENG_SEQ, WSH_TOPIC_ROOM, 0, m->name,
                      m->h.name_len, e ? r->epoch : NULL,
                      e ? WSH_HISTORY_EPOCH_LEN : 0,
                      s->procs[i] == proc ? m->h.conn_id : 0,
                      e ? e->offset : 0, e ? e->data : m->data,
                      e ? e->len : m->data_len);
    }
    memset(&result, 0, sizeof(result));
    if (e != NULL) {
        result.offset = e->offset;
        memcpy(result.epoch, r->epoch, WSH_HISTORY_EPOCH_LEN);
    }
    if (s != NULL && s->n > 0) {
        result.flags = WSH_ENG_F_FOUND;
    }
    if (m->h.id_len > 0
        && wsh_dedup_add(relay_dedup, m->h.kind, m->name, m->h.name_len,
                         m->id, m->h.id_len, &result, now,
                         relay_conf ? relay_conf->engine.idempotency_window
                                    : 300000)
           != WSH_OK)
    {
        wsh_log(WSH_LOG_ALERT, "an idempotency key was not kept (out of "
                "memory): a retry with it would publish again");
    }
    if (m->h.flags & WSH_ENG_F_ACK) {
        relay_ack(proc, m, &result);
    }
}

/* A connection joins a room with history: its missed messages (after
 * since, when it gave one and they are all still here), then its
 * position. Sent on the channel that brought its SUB, so the worker has
 * everything sequenced later live. */
static void
relay_history_request(size_t proc, const wsh_eng_msg_t *m)
{
    wsh_history_room_t *r = NULL;
    wsh_msec_t now = wsh_monotonic_msec();
    size_t i, first = 0;
    bool recovered = false;
    const wsh_history_entry_t *e;
    wsh_history_rule_t rule;

    if (relay_history != NULL
        && wsh_history_rule(relay_conf, m->name, m->h.name_len, &rule))
    {
        r = wsh_history_room(relay_history, m->name, m->h.name_len, true,
                             now);
    }
    if (r == NULL) {
        relay_send_at(proc, WSH_ENG_POSITION, WSH_TOPIC_ROOM, 0, m->name,
                      m->h.name_len, NULL, 0, m->h.conn_id, 0, m->data,
                      m->data_len);
        return;
    }
    wsh_history_trim(r, &rule, now);
    if (m->h.flags & WSH_ENG_F_SINCE) {
        recovered = wsh_history_recoverable(r, m->h.offset, m->id,
                                            m->h.id_len, &first);
    }
    for (i = first; recovered && i < r->n; i++) {
        e = wsh_history_at(r, i);
        relay_send_at(proc, WSH_ENG_REPLAY, WSH_TOPIC_ROOM, 0, m->name,
                      m->h.name_len, r->epoch, WSH_HISTORY_EPOCH_LEN,
                      m->h.conn_id, e->offset, e->data, e->len);
    }
    relay_send_at(proc, WSH_ENG_POSITION, WSH_TOPIC_ROOM,
                  WSH_ENG_F_HISTORY | (recovered ? WSH_ENG_F_RECOVERED : 0),
                  m->name, m->h.name_len, r->epoch, WSH_HISTORY_EPOCH_LEN,
                  m->h.conn_id, r->offset, m->data, m->data_len);
}

static bool
relay_room_subscribed(const char *room, size_t len, void *arg)
{
    return relay_subs(WSH_TOPIC_ROOM, room, len) != NULL;
}

/* The sweep's rule of a room: the current configuration's. */
static bool
relay_room_rule(const char *room, size_t len, void *arg,
    wsh_history_rule_t *out)
{
    (void) arg;
    return wsh_history_rule(relay_conf, room, len, out);
}

static void
relay_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();

    if (relay_history != NULL && relay_conf != NULL) {
        (void) wsh_history_sweep(relay_history, now, relay_room_rule,
                                 relay_room_subscribed, NULL);
    }
    if (relay_dedup != NULL) {
        wsh_dedup_expire(relay_dedup, now);
        if (wsh_dedup_evicted(relay_dedup) != relay_evicted) {
            wsh_log(WSH_LOG_WARN, "%llu idempotency keys forgotten before "
                    "their window ended: more than %d within "
                    "engine.idempotency_window",
                    (unsigned long long) (wsh_dedup_evicted(relay_dedup)
                                          - relay_evicted), WSH_DEDUP_MAX);
            relay_evicted = wsh_dedup_evicted(relay_dedup);
        }
    }
}

/* The master's configuration changed (start, reload): the history rules
 * to sequence with, and the loop for the history sweep timer. */
static int
relay_configure(struct event_base *base, const wsh_conf_t *cf,
    wsh_service_send_pt send)
{
    struct timeval tv = { RELAY_SWEEP_MS / 1000,
                          (RELAY_SWEEP_MS % 1000) * 1000 };

    relay_send_fn = send;
    relay_conf = cf;
    if (relay_init() != WSH_OK) {
        return WSH_ERROR;
    }
    if (relay_sweep_ev == NULL) {
        relay_sweep_ev = event_new(base, -1, EV_PERSIST, relay_sweep_cb,
                                   NULL);
        if (relay_sweep_ev == NULL || event_add(relay_sweep_ev, &tv) != 0) {
            wsh_log(WSH_LOG_EMERG, "event_new() failed for the history "
                    "sweep");
            return WSH_ERROR;
        }
    }
    return WSH_OK;
}

/* A frame from the worker process entry PROC. */
static void
relay_message(size_t proc, uint32_t cmd, const u_char *p, size_t len)
{
    wsh_eng_msg_t m;

    if (relay_init() != WSH_OK || wsh_eng_decode(p, len, &m) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "dropped engine message %u from a worker",
                cmd);
        return;
    }
    switch (cmd) {
    case WSH_ENG_SUB:   relay_subscribe(proc, &m); break;
    case WSH_ENG_UNSUB: relay_unsubscribe(proc, &m); break;
    case WSH_ENG_PUB:   relay_publish(proc, &m); break;
    case WSH_ENG_JOIN:  relay_join(proc, &m); break;
    case WSH_ENG_LEAVE: relay_leave(proc, &m); break;
    case WSH_ENG_SEQPUB: relay_seqpub(proc, &m); break;
    case WSH_ENG_HISTORY: relay_history_request(proc, &m); break;
    case WSH_ENG_WHO:   relay_who(proc, &m); break;
    default:
        wsh_log(WSH_LOG_ALERT, "unknown engine message %u from a worker",
                cmd);
        break;
    }
}

/* The worker PROC exited: drop its subscriptions and presence, telling
 * the remaining members of its rooms who left. */
static void
relay_proc_gone(size_t proc)
{
    wsh_hash_iter_t it, mit;
    const void *key, *id;
    size_t klen, idlen, i;
    void *value, *mv;
    relay_member_t *mb;
    relay_room_t *r;

    if (relay_topics == NULL) {
        return;
    }
    wsh_hash_iter_init(relay_topics, &it);
    while (wsh_hash_next(&it, &key, &klen, &value)) {
        relay_unsubscribe_one(value, proc, key, klen);
    }
    /* Its connections are gone without saying so: tell the survivors. */
    wsh_hash_iter_init(relay_rooms, &it);
    while (wsh_hash_next(&it, &key, &klen, &value)) {
        r = value;
        wsh_hash_iter_init(r->ids, &mit);
        while (wsh_hash_next(&mit, &id, &idlen, &mv)) {
            mb = mv;
            for (i = 0; i < mb->n && mb->per[i].proc != proc; i++) { }
            if (i < mb->n) {
                relay_drop(r, mb, i, mb->per[i].count, key, klen, id,
                           idlen);
            }
        }
        if (wsh_hash_count(r->ids) == 0) {
            wsh_hash_remove(relay_rooms, key, klen);
            relay_free_room(value);
        }
    }
}

const wsh_service_t wsh_relay_service = {
    .name = "relay",
    .configure = relay_configure,
    .message = relay_message,
    .proc_gone = relay_proc_gone,
    .free = relay_free,
};
