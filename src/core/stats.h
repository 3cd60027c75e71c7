/* stats.h -- server-wide counters in shared memory, for /metrics.
 *
 * The master makes one shared zone before the first fork and gives
 * every worker process a slot of its own: the worker is the slot's only
 * writer, so an update is a plain relaxed load and store, no lock and no
 * atomic read-modify-write on the hot path. A scrape, served by any
 * worker, sums all slots. When a worker exits (reload, crash, SIGKILL)
 * the master folds its counters into a "retired" slot, so a counter
 * never goes backwards, as Prometheus expects; gauges (connections now,
 * rooms now) die with their worker. The region lives as long as the
 * master: reloads keep it, a binary upgrade (new master) starts again
 * from zero, which Prometheus reads as a counter reset.
 *
 * What modules read (the counters' names, a snapshot of their sums) is
 * public: include/wshub.h, "Server statistics". This header is the
 * writers' side.
 */
#ifndef WSH_STATS_H
#define WSH_STATS_H

#include "core/core.h"
#include "wshub.h"

/* This process's slot: a scratch one outside workers. */
extern wsh_stats_slot_t *wsh_stats_self;

static inline void
wsh_stat_add(int i, uint64_t n)
{
    __atomic_store_n(&wsh_stats_self->v[i], wsh_stats_self->v[i] + n,
                     __ATOMIC_RELAXED);
}

static inline void
wsh_stat_sub(int i, uint64_t n)
{
    __atomic_store_n(&wsh_stats_self->v[i], wsh_stats_self->v[i] - n,
                     __ATOMIC_RELAXED);
}

static inline void
wsh_stat_set(int i, uint64_t v)
{
    __atomic_store_n(&wsh_stats_self->v[i], v, __ATOMIC_RELAXED);
}

/* Counter (or gauge) I of Redis shard SHARD (< WSH_STATS_SHARDS). */
static inline void
wsh_stat_shard_add(unsigned shard, int i, uint64_t n)
{
    __atomic_store_n(&wsh_stats_self->shard[shard][i],
                     wsh_stats_self->shard[shard][i] + n, __ATOMIC_RELAXED);
}

static inline void
wsh_stat_shard_set(unsigned shard, int i, uint64_t v)
{
    __atomic_store_n(&wsh_stats_self->shard[shard][i], v, __ATOMIC_RELAXED);
}

static inline void
wsh_stat_error(int err)
{
    wsh_stat_add(WSH_STAT_ERRORS + err, 1);
}

/* Count VALUE (bytes, or microseconds) into histogram H; N times the
 * same VALUE with wsh_stat_observe_n (a broadcast's N deliveries). */
void wsh_stat_observe(int h, uint64_t value);
void wsh_stat_observe_n(int h, uint64_t value, uint64_t n);

/* A room's local member count went from FROM to TO (0: no room): moves
 * it between the size classes of WSH_STAT_ROOM_SIZES. Worker. */
void wsh_stat_room_resized(uint64_t from, uint64_t to);

/* Count a WebSocket that ended with CODE after DURATION_MS. */
void wsh_stat_connection_ended(int code, wsh_msec_t duration_ms);

/* Master: the region, a zone of core/shm.c (before the first fork). */
int  wsh_stats_init(void);
/* Master: a slot for a worker about to be forked, or -1 if none is free
 * (the worker then counts into a scratch slot). */
int  wsh_stats_acquire(int worker, unsigned generation);
/* Master, after fork: record the worker's pid. */
void wsh_stats_started(int slot, pid_t pid);
/* Worker, right after fork: write into SLOT (-1: scratch). */
void wsh_stats_attach(int slot);
/* Master: the worker of SLOT is gone; fold its counters. */
void wsh_stats_release(int slot);
/* Master: count N at counter I, as an exited worker's (the master has
 * no slot of its own). */
void wsh_stats_master_add(int i, uint64_t n);
/* Master: a reload was done. */
void wsh_stats_reloaded(void);
/* Worker, exiting: free its snapshot (wsh_stats_snapshot). */
void wsh_stats_exit_worker(void);

#endif /* WSH_STATS_H */
