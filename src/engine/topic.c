/* topic.c -- the per-worker topic index (see topic.h).
 *
 * Topics are found by a hash of kind and name; a topic exists only while
 * it has a local member, so the index never outgrows the connections.
 */
#include "engine/topic.h"
#include "core/hash.h"

#include <stdlib.h>
#include <string.h>

static wsh_hash_t *topics;          /* kind + name -> topic */
static wsh_hash_t *memberships;     /* kind + owner + name -> member */

static size_t
topic_key(u_char *key, int kind, const char *name, size_t len)
{
    key[0] = (u_char) kind;
    memcpy(key + 1, name, len);
    return len + 1;
}

/* The membership key: joining twice and leaving by name are then one
 * hash lookup, whatever the number of rooms a connection is in. */
static size_t
membership_key(u_char *key, const void *owner, int kind, const char *name,
    size_t len)
{
    key[0] = (u_char) kind;
    memcpy(key + 1, &owner, sizeof(owner));
    memcpy(key + 1 + sizeof(owner), name, len);
    return 1 + sizeof(owner) + len;
}

int
wsh_topic_index_init(void)
{
    topics = wsh_hash_new();
    memberships = wsh_hash_new();
    return topics && memberships ? WSH_OK : WSH_ERROR;
}

void
wsh_topic_index_free(void)
{
    wsh_hash_free(topics, free);
    wsh_hash_free(memberships, NULL);   /* members are freed by owners */
    topics = NULL;
    memberships = NULL;
}

wsh_topic_t *
wsh_topic_find(int kind, const char *name, size_t len)
{
    u_char key[WSH_TOPIC_NAME_MAX + 1];

    if (len > WSH_TOPIC_NAME_MAX) {
        return NULL;
    }
    return wsh_hash_get(topics, key, topic_key(key, kind, name, len));
}

wsh_member_t *
wsh_topic_membership(const void *owner, int kind, const char *name,
    size_t len)
{
    u_char key[1 + sizeof(void *) + WSH_TOPIC_NAME_MAX];

    if (len > WSH_TOPIC_NAME_MAX) {
        return NULL;
    }
    return wsh_hash_get(memberships, key,
                        membership_key(key, owner, kind, name, len));
}

wsh_member_t *
wsh_topic_add(wsh_queue_t *owned, void *owner, int kind, const char *name,
    size_t len, const char *id, size_t idlen, bool *first)
{
    u_char key[WSH_TOPIC_NAME_MAX + 1];
    u_char mkey[1 + sizeof(void *) + WSH_TOPIC_NAME_MAX];
    size_t klen, mlen;
    wsh_topic_t *t;
    wsh_member_t *m;

    if (len > WSH_TOPIC_NAME_MAX || idlen > UINT16_MAX) {
        return NULL;
    }
    m = malloc(sizeof(*m) + idlen);
    if (m == NULL) {
        return NULL;
    }
    mlen = membership_key(mkey, owner, kind, name, len);
    if (wsh_hash_put(memberships, mkey, mlen, m) != WSH_OK) {
        free(m);
        return NULL;
    }
    klen = topic_key(key, kind, name, len);
    t = wsh_hash_get(topics, key, klen);
    *first = t == NULL;
    if (t == NULL) {
        t = malloc(sizeof(*t) + len);
        if (t == NULL || wsh_hash_put(topics, key, klen, t) != WSH_OK) {
            wsh_hash_remove(memberships, mkey, mlen);
            free(t);
            free(m);
            return NULL;
        }
        wsh_queue_init(&t->members);
        t->nmembers = 0;
        t->kind = (uint8_t) kind;
        t->len = (uint16_t) len;
        memcpy(t->name, name, len);
    }
    m->topic = t;
    m->owner = owner;
    m->recovery = NULL;
    m->idlen = (uint16_t) idlen;
    if (idlen > 0) {
        memcpy(m->id, id, idlen);
    }
    wsh_queue_insert_tail(&t->members, &m->topic_link);
    wsh_queue_insert_tail(owned, &m->owner_link);
    t->nmembers++;
    return m;
}

void
wsh_topic_remove(wsh_member_t *m, bool *last)
{
    u_char key[1 + sizeof(void *) + WSH_TOPIC_NAME_MAX];
    wsh_topic_t *t = m->topic;

    wsh_hash_remove(memberships, key,
                    membership_key(key, m->owner, t->kind, t->name, t->len));
    wsh_queue_remove(&m->topic_link);
    wsh_queue_remove(&m->owner_link);
    t->nmembers--;
    *last = t->nmembers == 0;
    if (*last) {
        wsh_hash_remove(topics, key, topic_key(key, t->kind, t->name, t->len));
    }
}
