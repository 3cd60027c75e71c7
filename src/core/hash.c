/* hash.c -- chained hash table keyed by byte strings, hashed with SipHash.
 *
 * Separate chaining over a power-of-two bucket array that doubles when the
 * entries outnumber the buckets, so chains average under one entry. Each
 * entry is one allocation holding the key bytes inline and the key's full
 * 64-bit hash, which is compared before the key itself so a chain walk
 * rarely touches memcmp(). The array only grows, except that an emptied
 * table gives it back: a shrink would reorder the buckets under a running
 * iteration, and a table that has been large once usually will be again.
 *
 * Room names and client ids come from clients, so the hash is SipHash-1-3
 * (Aumasson and Bernstein) under a 128-bit key drawn from getrandom(2)
 * once per process: without the key no one can compute which names
 * collide, which is what stops hash-flooding (the reason Redis, Python and
 * Rust use the same function). Workers inherit the master's key across
 * fork(), so tables built before the fork stay valid in the children.
 */
#include "core/hash.h"
#include "wshub.h"
#include "core/log.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#define HASH_MIN_SIZE  4       /* buckets allocated by the first put */
#define HASH_C_ROUNDS  1       /* SipHash-1-3: rounds per message word */
#define HASH_D_ROUNDS  3       /* rounds of finalization */

typedef struct wsh_hash_entry_s wsh_hash_entry_t;

struct wsh_hash_entry_s {
    wsh_hash_entry_t  *next;
    void              *value;
    uint64_t           hash;
    size_t             len;
    u_char             key[];
};

struct wsh_hash_s {
    wsh_hash_entry_t **buckets;         /* NULL while size is 0 */
    size_t             size;            /* 0 or a power of two */
    size_t             count;
};

/* The only global state: the SipHash key, set once per process. */
static uint64_t hash_k0;
static uint64_t hash_k1;
static bool     hash_seeded;

#define HASH_ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define HASH_SIPROUND                                                        \
    do {                                                                     \
        v0 += v1;                                                            \
        v1 = HASH_ROTL(v1, 13);                                              \
        v1 ^= v0;                                                            \
        v0 = HASH_ROTL(v0, 32);                                              \
        v2 += v3;                                                            \
        v3 = HASH_ROTL(v3, 16);                                              \
        v3 ^= v2;                                                            \
        v0 += v3;                                                            \
        v3 = HASH_ROTL(v3, 21);                                              \
        v3 ^= v0;                                                            \
        v2 += v1;                                                            \
        v1 = HASH_ROTL(v1, 17);                                              \
        v1 ^= v2;                                                            \
        v2 = HASH_ROTL(v2, 32);                                              \
    } while (0)

/* Little-endian load whatever the host order; compilers turn this into
 * one unaligned load on x86 and arm64. */
static inline uint64_t
hash_load64(const u_char *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
}

/* SipHash-1-3 of LEN bytes at KEY (NULL is fine when LEN is 0) under the
 * process key; the reference algorithm, returning the 64-bit result. */
static uint64_t
hash_siphash(const void *key, size_t len)
{
    const u_char *p = key;
    const u_char *last = p + (len & ~(size_t) 7);
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ hash_k0;
    uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ hash_k1;
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ hash_k0;
    uint64_t v3 = UINT64_C(0x7465646279746573) ^ hash_k1;
    uint64_t b = (uint64_t) len << 56;
    uint64_t m;
    int i;

    for (; p != last; p += 8) {
        m = hash_load64(p);
        v3 ^= m;
        for (i = 0; i < HASH_C_ROUNDS; i++) {
            HASH_SIPROUND;
        }
        v0 ^= m;
    }

    switch (len & 7) {
    case 7:
        b |= (uint64_t) p[6] << 48;
        /* fall through */
    case 6:
        b |= (uint64_t) p[5] << 40;
        /* fall through */
    case 5:
        b |= (uint64_t) p[4] << 32;
        /* fall through */
    case 4:
        b |= (uint64_t) p[3] << 24;
        /* fall through */
    case 3:
        b |= (uint64_t) p[2] << 16;
        /* fall through */
    case 2:
        b |= (uint64_t) p[1] << 8;
        /* fall through */
    case 1:
        b |= (uint64_t) p[0];
        break;
    default:
        break;
    }

    v3 ^= b;
    for (i = 0; i < HASH_C_ROUNDS; i++) {
        HASH_SIPROUND;
    }
    v0 ^= b;

    v2 ^= 0xff;
    for (i = 0; i < HASH_D_ROUNDS; i++) {
        HASH_SIPROUND;
    }
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Fill BUF with LEN bytes from the kernel. GRND_NONBLOCK because a daemon
 * started early in boot must not hang on the entropy pool for a hash key;
 * /dev/urandom, the fallback (also for kernels before 3.17), never blocks.
 * Returns WSH_ERROR with errno set, without logging. */
static int
hash_random(u_char *buf, size_t len)
{
    size_t got;
    ssize_t n;
    int fd;

    for (got = 0; got < len; got += (size_t) n) {
        n = getrandom(buf + got, len - got, GRND_NONBLOCK);
        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            break;
        }
    }
    if (got == len) {
        return WSH_OK;
    }

    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return WSH_ERROR;
    }
    for (got = 0; got < len; got += (size_t) n) {
        n = read(fd, buf + got, len - got);
        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            close(fd);
            return WSH_ERROR;
        }
    }
    close(fd);
    return WSH_OK;
}

/* Draw the process key on first use. With no kernel randomness at all
 * (a chroot without /dev, say) the server still runs, on a key made of
 * clocks and ASLR addresses: guessable, so it is logged. */
static void
hash_init_seed(void)
{
    uint8_t key[16];
    struct timespec ts;
    uint64_t a, b;

    if (hash_random(key, sizeof(key)) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "getrandom() and /dev/urandom failed: %s, "
                "hash tables use a weak key", strerror(errno));
        clock_gettime(CLOCK_REALTIME, &ts);
        a = (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
        a ^= (uint64_t) (uintptr_t) &ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        b = (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
        b ^= (uint64_t) getpid() << 32 ^ (uint64_t) (uintptr_t) &hash_k0;
        memcpy(key, &a, 8);
        memcpy(key + 8, &b, 8);
    }
    wsh_hash_seed(key);
}

/* Use KEY as the SipHash key for all tables of this process instead of a
 * random one: tests call it for reproducible bucket layouts. Tables created
 * earlier would no longer find their entries, so call it before creating
 * any. Any process; not thread-safe. */
void
wsh_hash_seed(const uint8_t key[16])
{
    hash_k0 = hash_load64(key);
    hash_k1 = hash_load64(key + 8);
    hash_seeded = true;
}

/* SipHash-1-3 of the LEN bytes at KEY (NULL is fine when LEN is 0),
 * the first call in a process drawing the key, as wsh_hash_new() does.
 * Any process. */
uint64_t
wsh_hash_bytes(const void *key, size_t len)
{
    if (!hash_seeded) {
        hash_init_seed();
    }
    return hash_siphash(key, len);
}

/* Create an empty table. The bucket array is allocated by the first put,
 * so an empty table costs one small allocation. The first call in a
 * process draws the hash key.
 *
 * Returns the table, owned by the caller (wsh_hash_free()), or NULL on
 * ENOMEM, without logging. Master or workers. */
wsh_hash_t *
wsh_hash_new(void)
{
    wsh_hash_t *h;

    if (!hash_seeded) {
        hash_init_seed();
    }
    h = malloc(sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->buckets = NULL;
    h->size = 0;
    h->count = 0;
    return h;
}

/* Free table H with all its entries and key copies. FREE_VALUE, unless
 * NULL, is called once on every stored value (NULL values included), in
 * no particular order; it must not touch H. H may be NULL. */
void
wsh_hash_free(wsh_hash_t *h, void (*free_value)(void *value))
{
    wsh_hash_entry_t *e, *next;
    size_t i;

    if (h == NULL) {
        return;
    }
    for (i = 0; i < h->size; i++) {
        for (e = h->buckets[i]; e != NULL; e = next) {
            next = e->next;
            if (free_value != NULL) {
                free_value(e->value);
            }
            free(e);
        }
    }
    free(h->buckets);
    free(h);
}

static inline bool
hash_match(const wsh_hash_entry_t *e, uint64_t hash, const void *key,
    size_t len)
{
    /* len == 0 skips memcmp(), whose pointers must be valid even then. */
    return e->hash == hash && e->len == len
           && (len == 0 || memcmp(e->key, key, len) == 0);
}

/* Look up the LEN bytes at KEY (which may be NULL if LEN is 0).
 *
 * Returns the stored value, or NULL if the key is absent; a stored NULL
 * reads the same as an absent key. The value still belongs to the table's
 * user; the table never frees it except through wsh_hash_free(). */
void *
wsh_hash_get(const wsh_hash_t *h, const void *key, size_t len)
{
    wsh_hash_entry_t *e;
    uint64_t hash;

    if (h->count == 0) {
        return NULL;
    }
    hash = hash_siphash(key, len);
    for (e = h->buckets[hash & (h->size - 1)]; e != NULL; e = e->next) {
        if (hash_match(e, hash, key, len)) {
            return e->value;
        }
    }
    return NULL;
}

/* Move every entry to a new array of SIZE buckets (a power of two). On
 * ENOMEM returns WSH_ERROR and leaves the table as it was. */
static int
hash_resize(wsh_hash_t *h, size_t size)
{
    wsh_hash_entry_t **buckets, *e, *next;
    size_t i, j;

    buckets = calloc(size, sizeof(*buckets));
    if (buckets == NULL) {
        return WSH_ERROR;
    }
    for (i = 0; i < h->size; i++) {
        for (e = h->buckets[i]; e != NULL; e = next) {
            next = e->next;
            j = e->hash & (size - 1);
            e->next = buckets[j];
            buckets[j] = e;
        }
    }
    free(h->buckets);
    h->buckets = buckets;
    h->size = size;
    return WSH_OK;
}

/* Map the LEN bytes at KEY (NULL is fine if LEN is 0) to VALUE. If the key
 * is present only its value is replaced (the old one is not freed, fetch
 * it with wsh_hash_get() first if it needs to be), which is allowed during
 * an iteration; otherwise the key bytes are copied into a new entry, and
 * the table may grow, which is not.
 *
 * Returns WSH_OK, or WSH_ERROR on ENOMEM with the table unchanged, without
 * logging (the caller knows which room or connection it was for). If only
 * the growth fails the entry is still added, to a fuller table. */
int
wsh_hash_put(wsh_hash_t *h, const void *key, size_t len, void *value)
{
    wsh_hash_entry_t *e, **bucket;
    uint64_t hash;

    hash = hash_siphash(key, len);
    if (h->count != 0) {
        for (e = h->buckets[hash & (h->size - 1)]; e != NULL; e = e->next) {
            if (hash_match(e, hash, key, len)) {
                e->value = value;
                return WSH_OK;
            }
        }
    }

    if (len > SIZE_MAX - sizeof(wsh_hash_entry_t)) {
        errno = ENOMEM;
        return WSH_ERROR;
    }
    e = malloc(sizeof(wsh_hash_entry_t) + len);
    if (e == NULL) {
        return WSH_ERROR;
    }

    if (h->count >= h->size
        && hash_resize(h, h->size ? h->size * 2 : HASH_MIN_SIZE) != WSH_OK
        && h->size == 0)
    {
        free(e);
        return WSH_ERROR;
    }

    e->value = value;
    e->hash = hash;
    e->len = len;
    if (len != 0) {
        memcpy(e->key, key, len);
    }
    bucket = &h->buckets[hash & (h->size - 1)];
    e->next = *bucket;
    *bucket = e;
    h->count++;
    return WSH_OK;
}

/* Remove the LEN bytes at KEY (NULL is fine if LEN is 0) and their key
 * copy. During an iteration only the entry that wsh_hash_next() returned
 * last may be removed.
 *
 * Returns the removed value, now owned by the caller, or NULL if the key
 * was absent (or its value was NULL). */
void *
wsh_hash_remove(wsh_hash_t *h, const void *key, size_t len)
{
    wsh_hash_entry_t *e, **link;
    uint64_t hash;
    void *value;

    if (h->count == 0) {
        return NULL;
    }
    hash = hash_siphash(key, len);
    for (link = &h->buckets[hash & (h->size - 1)]; (e = *link) != NULL;
         link = &e->next)
    {
        if (!hash_match(e, hash, key, len)) {
            continue;
        }
        *link = e->next;
        value = e->value;
        free(e);

        /* An emptied table returns to its initial footprint (many
         * per-connection tables are emptied and kept). This is safe under
         * an iteration: with no entries left it has nothing to return,
         * and wsh_hash_next() sees size 0. */
        if (--h->count == 0) {
            free(h->buckets);
            h->buckets = NULL;
            h->size = 0;
        }
        return value;
    }
    return NULL;
}

/* Number of entries in H. */
size_t
wsh_hash_count(const wsh_hash_t *h)
{
    return h->count;
}

/* Start iterating over H with IT, on the caller's stack; there is nothing
 * to release afterwards. */
void
wsh_hash_iter_init(const wsh_hash_t *h, wsh_hash_iter_t *it)
{
    it->hash = h;
    it->next = NULL;
    it->bucket = 0;
}

/* Step IT to the next entry of its table, in bucket order, storing its key
 * bytes, key length and value through KEY, LEN and VALUE (each may be
 * NULL). The key points into the entry and stays valid until the entry is
 * removed.
 *
 * Returns true, or false once every entry has been returned (and on every
 * call after that). Each entry present for the whole iteration is returned
 * exactly once, provided the caller removes at most the entry just
 * returned and inserts no new keys until the iteration ends; replacing
 * values of existing keys is fine. */
bool
wsh_hash_next(wsh_hash_iter_t *it, const void **key, size_t *len,
    void **value)
{
    const wsh_hash_t *h = it->hash;
    wsh_hash_entry_t *e = it->next;

    while (e == NULL) {
        if (it->bucket >= h->size) {
            return false;
        }
        e = h->buckets[it->bucket++];
    }

    /* Step past E now, so the caller may free it before the next call. */
    it->next = e->next;

    if (key != NULL) {
        *key = e->key;
    }
    if (len != NULL) {
        *len = e->len;
    }
    if (value != NULL) {
        *value = e->value;
    }
    return true;
}

/* V with its bits in reverse order. */
static size_t
hash_rev(size_t v)
{
    size_t s = CHAR_BIT * sizeof(v), mask = ~(size_t) 0;

    while ((s >>= 1) > 0) {
        mask ^= mask << s;
        v = ((v >> s) & mask) | ((v << s) & ~mask);
    }
    return v;
}

/* The next cursor after V over a table of SIZE buckets: V's bits counted
 * from the top (Pieter Noordhuis's reverse binary iteration, dict.c). */
static size_t
hash_scan_next(size_t v, size_t size)
{
    v |= ~(size - 1);
    v = hash_rev(v);
    v++;
    return hash_rev(v);
}

size_t
wsh_hash_scan(const wsh_hash_t *h, size_t cursor, size_t max,
    bool (*fn)(void *arg, const void *key, size_t len, void *value),
    void *arg)
{
    wsh_hash_entry_t *e;
    size_t n = 0, chain;

    if (h->count == 0) {
        return 0;
    }
    do {
        chain = 0;
        for (e = h->buckets[cursor & (h->size - 1)]; e; e = e->next) {
            chain++;
        }
        if (n > 0 && n + chain > max) {
            return cursor;      /* this bucket starts the next page */
        }
        for (e = h->buckets[cursor & (h->size - 1)]; e; e = e->next) {
            if (!fn(arg, e->key, e->len, e->value)) {
                return cursor;  /* this bucket again, from its start */
            }
        }
        n += chain;
        cursor = hash_scan_next(cursor, h->size);
    } while (cursor != 0 && n < max);
    return cursor;
}

uint64_t
wsh_fnv1a64(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 14695981039346656037ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ s[i]) * 1099511628211ULL;
    }
    return h;
}
