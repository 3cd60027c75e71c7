/* check_shm.c -- unit tests for shared zones (core/shm.c) and the
 * shared per-IP table of net/limit.c.
 *
 * Zones: made once by name, shared with a forked child. The table, on
 * calloc'ed memory (a zone is just memory): counting per address and
 * per worker slot, IPv4 and v4-mapped IPv6 as one client, probing that
 * wraps around the end, a full table failing open, reuse of idle
 * entries, the handshake-rate bucket, the total cap, and a dead slot's
 * counts taken back.
 */
#include "core/shm.h"
#include "net/limit.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC 1000000ULL

static wsh_limit_zone_t *
zone_new(unsigned nips)
{
    wsh_limit_zone_t *z = calloc(1, wsh_limit_zone_size(nips));

    ck_assert_ptr_nonnull(z);
    wsh_limit_zone_init(z, nips);
    return z;
}

/* 10.0.X.Y as a table key. */
static void
key4(uint8_t key[16], unsigned n)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x0a000000u + n);
    wsh_limit_key((struct sockaddr *) &sin, key);
}

/* Two client addresses, 10.0.0.1 and 10.0.0.2 (set by two_keys()). */
static uint8_t ka[16], kb[16];

static void key4(uint8_t key[16], unsigned n);

static void
two_keys(void)
{
    key4(ka, 1);
    key4(kb, 2);
}

/* What the last admit() said besides its status. */
static unsigned last_retry;
static const char *last_why;

static int
admit(wsh_limit_zone_t *z, int slot, const uint8_t key[16],
    const wsh_conf_limits_t *l, uint64_t now, int *entry)
{
    last_retry = 0;
    last_why = NULL;
    return wsh_limit_zone_admit(z, slot, key, l, now, entry, &last_retry,
                                &last_why);
}

START_TEST(test_zone_by_name)
{
    int *a, *b, status;
    pid_t pid;

    a = wsh_shm_zone("test", 4096);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a[0], 0);                  /* zero-filled */
    b = wsh_shm_zone("test", 4096);
    ck_assert_ptr_eq(a, b);                     /* the same zone */
    ck_assert_ptr_null(wsh_shm_zone("test", 8192));
    ck_assert_ptr_eq(wsh_shm_lookup("test"), a);
    ck_assert_ptr_null(wsh_shm_lookup("other"));

    /* Shared, not copied, across fork. */
    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        a[0] = 42;
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(a[0], 42);
    wsh_shm_free_all();
    ck_assert_ptr_null(wsh_shm_lookup("test"));
}
END_TEST

START_TEST(test_v4_mapped_is_v4)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    uint8_t k4[16], k6[16], other[16];

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
    wsh_limit_key((struct sockaddr *) &sin, k4);
    wsh_limit_key((struct sockaddr *) &sin6, k6);
    ck_assert_mem_eq(k4, k6, 16);
    inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
    wsh_limit_key((struct sockaddr *) &sin6, other);
    ck_assert_mem_ne(k4, other, 16);
}
END_TEST

START_TEST(test_per_ip_cap)
{
    wsh_limit_zone_t *z = zone_new(64);
    wsh_conf_limits_t l = { .per_ip_connections = 3 };
    int e[4], eb, i;

    for (i = 0; i < 3; i++) {
        /* Spread over two worker slots: the cap is for them all. */
        ck_assert_int_eq(admit(z, i % 2, ka, &l, SEC, &e[i]), WSH_OK);
        ck_assert_int_ge(e[i], 0);
    }
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, ka), 3);
    ck_assert_int_eq(admit(z, 0, ka, &l, SEC, &e[3]), 429);
    ck_assert_int_eq(admit(z, 1, kb, &l, SEC, &eb), WSH_OK);  /* another IP */
    ck_assert_int_eq(wsh_limit_zone_total(z), 4);

    wsh_limit_zone_release(z, 1, e[1]);
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, ka), 2);
    ck_assert_int_eq(admit(z, 0, ka, &l, SEC, &e[1]), WSH_OK);
    for (i = 0; i < 3; i++) {
        wsh_limit_zone_release(z, i == 1 ? 0 : i % 2, e[i]);
    }
    wsh_limit_zone_release(z, 1, eb);
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, ka), 0);
    ck_assert_int_eq(wsh_limit_zone_total(z), 0);
    free(z);
}
END_TEST

/* Two addresses with the same home entry, the last one: the second is
 * stored after wrapping to entry 0, and both are found again. */
START_TEST(test_probe_wraps)
{
    wsh_conf_limits_t l = { .per_ip_connections = 5 };
    wsh_limit_zone_t *z;
    uint8_t keys[2][16], k[16];
    unsigned n, found = 0;
    int e;

    for (n = 0; found < 2 && n < 10000; n++) {
        z = zone_new(8);
        key4(k, n);
        ck_assert_int_eq(admit(z, 0, k, &l, SEC, &e), WSH_OK);
        if (e == 7) {
            memcpy(keys[found++], k, 16);
        }
        free(z);
    }
    ck_assert_uint_eq(found, 2);
    z = zone_new(8);
    ck_assert_int_eq(admit(z, 0, keys[0], &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(e, 7);
    ck_assert_int_eq(admit(z, 0, keys[1], &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(e, 0);
    ck_assert_int_eq(admit(z, 0, keys[1], &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(e, 0);
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, keys[0]), 1);
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, keys[1]), 2);
    free(z);
}
END_TEST

/* A full table admits untracked (fails open) and says why; an entry
 * whose address has no connection left is reused. */
START_TEST(test_full_table_fails_open)
{
    wsh_limit_zone_t *z = zone_new(8);
    wsh_conf_limits_t l = { .per_ip_connections = 1 };
    uint8_t k[16];
    int e[8], extra, i;

    for (i = 0; i < 8; i++) {
        key4(k, (unsigned) i);
        ck_assert_int_eq(admit(z, 0, k, &l, SEC, &e[i]), WSH_OK);
        ck_assert_int_ge(e[i], 0);
    }
    key4(k, 100);
    ck_assert_int_eq(admit(z, 0, k, &l, SEC, &extra), WSH_OK);
    ck_assert_int_eq(extra, -1);
    ck_assert_str_eq(last_why, "the per-IP table is full");
    ck_assert_int_eq(wsh_limit_zone_total(z), 9);  /* still counted */
    wsh_limit_zone_release(z, 0, extra);
    ck_assert_int_eq(wsh_limit_zone_total(z), 8);

    wsh_limit_zone_release(z, 0, e[3]);
    ck_assert_int_eq(admit(z, 0, k, &l, SEC, &extra), WSH_OK);
    ck_assert_int_eq(extra, e[3]);              /* the idle entry */
    ck_assert_int_eq(admit(z, 0, k, &l, SEC, &extra), 429);
    key4(k, 3);
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, k), 0);
    free(z);
}
END_TEST

START_TEST(test_handshake_rate)
{
    wsh_limit_zone_t *z = zone_new(16);
    wsh_conf_limits_t l = { .per_ip_handshake_rate = 2,
                            .per_ip_handshake_burst = 3 };
    int e, i;

    for (i = 0; i < 3; i++) {                   /* the burst */
        ck_assert_int_eq(admit(z, 0, ka, &l, 10 * SEC, &e), WSH_OK);
        wsh_limit_zone_release(z, 0, e);
    }
    ck_assert_int_eq(admit(z, 0, ka, &l, 10 * SEC, &e), 429);
    ck_assert_uint_eq(last_retry, 1);
    ck_assert_str_eq(last_why, "per_ip_handshake_rate exceeded");
    ck_assert_int_eq(wsh_limit_zone_total(z), 0);   /* refusal not counted */
    ck_assert_int_eq(admit(z, 0, kb, &l, 10 * SEC, &e), WSH_OK);
    /* Two a second: one more token half a second later, not two. */
    ck_assert_int_eq(admit(z, 0, ka, &l, 10 * SEC + SEC / 2, &e), WSH_OK);
    ck_assert_int_eq(admit(z, 0, ka, &l, 10 * SEC + SEC / 2, &e), 429);
    free(z);
}
END_TEST

START_TEST(test_total_and_dead_slot)
{
    wsh_limit_zone_t *z = zone_new(16);
    wsh_conf_limits_t l = { .per_ip_connections = 3,
                            .max_connections_total = 4 };
    int e;

    ck_assert_int_eq(admit(z, 0, ka, &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(admit(z, 1, ka, &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(admit(z, 1, ka, &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(admit(z, 1, kb, &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(admit(z, 0, kb, &l, SEC, &e), 503);
    ck_assert_str_eq(last_why, "max_connections_total reached");
    ck_assert_int_eq(wsh_limit_zone_total(z), 4);

    /* Slot 1 dies with three connections: only slot 0's one is left. */
    wsh_limit_zone_slot_gone(z, 1, 12345);
    ck_assert_int_eq(wsh_limit_zone_total(z), 1);
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, ka), 1);
    ck_assert_int_eq(wsh_limit_zone_ip_count(z, kb), 0);
    ck_assert_int_eq(admit(z, 2, ka, &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(admit(z, 2, ka, &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(admit(z, 2, ka, &l, SEC, &e), 429);

    /* A slot outside the table is not limited, nor counted. */
    ck_assert_int_eq(admit(z, WSH_LIMIT_SLOTS, ka, &l, SEC, &e), WSH_OK);
    ck_assert_int_eq(e, -1);
    ck_assert_int_eq(wsh_limit_zone_total(z), 3);
    free(z);
}
END_TEST

static Suite *
shm_suite(void)
{
    Suite *s = suite_create("shm");
    TCase *tc;

    tc = tcase_create("zone");
    tcase_add_test(tc, test_zone_by_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("per_ip");
    tcase_add_checked_fixture(tc, two_keys, NULL);
    tcase_add_test(tc, test_v4_mapped_is_v4);
    tcase_add_test(tc, test_per_ip_cap);
    tcase_add_test(tc, test_probe_wraps);
    tcase_add_test(tc, test_full_table_fails_open);
    tcase_add_test(tc, test_handshake_rate);
    tcase_add_test(tc, test_total_and_dead_slot);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    sr = srunner_create(shm_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
