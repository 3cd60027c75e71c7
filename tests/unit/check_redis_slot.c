/* check_redis_slot.c -- unit tests of hash slots and hash-tagged names
 * (engine/redis_slot.h), with the values of the Redis Cluster
 * specification. */
#include "engine/redis_slot.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT(s) redis_slot(s, sizeof(s) - 1)

/* The specification's check value and examples. */
START_TEST(test_crc16)
{
    ck_assert_uint_eq(redis_crc16("123456789", 9), 0x31c3);
    ck_assert_uint_eq(redis_crc16("", 0), 0);
    ck_assert_uint_eq(SLOT("123456789"), 12739);
    /* CLUSTER KEYSLOT of redis-server 7.0.15. */
    ck_assert_uint_eq(SLOT("foo"), 12182);
    ck_assert_uint_eq(SLOT("bar"), 5061);
    ck_assert_uint_eq(SLOT(""), 0);
    ck_assert_uint_eq(SLOT("foo{}{bar}"), 8363);
}
END_TEST

START_TEST(test_hash_tags)
{
    const char *tag;
    size_t n;

    ck_assert_uint_eq(SLOT("{user1000}.following"),
                      SLOT("{user1000}.followers"));
    ck_assert_uint_eq(SLOT("{user1000}.following"), SLOT("user1000"));
    /* An empty tag: the whole key. */
    ck_assert_uint_eq(SLOT("foo{}{bar}"),
                      redis_crc16("foo{}{bar}", 10) % REDIS_SLOTS);
    ck_assert(!redis_slot_hashed("foo{}{bar}", 10, &tag, &n));
    ck_assert_uint_eq(n, 10);
    /* The first '{' and the first '}' after it. */
    ck_assert_uint_eq(SLOT("foo{{bar}}zap"), SLOT("{bar"));
    ck_assert(redis_slot_hashed("foo{{bar}}zap", 13, &tag, &n));
    ck_assert_uint_eq(n, 4);
    ck_assert(memcmp(tag, "{bar", 4) == 0);
    ck_assert_uint_eq(SLOT("foo{bar}{zap}"), SLOT("bar"));
    ck_assert_uint_eq(SLOT("ignore}{me}"), SLOT("me"));
    /* No '}' after the '{': the whole key. */
    ck_assert(!redis_slot_hashed("a}b{c", 5, &tag, &n));
    ck_assert_uint_eq(SLOT("a}b{c"), redis_crc16("a}b{c", 5) % REDIS_SLOTS);
    /* Binary safe: a NUL inside the tag. */
    ck_assert_uint_eq(redis_slot("x{a\0b}y", 7), redis_slot("a\0b", 3));
}
END_TEST

START_TEST(test_tag_encoding)
{
    static const char *names[] = {
        "/ws#lobby", "/ws#{x}", "/ws#}", "/ws#{", "/ws#%7B", "/ws#%",
        "/ws#a{b}c%d}", "#", ""
    };
    char tag[64], back[64];
    size_t i, n, m;

    for (i = 0; i < wsh_nelems(names); i++) {
        n = redis_tag_encode(tag, names[i], strlen(names[i]));
        ck_assert_uint_le(n, REDIS_TAG_MAX(strlen(names[i])));
        ck_assert_ptr_null(memchr(tag, '{', n));
        ck_assert_ptr_null(memchr(tag, '}', n));
        ck_assert_int_eq(redis_tag_decode(back, tag, n, &m), WSH_OK);
        ck_assert_uint_eq(m, strlen(names[i]));
        ck_assert(memcmp(back, names[i], m) == 0);
    }
    n = redis_tag_encode(tag, "a{%}", 4);
    ck_assert_uint_eq(n, 10);
    ck_assert(memcmp(tag, "a%7B%25%7D", 10) == 0);
    /* What the encoder never writes is refused. */
    ck_assert_int_eq(redis_tag_decode(back, "a{", 2, &m), WSH_ERROR);
    ck_assert_int_eq(redis_tag_decode(back, "}", 1, &m), WSH_ERROR);
    ck_assert_int_eq(redis_tag_decode(back, "%", 1, &m), WSH_ERROR);
    ck_assert_int_eq(redis_tag_decode(back, "%7", 2, &m), WSH_ERROR);
    ck_assert_int_eq(redis_tag_decode(back, "%7b", 3, &m), WSH_ERROR);
    ck_assert_int_eq(redis_tag_decode(back, "%41", 3, &m), WSH_ERROR);
    ck_assert_int_eq(redis_tag_decode(back, "x%2", 3, &m), WSH_ERROR);
}
END_TEST

/* A room's channel and keys share one slot, whatever braces its name
 * holds, and the name is read back from each. */
START_TEST(test_room_names)
{
    static const char *rooms[] = {
        "/ws#lobby", "/ws#{x}", "/ws#}{", "/ws#}", "/ws#{", "/ws#{}",
        "/chat#a%7Db", "/ws#\xc3\xa9t\xc3\xa9"
    };
    static const char *kinds[] = {
        "room:", "presence:", "presence_ids:", "hist:", "client:"
    };
    char key[128], name[128];
    size_t i, k, n, m;
    unsigned slot;

    for (i = 0; i < wsh_nelems(rooms); i++) {
        slot = REDIS_SLOTS;
        for (k = 0; k < wsh_nelems(kinds); k++) {
            n = redis_slot_key(key, sizeof(key), "wshub:", kinds[k],
                               rooms[i], strlen(rooms[i]));
            ck_assert_uint_gt(n, 0);
            if (k == 3) {
                memcpy(key + n, ":s", 2);       /* a history key */
                n += 2;
            }
            if (slot == REDIS_SLOTS) {
                slot = redis_slot(key, n);
            }
            ck_assert_uint_eq(redis_slot(key, n), slot);
            ck_assert_int_eq(redis_slot_key_name(key, n, "wshub:",
                                                 kinds[k], name,
                                                 sizeof(name), &m),
                             WSH_OK);
            ck_assert_uint_eq(m, strlen(rooms[i]));
            ck_assert(memcmp(name, rooms[i], m) == 0);
        }
        /* The slot is the room's own, not the prefix's. */
        n = redis_tag_encode(name, rooms[i], strlen(rooms[i]));
        ck_assert_uint_eq(slot, redis_slot(name, n));
    }
    n = redis_slot_key(key, sizeof(key), "wshub:", "room:", "/ws#{x}", 7);
    key[n] = '\0';
    ck_assert_str_eq(key, "wshub:room:{/ws#%7Bx%7D}");
}
END_TEST

START_TEST(test_bounds)
{
    static const struct {
        const char *key;
        const char *kind;
    } bad[] = {
        { "p:room:{ab}", "hist:" }, { "q:room:{ab}", "room:" },
        { "p:room:ab", "room:" }, { "p:room:{ab", "room:" },
        { "p:room:{a%}", "room:" }, { "p:room:{123456789}", "room:" },
        { "p:room:", "room:" }, { "p:room:{", "room:" }
    };
    char key[32], name[8];
    size_t i, n;

    /* "p:" "room:" "{" "a%7B" "}" = 13 bytes exactly. */
    ck_assert_uint_eq(redis_slot_key(key, 13, "p:", "room:", "a{", 2), 13);
    ck_assert_uint_eq(redis_slot_key(key, 12, "p:", "room:", "a{", 2), 0);
    ck_assert_uint_eq(redis_slot_key(key, 0, "", "", "", 0), 0);
    ck_assert_uint_eq(redis_slot_key(key, 2, "", "", "", 0), 2);
    /* Keys not of the form PREFIX KIND "{" TAG "}", or whose name
     * does not fit in 8 bytes. */
    for (i = 0; i < wsh_nelems(bad); i++) {
        ck_assert_msg(redis_slot_key_name(bad[i].key, strlen(bad[i].key),
                                          "p:", bad[i].kind, name,
                                          sizeof(name), &n) == WSH_ERROR,
                      "%s read", bad[i].key);
    }
    ck_assert_int_eq(redis_slot_key_name("p:room:{}", 9, "p:", "room:",
                                         name, sizeof(name), &n), WSH_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert(redis_slot_prefix_ok("wshub:"));
    ck_assert(redis_slot_prefix_ok(""));
    ck_assert(!redis_slot_prefix_ok("app{1}:"));
    ck_assert(!redis_slot_prefix_ok("app}"));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("redis_slot");
    TCase *tc = tcase_create("redis_slot");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_crc16);
    tcase_add_test(tc, test_hash_tags);
    tcase_add_test(tc, test_tag_encoding);
    tcase_add_test(tc, test_room_names);
    tcase_add_test(tc, test_bounds);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
