/* hash.h -- hash table from byte-string keys to pointers.
 *
 * Backs the pub/sub indexes (room -> members, client id -> connections)
 * and any other map keyed by client-chosen bytes. Keys are hashed with
 * SipHash-1-3 under a random per-process key, so clients cannot pick room
 * names that all land in one bucket. Tables are per process and not
 * thread-safe, like everything else in a worker.
 */
#ifndef WSH_HASH_H
#define WSH_HASH_H

#include "core/core.h"

typedef struct wsh_hash_s wsh_hash_t;

/* Iteration state, kept on the caller's stack; its fields are private. */
typedef struct {
    const wsh_hash_t         *hash;
    struct wsh_hash_entry_s  *next;     /* entry to return next, or NULL */
    size_t                    bucket;   /* next bucket to scan */
} wsh_hash_iter_t;

/* Set the SipHash key instead of drawing one from getrandom(2); for tests
 * that need a reproducible layout. Call before creating any table. */
void wsh_hash_seed(const uint8_t key[16]);

/* SipHash-1-3 of the LEN bytes at KEY under the process key, for an
 * index that keeps its entries in its own structures (topic.c). */
uint64_t wsh_hash_bytes(const void *key, size_t len);

/* New empty table; NULL on ENOMEM. Free with wsh_hash_free(). */
wsh_hash_t *wsh_hash_new(void);

/* Free the table and its keys, calling FREE_VALUE (unless NULL) on each
 * value. H may be NULL. */
void wsh_hash_free(wsh_hash_t *h, void (*free_value)(void *value));

/* Value stored under KEY/LEN, or NULL if absent. */
void *wsh_hash_get(const wsh_hash_t *h, const void *key, size_t len);

/* Insert, or replace the value of an existing key (the old value is not
 * freed). The key bytes are copied. WSH_OK, or WSH_ERROR on ENOMEM with
 * the table unchanged. */
int wsh_hash_put(wsh_hash_t *h, const void *key, size_t len, void *value);

/* Remove KEY/LEN; returns its value (for the caller to free), NULL if
 * absent. */
void *wsh_hash_remove(wsh_hash_t *h, const void *key, size_t len);

/* Number of entries. */
size_t wsh_hash_count(const wsh_hash_t *h);

/* Start an iteration over all entries, in no particular order. */
void wsh_hash_iter_init(const wsh_hash_t *h, wsh_hash_iter_t *it);

/* Next entry into KEY, LEN and VALUE (any may be NULL); false at the end.
 * The key stays valid until its entry is removed. During an iteration
 * only the entry just returned may be removed, and values of existing
 * keys may be replaced; no new key may be inserted. */
bool wsh_hash_next(wsh_hash_iter_t *it, const void **key, size_t *len,
    void **value);

/* Paged iteration that survives changes between pages, as Redis's SCAN:
 * call with CURSOR 0 first, then with the cursor returned, until that is
 * 0. Each call passes whole buckets to FN (KEY, LEN, VALUE), at most MAX
 * entries unless a single bucket holds more, and stops early when FN
 * returns false (the cursor returned then passes that bucket again, from
 * its first entry). An entry present from the first call to the last is
 * passed at least once whatever is inserted or removed between calls
 * (the cursor counts in reversed bits, so a table that doubled meanwhile
 * is not visited twice where it was visited once); one added or removed
 * meanwhile may or may not be, and one may come twice after the table
 * grew. */
size_t wsh_hash_scan(const wsh_hash_t *h, size_t cursor, size_t max,
    bool (*fn)(void *arg, const void *key, size_t len, void *value),
    void *arg);

#endif /* WSH_HASH_H */
