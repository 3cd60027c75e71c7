/* claims.c -- where the token is, and whether its claims pass.
 *
 * libjwt 1.10 verifies the signature only: the header's crit (RFC 7515)
 * and the registered claims of RFC 7519 section 4.1 are checked here,
 * the claims against wshub's own clock, and the rooms claim is turned
 * into the patterns of the connection's identity.
 * Everything here is pure, so check_jwt.c tests it without a server.
 */
#include "auth_jwt/auth_jwt.h"
#include "wshub.h"

#include <string.h>
#include <strings.h>

/* Client ids and room names of wshub-protocol(7). */

const char *
wsh_jwt_token(const char *authz, size_t alen, const char *query, size_t qlen,
    const char *param, size_t *len)
{
    const char *p, *last, *amp;
    size_t plen;

    /* RFC 6750 section 2.1: "Bearer" 1*SP token, scheme in any case. */
    if (authz != NULL && alen > 7 && strncasecmp(authz, "Bearer ", 7) == 0) {
        for (p = authz + 7, last = authz + alen; p < last && *p == ' '; p++) {
            /* skip the spaces */
        }
        if (p < last) {
            *len = (size_t) (last - p);
            return p;
        }
    }
    if (param == NULL || query == NULL) {
        return NULL;
    }
    /* Section 2.3: the access_token query parameter, named by config. A
     * JWT needs no percent-encoding, so the value is taken as it is. */
    plen = strlen(param);
    for (p = query, last = query + qlen; p < last; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (last - p));
        if (amp == NULL) {
            amp = last;
        }
        if ((size_t) (amp - p) > plen + 1 && memcmp(p, param, plen) == 0
            && p[plen] == '=')
        {
            *len = (size_t) (amp - p) - plen - 1;
            return p + plen + 1;
        }
    }
    return NULL;
}

static bool
claims_string_is(json_t *v, const char *want)
{
    return json_is_string(v) && json_string_length(v) == strlen(want)
           && memcmp(json_string_value(v), want, strlen(want)) == 0;
}

/* RFC 7519 section 4.1.3: "aud" is a string or an array of strings, and
 * a token for other audiences must be refused, so a token that names
 * any audience is refused unless ours is among them. */
static const char *
claims_audience(json_t *aud, const char *want)
{
    size_t i;

    if (aud == NULL) {
        return want == NULL ? NULL : "no audience (aud), one is required";
    }
    if (want == NULL) {
        return "token for an audience (aud), none is configured";
    }
    if (claims_string_is(aud, want)) {
        return NULL;
    }
    for (i = 0; json_is_array(aud) && i < json_array_size(aud); i++) {
        if (claims_string_is(json_array_get(aud, i), want)) {
            return NULL;
        }
    }
    return "wrong audience (aud)";
}

/* The rooms claim: an array of room names and prefixes ("chat:*"). */
static const char *
claims_rooms(json_t *rooms, const wsh_conf_auth_jwt_t *a,
    wsh_jwt_claims_t *out)
{
    const char *s;
    size_t i, len;
    json_t *v;

    out->all_rooms = rooms == NULL;
    out->nrooms = 0;
    if (rooms == NULL) {
        return a->rooms_claim_required ? "no rooms claim, one is required"
                                       : NULL;
    }
    if (!json_is_array(rooms) || json_array_size(rooms) > WSH_JWT_MAX_ROOMS) {
        return "rooms claim is not an array of at most 256 room patterns";
    }
    json_array_foreach(rooms, i, v) {
        s = json_string_value(v);
        len = json_string_length(v);
        if (s == NULL || !wsh_valid_room_pattern(s, len)) {
            return "rooms claim holds something that is not a room name "
                   "or a prefix ending in *";
        }
        out->rooms[i] = s;
        out->lens[i] = len;
        out->nrooms++;
    }
    return NULL;
}

const char *
wsh_jwt_check_header(json_t *header)
{
    if (!json_is_object(header)) {
        return "header is not a JSON object";
    }
    /* RFC 7515 section 4.1.11: a token whose crit lists an extension the
     * recipient does not understand must be refused. We understand none,
     * so any crit is refused, even an empty or malformed one, which the
     * RFC forbids issuers to make anyway. */
    if (json_object_get(header, "crit") != NULL) {
        return "crit header: no extension is understood";
    }
    return NULL;
}

const char *
wsh_jwt_check_claims(json_t *claims, const wsh_conf_auth_jwt_t *a,
    double now, wsh_jwt_claims_t *out)
{
    double leeway = (double) a->leeway / 1000;
    const char *why;
    json_t *v;

    if (!json_is_object(claims)) {
        return "claims are not a JSON object";
    }
    /* Section 4.1.4: valid strictly before exp; 4.1.5: from nbf on.
     * Either may be fractional (a NumericDate). */
    v = json_object_get(claims, "exp");
    if (v == NULL && a->require_exp) {
        return "no expiry (exp), one is required";
    }
    if (v != NULL && !json_is_number(v)) {
        return "exp is not a number";
    }
    if (v != NULL && now >= json_number_value(v) + leeway) {
        return "token expired (exp)";
    }
    v = json_object_get(claims, "nbf");
    if (v != NULL && !json_is_number(v)) {
        return "nbf is not a number";
    }
    if (v != NULL && now + leeway < json_number_value(v)) {
        return "token not valid yet (nbf)";
    }
    if (a->issuer != NULL
        && !claims_string_is(json_object_get(claims, "iss"), a->issuer))
    {
        return "wrong or no issuer (iss)";
    }
    why = claims_audience(json_object_get(claims, "aud"), a->audience);
    if (why != NULL) {
        return why;
    }
    v = json_object_get(claims, "sub");
    out->sub = json_string_value(v);
    out->sublen = json_string_length(v);
    if (out->sub == NULL
        || !wsh_valid_client_id(out->sub, out->sublen))
    {
        return "sub is missing or not a client id (1-64 of A-Za-z0-9_.:@-)";
    }
    return claims_rooms(json_object_get(claims, a->rooms_claim), a, out);
}
