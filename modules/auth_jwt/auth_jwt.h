/* auth_jwt.h -- JWT authentication: what the core and the tests call.
 *
 * The module (auth_jwt.c) verifies a token at the handshake of every
 * endpoint with "auth: jwt"; the key is loaded with the configuration
 * (key.c) so that a bad key fails "wshubd -t"; the claims are checked by
 * pure functions (claims.c) that the unit tests drive directly.
 */
#ifndef WSH_AUTH_JWT_H
#define WSH_AUTH_JWT_H

/* Modules see wshub.h, not the build's config.h: the module's files
 * include this header first, and ask for POSIX and GNU here
 * (clock_gettime, strdup, strndup). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "wshub.h"

#include <stdbool.h>

#include <jansson.h>

/* The auth_jwt section of wshub.yaml (the module declares it, auth_jwt.c);
 * alg and key are derived from the first four when it is loaded. */
typedef struct {
    char               *algorithm;
    char               *secret;
    char               *secret_file;
    char               *public_key_file;
    uint64_t            leeway;            /* msec, for exp and nbf */
    int                 require_exp;       /* refuse tokens without exp */
    char               *audience;          /* NULL: no aud wanted */
    char               *issuer;            /* NULL: any iss */
    char               *query_param;       /* token parameter, NULL: off */
    char               *rooms_claim;
    int                 rooms_claim_required;
    int                 alg;               /* a jwt_alg_t of <jwt.h> */
    unsigned char      *key;               /* HMAC secret or PEM public key */
    size_t              keylen;
} wsh_conf_auth_jwt_t;

/* At most this many room patterns in a token. */
#define WSH_JWT_MAX_ROOMS 256

/* The claims that matter once a token passed: pointers into the claims
 * object, valid while it lives. */
typedef struct {
    const char *sub;
    size_t      sublen;
    bool        all_rooms;      /* no rooms claim */
    size_t      nrooms;
    const char *rooms[WSH_JWT_MAX_ROOMS];
    size_t      lens[WSH_JWT_MAX_ROOMS];
} wsh_jwt_claims_t;

/* Check ALG (HS256, HS384, HS512, RS256 or ES256) and load its key into
 * A: SECRET or the contents of SECRET_FILE for HS*, the PEM public key
 * in PUBLIC_KEY_FILE for RS256/ES256. Returns NULL, or the config path
 * of the value at fault ("auth_jwt.public_key_file") with the reason,
 * naming the file, in ERR. Config time: master and wshubd -t. */
const char *wsh_auth_jwt_conf_key(wsh_conf_auth_jwt_t *a, const char *alg,
    const char *secret, const char *secret_file,
    const char *public_key_file, char *err, size_t errlen);

/* The token of a request: from AUTHZ ("Bearer T", the Authorization
 * header, may be NULL) or else from query parameter PARAM (may be NULL:
 * off) of QUERY. Returns a pointer into either, or NULL. Pure. */
const char *wsh_jwt_token(const char *authz, size_t alen, const char *query,
    size_t qlen, const char *param, size_t *len);

/* Check the JOSE header of a token whose signature verified: NULL, or
 * the reason to refuse the token (a crit parameter: wshub understands
 * no extension). Pure. */
const char *wsh_jwt_check_header(json_t *header);

/* Check the claims of a token whose signature verified, at NOW (seconds
 * since the epoch): exp (required if A says so) and nbf with A's leeway,
 * aud, iss, sub (the client id) and A's rooms claim. Returns NULL with OUT filled, or the
 * reason to refuse the token. Pure. */
const char *wsh_jwt_check_claims(json_t *claims, const wsh_conf_auth_jwt_t *a,
    double now, wsh_jwt_claims_t *out);

#endif /* WSH_AUTH_JWT_H */
