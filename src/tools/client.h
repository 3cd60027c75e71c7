/* client.h -- the client side of the WebSocket protocol, for the tools.
 *
 * wshub-bench and wshub-cli share this: a libevent connection to a ws://
 * or wss:// URL, the opening handshake (RFC 6455 section 4.1, accept key
 * checked), masked frames out, and server frames in through the same
 * incremental parser the server uses (ws/frame.h in client mode). Built
 * for load generation: no allocation per message once connected.
 */
#ifndef WSH_CLIENT_H
#define WSH_CLIENT_H

#include "core/core.h"

#include <openssl/ssl.h>
#include <event2/event.h>
#include <sys/socket.h>

typedef struct {
    char     host[256];
    char     port[8];           /* "80"/"443" when the URL has none */
    char     path[2048];        /* path and query, "/" at least */
    bool     tls;               /* wss:// */
} wsh_url_t;

/* Parse ws://host[:port][/path][?query] or wss://...; IPv6 hosts in
 * brackets. Returns WSH_OK or WSH_ERROR with a reason in err. */
int wsh_url_parse(const char *url, wsh_url_t *out, char *err, size_t errlen);

typedef struct wsh_client_s wsh_client_t;

typedef struct {
    /* Handshake done (status 101, accept key right). */
    void (*open)(wsh_client_t *cl, void *arg);
    /* A complete message; data valid during the call only. */
    void (*message)(wsh_client_t *cl, int opcode, const u_char *data,
                    size_t len, void *arg);
    /* The connection is over, for whatever reason (connect refused, bad
     * handshake, close frame, EOF, protocol error): CODE is the close
     * code received (1005 none, 1006 no close frame), REASON says why
     * for people. Called exactly once; the client must then be freed
     * with wsh_client_free() (may be called from inside the callback). */
    void (*close)(wsh_client_t *cl, int code, const char *reason, void *arg);
    /* Optional: bytes were read, their messages follow (wshub-bench
     * reads the clock once per read, not once per message). */
    void (*read)(wsh_client_t *cl, void *arg);
} wsh_client_handlers_t;

/* Start connecting. EXTRA_HEADERS (may be NULL) are added to the
 * request verbatim, each ending with CRLF. SSL_CTX is required for
 * wss:// (the caller owns it). SOURCE (may be NULL; port 0) is the
 * local address to connect from, for the addresses of its family.
 * Returns NULL on immediate failure. */
wsh_client_t *wsh_client_connect(struct event_base *base,
    const wsh_url_t *url, SSL_CTX *ssl_ctx, const char *extra_headers,
    const struct sockaddr_storage *source, const wsh_client_handlers_t *h,
    void *arg);

/* Queue a masked message; -1 if not open. */
int wsh_client_send(wsh_client_t *cl, int opcode, const void *data,
    size_t len);

/* Start the closing handshake; the close handler follows. */
void wsh_client_close(wsh_client_t *cl, int code, const char *reason);

/* Bytes queued for sending (for pacing a load generator). */
size_t wsh_client_pending(const wsh_client_t *cl);

void wsh_client_free(wsh_client_t *cl);

/* An SSL_CTX for wss:// clients: system CA store, peer verification on
 * unless insecure (for self-signed test servers). NULL on failure. */
SSL_CTX *wsh_client_ssl_ctx(bool insecure);

#endif /* WSH_CLIENT_H */
