/* check_placement.c -- unit tests for the placement of topics on Redis
 * shards (engine/placement.c): FNV-1a and jump consistent hash against
 * published vectors, and what placement promises: every key in range,
 * one shard takes all, shards share 1000 room channels evenly, and
 * adding a fourth shard to three moves about a quarter of them, each to
 * the new shard only.
 */
#include "engine/placement.h"
#include "wshub.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOMS 1000

/* A room channel as the engine names it (redis.c, redis_channel). */
static size_t
room_channel(char *buf, size_t size, unsigned i)
{
    int n = snprintf(buf, size, "wshub:room:/ws#room-%u", i);

    ck_assert_int_gt(n, 0);
    return (size_t) n;
}

/* FNV-1a 64 of "", "a" and "foobar" (the FNV reference test suite). */
START_TEST(test_fnv1a_vectors)
{
    ck_assert_uint_eq(wsh_fnv1a64("", 0), 0xcbf29ce484222325ULL);
    ck_assert_uint_eq(wsh_fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
    ck_assert_uint_eq(wsh_fnv1a64("foobar", 6),
                      0x85944171f73967e8ULL);
}
END_TEST

/* The paper's code gives these (the vectors of the Go and Rust ports). */
START_TEST(test_jump_vectors)
{
    ck_assert_uint_eq(wsh_placement_jump(10863919174838991ULL, 11), 6);
    ck_assert_uint_eq(wsh_placement_jump(2016238256797177309ULL, 11), 3);
    ck_assert_uint_eq(wsh_placement_jump(0, 1), 0);
    ck_assert_uint_eq(wsh_placement_jump(UINT64_MAX, 1), 0);
}
END_TEST

START_TEST(test_one_shard_takes_all)
{
    char ch[64];
    unsigned i;

    for (i = 0; i < ROOMS; i++) {
        ck_assert_uint_eq(wsh_placement_shard(ch, room_channel(ch, sizeof(ch),
                                                               i), 1), 0);
    }
    /* And a zero count is taken as one, never a division by zero. */
    ck_assert_uint_eq(wsh_placement_shard("x", 1, 0), 0);
}
END_TEST

/* 1000 rooms over 3 shards: each gets a third, within 20%. */
START_TEST(test_spread_evenly)
{
    unsigned count[3] = { 0, 0, 0 }, i, s;
    char ch[64];

    for (i = 0; i < ROOMS; i++) {
        s = wsh_placement_shard(ch, room_channel(ch, sizeof(ch), i), 3);
        ck_assert_uint_lt(s, 3);
        count[s]++;
    }
    for (s = 0; s < 3; s++) {
        ck_assert_uint_gt(count[s], ROOMS / 3 * 8 / 10);
        ck_assert_uint_lt(count[s], ROOMS / 3 * 12 / 10);
    }
}
END_TEST

/* From 3 to 4 shards: a room moves only to shard 3, and about 1/4 of
 * them do (within 0.20 and 0.30: four standard deviations of a
 * binomial(1000, 1/4) are 0.055). */
START_TEST(test_fourth_shard_moves_a_quarter)
{
    unsigned i, moved = 0, a, b;
    char ch[64];
    size_t n;

    for (i = 0; i < ROOMS; i++) {
        n = room_channel(ch, sizeof(ch), i);
        a = wsh_placement_shard(ch, n, 3);
        b = wsh_placement_shard(ch, n, 4);
        if (a != b) {
            ck_assert_uint_eq(b, 3);
            moved++;
        }
    }
    ck_assert_uint_ge(moved, ROOMS * 20 / 100);
    ck_assert_uint_le(moved, ROOMS * 30 / 100);
}
END_TEST

/* Consistent all the way: from N to N + 1 shards (N up to 32) a key
 * stays or goes to shard N, never elsewhere. */
START_TEST(test_grow_moves_only_to_the_new_shard)
{
    unsigned i, n, a, b;
    uint64_t key;

    for (i = 0; i < ROOMS; i++) {
        key = wsh_fnv1a64(&i, sizeof(i));
        a = wsh_placement_jump(key, 1);
        for (n = 2; n <= 32; n++) {
            b = wsh_placement_jump(key, n);
            ck_assert(b == a || b == n - 1);
            a = b;
        }
    }
}
END_TEST

static Suite *
placement_suite(void)
{
    Suite *s = suite_create("placement");
    TCase *tc = tcase_create("hash");

    tcase_add_test(tc, test_fnv1a_vectors);
    tcase_add_test(tc, test_jump_vectors);
    suite_add_tcase(s, tc);

    tc = tcase_create("shards");
    tcase_add_test(tc, test_one_shard_takes_all);
    tcase_add_test(tc, test_spread_evenly);
    tcase_add_test(tc, test_fourth_shard_moves_a_quarter);
    tcase_add_test(tc, test_grow_moves_only_to_the_new_shard);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    sr = srunner_create(placement_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
