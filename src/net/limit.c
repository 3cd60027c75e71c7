/* limit.c -- per-IP and total WebSocket caps shared by all workers.
 *
 * The zone is a header (the table lock, the total and per-slot counts
 * of open WebSockets) and an open-addressing table of client addresses
 * with linear probing. An address entry holds its open WebSockets per
 * worker slot, their sum, and a GCRA "theoretical arrival time" for the
 * handshake rate (one word is a whole token bucket: the bucket is full
 * when tat <= now).
 *
 * Concurrency: lookups and increments run under one spin lock whose
 * word holds the holder's pid; it is held for a bounded probe of the
 * table (no syscall, no allocation inside), and the master clears it if
 * the worker holding it dies. Decrements are plain atomics on the entry
 * a connection was admitted with, without the lock: a decrement cannot
 * make a reusable entry busy. Entries are never emptied, so probe
 * chains never break: an entry with no connections and a full bucket is
 * reused for another address instead.
 *
 * Counts are per worker slot (the master's process table index, unique
 * among live processes) so that when a worker dies, however it dies,
 * the master subtracts exactly what it held. Slots outside the table
 * (more than WSH_LIMIT_SLOTS workers alive at once) are not limited.
 *
 * A full table fails open: the connection is admitted untracked and the
 * event logged. Filling the table needs thousands of distinct addresses
 * each holding a connection; refusing every new address then would let
 * such an attacker lock everyone else out, while max_connections and
 * max_connections_total still bound the damage.
 */
#include "net/limit.h"
#include "core/log.h"
#include "core/shm.h"

#include <sched.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

typedef struct {
    uint8_t             addr[16];
    uint32_t            used;           /* ever used (under the lock) */
    _Atomic uint32_t    total;          /* sum of count[] */
    uint64_t            tat;            /* GCRA, µs (under the lock) */
    _Atomic uint16_t    count[WSH_LIMIT_SLOTS];
} limit_ip_t;

struct wsh_limit_zone_s {
    _Atomic int         lock;           /* pid of the holder, 0: free */
    uint32_t            nips;
    _Atomic uint32_t    total;          /* sum of slot_total[] */
    _Atomic uint32_t    slot_total[WSH_LIMIT_SLOTS];
    limit_ip_t          ips[];
};

static wsh_limit_zone_t *limit_zone;
static int limit_slot = -1;

int
wsh_limit_check(const wsh_conf_t *cf, char *err, size_t len)
{
    const wsh_conf_limits_t *l = &cf->limits;
    int most = WSH_LIMIT_SLOTS / 2;

    if ((l->per_ip_connections == 0 && l->max_connections_total == 0)
        || cf->worker_processes <= most)
    {
        return WSH_OK;
    }
    snprintf(err, len, "%s: limits.per_ip_connections and "
             "limits.max_connections_total count the connections of %d "
             "worker processes at most, and a reload runs two generations "
             "at once: %d workers would run %d; set worker_processes to %d "
             "or less, or turn those limits off", cf->file, WSH_LIMIT_SLOTS,
             cf->worker_processes, 2 * cf->worker_processes, most);
    return WSH_ERROR;
}

size_t
wsh_limit_zone_size(unsigned nips)
{
    return sizeof(wsh_limit_zone_t) + (size_t) nips * sizeof(limit_ip_t);
}

void
wsh_limit_zone_init(wsh_limit_zone_t *z, unsigned nips)
{
    z->nips = nips;
}

void
wsh_limit_key(const struct sockaddr *sa, uint8_t key[16])
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *) sa;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) sa;

    memset(key, 0, 16);
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &sin6->sin6_addr, 16);
    } else if (sa->sa_family == AF_INET) {
        key[10] = 0xff;
        key[11] = 0xff;
        memcpy(key + 12, &sin->sin_addr, 4);
    }
}

/* FNV-1a: cheap, and good enough for a table an attacker can only fill
 * up to its (failing open) capacity. */
static uint32_t
limit_hash(const uint8_t key[16])
{
    uint32_t h = 2166136261u;
    int i;

    for (i = 0; i < 16; i++) {
        h = (h ^ key[i]) * 16777619u;
    }
    return h;
}

static void
limit_lock(wsh_limit_zone_t *z)
{
    int expected, me = (int) getpid();
    unsigned spins = 0;

    for ( ;; ) {
        expected = 0;
        if (atomic_compare_exchange_weak_explicit(&z->lock, &expected, me,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
        {
            return;
        }
        if (++spins % 64 == 0) {
            sched_yield();          /* the holder may be preempted */
        }
    }
}

static void
limit_unlock(wsh_limit_zone_t *z)
{
    atomic_store_explicit(&z->lock, 0, memory_order_release);
}

/* The entry of KEY, or a reusable one for it, or NULL when the probe
 * finds neither (the table is full around KEY). Under the lock. */
static limit_ip_t *
limit_find(wsh_limit_zone_t *z, const uint8_t key[16], uint64_t now)
{
    uint32_t i, n, h = limit_hash(key);
    limit_ip_t *e, *reuse = NULL;

    n = z->nips < WSH_LIMIT_PROBES ? z->nips : WSH_LIMIT_PROBES;
    for (i = 0; i < n; i++) {
        e = &z->ips[(h + i) % z->nips];
        if (!e->used) {
            if (reuse == NULL) {
                reuse = e;
            }
            break;              /* the end of KEY's chain */
        }
        if (memcmp(e->addr, key, 16) == 0) {
            return e;
        }
        if (reuse == NULL && atomic_load(&e->total) == 0 && e->tat <= now) {
            reuse = e;
        }
    }
    if (reuse != NULL) {
        memcpy(reuse->addr, key, 16);
        reuse->used = 1;
        reuse->tat = 0;
    }
    return reuse;
}

/* GCRA: take one handshake from E's bucket, or say when one is due. */
static bool
limit_rate_take(limit_ip_t *e, const wsh_conf_limits_t *l, uint64_t now,
    unsigned *retry_after)
{
    uint64_t period = 1000000 / l->per_ip_handshake_rate;
    uint64_t slack = period * (l->per_ip_handshake_burst - 1);
    uint64_t t = e->tat > now ? e->tat : now;

    if (t - now > slack) {
        *retry_after = (unsigned) ((t - now - slack + 999999) / 1000000);
        return false;
    }
    e->tat = t + period;
    return true;
}

static void
limit_total_add(wsh_limit_zone_t *z, int slot, int n)
{
    atomic_fetch_add(&z->slot_total[slot], (uint32_t) n);
    atomic_fetch_add(&z->total, (uint32_t) n);
}

int
wsh_limit_zone_admit(wsh_limit_zone_t *z, int slot, const uint8_t key[16],
    const wsh_conf_limits_t *l, uint64_t now_us, int *entry,
    unsigned *retry_after, const char **why)
{
    limit_ip_t *e = NULL;
    int rc = WSH_OK;

    *entry = -1;
    if (z == NULL || slot < 0 || slot >= WSH_LIMIT_SLOTS) {
        return WSH_OK;
    }
    /* The total first, optimistically: add, and take it back if over. */
    limit_total_add(z, slot, 1);
    if (l->max_connections_total != 0
        && atomic_load(&z->total) > l->max_connections_total)
    {
        limit_total_add(z, slot, -1);
        *retry_after = 1;
        *why = "max_connections_total reached";
        return 503;
    }
    if (l->per_ip_connections == 0 && l->per_ip_handshake_rate == 0) {
        return WSH_OK;
    }

    limit_lock(z);
    e = limit_find(z, key, now_us);
    if (e == NULL) {
        *why = "the per-IP table is full";  /* fail open, see above */
    } else if (l->per_ip_handshake_rate != 0
               && !limit_rate_take(e, l, now_us, retry_after))
    {
        *why = "per_ip_handshake_rate exceeded";
        rc = 429;
    } else if (l->per_ip_connections != 0
               && atomic_load(&e->total) >= l->per_ip_connections)
    {
        *retry_after = 1;
        *why = "per_ip_connections reached";
        rc = 429;
    } else {
        atomic_fetch_add(&e->count[slot], 1);
        atomic_fetch_add(&e->total, 1);
        *entry = (int) (e - z->ips);
    }
    limit_unlock(z);

    if (rc != WSH_OK) {
        limit_total_add(z, slot, -1);
    }
    return rc;
}

void
wsh_limit_zone_release(wsh_limit_zone_t *z, int slot, int entry)
{
    if (z == NULL || slot < 0 || slot >= WSH_LIMIT_SLOTS) {
        return;
    }
    if (entry >= 0) {
        atomic_fetch_sub(&z->ips[entry].count[slot], 1);
        atomic_fetch_sub(&z->ips[entry].total, 1);
    }
    limit_total_add(z, slot, -1);
}

void
wsh_limit_zone_slot_gone(wsh_limit_zone_t *z, int slot, pid_t pid)
{
    int holder = (int) pid;
    uint32_t i, n;

    if (z == NULL || slot < 0 || slot >= WSH_LIMIT_SLOTS) {
        return;
    }
    /* Died inside the lock (killed between two instructions): free it. */
    atomic_compare_exchange_strong(&z->lock, &holder, 0);

    /* The dead process no longer changes its own counts, so reading and
     * clearing them is race-free; the sums are shared, hence atomic. */
    for (i = 0; i < z->nips; i++) {
        n = atomic_exchange(&z->ips[i].count[slot], 0);
        if (n != 0) {
            atomic_fetch_sub(&z->ips[i].total, n);
        }
    }
    n = atomic_exchange(&z->slot_total[slot], 0);
    atomic_fetch_sub(&z->total, n);
}

unsigned
wsh_limit_zone_ip_count(wsh_limit_zone_t *z, const uint8_t key[16])
{
    uint32_t i, n, h = limit_hash(key);
    limit_ip_t *e;

    n = z->nips < WSH_LIMIT_PROBES ? z->nips : WSH_LIMIT_PROBES;
    for (i = 0; i < n; i++) {
        e = &z->ips[(h + i) % z->nips];
        if (!e->used) {
            break;
        }
        if (memcmp(e->addr, key, 16) == 0) {
            return atomic_load(&e->total);
        }
    }
    return 0;
}

unsigned
wsh_limit_zone_total(wsh_limit_zone_t *z)
{
    return atomic_load(&z->total);
}

int
wsh_limit_init_master(void)
{
    size_t size = wsh_limit_zone_size(WSH_LIMIT_IPS);
    bool fresh = wsh_shm_lookup("limits") == NULL;

    limit_zone = wsh_shm_zone("limits", size);
    if (limit_zone == NULL) {
        return WSH_ERROR;
    }
    if (fresh) {
        wsh_limit_zone_init(limit_zone, WSH_LIMIT_IPS);
    }
    return WSH_OK;
}

void
wsh_limit_set_slot(int slot)
{
    limit_slot = slot;
    if (slot >= WSH_LIMIT_SLOTS) {
        wsh_log(WSH_LOG_ALERT, "more than %d workers alive: worker slot %d "
                "is not bound by the per-IP and total limits",
                WSH_LIMIT_SLOTS, slot);
    }
}

void
wsh_limit_proc_gone(int slot, pid_t pid)
{
    wsh_limit_zone_slot_gone(limit_zone, slot, pid);
}

int
wsh_limit_admit(const struct sockaddr *sa, const wsh_conf_limits_t *l,
    int *entry, unsigned *retry_after, const char **why)
{
    struct timespec ts;
    uint8_t key[16];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    wsh_limit_key(sa, key);
    *why = NULL;
    return wsh_limit_zone_admit(limit_zone, limit_slot, key, l,
                                (uint64_t) ts.tv_sec * 1000000
                                + (uint64_t) ts.tv_nsec / 1000,
                                entry, retry_after, why);
}

void
wsh_limit_release(int entry)
{
    wsh_limit_zone_release(limit_zone, limit_slot, entry);
}

bool
wsh_limit_log_ok(unsigned *suppressed)
{
    static wsh_msec_t last;
    static unsigned skipped;
    wsh_msec_t now = wsh_monotonic_msec();

    if (last != 0 && now - last < 1000) {
        skipped++;
        return false;
    }
    last = now;
    *suppressed = skipped;
    skipped = 0;
    return true;
}
