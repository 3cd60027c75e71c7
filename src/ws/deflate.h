/* deflate.h -- permessage-deflate (RFC 7692): negotiation and codec.
 *
 * Negotiation is pure: the offers of one Sec-WebSocket-Extensions value
 * in (net/handshake.c hands it each header of a request), the accepted
 * parameters and the response header out.
 *
 * The codec works on whole messages. Without context takeover (the
 * default in both directions) a connection owns no zlib state at all:
 * every message is (de)compressed with one stream per worker, reset after
 * each use, so an idle compressed connection costs only its
 * wsh_deflate_t. With context takeover the connection's own streams are
 * allocated on its first message and kept.
 */
#ifndef WSH_DEFLATE_H
#define WSH_DEFLATE_H

#include "core/core.h"
#include "core/conf.h"

/* What was agreed with one client. */
typedef struct {
    uint8_t     server_bits;        /* our window: 9..15 */
    uint8_t     client_bits;        /* the client's: 8..15 */
    uint8_t     server_no_context_takeover:1;
    uint8_t     client_no_context_takeover:1;
    uint8_t     server_bits_sent:1; /* in the response */
    uint8_t     client_bits_sent:1;
} wsh_deflate_params_t;

typedef struct wsh_deflate_s wsh_deflate_t;

/* Room for the longest response header value. */
#define WSH_DEFLATE_RESPONSE_MAX 160

/* Judge the offers of one Sec-WebSocket-Extensions value (a list, as
 * several headers join into one). Returns WSH_OK with the first
 * acceptable permessage-deflate offer's parameters in *p, or
 * WSH_DECLINED: no such offer, each had an unknown, duplicate or invalid
 * parameter, asked for a window we cannot use, or the list is malformed.
 * Pure; any process. */
int wsh_deflate_accept(const wsh_conf_deflate_t *cf, const char *list,
    size_t len, wsh_deflate_params_t *p);

/* Write the response header value for P into out (NUL-terminated, at
 * most WSH_DEFLATE_RESPONSE_MAX bytes); returns its length. */
size_t wsh_deflate_response(const wsh_deflate_params_t *p, char *out);

/* The client side (src/tools): a codec in *d that inflates what a
 * server compresses under its RESPONSE header value (it never
 * compresses). WSH_ERROR when the response is not a valid
 * permessage-deflate answer, or out of memory. */
int wsh_deflate_client_new(const char *response, size_t len,
    wsh_deflate_t **d);

/* A connection's codec for P under CF (which must outlive it); NULL on
 * ENOMEM. Freed with wsh_deflate_free(). */
wsh_deflate_t *wsh_deflate_new(const wsh_deflate_params_t *p,
    const wsh_conf_deflate_t *cf);
void wsh_deflate_free(wsh_deflate_t *d);

/* Inflate one received message of LEN bytes at IN. Returns 0 with the
 * message in *out / *outlen (valid until the next call in this process),
 * or the close code that fails the connection, with *why: 1009 when it
 * inflates past MAX bytes (never more than MAX + 1 bytes are allocated),
 * 1007 for invalid deflate data or, when TEXT, invalid UTF-8, 1011 when
 * out of memory. */
int wsh_deflate_inflate(wsh_deflate_t *d, const u_char *in, size_t len,
    size_t max, bool text, u_char **out, size_t *outlen, const char **why);

/* Compress one message to send. Returns WSH_OK with the payload in *out /
 * *outlen (valid until the next call in this process), WSH_DECLINED when
 * it goes uncompressed (shorter than min_size, or not smaller once
 * compressed and no context to keep in step), WSH_ERROR out of memory
 * (logged; send it uncompressed). */
int wsh_deflate_compress(wsh_deflate_t *d, const u_char *in, size_t len,
    u_char **out, size_t *outlen);

/* Free the calling thread's shared streams and buffers (a thread that
 * ends: they would be lost with its thread-local pointers). */
void wsh_deflate_thread_done(void);

/* True when D compresses every message alone with the configured window,
 * so one compressed frame of a broadcast serves every such connection. */
bool wsh_deflate_shareable(const wsh_deflate_t *d);

#endif /* WSH_DEFLATE_H */
