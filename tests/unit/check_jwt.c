/* check_jwt.c -- unit tests of auth_jwt's pure parts and of identities.
 *
 * Where the token is found (Authorization: Bearer, the query parameter),
 * the claim checks of claims.c on hand-written claim sets (exp and nbf
 * at the edges of the leeway, aud as string and array, iss, sub, the
 * rooms claim, exp required or not), the crit header, and the room
 * patterns of a connection's identity. The signatures themselves are
 * libjwt's and are tested end to end in tests/integration/test_auth.py
 * with real keys.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "auth_jwt/auth_jwt.h"
#include "net/identity.h"

#define NOW 1800000000.0

static wsh_conf_auth_jwt_t conf;

/* The section's defaults (auth_jwt.c). */
static void
conf_reset(void)
{
    memset(&conf, 0, sizeof(conf));
    conf.require_exp = true;
    conf.rooms_claim = "rooms";
}

/* The defaults but require_exp: off, for the claim sets below that
 * leave exp out to stay short. */
static void
conf_reset_no_exp(void)
{
    conf_reset();
    conf.require_exp = false;
}

/* The reason CLAIMS (JSON text) are refused at NOW, or NULL. */
static const char *
check(const char *claims, wsh_jwt_claims_t *out)
{
    static wsh_jwt_claims_t scratch;
    static json_t *last;
    json_error_t err;

    json_decref(last);          /* OUT points into the previous claims */
    last = json_loads(claims, JSON_ALLOW_NUL, &err);
    ck_assert_msg(last != NULL, "bad test JSON %s: %s", claims, err.text);
    return wsh_jwt_check_claims(last, &conf, NOW, out ? out : &scratch);
}

/* The reason a token with HEADER (JSON text) is refused, or NULL. */
static const char *
check_header(const char *header)
{
    static json_t *last;
    json_error_t err;

    json_decref(last);
    last = json_loads(header, 0, &err);
    ck_assert_msg(last != NULL, "bad test JSON %s: %s", header, err.text);
    return wsh_jwt_check_header(last);
}

static const char *
token(const char *authz, const char *query, const char *param)
{
    static char buf[256];
    const char *t;
    size_t len;

    t = wsh_jwt_token(authz, authz ? strlen(authz) : 0, query,
                      query ? strlen(query) : 0, param, &len);
    if (t == NULL) {
        return NULL;
    }
    ck_assert_uint_lt(len, sizeof(buf));
    memcpy(buf, t, len);
    buf[len] = '\0';
    return buf;
}

START_TEST(test_token_sources)
{
    ck_assert_str_eq(token("Bearer abc.def.ghi", NULL, "token"),
                     "abc.def.ghi");
    ck_assert_str_eq(token("bearer   x.y.z", NULL, "token"), "x.y.z");
    ck_assert_str_eq(token(NULL, "id=a&token=t.u.v&x=1", "token"), "t.u.v");
    ck_assert_str_eq(token(NULL, "token=t.u.v", "token"), "t.u.v");
    /* The header wins over the query. */
    ck_assert_str_eq(token("Bearer h.h.h", "token=q.q.q", "token"), "h.h.h");
    /* Other schemes and empty values are no token. */
    ck_assert_str_eq(token("Basic dXNlcg==", "token=q.q.q", "token"),
                     "q.q.q");
    ck_assert_ptr_null(token("Basic dXNlcg==", NULL, "token"));
    ck_assert_ptr_null(token("Bearer ", NULL, "token"));
    ck_assert_ptr_null(token("Bearer", NULL, "token"));
    ck_assert_ptr_null(token(NULL, "token=", "token"));
    ck_assert_ptr_null(token(NULL, "xtoken=a.b.c&tokens=a", "token"));
    ck_assert_ptr_null(token(NULL, "token=a.b.c", NULL));
    ck_assert_str_eq(token(NULL, "access_token=a.b.c", "access_token"),
                     "a.b.c");
}
END_TEST

START_TEST(test_exp_nbf_leeway)
{
    conf_reset_no_exp();
    ck_assert_ptr_null(check("{\"sub\":\"a\"}", NULL));
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"exp\":1800000001}", NULL));
    /* Valid strictly before exp (RFC 7519 section 4.1.4). */
    ck_assert_str_eq(check("{\"sub\":\"a\",\"exp\":1800000000}", NULL),
                     "token expired (exp)");
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"exp\":1800000000.5}", NULL));
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"nbf\":1800000000}", NULL));
    ck_assert_str_eq(check("{\"sub\":\"a\",\"nbf\":1800000001}", NULL),
                     "token not valid yet (nbf)");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"exp\":\"1\"}", NULL),
                     "exp is not a number");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"nbf\":null}", NULL),
                     "nbf is not a number");

    conf.leeway = 60000;
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"exp\":1799999941}", NULL));
    ck_assert_str_eq(check("{\"sub\":\"a\",\"exp\":1799999940}", NULL),
                     "token expired (exp)");
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"nbf\":1800000060}", NULL));
    ck_assert_str_eq(check("{\"sub\":\"a\",\"nbf\":1800000061}", NULL),
                     "token not valid yet (nbf)");
}
END_TEST

START_TEST(test_require_exp)
{
    /* On by default (issue 19): a token without exp would be valid
     * forever, and nothing could revoke it. */
    conf_reset();
    ck_assert_str_eq(check("{\"sub\":\"a\"}", NULL),
                     "no expiry (exp), one is required");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"nbf\":1700000000}", NULL),
                     "no expiry (exp), one is required");
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"exp\":1800000001}", NULL));
    ck_assert_str_eq(check("{\"sub\":\"a\",\"exp\":1800000000}", NULL),
                     "token expired (exp)");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"exp\":null}", NULL),
                     "exp is not a number");

    /* require_exp: off accepts it, and still checks an exp given. */
    conf.require_exp = false;
    ck_assert_ptr_null(check("{\"sub\":\"a\"}", NULL));
    ck_assert_str_eq(check("{\"sub\":\"a\",\"exp\":1800000000}", NULL),
                     "token expired (exp)");
}
END_TEST

START_TEST(test_crit_header)
{
    static const char *const crit[] = {
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}",
        "{\"alg\":\"HS256\",\"crit\":[]}",
        "{\"alg\":\"HS256\",\"crit\":\"x\"}",
        "{\"alg\":\"HS256\",\"crit\":null}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":false}",
    };
    size_t i;

    /* RFC 7515 section 4.1.11: we understand no extension, so any crit
     * (even an empty or malformed one) refuses the token. */
    for (i = 0; i < sizeof(crit) / sizeof(crit[0]); i++) {
        ck_assert_msg(check_header(crit[i]) != NULL, "%s passed", crit[i]);
        ck_assert_str_eq(check_header(crit[i]),
                         "crit header: no extension is understood");
    }
    ck_assert_ptr_null(check_header("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"));
    ck_assert_ptr_null(check_header("{\"alg\":\"RS256\",\"kid\":\"k1\","
                                    "\"critical\":1}"));
    ck_assert_ptr_nonnull(check_header("[\"crit\"]"));
}
END_TEST

START_TEST(test_aud_iss)
{
    conf_reset_no_exp();
    ck_assert_str_eq(check("{\"sub\":\"a\",\"aud\":\"x\"}", NULL),
                     "token for an audience (aud), none is configured");
    conf.audience = "chat";
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"aud\":\"chat\"}", NULL));
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"aud\":[\"x\",\"chat\"]}",
                             NULL));
    ck_assert_str_eq(check("{\"sub\":\"a\",\"aud\":\"chat2\"}", NULL),
                     "wrong audience (aud)");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"aud\":\"cha\"}", NULL),
                     "wrong audience (aud)");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"aud\":\"chat\\u0000x\"}", NULL),
                     "wrong audience (aud)");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"aud\":[]}", NULL),
                     "wrong audience (aud)");
    ck_assert_str_eq(check("{\"sub\":\"a\",\"aud\":[[\"chat\"]]}", NULL),
                     "wrong audience (aud)");
    ck_assert_str_eq(check("{\"sub\":\"a\"}", NULL),
                     "no audience (aud), one is required");
    conf.audience = NULL;
    conf.issuer = "https://idp";
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"iss\":\"https://idp\"}",
                             NULL));
    ck_assert_str_eq(check("{\"sub\":\"a\",\"iss\":\"https://idp/\"}", NULL),
                     "wrong or no issuer (iss)");
    ck_assert_str_eq(check("{\"sub\":\"a\"}", NULL),
                     "wrong or no issuer (iss)");
}
END_TEST

START_TEST(test_sub)
{
    static const char *const bad[] = {
        "{}", "{\"sub\":1}", "{\"sub\":\"\"}", "{\"sub\":\"a b\"}",
        "{\"sub\":\"a\\u0000b\"}", "{\"sub\":\"a/b\"}",
        "{\"sub\":\"12345678901234567890123456789012345678901234567890"
        "123456789012345\"}",
    };
    wsh_jwt_claims_t out;
    size_t i;

    conf_reset_no_exp();
    ck_assert_ptr_null(check("{\"sub\":\"user@example.com:1_x-y\"}", &out));
    ck_assert_uint_eq(out.sublen, strlen("user@example.com:1_x-y"));
    ck_assert_int_eq(memcmp(out.sub, "user@example.com:1_x-y", out.sublen),
                     0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check(bad[i], NULL) != NULL, "%s passed", bad[i]);
    }
}
END_TEST

START_TEST(test_rooms_claim)
{
    wsh_jwt_claims_t out;

    conf_reset_no_exp();
    ck_assert_ptr_null(check("{\"sub\":\"a\"}", &out));
    ck_assert(out.all_rooms);
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"rooms\":[]}", &out));
    ck_assert(!out.all_rooms);
    ck_assert_uint_eq(out.nrooms, 0);
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"rooms\":[\"chat:*\",\"lobby\","
                             "\"*\"]}", &out));
    ck_assert_uint_eq(out.nrooms, 3);
    ck_assert_uint_eq(out.lens[0], 6);
    ck_assert_int_eq(memcmp(out.rooms[1], "lobby", 5), 0);
    ck_assert_ptr_nonnull(check("{\"sub\":\"a\",\"rooms\":\"lobby\"}", NULL));
    ck_assert_ptr_nonnull(check("{\"sub\":\"a\",\"rooms\":[1]}", NULL));
    ck_assert_ptr_nonnull(check("{\"sub\":\"a\",\"rooms\":[\"\"]}", NULL));
    ck_assert_ptr_nonnull(check("{\"sub\":\"a\",\"rooms\":[\"a*b\"]}", NULL));
    ck_assert_ptr_nonnull(check("{\"sub\":\"a\",\"rooms\":[\"**\"]}", NULL));
    ck_assert_ptr_nonnull(check("{\"sub\":\"a\",\"rooms\":[\"a b\"]}", NULL));

    conf.rooms_claim = "perm";
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"rooms\":1}", &out));
    ck_assert(out.all_rooms);
    conf.rooms_claim_required = true;
    ck_assert_str_eq(check("{\"sub\":\"a\"}", NULL),
                     "no rooms claim, one is required");
    ck_assert_ptr_null(check("{\"sub\":\"a\",\"perm\":[\"x\"]}", NULL));
}
END_TEST

START_TEST(test_too_many_rooms)
{
    char *text = malloc(64 + 4 * (WSH_JWT_MAX_ROOMS + 1));
    size_t i, n;

    conf_reset_no_exp();
    n = (size_t) sprintf(text, "{\"sub\":\"a\",\"rooms\":[");
    for (i = 0; i <= WSH_JWT_MAX_ROOMS; i++) {
        n += (size_t) sprintf(text + n, "%s\"r\"", i ? "," : "");
    }
    strcpy(text + n, "]}");
    ck_assert_ptr_nonnull(check(text, NULL));
    free(text);
}
END_TEST

static bool
may(const wsh_identity_t *id, const char *room)
{
    return wsh_identity_may(id, room, strlen(room));
}

START_TEST(test_identity_patterns)
{
    const char *pats[] = { "chat:*", "lobby", "*x" };
    size_t lens[] = { 6, 5, 2 };
    wsh_identity_t *id;
    const char *user;
    size_t len;

    id = wsh_identity_new("alice", 5, pats, lens, 2);
    ck_assert_ptr_nonnull(id);
    user = wsh_identity_user(id, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(user, "alice", 5), 0);
    ck_assert(may(id, "chat:"));
    ck_assert(may(id, "chat:general"));
    ck_assert(may(id, "lobby"));
    ck_assert(!may(id, "chat"));
    ck_assert(!may(id, "lobby2"));
    ck_assert(!may(id, "lobb"));
    ck_assert(!may(id, "admin"));
    free(id);

    id = wsh_identity_new("bob", 3, pats, lens, 0);     /* no room */
    ck_assert(!may(id, "lobby"));
    free(id);
    id = wsh_identity_new("bob", 3, NULL, NULL, 0);     /* every room */
    ck_assert(may(id, "anything"));
    free(id);
    pats[0] = "*";
    lens[0] = 1;
    id = wsh_identity_new("bob", 3, pats, lens, 1);
    ck_assert(may(id, "anything"));
    free(id);

    /* Lengths out of range are refused, not truncated. */
    ck_assert_ptr_null(wsh_identity_new("", 0, NULL, NULL, 0));
    ck_assert_ptr_null(wsh_identity_new("a", 256, NULL, NULL, 0));
    lens[0] = 0;
    ck_assert_ptr_null(wsh_identity_new("a", 1, pats, lens, 1));
}
END_TEST

static Suite *
jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc;

    tc = tcase_create("token");
    tcase_add_test(tc, test_token_sources);
    suite_add_tcase(s, tc);

    tc = tcase_create("claims");
    tcase_add_test(tc, test_exp_nbf_leeway);
    tcase_add_test(tc, test_require_exp);
    tcase_add_test(tc, test_crit_header);
    tcase_add_test(tc, test_aud_iss);
    tcase_add_test(tc, test_sub);
    tcase_add_test(tc, test_rooms_claim);
    tcase_add_test(tc, test_too_many_rooms);
    suite_add_tcase(s, tc);

    tc = tcase_create("identity");
    tcase_add_test(tc, test_identity_patterns);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    sr = srunner_create(jwt_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
