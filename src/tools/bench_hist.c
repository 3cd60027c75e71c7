/* bench_hist.c -- wshub-bench's latency histograms.
 *
 * One histogram per thread and measure, of fixed size, written by its
 * thread alone with relaxed atomics so that the main thread may merge
 * them at any time (bench_report.c does, for the progress line and the
 * report). Percentiles come from the merged buckets, never from
 * averaging the percentiles of parts.
 */
#include "tools/bench.h"

static size_t
hist_index(uint64_t v)
{
    int e;

    if (v < 2 * HIST_SUB) {
        return (size_t) v;
    }
    if (v >> HIST_MAX_BITS) {
        v = ((uint64_t) 1 << HIST_MAX_BITS) - 1;
    }
    e = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
    return (size_t) e * HIST_SUB + (size_t) (v >> e);
}

/* The highest value that lands in bucket I (HdrHistogram's "highest
 * equivalent value"): percentiles never understate. */
static uint64_t
hist_value(size_t i)
{
    size_t e, m;

    if (i < 2 * HIST_SUB) {
        return i;
    }
    e = i / HIST_SUB - 1;
    m = i - e * HIST_SUB;
    return (((uint64_t) m + 1) << e) - 1;
}

void
bench_hist_record(bench_hist_t *h, uint64_t v)
{
    ctr_add(&h->counts[hist_index(v)], 1);
    ctr_add(&h->n, 1);
    ctr_add(&h->sum, v);
    if (v > ctr_get(&h->max)) {
        ctr_set(&h->max, v);
    }
    if (ctr_get(&h->n) == 1 || v < ctr_get(&h->min)) {
        ctr_set(&h->min, v);
    }
}

void
bench_hist_merge(bench_hsum_t *s, bench_hist_t *h)
{
    uint64_t n = ctr_get(&h->n), v;
    size_t i;

    for (i = 0; i < HIST_LEN; i++) {
        s->counts[i] += ctr_get(&h->counts[i]);
    }
    if (n == 0) {
        return;
    }
    v = ctr_get(&h->min);
    if (s->n == 0 || v < s->min) {
        s->min = v;
    }
    v = ctr_get(&h->max);
    if (v > s->max) {
        s->max = v;
    }
    s->n += n;
    s->sum += ctr_get(&h->sum);
}

/* Value at percentile P (0-100) in nanoseconds; 0 when empty. */
uint64_t
bench_hsum_percentile(const bench_hsum_t *s, double p)
{
    uint64_t want, seen = 0, total = 0;
    size_t i;

    for (i = 0; i < HIST_LEN; i++) {
        total += s->counts[i];
    }
    if (total == 0) {
        return 0;
    }
    want = (uint64_t) (p / 100.0 * (double) total + 0.5);
    if (want < 1) {
        want = 1;
    }
    for (i = 0; i < HIST_LEN; i++) {
        seen += s->counts[i];
        if (seen >= want) {
            return hist_value(i) < s->max ? hist_value(i) : s->max;
        }
    }
    return s->max;
}
