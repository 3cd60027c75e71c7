/* bench_report.c -- wshub-bench's totals, progress line and report.
 *
 * The main thread sums the load threads' counters and merges their
 * histograms at any time (they are written with relaxed atomics by one
 * thread each): once a second for the progress line on stderr, and at
 * the end for the summary on stdout or the --json object, whose figures
 * decide the exit status.
 */
#include "tools/bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const bench_phase_names[] = {
    "connect", "run", "drain", "close", "exit"
};

void
bench_totals(bench_totals_t *s)
{
    bench_thread_t *t;
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < bench_nthreads; i++) {
        t = &bench_threads[i];
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
        s->members += ctr_get(&t->members);
        s->mreceived += ctr_get(&t->mreceived);
        s->mshort += ctr_get(&t->mshort);
        s->exited += ctr_get(&t->exited);
        if (ctr_get(&t->last_open) > s->last_open) {
            s->last_open = ctr_get(&t->last_open);
        }
        if (ctr_get(&t->last_recv) > s->last_recv) {
            s->last_recv = ctr_get(&t->last_recv);
        }
        if (ctr_get(&t->last_ready) > s->last_ready) {
            s->last_ready = ctr_get(&t->last_ready);
        }
    }
}

void
bench_merge_hist(bench_hsum_t *s, bool handshake)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < bench_nthreads; i++) {
        bench_hist_merge(s, handshake ? &bench_threads[i].hs
                                      : &bench_threads[i].lat);
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

void
bench_progress(double el, const bench_totals_t *s,
    const bench_totals_t *prev, double dt)
{
    bench_hsum_t *h;
    const char *ph;
    char p99[32], memb[48] = "";
    double rs = (double) (s->sent - prev->sent) / dt;
    double rr = (double) (s->received - prev->received) / dt;

    if (bench_opt.quiet) {
        return;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return;
    }
    bench_merge_hist(h, bench_opt.mode == MODE_CONNECT);
    if (h->n == 0) {
        snprintf(p99, sizeof(p99), "-");
    } else {
        fmt_ns(p99, sizeof(p99), bench_hsum_percentile(h, 99));
    }
    free(h);
    ph = bench_phase_names[bench_phase()];
    if (bench_opt.mode == MODE_CONNECT && bench_phase() == PH_RUN) {
        ph = "hold";
    }

    switch (bench_opt.mode) {
    case MODE_ECHO:
        fprintf(stderr, "[%5.1fs] %-7s conns %llu/%zu fail %llu  "
                "%.0f msg/s  p99 %s\n", el, ph,
                (unsigned long long) (s->opened - s->dropped),
                bench_total_conns,
                (unsigned long long) (s->failed + s->dropped), rr, p99);
        break;
    case MODE_FANOUT:
        if (bench_opt.members > 0) {
            snprintf(memb, sizeof(memb), "  members %.0f/s",
                     (double) (s->mreceived - prev->mreceived) / dt);
        }
        fprintf(stderr, "[%5.1fs] %-7s conns %llu/%zu ready %llu fail %llu  "
                "pub %.0f/s  deliv %.0f/s%s  p99 %s\n", el, ph,
                (unsigned long long) (s->opened - s->dropped),
                bench_total_conns,
                (unsigned long long) s->ready,
                (unsigned long long) (s->failed + s->dropped), rs, rr, memb,
                p99);
        break;
    default:
        fprintf(stderr, "[%5.1fs] %-7s open %llu/%zu fail %llu  "
                "%.0f conn/s  handshake p99 %s\n", el, ph,
                (unsigned long long) (s->opened - s->dropped),
                bench_total_conns,
                (unsigned long long) (s->failed + s->dropped),
                (double) (s->opened - prev->opened) / dt, p99);
    }
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
        "p50", (double) bench_hsum_percentile(h, 50) / unit,
        "p90", (double) bench_hsum_percentile(h, 90) / unit,
        "p99", (double) bench_hsum_percentile(h, 99) / unit,
        "p99.9", (double) bench_hsum_percentile(h, 99.9) / unit,
        "p99.99", (double) bench_hsum_percentile(h, 99.99) / unit,
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
           name, fmt_ns(b[0], 32, bench_hsum_percentile(h, 50)),
           fmt_ns(b[1], 32, bench_hsum_percentile(h, 90)),
           fmt_ns(b[2], 32, bench_hsum_percentile(h, 99)),
           fmt_ns(b[3], 32, bench_hsum_percentile(h, 99.9)),
           fmt_ns(b[4], 32, h->max),
           fmt_ns(b[5], 32, h->sum / h->n));
}

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

/* Percentage of EXPECTED that did not arrive (GOT may exceed it). */
static double
loss_percent(uint64_t expected, uint64_t got)
{
    if (expected == 0) {
        return 0;
    }
    return (double) (expected - (got < expected ? got : expected)) * 100.0
           / (double) expected;
}

/* "2 threads", or with --processes "3 processes x 2 threads". */
static const char *
threads_text(char *buf, size_t len)
{
    const char *s = bench_opt.threads > 1 ? "s" : "";

    if (bench_opt.procs > 1) {
        snprintf(buf, len, "%d processes x %d thread%s", bench_opt.procs,
                 bench_opt.threads, s);
    } else {
        snprintf(buf, len, "%d thread%s", bench_opt.threads, s);
    }
    return buf;
}

/* Seconds from the start until the last connection had joined, or -1
 * when some never did. */
static double
joined_s(const bench_times_t *tm)
{
    if (tm->t_joined == 0 || tm->t_joined < tm->t_start) {
        return -1;
    }
    return (double) (tm->t_joined - tm->t_start) / 1e9;
}

/* The silent members' verdict: a loss over --max-loss, or at the default
 * --max-loss 0 any member that missed a message, fails the run. */
static void
members_check(const bench_totals_t *s, json_t *errors)
{
    double loss = loss_percent(s->sent * s->members, s->mreceived);

    if (bench_opt.members == 0) {
        return;
    }
    if (loss > bench_opt.max_loss) {
        run_error(errors, "members: loss %.3f%% over --max-loss %g%%", loss,
                  bench_opt.max_loss);
    } else if (s->mshort > 0 && bench_opt.max_loss == 0) {
        run_error(errors, "%llu members missed messages",
                  (unsigned long long) s->mshort);
    }
}

/* Fanout's JSON about joins and members: "joined", "joined_s" (null
 * when some connection never joined) and, with --members, "members". */
static void
members_json(json_t *root, const bench_totals_t *s, const bench_times_t *tm)
{
    uint64_t expected = s->sent * s->members;
    double j = joined_s(tm);

    json_object_set_new(root, "joined", json_integer((json_int_t) s->ready));
    json_object_set_new(root, "joined_s", j < 0 ? json_null()
                                                : json_real(j));
    if (bench_opt.members == 0) {
        return;
    }
    json_object_set_new(root, "members", json_pack(
        "{s:I, s:I, s:I, s:f, s:I}",
        "count", (json_int_t) s->members,
        "expected", (json_int_t) expected,
        "delivered", (json_int_t) s->mreceived,
        "loss_percent", loss_percent(expected, s->mreceived),
        "short", (json_int_t) s->mshort));
}

/* The same for people, printed with --members or --processes only, so
 * that the summary of other runs stays as it was. */
static void
members_print(const bench_totals_t *s, const bench_times_t *tm)
{
    uint64_t expected = s->sent * s->members;
    double j = joined_s(tm);

    if (bench_opt.members == 0 && bench_opt.procs < 2) {
        return;
    }
    if (j >= 0) {
        printf("  joined       %llu of %zu in %.2f s\n",
               (unsigned long long) s->ready, bench_total_conns, j);
    } else {
        printf("  joined       %llu of %zu, not all\n",
               (unsigned long long) s->ready, bench_total_conns);
    }
    if (bench_opt.members == 0) {
        return;
    }
    printf("  members      %llu, delivered %llu of %llu expected, "
           "loss %.3f%%, %llu missed messages\n",
           (unsigned long long) s->members,
           (unsigned long long) s->mreceived, (unsigned long long) expected,
           loss_percent(expected, s->mreceived),
           (unsigned long long) s->mshort);
}

/* Print the results (human or --json); returns the exit status. */
int
bench_report(const bench_times_t *tm)
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
    char b[4][32], nth[64], memb[48];
    const char *name;
    int rc;

    bench_totals(&s);
    lat = calloc(1, sizeof(*lat));
    hs = calloc(1, sizeof(*hs));
    root = json_object();
    errors = json_array();
    causes = json_object();
    if (lat == NULL || hs == NULL || root == NULL || errors == NULL
        || causes == NULL)
    {
        bench_fatal("out of memory");
    }
    bench_merge_hist(lat, false);
    bench_merge_hist(hs, true);

    for (i = 0; i < bench_nthreads; i++) {
        for (k = 0; k < bench_threads[i].ncauses; k++) {
            for (j = 0; j < nall; j++) {
                if (strcmp(all[j].cause, bench_threads[i].causes[k].cause)
                    == 0)
                {
                    break;
                }
            }
            if (j == nall) {
                if (nall == wsh_nelems(all)) {
                    continue;
                }
                all[nall++] = bench_threads[i].causes[k];
            } else {
                all[j].n += bench_threads[i].causes[k].n;
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
    if (bench_opt.mode == MODE_CONNECT) {
        r0 = &tm->ru_start;
        r1 = tm->t_run ? &tm->ru_run : &tm->ru_end;
        cpu_wall = (double) ((tm->t_run ? tm->t_run : tm->t_end)
                             - tm->t_start) / 1e9;
    } else {
        r0 = &tm->ru_run;
        r1 = &tm->ru_end;
        cpu_wall = run_s;
    }
    if (tm->t_run == 0 && bench_opt.mode != MODE_CONNECT) {
        cpu_user = cpu_sys = 0;
    } else if (bench_proc_cpu(bench_opt.mode == MODE_CONNECT, &cpu_user,
                              &cpu_sys))
    {
        /* the children's, summed */
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
        run_error(errors, "subscriptions not acknowledged within %g s",
                  bench_opt.join_timeout);
    }
    bench_proc_errors(errors);

    published = s.sent;
    received = s.received;
    switch (bench_opt.mode) {
    case MODE_ECHO:
        rate = run_s > 0 ? (double) received / run_s : 0;
        if (received == 0) {
            run_error(errors, "no round trip completed");
        }
        break;
    case MODE_FANOUT:
        expected = published * s.subs;
        loss = loss_percent(expected, received);
        rate = run_s > 0 ? (double) published / run_s : 0;
        if (published == 0) {
            run_error(errors, "nothing published");
        }
        if (loss > bench_opt.max_loss) {
            run_error(errors, "loss %.3f%% over --max-loss %g%%", loss,
                      bench_opt.max_loss);
        }
        members_check(&s, errors);
        break;
    default:
        if (s.opened == 0) {
            run_error(errors, "no connection opened");
        }
    }
    rc = json_array_size(errors) == 0 ? 0 : 1;

    if (bench_opt.json) {
        urls = json_array();
        for (i = 0; i < bench_opt.nurls; i++) {
            json_array_append_new(urls, json_string(bench_opt.url_text[i]));
        }
        conns = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o}",
            "target", (json_int_t) bench_total_conns,
            "opened", (json_int_t) s.opened,
            "failed", (json_int_t) s.failed,
            "dropped", (json_int_t) s.dropped,
            "failures", causes,
            "handshake_ms", hist_json(hs, 1e6));
        cpu = json_pack("{s:f, s:f, s:f, s:i}",
            "user_s", cpu_user, "sys_s", cpu_sys,
            "percent", cpu_wall > 0 ? (cpu_user + cpu_sys) * 100 / cpu_wall
                                    : 0.0,
            "threads", (int) bench_nthreads);
        json_object_set_new(root, "scenario",
                            json_string(bench_opt.mode_name));
        json_object_set_new(root, "urls", urls);
        json_object_set_new(root, "threads", json_integer(bench_opt.threads));
        json_object_set_new(root, "processes", json_integer(bench_opt.procs));
        json_object_set_new(root, "size", json_integer(
                                (json_int_t) bench_opt.size));
        json_object_set_new(root, "connections", conns);
        json_object_set_new(root, "run_s", json_real(run_s));
        if (bench_opt.mode == MODE_ECHO) {
            json_object_set_new(root, "msgs", json_integer(
                                    (json_int_t) received));
            json_object_set_new(root, "msgs_per_s", json_real(rate));
            json_object_set_new(root, "rtt_us", hist_json(lat, 1e3));
        } else if (bench_opt.mode == MODE_FANOUT) {
            deliver_s = s.last_recv > tm->t_run
                        ? (double) (s.last_recv - tm->t_run) / 1e9 : 0;
            v = json_pack("{s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:f, s:f, "
                          "s:I}",
                "room", bench_opt.room,
                "subscribers", (json_int_t) s.subs,
                "publishers", (json_int_t) bench_opt.pubs,
                "target_rate", bench_opt.rate,
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
            members_json(root, &s, tm);
        } else {
            json_object_set_new(root, "handshakes_per_s", json_real(
                s.last_open > tm->t_start && s.opened
                ? (double) s.opened
                  / ((double) (s.last_open - tm->t_start) / 1e9)
                : 0.0));
            json_object_set_new(root, "hold_s", json_real(bench_opt.hold));
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

    memb[0] = '\0';
    if (bench_opt.members > 0) {
        snprintf(memb, sizeof(memb), " and %zu members", bench_opt.members);
    }
    printf("wshub-bench %s: %zu %s%s to %s%s, %zu-byte messages, %s\n",
           bench_opt.mode_name, bench_opt.conns,
           bench_opt.mode == MODE_FANOUT ? "subscribers" : "connections",
           memb, bench_opt.url_text[0],
           bench_opt.nurls > 1 ? " (and more URLs)" : "", bench_opt.size,
           threads_text(nth, sizeof(nth)));
    printf("  connections  %llu opened, %llu failed, %llu dropped "
           "(of %zu)\n", (unsigned long long) s.opened,
           (unsigned long long) s.failed, (unsigned long long) s.dropped,
           bench_total_conns);
    for (j = 0; j < nall; j++) {
        printf("    %8llu  %s\n", (unsigned long long) all[j].n,
               all[j].cause);
    }
    print_hist("handshake", hs);

    switch (bench_opt.mode) {
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
               "room %s\n", run_s, (unsigned long long) s.subs, bench_opt.pubs,
               bench_opt.pubs > 1 ? "s" : "", bench_opt.room);
        if (bench_opt.rate > 0) {
            snprintf(b[0], sizeof(b[0]), "%g/s", bench_opt.rate);
        } else {
            snprintf(b[0], sizeof(b[0]), "max, window %llu",
                     (unsigned long long) bench_opt.window);
        }
        printf("  published    %llu, %.0f msg/s (target %s)\n",
               (unsigned long long) published, rate, b[0]);
        printf("  delivered    %llu of %llu expected, %.0f msg/s, "
               "loss %.3f%%, out of order %llu\n",
               (unsigned long long) received, (unsigned long long) expected,
               deliver_s > 0 ? (double) received / deliver_s : 0.0, loss,
               (unsigned long long) s.reordered);
        print_hist("latency", lat);
        members_print(&s, tm);
        break;
    default:
        printf("  handshakes   %.0f/s",
               s.last_open > tm->t_start && s.opened
               ? (double) s.opened
                 / ((double) (s.last_open - tm->t_start) / 1e9)
               : 0.0);
        printf(", held %g s\n", bench_opt.hold);
    }
    name = bench_opt.mode == MODE_CONNECT ? "connecting" : "the run";
    printf("  cpu          user %.2f s, sys %.2f s over %s: %.0f%% of one "
           "core (%s)\n", cpu_user, cpu_sys, name,
           cpu_wall > 0 ? (cpu_user + cpu_sys) * 100 / cpu_wall : 0.0,
           threads_text(nth, sizeof(nth)));
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
