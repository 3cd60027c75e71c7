/* check_topic.c -- unit tests of the per-worker topic index. */
#include "engine/topic.h"
#include "wshub.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stand-in for a connection: its membership list. */
typedef struct {
    wsh_queue_t topics;
} owner_t;

static owner_t a, b;

static void
owner_init(owner_t *o)
{
    wsh_queue_init(&o->topics);
}

/* Each test starts with an empty index and two owners in no topic. */
static void
setup(void)
{
    ck_assert_int_eq(wsh_topic_index_init(), WSH_OK);
    owner_init(&a);
    owner_init(&b);
}

static void
teardown(void)
{
    wsh_topic_index_free();
}

static void
leave(wsh_member_t *m, bool *last)
{
    wsh_topic_remove(m, last);
    wsh_topic_member_free(m);
}

START_TEST(test_join_find_leave)
{
    wsh_member_t *ma, *mb;
    wsh_topic_t *t;
    const char *id;
    size_t len;
    bool first, last;

    ck_assert_ptr_null(wsh_topic_find(1, "lobby", 5));

    ma = wsh_topic_add(&a.topics, &a, 1, "lobby", 5, "alice", 5, &first);
    ck_assert_ptr_nonnull(ma);
    ck_assert(first);
    mb = wsh_topic_add(&b.topics, &b, 1, "lobby", 5, "bob", 3, &first);
    ck_assert(!first);
    t = wsh_topic_find(1, "lobby", 5);
    ck_assert_ptr_eq(t, ma->topic);
    ck_assert_uint_eq(t->nmembers, 2);
    id = wsh_topic_member_id(mb, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(id, "bob", 3);

    /* Kinds are separate namespaces; memberships are per owner. */
    ck_assert_ptr_null(wsh_topic_find(2, "lobby", 5));
    ck_assert_ptr_eq(wsh_topic_membership(&a.topics, 1, "lobby", 5), ma);
    ck_assert_ptr_eq(wsh_topic_membership(&b.topics, 1, "lobby", 5), mb);
    ck_assert_ptr_null(wsh_topic_membership(&a.topics, 2, "lobby", 5));
    ck_assert_ptr_null(wsh_topic_membership(&a.topics, 1, "lobb", 4));

    leave(ma, &last);
    ck_assert(!last);
    ck_assert_ptr_null(wsh_topic_membership(&a.topics, 1, "lobby", 5));
    ck_assert_uint_eq(wsh_topic_find(1, "lobby", 5)->nmembers, 1);
    leave(mb, &last);
    ck_assert(last);
    ck_assert_ptr_null(wsh_topic_find(1, "lobby", 5));
    ck_assert(wsh_queue_empty(&a.topics));
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
        /* Found from either end: the owner's list or the room's. */
        for (i = 0; i < OWNERS; i += OWNERS - 1) {
            m = wsh_topic_membership(&o[i].topics, 1, name, (size_t) n);
            ck_assert_ptr_nonnull(m);
            ck_assert_ptr_eq(m->owner, &o[i]);
            ck_assert_ptr_null(wsh_topic_membership(&o[i].topics, 2, name,
                                                    (size_t) n));
        }
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
}
END_TEST

/* A room membership's presence id is the end of its owner's client
 * topic ("REALM#ID"), which outlives the client membership as long as a
 * room needs it; another id gets a copy of its own. */
START_TEST(test_shared_id)
{
    wsh_member_t *client, *room, *other;
    const char *id;
    size_t len;
    bool first, last;

    client = wsh_topic_add(&a.topics, &a, WSH_TOPIC_CLIENT, "/ws#alice", 9,
                           NULL, 0, &first);
    room = wsh_topic_add(&a.topics, &a, WSH_TOPIC_ROOM, "/ws#lobby", 9,
                         "alice", 5, &first);
    ck_assert_ptr_nonnull(room);
    id = wsh_topic_member_id(room, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_ptr_eq(id, client->topic->name + 4);

    /* Closing leaves the client topic first: the id stays readable. */
    leave(client, &last);
    ck_assert(last);
    ck_assert_ptr_null(wsh_topic_find(WSH_TOPIC_CLIENT, "/ws#alice", 9));
    id = wsh_topic_member_id(room, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(id, "alice", 5);

    /* A presence id that is no client topic's: a copy. */
    other = wsh_topic_add(&b.topics, &b, WSH_TOPIC_ROOM, "/ws#lobby", 9,
                          "x#y", 3, &first);
    ck_assert(!first);
    id = wsh_topic_member_id(other, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(id, "x#y", 3);
    leave(other, &last);
    ck_assert(!last);
    leave(room, &last);
    ck_assert(last);
    ck_assert(wsh_queue_empty(&a.topics));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("topic");
    TCase *tc = tcase_create("index");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_join_find_leave);
    tcase_add_test(tc, test_many);
    tcase_add_test(tc, test_shared_id);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
