/* local.c -- the worker side of the engine: topics, publish, delivery.
 *
 * A publish is delivered to this worker's members at once and, unless
 * local-only, sent to the master once; the master relays it to the other
 * workers subscribed to the topic (relay.c). The worker subscribes when a
 * topic gets its first local member and unsubscribes when the last one
 * leaves, so the master only ever sends a worker what it can deliver.
 *
 * Delivery builds the WebSocket frame once and hands the same bytes to
 * every recipient by reference (wsh_conn_send_shared), so fan-out to N
 * members costs one encode and N queue appends.
 */
#include "engine/engine.h"
#include "engine/topic.h"
#include "core/log.h"
#include "net/conn.h"
#include "process/channel.h"
#include "process/worker.h"
#include "core/module.h"

#include <stdlib.h>
#include <string.h>

static void
engine_send(uint32_t cmd, int kind, int flags, const char *name, size_t nlen,
    const char *id, size_t idlen, uint64_t conn_id, const void *data,
    size_t dlen)
{
    wsh_eng_hdr_t h;
    struct iovec iov[4];

    wsh_eng_pack(&h, iov, kind, flags, name, nlen, id, idlen, conn_id, data,
                 dlen);
    if (wsh_channel_write(wsh_worker.chan, cmd, iov, 4) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "engine message %u to the master lost", cmd);
    }
}

int
wsh_engine_init_worker(void)
{
    return wsh_topic_index_init();
}

void
wsh_engine_exit_worker(void)
{
    wsh_topic_index_free();
}

int
wsh_topic_join(wsh_conn_t *c, int kind, const char *name, size_t len,
    const char *presence_id, size_t idlen)
{
    wsh_member_t *m;
    bool first;

    if (wsh_topic_membership(c, kind, name, len) != NULL) {
        return -1;
    }
    if (kind != WSH_TOPIC_ROOM) {
        idlen = 0;
    }
    m = wsh_topic_add(&c->topics, c, kind, name, len, presence_id, idlen,
                      &first);
    if (m == NULL) {
        return -1;
    }
    if (first) {
        engine_send(WSH_ENG_SUB, kind, 0, name, len, NULL, 0, 0, NULL, 0);
    }
    if (kind == WSH_TOPIC_ROOM) {
        engine_send(WSH_ENG_JOIN, kind, 0, name, len, presence_id, idlen,
                    c->id, NULL, 0);
    }
    return 0;
}

static void
engine_leave(wsh_member_t *m)
{
    wsh_topic_t *t = m->topic;
    bool last;

    if (t->kind == WSH_TOPIC_ROOM) {
        engine_send(WSH_ENG_LEAVE, t->kind, 0, t->name, t->len, m->id,
                    m->idlen, 0, NULL, 0);
    }
    wsh_topic_remove(m, &last);
    if (last) {
        engine_send(WSH_ENG_UNSUB, t->kind, 0, t->name, t->len, NULL, 0, 0,
                    NULL, 0);
        free(t);
    }
    free(m);
}

int
wsh_topic_leave(wsh_conn_t *c, int kind, const char *name, size_t len)
{
    wsh_member_t *m = wsh_topic_membership(c, kind, name, len);

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
    return wsh_topic_membership(c, kind, name, len) != NULL;
}

void
wsh_engine_conn_closed(wsh_conn_t *c)
{
    while (!wsh_queue_empty(&c->topics)) {
        engine_leave(wsh_queue_data(wsh_queue_head(&c->topics), wsh_member_t,
                                    owner_link));
    }
}

/* Deliver DATA to the local members of a topic but EXCLUDE. */
static size_t
engine_deliver(int kind, const char *name, size_t len, const void *data,
    size_t dlen, const wsh_conn_t *exclude)
{
    wsh_topic_t *t = wsh_topic_find(kind, name, len);
    wsh_shared_frame_t *f;
    wsh_queue_t *q, *next;
    wsh_member_t *m;
    size_t n = 0;

    if (t == NULL) {
        return 0;
    }
    f = wsh_shared_frame_new(WSH_OPCODE_TEXT, data, dlen);
    if (f == NULL) {
        wsh_log(WSH_LOG_ALERT, "out of memory for a %zu-byte message", dlen);
        return 0;
    }
    for (q = t->members.next; q != &t->members; q = next) {
        next = q->next;
        m = wsh_queue_data(q, wsh_member_t, topic_link);
        if (m->owner != exclude && wsh_conn_send_shared(m->owner, f) == 0) {
            n++;
        }
    }
    wsh_shared_frame_release(f);
    return n;
}

/* The client id topic a connection joined (its own id), for replies
 * the master routes back to it. */
static const wsh_topic_t *
engine_own_client_topic(wsh_conn_t *c)
{
    wsh_queue_t *q;
    wsh_member_t *m;

    for (q = c->topics.next; q != &c->topics; q = q->next) {
        m = wsh_queue_data(q, wsh_member_t, owner_link);
        if (m->topic->kind == WSH_TOPIC_CLIENT) {
            return m->topic;
        }
    }
    return NULL;
}

size_t
wsh_publish(int kind, const char *name, size_t len, const void *data,
    size_t dlen, wsh_conn_t *sender, int flags)
{
    const wsh_topic_t *own = NULL;
    size_t n;

    n = engine_deliver(kind, name, len, data, dlen, sender);
    if (!(flags & WSH_PUBLISH_LOCAL)) {
        if (sender != NULL) {
            own = engine_own_client_topic(sender);
        }
        engine_send(WSH_ENG_PUB, kind,
                    (n ? WSH_ENG_F_DELIVERED : 0)
                    | ((flags & WSH_PUBLISH_CONFIRM) && n == 0
                       ? WSH_ENG_F_CONFIRM : 0),
                    name, len,
                    own ? own->name : NULL, own ? own->len : 0,
                    sender ? sender->id : 0, data, dlen);
    }
    return n;
}

/* A local connection by id among the members of a topic. */
static wsh_conn_t *
engine_find_conn(int kind, const char *name, size_t len, uint64_t conn_id)
{
    wsh_topic_t *t = wsh_topic_find(kind, name, len);
    wsh_queue_t *q;
    wsh_conn_t *c;

    if (t == NULL || conn_id == 0) {
        return NULL;
    }
    for (q = t->members.next; q != &t->members; q = q->next) {
        c = wsh_queue_data(q, wsh_member_t, topic_link)->owner;
        if (c->id == conn_id) {
            return c;
        }
    }
    return NULL;
}

/* A connection in no topic (an HTTP publisher): a linear search, on
 * the rare path of answers to confirmed publishes only. */
static wsh_conn_t *
engine_find_any_conn(uint64_t conn_id)
{
    wsh_queue_t *q;
    wsh_conn_t *c;

    for (q = wsh_worker.conns.next; q != &wsh_worker.conns; q = q->next) {
        c = wsh_queue_data(q, wsh_conn_t, link);
        if (c->id == conn_id) {
            return c;
        }
    }
    return NULL;
}

/* MEMBERS: ids as (uint16 length, bytes) pairs. */
static void
engine_members(const wsh_eng_msg_t *m)
{
    const u_char *p = m->data, *last = m->data + m->data_len;
    const char **ids;
    size_t *lens, n = 0, max = m->data_len / 2 + 1;
    uint16_t l;
    wsh_conn_t *c;

    c = engine_find_conn(WSH_TOPIC_ROOM, m->name, m->h.name_len,
                         m->h.conn_id);
    if (c == NULL || c->state != WSH_CONN_WS
        || c->endpoint->module->members == NULL)
    {
        return;         /* it left or closed meanwhile */
    }
    ids = malloc(max * sizeof(*ids));
    lens = malloc(max * sizeof(*lens));
    if (ids == NULL || lens == NULL) {
        free(ids);
        free(lens);
        return;
    }
    while (last - p >= 2) {
        memcpy(&l, p, 2);
        p += 2;
        if (l > last - p) {
            break;
        }
        ids[n] = (const char *) p;
        lens[n++] = l;
        p += l;
    }
    c->endpoint->module->members(c, m->name, m->h.name_len, ids, lens, n);
    free(ids);
    free(lens);
}

static void
engine_presence(const wsh_eng_msg_t *m)
{
    wsh_conn_t *exclude;
    size_t i;

    if (wsh_topic_find(WSH_TOPIC_ROOM, m->name, m->h.name_len) == NULL) {
        return;
    }
    exclude = engine_find_conn(WSH_TOPIC_ROOM, m->name, m->h.name_len,
                               m->h.conn_id);
    for (i = 0; wsh_modules[i] != NULL; i++) {
        if (wsh_modules[i]->presence != NULL) {
            wsh_modules[i]->presence(m->name, m->h.name_len, m->id,
                                     m->h.id_len,
                                     m->h.flags & WSH_ENG_F_JOINED, exclude);
        }
    }
}

void
wsh_engine_channel_message(uint32_t cmd, const u_char *p, size_t len)
{
    wsh_eng_msg_t m;
    wsh_conn_t *c;

    if (wsh_eng_decode(p, len, &m) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "malformed engine message %u", cmd);
        return;
    }
    switch (cmd) {
    case WSH_ENG_DELIVER:
        (void) engine_deliver(m.h.kind, m.name, m.h.name_len, m.data,
                              m.data_len, NULL);
        break;
    case WSH_ENG_MEMBERS:
        engine_members(&m);
        break;
    case WSH_ENG_PRESENCE:
        engine_presence(&m);
        break;
    case WSH_ENG_RESULT:
        c = engine_find_conn(WSH_TOPIC_CLIENT, m.id, m.h.id_len,
                             m.h.conn_id);
        if (c == NULL) {
            c = engine_find_any_conn(m.h.conn_id);
        }
        if (c != NULL && c->state != WSH_CONN_DEAD
            && c->endpoint->module->publish_result != NULL)
        {
            c->endpoint->module->publish_result(c, m.name, m.h.name_len,
                                                m.h.flags & WSH_ENG_F_FOUND);
        }
        break;
    default:
        wsh_log(WSH_LOG_ALERT, "unknown engine message %u", cmd);
        break;
    }
}
