/* tls.h -- TLS termination: the SSL_CTX of a cycle, TLS bufferevents.
 *
 * The master builds one SSL_CTX per certificate when it loads the
 * configuration (so "wshubd -t" reads and checks the files) and the
 * workers inherit it across fork. A reload builds a new one in the new
 * cycle: new workers serve the new certificate, old workers keep theirs
 * until their connections are gone.
 */
#ifndef WSH_TLS_H
#define WSH_TLS_H

#include "core/core.h"
#include "core/conf.h"

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

/* Build the SSL_CTX for CF's tls section into *CTX (NULL when CF has no
 * tls section). Returns WSH_OK, or WSH_ERROR with "FILE:LINE:COL: what
 * is wrong and how to fix it" in ERR. Master only; free with
 * SSL_CTX_free(). */
int wsh_tls_create(const wsh_conf_t *cf, SSL_CTX **ctx, char *err,
    size_t errlen);

/* A server-side TLS bufferevent on the accepted socket FD, handshake
 * pending (it counts against handshake_timeout like any other first
 * bytes). Freeing it frees the SSL and closes FD. NULL on ENOMEM. */
struct bufferevent *wsh_tls_bufferevent(struct event_base *base, int fd,
    SSL_CTX *ctx);

/* Why the TLS bufferevent BEV failed, as OpenSSL says, in a static
 * buffer; NULL when BEV is not TLS or has no OpenSSL error queued. */
const char *wsh_tls_error(struct bufferevent *bev);

/* Before shutting down the write side of BEV: send TLS close_notify so
 * the client sees a clean end, not a truncation. No-op for plain TCP. */
void wsh_tls_close_notify(struct bufferevent *bev);

/* Write BEV's queued output now, once, without blocking, for a
 * connection that is about to be freed. Returns false when BEV is not
 * TLS (the caller writes the plain bytes itself). */
bool wsh_tls_write_now(struct bufferevent *bev);

#endif /* WSH_TLS_H */
