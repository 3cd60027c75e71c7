/* wshub-bench.c -- load generator for wshub and other WebSocket servers.
 *
 * Three scenarios: echo (closed-loop round trips on C connections),
 * fanout (P publishers, C subscribers in one room, delivery latency and
 * loss) and connect (handshakes per second, failures by cause, then hold
 * the connections open). Connections are split over -j threads, each with
 * its own event_base and a 1 ms tick; the main thread only moves the run
 * through its phases, prints a progress line each second and the summary.
 *
 * Counters and latency histograms belong to one thread each and are
 * written with relaxed atomic loads and stores (one writer, no locked
 * instruction), so the main thread may read them at any time; the
 * histograms are fixed arrays, merged when read. Nothing is allocated per
 * message: publish frames are expanded from a template into a buffer
 * made once per thread, and the client copies them masked into the
 * bufferevent.
 */
#include "tools/client.h"
#include "ws/deflate.h"
#include "ws/frame.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <jansson.h>

#define BENCH_TICK_USEC     1000        /* thread tick: pacing, phases */
#define BENCH_INFLIGHT      200         /* handshakes in progress/thread */
#define BENCH_CAUSES        16          /* distinct failure causes kept */
#define BENCH_MARK          "wsb:"      /* payload marker of fanout */
#define BENCH_MARK_MIN      64          /* marker + numbers, at most */
#define BENCH_BURST         1000        /* messages per publisher tick */
#define BENCH_PENDING_MAX   (4u << 20)  /* output a publisher may queue */
#define BENCH_JOIN_SEC      30          /* subscriptions must be acked */
#define BENCH_CLOSE_SEC     8           /* closing handshakes, then quit */

enum { MODE_ECHO = 0, MODE_FANOUT, MODE_CONNECT };

enum {
    PH_CONNECT = 0,     /* open the connections (and subscribe) */
    PH_RUN,             /* measure (connect mode: hold) */
    PH_DRAIN,           /* fanout: wait for late deliveries */
    PH_CLOSE,           /* closing handshakes */
    PH_EXIT             /* give up on the rest */
};

enum { ROLE_ECHO = 0, ROLE_SUB, ROLE_PUB, ROLE_CONN };

enum {
    CS_IDLE = 0,        /* not started */
    CS_CONNECTING,
    CS_OPEN,            /* handshake done, subscription not acked yet */
    CS_READY,           /* measured from now on */
    CS_CLOSING,         /* we closed it */
    CS_DONE
};

/* ---- log-linear histogram ------------------------------------------ */

/* HdrHistogram's layout with 2 significant digits: values below 256 have
 * their own bucket, each further power of two is split in 128 linear
 * buckets, so a bucket is at most 1/128 of its value wide (under 1%).
 * Values are nanoseconds up to 2^40 (18 minutes). */
#define HIST_SUB_BITS   7
#define HIST_SUB        (1 << HIST_SUB_BITS)
#define HIST_MAX_BITS   40
#define HIST_LEN        ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB \
                         + HIST_SUB)

typedef _Atomic uint64_t bench_ctr_t;

typedef struct {
    bench_ctr_t         counts[HIST_LEN];
    bench_ctr_t         n;
    bench_ctr_t         sum;
    bench_ctr_t         min;
    bench_ctr_t         max;
} bench_hist_t;

/* Merged copy of histograms, read by the main thread only. */
typedef struct {
    uint64_t            counts[HIST_LEN];
    uint64_t            n, sum, min, max;
} bench_hsum_t;

/* Add to a counter only this thread writes: no locked instruction. */
static inline void
ctr_add(bench_ctr_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
                             + v, memory_order_relaxed);
}

static inline uint64_t
ctr_get(bench_ctr_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static inline void
ctr_set(bench_ctr_t *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

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

static void
hist_record(bench_hist_t *h, uint64_t v)
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

static void
hist_merge(bench_hsum_t *s, bench_hist_t *h)
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
static uint64_t
hsum_percentile(const bench_hsum_t *s, double p)
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

/* ---- message templates ---------------------------------------------- */

enum { TP_LIT = 0, TP_ROOM, TP_SEQ, TP_TS, TP_PAYLOAD };

typedef struct {
    int                 type;
    const char         *lit;
    size_t              len;
} bench_seg_t;

typedef struct {
    bench_seg_t        *seg;
    size_t              nseg;
    size_t              max_len;    /* expansion bound */
    bool                payload;    /* has {payload} */
} bench_tmpl_t;

/* ---- the run -------------------------------------------------------- */

typedef struct bench_thread_s bench_thread_t;

typedef struct {
    wsh_client_t       *cl;
    bench_thread_t     *t;
    uint32_t            idx;        /* global connection number */
    uint32_t            pub;        /* publisher number */
    uint16_t            url;
    uint8_t             role;
    uint8_t             state;
    uint64_t            t_start;    /* connect started (ns) */
    uint64_t            t_sent;     /* echo: in flight since (ns), 0 none */
    uint64_t            count;      /* echo: round trips; pub: sent */
    uint64_t            budget;     /* messages to send */
    uint64_t            t_run;      /* pub: pacing origin (ns) */
    uint32_t           *next_seq;   /* sub: expected seq per publisher */
    bool                measured;   /* sub: ready when the run started */
} bench_conn_t;

typedef struct {
    char                cause[64];
    uint64_t            n;
} bench_cause_t;

struct bench_thread_s {
    int                 id;
    pthread_t           tid;
    struct event_base  *base;
    struct event       *tick;
    bench_conn_t       *conns;
    size_t              nconns;
    bench_conn_t      **pubs;       /* the publishers among conns */
    size_t              npubs;
    size_t              next;       /* next connection to start */
    size_t              live;       /* clients not yet closed */
    int                 inflight;   /* handshakes in progress */
    int                 phase;      /* last phase acted upon */
    uint64_t            read_ns;    /* when the current read was made */
    size_t              mark_at;    /* where the last marker was found */
    bool                go;         /* fanout: every thread is in PH_RUN */
    bench_conn_t      **msubs;      /* its measured subscribers */
    size_t              nmsubs;
    unsigned            low_tick;   /* ticks until low is recomputed */
    u_char             *msg;        /* frame expansion buffer */
    size_t              msg_cap;

    /* Read by the main thread while running. */
    bench_ctr_t         started;
    bench_ctr_t         opened;
    bench_ctr_t         failed;
    bench_ctr_t         dropped;
    bench_ctr_t         ready;
    bench_ctr_t         sent;       /* echo requests, publishes */
    bench_ctr_t         received;   /* echo replies, deliveries */
    bench_ctr_t         reordered;
    bench_ctr_t         active;     /* echo conns / publishers at work */
    bench_ctr_t         run_seen;   /* has entered PH_RUN */
    bench_ctr_t         subs;       /* subscribers measured */
    bench_ctr_t         last_open;  /* ns */
    bench_ctr_t         last_recv;  /* ns */
    bench_ctr_t         exited;
    bench_hist_t        lat;        /* RTT or delivery latency */
    bench_hist_t        hs;         /* handshake time */
    bench_ctr_t        *low;        /* rate 0: per publisher, the least
                                       next sequence number of subs */

    /* Read after the thread is joined. */
    bench_cause_t       causes[BENCH_CAUSES];
    size_t              ncauses;
};

static struct {
    int                 mode;
    const char         *mode_name;
    wsh_url_t          *urls;
    char              **url_text;
    size_t              nurls;
    size_t              conns;
    size_t              pubs;
    size_t              size;
    double              duration;
    bool                duration_set;
    uint64_t            messages;
    double              rate;
    double              connect_rate;
    double              hold;
    int                 threads;
    const char         *room;
    const char         *sub_text;
    const char         *sub_ack;
    const char         *pub_text;
    bench_tmpl_t        sub;
    bench_tmpl_t        pub;
    double              settle;
    double              drain;
    uint64_t            window;
    double              max_loss;
    bool                json;
    bool                quiet;
    bool                insecure;
    bool                binary;
    char               *headers;
    SSL_CTX            *ssl_ctx;
} opt;

static bench_thread_t      *threads;
static size_t               total_conns;
static _Atomic int          g_phase;
static _Atomic uint64_t     g_t0;                   /* run start (ns) */
static volatile sig_atomic_t g_stop;

static const char *phase_names[] = {
    "connect", "run", "drain", "close", "exit"
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void
fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
fatal(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "wshub-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* Compile TEXT into literal and placeholder segments. Returns WSH_OK or
 * WSH_ERROR for an unknown placeholder (named in err). */
static int
tmpl_compile(bench_tmpl_t *t, const char *text, char *err, size_t errlen)
{
    static const struct { const char *name; int type; } names[] = {
        { "{room}", TP_ROOM }, { "{seq}", TP_SEQ }, { "{ts}", TP_TS },
        { "{payload}", TP_PAYLOAD }
    };
    const char *p = text, *lit = text;
    size_t i, n;

    memset(t, 0, sizeof(*t));
    t->seg = calloc(strlen(text) + 1, sizeof(bench_seg_t));
    if (t->seg == NULL) {
        snprintf(err, errlen, "out of memory");
        return WSH_ERROR;
    }
    while (*p != '\0') {
        if (*p != '{') {
            p++;
            continue;
        }
        for (i = 0; i < wsh_nelems(names); i++) {
            n = strlen(names[i].name);
            if (strncmp(p, names[i].name, n) == 0) {
                break;
            }
        }
        if (i == wsh_nelems(names)) {
            p++;            /* a brace of the JSON itself */
            continue;
        }
        if (p > lit) {
            t->seg[t->nseg++] = (bench_seg_t) { TP_LIT, lit,
                                                (size_t) (p - lit) };
            t->max_len += (size_t) (p - lit);
        }
        t->seg[t->nseg++] = (bench_seg_t) { names[i].type, NULL, 0 };
        switch (names[i].type) {
        case TP_ROOM:
            t->max_len += strlen(opt.room);
            break;
        case TP_PAYLOAD:
            t->max_len += opt.size;
            t->payload = true;
            break;
        default:
            t->max_len += 24;
        }
        p += n;
        lit = p;
    }
    if (p > lit) {
        t->seg[t->nseg++] = (bench_seg_t) { TP_LIT, lit, (size_t) (p - lit) };
        t->max_len += (size_t) (p - lit);
    }
    return WSH_OK;
}

/* The payload of one message: OPT.SIZE bytes. Fanout payloads start with
 * "wsb:PUB:SEQ:TS:" so a subscriber finds them in whatever envelope the
 * server wraps around them; the rest is 'x'. Returns its length. */
static size_t
payload_write(u_char *p, bool marked, uint32_t pub, uint64_t seq,
    uint64_t ts)
{
    int n = 0;

    if (marked) {
        n = snprintf((char *) p, BENCH_MARK_MIN + 1, BENCH_MARK "%u:%llu:%llu:",
                     pub, (unsigned long long) seq, (unsigned long long) ts);
    }
    if ((size_t) n < opt.size) {
        memset(p + n, 'x', opt.size - (size_t) n);
        n = (int) opt.size;
    }
    return (size_t) n;
}

/* Expand T into OUT (at least t->max_len bytes). Returns the length. */
static size_t
tmpl_expand(const bench_tmpl_t *t, u_char *out, bool marked, uint32_t pub,
    uint64_t seq, uint64_t ts)
{
    u_char *p = out;
    size_t i, n;

    for (i = 0; i < t->nseg; i++) {
        switch (t->seg[i].type) {
        case TP_LIT:
            memcpy(p, t->seg[i].lit, t->seg[i].len);
            p += t->seg[i].len;
            break;
        case TP_ROOM:
            n = strlen(opt.room);
            memcpy(p, opt.room, n);
            p += n;
            break;
        case TP_SEQ:
            p += sprintf((char *) p, "%llu", (unsigned long long) seq);
            break;
        case TP_TS:
            p += sprintf((char *) p, "%llu", (unsigned long long) ts);
            break;
        default:
            p += payload_write(p, marked, pub, seq, ts);
        }
    }
    return (size_t) (p - out);
}

static void
cause_count(bench_thread_t *t, const char *prefix, const char *reason)
{
    char buf[64];
    size_t i;

    snprintf(buf, sizeof(buf), "%s%s", prefix, reason);
    for (i = 0; i < t->ncauses; i++) {
        if (strcmp(t->causes[i].cause, buf) == 0) {
            t->causes[i].n++;
            return;
        }
    }
    if (t->ncauses == BENCH_CAUSES) {
        i = BENCH_CAUSES - 1;
        snprintf(t->causes[i].cause, sizeof(t->causes[i].cause), "other");
        t->causes[i].n++;
        return;
    }
    snprintf(t->causes[t->ncauses].cause, sizeof(t->causes[0].cause), "%s",
             buf);
    t->causes[t->ncauses++].n = 1;
}

static int
bench_phase(void)
{
    return atomic_load(&g_phase);
}

/* ---- per connection ------------------------------------------------- */

static void bench_open(wsh_client_t *cl, void *arg);
static void bench_message(wsh_client_t *cl, int opcode, const u_char *data,
    size_t len, void *arg);
static void bench_close(wsh_client_t *cl, int code, const char *reason,
    void *arg);
static void bench_read(wsh_client_t *cl, void *arg);

static const wsh_client_handlers_t bench_handlers = {
    bench_open, bench_message, bench_close, bench_read
};

/* The messages of one read all arrived before it: one clock reading
 * dates them all (a clock_gettime per message was 8% of a fan-out
 * subscriber thread). */
static void
bench_read(wsh_client_t *cl, void *arg)
{
    bench_conn_t *c = arg;

    c->t->read_ns = now_ns();
}

static void
conn_ready(bench_conn_t *c)
{
    c->state = CS_READY;
    ctr_add(&c->t->ready, 1);
}

/* One echo request: the payload alone, or the publish template around
 * it (e.g. the hub's {"type":"echo","data":"{payload}"}). */
static void
echo_send(bench_conn_t *c)
{
    bench_thread_t *t = c->t;
    size_t len;

    if (opt.pub_text != NULL) {
        len = tmpl_expand(&opt.pub, t->msg, false, 0, c->count, now_ns());
    } else {
        len = payload_write(t->msg, false, 0, 0, 0);
    }
    c->t_sent = now_ns();
    if (wsh_client_send(c->cl, opt.binary ? WSH_WS_OP_BINARY
                                          : WSH_WS_OP_TEXT, t->msg, len)
        == WSH_OK)
    {
        ctr_add(&t->sent, 1);
    }
}

static void
bench_open(wsh_client_t *cl, void *arg)
{
    bench_conn_t *c = arg;
    bench_thread_t *t = c->t;
    uint64_t now = now_ns();
    size_t len;

    t->inflight--;
    c->state = CS_OPEN;
    ctr_add(&t->opened, 1);
    ctr_set(&t->last_open, now);
    hist_record(&t->hs, now - c->t_start);

    if (opt.mode != MODE_FANOUT) {
        conn_ready(c);
        return;
    }
    if (opt.sub_text != NULL && *opt.sub_text != '\0') {
        len = tmpl_expand(&opt.sub, t->msg, false, 0, 0, now);
        wsh_client_send(cl, WSH_WS_OP_TEXT, t->msg, len);
    }
    if (opt.sub_ack == NULL || *opt.sub_ack == '\0') {
        conn_ready(c);      /* the main thread waits --settle instead */
    }
}

/* Parse "PUB:SEQ:TS:" after the marker. */
static int
mark_parse(const u_char *p, const u_char *last, uint64_t v[3])
{
    int i;

    for (i = 0; i < 3; i++) {
        v[i] = 0;
        if (p >= last || *p < '0' || *p > '9') {
            return WSH_ERROR;
        }
        while (p < last && *p >= '0' && *p <= '9') {
            v[i] = v[i] * 10 + (uint64_t) (*p++ - '0');
        }
        if (p >= last || *p++ != ':') {
            return WSH_ERROR;
        }
    }
    return WSH_OK;
}

static void
sub_message(bench_conn_t *c, const u_char *data, size_t len)
{
    bench_thread_t *t = c->t;
    const u_char *m;
    uint64_t v[3], now;

    if (!c->measured) {
        return;
    }
    /* Every delivery of a run has the same envelope, so the marker is
     * where it was last time; searching for it cost 10% of the
     * generator at 5 M deliveries/s. */
    if (len >= t->mark_at + sizeof(BENCH_MARK) - 1
        && memcmp(data + t->mark_at, BENCH_MARK, sizeof(BENCH_MARK) - 1) == 0)
    {
        m = data + t->mark_at;
    } else {
        m = memmem(data, len, BENCH_MARK, sizeof(BENCH_MARK) - 1);
        if (m == NULL) {
            return;     /* presence and other hub traffic */
        }
        t->mark_at = (size_t) (m - data);
    }
    m += sizeof(BENCH_MARK) - 1;
    if (mark_parse(m, data + len, v) != WSH_OK || v[0] >= opt.pubs) {
        return;
    }
    now = t->read_ns;
    hist_record(&t->lat, now > v[2] ? now - v[2] : 0);
    ctr_add(&t->received, 1);
    ctr_set(&t->last_recv, now);
    /* Per publisher order (DESIGN.md: one publisher's messages arrive in
     * publish order everywhere). */
    if (v[1] < c->next_seq[v[0]]) {
        ctr_add(&t->reordered, 1);
    } else {
        c->next_seq[v[0]] = (uint32_t) v[1] + 1;
    }
}

static void
bench_message(wsh_client_t *cl, int opcode, const u_char *data, size_t len,
    void *arg)
{
    bench_conn_t *c = arg;
    bench_thread_t *t = c->t;
    uint64_t now;

    if (c->state == CS_OPEN) {
        /* Waiting for the subscription's acknowledgement. */
        if (opt.sub_ack != NULL
            && memmem(data, len, opt.sub_ack, strlen(opt.sub_ack)) != NULL)
        {
            conn_ready(c);
        }
        return;
    }
    if (c->state != CS_READY) {
        return;
    }

    switch (c->role) {
    case ROLE_ECHO:
        /* A reply counts only while one is awaited: a server's greeting
         * (the hub's welcome) arrives before the run starts. */
        if (c->t_sent == 0 || bench_phase() != PH_RUN) {
            return;
        }
        now = now_ns();
        hist_record(&t->lat, now - c->t_sent);
        ctr_add(&t->received, 1);
        ctr_set(&t->last_recv, now);
        c->t_sent = 0;
        if (++c->count < c->budget) {
            echo_send(c);
        } else {
            ctr_add(&t->active, (uint64_t) -1);
        }
        return;
    case ROLE_SUB:
        sub_message(c, data, len);
        return;
    default:
        return;
    }
}

static void
bench_close(wsh_client_t *cl, int code, const char *reason, void *arg)
{
    bench_conn_t *c = arg;
    bench_thread_t *t = c->t;
    int prev = c->state, ph = bench_phase();

    c->state = CS_DONE;
    c->cl = NULL;
    wsh_client_free(cl);
    t->live--;

    if (prev == CS_CONNECTING) {
        t->inflight--;
        if (ph < PH_CLOSE) {
            ctr_add(&t->failed, 1);
            cause_count(t, "", reason);
        }
    } else if (prev == CS_OPEN || prev == CS_READY) {
        if (ph < PH_CLOSE) {
            ctr_add(&t->dropped, 1);
            cause_count(t, "dropped: ", reason);
            if (prev == CS_READY && ph == PH_RUN
                && (c->role == ROLE_PUB || c->role == ROLE_ECHO)
                && c->count < c->budget)
            {
                ctr_add(&t->active, (uint64_t) -1);
            }
        }
    }
    if (ph >= PH_CLOSE && t->live == 0) {
        event_base_loopbreak(t->base);
    }
}

static void
conn_start(bench_conn_t *c)
{
    bench_thread_t *t = c->t;

    c->t_start = now_ns();
    ctr_add(&t->started, 1);
    c->cl = wsh_client_connect(t->base, &opt.urls[c->url], opt.ssl_ctx,
                               opt.headers, &bench_handlers, c);
    if (c->cl == NULL) {
        c->state = CS_DONE;
        ctr_add(&t->failed, 1);
        cause_count(t, "", errno ? strerror(errno) : "connect failed");
        return;
    }
    c->state = CS_CONNECTING;
    t->inflight++;
    t->live++;
}

/* ---- per thread ----------------------------------------------------- */

static void
thread_connect(bench_thread_t *t, uint64_t now)
{
    size_t target = t->nconns;
    double rate = opt.connect_rate / opt.threads, el;

    if (rate > 0) {
        el = (double) (now - atomic_load(&g_t0)) / 1e9;
        if ((double) target > el * rate + 1) {
            target = (size_t) (el * rate) + 1;
        }
    }
    while (t->next < target && t->inflight < BENCH_INFLIGHT) {
        conn_start(&t->conns[t->next++]);
    }
}

/* Rate 0: for every publisher, the next sequence number the slowest of
 * this thread's live subscribers waits for (UINT64_MAX without any),
 * for the publishers of every thread to read. The scan costs
 * subscribers x publishers reads, so with many it is not done each
 * tick. */
static void
thread_low(bench_thread_t *t)
{
    bench_conn_t *c;
    uint64_t low;
    size_t p, i;

    if (t->low_tick > 0) {
        t->low_tick--;
        return;
    }
    t->low_tick = (unsigned) (t->nmsubs * opt.pubs / 50000);
    for (p = 0; p < opt.pubs; p++) {
        low = UINT64_MAX;
        for (i = 0; i < t->nmsubs; i++) {
            c = t->msubs[i];
            if (c->state == CS_READY && c->next_seq[p] < low) {
                low = c->next_seq[p];
            }
        }
        ctr_set(&t->low[p], low);
    }
}

/* Publishers: at --rate, or (rate 0) as fast as every subscriber keeps
 * up, at most --window messages ahead of the slowest, so the run
 * measures what the server delivers rather than how deep its queues
 * grow. */
static void
thread_publish(bench_thread_t *t, uint64_t now)
{
    double rate = opt.rate / (double) opt.pubs;
    bench_conn_t *c;
    uint64_t due, low, v;
    size_t i, k, len, burst;

    for (i = 0; i < t->npubs; i++) {
        c = t->pubs[i];
        if (c->state != CS_READY || c->count >= c->budget) {
            continue;
        }
        if (rate > 0) {
            due = (uint64_t) ((double) (now - c->t_run) * rate / 1e9) + 1;
        } else {
            low = UINT64_MAX;
            for (k = 0; k < (size_t) opt.threads; k++) {
                v = ctr_get(&threads[k].low[c->pub]);
                low = v < low ? v : low;
            }
            due = low == UINT64_MAX ? c->budget : low + opt.window;
        }
        if (due > c->budget) {
            due = c->budget;
        }
        for (burst = 0; c->count < due && burst < BENCH_BURST; burst++) {
            if (wsh_client_pending(c->cl) > BENCH_PENDING_MAX) {
                break;
            }
            len = tmpl_expand(&opt.pub, t->msg, true, c->pub, c->count,
                              now_ns());
            if (wsh_client_send(c->cl, WSH_WS_OP_TEXT, t->msg, len)
                != WSH_OK)
            {
                break;
            }
            c->count++;
            ctr_add(&t->sent, 1);
        }
        if (c->count >= c->budget) {
            ctr_add(&t->active, (uint64_t) -1);
        }
    }
}

/* Publishing starts once every thread has marked its subscribers as
 * measured: a message published earlier could reach a subscriber of a
 * thread that has not looked at the phase yet, and go uncounted. */
static void
thread_go(bench_thread_t *t, uint64_t now)
{
    size_t i;

    for (i = 0; i < (size_t) opt.threads; i++) {
        if (ctr_get(&threads[i].run_seen) == 0) {
            return;
        }
    }
    t->go = true;
    for (i = 0; i < t->npubs; i++) {
        t->pubs[i]->t_run = now;
    }
}

static void
thread_enter(bench_thread_t *t, int ph, uint64_t now)
{
    bench_conn_t *c;
    size_t i;
    uint64_t active = 0, subs = 0;

    switch (ph) {
    case PH_RUN:
        for (i = 0; i < t->nconns; i++) {
            c = &t->conns[i];
            if (c->state != CS_READY) {
                continue;
            }
            if (c->role == ROLE_ECHO && c->budget > 0) {
                active++;
                echo_send(c);
            } else if (c->role == ROLE_PUB && c->budget > 0) {
                active++;
            } else if (c->role == ROLE_SUB) {
                c->measured = true;
                t->msubs[t->nmsubs++] = c;
                subs++;
            }
        }
        if (opt.mode == MODE_FANOUT) {
            thread_low(t);
        }
        ctr_set(&t->subs, subs);
        ctr_set(&t->active, active);
        ctr_set(&t->run_seen, 1);
        break;

    case PH_CLOSE:
        for (i = 0; i < t->nconns; i++) {
            c = &t->conns[i];
            if (c->state >= CS_CONNECTING && c->state <= CS_READY) {
                c->state = CS_CLOSING;
                wsh_client_close(c->cl, 1000, "bench done");
            }
        }
        if (t->live == 0) {
            event_base_loopbreak(t->base);
        }
        break;

    case PH_EXIT:
        event_base_loopbreak(t->base);
        break;

    default:
        break;
    }
}

static void
thread_tick(evutil_socket_t fd, short what, void *arg)
{
    bench_thread_t *t = arg;
    uint64_t now = now_ns();
    int ph = bench_phase();

    while (t->phase < ph) {
        thread_enter(t, ++t->phase, now);
    }
    switch (ph) {
    case PH_CONNECT:
    case PH_RUN:
        if (opt.mode == MODE_CONNECT || ph == PH_CONNECT) {
            thread_connect(t, now);
        }
        if (ph == PH_RUN && opt.mode == MODE_FANOUT) {
            if (!t->go) {
                thread_go(t, now);
            }
            if (t->go) {
                if (opt.rate == 0) {
                    thread_low(t);
                }
                thread_publish(t, now);
            }
        }
        break;
    default:
        break;
    }
}

static void *
thread_main(void *arg)
{
    bench_thread_t *t = arg;
    struct timeval tv = { 0, BENCH_TICK_USEC };

    t->base = event_base_new();
    t->tick = t->base ? event_new(t->base, -1, EV_PERSIST, thread_tick, t)
                      : NULL;
    if (t->tick == NULL) {
        fatal("thread %d: event_base_new() failed", t->id);
    }
    event_add(t->tick, &tv);
    event_base_dispatch(t->base);

    /* PH_EXIT: whatever is still open is dropped without a handshake. */
    for (size_t i = 0; i < t->nconns; i++) {
        if (t->conns[i].cl != NULL) {
            wsh_client_free(t->conns[i].cl);
            t->conns[i].cl = NULL;
        }
    }
    event_free(t->tick);
    event_base_free(t->base);
    wsh_deflate_thread_done();
    ctr_set(&t->exited, 1);
    return NULL;
}

/* ---- main thread ---------------------------------------------------- */

typedef struct {
    uint64_t            started, opened, failed, dropped, ready;
    uint64_t            sent, received, reordered, active, run_seen, subs;
    uint64_t            last_open, last_recv, exited;
} bench_totals_t;

static void
totals(bench_totals_t *s)
{
    bench_thread_t *t;
    int i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < opt.threads; i++) {
        t = &threads[i];
        s->started += ctr_get(&t->started);
        s->opened += ctr_get(&t->opened);
        s->failed += ctr_get(&t->failed);
        s->dropped += ctr_get(&t->dropped);
        s->ready += ctr_get(&t->ready);
        s->sent += ctr_get(&t->sent);
        s->received += ctr_get(&t->received);
        s->reordered += ctr_get(&t->reordered);
        s->active += ctr_get(&t->active);
        s->run_seen += ctr_get(&t->run_seen);
        s->subs += ctr_get(&t->subs);
        s->exited += ctr_get(&t->exited);
        if (ctr_get(&t->last_open) > s->last_open) {
            s->last_open = ctr_get(&t->last_open);
        }
        if (ctr_get(&t->last_recv) > s->last_recv) {
            s->last_recv = ctr_get(&t->last_recv);
        }
    }
}

static void
merge_hist(bench_hsum_t *s, bool handshake)
{
    int i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < opt.threads; i++) {
        hist_merge(s, handshake ? &threads[i].hs : &threads[i].lat);
    }
}

/* A duration in ns for people: "850us", "1.23ms", "2.5s". */
static const char *
fmt_ns(char *buf, size_t len, uint64_t ns)
{
    if (ns < 1000) {
        snprintf(buf, len, "%lluns", (unsigned long long) ns);
    } else if (ns < 1000000) {
        snprintf(buf, len, "%.1fus", (double) ns / 1e3);
    } else if (ns < 1000000000) {
        snprintf(buf, len, "%.2fms", (double) ns / 1e6);
    } else {
        snprintf(buf, len, "%.2fs", (double) ns / 1e9);
    }
    return buf;
}

static void
progress(double el, const bench_totals_t *s, const bench_totals_t *prev,
    double dt)
{
    bench_hsum_t *h;
    const char *ph;
    char p99[32];
    double rs = (double) (s->sent - prev->sent) / dt;
    double rr = (double) (s->received - prev->received) / dt;

    if (opt.quiet) {
        return;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return;
    }
    merge_hist(h, opt.mode == MODE_CONNECT);
    if (h->n == 0) {
        snprintf(p99, sizeof(p99), "-");
    } else {
        fmt_ns(p99, sizeof(p99), hsum_percentile(h, 99));
    }
    free(h);
    ph = phase_names[bench_phase()];
    if (opt.mode == MODE_CONNECT && bench_phase() == PH_RUN) {
        ph = "hold";
    }

    switch (opt.mode) {
    case MODE_ECHO:
        fprintf(stderr, "[%5.1fs] %-7s conns %llu/%zu fail %llu  "
                "%.0f msg/s  p99 %s\n", el, ph,
                (unsigned long long) (s->opened - s->dropped), total_conns,
                (unsigned long long) (s->failed + s->dropped), rr, p99);
        break;
    case MODE_FANOUT:
        fprintf(stderr, "[%5.1fs] %-7s conns %llu/%zu ready %llu fail %llu  "
                "pub %.0f/s  deliv %.0f/s  p99 %s\n", el, ph,
                (unsigned long long) (s->opened - s->dropped), total_conns,
                (unsigned long long) s->ready,
                (unsigned long long) (s->failed + s->dropped), rs, rr, p99);
        break;
    default:
        fprintf(stderr, "[%5.1fs] %-7s open %llu/%zu fail %llu  "
                "%.0f conn/s  handshake p99 %s\n", el, ph,
                (unsigned long long) (s->opened - s->dropped), total_conns,
                (unsigned long long) (s->failed + s->dropped),
                (double) (s->opened - prev->opened) / dt, p99);
    }
}

static void
on_signal(int sig)
{
    g_stop = 1;
}

static double
tv_sec(struct timeval tv)
{
    return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

static json_t *
hist_json(const bench_hsum_t *h, double unit)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
        "count", (json_int_t) h->n,
        "min", h->n ? (double) h->min / unit : 0.0,
        "mean", h->n ? (double) h->sum / (double) h->n / unit : 0.0,
        "p50", (double) hsum_percentile(h, 50) / unit,
        "p90", (double) hsum_percentile(h, 90) / unit,
        "p99", (double) hsum_percentile(h, 99) / unit,
        "p99.9", (double) hsum_percentile(h, 99.9) / unit,
        "p99.99", (double) hsum_percentile(h, 99.99) / unit,
        "max", (double) h->max / unit);
}

static void
print_hist(const char *name, const bench_hsum_t *h)
{
    char b[6][32];

    if (h->n == 0) {
        printf("  %-12s none recorded\n", name);
        return;
    }
    printf("  %-12s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s)\n",
           name, fmt_ns(b[0], 32, hsum_percentile(h, 50)),
           fmt_ns(b[1], 32, hsum_percentile(h, 90)),
           fmt_ns(b[2], 32, hsum_percentile(h, 99)),
           fmt_ns(b[3], 32, hsum_percentile(h, 99.9)),
           fmt_ns(b[4], 32, h->max),
           fmt_ns(b[5], 32, h->sum / h->n));
}

static void
usage(FILE *fp)
{
    fprintf(fp,
"usage: wshub-bench echo|fanout|connect [options] URL...\n"
"\n"
"  echo      C connections send S-byte messages and wait for each reply\n"
"            (closed loop): round trips per second and RTT percentiles\n"
"  fanout    C subscribers join a room, P publishers send to it: delivered\n"
"            messages per second, loss and delivery latency\n"
"  connect   open C connections (at -r per second), report handshakes per\n"
"            second and failures by cause, hold them open -H seconds\n"
"\n"
"options:\n"
"  -c, --connections N       connections, or fanout subscribers (100)\n"
"  -p, --publishers N        fanout publishers (1)\n"
"  -s, --size BYTES          message payload size (64)\n"
"  -d, --duration SEC        measured time (10; none with -n)\n"
"  -n, --messages N          stop after N round trips / publishes\n"
"  -r, --rate N              fanout: publishes per second, all publishers\n"
"                            together, 0 = as fast as delivered (0);\n"
"                            connect: connections per second (0 = no limit)\n"
"      --connect-rate N      new connections per second (0 = no limit)\n"
"  -H, --hold SEC            connect: keep the connections open (0)\n"
"  -j, --threads N           threads, connections split among them (1)\n"
"      --room NAME           fanout room, {room} in templates (bench)\n"
"      --subscribe-template STR   sent by each fanout client once open\n"
"                            (hub: {\"type\":\"join_room\",\"room\":\n"
"                            \"{room}\"}); \"\" sends nothing\n"
"      --subscribe-ack STR   text of the reply that confirms it (hub:\n"
"                            room_joined); without it wait --settle\n"
"      --publish-template STR    a published message, {room} {seq} {ts}\n"
"                            {payload}; must contain {payload} (hub:\n"
"                            room_message); in echo mode wraps the payload\n"
"      --settle SEC          wait after subscribing when there is no ack (1)\n"
"      --drain SEC           fanout: wait for late deliveries (5)\n"
"      --window N            rate 0: messages a publisher may be ahead of\n"
"                            the slowest subscriber (100)\n"
"      --max-loss PERCENT    fanout: loss above it fails the run (0)\n"
"      --header 'NAME: VALUE'    extra request header (repeatable)\n"
"      --binary              echo: binary frames instead of text\n"
"      --deflate             offer permessage-deflate; inflate what the\n"
"                            server compresses (sends uncompressed)\n"
"  -k, --insecure            wss://: do not verify the certificate\n"
"      --json                results as JSON on stdout\n"
"  -q, --quiet               no progress lines on stderr\n"
"  -h, --help                this help\n"
"  -V, --version             print the version\n"
"\n"
"URLs are ws:// or wss://; connections are spread over them round-robin.\n"
"Exit status: 0 ok, 1 the run failed (refused or failed connections,\n"
"dropped connections, loss over --max-loss, nothing measured), 2 usage.\n"
"\n"
"examples:\n"
"  wshub-bench echo -c 100 -s 64 -d 10 ws://127.0.0.1:8080/echo\n"
"  wshub-bench fanout -c 1000 -p 1 -r 1000 -d 10 ws://127.0.0.1:8080/ws\n"
"  wshub-bench fanout -c 2000 ws://node1:8080/ws ws://node2:8080/ws\n"
"  wshub-bench connect -c 10000 -r 2000 -H 60 -j 2 ws://127.0.0.1:8080/ws\n"
"  wshub-bench fanout -c 100 --subscribe-template "
"'{\"sub\":\"{room}\"}' \\\n"
"      --subscribe-ack '' --publish-template "
"'{\"pub\":\"{room}\",\"d\":\"{payload}\"}' \\\n"
"      ws://other-server:9000/\n");
}

static double
arg_num(const char *name, const char *s, double min, double max)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fatal("%s: \"%s\" is not a number from %g to %g", name, s, min, max);
    }
    return v;
}

enum {
    OPT_CONNECT_RATE = 256, OPT_ROOM, OPT_SUB, OPT_ACK, OPT_PUB, OPT_SETTLE,
    OPT_DRAIN, OPT_WINDOW, OPT_MAX_LOSS, OPT_HEADER, OPT_BINARY, OPT_JSON,
    OPT_DEFLATE
};

/* Append the request header H to opt.headers (HLEN bytes so far). */
static void
add_header(const char *h, size_t *hlen)
{
    size_t n = strlen(h);

    opt.headers = realloc(opt.headers, *hlen + n + 3);
    if (opt.headers == NULL) {
        fatal("out of memory");
    }
    memcpy(opt.headers + *hlen, h, n);
    memcpy(opt.headers + *hlen + n, "\r\n", 3);
    *hlen += n + 2;
}

static void
parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "connections", required_argument, NULL, 'c' },
        { "publishers", required_argument, NULL, 'p' },
        { "size", required_argument, NULL, 's' },
        { "duration", required_argument, NULL, 'd' },
        { "messages", required_argument, NULL, 'n' },
        { "rate", required_argument, NULL, 'r' },
        { "hold", required_argument, NULL, 'H' },
        { "threads", required_argument, NULL, 'j' },
        { "insecure", no_argument, NULL, 'k' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "connect-rate", required_argument, NULL, OPT_CONNECT_RATE },
        { "room", required_argument, NULL, OPT_ROOM },
        { "subscribe-template", required_argument, NULL, OPT_SUB },
        { "subscribe-ack", required_argument, NULL, OPT_ACK },
        { "publish-template", required_argument, NULL, OPT_PUB },
        { "settle", required_argument, NULL, OPT_SETTLE },
        { "drain", required_argument, NULL, OPT_DRAIN },
        { "window", required_argument, NULL, OPT_WINDOW },
        { "max-loss", required_argument, NULL, OPT_MAX_LOSS },
        { "header", required_argument, NULL, OPT_HEADER },
        { "binary", no_argument, NULL, OPT_BINARY },
        { "json", no_argument, NULL, OPT_JSON },
        { "deflate", no_argument, NULL, OPT_DEFLATE },
        { NULL, 0, NULL, 0 }
    };
    bool conns_set = false, sub_set = false, ack_set = false;
    char err[256];
    size_t hlen = 0;
    int ch;
    size_t i;

    opt.conns = 100;
    opt.pubs = 1;
    opt.size = 64;
    opt.duration = 10;
    opt.threads = 1;
    opt.room = "bench";
    opt.settle = 1;
    opt.drain = 5;
    opt.window = 100;

    if (argc < 2) {
        usage(stderr);
        exit(2);
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        exit(0);
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("wshub-bench %s\n", WSH_VERSION);
        exit(0);
    }
    opt.mode_name = argv[1];
    if (strcmp(argv[1], "echo") == 0) {
        opt.mode = MODE_ECHO;
    } else if (strcmp(argv[1], "fanout") == 0) {
        opt.mode = MODE_FANOUT;
    } else if (strcmp(argv[1], "connect") == 0) {
        opt.mode = MODE_CONNECT;
    } else {
        fatal("unknown scenario \"%s\": echo, fanout or connect", argv[1]);
    }
    argc--;
    argv++;

    while ((ch = getopt_long(argc, argv, "c:p:s:d:n:r:H:j:kqhV", longopts,
                             NULL)) != -1)
    {
        switch (ch) {
        case 'c':
            opt.conns = (size_t) arg_num("-c", optarg, 1, 10000000);
            conns_set = true;
            break;
        case 'p':
            opt.pubs = (size_t) arg_num("-p", optarg, 1, 100000);
            break;
        case 's':
            opt.size = (size_t) arg_num("-s", optarg, 0, 64 << 20);
            break;
        case 'd':
            opt.duration = arg_num("-d", optarg, 0.001, 1e7);
            opt.duration_set = true;
            break;
        case 'n':
            opt.messages = (uint64_t) arg_num("-n", optarg, 1, 1e15);
            break;
        case 'r':
            opt.rate = arg_num("-r", optarg, 0, 1e9);
            break;
        case 'H':
            opt.hold = arg_num("-H", optarg, 0, 1e7);
            break;
        case 'j':
            opt.threads = (int) arg_num("-j", optarg, 1, 256);
            break;
        case 'k':
            opt.insecure = true;
            break;
        case 'q':
            opt.quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("wshub-bench %s\n", WSH_VERSION);
            exit(0);
        case OPT_CONNECT_RATE:
            opt.connect_rate = arg_num("--connect-rate", optarg, 0, 1e9);
            break;
        case OPT_ROOM:
            opt.room = optarg;
            break;
        case OPT_SUB:
            opt.sub_text = optarg;
            sub_set = true;
            break;
        case OPT_ACK:
            opt.sub_ack = optarg;
            ack_set = true;
            break;
        case OPT_PUB:
            opt.pub_text = optarg;
            break;
        case OPT_SETTLE:
            opt.settle = arg_num("--settle", optarg, 0, 3600);
            break;
        case OPT_DRAIN:
            opt.drain = arg_num("--drain", optarg, 0, 3600);
            break;
        case OPT_WINDOW:
            opt.window = (uint64_t) arg_num("--window", optarg, 1, 1e9);
            break;
        case OPT_MAX_LOSS:
            opt.max_loss = arg_num("--max-loss", optarg, 0, 100);
            break;
        case OPT_HEADER:
            if (strchr(optarg, ':') == NULL || strpbrk(optarg, "\r\n")) {
                fatal("--header \"%s\": expected NAME: VALUE", optarg);
            }
            add_header(optarg, &hlen);
            break;
        case OPT_DEFLATE:
            /* Offered like a browser; the client inflates the answers. */
            add_header("Sec-WebSocket-Extensions: permessage-deflate; "
                       "client_max_window_bits", &hlen);
            break;
        case OPT_BINARY:
            opt.binary = true;
            break;
        case OPT_JSON:
            opt.json = true;
            break;
        default:
            fprintf(stderr, "try 'wshub-bench -h'\n");
            exit(2);
        }
    }
    if (optind >= argc) {
        fatal("no URL given (try -h)");
    }

    opt.nurls = (size_t) (argc - optind);
    opt.urls = calloc(opt.nurls, sizeof(wsh_url_t));
    opt.url_text = argv + optind;
    if (opt.urls == NULL) {
        fatal("out of memory");
    }
    for (i = 0; i < opt.nurls; i++) {
        if (wsh_url_parse(opt.url_text[i], &opt.urls[i], err, sizeof(err))
            != WSH_OK)
        {
            fatal("%s", err);
        }
        if (opt.urls[i].tls && opt.ssl_ctx == NULL) {
            opt.ssl_ctx = wsh_client_ssl_ctx(opt.insecure);
            if (opt.ssl_ctx == NULL) {
                fatal("cannot make a TLS context");
            }
        }
    }

    if (opt.messages > 0 && !opt.duration_set) {
        opt.duration = 0;       /* until the messages are done */
    }
    if (opt.mode == MODE_CONNECT) {
        opt.connect_rate = opt.rate > 0 ? opt.rate : opt.connect_rate;
    }
    if (opt.mode == MODE_FANOUT) {
        if (!conns_set) {
            opt.conns = 100;
        }
        if (!sub_set) {
            opt.sub_text = "{\"type\":\"join_room\",\"room\":\"{room}\"}";
        }
        if (!ack_set) {
            opt.sub_ack = sub_set ? NULL : "room_joined";
        }
        if (opt.pub_text == NULL) {
            opt.pub_text = "{\"type\":\"room_message\",\"room\":\"{room}\","
                           "\"seq\":{seq},\"ts\":{ts},\"data\":\"{payload}\"}";
        }
        if (tmpl_compile(&opt.sub, opt.sub_text, err, sizeof(err))
            != WSH_OK)
        {
            fatal("--subscribe-template: %s", err);
        }
        if (opt.size < BENCH_MARK_MIN) {
            opt.size = BENCH_MARK_MIN;  /* room for the marker */
        }
    }
    if (opt.pub_text != NULL) {
        if (tmpl_compile(&opt.pub, opt.pub_text, err, sizeof(err))
            != WSH_OK)
        {
            fatal("--publish-template: %s", err);
        }
        if (opt.mode == MODE_FANOUT && !opt.pub.payload) {
            fatal("--publish-template must contain {payload}: subscribers "
                  "find the sequence number and time stamp in it");
        }
    }
}

/* Build the connections and give them to the threads: connection i goes
 * to thread i mod j and URL i mod URLs (publishers counted on their
 * own), so every thread and every URL gets an even share. */
static void
setup(void)
{
    size_t i, k, per[256] = { 0 }, sub = 0, pub = 0, ntot;
    bench_thread_t *t;
    bench_conn_t *c;
    uint64_t budget = opt.messages ? opt.messages : UINT64_MAX, share;
    size_t nworkers;

    ntot = opt.conns + (opt.mode == MODE_FANOUT ? opt.pubs : 0);
    total_conns = ntot;
    threads = calloc((size_t) opt.threads, sizeof(bench_thread_t));
    if (threads == NULL) {
        fatal("out of memory");
    }
    for (i = 0; i < ntot; i++) {
        per[i % (size_t) opt.threads]++;
    }
    for (k = 0; k < (size_t) opt.threads; k++) {
        t = &threads[k];
        t->id = (int) k;
        t->conns = calloc(per[k] ? per[k] : 1, sizeof(bench_conn_t));
        t->pubs = calloc(per[k] ? per[k] : 1, sizeof(bench_conn_t *));
        t->msubs = calloc(per[k] ? per[k] : 1, sizeof(bench_conn_t *));
        t->low = calloc(opt.pubs, sizeof(bench_ctr_t));
        t->msg_cap = 256 + opt.size + opt.pub.max_len + opt.sub.max_len;
        t->msg = malloc(t->msg_cap);
        if (t->conns == NULL || t->pubs == NULL || t->msubs == NULL
            || t->low == NULL || t->msg == NULL)
        {
            fatal("out of memory");
        }
    }

    /* Budgets: -n split evenly over whoever sends. */
    nworkers = opt.mode == MODE_FANOUT ? opt.pubs : opt.conns;
    for (i = 0; i < ntot; i++) {
        t = &threads[i % (size_t) opt.threads];
        c = &t->conns[t->nconns++];
        c->t = t;
        c->idx = (uint32_t) i;
        if (opt.mode == MODE_FANOUT && i >= opt.conns) {
            c->role = ROLE_PUB;
            c->pub = (uint32_t) pub;
            c->url = (uint16_t) (pub % opt.nurls);
            t->pubs[t->npubs++] = c;
            k = pub++;
        } else {
            c->role = opt.mode == MODE_ECHO ? ROLE_ECHO
                      : opt.mode == MODE_FANOUT ? ROLE_SUB : ROLE_CONN;
            c->url = (uint16_t) (sub % opt.nurls);
            k = sub++;
        }
        share = budget == UINT64_MAX ? UINT64_MAX
                : budget / nworkers + (k < budget % nworkers ? 1 : 0);
        c->budget = share;
        if (c->role == ROLE_SUB) {
            c->next_seq = calloc(opt.pubs, sizeof(uint32_t));
            if (c->next_seq == NULL) {
                fatal("out of memory");
            }
        }
    }
}

/* Raise the open files limit to the hard limit, as wshubd does. */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < total_conns + 64) {
        fprintf(stderr, "wshub-bench: warning: open files limit %llu is "
                "below %zu connections\n", (unsigned long long) rl.rlim_cur,
                total_conns);
    }
}

static void
set_phase(int ph)
{
    atomic_store(&g_phase, ph);
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

typedef struct {
    uint64_t            t_start, t_run, t_run_end, t_end;
    struct rusage       ru_start, ru_run, ru_end;
    bool                join_timeout;
    bench_totals_t      run0;       /* totals when the run started */
} bench_times_t;

/* Drive the phases; return when every thread has exited. */
static void
control(bench_times_t *tm)
{
    bench_totals_t s, prev;
    uint64_t now, t_last = 0, t_phase, expected;
    double el;
    int ph = PH_CONNECT;
    bool settled = false;

    memset(&prev, 0, sizeof(prev));
    getrusage(RUSAGE_SELF, &tm->ru_start);
    tm->t_start = now_ns();
    atomic_store(&g_t0, tm->t_start);
    t_phase = tm->t_start;
    t_last = tm->t_start;

    for (;;) {
        sleep_ms(50);
        now = now_ns();
        totals(&s);
        el = (double) (now - tm->t_start) / 1e9;

        if (now - t_last >= 1000000000u) {
            progress(el, &s, &prev, (double) (now - t_last) / 1e9);
            prev = s;
            t_last = now;
        }
        if (g_stop && ph < PH_CLOSE) {
            if (ph == PH_RUN || ph == PH_DRAIN) {
                tm->t_run_end = now;
                getrusage(RUSAGE_SELF, &tm->ru_end);
            }
            ph = PH_CLOSE;
            set_phase(ph);
            t_phase = now;
            g_stop = 0;
            continue;
        }

        switch (ph) {
        case PH_CONNECT:
            /* Every connection opened or failed, and in fanout every
             * subscription acknowledged (or settled). */
            if (s.opened + s.failed < total_conns) {
                break;
            }
            if (opt.mode == MODE_FANOUT) {
                if (opt.sub_ack != NULL && *opt.sub_ack != '\0') {
                    if (s.ready < s.opened - s.dropped
                        && now - t_phase < BENCH_JOIN_SEC * 1000000000ull)
                    {
                        break;
                    }
                    tm->join_timeout = s.ready < s.opened - s.dropped;
                } else if (!settled) {
                    settled = true;
                    t_phase = now;
                    break;
                } else if ((double) (now - t_phase) / 1e9 < opt.settle) {
                    break;
                }
            }
            if (s.opened == s.dropped) {
                ph = PH_CLOSE;          /* nothing to measure */
                set_phase(ph);
                t_phase = now;
                break;
            }
            tm->t_run = now;
            tm->run0 = s;
            getrusage(RUSAGE_SELF, &tm->ru_run);
            atomic_store(&g_t0, now);
            ph = PH_RUN;
            set_phase(ph);
            t_phase = now;
            break;

        case PH_RUN:
            el = (double) (now - t_phase) / 1e9;
            if (opt.mode == MODE_CONNECT) {
                if (el < opt.hold) {
                    break;
                }
            } else if (opt.duration > 0 && el >= opt.duration) {
                /* time is up */
            } else if (s.run_seen == (uint64_t) opt.threads
                       && s.active == 0)
            {
                /* Every sender is done (-n) or gone: the run ended with
                 * the last reply, not at this poll up to 50 ms later. */
                if (opt.mode == MODE_ECHO && s.last_recv > tm->t_run) {
                    now = s.last_recv;
                }
            } else {
                break;
            }
            tm->t_run_end = now;
            getrusage(RUSAGE_SELF, &tm->ru_end);
            ph = opt.mode == MODE_FANOUT ? PH_DRAIN : PH_CLOSE;
            set_phase(ph);
            t_phase = now;
            break;

        case PH_DRAIN:
            expected = (s.sent - tm->run0.sent) * s.subs;
            if (s.received - tm->run0.received < expected
                && (double) (now - t_phase) / 1e9 < opt.drain)
            {
                break;
            }
            ph = PH_CLOSE;
            set_phase(ph);
            t_phase = now;
            break;

        case PH_CLOSE:
            if (s.exited == (uint64_t) opt.threads) {
                break;
            }
            if (now - t_phase > BENCH_CLOSE_SEC * 1000000000ull) {
                ph = PH_EXIT;
                set_phase(ph);
            }
            break;

        default:
            break;
        }
        if (ph >= PH_CLOSE && s.exited == (uint64_t) opt.threads) {
            tm->t_end = now;
            if (tm->t_run_end == 0) {
                getrusage(RUSAGE_SELF, &tm->ru_end);
            }
            return;
        }

    }
}

/* Add a reason the run failed to ERRORS (a JSON array of strings). */
static void
run_error(json_t *errors, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
run_error(json_t *errors, const char *fmt, ...)
{
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(errors, json_string(buf));
}

/* Print the results (human or --json); returns the exit status. */
static int
report(const bench_times_t *tm)
{
    bench_totals_t s;
    bench_hsum_t *lat, *hs;
    json_t *root, *errors, *causes, *conns, *cpu, *urls, *v;
    bench_cause_t all[BENCH_CAUSES * 8];
    size_t nall = 0, i, k, j;
    double run_s = 0, cpu_user, cpu_sys, cpu_wall, loss = 0, rate = 0;
    double deliver_s;
    uint64_t expected = 0, published, received;
    const struct rusage *r0, *r1;
    char b[4][32];
    const char *name;
    int rc;

    totals(&s);
    lat = calloc(1, sizeof(*lat));
    hs = calloc(1, sizeof(*hs));
    root = json_object();
    errors = json_array();
    causes = json_object();
    if (lat == NULL || hs == NULL || root == NULL || errors == NULL
        || causes == NULL)
    {
        fatal("out of memory");
    }
    merge_hist(lat, false);
    merge_hist(hs, true);

    for (i = 0; i < (size_t) opt.threads; i++) {
        for (k = 0; k < threads[i].ncauses; k++) {
            for (j = 0; j < nall; j++) {
                if (strcmp(all[j].cause, threads[i].causes[k].cause) == 0) {
                    break;
                }
            }
            if (j == nall) {
                if (nall == wsh_nelems(all)) {
                    continue;
                }
                all[nall++] = threads[i].causes[k];
            } else {
                all[j].n += threads[i].causes[k].n;
            }
        }
    }
    for (j = 0; j < nall; j++) {
        json_object_set_new(causes, all[j].cause, json_integer(
                                (json_int_t) all[j].n));
    }

    if (tm->t_run != 0 && tm->t_run_end > tm->t_run) {
        run_s = (double) (tm->t_run_end - tm->t_run) / 1e9;
    }
    /* The generator's CPU over the measured part: the run, or for
     * connect the connecting. */
    if (opt.mode == MODE_CONNECT) {
        r0 = &tm->ru_start;
        r1 = tm->t_run ? &tm->ru_run : &tm->ru_end;
        cpu_wall = (double) ((tm->t_run ? tm->t_run : tm->t_end)
                             - tm->t_start) / 1e9;
    } else {
        r0 = &tm->ru_run;
        r1 = &tm->ru_end;
        cpu_wall = run_s;
    }
    if (tm->t_run == 0 && opt.mode != MODE_CONNECT) {
        cpu_user = cpu_sys = 0;
    } else {
        cpu_user = tv_sec(r1->ru_utime) - tv_sec(r0->ru_utime);
        cpu_sys = tv_sec(r1->ru_stime) - tv_sec(r0->ru_stime);
    }

    if (s.failed > 0) {
        run_error(errors, "%llu connections failed",
                  (unsigned long long) s.failed);
    }
    if (s.dropped > 0) {
        run_error(errors, "%llu connections dropped",
                  (unsigned long long) s.dropped);
    }
    if (tm->join_timeout) {
        run_error(errors, "subscriptions not acknowledged within %d s",
                  BENCH_JOIN_SEC);
    }

    published = s.sent;
    received = s.received;
    switch (opt.mode) {
    case MODE_ECHO:
        rate = run_s > 0 ? (double) received / run_s : 0;
        if (received == 0) {
            run_error(errors, "no round trip completed");
        }
        break;
    case MODE_FANOUT:
        expected = published * s.subs;
        if (expected > 0) {
            loss = (double) (expected - (received < expected ? received
                                                             : expected))
                   * 100.0 / (double) expected;
        }
        rate = run_s > 0 ? (double) published / run_s : 0;
        if (published == 0) {
            run_error(errors, "nothing published");
        }
        if (loss > opt.max_loss) {
            run_error(errors, "loss %.3f%% over --max-loss %g%%", loss,
                      opt.max_loss);
        }
        break;
    default:
        if (s.opened == 0) {
            run_error(errors, "no connection opened");
        }
    }
    rc = json_array_size(errors) == 0 ? 0 : 1;

    if (opt.json) {
        urls = json_array();
        for (i = 0; i < opt.nurls; i++) {
            json_array_append_new(urls, json_string(opt.url_text[i]));
        }
        conns = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o}",
            "target", (json_int_t) total_conns,
            "opened", (json_int_t) s.opened,
            "failed", (json_int_t) s.failed,
            "dropped", (json_int_t) s.dropped,
            "failures", causes,
            "handshake_ms", hist_json(hs, 1e6));
        cpu = json_pack("{s:f, s:f, s:f, s:i}",
            "user_s", cpu_user, "sys_s", cpu_sys,
            "percent", cpu_wall > 0 ? (cpu_user + cpu_sys) * 100 / cpu_wall
                                    : 0.0,
            "threads", opt.threads);
        json_object_set_new(root, "scenario", json_string(opt.mode_name));
        json_object_set_new(root, "urls", urls);
        json_object_set_new(root, "threads", json_integer(opt.threads));
        json_object_set_new(root, "size", json_integer(
                                (json_int_t) opt.size));
        json_object_set_new(root, "connections", conns);
        json_object_set_new(root, "run_s", json_real(run_s));
        if (opt.mode == MODE_ECHO) {
            json_object_set_new(root, "msgs", json_integer(
                                    (json_int_t) received));
            json_object_set_new(root, "msgs_per_s", json_real(rate));
            json_object_set_new(root, "rtt_us", hist_json(lat, 1e3));
        } else if (opt.mode == MODE_FANOUT) {
            deliver_s = s.last_recv > tm->t_run
                        ? (double) (s.last_recv - tm->t_run) / 1e9 : 0;
            v = json_pack("{s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:f, s:f, "
                          "s:I}",
                "room", opt.room,
                "subscribers", (json_int_t) s.subs,
                "publishers", (json_int_t) opt.pubs,
                "target_rate", opt.rate,
                "publish_rate", rate,
                "published", (json_int_t) published,
                "expected", (json_int_t) expected,
                "delivered_per_s", deliver_s > 0 ? (double) received
                                                   / deliver_s : 0.0,
                "loss_percent", loss,
                "reordered", (json_int_t) s.reordered);
            json_object_set_new(v, "delivered", json_integer(
                                    (json_int_t) received));
            json_object_update(root, v);
            json_decref(v);
            json_object_set_new(root, "latency_us", hist_json(lat, 1e3));
        } else {
            json_object_set_new(root, "handshakes_per_s", json_real(
                s.last_open > tm->t_start && s.opened
                ? (double) s.opened
                  / ((double) (s.last_open - tm->t_start) / 1e9)
                : 0.0));
            json_object_set_new(root, "hold_s", json_real(opt.hold));
        }
        json_object_set_new(root, "cpu", cpu);
        json_object_set_new(root, "ok", json_boolean(rc == 0));
        json_object_set_new(root, "errors", errors);
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(root);
        free(lat);
        free(hs);
        return rc;
    }

    printf("wshub-bench %s: %zu %s to %s%s, %zu-byte messages, %d thread%s\n",
           opt.mode_name, opt.conns,
           opt.mode == MODE_FANOUT ? "subscribers" : "connections",
           opt.url_text[0], opt.nurls > 1 ? " (and more URLs)" : "",
           opt.size, opt.threads, opt.threads > 1 ? "s" : "");
    printf("  connections  %llu opened, %llu failed, %llu dropped "
           "(of %zu)\n", (unsigned long long) s.opened,
           (unsigned long long) s.failed, (unsigned long long) s.dropped,
           total_conns);
    for (j = 0; j < nall; j++) {
        printf("    %8llu  %s\n", (unsigned long long) all[j].n,
               all[j].cause);
    }
    print_hist("handshake", hs);

    switch (opt.mode) {
    case MODE_ECHO:
        printf("  run          %.2f s\n", run_s);
        printf("  round trips  %llu, %.0f msg/s\n",
               (unsigned long long) received, rate);
        print_hist("rtt", lat);
        break;
    case MODE_FANOUT:
        deliver_s = s.last_recv > tm->t_run
                    ? (double) (s.last_recv - tm->t_run) / 1e9 : 0;
        printf("  run          %.2f s, %llu subscribers, %zu publisher%s in "
               "room %s\n", run_s, (unsigned long long) s.subs, opt.pubs,
               opt.pubs > 1 ? "s" : "", opt.room);
        if (opt.rate > 0) {
            snprintf(b[0], sizeof(b[0]), "%g/s", opt.rate);
        } else {
            snprintf(b[0], sizeof(b[0]), "max, window %llu",
                     (unsigned long long) opt.window);
        }
        printf("  published    %llu, %.0f msg/s (target %s)\n",
               (unsigned long long) published, rate, b[0]);
        printf("  delivered    %llu of %llu expected, %.0f msg/s, "
               "loss %.3f%%, out of order %llu\n",
               (unsigned long long) received, (unsigned long long) expected,
               deliver_s > 0 ? (double) received / deliver_s : 0.0, loss,
               (unsigned long long) s.reordered);
        print_hist("latency", lat);
        break;
    default:
        printf("  handshakes   %.0f/s",
               s.last_open > tm->t_start && s.opened
               ? (double) s.opened
                 / ((double) (s.last_open - tm->t_start) / 1e9)
               : 0.0);
        printf(", held %g s\n", opt.hold);
    }
    name = opt.mode == MODE_CONNECT ? "connecting" : "the run";
    printf("  cpu          user %.2f s, sys %.2f s over %s: %.0f%% of one "
           "core (%d thread%s)\n", cpu_user, cpu_sys, name,
           cpu_wall > 0 ? (cpu_user + cpu_sys) * 100 / cpu_wall : 0.0,
           opt.threads, opt.threads > 1 ? "s" : "");
    if (rc == 0) {
        printf("  result       ok\n");
    } else {
        printf("  result       FAILED:");
        for (i = 0; i < json_array_size(errors); i++) {
            printf("%s %s", i ? ";" : "",
                   json_string_value(json_array_get(errors, i)));
        }
        printf("\n");
    }
    json_decref(root);
    json_decref(errors);
    json_decref(causes);
    free(lat);
    free(hs);
    return rc;
}

int
main(int argc, char **argv)
{
    bench_times_t tm;
    struct sigaction sa;
    sigset_t set, old;
    int i, rc;

    parse_args(argc, argv);
    setup();
    raise_nofile();

    /* A peer that resets while we write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Signals go to the main thread only. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    for (i = 0; i < opt.threads; i++) {
        if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i])
            != 0)
        {
            fatal("pthread_create() failed: %s", strerror(errno));
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    memset(&tm, 0, sizeof(tm));
    control(&tm);
    for (i = 0; i < opt.threads; i++) {
        pthread_join(threads[i].tid, NULL);
    }
    rc = report(&tm);

    for (i = 0; i < opt.threads; i++) {
        for (size_t k = 0; k < threads[i].nconns; k++) {
            free(threads[i].conns[k].next_seq);
        }
        free(threads[i].conns);
        free(threads[i].pubs);
        free(threads[i].msubs);
        free((void *) threads[i].low);
        free(threads[i].msg);
    }
    free(threads);
    free(opt.urls);
    free(opt.headers);
    free(opt.sub.seg);
    free(opt.pub.seg);
    if (opt.ssl_ctx != NULL) {
        SSL_CTX_free(opt.ssl_ctx);
    }
    return rc;
}
