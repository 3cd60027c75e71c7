/* key.c -- the auth_jwt algorithm and key, loaded with the configuration.
 *
 * The algorithm is pinned here, never taken from a token. Keys are read
 * and checked when the configuration is loaded (and so by "wshubd -t"
 * and on every reload), so that a wrong file is a config error naming
 * it rather than every client refused at run time.
 */
#include "auth_jwt/auth_jwt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* Keys and secrets are small; anything bigger is the wrong file. */
#define KEY_FILE_MAX (64 * 1024)

static const struct {
    const char *name;
    jwt_alg_t   alg;
    size_t      min_secret;     /* HMAC; 0: public key */
} key_algs[] = {
    /* RFC 7518 section 3.2: an HMAC key at least as long as the hash. */
    { "HS256", JWT_ALG_HS256, 32 },
    { "HS384", JWT_ALG_HS384, 48 },
    { "HS512", JWT_ALG_HS512, 64 },
    { "RS256", JWT_ALG_RS256, 0 },
    { "ES256", JWT_ALG_ES256, 0 },
};

/* Read FILE whole into a malloc'ed buffer; NULL with ERR set. */
static unsigned char *
key_read(const char *file, size_t *len, char *err, size_t errlen)
{
    unsigned char *buf;
    FILE *fp;
    size_t n;

    fp = fopen(file, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: %s", file, strerror(errno));
        return NULL;
    }
    buf = malloc(KEY_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(fp);
        snprintf(err, errlen, "%s: out of memory", file);
        return NULL;
    }
    n = fread(buf, 1, KEY_FILE_MAX + 1, fp);
    if (ferror(fp) || n > KEY_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", file, ferror(fp)
                 ? "read error" : "over 64k: not a key");
        fclose(fp);
        free(buf);
        return NULL;
    }
    fclose(fp);
    *len = n;
    return buf;
}

/* The PEM public key in A->key must be what ALG verifies with. */
static bool
key_check_public(const wsh_conf_auth_jwt_t *a, const char *file,
    const char *alg, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(a->key, (int) a->keylen);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    char group[32] = "";
    bool ok = false;

    BIO_free(bio);
    if (pkey == NULL) {
        snprintf(err, errlen, "%s: not a PEM public key (make one with "
                 "openssl pkey -pubout)", file);
        return false;
    }
    if (a->alg == JWT_ALG_RS256) {
        ok = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA
             && EVP_PKEY_get_bits(pkey) >= 2048;
        if (!ok) {
            snprintf(err, errlen, "%s: %s needs an RSA key of at least "
                     "2048 bits", file, alg);
        }
    } else {
        ok = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC
             && EVP_PKEY_get_utf8_string_param(pkey,
                                               OSSL_PKEY_PARAM_GROUP_NAME,
                                               group, sizeof(group), NULL)
             && strcmp(group, "prime256v1") == 0;
        if (!ok) {
            snprintf(err, errlen, "%s: %s needs an EC key on P-256 "
                     "(prime256v1)", file, alg);
        }
    }
    EVP_PKEY_free(pkey);
    return ok;
}

/* An HMAC secret: inline, or a file's contents without the line end
 * that editors and "echo" add. */
static const char *
key_secret(wsh_conf_auth_jwt_t *a, size_t min, const char *alg,
    const char *secret, const char *secret_file, char *err, size_t errlen)
{
    const char *path = secret ? "auth_jwt.secret" : "auth_jwt.secret_file";

    if (secret != NULL && secret_file != NULL) {
        snprintf(err, errlen, "give secret or secret_file, not both");
        return path;
    }
    if (secret != NULL) {
        a->keylen = strlen(secret);
        a->key = (unsigned char *) strdup(secret);
        if (a->key == NULL) {
            snprintf(err, errlen, "out of memory");
            return path;
        }
    } else if (secret_file != NULL) {
        a->key = key_read(secret_file, &a->keylen, err, errlen);
        if (a->key == NULL) {
            return path;
        }
        while (a->keylen > 0 && (a->key[a->keylen - 1] == '\n'
                                 || a->key[a->keylen - 1] == '\r'))
        {
            a->keylen--;
        }
    } else {
        snprintf(err, errlen, "%s needs secret or secret_file", alg);
        return "auth_jwt";
    }
    if (a->keylen < min) {
        snprintf(err, errlen, "%s%s%s has %zu bytes, %s needs at least %zu "
                 "(RFC 7518 section 3.2; e.g. openssl rand -hex %zu)",
                 secret ? "the secret" : secret_file,
                 secret ? "" : ":", secret ? "" : " the secret", a->keylen,
                 alg, min, min);
        return path;
    }
    return NULL;
}

const char *
wsh_auth_jwt_conf_key(wsh_conf_auth_jwt_t *a, const char *alg,
    const char *secret, const char *secret_file, const char *public_key_file,
    char *err, size_t errlen)
{
    size_t i;

    if (alg == NULL || *alg == '\0') {
        snprintf(err, errlen, "algorithm is required (HS256, HS384, HS512, "
                 "RS256 or ES256)");
        return "auth_jwt";
    }
    for (i = 0; i < sizeof(key_algs) / sizeof(key_algs[0]); i++) {
        if (strcmp(key_algs[i].name, alg) == 0) {
            break;
        }
    }
    if (i == sizeof(key_algs) / sizeof(key_algs[0])) {
        snprintf(err, errlen, "unknown algorithm \"%s\" (use HS256, HS384, "
                 "HS512, RS256 or ES256)", alg);
        return "auth_jwt.algorithm";
    }
    a->alg = (int) key_algs[i].alg;
    if (key_algs[i].min_secret != 0) {
        if (public_key_file != NULL) {
            snprintf(err, errlen, "%s verifies with a secret: give secret or "
                     "secret_file", alg);
            return "auth_jwt.public_key_file";
        }
        return key_secret(a, key_algs[i].min_secret, alg, secret,
                          secret_file, err, errlen);
    }
    if (secret != NULL || secret_file != NULL) {
        snprintf(err, errlen, "%s verifies with a public key: give "
                 "public_key_file", alg);
        return secret ? "auth_jwt.secret" : "auth_jwt.secret_file";
    }
    if (public_key_file == NULL) {
        snprintf(err, errlen, "%s needs public_key_file", alg);
        return "auth_jwt";
    }
    a->key = key_read(public_key_file, &a->keylen, err, errlen);
    if (a->key == NULL
        || !key_check_public(a, public_key_file, alg, err, errlen))
    {
        return "auth_jwt.public_key_file";
    }
    return NULL;
}
