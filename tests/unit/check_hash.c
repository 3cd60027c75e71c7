/* check_hash.c -- unit tests for the byte-string hash table (core/hash.c).
 *
 * Covers the map operations, keys that are not C strings (embedded NULs,
 * empty, hundreds of bytes), growth to 100000 entries, iteration with and
 * without removal of the current entry, paged scans across growth and
 * removals, and wsh_hash_free()'s callback.
 * The tables run under the random process key, as in the server; ENOMEM
 * paths are not exercised.
 */
#include "core/hash.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_N   100000
#define ITER_N  1000

/* Values are small integers disguised as pointers, never 0 (NULL). */
#define VAL(i)  ((void *) (uintptr_t) ((i) + 1))
#define IDX(v)  ((size_t) (uintptr_t) (v) - 1)

static size_t
make_key(char *buf, size_t size, size_t i)
{
    int n;

    n = snprintf(buf, size, "room:%zu", i);
    ck_assert_int_gt(n, 0);
    return (size_t) n;
}

START_TEST(test_put_get_replace_remove)
{
    wsh_hash_t *h;
    int a, b;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(wsh_hash_count(h), 0);
    ck_assert_ptr_null(wsh_hash_get(h, "lobby", 5));
    ck_assert_ptr_null(wsh_hash_remove(h, "lobby", 5));

    ck_assert_int_eq(wsh_hash_put(h, "lobby", 5, &a), WSH_OK);
    ck_assert_uint_eq(wsh_hash_count(h), 1);
    ck_assert_ptr_eq(wsh_hash_get(h, "lobby", 5), &a);

    /* A prefix or an extension is a different key. */
    ck_assert_ptr_null(wsh_hash_get(h, "lobb", 4));
    ck_assert_ptr_null(wsh_hash_get(h, "lobbyx", 6));
    ck_assert_int_eq(wsh_hash_put(h, "lobb", 4, &b), WSH_OK);
    ck_assert_uint_eq(wsh_hash_count(h), 2);
    ck_assert_ptr_eq(wsh_hash_get(h, "lobby", 5), &a);
    ck_assert_ptr_eq(wsh_hash_get(h, "lobb", 4), &b);

    /* Replace keeps the count and returns the new value. */
    ck_assert_int_eq(wsh_hash_put(h, "lobby", 5, &b), WSH_OK);
    ck_assert_uint_eq(wsh_hash_count(h), 2);
    ck_assert_ptr_eq(wsh_hash_get(h, "lobby", 5), &b);

    ck_assert_ptr_eq(wsh_hash_remove(h, "lobby", 5), &b);
    ck_assert_uint_eq(wsh_hash_count(h), 1);
    ck_assert_ptr_null(wsh_hash_get(h, "lobby", 5));
    ck_assert_ptr_null(wsh_hash_remove(h, "lobby", 5));
    ck_assert_ptr_eq(wsh_hash_get(h, "lobb", 4), &b);

    ck_assert_ptr_eq(wsh_hash_remove(h, "lobb", 4), &b);
    ck_assert_uint_eq(wsh_hash_count(h), 0);
    ck_assert_ptr_null(wsh_hash_get(h, "lobb", 4));

    /* The emptied table is usable again. */
    ck_assert_int_eq(wsh_hash_put(h, "lobby", 5, &a), WSH_OK);
    ck_assert_ptr_eq(wsh_hash_get(h, "lobby", 5), &a);
    ck_assert_uint_eq(wsh_hash_count(h), 1);

    wsh_hash_free(h, NULL);
}
END_TEST

START_TEST(test_key_is_copied)
{
    wsh_hash_t *h;
    char buf[16];
    int a;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    memcpy(buf, "client-42", 9);
    ck_assert_int_eq(wsh_hash_put(h, buf, 9, &a), WSH_OK);
    memset(buf, 'x', sizeof(buf));
    ck_assert_ptr_eq(wsh_hash_get(h, "client-42", 9), &a);
    ck_assert_ptr_null(wsh_hash_get(h, buf, 9));
    wsh_hash_free(h, NULL);
}
END_TEST

START_TEST(test_binary_keys)
{
    static const char k1[] = { 'a', '\0', 'b' };
    static const char k2[] = { 'a', '\0', 'c' };
    static const char zeros[32] = { 0 };
    wsh_hash_t *h;
    const void *key;
    size_t len, i;
    void *value;
    int a, b, c;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);

    /* Keys equal as C strings ("a") but different as bytes. */
    ck_assert_int_eq(wsh_hash_put(h, k1, sizeof(k1), &a), WSH_OK);
    ck_assert_int_eq(wsh_hash_put(h, k2, sizeof(k2), &b), WSH_OK);
    ck_assert_int_eq(wsh_hash_put(h, "a", 1, &c), WSH_OK);
    ck_assert_uint_eq(wsh_hash_count(h), 3);
    ck_assert_ptr_eq(wsh_hash_get(h, k1, sizeof(k1)), &a);
    ck_assert_ptr_eq(wsh_hash_get(h, k2, sizeof(k2)), &b);
    ck_assert_ptr_eq(wsh_hash_get(h, "a", 1), &c);
    ck_assert_ptr_null(wsh_hash_get(h, "a", 2));

    /* All-NUL keys differ only by length. */
    for (i = 1; i <= sizeof(zeros); i++) {
        ck_assert_int_eq(wsh_hash_put(h, zeros, i, VAL(i)), WSH_OK);
    }
    ck_assert_uint_eq(wsh_hash_count(h), 3 + sizeof(zeros));
    for (i = 1; i <= sizeof(zeros); i++) {
        ck_assert_ptr_eq(wsh_hash_get(h, zeros, i), VAL(i));
    }

    /* Iteration hands back the exact bytes. */
    ck_assert_ptr_eq(wsh_hash_remove(h, "a", 1), &c);
    for (i = 1; i <= sizeof(zeros); i++) {
        ck_assert_ptr_eq(wsh_hash_remove(h, zeros, i), VAL(i));
    }
    ck_assert_ptr_eq(wsh_hash_remove(h, k2, sizeof(k2)), &b);
    ck_assert_uint_eq(wsh_hash_count(h), 1);
    {
        wsh_hash_iter_t it;

        wsh_hash_iter_init(h, &it);
        ck_assert(wsh_hash_next(&it, &key, &len, &value));
        ck_assert_uint_eq(len, sizeof(k1));
        ck_assert_mem_eq(key, k1, sizeof(k1));
        ck_assert_ptr_eq(value, &a);
        ck_assert(!wsh_hash_next(&it, &key, &len, &value));
    }

    wsh_hash_free(h, NULL);
}
END_TEST

START_TEST(test_empty_key)
{
    wsh_hash_t *h;
    wsh_hash_iter_t it;
    const void *key;
    size_t len;
    void *value;
    int a, b;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_null(wsh_hash_get(h, "", 0));

    ck_assert_int_eq(wsh_hash_put(h, "", 0, &a), WSH_OK);
    ck_assert_uint_eq(wsh_hash_count(h), 1);
    ck_assert_ptr_eq(wsh_hash_get(h, "", 0), &a);
    ck_assert_ptr_eq(wsh_hash_get(h, NULL, 0), &a);
    ck_assert_ptr_eq(wsh_hash_get(h, "xyz", 0), &a);
    ck_assert_ptr_null(wsh_hash_get(h, "\0", 1));

    /* NULL with length 0 names the same key. */
    ck_assert_int_eq(wsh_hash_put(h, NULL, 0, &b), WSH_OK);
    ck_assert_uint_eq(wsh_hash_count(h), 1);
    ck_assert_ptr_eq(wsh_hash_get(h, "", 0), &b);

    ck_assert_int_eq(wsh_hash_put(h, "\0", 1, &a), WSH_OK);
    ck_assert_uint_eq(wsh_hash_count(h), 2);

    wsh_hash_iter_init(h, &it);
    len = 99;
    while (wsh_hash_next(&it, &key, &len, &value)) {
        if (len == 0) {
            break;
        }
    }
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_eq(value, &b);

    ck_assert_ptr_eq(wsh_hash_remove(h, NULL, 0), &b);
    ck_assert_ptr_null(wsh_hash_get(h, "", 0));
    ck_assert_ptr_eq(wsh_hash_get(h, "\0", 1), &a);
    ck_assert_uint_eq(wsh_hash_count(h), 1);
    wsh_hash_free(h, NULL);
}
END_TEST

/* Every length from 0 to 600 bytes, so every SipHash tail length and many
 * whole words are hashed; keys of different lengths share their bytes. */
START_TEST(test_long_keys)
{
    wsh_hash_t *h;
    u_char buf[600];
    size_t i;

    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (u_char) (i * 7 + 3);
    }
    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    for (i = 0; i <= sizeof(buf); i++) {
        ck_assert_int_eq(wsh_hash_put(h, buf, i, VAL(i)), WSH_OK);
    }
    ck_assert_uint_eq(wsh_hash_count(h), sizeof(buf) + 1);
    for (i = 0; i <= sizeof(buf); i++) {
        ck_assert_ptr_eq(wsh_hash_get(h, buf, i), VAL(i));
    }
    buf[sizeof(buf) - 1] ^= 1;
    ck_assert_ptr_null(wsh_hash_get(h, buf, sizeof(buf)));
    ck_assert_ptr_eq(wsh_hash_get(h, buf, sizeof(buf) - 1),
                     VAL(sizeof(buf) - 1));
    wsh_hash_free(h, NULL);
}
END_TEST

START_TEST(test_many)
{
    wsh_hash_t *h;
    char key[32];
    size_t i, len;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    for (i = 0; i < BIG_N; i++) {
        len = make_key(key, sizeof(key), i);
        ck_assert_int_eq(wsh_hash_put(h, key, len, VAL(i)), WSH_OK);
    }
    ck_assert_uint_eq(wsh_hash_count(h), BIG_N);

    for (i = 0; i < BIG_N; i++) {
        len = make_key(key, sizeof(key), i);
        ck_assert_ptr_eq(wsh_hash_get(h, key, len), VAL(i));
    }
    len = make_key(key, sizeof(key), BIG_N);
    ck_assert_ptr_null(wsh_hash_get(h, key, len));

    /* Remove the even half. */
    for (i = 0; i < BIG_N; i += 2) {
        len = make_key(key, sizeof(key), i);
        ck_assert_ptr_eq(wsh_hash_remove(h, key, len), VAL(i));
    }
    ck_assert_uint_eq(wsh_hash_count(h), BIG_N / 2);

    for (i = 0; i < BIG_N; i++) {
        len = make_key(key, sizeof(key), i);
        if (i % 2 == 0) {
            ck_assert_ptr_null(wsh_hash_get(h, key, len));
        } else {
            ck_assert_ptr_eq(wsh_hash_get(h, key, len), VAL(i));
        }
    }

    /* And the rest. */
    for (i = 1; i < BIG_N; i += 2) {
        len = make_key(key, sizeof(key), i);
        ck_assert_ptr_eq(wsh_hash_remove(h, key, len), VAL(i));
    }
    ck_assert_uint_eq(wsh_hash_count(h), 0);
    len = make_key(key, sizeof(key), 1);
    ck_assert_ptr_null(wsh_hash_get(h, key, len));
    wsh_hash_free(h, NULL);
}
END_TEST

static wsh_hash_t *
make_table(size_t n)
{
    wsh_hash_t *h;
    char key[32];
    size_t i, len;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    for (i = 0; i < n; i++) {
        len = make_key(key, sizeof(key), i);
        ck_assert_int_eq(wsh_hash_put(h, key, len, VAL(i)), WSH_OK);
    }
    return h;
}

/* Check that KEY/LEN is the key make_key() gave index IDX(VALUE). */
static size_t
check_entry(const void *key, size_t len, void *value, size_t n)
{
    char expect[32];
    size_t i;

    i = IDX(value);
    ck_assert_uint_lt(i, n);
    ck_assert_uint_eq(len, make_key(expect, sizeof(expect), i));
    ck_assert_mem_eq(key, expect, len);
    return i;
}

START_TEST(test_iterate_empty)
{
    wsh_hash_t *h;
    wsh_hash_iter_t it;
    void *value;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    wsh_hash_iter_init(h, &it);
    ck_assert(!wsh_hash_next(&it, NULL, NULL, &value));
    ck_assert(!wsh_hash_next(&it, NULL, NULL, &value));

    /* Emptied by removal, as opposed to never filled. */
    ck_assert_int_eq(wsh_hash_put(h, "x", 1, VAL(0)), WSH_OK);
    ck_assert_ptr_eq(wsh_hash_remove(h, "x", 1), VAL(0));
    wsh_hash_iter_init(h, &it);
    ck_assert(!wsh_hash_next(&it, NULL, NULL, NULL));
    wsh_hash_free(h, NULL);
}
END_TEST

START_TEST(test_iterate_once)
{
    static unsigned seen[ITER_N];
    wsh_hash_t *h;
    wsh_hash_iter_t it;
    const void *key;
    size_t len, i, n;
    void *value;

    memset(seen, 0, sizeof(seen));
    h = make_table(ITER_N);
    wsh_hash_iter_init(h, &it);
    n = 0;
    while (wsh_hash_next(&it, &key, &len, &value)) {
        seen[check_entry(key, len, value, ITER_N)]++;
        n++;
    }
    ck_assert_uint_eq(n, ITER_N);
    for (i = 0; i < ITER_N; i++) {
        ck_assert_uint_eq(seen[i], 1);
    }
    ck_assert(!wsh_hash_next(&it, &key, &len, &value));

    /* Replacing values while iterating is allowed too. */
    wsh_hash_iter_init(h, &it);
    n = 0;
    while (wsh_hash_next(&it, &key, &len, &value)) {
        i = check_entry(key, len, value, ITER_N);
        ck_assert_int_eq(wsh_hash_put(h, key, len, VAL(i + ITER_N)),
                         WSH_OK);
        n++;
    }
    ck_assert_uint_eq(n, ITER_N);
    ck_assert_uint_eq(wsh_hash_count(h), ITER_N);
    for (i = 0; i < ITER_N; i++) {
        char key2[32];

        len = make_key(key2, sizeof(key2), i);
        ck_assert_ptr_eq(wsh_hash_get(h, key2, len), VAL(i + ITER_N));
    }
    wsh_hash_free(h, NULL);
}
END_TEST

START_TEST(test_iterate_remove_some)
{
    static unsigned seen[ITER_N];
    static bool removed[ITER_N];
    wsh_hash_t *h;
    wsh_hash_iter_t it;
    const void *key;
    size_t len, i, n, nremoved;
    void *value;
    char key2[32];

    memset(seen, 0, sizeof(seen));
    memset(removed, 0, sizeof(removed));
    h = make_table(ITER_N);
    wsh_hash_iter_init(h, &it);
    n = 0;
    nremoved = 0;
    while (wsh_hash_next(&it, &key, &len, &value)) {
        i = check_entry(key, len, value, ITER_N);
        seen[i]++;
        /* Every other entry in visiting order, so both heads and
         * middles of chains go; the key passed is the table's own copy,
         * freed by this very call. */
        if (n++ % 2 == 0) {
            ck_assert_ptr_eq(wsh_hash_remove(h, key, len), VAL(i));
            removed[i] = true;
            nremoved++;
        }
    }
    ck_assert_uint_eq(n, ITER_N);
    ck_assert_uint_eq(wsh_hash_count(h), ITER_N - nremoved);
    for (i = 0; i < ITER_N; i++) {
        ck_assert_uint_eq(seen[i], 1);
        len = make_key(key2, sizeof(key2), i);
        if (removed[i]) {
            ck_assert_ptr_null(wsh_hash_get(h, key2, len));
        } else {
            ck_assert_ptr_eq(wsh_hash_get(h, key2, len), VAL(i));
        }
    }

    /* A second pass sees exactly the survivors. */
    wsh_hash_iter_init(h, &it);
    n = 0;
    while (wsh_hash_next(&it, &key, &len, &value)) {
        i = check_entry(key, len, value, ITER_N);
        ck_assert(!removed[i]);
        n++;
    }
    ck_assert_uint_eq(n, ITER_N - nremoved);
    wsh_hash_free(h, NULL);
}
END_TEST

START_TEST(test_iterate_remove_all)
{
    static unsigned seen[ITER_N];
    wsh_hash_t *h;
    wsh_hash_iter_t it;
    const void *key;
    size_t len, i, n;
    void *value;

    memset(seen, 0, sizeof(seen));
    h = make_table(ITER_N);
    wsh_hash_iter_init(h, &it);
    n = 0;
    while (wsh_hash_next(&it, &key, &len, &value)) {
        i = check_entry(key, len, value, ITER_N);
        seen[i]++;
        ck_assert_ptr_eq(wsh_hash_remove(h, key, len), VAL(i));
        n++;
    }
    ck_assert_uint_eq(n, ITER_N);
    ck_assert_uint_eq(wsh_hash_count(h), 0);
    for (i = 0; i < ITER_N; i++) {
        ck_assert_uint_eq(seen[i], 1);
    }
    ck_assert(!wsh_hash_next(&it, &key, &len, &value));

    /* Still a working table. */
    ck_assert_int_eq(wsh_hash_put(h, "again", 5, VAL(7)), WSH_OK);
    ck_assert_ptr_eq(wsh_hash_get(h, "again", 5), VAL(7));
    wsh_hash_free(h, NULL);
}
END_TEST

static size_t free_calls;

static void
count_free(void *value)
{
    free_calls++;
    free(value);
}

START_TEST(test_free_callback)
{
    wsh_hash_t *h;
    char key[32];
    size_t i, len;
    int *v;

    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    for (i = 0; i < ITER_N; i++) {
        v = malloc(sizeof(*v));
        ck_assert_ptr_nonnull(v);
        *v = (int) i;
        len = make_key(key, sizeof(key), i);
        ck_assert_int_eq(wsh_hash_put(h, key, len, v), WSH_OK);
    }
    /* A removed value is the caller's: it must not be freed again. */
    len = make_key(key, sizeof(key), 0);
    v = wsh_hash_remove(h, key, len);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(*v, 0);
    free(v);

    free_calls = 0;
    wsh_hash_free(h, count_free);
    ck_assert_uint_eq(free_calls, ITER_N - 1);

    /* Tables that never held anything, or were emptied, free cleanly. */
    free_calls = 0;
    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    wsh_hash_free(h, count_free);
    h = wsh_hash_new();
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(wsh_hash_put(h, "k", 1, NULL), WSH_OK);
    wsh_hash_free(h, count_free);
    ck_assert_uint_eq(free_calls, 1);
    wsh_hash_free(NULL, count_free);
    ck_assert_uint_eq(free_calls, 1);
}
END_TEST

/* A fixed key must not change behaviour, only make it reproducible. */
START_TEST(test_seed)
{
    static const uint8_t seed[16] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    };
    wsh_hash_t *h1, *h2;
    wsh_hash_iter_t it1, it2;
    const void *k1, *k2;
    size_t l1, l2, n;

    wsh_hash_seed(seed);
    h1 = make_table(ITER_N);
    h2 = make_table(ITER_N);
    wsh_hash_iter_init(h1, &it1);
    wsh_hash_iter_init(h2, &it2);
    n = 0;
    while (wsh_hash_next(&it1, &k1, &l1, NULL)) {
        ck_assert(wsh_hash_next(&it2, &k2, &l2, NULL));
        ck_assert_uint_eq(l1, l2);
        ck_assert_mem_eq(k1, k2, l1);
        n++;
    }
    ck_assert(!wsh_hash_next(&it2, &k2, &l2, NULL));
    ck_assert_uint_eq(n, ITER_N);
    wsh_hash_free(h1, NULL);
    wsh_hash_free(h2, NULL);
}
END_TEST

/* ---- paged scans (wsh_hash_scan) ------------------------------------ */

#define SCAN_N   5000
#define SCAN_MAX 100

typedef struct {
    unsigned char *seen;        /* per key index: times passed */
    size_t         page;        /* entries passed in this call */
} scan_state_t;

static bool
scan_cb(void *arg, const void *key, size_t len, void *value)
{
    scan_state_t *st = arg;

    (void) key;
    (void) len;
    if (st->seen[IDX(value)] < 255) {
        st->seen[IDX(value)]++;
    }
    st->page++;
    return true;
}

START_TEST(test_scan_empty)
{
    wsh_hash_t *h = wsh_hash_new();
    scan_state_t st = { NULL, 0 };

    ck_assert_uint_eq(wsh_hash_scan(h, 0, 10, scan_cb, &st), 0);
    ck_assert_uint_eq(st.page, 0);
    wsh_hash_free(h, NULL);
}
END_TEST

/* Pages of at most SCAN_MAX while the table doubles twice and loses a
 * third of its first keys: every key present throughout comes at least
 * once, and the scan ends. */
START_TEST(test_scan_survives_changes)
{
    wsh_hash_t *h = wsh_hash_new();
    scan_state_t st;
    size_t i, cursor = 0, pages = 0, added = SCAN_N, removed = 0, dups = 0;
    char key[32];
    size_t klen;

    st.seen = calloc(4 * SCAN_N, 1);
    ck_assert_ptr_nonnull(st.seen);
    for (i = 0; i < SCAN_N; i++) {
        klen = make_key(key, sizeof(key), i);
        ck_assert_int_eq(wsh_hash_put(h, key, klen, VAL(i)), WSH_OK);
    }
    do {
        st.page = 0;
        cursor = wsh_hash_scan(h, cursor, SCAN_MAX, scan_cb, &st);
        ck_assert_uint_le(st.page, SCAN_MAX + 8);   /* whole buckets */
        pages++;
        /* Between pages: grow to 4 * SCAN_N, and drop every third of
         * the first keys. */
        for (i = 0; i < 30 && added < 4 * SCAN_N; i++, added++) {
            klen = make_key(key, sizeof(key), added);
            ck_assert_int_eq(wsh_hash_put(h, key, klen, VAL(added)), WSH_OK);
        }
        for (i = 0; i < 10 && removed < SCAN_N; i++, removed += 3) {
            klen = make_key(key, sizeof(key), removed);
            ck_assert_ptr_nonnull(wsh_hash_remove(h, key, klen));
        }
        ck_assert_uint_lt(pages, 100000);
    } while (cursor != 0);
    for (i = 0; i < SCAN_N; i++) {
        if (i % 3 != 0) {
            ck_assert_msg(st.seen[i] >= 1, "key %zu never passed", i);
        }
        dups += st.seen[i] > 1;
    }
    /* Duplicates come only from a table that grew under the scan. */
    ck_assert_uint_lt(dups, SCAN_N / 2);
    free(st.seen);
    wsh_hash_free(h, NULL);
}
END_TEST

/* Without changes: each entry exactly once, in full pages. */
START_TEST(test_scan_exact_when_still)
{
    wsh_hash_t *h = wsh_hash_new();
    scan_state_t st;
    size_t i, cursor = 0, pages = 0;
    char key[32];

    st.seen = calloc(SCAN_N, 1);
    ck_assert_ptr_nonnull(st.seen);
    for (i = 0; i < SCAN_N; i++) {
        ck_assert_int_eq(wsh_hash_put(h, key, make_key(key, sizeof(key), i),
                                      VAL(i)), WSH_OK);
    }
    do {
        st.page = 0;
        cursor = wsh_hash_scan(h, cursor, SCAN_MAX, scan_cb, &st);
        pages++;
    } while (cursor != 0);
    for (i = 0; i < SCAN_N; i++) {
        ck_assert_uint_eq(st.seen[i], 1);
    }
    ck_assert_uint_ge(pages, SCAN_N / SCAN_MAX);
    ck_assert_uint_le(pages, 2 * SCAN_N / SCAN_MAX + 1);
    free(st.seen);
    wsh_hash_free(h, NULL);
}
END_TEST

static Suite *
hash_suite(void)
{
    Suite *s;
    TCase *tc;

    s = suite_create("hash");

    tc = tcase_create("map");
    tcase_add_test(tc, test_put_get_replace_remove);
    tcase_add_test(tc, test_key_is_copied);
    tcase_add_test(tc, test_binary_keys);
    tcase_add_test(tc, test_empty_key);
    tcase_add_test(tc, test_long_keys);
    tcase_add_test(tc, test_many);
    suite_add_tcase(s, tc);

    tc = tcase_create("iterate");
    tcase_add_test(tc, test_iterate_empty);
    tcase_add_test(tc, test_iterate_once);
    tcase_add_test(tc, test_iterate_remove_some);
    tcase_add_test(tc, test_iterate_remove_all);
    suite_add_tcase(s, tc);

    tc = tcase_create("scan");
    tcase_add_test(tc, test_scan_empty);
    tcase_add_test(tc, test_scan_survives_changes);
    tcase_add_test(tc, test_scan_exact_when_still);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_free_callback);
    tcase_add_test(tc, test_seed);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    sr = srunner_create(hash_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
