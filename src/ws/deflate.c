/* deflate.c -- permessage-deflate (RFC 7692): negotiation and codec.
 *
 * Offers are parsed with the extension grammar of RFC 6455 section 9.1
 * (tokens, quoted values); an offer with an unknown, duplicate or invalid
 * parameter is declined and the next one tried (section 5.1).
 *
 * Messages are (de)compressed whole, once complete, so a stream is never
 * held across loop turns and the worker-wide streams of the no context
 * takeover case can serve every connection in turn. Inflating writes into
 * a buffer that never grows past max_message_size + 1 bytes: a small
 * message that inflates to gigabytes ("zip bomb") costs that much and is
 * failed with 1009.
 */
#include "ws/deflate.h"
#include "ws/utf8.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#define DEFLATE_NAME      "permessage-deflate"
#define DEFLATE_VALUE_MAX 16

struct wsh_deflate_s {
    const wsh_conf_deflate_t *cf;
    wsh_deflate_params_t      p;
    z_stream                 *tx;   /* own streams, context takeover only */
    z_stream                 *rx;
};

/* One offer while its parameters are read. */
typedef struct {
    unsigned    seen;               /* bit per parameter name */
    bool        bad;
    bool        snct;
    bool        cnct;
    int         server_bits;        /* 0: not offered */
    int         client_bits;        /* -1: not offered, 0: without value */
} deflate_offer_t;

enum {
    P_SNCT = 1, P_CNCT = 2, P_SMWB = 4, P_CMWB = 8
};

/* Worker-wide streams for connections without context takeover: one
 * compressor per window size, one inflater (a 15-bit window reads any
 * smaller one). Buffers for the last result of each direction. Per
 * thread: wshub-bench inflates in several. */
static _Thread_local z_stream *deflate_pool[16];
static _Thread_local z_stream *inflate_pool;
static _Thread_local u_char   *deflate_out, *inflate_out;
static _Thread_local size_t    deflate_cap, inflate_cap;

static bool
deflate_tchar(u_char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
           || (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static const char *
deflate_ows(const char *p, const char *last)
{
    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }
    return p;
}

static const char *
deflate_token(const char *p, const char *last)
{
    while (p < last && *p != '\0' && deflate_tchar((u_char) *p)) {
        p++;
    }
    return p;
}

/* A value: token or quoted-string, unquoted into val (cut, and then
 * marked too long, past DEFLATE_VALUE_MAX). NULL on a syntax error. */
static const char *
deflate_value(const char *p, const char *last, char *val, size_t *vlen)
{
    const char *start = p;
    size_t n = 0;

    if (p < last && *p == '"') {
        for (p++; p < last && *p != '"'; p++) {
            if (*p == '\\' && ++p == last) {
                return NULL;
            }
            if (n < DEFLATE_VALUE_MAX) {
                val[n] = *p;
            }
            n++;
        }
        if (p == last) {
            return NULL;
        }
        *vlen = n;
        return p + 1;
    }
    p = deflate_token(p, last);
    if (p == start) {
        return NULL;
    }
    n = (size_t) (p - start);
    memcpy(val, start, n < DEFLATE_VALUE_MAX ? n : DEFLATE_VALUE_MAX);
    *vlen = n;
    return p;
}

/* A window size value: 8..15 without leading zeros (section 7.1.2). */
static int
deflate_bits(const char *v, size_t len)
{
    if (len == 1 && (v[0] == '8' || v[0] == '9')) {
        return v[0] - '0';
    }
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') {
        return 10 + v[1] - '0';
    }
    return -1;
}

static void
deflate_param(deflate_offer_t *o, const char *name, size_t nlen,
    const char *val, size_t vlen, bool has_value)
{
    static const char *names[] = {
        "server_no_context_takeover", "client_no_context_takeover",
        "server_max_window_bits", "client_max_window_bits"
    };
    unsigned i, bit;
    int bits;

    for (i = 0; i < wsh_nelems(names); i++) {
        if (strlen(names[i]) == nlen && strncasecmp(names[i], name, nlen) == 0)
        {
            break;
        }
    }
    if (i == wsh_nelems(names)) {
        o->bad = true;          /* unknown parameter (section 5.1) */
        return;
    }
    bit = 1u << i;
    if (o->seen & bit) {
        o->bad = true;          /* duplicate parameter */
        return;
    }
    o->seen |= bit;
    bits = has_value ? deflate_bits(val, vlen) : 0;
    switch (bit) {
    case P_SNCT:
    case P_CNCT:
        if (has_value) {
            o->bad = true;
        } else if (bit == P_SNCT) {
            o->snct = true;
        } else {
            o->cnct = true;
        }
        break;
    case P_SMWB:
        if (bits <= 0) {
            o->bad = true;      /* a value is mandatory (7.1.2.1) */
        }
        o->server_bits = bits;
        break;
    default:
        if (bits < 0) {
            o->bad = true;
        }
        o->client_bits = bits;
        break;
    }
}

/* Accept offer O under CF if we can honour it. */
static int
deflate_offer_accept(const wsh_conf_deflate_t *cf, const deflate_offer_t *o,
    wsh_deflate_params_t *p)
{
    unsigned bits = cf->window_bits;

    memset(p, 0, sizeof(*p));
    if (o->server_bits != 0) {
        /* zlib cannot compress with an 8-bit window: decline, a later
         * offer of the same client may well be acceptable. */
        if (o->server_bits < 9) {
            return WSH_DECLINED;
        }
        if ((unsigned) o->server_bits < bits) {
            bits = (unsigned) o->server_bits;
        }
    }
    p->server_bits = (uint8_t) bits;
    p->server_bits_sent = o->server_bits != 0 || bits < 15;

    /* Section 7.1.2.2: client_max_window_bits only if it was offered;
     * a client that did not offer it may use 15 bits. */
    p->client_bits = 15;
    if (o->client_bits >= 0) {
        bits = cf->client_window_bits;
        if (o->client_bits > 0 && (unsigned) o->client_bits < bits) {
            bits = (unsigned) o->client_bits;
        }
        p->client_bits = (uint8_t) bits;
        p->client_bits_sent = 1;
    }
    /* Either side may always ask for no context takeover (7.1.1). */
    p->server_no_context_takeover = o->snct || !cf->server_context_takeover;
    p->client_no_context_takeover = o->cnct || !cf->client_context_takeover;
    return WSH_OK;
}

int
wsh_deflate_accept(const wsh_conf_deflate_t *cf, const char *list,
    size_t len, wsh_deflate_params_t *p)
{
    const char *last = list + len, *pos = list, *name, *pname, *q;
    char val[DEFLATE_VALUE_MAX];
    deflate_offer_t o;
    size_t nlen, plen, vlen;
    bool ours, has_value;

    for (;;) {
        /* Empty list elements are allowed (RFC 7230 section 7). */
        while (pos < last && (*pos == ',' || *pos == ' ' || *pos == '\t')) {
            pos++;
        }
        if (pos == last) {
            return WSH_DECLINED;
        }
        name = pos;
        pos = deflate_token(pos, last);
        nlen = (size_t) (pos - name);
        if (nlen == 0) {
            return WSH_DECLINED;
        }
        ours = nlen == sizeof(DEFLATE_NAME) - 1
               && strncasecmp(name, DEFLATE_NAME, nlen) == 0;
        memset(&o, 0, sizeof(o));
        o.client_bits = -1;
        pos = deflate_ows(pos, last);
        while (pos < last && *pos == ';') {
            pos = deflate_ows(pos + 1, last);
            pname = pos;
            pos = deflate_token(pos, last);
            plen = (size_t) (pos - pname);
            if (plen == 0) {
                return WSH_DECLINED;
            }
            pos = deflate_ows(pos, last);
            has_value = pos < last && *pos == '=';
            vlen = 0;
            if (has_value) {
                q = deflate_value(deflate_ows(pos + 1, last), last, val,
                                  &vlen);
                if (q == NULL) {
                    return WSH_DECLINED;
                }
                pos = deflate_ows(q, last);
            }
            if (ours) {
                deflate_param(&o, pname, plen, val,
                              vlen <= DEFLATE_VALUE_MAX ? vlen : 0, has_value);
            }
        }
        if (pos < last && *pos != ',') {
            return WSH_DECLINED;        /* malformed: trust none of it */
        }
        if (ours && !o.bad && deflate_offer_accept(cf, &o, p) == WSH_OK) {
            return WSH_OK;
        }
    }
}

size_t
wsh_deflate_response(const wsh_deflate_params_t *p, char *out)
{
    size_t n = 0;

    n += (size_t) snprintf(out + n, WSH_DEFLATE_RESPONSE_MAX - n, "%s",
                           DEFLATE_NAME);
    if (p->server_no_context_takeover) {
        n += (size_t) snprintf(out + n, WSH_DEFLATE_RESPONSE_MAX - n,
                               "; server_no_context_takeover");
    }
    if (p->client_no_context_takeover) {
        n += (size_t) snprintf(out + n, WSH_DEFLATE_RESPONSE_MAX - n,
                               "; client_no_context_takeover");
    }
    if (p->server_bits_sent) {
        n += (size_t) snprintf(out + n, WSH_DEFLATE_RESPONSE_MAX - n,
                               "; server_max_window_bits=%u", p->server_bits);
    }
    if (p->client_bits_sent) {
        n += (size_t) snprintf(out + n, WSH_DEFLATE_RESPONSE_MAX - n,
                               "; client_max_window_bits=%u", p->client_bits);
    }
    return n;
}

wsh_deflate_t *
wsh_deflate_new(const wsh_deflate_params_t *p, const wsh_conf_deflate_t *cf)
{
    wsh_deflate_t *d = calloc(1, sizeof(*d));

    if (d != NULL) {
        d->cf = cf;
        d->p = *p;
    }
    return d;
}

int
wsh_deflate_client_new(const char *response, size_t len, wsh_deflate_t **d)
{
    /* A response has the syntax of an offer: accept it as one under a
     * policy that takes anything, then swap the roles, since the client
     * inflates what the server compressed. */
    static const wsh_conf_deflate_t any = {
        true, 1, 0, 15, 15, 8, true, true
    };
    wsh_deflate_params_t p, rx;

    if (wsh_deflate_accept(&any, response, len, &p) != WSH_OK) {
        return WSH_ERROR;
    }
    memset(&rx, 0, sizeof(rx));
    rx.client_bits = p.server_bits;
    rx.client_no_context_takeover = p.server_no_context_takeover;
    *d = wsh_deflate_new(&rx, &any);
    return *d != NULL ? WSH_OK : WSH_ERROR;
}

void
wsh_deflate_free(wsh_deflate_t *d)
{
    if (d == NULL) {
        return;
    }
    if (d->tx != NULL) {
        deflateEnd(d->tx);
        free(d->tx);
    }
    if (d->rx != NULL) {
        inflateEnd(d->rx);
        free(d->rx);
    }
    free(d);
}

void
wsh_deflate_thread_done(void)
{
    size_t i;

    for (i = 0; i < wsh_nelems(deflate_pool); i++) {
        if (deflate_pool[i] != NULL) {
            deflateEnd(deflate_pool[i]);
            free(deflate_pool[i]);
            deflate_pool[i] = NULL;
        }
    }
    if (inflate_pool != NULL) {
        inflateEnd(inflate_pool);
        free(inflate_pool);
        inflate_pool = NULL;
    }
    free(deflate_out);
    free(inflate_out);
    deflate_out = inflate_out = NULL;
    deflate_cap = inflate_cap = 0;
}

bool
wsh_deflate_shareable(const wsh_deflate_t *d)
{
    return d->p.server_no_context_takeover
           && d->p.server_bits == d->cf->window_bits;
}

/* Grow *buf to at least NEED bytes (at most LIMIT). */
static int
deflate_grow(u_char **buf, size_t *cap, size_t need, size_t limit)
{
    size_t n = *cap ? *cap : 4096;
    u_char *p;

    while (n < need) {
        n *= 2;
    }
    if (n > limit) {
        n = limit;
    }
    if (n <= *cap) {
        return WSH_OK;
    }
    p = realloc(*buf, n);
    if (p == NULL) {
        return WSH_ERROR;
    }
    *buf = p;
    *cap = n;
    return WSH_OK;
}

/* The inflate stream for a message of D: its own (allocated on first
 * use) or the worker's. NULL when out of memory. */
static z_stream *
deflate_rx(wsh_deflate_t *d)
{
    z_stream **zp = d->p.client_no_context_takeover ? &inflate_pool : &d->rx;
    /* A client told 8 bits (it offered 8) but built on zlib really uses
     * 9: a 9-bit window reads both. */
    int bits = d->p.client_no_context_takeover ? 15
               : d->p.client_bits < 9 ? 9 : d->p.client_bits;

    if (*zp == NULL) {
        *zp = calloc(1, sizeof(z_stream));
        if (*zp == NULL) {
            return NULL;
        }
        if (inflateInit2(*zp, -bits) != Z_OK) {
            free(*zp);
            *zp = NULL;
            return NULL;
        }
    }
    return *zp;
}

int
wsh_deflate_inflate(wsh_deflate_t *d, const u_char *in, size_t len,
    size_t max, bool text, u_char **out, size_t *outlen, const char **why)
{
    /* Section 7.2.2: the sender removed this empty block's tail. */
    static const u_char tail[4] = { 0x00, 0x00, 0xff, 0xff };
    z_stream *z = deflate_rx(d);
    size_t n = 0;
    bool tail_in = false;
    int rc, code = 0;

    *why = NULL;
    if (z == NULL) {
        *why = "out of memory for an inflate stream";
        return 1011;
    }
    z->next_in = (u_char *) in;
    z->avail_in = (uInt) len;
    for (;;) {
        if (z->avail_in == 0 && !tail_in) {
            z->next_in = (u_char *) tail;
            z->avail_in = sizeof(tail);
            tail_in = true;
        }
        if (n == inflate_cap) {
            if (inflate_cap > max
                || deflate_grow(&inflate_out, &inflate_cap, n + 1, max + 1)
                   != WSH_OK)
            {
                code = inflate_cap > max ? 1009 : 1011;
                *why = code == 1009 ? "message inflates past max_message_size"
                                    : "out of memory inflating a message";
                break;
            }
        }
        z->next_out = inflate_out + n;
        z->avail_out = (uInt) (inflate_cap - n);
        rc = inflate(z, Z_SYNC_FLUSH);
        n = inflate_cap - z->avail_out;
        if (n > max) {
            code = 1009;
            *why = "message inflates past max_message_size";
            break;
        }
        if (rc == Z_STREAM_END) {
            /* A final block ends the stream: the next message starts a
             * new one. */
            inflateReset(z);
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            code = rc == Z_MEM_ERROR ? 1011 : 1007;
            *why = code == 1011 ? "out of memory inflating a message"
                                : "invalid deflate data";
            break;
        }
        if (tail_in && z->avail_in == 0 && z->avail_out > 0) {
            break;
        }
    }
    if (code != 0 || d->p.client_no_context_takeover) {
        inflateReset(z);
    }
    if (code == 0 && text
        && wsh_utf8_validate(WSH_UTF8_ACCEPT, inflate_out, n)
           != WSH_UTF8_ACCEPT)
    {
        code = 1007;
        *why = "invalid UTF-8 in a compressed text message";
    }
    *out = inflate_out;
    *outlen = n;
    return code;
}

/* The compressor for D: its own or the worker's for its window. */
static z_stream *
deflate_tx(wsh_deflate_t *d)
{
    z_stream **zp = d->p.server_no_context_takeover
                    ? &deflate_pool[d->p.server_bits] : &d->tx;

    if (*zp == NULL) {
        *zp = calloc(1, sizeof(z_stream));
        if (*zp == NULL) {
            return NULL;
        }
        if (deflateInit2(*zp, (int) d->cf->level, Z_DEFLATED,
                         -(int) d->p.server_bits, (int) d->cf->mem_level,
                         Z_DEFAULT_STRATEGY) != Z_OK)
        {
            free(*zp);
            *zp = NULL;
            return NULL;
        }
    }
    return *zp;
}

int
wsh_deflate_compress(wsh_deflate_t *d, const u_char *in, size_t len,
    u_char **out, size_t *outlen)
{
    z_stream *z;
    size_t n = 0;
    int rc;

    /* Empty: nothing to gain, and zlib emits nothing for an empty sync
     * flush right after another one. */
    if (len == 0 || len < d->cf->min_size) {
        return WSH_DECLINED;
    }
    z = deflate_tx(d);
    if (z == NULL
        || deflate_grow(&deflate_out, &deflate_cap, deflateBound(z, len) + 16,
                        SIZE_MAX) != WSH_OK)
    {
        wsh_log(WSH_LOG_ALERT, "out of memory for deflate");
        return WSH_ERROR;
    }
    z->next_in = (u_char *) in;
    z->avail_in = (uInt) len;
    do {
        if (n == deflate_cap
            && deflate_grow(&deflate_out, &deflate_cap, n + 1, SIZE_MAX)
               != WSH_OK)
        {
            wsh_log(WSH_LOG_ALERT, "out of memory for deflate");
            deflateReset(z);
            return WSH_ERROR;
        }
        z->next_out = deflate_out + n;
        z->avail_out = (uInt) (deflate_cap - n);
        rc = deflate(z, Z_SYNC_FLUSH);
        n = deflate_cap - z->avail_out;
    } while (rc == Z_OK && z->avail_out == 0);

    /* Section 7.2.1: drop the 00 00 ff ff of the final empty block. */
    wsh_assert(n >= 4);
    n -= 4;
    if (d->p.server_no_context_takeover) {
        deflateReset(z);
        if (n >= len) {
            return WSH_DECLINED;    /* incompressible: send it as is */
        }
    }
    *out = deflate_out;
    *outlen = n;
    return WSH_OK;
}
