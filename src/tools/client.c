/* client.c -- the client side of RFC 6455 for wshub-bench and wshub-cli.
 *
 * One wsh_client_t is one bufferevent (plain or OpenSSL) to a ws:// or
 * wss:// URL. The opening handshake (section 4.1) is written as soon as
 * the socket exists and the answer is checked for status 101 and the
 * right Sec-WebSocket-Accept. Server frames then go through the server's
 * own incremental parser in client mode (ws/frame.h), so both sides of
 * the codec are the same tested code. Outgoing frames are masked while
 * they are copied into the bufferevent's output: nothing is allocated
 * per message once the connection is open.
 *
 * Once a plain (ws://) connection is open, the bufferevent only carries
 * output the kernel did not take at once: a frame is written straight to
 * the socket when nothing waits before it, and input is read by an event
 * of our own into one buffer per thread and parsed in place. The
 * bufferevent's way (an FIONREAD ioctl per read, its write event added
 * and removed per message) cost a generator at 126k echoes/s a fifth of
 * its core, and a load generator must be cheaper than the server.
 *
 * The close handler is the last thing a callback does, so a program may
 * free the client from inside it. A failure detected inside an API call
 * (wsh_client_close before the handshake ends) is reported from a
 * zero-delay timer instead, never from inside the call.
 */
#include "tools/client.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "net/handshake.h"

#include <errno.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#define CLIENT_MAX_MESSAGE      (64u << 20)
#define CLIENT_MAX_RESPONSE     16384   /* handshake response head */
#define CLIENT_HANDSHAKE_SEC    10      /* connect + TLS + HTTP 101 */
#define CLIENT_CLOSE_SEC        5       /* closing handshake */
#define CLIENT_MAX_ADDRS        4       /* addresses tried in turn */
#define CLIENT_READ_SIZE        65536   /* one direct read at most */
#define CLIENT_DIRECT_WRITE     4096    /* frames written from the stack */

enum {
    CLIENT_CONNECTING = 0,      /* TCP (and TLS) not up yet */
    CLIENT_HANDSHAKE,           /* request sent, waiting for the 101 */
    CLIENT_OPEN,
    CLIENT_CLOSE_SENT,          /* our close frame is out */
    CLIENT_CLOSE_RECEIVED,      /* the server's close is in: wait for EOF */
    CLIENT_DONE                 /* close handler called */
};

struct wsh_client_s {
    struct event_base          *base;
    struct bufferevent         *bev;
    struct event               *rev;            /* direct reads, or NULL */
    struct event               *timer;
    SSL_CTX                    *ssl_ctx;
    wsh_client_handlers_t       h;
    void                       *arg;
    const char                 *extra_headers;   /* copied, may be NULL */
    wsh_url_t                   url;

    wsh_ws_t                    ws;
    wsh_deflate_t              *deflate;        /* negotiated, or NULL */
    uint64_t                    rng;            /* xorshift64* state */
    int                         state;
    int                         close_code;     /* received, or 1006 */
    bool                        deferred;       /* timer = report close */
    char                        key[25];        /* Sec-WebSocket-Key */
    char                        reason[160];

    int                         naddrs;
    int                         addr;           /* index being tried */
    const struct sockaddr_storage *source;      /* NULL: the kernel's */
    socklen_t                   addrlen[CLIENT_MAX_ADDRS];
    struct sockaddr_storage     addrs[CLIENT_MAX_ADDRS];
};

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void client_io_end(wsh_client_t *cl, short what);
static void client_timer_cb(evutil_socket_t fd, short what, void *arg);

int
wsh_url_parse(const char *url, wsh_url_t *out, char *err, size_t errlen)
{
    const char *p, *host, *host_end, *port = NULL, *port_end = NULL, *rest;
    size_t n;
    long v;
    char *end;

    memset(out, 0, sizeof(*out));
    if (strncasecmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else if (strncasecmp(url, "wss://", 6) == 0) {
        p = url + 6;
        out->tls = true;
    } else {
        snprintf(err, errlen, "\"%s\": not a ws:// or wss:// URL", url);
        return WSH_ERROR;
    }

    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL) {
            snprintf(err, errlen, "\"%s\": unterminated [IPv6] host", url);
            return WSH_ERROR;
        }
        p = host_end + 1;
    } else {
        host = p;
        p += strcspn(p, ":/?#");
        host_end = p;
    }
    if (*p == ':') {
        port = ++p;
        p += strcspn(p, "/?#");
        port_end = p;
    }
    rest = p;
    if (*rest != '\0' && *rest != '/' && *rest != '?' && *rest != '#') {
        snprintf(err, errlen, "\"%s\": junk after the host", url);
        return WSH_ERROR;
    }

    n = (size_t) (host_end - host);
    if (n == 0 || n >= sizeof(out->host) || memchr(host, '@', n) != NULL) {
        snprintf(err, errlen, "\"%s\": bad host", url);
        return WSH_ERROR;
    }
    memcpy(out->host, host, n);

    if (port != NULL) {
        n = (size_t) (port_end - port);
        errno = 0;
        v = strtol(port, &end, 10);
        if (n == 0 || n > 5 || end != port_end || v < 1 || v > 65535) {
            snprintf(err, errlen, "\"%s\": bad port", url);
            return WSH_ERROR;
        }
        snprintf(out->port, sizeof(out->port), "%ld", v);
    } else {
        strcpy(out->port, out->tls ? "443" : "80");
    }

    /* The request target: path and query, never the fragment (RFC 6455
     * section 3 forbids fragments in WebSocket URIs; we just drop it). */
    n = strcspn(rest, "#");
    if (n + 2 > sizeof(out->path)) {
        snprintf(err, errlen, "\"%s\": path too long", url);
        return WSH_ERROR;
    }
    if (n == 0 || rest[0] != '/') {
        out->path[0] = '/';
        memcpy(out->path + 1, rest, n);
    } else {
        memcpy(out->path, rest, n);
    }
    return WSH_OK;
}

/* xorshift64*: a fast generator for masking keys. RFC 6455 section 5.3
 * asks for keys an attacker cannot predict, which protects proxies from
 * a hostile script; a load generator sends its own, known payloads and
 * must not spend its CPU on a CSPRNG per frame, so the state is only
 * seeded from getrandom(). */
static uint32_t
client_random(wsh_client_t *cl)
{
    uint64_t x = cl->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    cl->rng = x;
    return (uint32_t) ((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Frame header of a masked client frame (RFC 6455 section 5.2): FIN,
 * OPCODE, the mask bit, the shortest length form and the 4-byte key.
 * Returns its size (at most WSH_WS_HEADER_MAX). */
static size_t
client_frame_header(u_char *out, int opcode, uint64_t len,
    const u_char key[4])
{
    size_t n;
    int i;

    out[0] = (u_char) (0x80 | opcode);
    if (len < 126) {
        out[1] = (u_char) (0x80 | len);
        n = 2;
    } else if (len <= 0xffff) {
        out[1] = 0x80 | 126;
        out[2] = (u_char) (len >> 8);
        out[3] = (u_char) len;
        n = 4;
    } else {
        out[1] = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            out[2 + i] = (u_char) (len >> (56 - 8 * i));
        }
        n = 10;
    }
    memcpy(out + n, key, 4);
    return n + 4;
}

/* A small frame on a direct connection with nothing queued: built on
 * the stack and written at once; what the kernel does not take goes to
 * the bufferevent, whose write event then does the rest (and reports a
 * socket error the usual way). */
static int
client_write_direct(wsh_client_t *cl, const u_char *hdr, size_t hlen,
    const u_char *data, size_t len, const u_char key[4])
{
    u_char buf[CLIENT_DIRECT_WRITE];
    size_t total = hlen + len;
    ssize_t n;

    memcpy(buf, hdr, hlen);
    wsh_ws_mask(buf + hlen, data, len, key, 0);
    n = send(event_get_fd(cl->rev), buf, total, MSG_NOSIGNAL);
    if (n == (ssize_t) total) {
        return WSH_OK;
    }
    if (n < 0) {
        n = 0;
    }
    return evbuffer_add(bufferevent_get_output(cl->bev), buf + n,
                        total - (size_t) n) == 0 ? WSH_OK : WSH_ERROR;
}

/* Send one masked frame: directly when possible, else queued with header
 * and payload written straight into reserved evbuffer space (no
 * intermediate copy). */
static int
client_write_frame(wsh_client_t *cl, int opcode, const u_char *data,
    size_t len)
{
    struct evbuffer *out = bufferevent_get_output(cl->bev);
    struct evbuffer_iovec vec[2];
    u_char hdr[WSH_WS_HEADER_MAX], key[4];
    uint32_t r = client_random(cl);
    size_t hlen, total, off, pos, n, room;
    int nvec, i;

    memcpy(key, &r, 4);
    hlen = client_frame_header(hdr, opcode, len, key);
    total = hlen + len;

    if (cl->rev != NULL && total <= CLIENT_DIRECT_WRITE
        && evbuffer_get_length(out) == 0)
    {
        return client_write_direct(cl, hdr, hlen, data, len, key);
    }

    nvec = evbuffer_reserve_space(out, (ev_ssize_t) total, vec, 2);
    if (nvec < 0) {
        return WSH_ERROR;
    }
    off = 0;                /* header bytes written */
    pos = 0;                /* payload bytes written */
    for (i = 0; i < nvec && off + pos < total; i++) {
        u_char *dst = vec[i].iov_base;

        room = vec[i].iov_len;
        if (off < hlen) {
            n = hlen - off < room ? hlen - off : room;
            memcpy(dst, hdr + off, n);
            off += n;
            dst += n;
            room -= n;
        }
        n = len - pos < room ? len - pos : room;
        if (n > 0) {
            wsh_ws_mask(dst, data + pos, n, key, pos);
            pos += n;
            room -= n;
        }
        vec[i].iov_len -= room;
    }
    if (off + pos != total) {
        return WSH_ERROR;
    }
    return evbuffer_commit_space(out, vec, i) == 0 ? WSH_OK : WSH_ERROR;
}

static void
client_stop_io(wsh_client_t *cl)
{
    if (cl->bev != NULL) {
        bufferevent_disable(cl->bev, EV_READ | EV_WRITE);
    }
    if (cl->rev != NULL) {
        event_del(cl->rev);
    }
}

/* The end: stop I/O and call the close handler, exactly once, with the
 * reason already in cl->reason. Must be the last thing its caller does
 * with CL (the handler may free it). */
static void
client_finish(wsh_client_t *cl, int code)
{
    char reason[sizeof(cl->reason)];

    if (cl->state == CLIENT_DONE) {
        return;
    }
    cl->state = CLIENT_DONE;
    client_stop_io(cl);
    evtimer_del(cl->timer);
    if (cl->h.close != NULL) {
        /* A copy: the handler may free CL and still read REASON. */
        memcpy(reason, cl->reason, sizeof(reason));
        cl->h.close(cl, code, reason, cl->arg);
    }
}

/* client_finish() with a reason formatted from FMT. */
static void
client_fail(wsh_client_t *cl, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
client_fail(wsh_client_t *cl, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cl->reason, sizeof(cl->reason), fmt, ap);
    va_end(ap);
    client_finish(cl, code);
}

/* Report from the timer, outside the API call that noticed the end. */
static void
client_finish_later(wsh_client_t *cl, int code, const char *reason)
{
    struct timeval tv = { 0, 0 };

    snprintf(cl->reason, sizeof(cl->reason), "%s", reason);
    cl->close_code = code;
    cl->deferred = true;
    client_stop_io(cl);
    evtimer_add(cl->timer, &tv);
}

static void
client_set_timer(wsh_client_t *cl, int sec)
{
    struct timeval tv = { sec, 0 };

    evtimer_add(cl->timer, &tv);
}

/* The OpenSSL error queue, or errno, as text for close reasons: "tls:
 * ..." for the first, the cause as strerror() words for the second. */
static const char *
client_io_error(wsh_client_t *cl, const char *prefix, char *buf, size_t len)
{
    unsigned long e;
    int err = EVUTIL_SOCKET_ERROR();

    if (cl->url.tls) {
        e = bufferevent_get_openssl_error(cl->bev);
        while (bufferevent_get_openssl_error(cl->bev) != 0) {
            /* drain the rest of the queue: the first error is the cause */
        }
        /* Library 0 is libevent passing SSL_ERROR_SYSCALL on: a socket
         * error, reported by errno like a plain connection's. */
        if (e != 0 && ERR_GET_LIB(e) != 0) {
            snprintf(buf, len, "tls: ");
            ERR_error_string_n(e, buf + 5, len - 5);
            return buf;
        }
    }
    snprintf(buf, len, "%s: %s", prefix,
             err ? evutil_socket_error_to_string(err) : "connection lost");
    return buf;
}

/* A socket bound to CL's source address for FAMILY, or -1 (none asked
 * for, or another family: the kernel chooses). The port is left to the
 * connect (IP_BIND_ADDRESS_NO_PORT), so that ports are chosen per
 * 4-tuple: many connections from several local addresses then cost the
 * kernel a short search each, not one over every port in use. */
static evutil_socket_t
client_source_socket(const wsh_client_t *cl, int family)
{
    const struct sockaddr_storage *src = cl->source;
    evutil_socket_t fd;
    int one = 1;

    if (src == NULL || src->ss_family != family) {
        return -1;
    }
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    (void) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                      sizeof(one));
    if (bind(fd, (const struct sockaddr *) src,
             family == AF_INET ? sizeof(struct sockaddr_in)
                               : sizeof(struct sockaddr_in6)) != 0)
    {
        close(fd);
        return -1;
    }
    return fd;
}

/* A new bufferevent connecting to address number cl->addr. */
static int
client_start(wsh_client_t *cl)
{
    u_char addr[sizeof(struct in6_addr)];
    evutil_socket_t fd, bound;
    SSL *ssl;
    int rc, one = 1;

    bound = client_source_socket(cl, cl->addrs[cl->addr].ss_family);
    if (cl->source != NULL && bound < 0
        && cl->source->ss_family == cl->addrs[cl->addr].ss_family)
    {
        return WSH_ERROR;       /* the asked address cannot be bound */
    }

    if (cl->url.tls) {
        ssl = SSL_new(cl->ssl_ctx);
        if (ssl == NULL) {
            return WSH_ERROR;
        }
        /* SNI, and the name the certificate must carry (RFC 6125); with
         * an --insecure context the result of the check is ignored. */
        if (inet_pton(AF_INET, cl->url.host, addr) == 1
            || inet_pton(AF_INET6, cl->url.host, addr) == 1)
        {
            /* No SNI for an address literal (RFC 6066 section 3). */
            rc = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                               cl->url.host);
        } else {
            SSL_set_tlsext_host_name(ssl, cl->url.host);
            rc = SSL_set1_host(ssl, cl->url.host);
        }
        if (rc != 1) {
            SSL_free(ssl);
            return WSH_ERROR;
        }
        cl->bev = bufferevent_openssl_socket_new(cl->base, bound, ssl,
                      BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
        if (cl->bev == NULL) {
            SSL_free(ssl);
            if (bound >= 0) {
                close(bound);
            }
            return WSH_ERROR;
        }
    } else {
        cl->bev = bufferevent_socket_new(cl->base, bound,
                                         BEV_OPT_CLOSE_ON_FREE);
        if (cl->bev == NULL) {
            if (bound >= 0) {
                close(bound);
            }
            return WSH_ERROR;
        }
    }
    bufferevent_setcb(cl->bev, client_read_cb, NULL, client_event_cb, cl);
    if (bufferevent_socket_connect(cl->bev,
            (struct sockaddr *) &cl->addrs[cl->addr],
            (int) cl->addrlen[cl->addr]) != 0)
    {
        bufferevent_free(cl->bev);
        cl->bev = NULL;
        return WSH_ERROR;
    }
    /* Frames are small and latency is what we measure: no Nagle delay
     * (with the peer's delayed ACK it adds up to 40 ms per message). */
    fd = bufferevent_getfd(cl->bev);
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
    return WSH_OK;
}

/* The request of RFC 6455 section 4.1, with a fresh 16-byte key. */
static int
client_send_request(wsh_client_t *cl)
{
    struct evbuffer *out = bufferevent_get_output(cl->bev);
    bool v6 = strchr(cl->url.host, ':') != NULL;
    bool dflt = strcmp(cl->url.port, cl->url.tls ? "443" : "80") == 0;

    return evbuffer_add_printf(out,
               "GET %s HTTP/1.1\r\n"
               "Host: %s%s%s%s%s\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "%s\r\n",
               cl->url.path, v6 ? "[" : "", cl->url.host, v6 ? "]" : "",
               dflt ? "" : ":", dflt ? "" : cl->url.port, cl->key,
               cl->extra_headers ? cl->extra_headers : "") < 0
           ? WSH_ERROR : WSH_OK;
}

wsh_client_t *
wsh_client_connect(struct event_base *base, const wsh_url_t *url,
    SSL_CTX *ssl_ctx, const char *extra_headers,
    const struct sockaddr_storage *source, const wsh_client_handlers_t *h,
    void *arg)
{
    struct addrinfo hints, *res = NULL, *ai;
    wsh_client_t *cl;
    u_char seed[24];

    if (url->tls && ssl_ctx == NULL) {
        return NULL;
    }
    cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        return NULL;
    }
    cl->base = base;
    cl->ssl_ctx = ssl_ctx;
    cl->h = *h;
    cl->arg = arg;
    cl->url = *url;
    cl->source = source;
    cl->close_code = 1006;
    wsh_ws_init_client(&cl->ws, CLIENT_MAX_MESSAGE);

    if (extra_headers != NULL && *extra_headers != '\0') {
        cl->extra_headers = strdup(extra_headers);
        if (cl->extra_headers == NULL) {
            goto failed;
        }
    }

    /* One getrandom() per connection: 16 bytes of key, 8 of PRNG seed. */
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t) sizeof(seed)) {
        goto failed;
    }
    EVP_EncodeBlock((u_char *) cl->key, seed, 16);
    memcpy(&cl->rng, seed + 16, 8);
    cl->rng |= 1;               /* xorshift state must not be zero */

    /* Resolve here, synchronously: a failure is an immediate one. An
     * address literal (the usual case for a load generator) is taken as
     * it is: AI_ADDRCONFIG asks the kernel for the interfaces each time,
     * a tenth of the generator's handshakes. */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(url->host, url->port, &hints, &res) != 0) {
        hints.ai_flags = AI_ADDRCONFIG;
        if (getaddrinfo(url->host, url->port, &hints, &res) != 0) {
            goto failed;
        }
    }
    for (ai = res; ai != NULL && cl->naddrs < CLIENT_MAX_ADDRS;
         ai = ai->ai_next)
    {
        if (ai->ai_addrlen > sizeof(cl->addrs[0])) {
            continue;
        }
        memcpy(&cl->addrs[cl->naddrs], ai->ai_addr, ai->ai_addrlen);
        cl->addrlen[cl->naddrs++] = ai->ai_addrlen;
    }
    freeaddrinfo(res);
    if (cl->naddrs == 0) {
        goto failed;
    }

    cl->timer = evtimer_new(base, client_timer_cb, cl);
    if (cl->timer == NULL) {
        goto failed;
    }
    if (client_start(cl) != WSH_OK) {
        goto failed;
    }
    client_set_timer(cl, CLIENT_HANDSHAKE_SEC);
    return cl;

failed:
    if (cl->timer != NULL) {
        event_free(cl->timer);
    }
    free((char *) cl->extra_headers);
    free(cl);
    return NULL;
}

/* Check the response head (section 4.1, the client's steps 1-4 of
 * validating the server's response). Returns WSH_OK or WSH_ERROR with
 * the reason already in cl->reason. */
static int
client_check_response(wsh_client_t *cl, char *head, size_t len)
{
    char expect[WSH_WS_ACCEPT_LEN + 1], *line, *next, *colon, *v, *end;
    bool upgrade = false, connection = false, accept = false;
    int status;

    head[len] = '\0';
    next = strstr(head, "\r\n");
    *next = '\0';
    next += 2;
    if (strncmp(head, "HTTP/1.1 ", 9) != 0 || strlen(head) < 12) {
        snprintf(cl->reason, sizeof(cl->reason),
                 "handshake: not an HTTP/1.1 response");
        return WSH_ERROR;
    }
    status = atoi(head + 9);
    if (status != 101) {
        snprintf(cl->reason, sizeof(cl->reason), "handshake: HTTP %.60s",
                 head + 9);
        return WSH_ERROR;
    }

    wsh_handshake_accept(cl->key, 24, expect);
    while (*next != '\0') {
        line = next;
        next = strstr(line, "\r\n");
        if (next == NULL) {
            break;
        }
        *next = '\0';
        next += 2;
        colon = strchr(line, ':');
        if (colon == NULL) {
            continue;
        }
        *colon = '\0';
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++) {
            /* skip OWS */
        }
        for (end = v + strlen(v); end > v && (end[-1] == ' '
             || end[-1] == '\t'); end--)
        {
            /* trim OWS */
        }
        *end = '\0';
        if (strcasecmp(line, "Upgrade") == 0) {
            upgrade = strcasecmp(v, "websocket") == 0;
        } else if (strcasecmp(line, "Connection") == 0) {
            connection = strcasestr(v, "upgrade") != NULL;
        } else if (strcasecmp(line, "Sec-WebSocket-Accept") == 0) {
            accept = strcmp(v, expect) == 0;
        } else if (strcasecmp(line, "Sec-WebSocket-Extensions") == 0
                   && cl->deflate == NULL && cl->extra_headers != NULL
                   && strcasestr(cl->extra_headers, "permessage-deflate")
                   && wsh_deflate_client_new(v, strlen(v), &cl->deflate)
                      == WSH_OK)
        {
            /* Offered through the extra headers (wshub-bench --deflate). */
            wsh_ws_allow_rsv1(&cl->ws);
        } else if (strcasecmp(line, "Sec-WebSocket-Extensions") == 0
                   || strcasecmp(line, "Sec-WebSocket-Protocol") == 0)
        {
            /* We offered neither: section 4.1, steps 5 and 6. */
            snprintf(cl->reason, sizeof(cl->reason),
                     "handshake: unrequested %s", line);
            return WSH_ERROR;
        }
    }
    if (!upgrade || !connection) {
        snprintf(cl->reason, sizeof(cl->reason),
                 "handshake: missing Upgrade/Connection headers");
        return WSH_ERROR;
    }
    if (!accept) {
        snprintf(cl->reason, sizeof(cl->reason),
                 "handshake: wrong Sec-WebSocket-Accept");
        return WSH_ERROR;
    }
    return WSH_OK;
}

/* Parse the 101 once its head is complete. Returns WSH_OK (open),
 * WSH_AGAIN (need more) or WSH_ERROR (handler called, CL may be gone). */
static int
client_read_response(wsh_client_t *cl, struct evbuffer *in)
{
    struct evbuffer_ptr ptr;
    char *head;
    size_t len;

    ptr = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (ptr.pos < 0) {
        if (evbuffer_get_length(in) > CLIENT_MAX_RESPONSE) {
            client_fail(cl, 1006, "handshake: response head too large");
            return WSH_ERROR;
        }
        return WSH_AGAIN;
    }
    len = (size_t) ptr.pos + 4;
    if (len > CLIENT_MAX_RESPONSE) {
        client_fail(cl, 1006, "handshake: response head too large");
        return WSH_ERROR;
    }
    head = malloc(len + 1);
    if (head == NULL) {
        client_fail(cl, 1006, "handshake: out of memory");
        return WSH_ERROR;
    }
    evbuffer_remove(in, head, len);
    if (client_check_response(cl, head, len) != WSH_OK) {
        free(head);
        client_finish(cl, 1006);
        return WSH_ERROR;
    }
    free(head);
    cl->state = CLIENT_OPEN;
    evtimer_del(cl->timer);
    return WSH_OK;
}

/* Our close frame: CODE (none when 1005) and REASON. */
static void
client_send_close(wsh_client_t *cl, int code, const char *reason)
{
    u_char buf[WSH_WS_CONTROL_MAX];
    size_t n = 0, rlen;

    if (code != 1005 && code != 0) {
        buf[0] = (u_char) (code >> 8);
        buf[1] = (u_char) code;
        n = 2;
        rlen = reason ? strlen(reason) : 0;
        if (rlen > sizeof(buf) - 2) {
            rlen = sizeof(buf) - 2;
        }
        if (rlen > 0) {
            memcpy(buf + 2, reason, rlen);
        }
        n += rlen;
    }
    client_write_frame(cl, WSH_WS_OP_CLOSE, buf, n);
}

/* One parser event. Returns WSH_OK to go on, WSH_ERROR when the handler
 * was called (CL may be gone). */
static int
client_event(wsh_client_t *cl, wsh_ws_event_t *ev)
{
    const char *why;
    u_char *data;
    size_t len;

    switch (ev->type) {
    case WSH_WS_EV_MESSAGE:
        if (ev->compressed) {
            if (wsh_deflate_inflate(cl->deflate, ev->data, ev->len,
                                    CLIENT_MAX_MESSAGE,
                                    ev->opcode == WSH_WS_OP_TEXT, &data, &len,
                                    &why) != 0)
            {
                client_fail(cl, 1006, "permessage-deflate: %s", why);
                return WSH_ERROR;
            }
            ev->data = data;
            ev->len = len;
        }
        if (cl->h.message != NULL && cl->state != CLIENT_CLOSE_RECEIVED) {
            cl->h.message(cl, ev->opcode, ev->data, ev->len, cl->arg);
        }
        return cl->state == CLIENT_DONE ? WSH_ERROR : WSH_OK;

    case WSH_WS_EV_PING:
        if (cl->state == CLIENT_OPEN) {
            client_write_frame(cl, WSH_WS_OP_PONG, ev->data, ev->len);
        }
        return WSH_OK;

    case WSH_WS_EV_PONG:
        return WSH_OK;

    default:
        break;
    }

    /* Close (section 5.5.1): answer with the same code unless ours is
     * out already, then let the server close TCP first (section 7.1.1). */
    cl->close_code = ev->code;
    snprintf(cl->reason, sizeof(cl->reason), "close %d%s%.*s", ev->code,
             ev->len ? ": " : "", (int) ev->len, (char *) ev->data);
    if (cl->state == CLIENT_OPEN) {
        client_send_close(cl, ev->code, NULL);
    }
    cl->state = CLIENT_CLOSE_RECEIVED;
    client_set_timer(cl, CLIENT_CLOSE_SEC);
    return WSH_OK;
}

/* Parse [*pos, last) up to its end or a close frame. Returns WSH_OK, or
 * WSH_ERROR when the handler was called (CL may be gone). */
static int
client_parse(wsh_client_t *cl, u_char **pos, u_char *last)
{
    wsh_ws_event_t ev;
    int rc;

    while (*pos < last) {
        rc = wsh_ws_parse(&cl->ws, pos, last, &ev);
        if (rc == WSH_AGAIN) {
            break;
        }
        if (rc == WSH_ERROR) {
            if (cl->state == CLIENT_OPEN) {
                client_send_close(cl, ev.code, NULL);
            }
            client_fail(cl, 1006, "protocol: %s (%d)", ev.error, ev.code);
            return WSH_ERROR;
        }
        if (client_event(cl, &ev) != WSH_OK) {
            return WSH_ERROR;
        }
        if (cl->state == CLIENT_CLOSE_RECEIVED) {
            break;
        }
    }
    return WSH_OK;
}

/* Feed everything buffered to the frame parser, chunk by chunk, without
 * pulling the input into one contiguous block. */
static void
client_read_frames(wsh_client_t *cl, struct evbuffer *in)
{
    struct evbuffer_iovec vec[8];
    u_char *p;
    size_t used;
    int n, i;

    while (evbuffer_get_length(in) > 0) {
        if (cl->state == CLIENT_CLOSE_RECEIVED) {
            /* Nothing may follow a close frame (section 5.5.1). */
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        n = evbuffer_peek(in, -1, NULL, vec, 8);
        if (n > 8) {
            n = 8;
        }
        used = 0;
        for (i = 0; i < n; i++) {
            p = vec[i].iov_base;
            if (client_parse(cl, &p, p + vec[i].iov_len) != WSH_OK) {
                return;
            }
            used += (size_t) (p - (u_char *) vec[i].iov_base);
        }
        evbuffer_drain(in, used);
    }
}

/* A plain connection once open: one read into the thread's buffer, its
 * messages parsed in place. */
static void
client_direct_read_cb(evutil_socket_t fd, short what, void *arg)
{
    static _Thread_local u_char buf[CLIENT_READ_SIZE];
    wsh_client_t *cl = arg;
    u_char *p = buf;
    ssize_t n;

    n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK
                      || errno == EINTR))
        {
            return;
        }
        client_io_end(cl, n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR);
        return;
    }
    if (cl->state == CLIENT_CLOSE_RECEIVED) {
        return;     /* nothing may follow a close frame: wait for EOF */
    }
    if (cl->h.read != NULL) {
        cl->h.read(cl, cl->arg);
        if (cl->state == CLIENT_DONE) {
            return;
        }
    }
    (void) client_parse(cl, &p, buf + n);
}

/* Open, plain and nothing left in the bufferevent's input: from now on
 * reads are ours (if the event cannot be made, the bufferevent goes on
 * doing them). */
static void
client_go_direct(wsh_client_t *cl)
{
    if (cl->url.tls || cl->state != CLIENT_OPEN || cl->rev != NULL) {
        return;
    }
    cl->rev = event_new(cl->base, bufferevent_getfd(cl->bev),
                        EV_READ | EV_PERSIST, client_direct_read_cb, cl);
    if (cl->rev == NULL) {
        return;
    }
    if (event_add(cl->rev, NULL) != 0) {
        event_free(cl->rev);
        cl->rev = NULL;
        return;
    }
    bufferevent_disable(cl->bev, EV_READ);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
    wsh_client_t *cl = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (cl->state == CLIENT_DONE) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (cl->state == CLIENT_CONNECTING || cl->state == CLIENT_HANDSHAKE) {
        if (client_read_response(cl, in) != WSH_OK) {
            return;
        }
        if (cl->h.open != NULL) {
            cl->h.open(cl, cl->arg);
            if (cl->state == CLIENT_DONE) {
                return;
            }
        }
    }
    if (cl->h.read != NULL) {
        cl->h.read(cl, cl->arg);
    }
    client_read_frames(cl, in);
    client_go_direct(cl);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    wsh_client_t *cl = arg;

    if (what & BEV_EVENT_CONNECTED) {
        if (cl->state == CLIENT_CONNECTING) {
            cl->state = CLIENT_HANDSHAKE;
            if (client_send_request(cl) != WSH_OK) {
                client_fail(cl, 1006, "handshake: out of memory");
            }
        }
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        client_io_end(cl, what);
    }
}

/* EOF or a socket error (BEV_EVENT_*), from the bufferevent or from a
 * direct read: what it means depends on how far the connection got. */
static void
client_io_end(wsh_client_t *cl, short what)
{
    char buf[160];
    const char *why;

    if (cl->state == CLIENT_CONNECTING) {
        why = client_io_error(cl, "connect", buf, sizeof(buf));
        /* Next address (e.g. "localhost" -> ::1 refused, 127.0.0.1 not). */
        if (cl->addr + 1 < cl->naddrs) {
            bufferevent_free(cl->bev);
            cl->bev = NULL;
            cl->addr++;
            if (client_start(cl) == WSH_OK) {
                return;
            }
        }
        client_fail(cl, 1006, "%s", why);
        return;
    }
    if (cl->state == CLIENT_HANDSHAKE) {
        why = (what & BEV_EVENT_EOF)
              ? "handshake: connection closed by the server"
              : client_io_error(cl, "handshake", buf, sizeof(buf));
        client_fail(cl, 1006, "%s", why);
        return;
    }
    if (cl->state == CLIENT_CLOSE_RECEIVED) {
        client_finish(cl, cl->close_code);
        return;
    }
    why = (what & BEV_EVENT_EOF)
          ? "eof: connection closed without a close frame"
          : client_io_error(cl, "io", buf, sizeof(buf));
    client_fail(cl, 1006, "%s", why);
}

static void
client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    wsh_client_t *cl = arg;

    if (cl->deferred) {
        client_finish(cl, cl->close_code);
        return;
    }
    switch (cl->state) {
    case CLIENT_CONNECTING:
        client_fail(cl, 1006, cl->url.tls ? "timeout: connect or TLS handshake"
                                          : "timeout: connect");
        break;
    case CLIENT_HANDSHAKE:
        client_fail(cl, 1006, "timeout: handshake");
        break;
    case CLIENT_CLOSE_SENT:
        client_fail(cl, 1006, "timeout: no close frame from the server");
        break;
    case CLIENT_CLOSE_RECEIVED:
        /* The server did not close TCP: we do (section 7.1.1 allows). */
        client_finish(cl, cl->close_code);
        break;
    default:
        break;
    }
}

int
wsh_client_send(wsh_client_t *cl, int opcode, const void *data, size_t len)
{
    if (cl->state != CLIENT_OPEN) {
        return WSH_ERROR;
    }
    return client_write_frame(cl, opcode, data, len);
}

/* Close frame with CODE and REASON when open, then wait for the
 * server's close (up to 5 s); before the handshake ends, give up at once
 * (the close handler follows from the event loop, with code 1006). */
void
wsh_client_close(wsh_client_t *cl, int code, const char *reason)
{
    switch (cl->state) {
    case CLIENT_CONNECTING:
    case CLIENT_HANDSHAKE:
        if (!cl->deferred) {
            client_finish_later(cl, 1006, "closed before the handshake "
                                "completed");
        }
        break;
    case CLIENT_OPEN:
        client_send_close(cl, code, reason);
        cl->state = CLIENT_CLOSE_SENT;
        client_set_timer(cl, CLIENT_CLOSE_SEC);
        break;
    default:
        break;
    }
}

size_t
wsh_client_pending(const wsh_client_t *cl)
{
    if (cl->bev == NULL) {
        return 0;
    }
    return evbuffer_get_length(bufferevent_get_output(cl->bev));
}

/* Release everything; the socket is closed without a closing handshake
 * when the close handler has not run yet (the handler is then never
 * called). */
void
wsh_client_free(wsh_client_t *cl)
{
    if (cl == NULL) {
        return;
    }
    if (cl->rev != NULL) {
        event_free(cl->rev);
    }
    if (cl->bev != NULL) {
        bufferevent_free(cl->bev);
    }
    if (cl->timer != NULL) {
        event_free(cl->timer);
    }
    free(cl->ws.buf);
    wsh_deflate_free(cl->deflate);
    free((char *) cl->extra_headers);
    free(cl);
}

SSL_CTX *
wsh_client_ssl_ctx(bool insecure)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}
