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
 */
#ifndef WSH_STATS_H
#define WSH_STATS_H

#include "core/core.h"

/* Slots for worker processes alive at once (all generations). A worker
 * started while all are taken counts into a scratch slot that nobody
 * reads, and the master logs it. */
#define WSH_STATS_SLOTS 128

/* Size classes of rooms (bounds in stats.c, the last one unbounded). */
#define WSH_ROOM_SIZES 12

/* Counters and gauges, one uint64 each. */
enum {
    WSH_STAT_CONNECTIONS_ACTIVE = 0,    /* gauge: open WebSockets */
    WSH_STAT_ROOMS,                     /* gauge: rooms with local members */
    WSH_STAT_ENGINE_UP,                 /* gauge: 1 or 0 */
    WSH_STAT_ROOM_SIZES,                /* gauges: those rooms by size class,
                                           WSH_ROOM_SIZES of them */
    WSH_STAT_GAUGES = WSH_STAT_ROOM_SIZES + WSH_ROOM_SIZES,
                                        /* --- counters from here --- */
    WSH_STAT_CONN_ACCEPTED = WSH_STAT_GAUGES,
    WSH_STAT_CONN_REJECTED,
    WSH_STAT_MSG_IN_TEXT,
    WSH_STAT_MSG_IN_BINARY,
    WSH_STAT_MSG_OUT_TEXT,
    WSH_STAT_MSG_OUT_BINARY,
    WSH_STAT_BYTES_IN,
    WSH_STAT_BYTES_OUT,
    WSH_STAT_ENGINE_PUBLISH,
    WSH_STAT_ENGINE_RECONNECTS,
    WSH_STAT_SLOW_CONSUMER_DROPS,
    WSH_STAT_RATE_LIMITED,
    WSH_STAT_ROOM_RESETS,
    WSH_STAT_REFUSED_PENDING,           /* accept: per_ip_pending */
    WSH_STAT_REFUSED_EVICTED,           /* out of sockets: oldest closed */
    WSH_STAT_REFUSED_SOCKETS,           /* out of sockets, all WebSockets */
    WSH_STAT_ERRORS,                    /* WSH_ERR_N counters follow */
    WSH_STAT_N = WSH_STAT_ERRORS + 24
};

/* websocket_errors_total{component,error_type}: see stats.c's table. */
enum {
    WSH_ERR_HTTP_BAD_REQUEST = 0,   /* 400, 411 */
    WSH_ERR_HTTP_UNAUTHORIZED,      /* 401 */
    WSH_ERR_HTTP_FORBIDDEN,         /* 403: origin, allow list, module */
    WSH_ERR_HTTP_NOT_FOUND,         /* 404 */
    WSH_ERR_HTTP_BAD_HANDSHAKE,     /* 405, 426, 505 */
    WSH_ERR_HTTP_TIMEOUT,           /* 408 */
    WSH_ERR_HTTP_TOO_LARGE,         /* 413, 414, 431 */
    WSH_ERR_HTTP_RATE_LIMITED,      /* 429 */
    WSH_ERR_HTTP_UNAVAILABLE,       /* 503 */
    WSH_ERR_HTTP_OTHER,
    WSH_ERR_WS_PROTOCOL,            /* we closed with 1002 or 1003 */
    WSH_ERR_WS_INVALID_DATA,        /* 1007 */
    WSH_ERR_WS_TOO_BIG,             /* 1009 */
    WSH_ERR_WS_POLICY,              /* 1008 other than the two below */
    WSH_ERR_WS_RATE_LIMITED,
    WSH_ERR_WS_SLOW_CONSUMER,
    WSH_ERR_WS_PONG_TIMEOUT,
    WSH_ERR_WS_WRITE_TIMEOUT,
    WSH_ERR_WS_INTERNAL,            /* 1011: our fault (ENOMEM...) */
    WSH_ERR_ENGINE_DISCONNECTED,
    WSH_ERR_ENGINE_PUBLISH,
    WSH_ERR_N
};

/* Histograms: fixed bucket bounds (stats.c), counts per bucket and a
 * sum, in micro-units for the duration ones. */
#define WSH_HIST_BUCKETS 12     /* at most; plus one for +Inf */

enum {
    WSH_HIST_DURATION = 0,      /* connection duration, by close reason: */
    WSH_HIST_DURATION_LAST = WSH_HIST_DURATION + 8,
    WSH_HIST_SIZE_IN,           /* message size received */
    WSH_HIST_SIZE_OUT,          /* message size sent */
    WSH_HIST_PROCESSING,        /* module message hook time */
    WSH_HIST_N
};

typedef struct {
    uint64_t bucket[WSH_HIST_BUCKETS + 1];
    uint64_t sum;
} wsh_hist_t;

typedef struct {
    uint64_t    in_use;         /* set by the master */
    uint64_t    pid;
    uint64_t    worker;         /* worker_processes slot */
    uint64_t    generation;
    uint64_t    v[WSH_STAT_N];
    wsh_hist_t  hist[WSH_HIST_N];
} wsh_stats_slot_t;

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

static inline void
wsh_stat_error(int err)
{
    wsh_stat_add(WSH_STAT_ERRORS + err, 1);
}

/* Count VALUE (bytes, or microseconds) into histogram H. */
void wsh_stat_observe(int h, uint64_t value);

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
/* Master: a reload was done. */
void wsh_stats_reloaded(void);

/* A consistent sum of all slots for a scrape: counters over every
 * worker that ever ran, gauges over the live ones. */
typedef struct {
    wsh_stats_slot_t total;
    uint64_t         reloads;
    wsh_stats_slot_t live[WSH_STATS_SLOTS];    /* per live worker */
    size_t           nlive;
} wsh_stats_snapshot_t;

int wsh_stats_snapshot(wsh_stats_snapshot_t *snap);

/* Gauge I summed over the live workers, without a snapshot. */
uint64_t wsh_stats_gauge(int i);

/* Bounds and names, for the exposition (modules/metrics). */
typedef struct {
    const char     *name;       /* family, without _bucket etc. */
    const char     *help;
    const char     *label;      /* "reason=\"normal\"" or NULL */
    const uint64_t *bounds;     /* ascending, in the stored unit */
    size_t          nbounds;
    unsigned        scale;      /* stored unit per exposed unit */
} wsh_hist_info_t;

const wsh_hist_info_t *wsh_stats_hist_info(int h);

/* The upper bounds of the room size classes, ascending: WSH_ROOM_SIZES - 1
 * of them, the last class having none. */
const uint64_t *wsh_stats_room_bounds(void);

typedef struct {
    const char *component;
    const char *type;
} wsh_err_info_t;

const wsh_err_info_t *wsh_stats_err_info(int err);

#endif /* WSH_STATS_H */
