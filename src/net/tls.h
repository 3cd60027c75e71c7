/* tls.h -- TLS termination: the SSL_CTX of a cycle, TLS sessions.
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

#include <openssl/ssl.h>

/* Build the SSL_CTX for CF's tls section into *CTX (NULL when CF has no
 * tls section). Returns WSH_OK, or WSH_ERROR with "FILE:LINE:COL: what
 * is wrong and how to fix it" in ERR. Master only; free with
 * SSL_CTX_free(). */
int wsh_tls_create(const wsh_conf_t *cf, SSL_CTX **ctx, char *err,
    size_t errlen);

/* A client SSL_CTX for the tls block at SECTION ("engine.redis.tls"):
 * peers verified against T's ca_file (NULL: the system's store), T's
 * cert_file and key_file presented when set. WSH_ERROR with
 * "FILE:LINE:COL: ..." in ERR. Master only; free with SSL_CTX_free(). */
int wsh_tls_client_create(const wsh_conf_t *cf, const char *section,
    const wsh_conf_tls_client_t *t, SSL_CTX **ctx, char *err, size_t errlen);

/* A client session for the server NAME (a host name, sent as SNI and
 * checked against the certificate's DNS names, or an address checked
 * against its IP names); NULL on ENOMEM. */
SSL *wsh_tls_client_session(SSL_CTX *ctx, const char *name);

/* A server session on the accepted socket FD, in accept state (the
 * handshake runs on the first reads, within handshake_timeout). NULL on
 * ENOMEM. */
SSL *wsh_tls_session(SSL_CTX *ctx, int fd);

/* "WHAT: OpenSSL's reason for the last failure" in a static buffer; the
 * error queue is emptied. */
const char *wsh_tls_reason(const char *what);

#endif /* WSH_TLS_H */
