/* bench.h -- what the files of wshub-bench share.
 *
 * wshub-bench.c reads the options, builds the connections and drives the
 * run through its phases; bench_thread.c is the load itself (one event
 * loop per thread, the connections' callbacks, pacing, publishing);
 * bench_hist.c the latency histograms; bench_tmpl.c the message
 * templates; bench_report.c the totals, the progress line and the final
 * report; bench_proc.c the processes of --processes and the shared
 * memory they report through. The names here are the program's own
 * (bench_), none is exported from libwshub.
 */
#ifndef WSH_BENCH_H
#define WSH_BENCH_H

#include "tools/client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <sys/resource.h>

#include <jansson.h>

#define BENCH_TICK_USEC     1000        /* thread tick: pacing, phases */
#define BENCH_INFLIGHT      200         /* handshakes in progress/thread */
#define BENCH_CAUSES        16          /* distinct failure causes kept */
#define BENCH_MARK          "wsb:"      /* payload marker of fanout */
#define BENCH_MARK_MIN      64          /* marker + numbers, at most */
#define BENCH_BURST         1000        /* messages per publisher tick */
#define BENCH_PENDING_MAX   (4u << 20)  /* output a publisher may queue */
#define BENCH_JOIN_SEC      30          /* subscriptions must be acked */
#define BENCH_PROCS_MAX     64          /* --processes */
#define BENCH_CLOSE_SEC     8           /* closing handshakes, then quit */
#define BENCH_EXIT_SEC      3           /* then children are killed */

enum { MODE_ECHO = 0, MODE_FANOUT, MODE_CONNECT };

enum {
    PH_CONNECT = 0,     /* open the connections (and subscribe) */
    PH_RUN,             /* measure (connect mode: hold) */
    PH_DRAIN,           /* fanout: wait for late deliveries */
    PH_CLOSE,           /* closing handshakes */
    PH_EXIT             /* give up on the rest */
};

/* A member (--members) joins the fanout room like a subscriber but only
 * counts the messages it gets: no latency, no order, no array per
 * publisher, so that rooms of 100,000 cost little. */
enum { ROLE_ECHO = 0, ROLE_SUB, ROLE_PUB, ROLE_CONN, ROLE_MEMBER };

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
    uint64_t            count;      /* echo: round trips; pub: sent;
                                       member: deliveries */
    uint64_t            budget;     /* messages to send */
    uint64_t            t_run;      /* pub: pacing origin (ns) */
    uint32_t           *next_seq;   /* sub: expected seq per publisher */
    bool                measured;   /* sub, member: ready when the run
                                       started */
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
    bench_ctr_t         members;    /* members measured */
    bench_ctr_t         mreceived;  /* members' deliveries */
    bench_ctr_t         mshort;     /* measured members that missed
                                       messages, counted at PH_CLOSE */
    bench_ctr_t         last_ready; /* ns */
    bench_ctr_t         last_open;  /* ns */
    bench_ctr_t         last_recv;  /* ns */
    bench_ctr_t         exited;
    bench_hist_t        lat;        /* RTT or delivery latency */
    bench_hist_t        hs;         /* handshake time */
    bench_ctr_t        *low;        /* rate 0: per publisher, the least
                                       next sequence number of subs */

    /* Read after the thread has exited. */
    bench_cause_t       causes[BENCH_CAUSES];
    size_t              ncauses;
};

typedef struct {
    int                 mode;
    const char         *mode_name;
    wsh_url_t          *urls;
    char              **url_text;
    size_t              nurls;
    struct sockaddr_storage *sources;   /* --source, connection i's is
                                         * number i mod nsources */
    size_t              nsources;
    size_t              conns;
    size_t              pubs;
    size_t              size;
    double              duration;
    bool                duration_set;
    uint64_t            messages;
    double              rate;
    double              connect_rate;
    double              hold;
    int                 threads;    /* per process */
    int                 procs;      /* --processes */
    size_t              members;
    const char         *room;
    const char         *sub_text;
    const char         *sub_ack;
    const char         *pub_text;
    bench_tmpl_t        sub;
    bench_tmpl_t        pub;
    double              settle;
    double              join_timeout;
    double              drain;
    uint64_t            window;
    double              max_loss;
    bool                json;
    bool                quiet;
    bool                insecure;
    bool                binary;
    char               *headers;
    SSL_CTX            *ssl_ctx;
} bench_opt_t;

/* The phase and the time origin, set by the main thread, read by every
 * load thread. Like bench_threads and the publishers' low marks it lives
 * in shared memory, so that with --processes the parent drives the
 * threads of every child and reads their counters as it does its own. */
typedef struct {
    _Atomic int         phase;
    _Atomic uint64_t    t0;         /* pacing origin, then run start (ns) */
    _Atomic uint64_t    published;  /* set before PH_CLOSE: what every
                                       member should have received */
} bench_run_t;

extern bench_opt_t          bench_opt;
extern bench_run_t         *bench_run;
extern bench_thread_t      *bench_threads;  /* of every process */
extern size_t               bench_nthreads; /* threads x procs */
extern size_t               bench_total_conns;
extern const char *const    bench_phase_names[];

static inline uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static inline int
bench_phase(void)
{
    return atomic_load(&bench_run->phase);
}

typedef struct {
    uint64_t            started, opened, failed, dropped, ready;
    uint64_t            sent, received, reordered, active, run_seen, subs;
    uint64_t            members, mreceived, mshort;
    uint64_t            last_open, last_recv, last_ready, exited;
} bench_totals_t;

typedef struct {
    uint64_t            t_start, t_run, t_run_end, t_end;
    struct rusage       ru_start, ru_run, ru_end;
    bool                join_timeout;
    bool                proc_failed;    /* a child process failed */
    uint64_t            t_joined;   /* every connection joined, or 0 */
    bench_totals_t      run0;       /* totals when the run started */
} bench_times_t;

void bench_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* bench_hist.c */
void bench_hist_record(bench_hist_t *h, uint64_t v);
void bench_hist_merge(bench_hsum_t *s, bench_hist_t *h);
uint64_t bench_hsum_percentile(const bench_hsum_t *s, double p);

/* bench_tmpl.c */
int bench_tmpl_compile(bench_tmpl_t *t, const char *text, char *err,
    size_t errlen);
size_t bench_payload_write(u_char *p, bool marked, uint32_t pub,
    uint64_t seq, uint64_t ts);
size_t bench_tmpl_expand(const bench_tmpl_t *t, u_char *out, bool marked,
    uint32_t pub, uint64_t seq, uint64_t ts);

/* bench_thread.c */
void *bench_thread_main(void *arg);

/* bench_proc.c */
void *bench_shm_alloc(size_t size);
void bench_proc_start(void);
int bench_proc_wait(int ms);
void bench_proc_kill(void);
void bench_proc_reap(void);
void bench_proc_errors(json_t *errors);
bool bench_proc_cpu(bool connect, double *user, double *sys);

/* bench_report.c */
void bench_totals(bench_totals_t *s);
void bench_merge_hist(bench_hsum_t *s, bool handshake);
void bench_progress(double el, const bench_totals_t *s,
    const bench_totals_t *prev, double dt);
int bench_report(const bench_times_t *tm);

#endif /* WSH_BENCH_H */
