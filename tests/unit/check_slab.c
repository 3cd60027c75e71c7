/* check_slab.c -- unit tests of the fixed-size object allocator. */
#include "core/slab.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

enum { N = 5000 };

/* Every object is distinct, aligned and zeroed, whatever was freed
 * before; pages go back once empty, all but the last with room. */
START_TEST(test_alloc_free)
{
    static wsh_slab_t s = WSH_SLAB(44);
    static u_char *v[N];
    size_t pages;
    int i, j;

    ck_assert_uint_eq(s.size, 48);
    for (i = 0; i < N; i++) {
        v[i] = wsh_slab_calloc(&s);
        ck_assert_ptr_nonnull(v[i]);
        ck_assert_uint_eq((uintptr_t) v[i] % 8, 0);
        for (j = 0; j < 48; j++) {
            ck_assert_uint_eq(v[i][j], 0);
        }
        memset(v[i], 0xa5, 48);
    }
    pages = s.pages;
    ck_assert_uint_ge(pages, N * 48 / 16384 + 1);
    /* Every other object: no page empties, and the next allocations
     * take the freed ones, zeroed again. */
    for (i = 0; i < N; i += 2) {
        wsh_slab_free(&s, v[i]);
    }
    ck_assert_uint_eq(s.pages, pages);
    for (i = 0; i < N; i += 2) {
        v[i] = wsh_slab_calloc(&s);
        ck_assert_uint_eq(v[i][0], 0);
        ck_assert_uint_eq(v[i][47], 0);
        memset(v[i], 0x5a, 48);
    }
    ck_assert_uint_eq(s.pages, pages);
    for (i = 1; i < N; i += 2) {
        ck_assert_uint_eq(v[i][0], 0xa5);
        ck_assert_uint_eq(v[i][47], 0xa5);
    }
    for (i = 0; i < N; i++) {
        wsh_slab_free(&s, v[i]);
    }
    ck_assert_uint_eq(s.pages, 1);
    wsh_slab_free(&s, NULL);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("slab");
    TCase *tc = tcase_create("slab");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_alloc_free);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
