/* check_history.c -- unit tests of room history: rules, ring, recovery,
 * and the hub's writing of offsets into its numbered messages. */
#include "engine/history.h"
#include "wshub.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The rules of "chat:*" and "news" in the tests below. */
static wsh_history_rule_t rules[] = {
    { 4, 1000 },
    { 100, 60000 },
};

/* The sweep's rule of a room, as hub.history would give it. */
static bool
rule_of(const char *room, size_t len, void *arg, wsh_history_rule_t *out)
{
    (void) arg;
    if (len >= 5 && memcmp(room, "chat:", 5) == 0) {
        *out = rules[0];
        return true;
    }
    if (len == 4 && memcmp(room, "news", 4) == 0) {
        *out = rules[1];
        return true;
    }
    return false;
}

static const wsh_history_entry_t *
append(wsh_history_room_t *r, const wsh_history_rule_t *rule, int n,
    wsh_msec_t now)
{
    char msg[64];

    snprintf(msg, sizeof(msg), "{\"type\":\"room_message\",\"n\":%d}", n);
    return wsh_history_append(r, rule, msg, strlen(msg), now);
}

/* The sweep's question; ARG points to the answer. */
static bool
members(const char *room, size_t len, void *arg)
{
    (void) room;
    (void) len;
    return *(bool *) arg;
}

static bool yes = true, no = false;

extern const wsh_module_t wsh_hub_module;

/* Rules come from the hub's section through its room_history hook:
 * loaded from a file, matched without the realm, first match wins. */
START_TEST(test_rules)
{
    static const char text[] =
        "hub:\n"
        "  history:\n"
        "    - rooms: \"chat:*\"\n"
        "      size: 4\n"
        "      ttl: 1s\n"
        "    - rooms: news\n";
    char path[] = "/tmp/check_history.XXXXXX", err[WSH_CONF_ERR_MAX];
    wsh_history_rule_t rule;
    wsh_conf_t *cf;
    int fd = mkstemp(path);

    ck_assert_int_ne(fd, -1);
    ck_assert_int_eq(write(fd, text, sizeof(text) - 1),
                     (int) sizeof(text) - 1);
    close(fd);
    cf = wsh_conf_load(path, err, sizeof(err));
    unlink(path);
    ck_assert_msg(cf != NULL, "%s", err);
    ck_assert(wsh_history_rule(cf, "/ws#chat:a", 10, &rule));
    ck_assert_uint_eq(rule.size, 4);
    ck_assert_uint_eq(rule.ttl, 1000);
    ck_assert(wsh_history_rule(cf, "chat:", 5, &rule));
    ck_assert(!wsh_history_rule(cf, "/ws#chat", 8, &rule));
    ck_assert(wsh_history_rule(cf, "/secure#news", 12, &rule));
    ck_assert_uint_eq(rule.size, 100);          /* the defaults */
    ck_assert_uint_eq(rule.ttl, 300000);
    ck_assert(!wsh_history_rule(cf, "/ws#newsx", 9, &rule));
    ck_assert(!wsh_history_rule(cf, "/ws#new", 7, &rule));
    ck_assert(!wsh_history_rule(NULL, "/ws#news", 8, &rule));
    wsh_conf_free(cf);
}
END_TEST

START_TEST(test_offsets_and_raw)
{
    wsh_history_t *h = wsh_history_new();
    wsh_history_room_t *r;
    const wsh_history_entry_t *e;
    const char *msg = "{\"type\":\"room_message\",\"n\":7}";

    ck_assert_ptr_null(wsh_history_room(h, "news", 4, false, 0));
    r = wsh_history_room(h, "news", 4, true, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(strlen(r->epoch), WSH_HISTORY_EPOCH_LEN);
    ck_assert_uint_eq(r->offset, 0);
    e = append(r, &rules[1], 7, 10);
    ck_assert_uint_eq(e->offset, 1);
    /* Kept as published: the offset and epoch go beside it. */
    ck_assert_uint_eq(e->len, strlen(msg));
    ck_assert_mem_eq(e->data, msg, e->len);
    ck_assert_uint_eq(append(r, &rules[1], 8, 10)->offset, 2);

    /* The engine knows no format: any bytes are numbered and kept. */
    e = wsh_history_append(r, &rules[1], "[1]", 3, 10);
    ck_assert_uint_eq(e->offset, 3);
    ck_assert_mem_eq(e->data, "[1]", 3);
    e = wsh_history_append(r, &rules[1], "", 0, 10);
    ck_assert_uint_eq(e->offset, 4);
    ck_assert_uint_eq(e->len, 0);
    ck_assert_uint_eq(r->offset, 4);
    ck_assert_uint_eq(r->n, 4);
    ck_assert_mem_eq(wsh_history_at(r, 0)->data, msg, strlen(msg));

    /* Another room, another epoch, its own offsets. */
    ck_assert_str_ne(wsh_history_room(h, "chat:b", 6, true, 0)->epoch,
                     r->epoch);
    wsh_history_free(h);
}
END_TEST

/* The hub's numbered hook writes what clients got before offsets
 * travelled beside the message: the object with "offset" and "epoch"
 * last, no comma in the empty object, and anything else as is. */
START_TEST(test_hub_numbered)
{
    static const char epoch[] = "0123456789abcdef";
    const char *msg = "{\"type\":\"room_message\",\"n\":7}";
    size_t (*numbered)(const char *, size_t, const void *, size_t,
                       uint64_t, const char *, size_t, void *, size_t);
    char out[128], want[128];
    size_t n, need;

    numbered = wsh_hub_module.numbered;
    ck_assert_ptr_nonnull(numbered);
    snprintf(want, sizeof(want), "{\"type\":\"room_message\",\"n\":7,"
             "\"offset\":1,\"epoch\":\"%s\"}", epoch);
    need = strlen(want);
    n = numbered("/ws#news", 8, msg, strlen(msg), 1, epoch, 16, out,
                 sizeof(out));
    ck_assert_uint_eq(n, need);
    ck_assert_mem_eq(out, want, n);

    /* Too small: nothing written, the length needed returned. */
    memset(out, 'x', sizeof(out));
    ck_assert_uint_eq(numbered("/ws#news", 8, msg, strlen(msg), 1, epoch,
                               16, out, need - 1), need);
    ck_assert_int_eq(out[0], 'x');
    ck_assert_uint_eq(numbered("/ws#news", 8, msg, strlen(msg), 1, epoch,
                               16, NULL, 0), need);
    ck_assert_uint_eq(numbered("/ws#news", 8, msg, strlen(msg), 1, epoch,
                               16, out, need), need);
    ck_assert_mem_eq(out, want, need);

    snprintf(want, sizeof(want), "{\"offset\":18446744073709551615,"
             "\"epoch\":\"%s\"}", epoch);
    n = numbered("/ws#news", 8, "{}", 2, UINT64_MAX, epoch, 16, out,
                 sizeof(out));
    ck_assert_uint_eq(n, strlen(want));
    ck_assert_mem_eq(out, want, n);

    ck_assert_uint_eq(numbered("/ws#news", 8, "[1]", 3, 2, epoch, 16, out,
                               sizeof(out)), 0);
    ck_assert_uint_eq(numbered("/ws#news", 8, "{", 1, 2, epoch, 16, out,
                               sizeof(out)), 0);
    ck_assert_uint_eq(numbered("/ws#news", 8, "", 0, 2, epoch, 16, out,
                               sizeof(out)), 0);
}
END_TEST

START_TEST(test_ring_and_recovery)
{
    wsh_history_t *h = wsh_history_new();
    wsh_history_room_t *r = wsh_history_room(h, "chat:a", 6, true, 0);
    size_t first = 99;
    int n;

    for (n = 1; n <= 6; n++) {
        ck_assert_uint_eq(append(r, &rules[0], n, 0)->offset, (uint64_t) n);
    }
    /* Size 4: offsets 3..6 kept, oldest first. */
    ck_assert_uint_eq(r->n, 4);
    ck_assert_uint_eq(wsh_history_at(r, 0)->offset, 3);
    ck_assert_uint_eq(wsh_history_at(r, 3)->offset, 6);

    ck_assert(wsh_history_recoverable(r, 2, r->epoch, 16, &first));
    ck_assert_uint_eq(first, 0);
    ck_assert(wsh_history_recoverable(r, 5, NULL, 0, &first));
    ck_assert_uint_eq(first, 3);
    ck_assert(wsh_history_recoverable(r, 6, r->epoch, 16, &first));
    ck_assert_uint_eq(first, 4);                /* nothing missed */
    ck_assert(!wsh_history_recoverable(r, 1, r->epoch, 16, &first));
    ck_assert(!wsh_history_recoverable(r, 7, r->epoch, 16, &first));
    ck_assert(!wsh_history_recoverable(r, 5, "0000000000000000", 16,
                                       &first));
    ck_assert(!wsh_history_recoverable(r, 5, r->epoch, 15, &first));
    wsh_history_free(h);
}
END_TEST

START_TEST(test_ttl_and_sweep)
{
    wsh_history_t *h = wsh_history_new();
    wsh_history_room_t *r = wsh_history_room(h, "chat:a", 6, true, 0);
    size_t first;

    append(r, &rules[0], 1, 0);
    append(r, &rules[0], 2, 600);
    wsh_history_trim(r, &rules[0], 999);
    ck_assert_uint_eq(r->n, 2);
    wsh_history_trim(r, &rules[0], 1000);       /* ttl 1000: the first */
    ck_assert_uint_eq(r->n, 1);
    ck_assert(!wsh_history_recoverable(r, 0, NULL, 0, &first));
    ck_assert(wsh_history_recoverable(r, 1, NULL, 0, &first));
    ck_assert_uint_eq(first, 0);

    /* Members keep the room, emptied: the epoch and offset stay. */
    ck_assert_uint_eq(wsh_history_sweep(h, 5000, rule_of, members, &yes), 1);
    ck_assert_uint_eq(r->n, 0);
    ck_assert(wsh_history_recoverable(r, 2, NULL, 0, &first));
    /* Without members, forgotten ttl after its last activity. */
    ck_assert_uint_eq(wsh_history_sweep(h, 5999, rule_of, members, &no), 1);
    ck_assert_uint_eq(wsh_history_sweep(h, 6000, rule_of, members, &no), 0);
    ck_assert_ptr_null(wsh_history_room(h, "chat:a", 6, false, 0));

    /* A room whose rule is gone (reload) is forgotten at once. */
    ck_assert_ptr_nonnull(wsh_history_room(h, "gone", 4, true, 0));
    ck_assert_uint_eq(wsh_history_sweep(h, 1, rule_of, members, &yes), 0);
    wsh_history_free(h);
}
END_TEST

START_TEST(test_resize)
{
    wsh_history_t *h = wsh_history_new();
    wsh_history_room_t *r = wsh_history_room(h, "chat:a", 6, true, 0);
    wsh_history_rule_t small = { 2, 1000 };
    int n;

    for (n = 1; n <= 4; n++) {
        append(r, &rules[0], n, 0);
    }
    /* A reload shrank the rule: the newest stay, offsets go on. */
    ck_assert_uint_eq(append(r, &small, 5, 0)->offset, 5);
    ck_assert_uint_eq(r->n, 2);
    ck_assert_uint_eq(wsh_history_at(r, 0)->offset, 4);
    ck_assert_uint_eq(append(r, &rules[0], 6, 0)->offset, 6);
    ck_assert_uint_eq(r->n, 3);
    ck_assert_uint_eq(wsh_history_at(r, 0)->offset, 4);
    wsh_history_free(h);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("ring");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_rules);
    tcase_add_test(tc, test_offsets_and_raw);
    tcase_add_test(tc, test_hub_numbered);
    tcase_add_test(tc, test_ring_and_recovery);
    tcase_add_test(tc, test_ttl_and_sweep);
    tcase_add_test(tc, test_resize);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
