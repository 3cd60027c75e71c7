/* check_utf8.c -- unit tests of the incremental UTF-8 validator.
 *
 * wsh_utf8_validate() must accept exactly the UTF-8 of RFC 3629, reject at
 * the first byte that proves a sequence invalid (fail-fast, RFC 6455
 * section 8.1), give the same answer however the input is cut into
 * pieces, and keep its eight-byte ASCII fast path correct at every
 * alignment. The invalid cases follow Markus Kuhn's UTF-8 decoder stress
 * test; an independent reference validator written from the RFC 3629
 * grammar checks the DFA on every short sequence of interesting bytes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "ws/utf8.h"

#define NOT_REJECTED -1         /* reject_at of input that never fails */

typedef struct {
    const char *name;
    const char *bytes;
    size_t      len;
    int         reject_at;      /* index of the byte that must REJECT */
} seq_t;

#define SEQ(name, s, at) { name, s, sizeof(s) - 1, at }

/* Valid sequences, each ending on a character boundary. */
static const seq_t valid[] = {
    SEQ("empty", "", NOT_REJECTED),
    SEQ("ascii", "Hello, world!", NOT_REJECTED),
    SEQ("NUL and DEL", "\x00\x7f", NOT_REJECTED),
    SEQ("U+0080", "\xc2\x80", NOT_REJECTED),
    SEQ("U+00E9", "\xc3\xa9", NOT_REJECTED),
    SEQ("U+07FF", "\xdf\xbf", NOT_REJECTED),
    SEQ("U+0800", "\xe0\xa0\x80", NOT_REJECTED),
    SEQ("U+20AC", "\xe2\x82\xac", NOT_REJECTED),
    SEQ("U+D7FF", "\xed\x9f\xbf", NOT_REJECTED),
    SEQ("U+E000", "\xee\x80\x80", NOT_REJECTED),
    SEQ("U+FEFF", "\xef\xbb\xbf", NOT_REJECTED),
    SEQ("U+FFFD", "\xef\xbf\xbd", NOT_REJECTED),
    SEQ("U+FFFE", "\xef\xbf\xbe", NOT_REJECTED),
    SEQ("U+FFFF", "\xef\xbf\xbf", NOT_REJECTED),
    SEQ("U+10000", "\xf0\x90\x80\x80", NOT_REJECTED),
    SEQ("U+1F600", "\xf0\x9f\x98\x80", NOT_REJECTED),
    SEQ("U+40000", "\xf1\x80\x80\x80", NOT_REJECTED),
    SEQ("U+FFFFF", "\xf3\xbf\xbf\xbf", NOT_REJECTED),
    SEQ("U+100000", "\xf4\x80\x80\x80", NOT_REJECTED),
    SEQ("U+10FFFF", "\xf4\x8f\xbf\xbf", NOT_REJECTED),
    SEQ("kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
        NOT_REJECTED),
    SEQ("mixed", "a\xc3\xa9z\xe2\x82\xac!\xf0\x9f\x98\x80.\xef\xbb\xbf",
        NOT_REJECTED),
    SEQ("long mixed",
        "{\"msg\":\"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln \xe2\x80\x94 "
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e, \xf0\x9f\x8e\x89\xf0\x9f"
        "\x8e\x89, \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\"}",
        NOT_REJECTED),
};

/* Kuhn sections 3 to 5, the 5- and 6-byte forms, and the fail-fast
 * examples of RFC 6455 clients (Autobahn case 6.x). */
static const seq_t invalid[] = {
    /* 3.1 unexpected continuation bytes */
    SEQ("continuation 80", "\x80", 0),
    SEQ("continuation BF", "\xbf", 0),
    SEQ("2 continuations", "\x80\xbf", 0),
    SEQ("3 continuations", "\x80\xbf\x80", 0),
    SEQ("7 continuations", "\x80\xbf\x80\xbf\x80\xbf\x80", 0),
    SEQ("continuation after ascii", "abc\x80", 3),
    SEQ("continuation after a character", "\xc3\xa9\xa9", 2),
    SEQ("continuation after U+10FFFF", "\xf4\x8f\xbf\xbf\x80", 4),
    /* 3.2 lonely start bytes followed by a space */
    SEQ("lonely C0", "\xc0 ", 0),
    SEQ("lonely C1", "\xc1 ", 0),
    SEQ("lonely C2", "\xc2 ", 1),
    SEQ("lonely DF", "\xdf ", 1),
    SEQ("lonely E0", "\xe0 ", 1),
    SEQ("lonely E1", "\xe1 ", 1),
    SEQ("lonely ED", "\xed ", 1),
    SEQ("lonely EF", "\xef ", 1),
    SEQ("lonely F0", "\xf0 ", 1),
    SEQ("lonely F4", "\xf4 ", 1),
    SEQ("lonely F7", "\xf7 ", 0),
    SEQ("lonely F8", "\xf8 ", 0),
    SEQ("lonely FB", "\xfb ", 0),
    SEQ("lonely FC", "\xfc ", 0),
    SEQ("lonely FD", "\xfd ", 0),
    SEQ("3-byte start, one continuation, space", "\xe1\x80 ", 2),
    SEQ("4-byte start, two continuations, space", "\xf1\x80\x80 ", 3),
    /* 3.3 sequences with the last continuation byte missing */
    SEQ("C0 missing last (U+0000)", "\xc0", 0),
    SEQ("E0 80 missing last (U+0000)", "\xe0\x80", 1),
    SEQ("F0 80 80 missing last (U+0000)", "\xf0\x80\x80", 1),
    SEQ("F8 80 80 80 missing last", "\xf8\x80\x80\x80", 0),
    SEQ("FC 80 80 80 80 missing last", "\xfc\x80\x80\x80\x80", 0),
    SEQ("F7 BF BF missing last", "\xf7\xbf\xbf", 0),
    SEQ("FB BF BF BF missing last", "\xfb\xbf\xbf\xbf", 0),
    SEQ("FD BF BF BF BF missing last", "\xfd\xbf\xbf\xbf\xbf", 0),
    /* 3.4 concatenated incomplete sequences */
    SEQ("concatenated incomplete",
        "\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80"
        "\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf", 0),
    SEQ("DF then EF BF", "\xdf\xef\xbf", 1),
    SEQ("EF BF then DF", "\xef\xbf\xdf", 2),
    /* 3.5 impossible bytes */
    SEQ("FE", "\xfe", 0),
    SEQ("FF", "\xff", 0),
    SEQ("FE FE FF FF", "\xfe\xfe\xff\xff", 0),
    SEQ("F5", "\xf5\x80\x80\x80", 0),
    SEQ("F6", "\xf6\x80\x80\x80", 0),
    SEQ("F7 (U+1FFFFF)", "\xf7\xbf\xbf\xbf", 0),
    SEQ("FE after ascii", "ok\xfe", 2),
    /* 4.1 overlong "/" */
    SEQ("overlong / 2 bytes", "\xc0\xaf", 0),
    SEQ("overlong / 3 bytes", "\xe0\x80\xaf", 1),
    SEQ("overlong / 4 bytes", "\xf0\x80\x80\xaf", 1),
    SEQ("overlong / 5 bytes", "\xf8\x80\x80\x80\xaf", 0),
    SEQ("overlong / 6 bytes", "\xfc\x80\x80\x80\x80\xaf", 0),
    /* 4.2 maximum overlong sequences */
    SEQ("max overlong 2 bytes (U+007F)", "\xc1\xbf", 0),
    SEQ("max overlong 3 bytes (U+07FF)", "\xe0\x9f\xbf", 1),
    SEQ("max overlong 4 bytes (U+FFFF)", "\xf0\x8f\xbf\xbf", 1),
    SEQ("max overlong 5 bytes", "\xf8\x87\xbf\xbf\xbf", 0),
    SEQ("max overlong 6 bytes", "\xfc\x83\xbf\xbf\xbf\xbf", 0),
    /* 4.3 overlong NUL */
    SEQ("overlong NUL 2 bytes", "\xc0\x80", 0),
    SEQ("overlong NUL 3 bytes", "\xe0\x80\x80", 1),
    SEQ("overlong NUL 4 bytes", "\xf0\x80\x80\x80", 1),
    SEQ("overlong NUL 5 bytes", "\xf8\x80\x80\x80\x80", 0),
    SEQ("overlong NUL 6 bytes", "\xfc\x80\x80\x80\x80\x80", 0),
    /* 5.1 single UTF-16 surrogates */
    SEQ("U+D800", "\xed\xa0\x80", 1),
    SEQ("U+DB7F", "\xed\xad\xbf", 1),
    SEQ("U+DB80", "\xed\xae\x80", 1),
    SEQ("U+DBFF", "\xed\xaf\xbf", 1),
    SEQ("U+DC00", "\xed\xb0\x80", 1),
    SEQ("U+DF80", "\xed\xbe\x80", 1),
    SEQ("U+DFFF", "\xed\xbf\xbf", 1),
    /* 5.2 paired surrogates */
    SEQ("U+D800 U+DC00", "\xed\xa0\x80\xed\xb0\x80", 1),
    SEQ("U+DBFF U+DFFF", "\xed\xaf\xbf\xed\xbf\xbf", 1),
    /* beyond U+10FFFF */
    SEQ("U+110000", "\xf4\x90\x80\x80", 1),
    SEQ("U+13FFFF", "\xf4\xbf\xbf\xbf", 1),
    SEQ("U+140000", "\xf5\x80\x80\x80", 0),
    /* 5- and 6-byte forms of valid-looking code points */
    SEQ("5-byte U+200000", "\xf8\x88\x80\x80\x80", 0),
    SEQ("6-byte U+4000000", "\xfc\x84\x80\x80\x80\x80", 0),
    SEQ("6-byte U+7FFFFFFF", "\xfd\xbf\xbf\xbf\xbf\xbf", 0),
    /* the fail-fast examples: no need to wait for the last byte */
    SEQ("ED A0 rejects at A0", "\xed\xa0", 1),
    SEQ("E0 80 rejects at 80", "\xe0\x80", 1),
    SEQ("F4 90 rejects at 90", "\xf4\x90", 1),
    SEQ("F0 8F rejects at 8F", "\xf0\x8f", 1),
    SEQ("bad continuation C3 28", "a\xc3\x28", 2),
    SEQ("bad continuation E2 82 28", "\xe2\x82\x28", 2),
    SEQ("bad continuation F0 28 8C BC", "\xf0\x28\x8c\xbc", 1),
    SEQ("bad continuation F0 90 28 BC", "\xf0\x90\x28\xbc", 2),
    SEQ("bad continuation F0 90 8C 28", "\xf0\x90\x8c\x28", 3),
    SEQ("Autobahn 6.3.1", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
        "\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 12),
};

/* Valid prefixes cut inside a character: neither ACCEPT nor REJECT. */
static const seq_t truncated[] = {
    SEQ("C2", "\xc2", NOT_REJECTED),
    SEQ("DF", "\xdf", NOT_REJECTED),
    SEQ("E0 A0", "\xe0\xa0", NOT_REJECTED),
    SEQ("E1", "\xe1", NOT_REJECTED),
    SEQ("E1 80", "\xe1\x80", NOT_REJECTED),
    SEQ("ED 9F", "\xed\x9f", NOT_REJECTED),
    SEQ("EF BF", "\xef\xbf", NOT_REJECTED),
    SEQ("F0", "\xf0", NOT_REJECTED),
    SEQ("F0 90", "\xf0\x90", NOT_REJECTED),
    SEQ("F0 90 80", "\xf0\x90\x80", NOT_REJECTED),
    SEQ("F3 BF BF", "\xf3\xbf\xbf", NOT_REJECTED),
    SEQ("F4 8F BF", "\xf4\x8f\xbf", NOT_REJECTED),
    SEQ("text then E2 82", "caf\xc3\xa9 \xe2\x82", NOT_REJECTED),
};

static uint32_t
validate(uint32_t state, const char *p, size_t len)
{
    return wsh_utf8_validate(state, (const u_char *) p, len);
}

/* Feed one byte at a time; returns the final state and the index of the
 * byte that gave REJECT (or NOT_REJECTED) in *at. */
static uint32_t
validate_bytewise(const char *p, size_t len, int *at)
{
    uint32_t state = WSH_UTF8_ACCEPT;
    size_t i;

    *at = NOT_REJECTED;
    for (i = 0; i < len; i++) {
        state = validate(state, p + i, 1);
        if (state == WSH_UTF8_REJECT) {
            *at = (int) i;
            break;
        }
    }
    return state;
}

/* Encode code point CP as UTF-8 (any value below 2^21, surrogates too,
 * as a careless encoder would); returns the length. */
static size_t
encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char) (0xc0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char) (0xe0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char) (0xf0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}

/* Reference validator written from the RFC 3629 section 4 grammar, one
 * rule per line, with no tables. Returns the index of the first byte that
 * cannot be part of valid UTF-8 given what precedes it, -1 when all is
 * valid, -2 when the input ends inside a character. */
static int
reference(const u_char *p, size_t len)
{
    size_t i = 0, k, need;
    u_char lo, hi;

    while (i < len) {
        lo = 0x80;
        hi = 0xbf;
        if (p[i] <= 0x7f) {
            i++;
            continue;
        } else if (p[i] >= 0xc2 && p[i] <= 0xdf) {
            need = 1;
        } else if (p[i] == 0xe0) {
            need = 2;
            lo = 0xa0;
        } else if (p[i] >= 0xe1 && p[i] <= 0xec) {
            need = 2;
        } else if (p[i] == 0xed) {
            need = 2;
            hi = 0x9f;
        } else if (p[i] >= 0xee && p[i] <= 0xef) {
            need = 2;
        } else if (p[i] == 0xf0) {
            need = 3;
            lo = 0x90;
        } else if (p[i] >= 0xf1 && p[i] <= 0xf3) {
            need = 3;
        } else if (p[i] == 0xf4) {
            need = 3;
            hi = 0x8f;
        } else {
            return (int) i;
        }
        for (k = 1; k <= need; k++) {
            if (i + k == len) {
                return -2;
            }
            if (p[i + k] < lo || p[i + k] > hi) {
                return (int) (i + k);
            }
            lo = 0x80;
            hi = 0xbf;
        }
        i += need + 1;
    }
    return -1;
}

START_TEST(test_ascii)
{
    char buf[128];
    size_t i;

    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (char) i;
    }
    ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, buf, 0), WSH_UTF8_ACCEPT);
    ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, buf, sizeof(buf)),
                      WSH_UTF8_ACCEPT);
    for (i = 0; i < sizeof(buf); i++) {
        ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, buf + i, 1),
                          WSH_UTF8_ACCEPT);
    }
    ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, "plain text", 10),
                      WSH_UTF8_ACCEPT);
}
END_TEST

START_TEST(test_valid)
{
    const seq_t *v = &valid[_i];
    uint32_t state;
    size_t i;
    int at;

    ck_assert_msg(validate(WSH_UTF8_ACCEPT, v->bytes, v->len)
                  == WSH_UTF8_ACCEPT, "%s: not accepted", v->name);
    state = validate_bytewise(v->bytes, v->len, &at);
    ck_assert_msg(state == WSH_UTF8_ACCEPT && at == NOT_REJECTED,
                  "%s: byte by byte gave state %u", v->name, state);

    /* Inside a character the state is neither ACCEPT nor REJECT. */
    state = WSH_UTF8_ACCEPT;
    for (i = 0; i < v->len; i++) {
        state = validate(state, v->bytes + i, 1);
        if (i + 1 < v->len && ((u_char) v->bytes[i + 1] & 0xc0) == 0x80) {
            ck_assert_msg(state != WSH_UTF8_ACCEPT
                          && state != WSH_UTF8_REJECT,
                          "%s: state %u inside a character at %zu",
                          v->name, state, i);
        } else {
            ck_assert_msg(state == WSH_UTF8_ACCEPT,
                          "%s: state %u at a boundary at %zu", v->name,
                          state, i);
        }
    }
}
END_TEST

START_TEST(test_invalid)
{
    const seq_t *b = &invalid[_i];
    uint32_t state;
    int at;

    ck_assert_msg(validate(WSH_UTF8_ACCEPT, b->bytes, b->len)
                  == WSH_UTF8_REJECT, "%s: not rejected", b->name);

    /* Fail-fast: REJECT exactly at the byte that proves it. */
    state = validate_bytewise(b->bytes, b->len, &at);
    ck_assert_msg(state == WSH_UTF8_REJECT && at == b->reject_at,
                  "%s: rejected at byte %d, expected %d", b->name, at,
                  b->reject_at);

    /* The same with the prefix up to and before that byte at once. */
    ck_assert_msg(validate(WSH_UTF8_ACCEPT, b->bytes, (size_t) at + 1)
                  == WSH_UTF8_REJECT, "%s: prefix not rejected", b->name);
    ck_assert_msg(validate(WSH_UTF8_ACCEPT, b->bytes, (size_t) at)
                  != WSH_UTF8_REJECT, "%s: rejected too early", b->name);

    /* Per the reference validator too. */
    ck_assert_int_eq(reference((const u_char *) b->bytes, b->len),
                     b->reject_at);
}
END_TEST

START_TEST(test_truncated)
{
    const seq_t *t = &truncated[_i];
    uint32_t state;
    int at;

    state = validate(WSH_UTF8_ACCEPT, t->bytes, t->len);
    ck_assert_msg(state != WSH_UTF8_ACCEPT && state != WSH_UTF8_REJECT,
                  "%s: state %u at the end", t->name, state);
    ck_assert_uint_eq(validate_bytewise(t->bytes, t->len, &at), state);
    ck_assert_int_eq(at, NOT_REJECTED);
    ck_assert_int_eq(reference((const u_char *) t->bytes, t->len), -2);
}
END_TEST

/* Bytes that never occur in UTF-8 (C0, C1, F5 to FF) and continuation
 * bytes are rejected at once when they start a character. */
START_TEST(test_never_valid_bytes)
{
    u_char b;
    unsigned v;

    for (v = 0x80; v <= 0xff; v++) {
        b = (u_char) v;
        if (v >= 0xc2 && v <= 0xf4) {
            ck_assert_msg(wsh_utf8_validate(WSH_UTF8_ACCEPT, &b, 1)
                          != WSH_UTF8_REJECT, "start byte %02X rejected", v);
        } else {
            ck_assert_msg(wsh_utf8_validate(WSH_UTF8_ACCEPT, &b, 1)
                          == WSH_UTF8_REJECT, "byte %02X not rejected", v);
        }
    }
}
END_TEST

/* REJECT is final: no later input brings the state back. */
START_TEST(test_reject_sticky)
{
    static const char *const more[] = {
        "a", "abcdefghijklmnopqrstuvwxyz", "\xc3\xa9", "\x80", "\xe2\x82\xac"
    };
    size_t i;

    for (i = 0; i < wsh_nelems(more); i++) {
        ck_assert_uint_eq(validate(WSH_UTF8_REJECT, more[i],
                                   strlen(more[i])), WSH_UTF8_REJECT);
    }
}
END_TEST

/* Every scalar value encodes to accepted UTF-8, every surrogate and
 * every value above U+10FFFF to rejected input. */
START_TEST(test_all_code_points)
{
    char buf[4];
    uint32_t cp, state;
    size_t n;
    bool surrogate;

    for (cp = 0; cp < 0x140000; cp++) {
        n = encode(cp, buf);
        state = validate(WSH_UTF8_ACCEPT, buf, n);
        surrogate = cp >= 0xd800 && cp <= 0xdfff;
        if (surrogate || cp > 0x10ffff) {
            ck_assert_msg(state == WSH_UTF8_REJECT,
                          "U+%04X: state %u, expected REJECT", cp, state);
        } else {
            ck_assert_msg(state == WSH_UTF8_ACCEPT,
                          "U+%04X: state %u, expected ACCEPT", cp, state);
        }
    }
}
END_TEST

/* Every sequence of up to four bytes drawn from the bytes where the rules
 * change, byte by byte against the reference validator. */
START_TEST(test_reference)
{
    static const u_char pick[] = {
        0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1,
        0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3,
        0xf4, 0xf5, 0xf7, 0xf8, 0xfb, 0xfc, 0xfd, 0xfe, 0xff
    };
    size_t np = sizeof(pick), len, total, idx, k;
    u_char seq[4];
    uint32_t state, whole;
    int ref, at;

    memset(seq, 0, sizeof(seq));
    for (len = 1; len <= 4; len++) {
        total = 1;
        for (k = 0; k < len; k++) {
            total *= np;
        }
        for (idx = 0; idx < total; idx++) {
            size_t v = idx;

            for (k = 0; k < len; k++) {
                seq[k] = pick[v % np];
                v /= np;
            }
            ref = reference(seq, len);
            whole = wsh_utf8_validate(WSH_UTF8_ACCEPT, seq, len);
            state = validate_bytewise((const char *) seq, len, &at);
            if (ref >= 0) {
                ck_assert_msg(whole == WSH_UTF8_REJECT && at == ref,
                              "%02x %02x %02x %02x (len %zu): rejected at "
                              "%d, expected %d", seq[0], seq[1], seq[2],
                              seq[3], len, at, ref);
            } else if (ref == -1) {
                ck_assert_msg(whole == WSH_UTF8_ACCEPT
                              && state == WSH_UTF8_ACCEPT,
                              "%02x %02x %02x %02x (len %zu): not accepted",
                              seq[0], seq[1], seq[2], seq[3], len);
            } else {
                ck_assert_msg(whole != WSH_UTF8_ACCEPT
                              && whole != WSH_UTF8_REJECT && whole == state,
                              "%02x %02x %02x %02x (len %zu): state %u, "
                              "expected incomplete", seq[0], seq[1], seq[2],
                              seq[3], len, whole);
            }
        }
    }
}
END_TEST

/* Any way of cutting valid text gives the state of the whole. */
START_TEST(test_any_split)
{
    const seq_t *v;
    uint32_t state, whole;
    size_t i, k, p, step;
    unsigned seed = 12345;

    for (i = 0; i < wsh_nelems(valid); i++) {
        v = &valid[i];
        whole = validate(WSH_UTF8_ACCEPT, v->bytes, v->len);
        for (k = 0; k <= v->len; k++) {
            state = validate(WSH_UTF8_ACCEPT, v->bytes, k);
            state = validate(state, v->bytes + k, v->len - k);
            ck_assert_msg(state == whole, "%s: split at %zu gave %u",
                          v->name, k, state);
        }
        /* random chunk sizes from 1 to 9 (a fixed LCG, reproducible) */
        for (k = 0; k < 20; k++) {
            state = WSH_UTF8_ACCEPT;
            for (p = 0; p < v->len; p += step) {
                seed = seed * 1103515245u + 12345u;
                step = 1 + (seed >> 16) % 9;
                if (step > v->len - p) {
                    step = v->len - p;
                }
                state = validate(state, v->bytes + p, step);
            }
            ck_assert_msg(state == whole, "%s: chunked run %zu gave %u",
                          v->name, k, state);
        }
    }
}
END_TEST

/* The eight-byte ASCII fast path: a non-ASCII byte at each offset 0..16
 * of a long ASCII run, and runs of every length up to 40. */
START_TEST(test_fast_path)
{
    char buf[64];
    uint32_t state;
    size_t off, len;
    int at;

    for (len = 0; len <= 40; len++) {
        memset(buf, 'a', len);
        ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, buf, len),
                          WSH_UTF8_ACCEPT);
    }
    for (off = 0; off <= 16; off++) {
        /* a stray continuation byte */
        memset(buf, 'x', 40);
        buf[off] = (char) 0x80;
        ck_assert_msg(validate(WSH_UTF8_ACCEPT, buf, 40) == WSH_UTF8_REJECT,
                      "0x80 at %zu not rejected", off);
        validate_bytewise(buf, 40, &at);
        ck_assert_int_eq(at, (int) off);
        ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, buf, off),
                          WSH_UTF8_ACCEPT);

        /* a valid two-byte character */
        memset(buf, 'x', 40);
        buf[off] = (char) 0xc3;
        buf[off + 1] = (char) 0xa9;
        ck_assert_msg(validate(WSH_UTF8_ACCEPT, buf, 40) == WSH_UTF8_ACCEPT,
                      "U+00E9 at %zu not accepted", off);

        /* a valid four-byte character */
        memset(buf, 'x', 40);
        memcpy(buf + off, "\xf0\x9f\x98\x80", 4);
        ck_assert_msg(validate(WSH_UTF8_ACCEPT, buf, 40) == WSH_UTF8_ACCEPT,
                      "U+1F600 at %zu not accepted", off);

        /* a start byte followed by ASCII: rejected at the next byte */
        memset(buf, 'x', 40);
        buf[off] = (char) 0xc3;
        ck_assert_msg(validate(WSH_UTF8_ACCEPT, buf, 40) == WSH_UTF8_REJECT,
                      "lone C3 at %zu not rejected", off);
        validate_bytewise(buf, 40, &at);
        ck_assert_int_eq(at, (int) off + 1);

        /* a surrogate: rejected at its second byte */
        memset(buf, 'x', 40);
        memcpy(buf + off, "\xed\xa0\x80", 3);
        ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, buf, off + 2),
                          WSH_UTF8_REJECT);
        ck_assert_uint_eq(validate(WSH_UTF8_ACCEPT, buf, off + 1),
                          validate(WSH_UTF8_ACCEPT, "\xed", 1));

        /* a character cut at the end of the run */
        memset(buf, 'x', 40);
        memcpy(buf + off, "\xe2\x82", 2);
        state = validate(WSH_UTF8_ACCEPT, buf, off + 2);
        ck_assert_msg(state != WSH_UTF8_ACCEPT && state != WSH_UTF8_REJECT,
                      "E2 82 at %zu: state %u", off, state);
        /* and completed by the next call */
        ck_assert_uint_eq(validate(state, "\xac" "abcdefghijklmnop", 17),
                          WSH_UTF8_ACCEPT);
    }
}
END_TEST

/* In the middle of a character ASCII bytes are errors: the fast path
 * must not skip them. */
START_TEST(test_fast_path_mid_character)
{
    static const char ascii[] = "abcdefghijklmnopqrstuvwxyz";
    uint32_t state;

    state = validate(WSH_UTF8_ACCEPT, "\xc3", 1);
    ck_assert_uint_eq(validate(state, ascii, sizeof(ascii) - 1),
                      WSH_UTF8_REJECT);
    state = validate(WSH_UTF8_ACCEPT, "\xf0\x9f\x98", 3);
    ck_assert_uint_eq(validate(state, ascii, sizeof(ascii) - 1),
                      WSH_UTF8_REJECT);
    state = validate(WSH_UTF8_ACCEPT, "\xe2", 1);
    ck_assert_uint_eq(validate(state, "\x82\xac" "abcdefghijklmnop", 18),
                      WSH_UTF8_ACCEPT);
}
END_TEST

/* The fast path loads eight bytes wherever the input starts: every
 * start alignment 0..7 and every length 0..17, all ASCII, and with a bad
 * byte (a stray continuation) or a good two-byte character at every
 * position. */
START_TEST(test_fast_path_alignments)
{
    char store[40], *buf;
    size_t align, len, at;

    for (align = 0; align < 8; align++) {
        buf = store + align;
        for (len = 0; len <= 17; len++) {
            memset(buf, 'q', len);
            ck_assert_msg(validate(WSH_UTF8_ACCEPT, buf, len)
                          == WSH_UTF8_ACCEPT, "ASCII, alignment %zu, length "
                          "%zu", align, len);
            for (at = 0; at < len; at++) {
                memset(buf, 'q', len);
                buf[at] = (char) 0x80;
                ck_assert_msg(validate(WSH_UTF8_ACCEPT, buf, len)
                              == WSH_UTF8_REJECT, "0x80 at %zu, alignment "
                              "%zu, length %zu", at, align, len);
                if (at + 1 < len) {
                    buf[at] = (char) 0xc3;
                    buf[at + 1] = (char) 0xa9;
                    ck_assert_msg(validate(WSH_UTF8_ACCEPT, buf, len)
                                  == WSH_UTF8_ACCEPT, "U+00E9 at %zu, "
                                  "alignment %zu, length %zu", at, align,
                                  len);
                }
            }
        }
    }
}
END_TEST

static Suite *
utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("validate");

    tcase_add_test(tc, test_ascii);
    tcase_add_loop_test(tc, test_valid, 0, (int) wsh_nelems(valid));
    tcase_add_loop_test(tc, test_invalid, 0, (int) wsh_nelems(invalid));
    tcase_add_loop_test(tc, test_truncated, 0, (int) wsh_nelems(truncated));
    tcase_add_test(tc, test_never_valid_bytes);
    tcase_add_test(tc, test_reject_sticky);
    tcase_add_test(tc, test_all_code_points);
    tcase_add_test(tc, test_reference);
    tcase_add_test(tc, test_any_split);
    tcase_add_test(tc, test_fast_path);
    tcase_add_test(tc, test_fast_path_mid_character);
    tcase_add_test(tc, test_fast_path_alignments);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(utf8_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
