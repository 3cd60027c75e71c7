/* history.c -- room history: offsets, epochs and the bounded ring.
 *
 * See history.h. Each room's messages sit in a circular array of at
 * most rule->size entries, oldest first, each one malloc'd block holding
 * its offset and the bytes as published; a replay sends them with the
 * offset and the room's epoch beside, as a live delivery does. Memory
 * is bounded by size per room, by ttl per entry, and rooms nobody is in
 * are forgotten after ttl.
 */
#include "engine/history.h"
#include "core/module.h"
#include "core/hash.h"
#include "wshub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct wsh_history_s {
    wsh_hash_t *rooms;              /* name -> wsh_history_room_t */
};

bool
wsh_history_rule(const wsh_conf_t *cf, const char *room, size_t len,
    wsh_history_rule_t *rule)
{
    const wsh_module_t *m;
    uint64_t ttl;
    size_t i;

    for (i = 0; cf != NULL && i < wsh_module_count(); i++) {
        m = wsh_module_at(i);
        if (m->room_history != NULL
            && m->room_history(wsh_conf_section(cf, m), room, len,
                               &rule->size, &ttl))
        {
            rule->ttl = ttl;
            return true;
        }
    }
    return false;
}

wsh_history_t *
wsh_history_new(void)
{
    wsh_history_t *h = calloc(1, sizeof(*h));

    if (h == NULL || (h->rooms = wsh_hash_new()) == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

static void
history_room_free(void *p)
{
    wsh_history_room_t *r = p;
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->ring[(r->head + i) % r->cap]);
    }
    free(r->ring);
    free(r);
}

void
wsh_history_free(wsh_history_t *h)
{
    if (h != NULL) {
        wsh_hash_free(h->rooms, history_room_free);
        free(h);
    }
}

/* A new epoch: 64 random bits, so an epoch is never reused by a master
 * that restarted with offsets from 1 again. */
static void
history_new_epoch(char *epoch)
{
    unsigned char rnd[WSH_HISTORY_EPOCH_LEN / 2];
    size_t i;

    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        uint64_t t = wsh_monotonic_usec();

        memcpy(rnd, &t, sizeof(rnd));
    }
    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(epoch + 2 * i, 3, "%02x", rnd[i]);
    }
}

wsh_history_room_t *
wsh_history_room(wsh_history_t *h, const char *room, size_t len, bool create,
    wsh_msec_t now)
{
    wsh_history_room_t *r = wsh_hash_get(h->rooms, room, len);

    if (r == NULL && create) {
        r = calloc(1, sizeof(*r));
        if (r == NULL || wsh_hash_put(h->rooms, room, len, r) != WSH_OK) {
            free(r);
            return NULL;
        }
        history_new_epoch(r->epoch);
    }
    if (r != NULL) {
        r->active = now;
    }
    return r;
}

static void
history_drop_oldest(wsh_history_room_t *r)
{
    free(r->ring[r->head]);
    r->ring[r->head] = NULL;
    r->head = (r->head + 1) % r->cap;
    r->n--;
}

/* Give the ring SIZE slots, keeping the newest entries (a reload may
 * have changed the rule). */
static int
history_resize(wsh_history_room_t *r, size_t size)
{
    wsh_history_entry_t **ring;
    size_t i;

    while (r->n > size) {
        history_drop_oldest(r);
    }
    ring = calloc(size, sizeof(*ring));
    if (ring == NULL) {
        return WSH_ERROR;
    }
    for (i = 0; i < r->n; i++) {
        ring[i] = r->ring[(r->head + i) % r->cap];
    }
    free(r->ring);
    r->ring = ring;
    r->cap = size;
    r->head = 0;
    return WSH_OK;
}

const wsh_history_entry_t *
wsh_history_append(wsh_history_room_t *r, const wsh_history_rule_t *rule,
    const void *data, size_t dlen, wsh_msec_t now)
{
    wsh_history_entry_t *e;

    if (r->cap != rule->size && history_resize(r, rule->size) != WSH_OK) {
        return NULL;
    }
    e = malloc(sizeof(*e) + dlen);
    if (e == NULL) {
        return NULL;
    }
    e->offset = ++r->offset;
    e->time = now;
    e->len = dlen;
    memcpy(e->data, data, dlen);
    if (r->n == r->cap) {
        history_drop_oldest(r);
    }
    r->ring[(r->head + r->n) % r->cap] = e;
    r->n++;
    r->active = now;
    return e;
}

void
wsh_history_trim(wsh_history_room_t *r, const wsh_history_rule_t *rule,
    wsh_msec_t now)
{
    while (r->n > 0 && r->ring[r->head]->time + rule->ttl <= now) {
        history_drop_oldest(r);
    }
}

const wsh_history_entry_t *
wsh_history_at(const wsh_history_room_t *r, size_t i)
{
    return r->ring[(r->head + i) % r->cap];
}

bool
wsh_history_recoverable(const wsh_history_room_t *r, uint64_t since,
    const char *epoch, size_t elen, size_t *first)
{
    uint64_t oldest;

    if ((elen > 0 && (elen != strlen(r->epoch)
                      || memcmp(epoch, r->epoch, elen) != 0))
        || since > r->offset)
    {
        return false;           /* another epoch's offsets */
    }
    /* The ring holds the offsets oldest .. r->offset without a hole. */
    oldest = r->n > 0 ? wsh_history_at(r, 0)->offset : r->offset + 1;
    if (since + 1 < oldest) {
        return false;           /* trimmed by size or ttl: a gap */
    }
    *first = r->n - (size_t) (r->offset - since);
    return true;
}

size_t
wsh_history_sweep(wsh_history_t *h, wsh_msec_t now,
    bool (*rule)(const char *room, size_t len, void *arg,
                 wsh_history_rule_t *out),
    bool (*has_members)(const char *room, size_t len, void *arg), void *arg)
{
    wsh_history_rule_t rl;
    wsh_history_room_t *r;
    wsh_hash_iter_t it;
    const void *key;
    size_t klen;
    void *value;

    wsh_hash_iter_init(h->rooms, &it);
    while (wsh_hash_next(&it, &key, &klen, &value)) {
        r = value;
        if (rule(key, klen, arg, &rl)) {
            wsh_history_trim(r, &rl, now);
            if (has_members(key, klen, arg)) {
                r->active = now;
                continue;
            }
            if (r->n > 0 || r->active + rl.ttl > now) {
                continue;
            }
        }
        wsh_hash_remove(h->rooms, key, klen);
        history_room_free(r);
    }
    return wsh_hash_count(h->rooms);
}
