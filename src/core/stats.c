/* stats.c -- the shared counter region (see stats.h).
 *
 * Readers must never see a counter go down, including while the master
 * folds an exited worker into the retired slot: the fold is bracketed by
 * a sequence counter (odd while folding) and a scrape that overlaps one
 * starts again, like a Linux seqlock. Workers never take part in it:
 * they only write their own slot.
 */
#include "core/stats.h"
#include "core/log.h"
#include "core/shm.h"

#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(WSH_ERR_N <= WSH_STAT_N - WSH_STAT_ERRORS,
               "room for every error counter");

typedef struct {
    uint64_t         seq;           /* odd while the master folds */
    uint64_t         reloads;
    wsh_stats_slot_t retired;
    wsh_stats_slot_t slot[WSH_STATS_SLOTS];
} stats_region_t;

static stats_region_t *stats_region;
static wsh_stats_slot_t stats_scratch;
static wsh_stats_snapshot_t *stats_snap;   /* this worker's, for modules */

wsh_stats_slot_t *wsh_stats_self = &stats_scratch;

/* Connection durations, seconds: a reload spreads reconnects over a few
 * seconds, chat sessions last minutes to hours. Stored in ms. */
static const uint64_t stats_duration_bounds[] = {
    100, 1000, 5000, 10000, 30000, 60000, 300000, 900000, 1800000, 3600000,
    14400000, 86400000
};
/* Message sizes in bytes: 4x steps from a small JSON ping to 1 MiB. */
static const uint64_t stats_size_bounds[] = {
    16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576
};
/* Module time per message, in microseconds. */
static const uint64_t stats_processing_bounds[] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 25000, 100000
};
/* Members per room: wshub_rooms{size_le}. A gauge family, not a
 * histogram: rooms shrink, and a histogram's buckets are counters that
 * Prometheus must never see go down. */
static const uint64_t stats_room_bounds[] = {
    1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000, 10000
};

_Static_assert(wsh_nelems(stats_room_bounds) == WSH_ROOM_SIZES - 1,
               "a gauge per room size class, the last one unbounded");

#define STATS_DURATION(reason)                                               \
    { "websocket_connection_duration_seconds",                               \
      "How long WebSocket connections lasted, by close reason.",             \
      "reason=\"" reason "\"", stats_duration_bounds,                        \
      wsh_nelems(stats_duration_bounds), 1000 }

static const wsh_hist_info_t stats_hists[WSH_HIST_N] = {
    STATS_DURATION("normal"),           /* 1000 */
    STATS_DURATION("going_away"),       /* 1001 */
    STATS_DURATION("protocol_error"),   /* 1002, 1003, 1007 */
    STATS_DURATION("policy"),           /* 1008 */
    STATS_DURATION("too_big"),          /* 1009 */
    STATS_DURATION("abnormal"),         /* 1005, 1006: no close frame */
    STATS_DURATION("internal_error"),   /* 1011 */
    STATS_DURATION("server_restart"),   /* 1012, 1013 */
    STATS_DURATION("other"),
    { "websocket_message_size_bytes", "Sizes of WebSocket messages.",
      "direction=\"in\"", stats_size_bounds, wsh_nelems(stats_size_bounds),
      1 },
    { "websocket_message_size_bytes", "Sizes of WebSocket messages.",
      "direction=\"out\"", stats_size_bounds, wsh_nelems(stats_size_bounds),
      1 },
    { "websocket_message_processing_duration_seconds",
      "Time the endpoint's module spent on one received message.", NULL,
      stats_processing_bounds, wsh_nelems(stats_processing_bounds),
      1000000 },
};

static const wsh_err_info_t stats_errs[WSH_ERR_N] = {
    { "http", "bad_request" },
    { "http", "unauthorized" },
    { "http", "forbidden" },
    { "http", "not_found" },
    { "http", "bad_handshake" },
    { "http", "timeout" },
    { "http", "too_large" },
    { "http", "rate_limited" },
    { "http", "unavailable" },
    { "http", "other" },
    { "websocket", "protocol_error" },
    { "websocket", "invalid_data" },
    { "websocket", "message_too_big" },
    { "websocket", "policy" },
    { "websocket", "rate_limited" },
    { "websocket", "slow_consumer" },
    { "websocket", "pong_timeout" },
    { "websocket", "write_timeout" },
    { "websocket", "internal_error" },
    { "engine", "disconnected" },
    { "engine", "publish_failed" },
};

const wsh_hist_info_t *
wsh_stats_hist_info(int h)
{
    return &stats_hists[h];
}

const uint64_t *
wsh_stats_room_bounds(void)
{
    return stats_room_bounds;
}

const wsh_err_info_t *
wsh_stats_err_info(int err)
{
    return &stats_errs[err];
}

static void
stats_hist_add(wsh_hist_t *hist, const wsh_hist_info_t *info, uint64_t value,
    int64_t n)
{
    size_t i = 0;

    while (i < info->nbounds && value > info->bounds[i]) {
        i++;
    }
    __atomic_store_n(&hist->bucket[i], hist->bucket[i] + (uint64_t) n,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&hist->sum, hist->sum + (uint64_t) n * value,
                     __ATOMIC_RELAXED);
}

void
wsh_stat_observe(int h, uint64_t value)
{
    stats_hist_add(&wsh_stats_self->hist[h], &stats_hists[h], value, 1);
}

void
wsh_stat_observe_n(int h, uint64_t value, uint64_t n)
{
    stats_hist_add(&wsh_stats_self->hist[h], &stats_hists[h], value,
                   (int64_t) n);
}

static int
stats_room_class(uint64_t members)
{
    int i = 0;

    while (i < WSH_ROOM_SIZES - 1 && members > stats_room_bounds[i]) {
        i++;
    }
    return WSH_STAT_ROOM_SIZES + i;
}

void
wsh_stat_room_resized(uint64_t from, uint64_t to)
{
    if (from != 0) {
        wsh_stat_sub(stats_room_class(from), 1);
    } else {
        wsh_stat_add(WSH_STAT_ROOMS, 1);
    }
    if (to != 0) {
        wsh_stat_add(stats_room_class(to), 1);
    } else {
        wsh_stat_sub(WSH_STAT_ROOMS, 1);
    }
}

void
wsh_stat_connection_ended(int code, wsh_msec_t duration_ms)
{
    int reason;

    switch (code) {
    case 1000: reason = 0; break;
    case 1001: reason = 1; break;
    case 1002: case 1003: case 1007: reason = 2; break;
    case 1008: reason = 3; break;
    case 1009: reason = 4; break;
    case 1005: case 1006: reason = 5; break;
    case 1011: reason = 6; break;
    case 1012: case 1013: reason = 7; break;
    default: reason = 8; break;
    }
    wsh_stat_observe(WSH_HIST_DURATION + reason, duration_ms);
}

int
wsh_stats_init(void)
{
    stats_region = wsh_shm_zone("stats", sizeof(stats_region_t));
    return stats_region != NULL ? WSH_OK : WSH_ERROR;
}

int
wsh_stats_acquire(int worker, unsigned generation)
{
    wsh_stats_slot_t *s;
    int i;

    for (i = 0; stats_region != NULL && i < WSH_STATS_SLOTS; i++) {
        s = &stats_region->slot[i];
        if (!s->in_use) {
            memset(s, 0, sizeof(*s));
            s->worker = (uint64_t) worker;
            s->generation = generation;
            __atomic_store_n(&s->in_use, 1, __ATOMIC_RELEASE);
            return i;
        }
    }
    wsh_log(WSH_LOG_WARN, "all %d counter slots are taken: worker %d's "
            "figures will be missing from /metrics", WSH_STATS_SLOTS, worker);
    return -1;
}

void
wsh_stats_started(int slot, pid_t pid)
{
    if (slot >= 0) {
        __atomic_store_n(&stats_region->slot[slot].pid, (uint64_t) pid,
                         __ATOMIC_RELAXED);
    }
}

void
wsh_stats_attach(int slot)
{
    wsh_stats_self = slot >= 0 ? &stats_region->slot[slot] : &stats_scratch;
}

static void
stats_seq_bump(void)
{
    __atomic_add_fetch(&stats_region->seq, 1, __ATOMIC_SEQ_CST);
}

void
wsh_stats_release(int slot)
{
    wsh_stats_slot_t *s, *r;
    size_t i, b;

    if (slot < 0) {
        return;
    }
    s = &stats_region->slot[slot];
    r = &stats_region->retired;
    stats_seq_bump();
    for (i = WSH_STAT_GAUGES; i < WSH_STAT_N; i++) {
        r->v[i] += s->v[i];
    }
    for (i = 0; i < WSH_STATS_SHARDS; i++) {
        for (b = WSH_SHARD_STAT_GAUGES; b < WSH_SHARD_STAT_N; b++) {
            r->shard[i][b] += s->shard[i][b];
        }
    }
    for (i = 0; i < WSH_HIST_N; i++) {
        for (b = 0; b <= WSH_HIST_BUCKETS; b++) {
            r->hist[i].bucket[b] += s->hist[i].bucket[b];
        }
        r->hist[i].sum += s->hist[i].sum;
    }
    __atomic_store_n(&s->in_use, 0, __ATOMIC_RELAXED);
    stats_seq_bump();
}

void
wsh_stats_master_add(int i, uint64_t n)
{
    if (stats_region == NULL) {
        return;
    }
    stats_seq_bump();
    stats_region->retired.v[i] += n;
    stats_seq_bump();
}

void
wsh_stats_reloaded(void)
{
    __atomic_add_fetch(&stats_region->reloads, 1, __ATOMIC_RELAXED);
}

static void
stats_sum(wsh_stats_slot_t *to, const wsh_stats_slot_t *from, bool gauges)
{
    size_t i, b;

    for (i = gauges ? 0 : WSH_STAT_GAUGES; i < WSH_STAT_N; i++) {
        to->v[i] += __atomic_load_n(&from->v[i], __ATOMIC_RELAXED);
    }
    for (i = 0; i < WSH_STATS_SHARDS; i++) {
        for (b = gauges ? 0 : WSH_SHARD_STAT_GAUGES; b < WSH_SHARD_STAT_N;
             b++)
        {
            to->shard[i][b] += __atomic_load_n(&from->shard[i][b],
                                               __ATOMIC_RELAXED);
        }
    }
    for (i = 0; i < WSH_HIST_N; i++) {
        for (b = 0; b <= WSH_HIST_BUCKETS; b++) {
            to->hist[i].bucket[b] +=
                __atomic_load_n(&from->hist[i].bucket[b], __ATOMIC_RELAXED);
        }
        to->hist[i].sum += __atomic_load_n(&from->hist[i].sum,
                                           __ATOMIC_RELAXED);
    }
}

/* Sum every slot into SNAP, consistently with the master's folds. */
static int
stats_snapshot(wsh_stats_snapshot_t *snap)
{
    const wsh_stats_slot_t *s;
    uint64_t seq;
    size_t i;

    if (stats_region == NULL) {
        return WSH_ERROR;
    }
    do {
        while ((seq = __atomic_load_n(&stats_region->seq, __ATOMIC_ACQUIRE))
               & 1)
        {
            sched_yield();
        }
        memset(&snap->total, 0, sizeof(snap->total));
        snap->nlive = 0;
        stats_sum(&snap->total, &stats_region->retired, false);
        for (i = 0; i < WSH_STATS_SLOTS; i++) {
            s = &stats_region->slot[i];
            if (!__atomic_load_n(&s->in_use, __ATOMIC_ACQUIRE)) {
                continue;
            }
            stats_sum(&snap->total, s, true);
            memset(&snap->live[snap->nlive], 0, sizeof(snap->live[0]));
            snap->live[snap->nlive].pid = s->pid;
            snap->live[snap->nlive].worker = s->worker;
            snap->live[snap->nlive].generation = s->generation;
            stats_sum(&snap->live[snap->nlive], s, true);
            snap->nlive++;
        }
        snap->reloads = __atomic_load_n(&stats_region->reloads,
                                        __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while (__atomic_load_n(&stats_region->seq, __ATOMIC_RELAXED) != seq);
    return WSH_OK;
}

const wsh_stats_snapshot_t *
wsh_stats_snapshot(void)
{
    if (stats_snap == NULL) {
        /* ~250 KB: taken on the first scrape, not by every worker. */
        stats_snap = malloc(sizeof(*stats_snap));
        if (stats_snap == NULL) {
            return NULL;
        }
    }
    return stats_snapshot(stats_snap) == WSH_OK ? stats_snap : NULL;
}

void
wsh_stats_exit_worker(void)
{
    free(stats_snap);
    stats_snap = NULL;
}

long
wsh_stats_rss(uint64_t pid)
{
    char path[64];
    long pages, resident = 0;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%" PRIu64 "/statm", pid);
    fp = fopen(path, "r");
    if (fp != NULL) {
        if (fscanf(fp, "%ld %ld", &pages, &resident) != 2) {
            resident = 0;
        }
        fclose(fp);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

uint64_t
wsh_stats_gauge(int i)
{
    uint64_t sum = 0;
    size_t k;

    for (k = 0; stats_region != NULL && k < WSH_STATS_SLOTS; k++) {
        if (__atomic_load_n(&stats_region->slot[k].in_use, __ATOMIC_ACQUIRE)) {
            sum += __atomic_load_n(&stats_region->slot[k].v[i],
                                   __ATOMIC_RELAXED);
        }
    }
    return sum;
}
