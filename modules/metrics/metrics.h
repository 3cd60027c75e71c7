/* metrics.h -- what the metrics module shares with the status page. */
#ifndef WSH_METRICS_H
#define WSH_METRICS_H

#include "core/stats.h"

/* A growing text buffer for a response body. */
typedef struct {
    char   *data;
    size_t  len;
    size_t  cap;
} wsh_text_t;

int wsh_text_printf(wsh_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The sum over all workers (kept per worker process, reused), or NULL. */
const wsh_stats_snapshot_t *wsh_metrics_snapshot(void);

/* Resident memory of process PID in bytes (0 if unknown). */
long wsh_metrics_rss(uint64_t pid);

#endif /* WSH_METRICS_H */
