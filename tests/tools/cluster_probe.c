/* cluster_probe.c -- drives the Redis Cluster building blocks of the
 * engine (redis_slot.h, redis_cluster_map.h, redis_ssub.h) for
 * tests/integration/test_redis_cluster.py. Built by make check, never
 * installed.
 *
 * Reads commands on stdin, one a line, binary arguments in hex:
 *
 *     slot HEXKEY                 -> "slot N"
 *     map PORT                    -> CLUSTER SLOTS of 127.0.0.1:PORT:
 *                                    "range FIRST LAST PORT" per range
 *                                    of one master, then "map ASSIGNED
 *                                    NODES MASTERS" (or "map error WHY")
 *     open ID PORT MAXREPLY MS    -> a sharded subscriber ID (0..15) to
 *                                    127.0.0.1:PORT, connect timeout MS
 *     sub ID HEXCH, unsub ID HEXCH
 *     free ID
 *
 * and prints each event of subscriber ID as "ID up", "ID subscribed
 * HEXCH COUNT", "ID unsubscribed HEXCH COUNT", "ID dropped HEXCH
 * COUNT", "ID message HEXCH HEXDATA", "ID error HEXCH moved|ask SLOT
 * PORT" (a redirection, read by redis_cluster_redirect) or "ID error
 * HEXCH TEXT", "ID closed REASON". Log lines go to stderr. Exits at
 * the end of its input.
 */
#include "engine/redis_cluster_map.h"
#include "engine/redis_slot.h"
#include "engine/redis_ssub.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_SUBS  16

static struct event_base *base;
static redis_ssub_t      *subs[PROBE_SUBS];
static int                ids[PROBE_SUBS];

static void
hex(const char *p, size_t n)
{
    size_t i;

    if (n == 0) {
        fputc('-', stdout);
    }
    for (i = 0; i < n; i++) {
        printf("%02x", (unsigned char) p[i]);
    }
}

/* HEX ("-" for empty) into BUF; its length, or -1. */
static long
unhex(const char *hexs, char *buf, size_t size)
{
    size_t n = strlen(hexs), i;
    unsigned v;

    if (strcmp(hexs, "-") == 0) {
        return 0;
    }
    if (n % 2 != 0 || n / 2 > size) {
        return -1;
    }
    for (i = 0; i < n / 2; i++) {
        if (sscanf(hexs + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        buf[i] = (char) v;
    }
    return (long) (n / 2);
}

static void
on_event(redis_ssub_t *s, const redis_ssub_event_t *ev, void *arg)
{
    int id = *(int *) arg;
    redis_cluster_redirect_t rd;

    (void) s;
    printf("%d ", id);
    switch (ev->type) {
    case REDIS_SSUB_UP:
        printf("up");
        break;
    case REDIS_SSUB_SUBSCRIBED:
    case REDIS_SSUB_UNSUBSCRIBED:
    case REDIS_SSUB_DROPPED:
        printf("%s ", ev->type == REDIS_SSUB_SUBSCRIBED ? "subscribed"
                      : ev->type == REDIS_SSUB_UNSUBSCRIBED ? "unsubscribed"
                      : "dropped");
        hex(ev->channel, ev->chlen);
        printf(" %lld", ev->count);
        break;
    case REDIS_SSUB_MESSAGE:
        printf("message ");
        hex(ev->channel, ev->chlen);
        fputc(' ', stdout);
        hex(ev->data, ev->len);
        break;
    case REDIS_SSUB_ERROR:
        printf("error ");
        hex(ev->channel, ev->chlen);
        if (redis_cluster_redirect(ev->data, ev->len, &rd) == WSH_OK) {
            printf(" %s %u %u", rd.ask ? "ask" : "moved", rd.slot, rd.port);
        } else {
            printf(" %.*s", (int) ev->len, ev->data);
        }
        break;
    case REDIS_SSUB_CLOSED:
        printf("closed %.*s", (int) ev->len, ev->data);
        break;
    }
    fputc('\n', stdout);
    fflush(stdout);
}

/* "map PORT": the slot map of a live node, through hiredis's blocking
 * API (the probe's own; the engine reads it asynchronously). */
static void
map(unsigned port)
{
    redisContext *c = redisConnect("127.0.0.1", (int) port);
    redisReply *r = NULL;
    redis_cluster_map_t *m;
    char err[256];
    unsigned first, slot;

    if (c == NULL || c->err) {
        printf("map error connect\n");
        goto done;
    }
    r = redisCommand(c, "CLUSTER SLOTS");
    m = redis_cluster_map_parse(r, "127.0.0.1", err, sizeof(err));
    if (m == NULL) {
        printf("map error %s\n", err);
        goto done;
    }
    for (first = 0; first < REDIS_SLOTS; first = slot) {
        for (slot = first + 1; slot < REDIS_SLOTS
             && m->slot[slot] == m->slot[first]; slot++)
        {
            /* void */
        }
        if (m->slot[first] != REDIS_CLUSTER_NONE) {
            printf("range %u %u %u\n", first, slot - 1,
                   m->nodes[m->slot[first]].port);
        }
    }
    printf("map %u %zu %u\n", m->assigned, m->nnodes, m->masters);
    redis_cluster_map_free(m);

done:
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    fflush(stdout);
}

static void
command(char *line)
{
    char *argv[6], *save = NULL, *t, buf[4096];
    int argc = 0, id = -1;
    long n;
    redis_ssub_conf_t conf;
    char err[256];

    for (t = strtok_r(line, " ", &save); t != NULL && argc < 6;
         t = strtok_r(NULL, " ", &save))
    {
        argv[argc++] = t;
    }
    if (argc == 0) {
        return;
    }
    if (argc >= 2 && strcmp(argv[0], "slot") != 0
        && strcmp(argv[0], "map") != 0)
    {
        id = atoi(argv[1]);
        if (id < 0 || id >= PROBE_SUBS) {
            printf("bad id\n");
            return;
        }
    }
    if (strcmp(argv[0], "slot") == 0 && argc == 2) {
        n = unhex(argv[1], buf, sizeof(buf));
        if (n < 0) {
            printf("bad hex\n");
        } else {
            printf("slot %u\n", redis_slot(buf, (size_t) n));
        }
    } else if (strcmp(argv[0], "map") == 0 && argc == 2) {
        map((unsigned) atoi(argv[1]));
    } else if (strcmp(argv[0], "open") == 0 && argc == 5) {
        memset(&conf, 0, sizeof(conf));
        conf.host = "127.0.0.1";
        conf.port = (unsigned) atoi(argv[2]);
        conf.max_reply = (size_t) atol(argv[3]);
        conf.connect_timeout = (wsh_msec_t) atol(argv[4]);
        redis_ssub_free(subs[id]);
        ids[id] = id;
        subs[id] = redis_ssub_open(base, &conf, on_event, &ids[id], err,
                                   sizeof(err));
        if (subs[id] == NULL) {
            printf("%d open failed %s\n", id, err);
        }
    } else if ((strcmp(argv[0], "sub") == 0
                || strcmp(argv[0], "unsub") == 0) && argc == 3)
    {
        n = unhex(argv[2], buf, sizeof(buf));
        if (n < 0 || subs[id] == NULL) {
            printf("%d bad\n", id);
        } else if ((argv[0][0] == 's'
                    ? redis_ssub_subscribe(subs[id], buf, (size_t) n)
                    : redis_ssub_unsubscribe(subs[id], buf, (size_t) n))
                   != WSH_OK)
        {
            printf("%d refused\n", id);
        }
    } else if (strcmp(argv[0], "free") == 0 && argc == 2) {
        redis_ssub_free(subs[id]);
        subs[id] = NULL;
    } else {
        printf("bad command\n");
    }
    fflush(stdout);
}

static void
on_stdin(evutil_socket_t fd, short what, void *arg)
{
    static char line[16384];
    static size_t len;
    char *nl;
    ssize_t n;

    (void) what;
    (void) arg;
    n = read(fd, line + len, sizeof(line) - 1 - len);
    if (n <= 0) {
        event_base_loopbreak(base);
        return;
    }
    len += (size_t) n;
    while ((nl = memchr(line, '\n', len)) != NULL) {
        *nl = '\0';
        command(line);
        len -= (size_t) (nl + 1 - line);
        memmove(line, nl + 1, len);
    }
    if (len == sizeof(line) - 1) {
        len = 0;                        /* a line too long: dropped */
    }
}

int
main(void)
{
    struct event *in;
    int i;

    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    base = event_base_new();
    in = event_new(base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, NULL);
    if (base == NULL || in == NULL || event_add(in, NULL) != 0) {
        return 1;
    }
    event_base_dispatch(base);
    for (i = 0; i < PROBE_SUBS; i++) {
        redis_ssub_free(subs[i]);
    }
    event_free(in);
    event_base_free(base);
    fflush(stdout);
    return 0;
}
