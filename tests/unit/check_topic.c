/* check_topic.c -- unit tests of the per-worker topic index. */
#include "engine/topic.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stand-in for a connection: its membership list. */
typedef struct {
    wsh_queue_t topics;
} owner_t;

static void
owner_init(owner_t *o)
{
    wsh_queue_init(&o->topics);
}

static void
leave(wsh_member_t *m, bool *last)
{
    wsh_topic_t *t = m->topic;

    wsh_topic_remove(m, last);
    if (*last) {
        free(t);
    }
    free(m);
}

START_TEST(test_join_find_leave)
{
    owner_t a, b;
    wsh_member_t *ma, *mb;
    wsh_topic_t *t;
    bool first, last;

    ck_assert_int_eq(wsh_topic_index_init(), WSH_OK);
    owner_init(&a);
    owner_init(&b);
    ck_assert_ptr_null(wsh_topic_find(1, "lobby", 5));

    ma = wsh_topic_add(&a.topics, &a, 1, "lobby", 5, "alice", 5, &first);
    ck_assert_ptr_nonnull(ma);
    ck_assert(first);
    mb = wsh_topic_add(&b.topics, &b, 1, "lobby", 5, "bob", 3, &first);
    ck_assert(!first);
    t = wsh_topic_find(1, "lobby", 5);
    ck_assert_ptr_eq(t, ma->topic);
    ck_assert_uint_eq(t->nmembers, 2);
    ck_assert_mem_eq(mb->id, "bob", 3);

    /* Kinds are separate namespaces; memberships are per owner. */
    ck_assert_ptr_null(wsh_topic_find(2, "lobby", 5));
    ck_assert_ptr_eq(wsh_topic_membership(&a, 1, "lobby", 5), ma);
    ck_assert_ptr_eq(wsh_topic_membership(&b, 1, "lobby", 5), mb);
    ck_assert_ptr_null(wsh_topic_membership(&a, 2, "lobby", 5));
    ck_assert_ptr_null(wsh_topic_membership(&a, 1, "lobb", 4));

    leave(ma, &last);
    ck_assert(!last);
    ck_assert_ptr_null(wsh_topic_membership(&a, 1, "lobby", 5));
    ck_assert_uint_eq(wsh_topic_find(1, "lobby", 5)->nmembers, 1);
    leave(mb, &last);
    ck_assert(last);
    ck_assert_ptr_null(wsh_topic_find(1, "lobby", 5));
    ck_assert(wsh_queue_empty(&a.topics));
    wsh_topic_index_free();
}
END_TEST

/* Many rooms per owner and many owners: every lookup stays exact. */
START_TEST(test_many)
{
    enum { OWNERS = 50, ROOMS = 200 };
    static owner_t o[OWNERS];
    char name[32];
    wsh_member_t *m;
    bool first, last;
    int i, j, n;

    ck_assert_int_eq(wsh_topic_index_init(), WSH_OK);
    for (i = 0; i < OWNERS; i++) {
        owner_init(&o[i]);
        for (j = 0; j < ROOMS; j++) {
            n = snprintf(name, sizeof(name), "room-%d", j);
            m = wsh_topic_add(&o[i].topics, &o[i], 1, name, (size_t) n, "",
                              0, &first);
            ck_assert_ptr_nonnull(m);
            ck_assert(first == (i == 0));
        }
    }
    for (j = 0; j < ROOMS; j++) {
        n = snprintf(name, sizeof(name), "room-%d", j);
        ck_assert_uint_eq(wsh_topic_find(1, name, (size_t) n)->nmembers,
                          OWNERS);
    }
    /* Owners leave everything through their own lists, as a closing
     * connection does. */
    for (i = 0; i < OWNERS; i++) {
        while (!wsh_queue_empty(&o[i].topics)) {
            m = wsh_queue_data(wsh_queue_head(&o[i].topics), wsh_member_t,
                               owner_link);
            leave(m, &last);
            ck_assert(last == (i == OWNERS - 1));
        }
    }
    ck_assert_ptr_null(wsh_topic_find(1, "room-0", 6));
    wsh_topic_index_free();
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("topic");
    TCase *tc = tcase_create("index");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_join_find_leave);
    tcase_add_test(tc, test_many);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
