/* dedup.c -- the idempotency window (dedup.h).
 *
 * A hash from "kind name \0 key" to the first result, and the same
 * entries on a queue in the order they were added: every key has the
 * same window, so that is also the order they expire in, and expiry and
 * eviction take from the head in O(1) each.
 */
#include "engine/dedup.h"
#include "engine/topic.h"
#include "core/hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    wsh_queue_t        link;        /* wsh_dedup_t.order */
    wsh_msec_t         expires;
    wsh_dedup_result_t result;
    size_t             klen;
    u_char             key[];       /* as hashed */
} dedup_entry_t;

struct wsh_dedup_s {
    wsh_hash_t *keys;
    wsh_queue_t order;              /* oldest first */
    uint64_t    evicted;
};

/* "kind name \0 key" into BUF (2 + WSH_TOPIC_NAME_MAX + WSH_DEDUP_KEY_MAX). */
static size_t
dedup_key(u_char *buf, int kind, const char *name, size_t nlen,
    const char *key, size_t klen)
{
    buf[0] = (u_char) kind;
    memcpy(buf + 1, name, nlen);
    buf[1 + nlen] = '\0';
    memcpy(buf + 2 + nlen, key, klen);
    return 2 + nlen + klen;
}

wsh_dedup_t *
wsh_dedup_new(void)
{
    wsh_dedup_t *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->keys = wsh_hash_new();
    if (d->keys == NULL) {
        free(d);
        return NULL;
    }
    wsh_queue_init(&d->order);
    return d;
}

void
wsh_dedup_free(wsh_dedup_t *d)
{
    if (d != NULL) {
        wsh_hash_free(d->keys, free);
        free(d);
    }
}

static void
dedup_drop_oldest(wsh_dedup_t *d)
{
    dedup_entry_t *e = wsh_queue_data(wsh_queue_head(&d->order),
                                      dedup_entry_t, link);

    wsh_queue_remove(&e->link);
    (void) wsh_hash_remove(d->keys, e->key, e->klen);
    free(e);
}

const wsh_dedup_result_t *
wsh_dedup_find(wsh_dedup_t *d, int kind, const char *name, size_t nlen,
    const char *key, size_t klen, wsh_msec_t now)
{
    u_char buf[2 + WSH_TOPIC_NAME_MAX + WSH_DEDUP_KEY_MAX];
    dedup_entry_t *e;

    if (klen == 0 || klen > WSH_DEDUP_KEY_MAX || nlen > WSH_TOPIC_NAME_MAX) {
        return NULL;
    }
    e = wsh_hash_get(d->keys, buf, dedup_key(buf, kind, name, nlen, key,
                                             klen));
    return e != NULL && e->expires > now ? &e->result : NULL;
}

int
wsh_dedup_add(wsh_dedup_t *d, int kind, const char *name, size_t nlen,
    const char *key, size_t klen, const wsh_dedup_result_t *result,
    wsh_msec_t now, wsh_msec_t window)
{
    u_char buf[2 + WSH_TOPIC_NAME_MAX + WSH_DEDUP_KEY_MAX];
    size_t len;
    dedup_entry_t *e, *old;

    if (klen == 0 || klen > WSH_DEDUP_KEY_MAX || nlen > WSH_TOPIC_NAME_MAX) {
        return WSH_ERROR;
    }
    wsh_dedup_expire(d, now);
    if (wsh_hash_count(d->keys) >= WSH_DEDUP_MAX) {
        dedup_drop_oldest(d);
        d->evicted++;
    }
    len = dedup_key(buf, kind, name, nlen, key, klen);
    e = malloc(sizeof(*e) + len);
    if (e == NULL) {
        return WSH_ERROR;
    }
    e->expires = now + window;
    e->result = *result;
    e->klen = len;
    memcpy(e->key, buf, len);
    /* A key whose window passed but was not swept yet is replaced. */
    old = wsh_hash_get(d->keys, buf, len);
    if (wsh_hash_put(d->keys, buf, len, e) != WSH_OK) {
        free(e);
        return WSH_ERROR;
    }
    if (old != NULL) {
        wsh_queue_remove(&old->link);
        free(old);
    }
    wsh_queue_insert_tail(&d->order, &e->link);
    return WSH_OK;
}

void
wsh_dedup_expire(wsh_dedup_t *d, wsh_msec_t now)
{
    while (!wsh_queue_empty(&d->order)
           && wsh_queue_data(wsh_queue_head(&d->order), dedup_entry_t,
                             link)->expires <= now)
    {
        dedup_drop_oldest(d);
    }
}

size_t
wsh_dedup_count(const wsh_dedup_t *d)
{
    return wsh_hash_count(d->keys);
}

uint64_t
wsh_dedup_evicted(const wsh_dedup_t *d)
{
    return d->evicted;
}
