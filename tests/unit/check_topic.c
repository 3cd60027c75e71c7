/* check_topic.c -- unit tests of the per-worker topic index. */
#include "engine/topic.h"
#include "wshub.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A stand-in for a connection: its membership list. */
typedef struct {
    wsh_member_t *topics;
} owner_t;

static owner_t a, b;

static void
owner_init(owner_t *o)
{
    o->topics = NULL;
}

/* O's memberships are the N topics NAMES, in this order. */
static void
owner_has(const owner_t *o, const char *const *names, size_t n)
{
    const wsh_member_t *m;
    size_t i = 0;

    for (m = o->topics; m != NULL; m = m->owner_next, i++) {
        ck_assert_uint_lt(i, n);
        ck_assert_ptr_eq(m->owner, o);
        ck_assert_uint_eq(m->topic->len, strlen(names[i]));
        ck_assert_mem_eq(m->topic->name, names[i], m->topic->len);
    }
    ck_assert_uint_eq(i, n);
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
leave(owner_t *o, wsh_member_t *m, bool *last)
{
    wsh_topic_remove(&o->topics, m, last);
    ck_assert_ptr_null(m->owner_next);
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
    ck_assert_ptr_eq(wsh_topic_membership(a.topics, 1, "lobby", 5), ma);
    ck_assert_ptr_eq(wsh_topic_membership(b.topics, 1, "lobby", 5), mb);
    ck_assert_ptr_null(wsh_topic_membership(a.topics, 2, "lobby", 5));
    ck_assert_ptr_null(wsh_topic_membership(a.topics, 1, "lobb", 4));

    leave(&a, ma, &last);
    ck_assert(!last);
    ck_assert_ptr_null(wsh_topic_membership(a.topics, 1, "lobby", 5));
    ck_assert_uint_eq(wsh_topic_find(1, "lobby", 5)->nmembers, 1);
    leave(&b, mb, &last);
    ck_assert(last);
    ck_assert_ptr_null(wsh_topic_find(1, "lobby", 5));
    ck_assert_ptr_null(a.topics);
    ck_assert_ptr_null(b.topics);
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
            m = wsh_topic_membership(o[i].topics, 1, name, (size_t) n);
            ck_assert_ptr_nonnull(m);
            ck_assert_ptr_eq(m->owner, &o[i]);
            ck_assert_ptr_null(wsh_topic_membership(o[i].topics, 2, name,
                                                    (size_t) n));
        }
    }
    /* Owners leave everything through their own lists, as a closing
     * connection does. */
    for (i = 0; i < OWNERS; i++) {
        while (o[i].topics != NULL) {
            leave(&o[i], o[i].topics, &last);
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
    leave(&a, client, &last);
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
    leave(&b, other, &last);
    ck_assert(!last);
    leave(&a, room, &last);
    ck_assert(last);
    ck_assert_ptr_null(a.topics);
}
END_TEST

/* An owner's list is singly linked: memberships stay in the order
 * joined, and one left from its head, middle or end leaves the others
 * linked as they were. */
START_TEST(test_owner_list)
{
    static const char *const all[] = { "/ws#me", "/ws#", "r1", "r2", "r3" };
    static const char *const no_r2[] = { "/ws#me", "/ws#", "r1", "r3" };
    static const char *const no_r2_r3[] = { "/ws#me", "/ws#", "r1" };
    static const char *const rest[] = { "/ws#", "r1" };
    static const char *const one[] = { "r1" };
    static const int kinds[] = { WSH_TOPIC_CLIENT, WSH_TOPIC_ALL,
                                 WSH_TOPIC_ROOM, WSH_TOPIC_ROOM,
                                 WSH_TOPIC_ROOM };
    wsh_member_t *m[5], *mb;
    bool first, last;
    size_t i;

    owner_has(&a, NULL, 0);
    for (i = 0; i < 5; i++) {
        m[i] = wsh_topic_add(&a.topics, &a, kinds[i], all[i],
                             strlen(all[i]), "me", 2, &first);
        ck_assert_ptr_nonnull(m[i]);
        owner_has(&a, all, i + 1);
    }
    /* Another owner in r2 and r3 is on its own list only. */
    mb = wsh_topic_add(&b.topics, &b, WSH_TOPIC_ROOM, "r2", 2, "", 0, &first);
    ck_assert(!first);
    owner_has(&b, all + 3, 1);

    leave(&a, m[3], &last);                 /* the middle */
    ck_assert(!last);
    owner_has(&a, no_r2, 4);
    ck_assert_ptr_eq(wsh_topic_membership(a.topics, WSH_TOPIC_ROOM, "r3", 2),
                     m[4]);
    ck_assert_ptr_null(wsh_topic_membership(a.topics, WSH_TOPIC_ROOM, "r2",
                                            2));
    ck_assert_ptr_eq(wsh_topic_membership(b.topics, WSH_TOPIC_ROOM, "r2", 2),
                     mb);
    leave(&a, m[4], &last);                 /* the end */
    ck_assert(last);
    owner_has(&a, no_r2_r3, 3);
    leave(&a, m[0], &last);                 /* the head */
    owner_has(&a, rest, 2);
    /* The room's presence id outlives the client topic it is in. */
    ck_assert_mem_eq(wsh_topic_member_id(m[2], &i), "me", 2);
    ck_assert_uint_eq(i, 2);
    leave(&a, m[1], &last);
    owner_has(&a, one, 1);
    /* Joined again: at the end. */
    m[1] = wsh_topic_add(&a.topics, &a, WSH_TOPIC_ALL, "/ws#", 4, NULL, 0,
                         &first);
    ck_assert(first);
    ck_assert_ptr_eq(a.topics->owner_next, m[1]);
    leave(&a, m[2], &last);
    leave(&a, m[1], &last);
    ck_assert_ptr_null(a.topics);
    leave(&b, mb, &last);
    ck_assert(last);
    ck_assert_ptr_null(b.topics);
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
    tcase_add_test(tc, test_owner_list);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
