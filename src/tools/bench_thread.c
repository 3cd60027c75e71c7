/* bench_thread.c -- wshub-bench's load threads.
 *
 * Each thread owns a share of the connections and runs them on its own
 * event_base with a 1 ms tick: it opens them (paced by --connect-rate,
 * at most BENCH_INFLIGHT handshakes at once), subscribes them, and in
 * the run sends echo requests or publishes, counting replies and
 * deliveries. It follows the phase the main thread sets in bench_run
 * and publishes its counters in its bench_thread_t; nothing is
 * allocated per message.
 */
#include "tools/bench.h"
#include "ws/deflate.h"
#include "ws/frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

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
    ctr_set(&c->t->last_ready, now_ns());
}

/* One echo request: the payload alone, or the publish template around
 * it (e.g. the hub's {"type":"echo","data":"{payload}"}). */
static void
echo_send(bench_conn_t *c)
{
    bench_thread_t *t = c->t;
    size_t len;

    if (bench_opt.pub_text != NULL) {
        len = bench_tmpl_expand(&bench_opt.pub, t->msg, false, 0, c->count,
                                now_ns());
    } else {
        len = bench_payload_write(t->msg, false, 0, 0, 0);
    }
    c->t_sent = now_ns();
    if (wsh_client_send(c->cl, bench_opt.binary ? WSH_WS_OP_BINARY
                                                : WSH_WS_OP_TEXT,
                        t->msg, len)
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
    bench_hist_record(&t->hs, now - c->t_start);

    if (bench_opt.mode != MODE_FANOUT) {
        conn_ready(c);
        return;
    }
    if (bench_opt.sub_text != NULL && *bench_opt.sub_text != '\0') {
        len = bench_tmpl_expand(&bench_opt.sub, t->msg, false, 0, 0, now);
        wsh_client_send(cl, WSH_WS_OP_TEXT, t->msg, len);
    }
    if (bench_opt.sub_ack == NULL || *bench_opt.sub_ack == '\0') {
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

/* Find the marker of a published message in DATA and parse what follows
 * it into V (publisher, sequence number, time). Returns WSH_OK, or
 * WSH_DECLINED for anything else the server sends (presence, other hub
 * traffic). */
static int
mark_find(bench_thread_t *t, const u_char *data, size_t len, uint64_t v[3])
{
    const u_char *m;

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
            return WSH_DECLINED;
        }
        t->mark_at = (size_t) (m - data);
    }
    m += sizeof(BENCH_MARK) - 1;
    if (mark_parse(m, data + len, v) != WSH_OK || v[0] >= bench_opt.pubs) {
        return WSH_DECLINED;
    }
    return WSH_OK;
}

/* A member counts a delivery, no more. */
static void
member_message(bench_conn_t *c, const u_char *data, size_t len)
{
    uint64_t v[3];

    if (c->measured && mark_find(c->t, data, len, v) == WSH_OK) {
        c->count++;
        ctr_add(&c->t->mreceived, 1);
    }
}

static void
sub_message(bench_conn_t *c, const u_char *data, size_t len)
{
    bench_thread_t *t = c->t;
    uint64_t v[3], now;

    if (!c->measured || mark_find(t, data, len, v) != WSH_OK) {
        return;
    }
    now = t->read_ns;
    bench_hist_record(&t->lat, now > v[2] ? now - v[2] : 0);
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
        if (bench_opt.sub_ack != NULL
            && memmem(data, len, bench_opt.sub_ack,
                      strlen(bench_opt.sub_ack)) != NULL)
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
        bench_hist_record(&t->lat, now - c->t_sent);
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
    case ROLE_MEMBER:
        member_message(c, data, len);
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
    c->cl = wsh_client_connect(t->base, &bench_opt.urls[c->url],
                               bench_opt.ssl_ctx, bench_opt.headers,
                               bench_opt.nsources > 0
                               ? &bench_opt.sources[c->idx
                                                    % bench_opt.nsources]
                               : NULL,
                               &bench_handlers, c);
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
    double rate = bench_opt.connect_rate / (double) bench_nthreads, el;

    if (rate > 0) {
        el = (double) (now - atomic_load(&bench_run->t0)) / 1e9;
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
    t->low_tick = (unsigned) (t->nmsubs * bench_opt.pubs / 50000);
    for (p = 0; p < bench_opt.pubs; p++) {
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
    double rate = bench_opt.rate / (double) bench_opt.pubs;
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
            for (k = 0; k < bench_nthreads; k++) {
                v = ctr_get(&bench_threads[k].low[c->pub]);
                low = v < low ? v : low;
            }
            due = low == UINT64_MAX ? c->budget : low + bench_opt.window;
        }
        if (due > c->budget) {
            due = c->budget;
        }
        for (burst = 0; c->count < due && burst < BENCH_BURST; burst++) {
            if (wsh_client_pending(c->cl) > BENCH_PENDING_MAX) {
                break;
            }
            len = bench_tmpl_expand(&bench_opt.pub, t->msg, true, c->pub,
                                    c->count, now_ns());
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

    for (i = 0; i < bench_nthreads; i++) {
        if (ctr_get(&bench_threads[i].run_seen) == 0) {
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
    uint64_t active = 0, subs = 0, members = 0, published;

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
            } else if (c->role == ROLE_MEMBER) {
                c->measured = true;
                members++;
            }
        }
        if (bench_opt.mode == MODE_FANOUT) {
            thread_low(t);
        }
        ctr_set(&t->subs, subs);
        ctr_set(&t->members, members);
        ctr_set(&t->active, active);
        ctr_set(&t->run_seen, 1);
        break;

    case PH_CLOSE:
        /* Whether each member got every message, before they go. */
        published = atomic_load(&bench_run->published);
        for (i = 0; i < t->nconns; i++) {
            c = &t->conns[i];
            if (c->role == ROLE_MEMBER && c->measured
                && c->count < published)
            {
                members++;
            }
        }
        ctr_set(&t->mshort, members);
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
        if (bench_opt.mode == MODE_CONNECT || ph == PH_CONNECT) {
            thread_connect(t, now);
        }
        if (ph == PH_RUN && bench_opt.mode == MODE_FANOUT) {
            if (!t->go) {
                thread_go(t, now);
            }
            if (t->go) {
                if (bench_opt.rate == 0) {
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

void *
bench_thread_main(void *arg)
{
    bench_thread_t *t = arg;
    struct timeval tv = { 0, BENCH_TICK_USEC };

    t->base = event_base_new();
    t->tick = t->base ? event_new(t->base, -1, EV_PERSIST, thread_tick, t)
                      : NULL;
    if (t->tick == NULL) {
        bench_fatal("thread %d: event_base_new() failed", t->id);
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
