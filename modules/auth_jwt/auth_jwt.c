/* auth_jwt.c -- the auth_jwt module: a JSON Web Token at the handshake.
 *
 * Runs before the endpoint's own module on endpoints with "auth: jwt":
 * takes the token from "Authorization: Bearer" or the query parameter,
 * has libjwt verify its signature with the configured key, refuses any
 * token whose header names another algorithm (so neither "none" nor an
 * HMAC made with the RSA public key as secret gets in), refuses a crit
 * header, checks the claims (claims.c), and records sub and the room
 * patterns as the connection's identity. Any failure is 401 before the
 * upgrade, logged at info with the reason, never with the token.
 */
#include "auth_jwt/auth_jwt.h"
#include "wshub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <openssl/crypto.h>

extern const wsh_module_t wsh_auth_jwt_module;

#define AUTH_JWT_REFUSED 401

static int
auth_jwt_refuse(wsh_conn_t *c, const char *why)
{
    wsh_module_log(WSH_LOG_INFO, c, "auth_jwt: token refused: %s", why);
    return AUTH_JWT_REFUSED;
}

/* The token's header or claims as jansson values: libjwt 1.10 hands
 * them out only as text (that it made from the JSON it parsed), TEXT,
 * which this frees. NULL if that fails. */
static json_t *
auth_jwt_json(char *text)
{
    json_t *json;

    if (text == NULL) {
        return NULL;
    }
    json = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    return json;
}

/* Verify TOKEN and record the identity; 0 or an HTTP status. */
static int
auth_jwt_verify(wsh_conn_t *c, const wsh_conf_auth_jwt_t *a,
    const char *token)
{
    wsh_jwt_claims_t *out = NULL;
    json_t *header, *claims = NULL;
    jwt_t *jwt = NULL;
    const char *why;
    struct timespec now;
    int status = AUTH_JWT_REFUSED;

    if (jwt_decode(&jwt, token, a->key, (int) a->keylen) != 0) {
        return auth_jwt_refuse(c, "malformed, or the signature does not "
                               "verify");
    }
    if (jwt_get_alg(jwt) != (jwt_alg_t) a->alg) {
        /* RFC 8725 section 3.1: the algorithm is ours, not the token's. */
        wsh_module_log(WSH_LOG_INFO, c, "auth_jwt: token refused: signed "
                       "with %s, only %s is accepted",
                       jwt_alg_str(jwt_get_alg(jwt)),
                       jwt_alg_str((jwt_alg_t) a->alg));
        goto done;
    }
    header = auth_jwt_json(jwt_get_headers_json(jwt, NULL));
    why = header != NULL ? wsh_jwt_check_header(header)
                         : "header cannot be read";
    json_decref(header);
    if (why != NULL) {
        status = auth_jwt_refuse(c, why);
        goto done;
    }
    claims = auth_jwt_json(jwt_get_grants_json(jwt, NULL));
    if (claims == NULL) {
        status = auth_jwt_refuse(c, "claims cannot be read");
        goto done;
    }
    out = malloc(sizeof(*out));
    if (out == NULL) {
        status = 503;
        wsh_module_log(WSH_LOG_ERR, c, "auth_jwt: out of memory");
        goto done;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    why = wsh_jwt_check_claims(claims, a, (double) now.tv_sec
                               + (double) now.tv_nsec / 1e9, out);
    if (why != NULL) {
        status = auth_jwt_refuse(c, why);
        goto done;
    }
    if (wsh_conn_set_user(c, out->sub, out->sublen,
                          out->all_rooms ? NULL : out->rooms, out->lens,
                          out->nrooms) != 0)
    {
        status = 503;
        wsh_module_log(WSH_LOG_ERR, c, "auth_jwt: out of memory");
        goto done;
    }
    wsh_module_log(WSH_LOG_DEBUG, c, "auth_jwt: authenticated \"%.*s\"",
                   (int) out->sublen, out->sub);
    status = 0;
done:
    free(out);
    json_decref(claims);
    jwt_free(jwt);
    return status;
}

static int
auth_jwt_handshake(wsh_conn_t *c, const wsh_request_t *r)
{
    const wsh_conf_auth_jwt_t *a = wsh_module_conf(&wsh_auth_jwt_module);
    const char *authz, *query, *token;
    size_t alen = 0, qlen = 0, len;
    char *copy;
    int status;

    authz = wsh_request_header(r, "Authorization", &alen);
    query = wsh_request_query(r, &qlen);
    token = wsh_jwt_token(authz, alen, query, qlen, a->query_param, &len);
    if (token == NULL) {
        return auth_jwt_refuse(c, "no token (Authorization: Bearer, or the "
                               "query parameter)");
    }
    copy = strndup(token, len);         /* libjwt wants a C string */
    if (copy == NULL) {
        wsh_module_log(WSH_LOG_ERR, c, "auth_jwt: out of memory");
        return 503;
    }
    status = auth_jwt_verify(c, a, copy);
    free(copy);
    return status;
}

/* ---- configuration ---------------------------------------------------- */

#define JWT_FIELD(name, type, deflt) \
    { WSH_CONF_FIELD(wsh_conf_auth_jwt_t, name, type, deflt, 0, 0) }

static const wsh_conf_field_t auth_jwt_fields[] = {
    JWT_FIELD(algorithm, STRING, NULL),
    JWT_FIELD(secret, STRING, NULL),
    JWT_FIELD(secret_file, STRING, NULL),
    JWT_FIELD(public_key_file, STRING, NULL),
    JWT_FIELD(leeway, MSEC, "0s"),
    /* On by default since 0.2.0: a token without exp is valid forever,
     * and nothing short of a new key could revoke it. */
    JWT_FIELD(require_exp, BOOL, "on"),
    JWT_FIELD(audience, STRING, NULL),
    JWT_FIELD(issuer, STRING, NULL),
    JWT_FIELD(query_param, STRING, "token"),
    JWT_FIELD(rooms_claim, STRING, "rooms"),
    JWT_FIELD(rooms_claim_required, BOOL, "off"),
    WSH_CONF_END
};

static int
auth_jwt_check(void *conf, int present, const char **field, char *err,
    size_t len)
{
    wsh_conf_auth_jwt_t *a = conf;
    const char *bad;

    if (!present) {
        return 0;               /* no endpoint may name it (the core) */
    }
    if (wsh_conf_bool_word(a->query_param) == 0) {
        free(a->query_param);
        a->query_param = NULL;
    }
    if (a->query_param != NULL && wsh_conf_bool_word(a->query_param) == 1) {
        *field = "query_param";
        snprintf(err, len, "\"%s\" says where: give the parameter's name, "
                 "or off", a->query_param);
        return -1;
    }
    if (a->query_param != NULL
        && strspn(a->query_param, "abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
           != strlen(a->query_param))
    {
        *field = "query_param";
        snprintf(err, len, "use letters, digits, \"_\", \".\" and \"-\" "
                 "only, or off");
        return -1;
    }
    bad = wsh_auth_jwt_conf_key(a, a->algorithm, a->secret, a->secret_file,
                                a->public_key_file, err, len);
    if (bad != NULL) {
        /* "auth_jwt.secret" or the section itself */
        *field = strchr(bad, '.') ? strchr(bad, '.') + 1 : NULL;
        return -1;
    }
    return 0;
}

static void
auth_jwt_free(void *conf)
{
    wsh_conf_auth_jwt_t *a = conf;

    if (a->key != NULL) {
        OPENSSL_cleanse(a->key, a->keylen);
    }
    free(a->key);
    if (a->secret != NULL) {
        OPENSSL_cleanse(a->secret, strlen(a->secret));
    }
}

static const wsh_conf_section_t auth_jwt_section = {
    "auth_jwt", sizeof(wsh_conf_auth_jwt_t), auth_jwt_fields,
    auth_jwt_check, auth_jwt_free
};

const wsh_module_t wsh_auth_jwt_module = {
    .name = "auth_jwt",
    .api_version = WSHUB_API_VERSION,
    .conf = &auth_jwt_section,
    .auth = 1,
    .handshake = auth_jwt_handshake,
};
