/* redis_ssub.c -- a sharded pub/sub subscriber connection: SSUBSCRIBE
 * on one Redis Cluster node, on a worker's event_base.
 *
 * hiredis's async layer cannot carry sharded pub/sub, in 0.14 (Debian
 * 12) or in 1.2.0: it knows SUBSCRIBE and PSUBSCRIBE only, so an
 * smessage push finds no callback and async.c asserts (a push when no
 * command is pending) or hands it to the wrong callback. This
 * connection is therefore a bufferevent that writes commands made by
 * redisFormatCommandArgv and reads RESP2 with hiredis's redisReader,
 * both alike in 0.14 and 1.x.
 *
 * Replies come in the order of the commands, pushes (smessage, and a
 * sunsubscribe the server sends when a slot leaves it) in between:
 * a FIFO of the commands sent tells a confirmation from a push.
 *
 * Bounded input: a reply (complete or still arriving) of more than
 * max_reply bytes closes the connection with a log line, and an array
 * header of more than REDIS_SSUB_ELEMENTS elements is refused before
 * hiredis allocates it.
 */
#include "engine/redis_ssub.h"
#include "core/log.h"

#include <hiredis/hiredis.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Our replies are arrays of 2 ("pong") or 3 elements. */
#define REDIS_SSUB_ELEMENTS  16
#define REDIS_SSUB_READ      16384      /* bytes fed to the reader at once */

typedef enum {
    REDIS_SSUB_CMD_AUTH,
    REDIS_SSUB_CMD_PING,
    REDIS_SSUB_CMD_SUB,
    REDIS_SSUB_CMD_UNSUB
} redis_ssub_cmd_e;

/* A command waiting for its reply. */
typedef struct redis_ssub_cmd_s redis_ssub_cmd_t;
struct redis_ssub_cmd_s {
    redis_ssub_cmd_t  *next;
    redis_ssub_cmd_e   type;
    size_t             len;
    char               ch[];
};

struct redis_ssub_s {
    struct bufferevent     *bev;
    struct event           *timer;      /* connect timeout, deferred close */
    redisReader            *reader;
    redis_ssub_handler_pt   handler;
    void                   *arg;
    redis_ssub_cmd_t       *head;       /* the FIFO of commands sent */
    redis_ssub_cmd_t      **tail;
    size_t                  max_reply;
    uint64_t                fed;        /* bytes fed to the reader */
    uint64_t                start;      /* where the current reply began */
    unsigned                busy;       /* in our callbacks */
    bool                    up;
    bool                    closed;     /* CLOSED reported */
    bool                    dying;      /* freed while busy */
    char                    why[128];   /* a close to report from the loop */
    char                    name[300];  /* "HOST:PORT" */
};

static void redis_ssub_close(redis_ssub_t *s, const char *why);

/* ---- the reader --------------------------------------------------------- */

/* hiredis's reply functions, with createArray refusing big headers. */
static redisReplyObjectFunctions redis_ssub_fn;

#if HIREDIS_MAJOR >= 1
typedef size_t redis_ssub_nelem_t;
#else
typedef int redis_ssub_nelem_t;
#endif

static void *(*redis_ssub_create_array)(const redisReadTask *,
    redis_ssub_nelem_t);

/* NULL makes the reader fail ("Out of memory"), which closes us. */
static void *
redis_ssub_array(const redisReadTask *task, redis_ssub_nelem_t n)
{
    if (n > REDIS_SSUB_ELEMENTS) {
        return NULL;
    }
    return redis_ssub_create_array(task, n);
}

static redisReader *
redis_ssub_reader(void)
{
    redisReader *r = redisReaderCreate();

    if (r == NULL) {
        return NULL;
    }
    if (redis_ssub_create_array == NULL) {
        redis_ssub_fn = *r->fn;
        redis_ssub_create_array = redis_ssub_fn.createArray;
        redis_ssub_fn.createArray = redis_ssub_array;
    }
    r->fn = &redis_ssub_fn;
#if HIREDIS_MAJOR >= 1
    r->maxelements = REDIS_SSUB_ELEMENTS;
#endif
    return r;
}

/* ---- events ------------------------------------------------------------- */

static void
redis_ssub_report(redis_ssub_t *s, redis_ssub_event_e type,
    const char *ch, size_t chlen, const char *data, size_t len,
    long long count)
{
    redis_ssub_event_t ev;

    if (s->dying || s->closed) {
        return;
    }
    ev.type = type;
    ev.channel = ch;
    ev.chlen = chlen;
    ev.data = data;
    ev.len = len;
    ev.count = count;
    s->handler(s, &ev, s->arg);
}

/* Free S if it was freed from a callback; true if so. Called on the
 * way out of each of our callbacks. */
static bool
redis_ssub_leave(redis_ssub_t *s)
{
    if (--s->busy > 0 || !s->dying) {
        return false;
    }
    s->dying = false;
    redis_ssub_free(s);
    return true;
}

/* The first command sent, if it is of TYPE (and on CH, for a channel's
 * command): taken off the FIFO. NULL when it is not. */
static redis_ssub_cmd_t *
redis_ssub_shift(redis_ssub_t *s, int type, const char *ch, size_t len)
{
    redis_ssub_cmd_t *c = s->head;

    if (c == NULL || (type >= 0 && c->type != (redis_ssub_cmd_e) type)
        || (ch != NULL && (c->len != len || memcmp(c->ch, ch, len) != 0)))
    {
        return NULL;
    }
    s->head = c->next;
    if (s->head == NULL) {
        s->tail = &s->head;
    }
    return c;
}

static bool
redis_ssub_is(const redisReply *r, const char *word)
{
    return r->type == REDIS_REPLY_STRING && r->len == strlen(word)
           && strncasecmp(r->str, word, r->len) == 0;
}

/* One reply or push R. WSH_ERROR: S was closed. */
static int
redis_ssub_reply(redis_ssub_t *s, redisReply *r)
{
    redis_ssub_cmd_t *c;
    redisReply **e = r->element;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3
        && e[1]->type == REDIS_REPLY_STRING)
    {
        if (redis_ssub_is(e[0], "smessage")
            && e[2]->type == REDIS_REPLY_STRING)
        {
            redis_ssub_report(s, REDIS_SSUB_MESSAGE, e[1]->str, e[1]->len,
                              e[2]->str, e[2]->len, 0);
            return WSH_OK;
        }
        if (e[2]->type != REDIS_REPLY_INTEGER) {
            goto unexpected;
        }
        if (redis_ssub_is(e[0], "ssubscribe")) {
            c = redis_ssub_shift(s, REDIS_SSUB_CMD_SUB, e[1]->str, e[1]->len);
            if (c == NULL) {
                goto unexpected;
            }
            free(c);
            redis_ssub_report(s, REDIS_SSUB_SUBSCRIBED, e[1]->str,
                              e[1]->len, NULL, 0, e[2]->integer);
            return WSH_OK;
        }
        if (redis_ssub_is(e[0], "sunsubscribe")) {
            /* Ours when an SUNSUBSCRIBE of the channel comes first in
             * the FIFO; otherwise the server dropped it. */
            c = redis_ssub_shift(s, REDIS_SSUB_CMD_UNSUB, e[1]->str,
                                 e[1]->len);
            free(c);
            redis_ssub_report(s, c != NULL ? REDIS_SSUB_UNSUBSCRIBED
                                           : REDIS_SSUB_DROPPED,
                              e[1]->str, e[1]->len, NULL, 0, e[2]->integer);
            return WSH_OK;
        }
        goto unexpected;
    }

    /* PING's answer: "+PONG" before any subscription, ["pong", ""] in
     * subscribed state. */
    if ((r->type == REDIS_REPLY_STATUS && strcasecmp(r->str, "PONG") == 0)
        || (r->type == REDIS_REPLY_ARRAY && r->elements == 2
            && redis_ssub_is(e[0], "pong")))
    {
        c = redis_ssub_shift(s, REDIS_SSUB_CMD_PING, NULL, 0);
        if (c == NULL) {
            goto unexpected;
        }
        free(c);
        if (!s->up) {
            s->up = true;
            event_del(s->timer);
            redis_ssub_report(s, REDIS_SSUB_UP, NULL, 0, NULL, 0, 0);
        }
        return WSH_OK;
    }
    if (r->type == REDIS_REPLY_STATUS) {
        c = redis_ssub_shift(s, REDIS_SSUB_CMD_AUTH, NULL, 0);
        if (c == NULL) {
            goto unexpected;
        }
        free(c);
        return WSH_OK;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        c = redis_ssub_shift(s, -1, NULL, 0);
        if (c == NULL || c->type == REDIS_SSUB_CMD_AUTH
            || c->type == REDIS_SSUB_CMD_PING)
        {
            /* Not set up (NOAUTH, WRONGPASS, LOADING), or an error
             * nothing asked for (max clients): Redis closes after it. */
            free(c);
            snprintf(s->why, sizeof(s->why), "%.*s",
                     (int) (r->len < 100 ? r->len : 100), r->str);
            wsh_log(WSH_LOG_ERR, "redis sharded subscriber %s: %s",
                    s->name, s->why);
            redis_ssub_close(s, s->why);
            return WSH_ERROR;
        }
        redis_ssub_report(s, REDIS_SSUB_ERROR, c->ch, c->len, r->str,
                          r->len, 0);
        free(c);
        return WSH_OK;
    }

unexpected:
    wsh_log(WSH_LOG_ERR, "redis sharded subscriber %s: unexpected reply "
            "(type %d), closing", s->name, r->type);
    redis_ssub_close(s, "unexpected reply");
    return WSH_ERROR;
}

/* Everything readable: feed the reader by REDIS_SSUB_READ bytes, each
 * time handing out the complete replies and checking that the one
 * still arriving stays within max_reply. */
static void
redis_ssub_read(struct bufferevent *bev, void *arg)
{
    redis_ssub_t *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[REDIS_SSUB_READ];
    uint64_t next;
    void *reply;
    int n, rc;

    s->busy++;
    while (!s->closed && !s->dying
           && (n = evbuffer_remove(in, buf, sizeof(buf))) > 0)
    {
        if (redisReaderFeed(s->reader, buf, (size_t) n) != REDIS_OK) {
            redis_ssub_close(s, "out of memory");
            break;
        }
        s->fed += (uint64_t) n;
        for ( ;; ) {
            reply = NULL;
            if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) {
                wsh_log(WSH_LOG_ERR, "redis sharded subscriber %s: "
                        "protocol error: %s, closing", s->name,
                        s->reader->errstr);
                redis_ssub_close(s, "protocol error");
                break;
            }
            if (reply == NULL) {
                break;
            }
            /* The next reply starts where the reader stopped. */
            next = s->fed - (s->reader->len - s->reader->pos);
            if (next - s->start > s->max_reply) {
                freeReplyObject(reply);
                break;                  /* too large: closed below */
            }
            s->start = next;
            rc = redis_ssub_reply(s, reply);
            freeReplyObject(reply);
            if (rc != WSH_OK || s->closed || s->dying) {
                break;
            }
        }
        /* A reply over the limit, complete or still arriving. */
        if (!s->closed && !s->dying && s->fed - s->start > s->max_reply) {
            wsh_log(WSH_LOG_ERR, "redis sharded subscriber %s: a reply of "
                    "more than %zu bytes, closing", s->name, s->max_reply);
            redis_ssub_close(s, "reply too large");
        }
    }
    redis_ssub_leave(s);
}

static void
redis_ssub_event(struct bufferevent *bev, short what, void *arg)
{
    redis_ssub_t *s = arg;
    char why[128];
    int fd, one = 1;

    (void) bev;
    s->busy++;
    if (what & BEV_EVENT_CONNECTED) {
        fd = (int) bufferevent_getfd(s->bev);
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } else if (what & BEV_EVENT_EOF) {
        redis_ssub_close(s, "closed by the server");
    } else if (what & BEV_EVENT_ERROR) {
        snprintf(why, sizeof(why), "%s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        redis_ssub_close(s, why);
    }
    redis_ssub_leave(s);
}

/* The connect timeout, or a close decided in redis_ssub_open. */
static void
redis_ssub_timer(evutil_socket_t fd, short what, void *arg)
{
    redis_ssub_t *s = arg;

    (void) fd;
    (void) what;
    s->busy++;
    if (s->why[0] == '\0') {
        snprintf(s->why, sizeof(s->why), "connect timed out");
    }
    redis_ssub_close(s, s->why);
    redis_ssub_leave(s);
}

/* Let go of the socket and report CLOSED (once). */
static void
redis_ssub_close(redis_ssub_t *s, const char *why)
{
    redis_ssub_cmd_t *c;

    if (s->closed) {
        return;
    }
    if (s->bev != NULL) {
        bufferevent_free(s->bev);
        s->bev = NULL;
    }
    event_del(s->timer);
    while ((c = redis_ssub_shift(s, -1, NULL, 0)) != NULL) {
        free(c);
    }
    s->up = false;
    redis_ssub_report(s, REDIS_SSUB_CLOSED, NULL, 0, why, strlen(why), 0);
    s->closed = true;
}

/* ---- commands ----------------------------------------------------------- */

/* Send ARGV as one command, expecting a reply of TYPE (on CH). */
static int
redis_ssub_send(redis_ssub_t *s, redis_ssub_cmd_e type, int argc,
    const char **argv, const size_t *argl, const char *ch, size_t len)
{
    redis_ssub_cmd_t *c;
    char *cmd;
    int n;

    if (s->closed || s->bev == NULL) {
        return WSH_ERROR;
    }
    c = malloc(sizeof(*c) + len);
    if (c == NULL) {
        return WSH_ERROR;
    }
    n = redisFormatCommandArgv(&cmd, argc, argv, argl);
    if (n < 0) {
        free(c);
        return WSH_ERROR;
    }
    if (evbuffer_add(bufferevent_get_output(s->bev), cmd, (size_t) n) != 0) {
        redisFreeCommand(cmd);
        free(c);
        return WSH_ERROR;
    }
    redisFreeCommand(cmd);
    c->next = NULL;
    c->type = type;
    c->len = len;
    if (len > 0) {
        memcpy(c->ch, ch, len);
    }
    *s->tail = c;
    s->tail = &c->next;
    return WSH_OK;
}

int
redis_ssub_subscribe(redis_ssub_t *s, const char *ch, size_t len)
{
    const char *argv[2] = { "SSUBSCRIBE", ch };
    size_t argl[2] = { 10, len };

    return redis_ssub_send(s, REDIS_SSUB_CMD_SUB, 2, argv, argl, ch, len);
}

int
redis_ssub_unsubscribe(redis_ssub_t *s, const char *ch, size_t len)
{
    const char *argv[2] = { "SUNSUBSCRIBE", ch };
    size_t argl[2] = { 12, len };

    return redis_ssub_send(s, REDIS_SSUB_CMD_UNSUB, 2, argv, argl, ch, len);
}

/* ---- life --------------------------------------------------------------- */

/* Resolve and start connecting; false with S->why set on failure. */
static bool
redis_ssub_connect(redis_ssub_t *s, const redis_ssub_conf_t *conf)
{
    struct addrinfo hints, *ai;
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", conf->port);
    /* Blocking, as hiredis's own connect: cluster nodes are named by
     * address (CLUSTER SLOTS), a name only when configured so. */
    rc = getaddrinfo(conf->host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(s->why, sizeof(s->why), "%s", gai_strerror(rc));
        return false;
    }
    rc = bufferevent_socket_connect(s->bev, ai->ai_addr,
                                    (int) ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0) {
        snprintf(s->why, sizeof(s->why), "connect: %s", strerror(errno));
        return false;
    }
    return true;
}

redis_ssub_t *
redis_ssub_open(struct event_base *base, const redis_ssub_conf_t *conf,
    redis_ssub_handler_pt handler, void *arg, char *err, size_t len)
{
    redis_ssub_t *s;
    struct timeval tv = { 0, 0 };
    const char *auth[2] = { "AUTH", conf->password };
    size_t authl[2] = { 4, conf->password ? strlen(conf->password) : 0 };
    const char *ping[1] = { "PING" };
    size_t pingl[1] = { 4 };

    if (conf->host == NULL || conf->host[0] == '\0' || conf->port == 0
        || conf->port > 65535)
    {
        snprintf(err, len, "redis sharded subscriber: no host, or port "
                 "not in 1..65535");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, len, "out of memory");
        return NULL;
    }
    s->handler = handler;
    s->arg = arg;
    s->tail = &s->head;
    s->max_reply = conf->max_reply > 0 ? conf->max_reply
                                       : REDIS_SSUB_MAX_REPLY;
    snprintf(s->name, sizeof(s->name), strchr(conf->host, ':') != NULL
             ? "[%.255s]:%u" : "%.255s:%u", conf->host, conf->port);
    s->reader = redis_ssub_reader();
    s->timer = evtimer_new(base, redis_ssub_timer, s);
    s->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (s->reader == NULL || s->timer == NULL || s->bev == NULL) {
        snprintf(err, len, "out of memory");
        goto failed;
    }
    bufferevent_setcb(s->bev, redis_ssub_read, NULL, redis_ssub_event, s);
    if (bufferevent_enable(s->bev, EV_READ) != 0) {
        snprintf(err, len, "bufferevent_enable() failed");
        goto failed;
    }
    if ((conf->password != NULL
         && redis_ssub_send(s, REDIS_SSUB_CMD_AUTH, 2, auth, authl, NULL, 0)
            != WSH_OK)
        || redis_ssub_send(s, REDIS_SSUB_CMD_PING, 1, ping, pingl, NULL, 0)
           != WSH_OK)
    {
        snprintf(err, len, "out of memory");
        goto failed;
    }
    /* A connect that failed at once is reported from the loop, as a
     * refusal would be: the timer, at zero, closes with s->why. */
    if (redis_ssub_connect(s, conf)) {
        if (conf->connect_timeout == 0) {
            return s;
        }
        tv.tv_sec = (time_t) (conf->connect_timeout / 1000);
        tv.tv_usec = (suseconds_t) (conf->connect_timeout % 1000) * 1000;
    }
    if (evtimer_add(s->timer, &tv) != 0) {
        snprintf(err, len, "evtimer_add() failed");
        goto failed;
    }
    return s;

failed:
    s->closed = true;
    redis_ssub_free(s);
    return NULL;
}

bool
redis_ssub_up(const redis_ssub_t *s)
{
    return s->up && !s->closed;
}

const char *
redis_ssub_name(const redis_ssub_t *s)
{
    return s->name;
}

void
redis_ssub_free(redis_ssub_t *s)
{
    redis_ssub_cmd_t *c;

    if (s == NULL) {
        return;
    }
    if (s->busy > 0) {
        s->dying = true;    /* freed by the callback on its way out */
        return;
    }
    if (s->bev != NULL) {
        bufferevent_free(s->bev);
    }
    if (s->timer != NULL) {
        event_free(s->timer);
    }
    while ((c = redis_ssub_shift(s, -1, NULL, 0)) != NULL) {
        free(c);
    }
    if (s->reader != NULL) {
        redisReaderFree(s->reader);
    }
    free(s);
}
