/* check_deflate.c -- unit tests of permessage-deflate (RFC 7692).
 *
 * Negotiation: a table of Sec-WebSocket-Extensions values, each with the
 * response header the server must answer (or NULL: declined), under the
 * default configuration or a variant of it. Codec: messages compressed
 * by plain zlib the way a client does (section 7.2.1) must inflate back,
 * our output must inflate with plain zlib, and a zip bomb must stop at
 * max + 1 bytes. RSV1 acceptance in the frame parser is checked here
 * too, since it exists for this extension.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <zlib.h>

#include "net/handshake.h"
#include "ws/deflate.h"
#include "ws/frame.h"

static wsh_conf_deflate_t
conf_default(void)
{
    wsh_conf_deflate_t cf;

    memset(&cf, 0, sizeof(cf));
    cf.enabled = true;
    cf.level = 1;
    cf.min_size = 0;
    cf.window_bits = 15;
    cf.client_window_bits = 15;
    cf.mem_level = 8;
    return cf;
}

typedef struct {
    const char *offer;
    const char *response;       /* NULL: declined */
} nego_row_t;

#define SNCT "; server_no_context_takeover"
#define CNCT "; client_no_context_takeover"
#define PMD  "permessage-deflate"

/* Under the default policy: no context takeover either way. */
static const nego_row_t nego_default[] = {
    { PMD, PMD SNCT CNCT },
    { "PerMessage-Deflate", PMD SNCT CNCT },
    { PMD "; client_max_window_bits",
      PMD SNCT CNCT "; client_max_window_bits=15" },
    { PMD "; client_max_window_bits=10",
      PMD SNCT CNCT "; client_max_window_bits=10" },
    { PMD "; client_max_window_bits=\"8\"",
      PMD SNCT CNCT "; client_max_window_bits=8" },
    { PMD "; server_max_window_bits=12",
      PMD SNCT CNCT "; server_max_window_bits=12" },
    { PMD ";server_max_window_bits = 9 ; client_no_context_takeover",
      PMD SNCT CNCT "; server_max_window_bits=9" },
    { PMD "; server_no_context_takeover; client_no_context_takeover",
      PMD SNCT CNCT },
    /* Chromium's offer. */
    { PMD "; client_max_window_bits",
      PMD SNCT CNCT "; client_max_window_bits=15" },
    /* An 8-bit server window cannot be made by zlib: the next offer. */
    { PMD "; server_max_window_bits=8", NULL },
    { PMD "; server_max_window_bits=8, " PMD, PMD SNCT CNCT },
    /* Invalid, unknown, duplicate parameters decline that offer only. */
    { PMD "; server_max_window_bits", NULL },
    { PMD "; server_max_window_bits=16", NULL },
    { PMD "; server_max_window_bits=7", NULL },
    { PMD "; server_max_window_bits=010", NULL },
    { PMD "; client_max_window_bits=0", NULL },
    { PMD "; client_max_window_bits=abc", NULL },
    { PMD "; server_no_context_takeover=1", NULL },
    { PMD "; client_no_context_takeover=\"x\"", NULL },
    { PMD "; x_unknown", NULL },
    { PMD "; client_max_window_bits; client_max_window_bits", NULL },
    { PMD "; server_no_context_takeover; server_no_context_takeover", NULL },
    { PMD "; x_unknown, " PMD "; client_max_window_bits=9",
      PMD SNCT CNCT "; client_max_window_bits=9" },
    /* Other extensions are skipped, quoted values included. */
    { "x-webkit-deflate-frame", NULL },
    { "foo; a=\"b,c\"; d, " PMD, PMD SNCT CNCT },
    { ", ," PMD " ,", PMD SNCT CNCT },
    /* A malformed list is not trusted at all. */
    { "foo; a=\"unterminated, " PMD, NULL },
    { PMD "; =1", NULL },
    { PMD " junk", NULL },
    { "", NULL },
    { NULL, NULL }
};

static void
check_rows(const wsh_conf_deflate_t *cf, const nego_row_t *rows)
{
    wsh_deflate_params_t p;
    char out[WSH_DEFLATE_RESPONSE_MAX];
    int rc;

    for (; rows->offer != NULL; rows++) {
        rc = wsh_deflate_accept(cf, rows->offer, strlen(rows->offer), &p);
        if (rows->response == NULL) {
            ck_assert_msg(rc == WSH_DECLINED, "accepted: %s", rows->offer);
            continue;
        }
        ck_assert_msg(rc == WSH_OK, "declined: %s", rows->offer);
        wsh_deflate_response(&p, out);
        ck_assert_msg(strcmp(out, rows->response) == 0, "%s -> %s",
                      rows->offer, out);
    }
}

START_TEST(test_negotiate_default)
{
    wsh_conf_deflate_t cf = conf_default();

    check_rows(&cf, nego_default);
}
END_TEST

START_TEST(test_negotiate_policy)
{
    static const nego_row_t takeover[] = {
        { PMD, PMD "; server_max_window_bits=12" },
        { PMD "; client_max_window_bits",
          PMD "; server_max_window_bits=12; client_max_window_bits=10" },
        { PMD "; client_max_window_bits=9",
          PMD "; server_max_window_bits=12; client_max_window_bits=9" },
        { PMD "; server_max_window_bits=13",
          PMD "; server_max_window_bits=12" },
        { PMD "; server_no_context_takeover; client_no_context_takeover",
          PMD SNCT CNCT "; server_max_window_bits=12" },
        { NULL, NULL }
    };
    wsh_conf_deflate_t cf = conf_default();

    cf.server_context_takeover = true;
    cf.client_context_takeover = true;
    cf.window_bits = 12;
    cf.client_window_bits = 10;
    check_rows(&cf, takeover);
}
END_TEST

/* Several headers: the first acceptable offer in header order. */
START_TEST(test_negotiate_headers)
{
    static const char req[] =
        "GET /echo HTTP/1.1\r\nHost: x\r\n"
        "Sec-WebSocket-Extensions: foo, " PMD "; bogus\r\n"
        "Sec-WebSocket-Extensions: " PMD "; client_max_window_bits=11\r\n"
        "Sec-WebSocket-Extensions: " PMD "\r\n\r\n";
    wsh_conf_deflate_t cf = conf_default();
    wsh_deflate_params_t p;
    wsh_request_t r;
    size_t used;

    wsh_http_request_init(&r, 8192, 64);
    ck_assert_int_eq(wsh_http_parse(&r, req, sizeof(req) - 1, &used), WSH_OK);
    ck_assert_int_eq(wsh_handshake_deflate(&cf, &r, &p), WSH_OK);
    ck_assert_int_eq(p.client_bits, 11);
    ck_assert(p.client_bits_sent);
    wsh_http_request_free(&r);
}
END_TEST

/* Compress like a client: raw deflate, sync flush, tail removed. */
static size_t
client_deflate(z_stream *z, const void *in, size_t len, u_char *out,
    size_t cap)
{
    z->next_in = (u_char *) in;
    z->avail_in = (uInt) len;
    z->next_out = out;
    z->avail_out = (uInt) cap;
    ck_assert_int_eq(deflate(z, Z_SYNC_FLUSH), Z_OK);
    ck_assert_uint_gt(z->avail_out, 0);
    ck_assert_int_eq(memcmp(out + (cap - z->avail_out) - 4,
                            "\0\0\377\377", 4), 0);
    return cap - z->avail_out - 4;
}

static wsh_deflate_t *
codec_new(const wsh_conf_deflate_t *cf, const char *offer)
{
    wsh_deflate_params_t p;

    ck_assert_int_eq(wsh_deflate_accept(cf, offer, strlen(offer), &p),
                     WSH_OK);
    return wsh_deflate_new(&p, cf);
}

static void
roundtrip(bool takeover)
{
    static const char msg[] = "{\"type\":\"message\",\"text\":\"hello hello "
                              "hello hello hello hello\"}";
    wsh_conf_deflate_t cf = conf_default();
    u_char buf[4096], *out, back[4096];
    size_t n, outlen;
    wsh_deflate_t *d;
    const char *why;
    z_stream z, zi;
    int i;

    cf.server_context_takeover = takeover;
    cf.client_context_takeover = takeover;
    d = codec_new(&cf, PMD);
    memset(&z, 0, sizeof(z));
    memset(&zi, 0, sizeof(zi));
    ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, -15, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    ck_assert_int_eq(inflateInit2(&zi, -15), Z_OK);
    for (i = 0; i < 3; i++) {
        if (!takeover) {
            deflateReset(&z);
        }
        n = client_deflate(&z, msg, sizeof(msg) - 1, buf, sizeof(buf));
        ck_assert_int_eq(wsh_deflate_inflate(d, buf, n, 1000, true, &out,
                                             &outlen, &why), 0);
        ck_assert_uint_eq(outlen, sizeof(msg) - 1);
        ck_assert_int_eq(memcmp(out, msg, outlen), 0);

        /* And ours inflates with plain zlib, the tail put back. */
        ck_assert_int_eq(wsh_deflate_compress(d, (const u_char *) msg,
                                              sizeof(msg) - 1, &out, &outlen),
                         WSH_OK);
        ck_assert_uint_lt(outlen, sizeof(msg) - 1);
        memcpy(buf, out, outlen);
        memcpy(buf + outlen, "\0\0\377\377", 4);
        if (!takeover) {
            inflateReset(&zi);
        }
        zi.next_in = buf;
        zi.avail_in = (uInt) outlen + 4;
        zi.next_out = back;
        zi.avail_out = sizeof(back);
        ck_assert_int_eq(inflate(&zi, Z_SYNC_FLUSH), Z_OK);
        ck_assert_uint_eq(sizeof(back) - zi.avail_out, sizeof(msg) - 1);
        ck_assert_int_eq(memcmp(back, msg, sizeof(msg) - 1), 0);
    }
    deflateEnd(&z);
    inflateEnd(&zi);
    wsh_deflate_free(d);
}

START_TEST(test_roundtrip_no_context)
{
    roundtrip(false);
}
END_TEST

START_TEST(test_roundtrip_takeover)
{
    roundtrip(true);
}
END_TEST

START_TEST(test_inflate_errors)
{
    wsh_conf_deflate_t cf = conf_default();
    static u_char zeros[1 << 20];
    u_char *bomb, *out, bad[] = { 0xff, 0xff, 0xff };
    size_t n, outlen, cap = compressBound(sizeof(zeros));
    wsh_deflate_t *d = codec_new(&cf, PMD);
    const char *why;
    z_stream z;

    /* 1 MiB of zeros is about 1 KiB compressed: over a 64 KiB limit. */
    bomb = malloc(cap);
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, -15, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    n = client_deflate(&z, zeros, sizeof(zeros), bomb, cap);
    ck_assert_uint_lt(n, 4096);
    ck_assert_int_eq(wsh_deflate_inflate(d, bomb, n, 65536, false, &out,
                                         &outlen, &why), 1009);
    /* Never more than max + 1 bytes inflated. */
    ck_assert_uint_le(outlen, 65537);
    /* Exactly at the limit is fine. */
    ck_assert_int_eq(wsh_deflate_inflate(d, bomb, n, sizeof(zeros), false,
                                         &out, &outlen, &why), 0);
    ck_assert_uint_eq(outlen, sizeof(zeros));

    ck_assert_int_eq(wsh_deflate_inflate(d, bad, sizeof(bad), 100, false,
                                         &out, &outlen, &why), 1007);

    /* Invalid UTF-8 found after inflating. */
    deflateReset(&z);
    n = client_deflate(&z, "ok\xc3\x28", 4, bomb, cap);
    ck_assert_int_eq(wsh_deflate_inflate(d, bomb, n, 100, true, &out,
                                         &outlen, &why), 1007);
    ck_assert_int_eq(wsh_deflate_inflate(d, bomb, n, 100, false, &out,
                                         &outlen, &why), 0);
    deflateEnd(&z);
    free(bomb);
    wsh_deflate_free(d);
}
END_TEST

START_TEST(test_compress_declined)
{
    wsh_conf_deflate_t cf = conf_default();
    u_char rnd[256], *out;
    size_t outlen, i;
    wsh_deflate_t *d;

    cf.min_size = 10;
    d = codec_new(&cf, PMD);
    ck_assert_int_eq(wsh_deflate_compress(d, (const u_char *) "short", 5,
                                          &out, &outlen), WSH_DECLINED);
    for (i = 0; i < sizeof(rnd); i++) {
        rnd[i] = (u_char) (i * 7919 >> 3 ^ i * 31);
    }
    /* Incompressible: sent as it is. */
    ck_assert_int_eq(wsh_deflate_compress(d, rnd, sizeof(rnd), &out, &outlen),
                     WSH_DECLINED);
    ck_assert(wsh_deflate_shareable(d));
    wsh_deflate_free(d);
}
END_TEST

/* With context takeover and min_size 0, an empty message right after
 * another one: zlib has nothing to flush, the message goes plain (this
 * once tripped an assertion, found by random testing). */
START_TEST(test_compress_empty)
{
    wsh_conf_deflate_t cf = conf_default();
    u_char *out;
    size_t outlen;
    wsh_deflate_t *d;
    int i;

    cf.server_context_takeover = true;
    d = codec_new(&cf, PMD);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(wsh_deflate_compress(d, (const u_char *) "abcabc",
                                              6, &out, &outlen), WSH_OK);
        ck_assert_int_eq(wsh_deflate_compress(d, (const u_char *) "", 0,
                                              &out, &outlen), WSH_DECLINED);
    }
    wsh_deflate_free(d);
}
END_TEST

/* Client frame: FIN as told, RSV bits, opcode, masked with a zero key. */
static size_t
frame(u_char *out, int b0, const char *data, size_t len)
{
    out[0] = (u_char) b0;
    out[1] = (u_char) (0x80 | len);
    memset(out + 2, 0, 4);
    memcpy(out + 6, data, len);
    return 6 + len;
}

static int
parse(wsh_ws_t *ws, u_char *p, size_t len, wsh_ws_event_t *ev)
{
    u_char *pos = p;

    return wsh_ws_parse(ws, &pos, p + len, ev);
}

START_TEST(test_frame_rsv1)
{
    wsh_ws_t ws;
    wsh_ws_event_t ev;
    u_char buf[64];
    size_t n;

    /* Not negotiated: 1002. */
    wsh_ws_init(&ws, 1000);
    n = frame(buf, 0x80 | 0x40 | 0x1, "ab", 2);
    ck_assert_int_eq(parse(&ws, buf, n, &ev), WSH_ERROR);
    ck_assert_int_eq(ev.code, 1002);
    wsh_ws_reset_buffer(&ws);

    /* Negotiated: compressed message, not UTF-8 checked. */
    wsh_ws_init(&ws, 1000);
    wsh_ws_allow_rsv1(&ws);
    n = frame(buf, 0x00 | 0x40 | 0x1, "\xff", 1);
    n += frame(buf + n, 0x80 | 0x0, "\xfe", 1);
    ck_assert_int_eq(parse(&ws, buf, n, &ev), WSH_OK);
    ck_assert(ev.compressed);
    ck_assert_uint_eq(ev.len, 2);
    n = frame(buf, 0x80 | 0x1, "ok", 2);
    ck_assert_int_eq(parse(&ws, buf, n, &ev), WSH_OK);
    ck_assert(!ev.compressed);

    /* RSV1 on a continuation or a control frame: 1002. */
    n = frame(buf, 0x00 | 0x40 | 0x1, "a", 1);
    n += frame(buf + n, 0x80 | 0x40 | 0x0, "b", 1);
    ck_assert_int_eq(parse(&ws, buf, n, &ev), WSH_ERROR);
    ck_assert_int_eq(ev.code, 1002);
    wsh_ws_reset_buffer(&ws);
    free(ws.buf);

    wsh_ws_init(&ws, 1000);
    wsh_ws_allow_rsv1(&ws);
    n = frame(buf, 0x80 | 0x40 | 0x9, "p", 1);
    ck_assert_int_eq(parse(&ws, buf, n, &ev), WSH_ERROR);
    ck_assert_int_eq(ev.code, 1002);
    /* RSV2 stays reserved. */
    wsh_ws_init(&ws, 1000);
    wsh_ws_allow_rsv1(&ws);
    n = frame(buf, 0x80 | 0x20 | 0x1, "p", 1);
    ck_assert_int_eq(parse(&ws, buf, n, &ev), WSH_ERROR);
    ck_assert_int_eq(ev.code, 1002);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("deflate");
    TCase *tc = tcase_create("deflate");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_negotiate_default);
    tcase_add_test(tc, test_negotiate_policy);
    tcase_add_test(tc, test_negotiate_headers);
    tcase_add_test(tc, test_roundtrip_no_context);
    tcase_add_test(tc, test_roundtrip_takeover);
    tcase_add_test(tc, test_inflate_errors);
    tcase_add_test(tc, test_compress_declined);
    tcase_add_test(tc, test_compress_empty);
    tcase_add_test(tc, test_frame_rsv1);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
