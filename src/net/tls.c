/* tls.c -- TLS termination with OpenSSL 3.
 *
 * wsh_tls_create() turns the tls section into an SSL_CTX in the master,
 * reading the certificate and key there (the master may be the only
 * process allowed to read the key). Workers inherit the SSL_CTX across
 * fork and start a server session on each connection accepted on an
 * "ADDRESS tls" listener; net/io.c reads and writes through it, and a
 * plain connection carries no TLS state at all.
 */
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* Write "FILE:LINE:COL: PATH: message" about the value at PATH. */
static void tls_conf_error(const wsh_conf_t *cf, const char *path,
    char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
tls_conf_error(const wsh_conf_t *cf, const char *path, char *err,
    size_t errlen, const char *fmt, ...)
{
    char where[PATH_MAX + 32];
    va_list ap;
    int n;

    n = snprintf(err, errlen, "%s: %s: ",
                 wsh_conf_where(cf, path, where, sizeof(where)), path);
    if (n >= 0 && (size_t) n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t) n, fmt, ap);
        va_end(ap);
    }
}

/* OpenSSL's reason for the last failure, and an empty error queue. */
static const char *
tls_reason(void)
{
    static char text[256];
    unsigned long e = ERR_peek_error();     /* the root cause */
    const char *r = ERR_reason_error_string(e);

    snprintf(text, sizeof(text), "%s", r != NULL ? r : "unknown error");
    ERR_clear_error();
    return text;
}

/* Files are opened once by hand first, so a wrong path or permission is
 * reported with errno's words rather than OpenSSL's "system lib". */
static bool
tls_readable(const wsh_conf_t *cf, const char *path, const char *file,
    char *err, size_t errlen)
{
    FILE *fp = fopen(file, "r");

    if (fp == NULL) {
        tls_conf_error(cf, path, err, errlen, "cannot read \"%s\": %s (check "
                       "the path, and that the user starting wshubd may "
                       "read it)", file, strerror(errno));
        return false;
    }
    fclose(fp);
    return true;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) arg;
    return 0;
}

/* ALPN (RFC 7301): WebSocket over TLS is HTTP/1.1 (RFC 6455 section 4.1);
 * a client offering only h2 gets no ALPN answer and fails its way. */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";

    (void) ssl;
    (void) arg;
    if (SSL_select_next_proto((unsigned char **) out, outlen, http11,
                              sizeof(http11) - 1, in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

static int
tls_versions(const wsh_conf_tls_t *t, SSL_CTX *ctx)
{
    static const int versions[] = {
        TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION
    };
    int i, min = 0, max = 0;

    /* conf.c made sure the set has no gap: a minimum and a maximum. */
    for (i = 0; i < (int) wsh_nelems(versions); i++) {
        if (t->protocols & (1u << i)) {
            max = versions[i];
            if (min == 0) {
                min = versions[i];
            }
        }
    }
    return SSL_CTX_set_min_proto_version(ctx, min)
           && SSL_CTX_set_max_proto_version(ctx, max) ? WSH_OK : WSH_ERROR;
}

/* Certificate CERT (the value at CPATH), key KEY (at KPATH) and their
 * match; errors name the file and the key. */
static int
tls_certificate(const wsh_conf_t *cf, SSL_CTX *ctx, const char *cpath,
    const char *cert, const char *kpath, const char *key, char *err,
    size_t errlen)
{
    if (!tls_readable(cf, cpath, cert, err, errlen)
        || !tls_readable(cf, kpath, key, err, errlen))
    {
        return WSH_ERROR;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_conf_error(cf, cpath, err, errlen, "\"%s\" holds no usable PEM "
                       "certificate (%s): it must hold the certificate, then "
                       "its intermediates, each from -----BEGIN "
                       "CERTIFICATE-----", cert, tls_reason());
        return WSH_ERROR;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
        {
            goto mismatch;
        }
        tls_conf_error(cf, kpath, err, errlen, "\"%s\" holds no usable PEM "
                       "private key (%s): it must hold the unencrypted key of "
                       "\"%s\"", key, tls_reason(), cert);
        return WSH_ERROR;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        goto mismatch;
    }
    return WSH_OK;

mismatch:
    ERR_clear_error();
    tls_conf_error(cf, kpath, err, errlen, "\"%s\" does not match the "
                   "certificate in \"%s\": use the key the certificate was "
                   "issued for", key, cert);
    return WSH_ERROR;
}

int
wsh_tls_create(const wsh_conf_t *cf, SSL_CTX **out, char *err,
    size_t errlen)
{
    const wsh_conf_tls_t *t = &cf->tls;
    SSL_CTX *ctx;

    *out = NULL;
    if (t->certificate == NULL) {
        return WSH_OK;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new() failed: %s", tls_reason());
        return WSH_ERROR;
    }
    /* No client-initiated renegotiation (a cheap CPU attack); the stateful
     * session cache is per worker and grows with clients: resumption goes
     * through tickets, whose keys every worker inherits with this CTX. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION
                             | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);

    if (tls_versions(t, ctx) != WSH_OK) {
        tls_conf_error(cf, "tls.protocols", err, errlen, "not supported by "
                       "this OpenSSL (%s)", tls_reason());
        goto failed;
    }
    if (SSL_CTX_set_cipher_list(ctx, t->ciphers) != 1) {
        tls_conf_error(cf, "tls.ciphers", err, errlen, "no cipher matches "
                       "\"%s\" (%s; list them with: openssl ciphers -v "
                       "'%s')", t->ciphers, tls_reason(), t->ciphers);
        goto failed;
    }
    if (t->ciphersuites != NULL
        && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1)
    {
        tls_conf_error(cf, "tls.ciphersuites", err, errlen, "\"%s\" is not "
                       "a list of TLS 1.3 suites (%s; e.g. "
                       "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256)",
                       t->ciphersuites, tls_reason());
        goto failed;
    }
    if (tls_certificate(cf, ctx, "tls.certificate", t->certificate,
                        "tls.certificate_key", t->certificate_key, err,
                        errlen) != WSH_OK)
    {
        goto failed;
    }
    *out = ctx;
    return WSH_OK;

failed:
    SSL_CTX_free(ctx);
    return WSH_ERROR;
}

int
wsh_tls_client_create(const wsh_conf_t *cf, const char *section,
    const wsh_conf_tls_client_t *t, SSL_CTX **out, char *err, size_t errlen)
{
    char cpath[128], kpath[128], apath[128];
    SSL_CTX *ctx;

    snprintf(apath, sizeof(apath), "%s.ca_file", section);
    snprintf(cpath, sizeof(cpath), "%s.cert_file", section);
    snprintf(kpath, sizeof(kpath), "%s.key_file", section);
    *out = NULL;
    if (t->ca_file != NULL && !tls_readable(cf, apath, t->ca_file, err, errlen))
    {
        return WSH_ERROR;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new() failed: %s", tls_reason());
        return WSH_ERROR;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
    /* The peer is always verified: a TLS link to an unchecked server
     * would only look safe. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (t->ca_file != NULL
        ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1
        : SSL_CTX_set_default_verify_paths(ctx) != 1)
    {
        tls_conf_error(cf, apath, err, errlen, "\"%s\" holds no usable PEM "
                       "CA certificate (%s)", t->ca_file ? t->ca_file
                       : "the system's store", tls_reason());
        goto failed;
    }
    if (t->cert_file != NULL
        && tls_certificate(cf, ctx, cpath, t->cert_file, kpath, t->key_file,
                           err, errlen) != WSH_OK)
    {
        goto failed;
    }
    *out = ctx;
    return WSH_OK;

failed:
    SSL_CTX_free(ctx);
    return WSH_ERROR;
}

SSL *
wsh_tls_client_session(SSL_CTX *ctx, const char *name)
{
    struct in6_addr a6;
    struct in_addr a4;
    X509_VERIFY_PARAM *vp;
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL) {
        return NULL;
    }
    vp = SSL_get0_param(ssl);
    /* An address is checked against the certificate's IP names, a host
     * name against its DNS names, and sent as SNI. */
    if (inet_pton(AF_INET, name, &a4) == 1
        || inet_pton(AF_INET6, name, &a6) == 1)
    {
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1) {
            goto failed;
        }
    } else if (SSL_set_tlsext_host_name(ssl, name) != 1
               || SSL_set1_host(ssl, name) != 1)
    {
        goto failed;
    }
    return ssl;

failed:
    SSL_free(ssl);
    return NULL;
}

SSL *
wsh_tls_session(SSL_CTX *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    /* net/io.c repeats a blocked write from a fresh copy of the same
     * bytes, not from the same address. */
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ssl;
}

const char *
wsh_tls_reason(const char *what)
{
    static char text[300];

    snprintf(text, sizeof(text), "%s: %s", what, tls_reason());
    return text;
}
