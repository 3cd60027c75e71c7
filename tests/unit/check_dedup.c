/* check_dedup.c -- unit tests of the idempotency window (dedup.h). */
#include "engine/dedup.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wsh_dedup_result_t
result(uint64_t offset, const char *epoch, uint8_t flags)
{
    wsh_dedup_result_t r;

    memset(&r, 0, sizeof(r));
    r.offset = offset;
    snprintf(r.epoch, sizeof(r.epoch), "%s", epoch);
    r.flags = flags;
    return r;
}

/* A key is found with its first result within the window, in its own
 * topic only, and forgotten after. */
START_TEST(test_window)
{
    wsh_dedup_t *d = wsh_dedup_new();
    wsh_dedup_result_t r = result(7, "00ff", 8);
    const wsh_dedup_result_t *got;

    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_null(wsh_dedup_find(d, 1, "room", 4, "k", 1, 0));
    ck_assert_int_eq(wsh_dedup_add(d, 1, "room", 4, "k", 1, &r, 1000, 500),
                     WSH_OK);
    got = wsh_dedup_find(d, 1, "room", 4, "k", 1, 1499);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->offset, 7);
    ck_assert_str_eq(got->epoch, "00ff");
    ck_assert_uint_eq(got->flags, 8);
    /* Same key, another topic or kind: not the same publish. */
    ck_assert_ptr_null(wsh_dedup_find(d, 1, "room2", 5, "k", 1, 1100));
    ck_assert_ptr_null(wsh_dedup_find(d, 2, "room", 4, "k", 1, 1100));
    /* "ro" + "om\0k" must not meet "room" + "k". */
    ck_assert_ptr_null(wsh_dedup_find(d, 1, "ro", 2, "om", 2, 1100));
    ck_assert_ptr_null(wsh_dedup_find(d, 1, "room", 4, "k", 1, 1500));
    wsh_dedup_expire(d, 1500);
    ck_assert_uint_eq(wsh_dedup_count(d), 0);
    /* Bad lengths are never keys. */
    ck_assert_int_eq(wsh_dedup_add(d, 1, "room", 4, "", 0, &r, 0, 1),
                     WSH_ERROR);
    ck_assert_ptr_null(wsh_dedup_find(d, 1, "room", 4, "", 0, 0));
    wsh_dedup_free(d);
}
END_TEST

/* Expiry takes the oldest first; past WSH_DEDUP_MAX the oldest go
 * early and are counted; a key added again after its window replaces
 * the stale entry. */
START_TEST(test_bounds)
{
    wsh_dedup_t *d = wsh_dedup_new();
    wsh_dedup_result_t r = result(0, "", 0);
    char key[32];
    size_t i;

    for (i = 0; i < WSH_DEDUP_MAX + 10; i++) {
        snprintf(key, sizeof(key), "key-%zu", i);
        r.offset = i + 1;
        ck_assert_int_eq(wsh_dedup_add(d, 0, "", 0, key, strlen(key), &r,
                                       (wsh_msec_t) i, 1000000), WSH_OK);
    }
    ck_assert_uint_eq(wsh_dedup_count(d), WSH_DEDUP_MAX);
    ck_assert_uint_eq(wsh_dedup_evicted(d), 10);
    ck_assert_ptr_null(wsh_dedup_find(d, 0, "", 0, "key-9", 5, 0));
    ck_assert_uint_eq(wsh_dedup_find(d, 0, "", 0, "key-10", 6, 0)->offset,
                      11);
    /* key-10 was added at 10: gone at 1000010, key-11 still there. */
    wsh_dedup_expire(d, 1000010);
    ck_assert_ptr_null(wsh_dedup_find(d, 0, "", 0, "key-10", 6, 1000010));
    ck_assert_ptr_nonnull(wsh_dedup_find(d, 0, "", 0, "key-11", 6, 1000010));
    /* Stale but not swept: replaced. */
    r.offset = 99;
    ck_assert_int_eq(wsh_dedup_add(d, 0, "", 0, "key-11", 6, &r, 1000011,
                                   5), WSH_OK);
    ck_assert_uint_eq(wsh_dedup_find(d, 0, "", 0, "key-11", 6,
                                     1000012)->offset, 99);
    wsh_dedup_free(d);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("dedup");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_window);
    tcase_add_test(tc, test_bounds);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
