/* wshub-bench.c -- load generator for wshub and other WebSocket servers.
 *
 * Three scenarios: echo (closed-loop round trips on C connections),
 * fanout (P publishers, C subscribers in one room, delivery latency and
 * loss) and connect (handshakes per second, failures by cause, then hold
 * the connections open). Connections are split over -j threads, each with
 * its own event_base and a 1 ms tick; the main thread only moves the run
 * through its phases, prints a progress line each second and the summary.
 * With --processes N the threads run in N child processes, so that a run
 * may hold more connections than one process may open files; the parent
 * drives and reports them as it does its own threads (bench_proc.c).
 *
 * Counters and latency histograms belong to one thread each and are
 * written with relaxed atomic loads and stores (one writer, no locked
 * instruction), so the main thread may read them at any time; the
 * histograms are fixed arrays, merged when read. Nothing is allocated per
 * message: publish frames are expanded from a template into a buffer
 * made once per thread, and the client copies them masked into the
 * bufferevent.
 *
 * This file reads the options, builds the connections and drives the
 * phases; bench.h lists the other files and what each holds.
 */
#include "tools/bench.h"

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
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <jansson.h>

bench_opt_t                 bench_opt;
bench_thread_t             *bench_threads;
size_t                      bench_nthreads;
size_t                      bench_total_conns;
bench_run_t                *bench_run;

static volatile sig_atomic_t g_stop;

/* Print "wshub-bench: " and the message on stderr, exit 2 (usage). */
void
bench_fatal(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "wshub-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void
on_signal(int sig)
{
    g_stop = 1;
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
"  -P, --processes N         processes of -j threads each, sharing the\n"
"                            connections, members and publishers; one\n"
"                            report (1; over ~19,000 connections a process\n"
"                            needs more processes)\n"
"      --members N           fanout: N more connections join the room and\n"
"                            only count deliveries (0)\n"
"      --join-timeout SEC    subscriptions must be acknowledged within it\n"
"                            after the last connection opened (30)\n"
"      --source ADDR[,ADDR...]  connect from these local addresses in turn\n"
"                            (127.0.0.2,127.0.0.3...: past ~60,000\n"
"                            connections to one host, one address is\n"
"                            short of ports)\n"
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
"  wshub-bench fanout -P 6 -c 1000 --members 99000 --connect-rate 5000 \\\n"
"      -r 10 -d 10 --source 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 \\\n"
"      ws://127.0.0.1:8080/ws ws://127.0.0.1:8081/ws\n"
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
        bench_fatal("%s: \"%s\" is not a number from %g to %g", name, s,
                    min, max);
    }
    return v;
}

/* --source: a comma-separated list of IPv4 or IPv6 literals. */
static void
bench_sources(const char *list)
{
    char *copy = strdup(list), *tok, *save = NULL;
    struct sockaddr_storage *ss;
    struct sockaddr_in6 *v6;
    struct sockaddr_in *v4;

    if (copy == NULL) {
        bench_fatal("out of memory");
    }
    for (tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save))
    {
        ss = realloc(bench_opt.sources,
                     (bench_opt.nsources + 1) * sizeof(*ss));
        if (ss == NULL) {
            bench_fatal("out of memory");
        }
        bench_opt.sources = ss;
        ss += bench_opt.nsources++;
        memset(ss, 0, sizeof(*ss));
        v4 = (struct sockaddr_in *) ss;
        v6 = (struct sockaddr_in6 *) ss;
        if (inet_pton(AF_INET, tok, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
        } else if (inet_pton(AF_INET6, tok, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
        } else {
            bench_fatal("--source: \"%s\" is not an IPv4 or IPv6 address",
                        tok);
        }
    }
    free(copy);
    if (bench_opt.nsources == 0) {
        bench_fatal("--source: no address given");
    }
}

enum {
    OPT_CONNECT_RATE = 256, OPT_ROOM, OPT_SUB, OPT_ACK, OPT_PUB, OPT_SETTLE,
    OPT_DRAIN, OPT_WINDOW, OPT_MAX_LOSS, OPT_HEADER, OPT_BINARY, OPT_JSON,
    OPT_DEFLATE, OPT_MEMBERS, OPT_JOIN_TIMEOUT, OPT_SOURCE
};

/* Append the request header H to bench_opt.headers (HLEN bytes so far). */
static void
add_header(const char *h, size_t *hlen)
{
    size_t n = strlen(h);

    bench_opt.headers = realloc(bench_opt.headers, *hlen + n + 3);
    if (bench_opt.headers == NULL) {
        bench_fatal("out of memory");
    }
    memcpy(bench_opt.headers + *hlen, h, n);
    memcpy(bench_opt.headers + *hlen + n, "\r\n", 3);
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
        { "processes", required_argument, NULL, 'P' },
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
        { "members", required_argument, NULL, OPT_MEMBERS },
        { "join-timeout", required_argument, NULL, OPT_JOIN_TIMEOUT },
        { "source", required_argument, NULL, OPT_SOURCE },
        { NULL, 0, NULL, 0 }
    };
    bool conns_set = false, sub_set = false, ack_set = false;
    char err[256];
    size_t hlen = 0;
    int ch;
    size_t i;

    bench_opt.conns = 100;
    bench_opt.pubs = 1;
    bench_opt.size = 64;
    bench_opt.duration = 10;
    bench_opt.threads = 1;
    bench_opt.procs = 1;
    bench_opt.join_timeout = BENCH_JOIN_SEC;
    bench_opt.room = "bench";
    bench_opt.settle = 1;
    bench_opt.drain = 5;
    bench_opt.window = 100;

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
    bench_opt.mode_name = argv[1];
    if (strcmp(argv[1], "echo") == 0) {
        bench_opt.mode = MODE_ECHO;
    } else if (strcmp(argv[1], "fanout") == 0) {
        bench_opt.mode = MODE_FANOUT;
    } else if (strcmp(argv[1], "connect") == 0) {
        bench_opt.mode = MODE_CONNECT;
    } else {
        bench_fatal("unknown scenario \"%s\": echo, fanout or connect",
                    argv[1]);
    }
    argc--;
    argv++;

    while ((ch = getopt_long(argc, argv, "c:p:s:d:n:r:H:j:P:kqhV", longopts,
                             NULL)) != -1)
    {
        switch (ch) {
        case 'c':
            bench_opt.conns = (size_t) arg_num("-c", optarg, 1, 10000000);
            conns_set = true;
            break;
        case 'p':
            bench_opt.pubs = (size_t) arg_num("-p", optarg, 1, 100000);
            break;
        case 's':
            bench_opt.size = (size_t) arg_num("-s", optarg, 0, 64 << 20);
            break;
        case 'd':
            bench_opt.duration = arg_num("-d", optarg, 0.001, 1e7);
            bench_opt.duration_set = true;
            break;
        case 'n':
            bench_opt.messages = (uint64_t) arg_num("-n", optarg, 1, 1e15);
            break;
        case 'r':
            bench_opt.rate = arg_num("-r", optarg, 0, 1e9);
            break;
        case 'H':
            bench_opt.hold = arg_num("-H", optarg, 0, 1e7);
            break;
        case 'j':
            bench_opt.threads = (int) arg_num("-j", optarg, 1, 256);
            break;
        case 'P':
            bench_opt.procs = (int) arg_num("-P", optarg, 1,
                                            BENCH_PROCS_MAX);
            break;
        case 'k':
            bench_opt.insecure = true;
            break;
        case 'q':
            bench_opt.quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("wshub-bench %s\n", WSH_VERSION);
            exit(0);
        case OPT_CONNECT_RATE:
            bench_opt.connect_rate = arg_num("--connect-rate", optarg, 0, 1e9);
            break;
        case OPT_ROOM:
            bench_opt.room = optarg;
            break;
        case OPT_SUB:
            bench_opt.sub_text = optarg;
            sub_set = true;
            break;
        case OPT_ACK:
            bench_opt.sub_ack = optarg;
            ack_set = true;
            break;
        case OPT_PUB:
            bench_opt.pub_text = optarg;
            break;
        case OPT_SETTLE:
            bench_opt.settle = arg_num("--settle", optarg, 0, 3600);
            break;
        case OPT_DRAIN:
            bench_opt.drain = arg_num("--drain", optarg, 0, 3600);
            break;
        case OPT_WINDOW:
            bench_opt.window = (uint64_t) arg_num("--window", optarg, 1, 1e9);
            break;
        case OPT_MAX_LOSS:
            bench_opt.max_loss = arg_num("--max-loss", optarg, 0, 100);
            break;
        case OPT_HEADER:
            if (strchr(optarg, ':') == NULL || strpbrk(optarg, "\r\n")) {
                bench_fatal("--header \"%s\": expected NAME: VALUE", optarg);
            }
            add_header(optarg, &hlen);
            break;
        case OPT_DEFLATE:
            /* Offered like a browser; the client inflates the answers. */
            add_header("Sec-WebSocket-Extensions: permessage-deflate; "
                       "client_max_window_bits", &hlen);
            break;
        case OPT_MEMBERS:
            bench_opt.members = (size_t) arg_num("--members", optarg, 0,
                                                 10000000);
            break;
        case OPT_JOIN_TIMEOUT:
            bench_opt.join_timeout = arg_num("--join-timeout", optarg, 0.001,
                                             1e6);
            break;
        case OPT_SOURCE:
            bench_sources(optarg);
            break;
        case OPT_BINARY:
            bench_opt.binary = true;
            break;
        case OPT_JSON:
            bench_opt.json = true;
            break;
        default:
            fprintf(stderr, "try 'wshub-bench -h'\n");
            exit(2);
        }
    }
    if (optind >= argc) {
        bench_fatal("no URL given (try -h)");
    }
    if (bench_opt.members > 0 && bench_opt.mode != MODE_FANOUT) {
        bench_fatal("--members is for fanout");
    }

    bench_opt.nurls = (size_t) (argc - optind);
    bench_opt.urls = calloc(bench_opt.nurls, sizeof(wsh_url_t));
    bench_opt.url_text = argv + optind;
    if (bench_opt.urls == NULL) {
        bench_fatal("out of memory");
    }
    for (i = 0; i < bench_opt.nurls; i++) {
        if (wsh_url_parse(bench_opt.url_text[i], &bench_opt.urls[i], err,
                          sizeof(err))
            != WSH_OK)
        {
            bench_fatal("%s", err);
        }
        if (bench_opt.urls[i].tls && bench_opt.ssl_ctx == NULL) {
            bench_opt.ssl_ctx = wsh_client_ssl_ctx(bench_opt.insecure);
            if (bench_opt.ssl_ctx == NULL) {
                bench_fatal("cannot make a TLS context");
            }
        }
    }

    if (bench_opt.messages > 0 && !bench_opt.duration_set) {
        bench_opt.duration = 0;       /* until the messages are done */
    }
    if (bench_opt.mode == MODE_CONNECT) {
        bench_opt.connect_rate = bench_opt.rate > 0 ? bench_opt.rate
                                                    : bench_opt.connect_rate;
    }
    if (bench_opt.mode == MODE_FANOUT) {
        if (!conns_set) {
            bench_opt.conns = 100;
        }
        if (!sub_set) {
            bench_opt.sub_text = "{\"type\":\"join_room\",\"room\":\"{room}\"}";
        }
        if (!ack_set) {
            bench_opt.sub_ack = sub_set ? NULL : "room_joined";
        }
        if (bench_opt.pub_text == NULL) {
            bench_opt.pub_text = "{\"type\":\"room_message\","
                                 "\"room\":\"{room}\",\"seq\":{seq},"
                                 "\"ts\":{ts},\"data\":\"{payload}\"}";
        }
        if (bench_tmpl_compile(&bench_opt.sub, bench_opt.sub_text, err,
                               sizeof(err))
            != WSH_OK)
        {
            bench_fatal("--subscribe-template: %s", err);
        }
        if (bench_opt.size < BENCH_MARK_MIN) {
            bench_opt.size = BENCH_MARK_MIN;  /* room for the marker */
        }
    }
    if (bench_opt.pub_text != NULL) {
        if (bench_tmpl_compile(&bench_opt.pub, bench_opt.pub_text, err,
                               sizeof(err))
            != WSH_OK)
        {
            bench_fatal("--publish-template: %s", err);
        }
        if (bench_opt.mode == MODE_FANOUT && !bench_opt.pub.payload) {
            bench_fatal("--publish-template must contain {payload}: "
                        "subscribers find the sequence number and time "
                        "stamp in it");
        }
    }
}

/* Raise the open files limit to the hard limit, as wshubd does, and
 * refuse a run in which one process would hold MOST connections, more
 * than its limit allows: each is a file, and a process keeps a few for
 * itself (event loops, pipes, stdio), hence 5% spare, 19,000 of 20,000.
 * A limit no one can raise is the reason for --processes. */
static void
raise_nofile(size_t most)
{
    struct rlimit rl;
    size_t cap, need;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY) {
        return;
    }
    cap = (size_t) rl.rlim_cur - (size_t) rl.rlim_cur / 20;
    if (most <= cap) {
        return;
    }
    need = (bench_total_conns + cap - 1) / cap;
    bench_fatal("%zu connections in one process exceed its open files "
                "limit (%llu, at most %zu connections a process): use "
                "--processes %zu or more", most,
                (unsigned long long) rl.rlim_cur, cap,
                need > (size_t) bench_opt.procs ? need
                                                : (size_t) bench_opt.procs + 1);
}

/* Build the connections and give them to the threads: connection i goes
 * to thread i mod j and URL i mod URLs (publishers counted on their
 * own), so every thread and every URL gets an even share. With
 * --processes, j counts the threads of every process (process k runs
 * threads k*j' to k*j'+j'-1), so each process has an even share of the
 * subscribers, of the members and of the publishers. Connections are
 * numbered subscribers first, then members, then publishers. The
 * threads, their publishers' low marks and the phase are in shared
 * memory (bench_proc.c); the rest is copied into each child by fork. */
static void
setup(void)
{
    size_t i, k, *per, sub = 0, pub = 0, ntot, nsubs, most = 0, n;
    bench_thread_t *t;
    bench_conn_t *c;
    bench_ctr_t *low;
    uint64_t budget = bench_opt.messages ? bench_opt.messages : UINT64_MAX;
    uint64_t share;
    size_t nworkers;

    nsubs = bench_opt.conns + bench_opt.members;
    ntot = nsubs + (bench_opt.mode == MODE_FANOUT ? bench_opt.pubs : 0);
    bench_total_conns = ntot;
    bench_nthreads = (size_t) bench_opt.threads * (size_t) bench_opt.procs;

    /* Thread k holds ntot / nthreads connections, one more when k is
     * below the remainder; refused before anything is allocated. */
    for (k = 0; k < bench_nthreads; k += (size_t) bench_opt.threads) {
        for (n = 0, i = k; i < k + (size_t) bench_opt.threads; i++) {
            n += ntot / bench_nthreads + (i < ntot % bench_nthreads ? 1 : 0);
        }
        most = n > most ? n : most;
    }
    raise_nofile(most);

    bench_run = bench_shm_alloc(sizeof(bench_run_t));
    bench_threads = bench_shm_alloc(bench_nthreads * sizeof(bench_thread_t));
    low = bench_shm_alloc(bench_nthreads * bench_opt.pubs
                          * sizeof(bench_ctr_t));
    per = calloc(bench_nthreads, sizeof(size_t));
    if (per == NULL) {
        bench_fatal("out of memory");
    }
    for (i = 0; i < ntot; i++) {
        per[i % bench_nthreads]++;
    }

    for (k = 0; k < bench_nthreads; k++) {
        t = &bench_threads[k];
        t->id = (int) k;
        t->conns = calloc(per[k] ? per[k] : 1, sizeof(bench_conn_t));
        t->pubs = calloc(per[k] ? per[k] : 1, sizeof(bench_conn_t *));
        t->msubs = calloc(per[k] ? per[k] : 1, sizeof(bench_conn_t *));
        t->low = low + k * bench_opt.pubs;
        t->msg_cap = 256 + bench_opt.size + bench_opt.pub.max_len
                     + bench_opt.sub.max_len;
        t->msg = malloc(t->msg_cap);
        if (t->conns == NULL || t->pubs == NULL || t->msubs == NULL
            || t->msg == NULL)
        {
            bench_fatal("out of memory");
        }
    }
    free(per);

    /* Budgets: -n split evenly over whoever sends. */
    nworkers = bench_opt.mode == MODE_FANOUT ? bench_opt.pubs
                                             : bench_opt.conns;
    for (i = 0; i < ntot; i++) {
        t = &bench_threads[i % bench_nthreads];
        c = &t->conns[t->nconns++];
        c->t = t;
        c->idx = (uint32_t) i;
        if (bench_opt.mode == MODE_FANOUT && i >= nsubs) {
            c->role = ROLE_PUB;
            c->pub = (uint32_t) pub;
            c->url = (uint16_t) (pub % bench_opt.nurls);
            t->pubs[t->npubs++] = c;
            k = pub++;
        } else {
            c->role = bench_opt.mode == MODE_ECHO ? ROLE_ECHO
                      : bench_opt.mode == MODE_CONNECT ? ROLE_CONN
                      : i < bench_opt.conns ? ROLE_SUB
                      : ROLE_MEMBER;
            c->url = (uint16_t) (sub % bench_opt.nurls);
            k = sub++;
        }
        share = budget == UINT64_MAX ? UINT64_MAX
                : budget / nworkers + (k < budget % nworkers ? 1 : 0);
        c->budget = share;
        if (c->role == ROLE_SUB) {
            c->next_seq = calloc(bench_opt.pubs, sizeof(uint32_t));
            if (c->next_seq == NULL) {
                bench_fatal("out of memory");
            }
        }
    }
}

/* Move every thread (of every process) to phase PH. Before they close,
 * they learn how many messages were published, to count the members
 * that missed some. */
static void
set_phase(int ph)
{
    bench_totals_t s;

    if (ph == PH_CLOSE) {
        bench_totals(&s);
        atomic_store(&bench_run->published, s.sent);
    }
    atomic_store(&bench_run->phase, ph);
}

/* Drive the phases; return when every thread has exited. */
static void
control(bench_times_t *tm)
{
    bench_totals_t s, prev;
    uint64_t now, t_last = 0, t_phase, t_opened = 0, expected;
    double el;
    int ph = PH_CONNECT, failed;
    bool settled = false;

    memset(&prev, 0, sizeof(prev));
    getrusage(RUSAGE_SELF, &tm->ru_start);
    tm->t_start = now_ns();
    atomic_store(&bench_run->t0, tm->t_start);
    t_phase = tm->t_start;
    t_last = tm->t_start;

    for (;;) {
        /* A child that dies makes the run's figures incomplete: stop
         * it as Control-C does, the report names the child. */
        failed = bench_proc_wait(50);
        if (failed > 0) {
            tm->proc_failed = true;
            if (ph < PH_CLOSE) {
                g_stop = 1;
            }
        }
        now = now_ns();
        bench_totals(&s);
        el = (double) (now - tm->t_start) / 1e9;

        if (now - t_last >= 1000000000u) {
            bench_progress(el, &s, &prev, (double) (now - t_last) / 1e9);
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
        if (g_stop && ph == PH_CLOSE) {
            ph = PH_EXIT;               /* a second Control-C */
            set_phase(ph);
            t_phase = now;
        }

        switch (ph) {
        case PH_CONNECT:
            /* Every connection opened or failed, and in fanout every
             * subscription acknowledged (or settled). */
            if (s.opened + s.failed < bench_total_conns) {
                break;
            }
            if (t_opened == 0) {
                t_opened = now;
            }
            if (bench_opt.mode == MODE_FANOUT) {
                if (bench_opt.sub_ack != NULL && *bench_opt.sub_ack != '\0') {
                    /* --connect-rate may spread the connecting over
                     * minutes: the joins get --join-timeout after it. */
                    if (s.ready < s.opened - s.dropped
                        && (double) (now - t_opened) / 1e9
                           < bench_opt.join_timeout)
                    {
                        break;
                    }
                    tm->join_timeout = s.ready < s.opened - s.dropped;
                } else if (!settled) {
                    settled = true;
                    t_phase = now;
                    break;
                } else if ((double) (now - t_phase) / 1e9 < bench_opt.settle) {
                    break;
                }
            }
            if (s.ready == bench_total_conns) {
                tm->t_joined = s.last_ready;
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
            atomic_store(&bench_run->t0, now);
            ph = PH_RUN;
            set_phase(ph);
            t_phase = now;
            break;

        case PH_RUN:
            el = (double) (now - t_phase) / 1e9;
            if (bench_opt.mode == MODE_CONNECT) {
                if (el < bench_opt.hold) {
                    break;
                }
            } else if (bench_opt.duration > 0 && el >= bench_opt.duration) {
                /* time is up */
            } else if (s.run_seen == bench_nthreads && s.active == 0)
            {
                /* Every sender is done (-n) or gone: the run ended with
                 * the last reply, not at this poll up to 50 ms later. */
                if (bench_opt.mode == MODE_ECHO && s.last_recv > tm->t_run) {
                    now = s.last_recv;
                }
            } else {
                break;
            }
            tm->t_run_end = now;
            getrusage(RUSAGE_SELF, &tm->ru_end);
            ph = bench_opt.mode == MODE_FANOUT ? PH_DRAIN : PH_CLOSE;
            set_phase(ph);
            t_phase = now;
            break;

        case PH_DRAIN:
            expected = (s.sent - tm->run0.sent) * s.subs;
            if ((s.received - tm->run0.received < expected
                 || s.mreceived < s.sent * s.members)
                && (double) (now - t_phase) / 1e9 < bench_opt.drain)
            {
                break;
            }
            ph = PH_CLOSE;
            set_phase(ph);
            t_phase = now;
            break;

        case PH_CLOSE:
            if (s.exited == bench_nthreads) {
                break;
            }
            if (now - t_phase > BENCH_CLOSE_SEC * 1000000000ull) {
                ph = PH_EXIT;
                set_phase(ph);
                t_phase = now;
            }
            break;

        case PH_EXIT:
            /* Threads leave at once in PH_EXIT; a child that does not
             * is stuck, and killed (its pipe then closes). */
            if (now - t_phase > BENCH_EXIT_SEC * 1000000000ull) {
                bench_proc_kill();
            }
            break;

        default:
            break;
        }
        if (ph >= PH_CLOSE && s.exited == bench_nthreads) {
            tm->t_end = now;
            if (tm->t_run_end == 0) {
                getrusage(RUSAGE_SELF, &tm->ru_end);
            }
            return;
        }

    }
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
    atomic_store(&bench_run->t0, now_ns());
    if (bench_opt.procs > 1) {
        bench_proc_start();
    } else {
        for (i = 0; i < bench_opt.threads; i++) {
            if (pthread_create(&bench_threads[i].tid, NULL,
                               bench_thread_main, &bench_threads[i])
                != 0)
            {
                bench_fatal("pthread_create() failed: %s", strerror(errno));
            }
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    memset(&tm, 0, sizeof(tm));
    control(&tm);
    if (bench_opt.procs > 1) {
        bench_proc_reap();
    } else {
        for (i = 0; i < bench_opt.threads; i++) {
            pthread_join(bench_threads[i].tid, NULL);
        }
    }
    rc = bench_report(&tm);

    for (i = 0; i < (int) bench_nthreads; i++) {
        for (size_t k = 0; k < bench_threads[i].nconns; k++) {
            free(bench_threads[i].conns[k].next_seq);
        }
        free(bench_threads[i].conns);
        free(bench_threads[i].pubs);
        free(bench_threads[i].msubs);
        free(bench_threads[i].msg);
    }
    free(bench_opt.urls);
    free(bench_opt.headers);
    free(bench_opt.sub.seg);
    free(bench_opt.pub.seg);
    if (bench_opt.ssl_ctx != NULL) {
        SSL_CTX_free(bench_opt.ssl_ctx);
    }
    return rc;
}

