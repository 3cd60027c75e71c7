/* redis_tls.c -- TLS to Redis (engine.redis.tls), through hiredis_ssl.
 *
 * The master builds the client SSL_CTX with the cycle (cycle.c, so that
 * "wshubd -t" reads the CA and the client key, and a worker that may not
 * read the key inherits it); each connection, to the server or to a
 * sentinel, gets its own SSL session from it. The session is ours, not
 * a redisSSLContext's: hiredis checks the chain only, and we also check
 * that the certificate names the server (SSL_set1_host, or its IP).
 *
 * hiredis 0.14 has no hiredis_ssl: conf.c refuses the key there, and
 * this file only says it has nothing to do.
 */
#include "engine/redis.h"
#include "net/tls.h"
#include "core/runtime.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#ifdef HAVE_HIREDIS_SSL
#include <hiredis/hiredis_ssl.h>

/* Why the last handshake failed: hiredis_ssl reports it without a
 * reason, or as "Server closed the connection", and the certificate we
 * refused, or the alert the server sent (it wants our certificate), is
 * what operators need. */
static char redis_tls_failure[256];

static int
redis_tls_verify_cb(int ok, X509_STORE_CTX *x)
{
    if (!ok) {
        snprintf(redis_tls_failure, sizeof(redis_tls_failure),
                 "TLS: certificate verify failed: %s (depth %d)",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)),
                 X509_STORE_CTX_get_error_depth(x));
    }
    return ok;
}

/* TLS 1.3's certificate_required (RFC 8446), which OpenSSL 3.0 calls
 * "unknown". */
#define REDIS_TLS_CERTIFICATE_REQUIRED 116

static void
redis_tls_info_cb(const SSL *ssl, int where, int ret)
{
    static const char no_answer[] = "TLS: no answer to the handshake: is "
                                    "the server's port a TLS one?";

    (void) ssl;
    if (where & SSL_CB_HANDSHAKE_START) {
        /* what a plain Redis answers to a ClientHello: nothing */
        if (redis_tls_failure[0] == '\0') {
            snprintf(redis_tls_failure, sizeof(redis_tls_failure), "%s",
                     no_answer);
        }
    } else if (where & SSL_CB_HANDSHAKE_DONE) {
        if (strcmp(redis_tls_failure, no_answer) == 0) {
            redis_tls_failure[0] = '\0';
        }
    } else if ((where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT
               && ret >> 8 == SSL3_AL_FATAL)
    {
        snprintf(redis_tls_failure, sizeof(redis_tls_failure),
                 "TLS: the server refused the handshake: %s",
                 (ret & 0xff) == REDIS_TLS_CERTIFICATE_REQUIRED
                 ? "certificate required (set cert_file and key_file)"
                 : SSL_alert_desc_string_long(ret));
    }
}

const char *
redis_tls_why(const char *err)
{
    static char why[512];
    unsigned long e;

    if (!redis_conf()->tls.on) {
        return err;
    }
    if (redis_tls_failure[0] == '\0' && (e = ERR_get_error()) != 0) {
        /* e.g. "wrong version number": the port is not a TLS one */
        snprintf(redis_tls_failure, sizeof(redis_tls_failure), "TLS: %s",
                 ERR_reason_error_string(e));
        ERR_clear_error();
    }
    if (redis_tls_failure[0] == '\0') {
        return err[0] != '\0' ? err : "TLS handshake failed";
    }
    snprintf(why, sizeof(why), "%s%s%s", err, err[0] != '\0' ? "; " : "",
             redis_tls_failure);
    return why;
}

int
redis_tls_start(redisAsyncContext *ac, const char *host, char *err,
    size_t len)
{
    const wsh_conf_engine_t *e = redis_conf();
    SSL *ssl;

    if (!e->tls.on) {
        return WSH_OK;
    }
    ssl = wsh_tls_client_session(wsh_worker.cycle->redis_tls_ctx,
                                 e->tls.server_name != NULL
                                 ? e->tls.server_name : host);
    if (ssl == NULL) {
        snprintf(err, len, "TLS: %s", wsh_tls_reason("SSL_new()"));
        return WSH_ERROR;
    }
    redis_tls_failure[0] = '\0';
    SSL_set_verify(ssl, SSL_VERIFY_PEER, redis_tls_verify_cb);
    SSL_set_info_callback(ssl, redis_tls_info_cb);
    if (redisInitiateSSL(&ac->c, ssl) != REDIS_OK) {
        /* Not taken: still ours. */
        snprintf(err, len, "TLS: %s", ac->c.errstr);
        SSL_free(ssl);
        return WSH_ERROR;
    }
    return WSH_OK;
}

#else

int
redis_tls_start(redisAsyncContext *ac, const char *host, char *err,
    size_t len)
{
    (void) ac;
    (void) host;
    (void) err;
    (void) len;
    return WSH_OK;
}

const char *
redis_tls_why(const char *err)
{
    return err;
}

#endif
