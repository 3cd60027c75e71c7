/* check_redis_cluster_map.c -- unit tests of the slot map and the
 * redirections (engine/redis_cluster_map.h), on replies built by
 * hiredis's own reader from RESP text, well-formed and not. */
#include "engine/redis_cluster_map.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R(s) s, sizeof(s) - 1

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccc"
#define ID_D "dddddddddddddddddddddddddddddddddddddddd"

static char text[65536];
static size_t tlen;

/* Append to the RESP text under construction. */
static void
put(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tlen += (size_t) vsnprintf(text + tlen, sizeof(text) - tlen, fmt, ap);
    va_end(ap);
    ck_assert_uint_lt(tlen, sizeof(text));
}

static void
bulk(const char *s)
{
    put("$%zu\r\n%s\r\n", strlen(s), s);
}

/* A 7.0 node entry: host, port, id, metadata (an empty array). */
static void
node(const char *host, int port, const char *id)
{
    put("*4\r\n");
    bulk(host);
    put(":%d\r\n", port);
    bulk(id);
    put("*0\r\n");
}

/* The reply the text so far reads as, by hiredis's reader. */
static redisReply *
reply(void)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;

    ck_assert_ptr_nonnull(rd);
    ck_assert_int_eq(redisReaderFeed(rd, text, tlen), REDIS_OK);
    ck_assert_int_eq(redisReaderGetReply(rd, &r), REDIS_OK);
    ck_assert_ptr_nonnull(r);
    redisReaderFree(rd);
    tlen = 0;
    return r;
}

/* The map of the text, or NULL with ERR. */
static redis_cluster_map_t *
parse(char *err, size_t len)
{
    redisReply *r = reply();
    redis_cluster_map_t *m;

    err[0] = '\0';
    m = redis_cluster_map_parse(r, "10.0.0.9", err, len);
    freeReplyObject(r);
    return m;
}

/* Three masters with a replica each, as redis-cli --cluster create
 * makes them. */
START_TEST(test_three_masters)
{
    redis_cluster_map_t *m;
    const redis_cluster_node_t *n;
    char err[256];

    put("*3\r\n");
    put("*4\r\n:0\r\n:5460\r\n");
    node("127.0.0.1", 7000, ID_A);
    node("127.0.0.1", 7003, ID_D);
    put("*4\r\n:5461\r\n:10922\r\n");
    node("127.0.0.1", 7001, ID_B);
    node("127.0.0.1", 7004, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    put("*4\r\n:10923\r\n:16383\r\n");
    node("127.0.0.1", 7002, ID_C);
    node("127.0.0.1", 7005, "ffffffffffffffffffffffffffffffffffffffff");
    m = parse(err, sizeof(err));
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_uint_eq(m->nnodes, 6);
    ck_assert_uint_eq(m->masters, 3);
    ck_assert_uint_eq(m->assigned, REDIS_SLOTS);
    n = redis_cluster_map_node(m, 0);
    ck_assert_uint_eq(n->port, 7000);
    ck_assert_str_eq(n->host, "127.0.0.1");
    ck_assert_str_eq(n->id, ID_A);
    ck_assert(n->master);
    ck_assert_uint_eq(n->slots, 5461);
    ck_assert_uint_eq(redis_cluster_map_node(m, 5460)->port, 7000);
    ck_assert_uint_eq(redis_cluster_map_node(m, 5461)->port, 7001);
    ck_assert_uint_eq(redis_cluster_map_node(m, 12739)->port, 7002);
    ck_assert_uint_eq(redis_cluster_map_node(m, 16383)->port, 7002);
    ck_assert_ptr_null(redis_cluster_map_node(m, 16384));
    ck_assert_int_eq(redis_cluster_map_find(m, "127.0.0.1", 7003), 1);
    ck_assert(!m->nodes[1].master);
    ck_assert_int_eq(redis_cluster_map_find(m, "127.0.0.1", 7999), -1);
    ck_assert_int_eq(redis_cluster_map_find(m, "127.0.0.2", 7000), -1);
    redis_cluster_map_free(m);
}
END_TEST

/* A master of several ranges is one node; slots nobody serves stay
 * NONE; unknown endpoints are the seed's; old replies without id or
 * metadata are read. */
START_TEST(test_shapes)
{
    redis_cluster_map_t *m;
    char err[256];

    put("*4\r\n");
    put("*3\r\n:0\r\n:99\r\n");
    node("h1", 7000, ID_A);
    put("*3\r\n:200\r\n:299\r\n");
    node("h1", 7000, ID_A);
    put("*3\r\n:300\r\n:300\r\n*3\r\n$-1\r\n:7001\r\n");
    bulk(ID_B);
    put("*4\r\n:301\r\n:301\r\n*2\r\n$1\r\n?\r\n:7002\r\n"
        "*2\r\n$0\r\n\r\n:7003\r\n");
    m = parse(err, sizeof(err));
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_uint_eq(m->nnodes, 4);
    ck_assert_uint_eq(m->masters, 3);
    ck_assert_uint_eq(m->assigned, 202);
    ck_assert_uint_eq(m->nodes[0].slots, 200);
    ck_assert_ptr_null(redis_cluster_map_node(m, 100));
    ck_assert_ptr_null(redis_cluster_map_node(m, 302));
    ck_assert_uint_eq(m->slot[100], REDIS_CLUSTER_NONE);
    ck_assert_str_eq(redis_cluster_map_node(m, 250)->id, ID_A);
    ck_assert_str_eq(redis_cluster_map_node(m, 300)->host, "10.0.0.9");
    ck_assert_str_eq(redis_cluster_map_node(m, 301)->host, "10.0.0.9");
    ck_assert_str_eq(redis_cluster_map_node(m, 301)->id, "");
    ck_assert_int_eq(redis_cluster_map_find(m, "10.0.0.9", 7003), 3);
    redis_cluster_map_free(m);

    /* A cluster with no slots assigned yet. */
    put("*0\r\n");
    m = parse(err, sizeof(err));
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->assigned, 0);
    ck_assert_uint_eq(m->nnodes, 0);
    redis_cluster_map_free(m);
}
END_TEST

/* Each malformed reply is refused with a message naming the fault. */
START_TEST(test_malformed)
{
    static const struct {
        const char *resp;
        size_t      n;
        const char *why;
    } bad[] = {
        { R("-ERR This instance has cluster support disabled\r\n"),
          "cluster support disabled" },
        { R("+OK\r\n"), "not an array" },
        { R(":1\r\n"), "not an array" },
        { R("$-1\r\n"), "not an array" },
        { R("*1\r\n:0\r\n"), "range 0: not an array" },
        { R("*1\r\n*2\r\n:0\r\n:1\r\n"), "range 0: not an array" },
        { R("*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
          "range 0: not an array" },
        { R("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
          "not within 0-16383" },
        { R("*1\r\n*3\r\n:-1\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n"),
          "not within" },
        { R("*1\r\n*3\r\n:9\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n"), "not within" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n:7\r\n"), "node 0: not an array" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*1\r\n$1\r\nh\r\n"),
          "node 0: not an array" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n:1\r\n:1\r\n"),
          "host is not a string" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n$4\r\n7000\r\n"),
          "port is not an integer" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:0\r\n"),
          "port is not an integer" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:65536\r\n"),
          "port is not an integer" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*3\r\n$1\r\nh\r\n:1\r\n:5\r\n"),
          "id is not a string" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*3\r\n$1\r\nh\r\n:1\r\n$41\r\n"
            ID_A "a\r\n"), "id is not a string" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*4\r\n$1\r\nh\r\n:1\r\n$1\r\na\r\n"
          ":3\r\n"), "metadata is not an array" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*5\r\n$1\r\nh\r\n:1\r\n$1\r\na\r\n"
          "*0\r\n*0\r\n"), "5 elements" },
        { R("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$3\r\nh\0h\r\n:1\r\n"),
          "host of 3 bytes" },
        /* Overlapping ranges, and a master listed as its own replica. */
        { R("*2\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n"
          "*3\r\n:5\r\n:9\r\n*2\r\n$1\r\nh\r\n:2\r\n"),
          "range 1: slot 5 is in an earlier range" },
        { R("*1\r\n*4\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n"
          "*2\r\n$1\r\nh\r\n:1\r\n"), "its master again" },
    };
    redis_cluster_map_t *m;
    char err[256];
    size_t i, n;

    for (i = 0; i < wsh_nelems(bad); i++) {
        n = bad[i].n;       /* some hold a NUL */
        memcpy(text, bad[i].resp, n);
        tlen = n;
        m = parse(err, sizeof(err));
        ck_assert_msg(m == NULL, "reply %zu accepted", i);
        ck_assert_msg(strstr(err, bad[i].why) != NULL,
                      "reply %zu: \"%s\", not \"%s\"", i, err, bad[i].why);
        ck_assert_msg(strncmp(err, "CLUSTER SLOTS: ", 15) == 0, "%s", err);
    }
    ck_assert_ptr_null(redis_cluster_map_parse(NULL, "h", err, sizeof(err)));
}
END_TEST

/* More nodes than a map holds. */
START_TEST(test_too_many_nodes)
{
    redis_cluster_map_t *m;
    char err[256], host[32];
    int i;

    put("*%d\r\n", REDIS_CLUSTER_NODES_MAX + 1);
    for (i = 0; i <= REDIS_CLUSTER_NODES_MAX; i++) {
        put("*3\r\n:%d\r\n:%d\r\n", i, i);
        snprintf(host, sizeof(host), "10.0.%d.%d", i / 256, i % 256);
        put("*2\r\n");
        bulk(host);
        put(":7000\r\n");
    }
    m = parse(err, sizeof(err));
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err, "more than 1024 nodes") != NULL, "%s", err);
}
END_TEST

START_TEST(test_redirect)
{
    static const struct {
        const char *err;
        int         rc;
        bool        ask;
        unsigned    slot;
        const char *host;
        unsigned    port;
    } cases[] = {
        { "MOVED 3999 127.0.0.1:6381", WSH_OK, false, 3999, "127.0.0.1",
          6381 },
        { "-ASK 3999 127.0.0.1:6381\r\n", WSH_OK, true, 3999, "127.0.0.1",
          6381 },
        { "MOVED 0 ::1:7000", WSH_OK, false, 0, "::1", 7000 },
        { "MOVED 16383 [fe80::1:2]:7000", WSH_OK, false, 16383, "fe80::1:2",
          7000 },
        { "ASK 12 redis-2.example.org:65535", WSH_OK, true, 12,
          "redis-2.example.org", 65535 },
        { "MOVED 12 :7001", WSH_OK, false, 12, "", 7001 },
        { "ERR unknown command", WSH_DECLINED, false, 0, NULL, 0 },
        { "MOVEDX 1 h:1", WSH_DECLINED, false, 0, NULL, 0 },
        { "TRYAGAIN Multiple keys request during rehashing of slot",
          WSH_DECLINED, false, 0, NULL, 0 },
        { "", WSH_DECLINED, false, 0, NULL, 0 },
        { "MOVED 16384 h:1", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 99999999999999999999 h:1", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED -1 h:1", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED  h:1", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 h", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 h:", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 h:0", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 h:65536", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 h:80x", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 h:80 ", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 h h:80", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 [::1:80", WSH_ERROR, false, 0, NULL, 0 },
        { "MOVED 1 ::1]:80", WSH_ERROR, false, 0, NULL, 0 },
        { "ASK x h:1", WSH_ERROR, false, 0, NULL, 0 },
    };
    redis_cluster_redirect_t rd;
    char longer[400];
    size_t i;

    for (i = 0; i < wsh_nelems(cases); i++) {
        memset(&rd, 0, sizeof(rd));
        ck_assert_msg(redis_cluster_redirect(cases[i].err,
                                             strlen(cases[i].err), &rd)
                      == cases[i].rc, "case %zu: %s", i, cases[i].err);
        if (cases[i].rc == WSH_OK) {
            ck_assert(rd.ask == cases[i].ask);
            ck_assert_uint_eq(rd.slot, cases[i].slot);
            ck_assert_str_eq(rd.host, cases[i].host);
            ck_assert_uint_eq(rd.port, cases[i].port);
        }
    }
    /* A host of 255 bytes is one; of 256, too long. */
    memset(longer, 'h', sizeof(longer));
    memcpy(longer, "MOVED 1 ", 8);
    memcpy(longer + 8 + 255, ":80", 3);
    ck_assert_int_eq(redis_cluster_redirect(longer, 8 + 255 + 3, &rd),
                     WSH_OK);
    ck_assert_uint_eq(strlen(rd.host), 255);
    memset(longer, 'h', sizeof(longer));
    memcpy(longer, "MOVED 1 ", 8);
    memcpy(longer + 8 + 256, ":80", 3);
    ck_assert_int_eq(redis_cluster_redirect(longer, 8 + 256 + 3, &rd),
                     WSH_ERROR);
    /* Not NUL-terminated: only LEN bytes are read. */
    ck_assert_int_eq(redis_cluster_redirect("ASK 7 h:12345", 11, &rd),
                     WSH_OK);
    ck_assert_uint_eq(rd.port, 123);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("redis_cluster_map");
    TCase *tc = tcase_create("redis_cluster_map");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_three_masters);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_too_many_nodes);
    tcase_add_test(tc, test_redirect);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
