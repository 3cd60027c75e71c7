/* engine.c -- the worker side of pub/sub: topics, publish, delivery.
 *
 * Modules join and leave topics and publish through src/wshub.h; this
 * file keeps the worker's topic index (topic.h), delivers to local
 * members at once, and tells the configured engine (local.c: the master
 * over the channel) what other workers and hosts need: a subscription
 * when a topic gets its first local member, an unsubscription when the
 * last leaves, presence changes, and each publish once. What the engine
 * brings back comes in through the wsh_engine_deliver/members/presence/
 * result functions.
 *
 * Delivery builds the WebSocket frame once and hands the same bytes to
 * every recipient by reference, so fan-out to N members costs one encode
 * and N queue appends. A numbered message (rooms with history) comes
 * as published with its offset and epoch beside it; the module of the
 * room's members writes them in (its numbered hook) once, before the
 * frame is built. Connections are reached only through the
 * operations the worker gave (engine.h, wsh_engine_conn_ops_t).
 */
#include "engine/engine.h"
#include "engine/history.h"
#include "engine/recovery.h"
#include "engine/topic.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/module.h"
#include "core/stats.h"
#include "core/runtime.h"

#include <stdlib.h>
#include <string.h>

static const wsh_engine_ops_t *engine;

const wsh_engine_conn_ops_t *wsh_engine_conns;

/* Publishes waiting for the sequencer's answer: ticket -> connection
 * (which counts them, wsh_engine_conn_ops_t acks, so that closing it
 * forgets them). */
static wsh_hash_t *engine_acks;
static uint64_t engine_last_ticket;

/* Numbered messages as the room's module writes them: one buffer,
 * grown to the longest and kept, so that in the steady state writing
 * them costs no allocation; the frame copies it. */
static u_char *engine_numbered_buf;
static size_t engine_numbered_cap;

int
wsh_engine_init_worker(const wsh_engine_conn_ops_t *conns)
{
    wsh_engine_conns = conns;
    engine = wsh_worker.conf->engine.redis ? &wsh_engine_redis
                                           : &wsh_engine_local;
    engine_acks = wsh_hash_new();
    if (wsh_topic_index_init() != WSH_OK || engine_acks == NULL) {
        return WSH_ERROR;
    }
    if (engine->init_worker != NULL && engine->init_worker() != WSH_OK) {
        return WSH_ERROR;
    }
    wsh_stat_set(WSH_STAT_ENGINE_UP, wsh_engine_up());
    return WSH_OK;
}

const char *
wsh_engine_name(void)
{
    return engine != NULL ? engine->name : "none";
}

bool
wsh_engine_up(void)
{
    return engine != NULL && (engine->up == NULL || engine->up());
}

void
wsh_engine_info(wsh_server_info_t *info)
{
    info->engine_breaker = NULL;
    info->engine_reconnects = 0;
    info->engine_failures = 0;
    info->engine_address = NULL;
    info->engine_shards = NULL;
    info->engine_nshards = 0;
    info->engine_sharded = 0;
    if (engine != NULL && engine->info != NULL) {
        engine->info(info);
    }
}

void
wsh_engine_exit_worker(void)
{
    if (engine != NULL && engine->exit_worker != NULL) {
        engine->exit_worker();
    }
    wsh_topic_index_free();
    wsh_recovery_exit();
    wsh_hash_free(engine_acks, NULL);
    engine_acks = NULL;
    free(engine_numbered_buf);
    engine_numbered_buf = NULL;
    engine_numbered_cap = 0;
}

/* The presence rule of ROOM here: v1's (no limit) unless a module
 * lowers it. */
static void
engine_presence_rule(const char *room, size_t len, wsh_presence_rule_t *rule)
{
    const wsh_module_t *m;
    size_t i;

    rule->list_max = SIZE_MAX;
    rule->announce_max = SIZE_MAX;
    for (i = 0; i < wsh_module_count(); i++) {
        m = wsh_module_at(i);
        if (m->room_presence != NULL) {
            m->room_presence(wsh_conf_section(wsh_worker.conf, m), room, len,
                             rule);
        }
    }
}

/* C's membership of a topic, or NULL. */
static wsh_member_t *
engine_membership(const wsh_conn_t *c, int kind, const char *name,
    size_t len)
{
    return wsh_topic_membership(*wsh_engine_conns->topics(c), kind, name,
                                len);
}

/* Join C to a topic; RECOVER: a room join that learns its position
 * (HISTORY: from the engine) before the members hook, see recovery.c. */
static int
engine_join(wsh_conn_t *c, int kind, const char *name, size_t len,
    const char *presence_id, size_t idlen, bool recover, bool history,
    const wsh_since_t *since)
{
    wsh_member_t *m;
    wsh_presence_rule_t rule;
    bool first, last;

    if (engine_membership(c, kind, name, len) != NULL) {
        return -1;
    }
    if (kind != WSH_TOPIC_ROOM) {
        idlen = 0;
    }
    m = wsh_topic_add(wsh_engine_conns->topics(c), c, kind, name, len,
                      presence_id, idlen, &first);
    if (m == NULL) {
        return -1;
    }
    if (recover && wsh_recovery_start(m, since, history) != WSH_OK) {
        wsh_topic_remove(wsh_engine_conns->topics(c), m, &last);
        wsh_topic_member_free(m);
        return -1;
    }
    if (first) {
        engine->subscribe(kind, name, len);
    }
    /* Subscribed first, then the position, then presence: the engine
     * answers the position before the members (engine.h). */
    if (history) {
        engine->history(name, len, wsh_conn_id(c), wsh_recovery_join(m),
                        since);
    }
    if (kind == WSH_TOPIC_ROOM) {
        wsh_stat_room_resized(m->topic->nmembers - 1, m->topic->nmembers);
        engine_presence_rule(name, len, &rule);
        engine->join(name, len, presence_id, idlen, wsh_conn_id(c), &rule);
    }
    return 0;
}

int
wsh_topic_join(wsh_conn_t *c, int kind, const char *name, size_t len,
    const char *presence_id, size_t idlen)
{
    return engine_join(c, kind, name, len, presence_id, idlen, false, false,
                       NULL);
}

int
wsh_topic_has_history(const char *room, size_t len)
{
    wsh_history_rule_t rule;

    return engine != NULL && engine->publish_acked != NULL
           && wsh_history_rule(wsh_worker.conf, room, len, &rule);
}

int
wsh_topic_join_since(wsh_conn_t *c, const char *room, size_t len,
    const char *presence_id, size_t idlen, const wsh_since_t *since)
{
    bool history = wsh_topic_has_history(room, len);

    return engine_join(c, WSH_TOPIC_ROOM, room, len, presence_id, idlen,
                       history || since != NULL, history, since);
}

static void
engine_leave(wsh_member_t *m)
{
    wsh_topic_t *t = m->topic;
    wsh_presence_rule_t rule;
    const char *id;
    size_t idlen;
    bool last;

    wsh_recovery_free(m);
    /* Out of the topic first: an engine that announces the leave at
     * once (Redis down) must not tell the leaver. */
    wsh_topic_remove(wsh_engine_conns->topics(m->owner), m, &last);
    if (t->kind == WSH_TOPIC_ROOM) {
        /* Counted after the removal: the room had one member more. */
        wsh_stat_room_resized(t->nmembers + 1, t->nmembers);
        engine_presence_rule(t->name, t->len, &rule);
        id = wsh_topic_member_id(m, &idlen);
        engine->leave(t->name, t->len, id, idlen, &rule);
    }
    if (last) {
        engine->unsubscribe(t->kind, t->name, t->len);
        if (t->kind == WSH_TOPIC_ROOM) {
            wsh_recovery_room_gone(t->name, t->len);
        }
    }
    wsh_topic_member_free(m);
}

int
wsh_topic_leave(wsh_conn_t *c, int kind, const char *name, size_t len)
{
    wsh_member_t *m = engine_membership(c, kind, name, len);

    if (m == NULL) {
        return -1;
    }
    engine_leave(m);
    return 0;
}

int
wsh_topic_is_member(const wsh_conn_t *c, int kind, const char *name,
    size_t len)
{
    return engine_membership(c, kind, name, len) != NULL;
}

const char *
wsh_topic_joined(const wsh_conn_t *c, int kind, size_t *len)
{
    const wsh_member_t *m;

    for (m = *wsh_engine_conns->topics(c); m != NULL; m = m->owner_next) {
        if (m->topic->kind == kind) {
            *len = m->topic->len;
            return m->topic->name;
        }
    }
    *len = 0;
    return NULL;
}

size_t
wsh_topic_count(const wsh_conn_t *c, int kind)
{
    const wsh_member_t *m;
    size_t n = 0;

    for (m = *wsh_engine_conns->topics(c); m != NULL; m = m->owner_next) {
        n += m->topic->kind == kind;
    }
    return n;
}

/* C is closing: its publishes' answers will find nobody. */
static void
engine_forget_acks(wsh_conn_t *c, uint16_t *acks)
{
    wsh_hash_iter_t it;
    const void *key;
    size_t klen;
    void *value;

    wsh_hash_iter_init(engine_acks, &it);
    while (*acks > 0 && wsh_hash_next(&it, &key, &klen, &value)) {
        if (value == c) {
            (void) wsh_hash_remove(engine_acks, key, klen);
            (*acks)--;
        }
    }
}

void
wsh_engine_conn_closed(wsh_conn_t *c)
{
    uint16_t *acks = wsh_engine_conns->acks(c);
    wsh_member_t **topics = wsh_engine_conns->topics(c);

    if (*acks > 0 && engine_acks != NULL) {
        engine_forget_acks(c, acks);
    }
    while (*topics != NULL) {
        engine_leave(*topics);  /* the first: removed in one step */
    }
}

/* Deliver DATA to the local members of a topic but the connection
 * EXCLUDE_ID (0: none). OFFSET (rooms with history, else 0) is held for
 * the members still joining. */
static size_t
engine_deliver(int kind, const char *name, size_t len, const void *data,
    size_t dlen, uint64_t exclude_id, uint64_t offset)
{
    const wsh_engine_conn_ops_t *conns = wsh_engine_conns;
    wsh_topic_t *t = wsh_topic_find(kind, name, len);
    wsh_shared_frame_t *f;
    wsh_queue_t *q, *next;
    wsh_member_t *m;
    wsh_conn_t *c;
    size_t n = 0;

    if (t == NULL) {
        return 0;
    }
    f = conns->frame(WSH_OPCODE_TEXT, data, dlen);
    if (f == NULL) {
        wsh_log(WSH_LOG_ALERT, "out of memory for a %zu-byte message", dlen);
        return 0;
    }
    for (q = t->members.next; q != &t->members; q = next) {
        next = q->next;
        m = wsh_queue_data(q, wsh_member_t, topic_link);
        c = m->owner;
        /* The rare joins under way with history are looked up only in
         * a room that has some; the publisher is skipped by net. */
        if (offset != 0 && t->nrecovering > 0
            && (exclude_id == 0 || wsh_conn_id(c) != exclude_id)
            && wsh_recovery_live(m, offset, f))
        {
            continue;           /* held for a join under way */
        }
        if (conns->deliver(c, f, exclude_id) == 0) {
            n++;
        }
    }
    conns->frame_release(f);
    return n;
}

/* The client id topic a connection joined (its own id), for replies
 * the master routes back to it. */
static const wsh_topic_t *
engine_own_client_topic(const wsh_conn_t *c)
{
    const wsh_member_t *m;

    for (m = *wsh_engine_conns->topics(c); m != NULL; m = m->owner_next) {
        if (m->topic->kind == WSH_TOPIC_CLIENT) {
            return m->topic;
        }
    }
    return NULL;
}

/* A ticket for SENDER's acknowledged publish, 0 when it has too many
 * waiting (or ENOMEM): its module is then answered at once, failed. */
static uint64_t
engine_ticket(wsh_conn_t *sender)
{
    uint16_t *acks = wsh_engine_conns->acks(sender);
    uint64_t ticket = ++engine_last_ticket;

    if (*acks == UINT16_MAX
        || wsh_hash_put(engine_acks, &ticket, sizeof(ticket), sender)
           != WSH_OK)
    {
        return 0;
    }
    (*acks)++;
    return ticket;
}

size_t
wsh_publish_acked(int kind, const char *name, size_t len, const void *data,
    size_t dlen, wsh_conn_t *sender, int flags, wsh_publish_ack_t *ack)
{
    const wsh_topic_t *own = NULL, *t;
    bool keyed = ack != NULL && ack->key != NULL && ack->key_len > 0
                 && ack->key_len <= WSH_IDEMPOTENCY_KEY_MAX;
    uint64_t ticket = 0;
    size_t n;

    if (ack != NULL) {
        ack->ticket = 0;
        ack->refused = 0;
    }
    /* A room with history is delivered once sequenced, here too; so is
     * a publish with an idempotency key, which may be a retry. */
    if (!(flags & WSH_PUBLISH_LOCAL) && engine->publish_acked != NULL
        && (keyed || (kind == WSH_TOPIC_ROOM
                      && wsh_topic_has_history(name, len))))
    {
        wsh_stat_add(WSH_STAT_ENGINE_PUBLISH, 1);
        if (ack != NULL && sender != NULL) {
            ticket = engine_ticket(sender);
            if (ticket == 0) {
                wsh_log(WSH_LOG_ERR, "a publish was refused: its connection "
                        "has %u waiting for the engine, or out of memory",
                        (unsigned) *wsh_engine_conns->acks(sender));
                ack->refused = 1;
                return 0;
            }
            ack->ticket = ticket;
        }
        engine->publish_acked(kind, name, len,
                              sender ? wsh_conn_id(sender) : 0,
                              ticket, keyed ? ack->key : NULL,
                              keyed ? ack->key_len : 0, data, dlen);
        t = kind == WSH_TOPIC_ROOM ? wsh_topic_find(kind, name, len) : NULL;
        n = t ? t->nmembers : 0;
        return n - (n > 0 && sender != NULL
                    && engine_membership(sender, kind, name, len));
    }
    n = engine_deliver(kind, name, len, data, dlen,
                       sender ? wsh_conn_id(sender) : 0, 0);
    if (!(flags & WSH_PUBLISH_LOCAL)) {
        wsh_stat_add(WSH_STAT_ENGINE_PUBLISH, 1);
        if (sender != NULL) {
            own = engine_own_client_topic(sender);
        }
        engine->publish(kind, name, len,
                        (n ? WSH_ENG_F_DELIVERED : 0)
                        | ((flags & WSH_PUBLISH_CONFIRM) && n == 0
                           ? WSH_ENG_F_CONFIRM : 0),
                        own ? own->name : NULL, own ? own->len : 0,
                        sender ? wsh_conn_id(sender) : 0, data, dlen);
    }
    return n;
}

size_t
wsh_publish(int kind, const char *name, size_t len, const void *data,
    size_t dlen, wsh_conn_t *sender, int flags)
{
    return wsh_publish_acked(kind, name, len, data, dlen, sender, flags,
                             NULL);
}

/* The connection TICKET was given to, now answered: NULL when it
 * closed meanwhile (or the id is not CONN_ID's any more). */
static wsh_conn_t *
engine_answered(uint64_t ticket, uint64_t conn_id)
{
    wsh_conn_t *c = wsh_hash_remove(engine_acks, &ticket, sizeof(ticket));

    if (c == NULL) {
        return NULL;
    }
    (*wsh_engine_conns->acks(c))--;
    return wsh_conn_id(c) == conn_id && !wsh_engine_conns->closed(c)
           ? c : NULL;
}

void
wsh_engine_acked(uint64_t conn_id, uint64_t ticket, int kind,
    bool failed, uint64_t offset, const char *epoch, size_t elen, int flags)
{
    wsh_conn_t *c = engine_answered(ticket, conn_id);
    const wsh_module_t *module;
    wsh_ack_t ack;

    if (c == NULL || (module = wsh_engine_conns->module(c))->acked == NULL) {
        return;
    }
    ack.kind = kind;
    ack.failed = failed;
    ack.duplicate = (flags & WSH_ENG_F_DUPLICATE) != 0;
    ack.found = (flags & WSH_ENG_F_FOUND) != 0;
    ack.offset = offset;
    ack.epoch = offset ? epoch : NULL;
    ack.epoch_len = offset ? elen : 0;
    module->acked(c, ticket, &ack);
}

/* The (uint16 length, bytes) pairs of IDS as arrays into *V and *LENS
 * (the caller frees both); returns their number, or -1 on ENOMEM. */
static ssize_t
engine_ids(const u_char *ids, size_t idslen, const char ***v, size_t **lens)
{
    const u_char *p = ids, *last = ids + idslen;
    size_t n = 0, max = idslen / 2 + 1, *ls;
    const char **vs;
    uint16_t l;

    *v = vs = malloc(max * sizeof(*vs));
    *lens = ls = malloc(max * sizeof(*ls));
    if (vs == NULL || ls == NULL) {
        free(vs);
        free(ls);
        return -1;
    }
    while (last - p >= 2) {
        memcpy(&l, p, 2);
        p += 2;
        if (l > last - p) {
            break;
        }
        vs[n] = (const char *) p;
        ls[n++] = l;
        p += l;
    }
    return (ssize_t) n;
}

uint64_t
wsh_topic_presence(wsh_conn_t *c, const char *room, size_t len,
    const char *cursor, size_t clen, size_t limit)
{
    uint64_t ticket;
    size_t i;

    if (cursor == NULL) {
        cursor = "0";
        clen = 1;
    }
    /* Every engine's cursors are decimal numbers below 2^63. */
    for (i = 0; i < clen && cursor[i] >= '0' && cursor[i] <= '9'; i++) { }
    if (clen == 0 || i < clen || clen > WSH_PRESENCE_CURSOR_MAX
        || len > WSH_TOPIC_NAME_MAX || (ticket = engine_ticket(c)) == 0)
    {
        return 0;
    }
    if (engine->who(room, len, wsh_conn_id(c), ticket, cursor, clen,
                    limit < WSH_PRESENCE_PAGE_MAX
                    ? limit : WSH_PRESENCE_PAGE_MAX) != 0)
    {
        (void) wsh_hash_remove(engine_acks, &ticket, sizeof(ticket));
        (*wsh_engine_conns->acks(c))--;
        return 0;
    }
    return ticket;
}

void
wsh_engine_page(const char *room, size_t len, uint64_t conn_id,
    uint64_t ticket, bool failed, size_t count, const u_char *ids,
    size_t idslen, const char *cursor, size_t clen)
{
    wsh_conn_t *c = engine_answered(ticket, conn_id);
    const wsh_module_t *module;
    wsh_presence_page_t page;
    const char **v = NULL;
    size_t *lens = NULL;
    ssize_t n = 0;

    if (c == NULL
        || (module = wsh_engine_conns->module(c))->presence_page == NULL)
    {
        return;
    }
    memset(&page, 0, sizeof(page));
    page.room = room;
    page.room_len = len;
    if (!failed && (n = engine_ids(ids, idslen, &v, &lens)) < 0) {
        failed = true;
    }
    page.failed = failed;
    if (!failed) {
        page.count = count;
        page.ids = v;
        page.lens = lens;
        page.n = (size_t) n;
        page.cursor = cursor;
        page.cursor_len = clen;
    }
    module->presence_page(c, ticket, &page);
    free(v);
    free(lens);
}

/* A local connection by id among the members of a topic, looked for
 * from the newest member: the engine's answers about a member (the
 * members of its join, the event of its join) come in the order of
 * the joins, so only joins still waiting are passed, not the room. */
static wsh_conn_t *
engine_find_conn(int kind, const char *name, size_t len, uint64_t conn_id)
{
    wsh_topic_t *t = wsh_topic_find(kind, name, len);
    wsh_queue_t *q;
    wsh_conn_t *c;

    if (t == NULL || conn_id == 0) {
        return NULL;
    }
    for (q = t->members.prev; q != &t->members; q = q->prev) {
        c = wsh_queue_data(q, wsh_member_t, topic_link)->owner;
        if (wsh_conn_id(c) == conn_id) {
            return c;
        }
    }
    return NULL;
}

/* The join of ROOM by C is answered: what a recovering join held
 * follows the answer. */
static void
engine_members_done(wsh_conn_t *c, const char *room, size_t len)
{
    wsh_member_t *m = engine_membership(c, WSH_TOPIC_ROOM, room, len);

    if (m != NULL) {
        wsh_recovery_finish(m);
    }
}

void
wsh_engine_members(const char *room, size_t len, uint64_t conn_id,
    const u_char *ids, size_t idslen, size_t count)
{
    const char **v;
    size_t *lens;
    ssize_t n;
    const wsh_module_t *module;
    wsh_conn_t *c;

    c = engine_find_conn(WSH_TOPIC_ROOM, room, len, conn_id);
    if (c == NULL || !wsh_engine_conns->open(c)) {
        return;         /* it left or closed meanwhile */
    }
    if (wsh_recovery_waiting(engine_membership(c, WSH_TOPIC_ROOM, room,
                                               len)))
    {
        return;         /* the answer to a join it left since */
    }
    module = wsh_engine_conns->module(c);
    if (module->members == NULL) {
        engine_members_done(c, room, len);
        return;
    }
    n = engine_ids(ids, idslen, &v, &lens);
    if (n < 0) {
        engine_members_done(c, room, len);
        return;
    }
    module->members(c, room, len, v, lens, (size_t) n,
                    count > (size_t) n ? count : (size_t) n);
    free(v);
    free(lens);
    engine_members_done(c, room, len);
}

void
wsh_engine_presence(const char *room, size_t len, const char *id,
    size_t idlen, bool joined, uint64_t exclude_conn)
{
    wsh_presence_rule_t rule;
    wsh_conn_t *exclude;
    wsh_topic_t *t;
    size_t i;

    if ((t = wsh_topic_find(WSH_TOPIC_ROOM, room, len)) == NULL) {
        return;
    }
    /* The engine counts a join when it hears of it, but the joiner is a
     * member here at once: while a crowd joins, the engine's count lags
     * and it announces joins to members it has not counted yet. Past
     * announce_max members here, the room is past it everywhere: a
     * crowd of N costs N messages, not announce_max x N. */
    engine_presence_rule(room, len, &rule);
    if (t->nmembers > rule.announce_max) {
        return;
    }
    exclude = engine_find_conn(WSH_TOPIC_ROOM, room, len, exclude_conn);
    for (i = 0; i < wsh_module_count(); i++) {
        if (wsh_module_at(i)->presence != NULL) {
            wsh_module_at(i)->presence(room, len, id, idlen, joined,
                                       exclude);
        }
    }
}

void
wsh_engine_deliver(int kind, const char *name, size_t len, const void *data,
    size_t dlen)
{
    (void) engine_deliver(kind, name, len, data, dlen, 0, 0);
}

const void *
wsh_engine_numbered(const wsh_module_t *module, const char *room,
    size_t len, uint64_t offset, const char *epoch, size_t elen,
    const void *data, size_t *dlen)
{
    size_t n, cap;

    if (offset == 0 || module->numbered == NULL) {
        return data;
    }
    n = module->numbered(room, len, data, *dlen, offset, epoch, elen,
                         engine_numbered_buf, engine_numbered_cap);
    if (n > engine_numbered_cap) {
        /* Replaced, not realloc'd: nothing in it is worth copying. */
        cap = (n + 4095) & ~(size_t) 4095;
        free(engine_numbered_buf);
        engine_numbered_cap = 0;
        engine_numbered_buf = malloc(cap);
        if (engine_numbered_buf == NULL) {
            wsh_log(WSH_LOG_ALERT, "out of memory for a %zu-byte message",
                    n);
            return NULL;
        }
        engine_numbered_cap = cap;
        n = module->numbered(room, len, data, *dlen, offset, epoch, elen,
                             engine_numbered_buf, engine_numbered_cap);
        if (n > engine_numbered_cap) {
            wsh_log(WSH_LOG_ALERT, "module \"%s\" asked for more room "
                    "for a message of \"%.*s\" than it said it needed",
                    module->name, (int) len, room);
            return NULL;
        }
    }
    if (n == 0) {
        return data;
    }
    *dlen = n;
    return engine_numbered_buf;
}

void
wsh_engine_deliver_seq(const char *room, size_t len, uint64_t exclude_conn,
    uint64_t offset, const char *epoch, size_t elen, const void *data,
    size_t dlen)
{
    wsh_topic_t *t = wsh_topic_find(WSH_TOPIC_ROOM, room, len);
    wsh_room_position_t since;
    wsh_member_t *m;

    if (t == NULL || wsh_queue_empty(&t->members)) {
        return;
    }
    if (offset != 0
        && wsh_recovery_advance(room, len, offset, epoch, elen, &since))
    {
        /* This one too comes with the rejoin's replay. */
        wsh_engine_room_gap(room, len, &since);
        return;
    }
    /* Written once for all the members here: one module serves a
     * room's topic (its name is the module's "REALM#NAME"). */
    m = wsh_queue_data(wsh_queue_head(&t->members), wsh_member_t,
                       topic_link);
    data = wsh_engine_numbered(wsh_engine_conns->module(m->owner), room, len,
                               offset, epoch, elen, data, &dlen);
    if (data != NULL) {
        (void) engine_deliver(WSH_TOPIC_ROOM, room, len, data, dlen,
                              exclude_conn, offset);
    }
}

void
wsh_engine_room_gap(const char *room, size_t len,
    const wsh_room_position_t *since)
{
    const wsh_module_t *module;
    wsh_topic_t *t;
    wsh_member_t *m;
    size_t n = 0;

    while ((t = wsh_topic_find(WSH_TOPIC_ROOM, room, len)) != NULL
           && !wsh_queue_empty(&t->members))
    {
        m = wsh_queue_data(wsh_queue_head(&t->members), wsh_member_t,
                           topic_link);
        module = wsh_engine_conns->module(m->owner);
        if (module->room_reset != NULL) {
            module->room_reset(m->owner, room, len, since);
        }
        engine_leave(m);
        n++;
    }
    wsh_stat_add(WSH_STAT_ROOM_RESETS, n);
    wsh_log(WSH_LOG_WARN, "room \"%.*s\": messages were lost on their way "
            "here, or its history was lost; its %zu members here were told "
            "to rejoin from offset %llu of epoch %s", (int) len, room, n,
            (unsigned long long) since->offset, since->epoch);
}

void
wsh_engine_gap_all(void)
{
    wsh_recovery_each_room(wsh_engine_room_gap);
}

void
wsh_engine_result(const char *to, size_t len, const char *sender,
    size_t slen, uint64_t conn_id, bool found)
{
    const wsh_module_t *module;
    wsh_conn_t *c;

    c = engine_find_conn(WSH_TOPIC_CLIENT, sender, slen, conn_id);
    if (c == NULL) {
        c = wsh_engine_conns->find(conn_id);
    }
    if (c == NULL || wsh_engine_conns->closed(c)) {
        return;
    }
    module = wsh_engine_conns->module(c);
    if (module->publish_result != NULL) {
        module->publish_result(c, to, len, found);
    }
}
