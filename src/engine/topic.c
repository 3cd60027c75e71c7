/* topic.c -- the per-worker topic index (see topic.h).
 *
 * Topics are chained in a hash of kind and name, by a pointer of their
 * own (SipHash under the process key, as core/hash.c: names come from
 * clients); a topic exists only while it has a local member, or while a
 * room membership holds its presence id in it, so the index never
 * outgrows the connections.
 *
 * What this costs is most of what a hub client costs beyond its socket:
 * one in no room is a member of two topics (its realm's all-clients
 * topic, and its own client topic "REALM#ID", which it alone has), and
 * each room it joins is one more membership. So a topic is one
 * allocation, a membership its two links and two pointers, and a room
 * membership one more pointer, to the topic whose name ends with its
 * presence id: the connection's own client topic, which the hub's ids
 * always match, rather than a copy of the id in every room.
 */
#include "engine/topic.h"
#include "core/hash.h"
#include "core/slab.h"
#include "wshub.h"

#include <stdlib.h>
#include <string.h>

#define TOPIC_MIN_BUCKETS 16

/* Topics of up to this many bytes come from slabs of 8-byte size
 * classes, not malloc, which adds 8 bytes and rounds to 16: a client
 * topic is one per connection. */
#define TOPIC_SLAB_MAX 128

/* The kind of a topic made only to hold a presence id that is not the
 * end of its connection's client topic: never in the index. */
#define TOPIC_ID_HOLDER 0xff

/* A room membership. Its presence id is the part of ID's name after the
 * first WSH_REALM_SEP; ID is pinned while the membership exists. */
typedef struct {
    wsh_member_t  m;
    wsh_topic_t  *id;           /* NULL: no presence id */
} topic_room_member_t;

static wsh_slab_t topic_members = WSH_SLAB(sizeof(wsh_member_t));
static wsh_slab_t topic_room_members = WSH_SLAB(sizeof(topic_room_member_t));

static wsh_slab_t topic_slabs[TOPIC_SLAB_MAX / 8];  /* 8, 16, ... bytes */

static wsh_topic_t **topic_buckets;     /* NULL while the index is empty */
static size_t        topic_size;        /* 0 or a power of two */
static size_t        topic_count;

static uint64_t
topic_hash(int kind, const char *name, size_t len)
{
    return wsh_hash_bytes(name, len) ^ (uint64_t) kind;
}

static wsh_topic_t **
topic_bucket(int kind, const char *name, size_t len)
{
    return &topic_buckets[topic_hash(kind, name, len) & (topic_size - 1)];
}

int
wsh_topic_index_init(void)
{
    size_t i;

    for (i = 0; i < wsh_nelems(topic_slabs); i++) {
        if (topic_slabs[i].size == 0) {
            topic_slabs[i] = (wsh_slab_t) WSH_SLAB(8 * (i + 1));
        }
    }
    topic_buckets = NULL;
    topic_size = 0;
    topic_count = 0;
    return WSH_OK;
}

/* The slab of topics with names of LEN bytes, or NULL: malloc's. */
static wsh_slab_t *
topic_slab(size_t len)
{
    size_t size = offsetof(wsh_topic_t, name) + len;

    return size <= TOPIC_SLAB_MAX ? &topic_slabs[(size - 1) / 8] : NULL;
}

static void
topic_free(wsh_topic_t *t)
{
    wsh_slab_t *s = topic_slab(t->len);

    if (s != NULL) {
        wsh_slab_free(s, t);
    } else {
        free(t);
    }
}

void
wsh_topic_index_free(void)
{
    wsh_topic_t *t, *next;
    size_t i;

    for (i = 0; i < topic_size; i++) {
        for (t = topic_buckets[i]; t != NULL; t = next) {
            next = t->next;
            topic_free(t);
        }
    }
    free(topic_buckets);
    (void) wsh_topic_index_init();
}

wsh_topic_t *
wsh_topic_find(int kind, const char *name, size_t len)
{
    wsh_topic_t *t;

    if (topic_count == 0) {
        return NULL;
    }
    for (t = *topic_bucket(kind, name, len); t != NULL; t = t->next) {
        if (t->kind == kind && t->len == len
            && memcmp(t->name, name, len) == 0)
        {
            return t;
        }
    }
    return NULL;
}

/* Double the buckets: chains average under two topics, and the buckets
 * cost 4 to 8 bytes a topic. WSH_ERROR on ENOMEM, the index unchanged. */
static int
topic_grow(void)
{
    size_t size = topic_size ? topic_size * 2 : TOPIC_MIN_BUCKETS, i, j;
    wsh_topic_t **b, *t, *next;

    b = calloc(size, sizeof(*b));
    if (b == NULL) {
        return WSH_ERROR;
    }
    for (i = 0; i < topic_size; i++) {
        for (t = topic_buckets[i]; t != NULL; t = next) {
            next = t->next;
            j = topic_hash(t->kind, t->name, t->len) & (size - 1);
            t->next = b[j];
            b[j] = t;
        }
    }
    free(topic_buckets);
    topic_buckets = b;
    topic_size = size;
    return WSH_OK;
}

/* A topic of KIND with a name of LEN bytes, left for the caller to
 * write; NULL on ENOMEM. */
static wsh_topic_t *
topic_alloc(int kind, size_t len)
{
    wsh_slab_t *s = topic_slab(len);
    wsh_topic_t *t = s != NULL ? wsh_slab_calloc(s)
                               : malloc(offsetof(wsh_topic_t, name) + len);

    if (t != NULL) {
        t->next = NULL;
        wsh_queue_init(&t->members);
        t->nmembers = 0;
        t->pins = 0;
        t->nrecovering = 0;
        t->len = (uint16_t) len;
        t->kind = (uint8_t) kind;
    }
    return t;
}

/* A new topic in the index; NULL on ENOMEM. */
static wsh_topic_t *
topic_new(int kind, const char *name, size_t len)
{
    wsh_topic_t *t, **b;

    if (topic_count >= 2 * topic_size && topic_grow() != WSH_OK
        && topic_size == 0)
    {
        return NULL;
    }
    t = topic_alloc(kind, len);
    if (t == NULL) {
        return NULL;
    }
    memcpy(t->name, name, len);
    b = topic_bucket(kind, name, len);
    t->next = *b;
    *b = t;
    topic_count++;
    return t;
}

/* Take T out of the index; an emptied index gives its buckets back. */
static void
topic_unlink(wsh_topic_t *t)
{
    wsh_topic_t **p = topic_bucket(t->kind, t->name, t->len);

    while (*p != t) {
        p = &(*p)->next;
    }
    *p = t->next;
    if (--topic_count == 0) {
        free(topic_buckets);
        topic_buckets = NULL;
        topic_size = 0;
    }
}

/* T is out of the index: free it unless a membership holds it. */
static void
topic_release(wsh_topic_t *t)
{
    if (t->nmembers == 0 && t->pins == 0) {
        topic_free(t);
    }
}

/* The presence id that topic T's name holds: after its first
 * WSH_REALM_SEP, or all of it. */
static const char *
topic_id(const wsh_topic_t *t, size_t *len)
{
    const char *sep = memchr(t->name, WSH_REALM_SEP, t->len);

    if (sep == NULL) {
        *len = t->len;
        return t->name;
    }
    *len = (size_t) (t->name + t->len - sep - 1);
    return sep + 1;
}

/* A pinned topic holding presence id ID for a room membership in OWNED:
 * the owner's client topic whose name ends with it, else one of its
 * own, "#ID", out of the index. NULL on ENOMEM. */
static wsh_topic_t *
topic_id_holder(const wsh_member_t *owned, const char *id, size_t idlen)
{
    const wsh_member_t *m;
    const char *p;
    wsh_topic_t *t;
    size_t n;

    for (m = owned; m != NULL; m = m->owner_next) {
        t = m->topic;
        if (t->kind != WSH_TOPIC_CLIENT) {
            continue;
        }
        p = topic_id(t, &n);
        if (n == idlen && memcmp(p, id, idlen) == 0) {
            t->pins++;
            return t;
        }
    }
    t = topic_alloc(TOPIC_ID_HOLDER, 1 + idlen);
    if (t != NULL) {
        t->name[0] = WSH_REALM_SEP;
        memcpy(t->name + 1, id, idlen);
        t->pins = 1;
    }
    return t;
}

wsh_member_t *
wsh_topic_membership(const wsh_member_t *owned, int kind, const char *name,
    size_t len)
{
    const wsh_member_t *a;
    const wsh_queue_t *b;
    wsh_member_t *m;
    wsh_topic_t *t;
    void *owner;

    if (owned == NULL || (t = wsh_topic_find(kind, name, len)) == NULL) {
        return NULL;
    }
    owner = owned->owner;
    /* A step along each list in turn: the membership is on both, so the
     * walk ends within twice the length of the shorter. */
    for (a = owned, b = t->members.next;
         a != NULL && b != &t->members; a = a->owner_next, b = b->next)
    {
        if (a->topic == t) {
            return (wsh_member_t *) a;
        }
        m = wsh_queue_data(b, wsh_member_t, topic_link);
        if (m->owner == owner) {
            return m;
        }
    }
    return NULL;
}

wsh_member_t *
wsh_topic_add(wsh_member_t **owned, void *owner, int kind, const char *name,
    size_t len, const char *id, size_t idlen, bool *first)
{
    topic_room_member_t *rm = NULL;
    wsh_topic_t *t, *holder = NULL;
    wsh_member_t *m, **tail;

    if (len > WSH_TOPIC_NAME_MAX || idlen >= UINT16_MAX) {
        return NULL;
    }
    if (kind == WSH_TOPIC_ROOM) {
        rm = wsh_slab_calloc(&topic_room_members);
        m = rm != NULL ? &rm->m : NULL;
    } else {
        m = wsh_slab_calloc(&topic_members);
    }
    if (m == NULL) {
        return NULL;
    }
    if (rm != NULL && idlen > 0
        && (holder = topic_id_holder(*owned, id, idlen)) == NULL)
    {
        wsh_slab_free(&topic_room_members, rm);
        return NULL;
    }
    t = wsh_topic_find(kind, name, len);
    *first = t == NULL;
    if (t == NULL && (t = topic_new(kind, name, len)) == NULL) {
        if (holder != NULL) {
            holder->pins--;
            topic_release(holder);
        }
        wsh_slab_free(rm != NULL ? &topic_room_members : &topic_members, m);
        return NULL;
    }
    if (rm != NULL) {
        rm->id = holder;
    }
    m->topic = t;
    m->owner = owner;
    wsh_queue_insert_tail(&t->members, &m->topic_link);
    /* At the end, in the order joined: the client topic a hub joins
     * first stays first, found in one step (wsh_topic_joined). */
    for (tail = owned; *tail != NULL; tail = &(*tail)->owner_next) { }
    m->owner_next = NULL;
    *tail = m;
    t->nmembers++;
    return m;
}

const char *
wsh_topic_member_id(const wsh_member_t *m, size_t *len)
{
    const topic_room_member_t *rm = (const topic_room_member_t *) m;

    if (m->topic->kind != WSH_TOPIC_ROOM || rm->id == NULL) {
        *len = 0;
        return "";
    }
    return topic_id(rm->id, len);
}

void
wsh_topic_remove(wsh_member_t **owned, wsh_member_t *m, bool *last)
{
    wsh_topic_t *t = m->topic;
    wsh_member_t **p;

    for (p = owned; *p != m; p = &(*p)->owner_next) {
        wsh_assert(*p != NULL);
    }
    *p = m->owner_next;
    m->owner_next = NULL;
    wsh_queue_remove(&m->topic_link);
    t->nmembers--;
    *last = t->nmembers == 0;
    if (*last) {
        topic_unlink(t);
    }
}

void
wsh_topic_member_free(wsh_member_t *m)
{
    topic_room_member_t *rm = (topic_room_member_t *) m;
    wsh_topic_t *t = m->topic;

    if (t->kind == WSH_TOPIC_ROOM) {
        if (rm->id != NULL) {
            rm->id->pins--;
            topic_release(rm->id);
        }
        wsh_slab_free(&topic_room_members, rm);
    } else {
        wsh_slab_free(&topic_members, m);
    }
    topic_release(t);
}
