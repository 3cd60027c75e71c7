/* fuzz_deflate.c -- libFuzzer harness of permessage-deflate.
 *
 * The first byte picks a configuration (context takeover each way,
 * window bits); the rest is split in three: an extension offer list for
 * negotiation, messages for the inflater, and data for the compressor.
 * abort() marks a broken invariant:
 *   - an accepted offer's response header fits its buffer and is one a
 *     client (the tools' codec) accepts;
 *   - inflating never yields more than the limit, and text that comes
 *     out is valid UTF-8;
 *   - what the server compresses inflates back, on the client codec of
 *     its own response, to exactly the original.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/deflate.h"
#include "ws/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 4096           /* max_message_size for the inflater */

static void
fuzz_negotiate(const wsh_conf_deflate_t *cf, const uint8_t *p, size_t len)
{
    char resp[WSH_DEFLATE_RESPONSE_MAX + 64];
    wsh_deflate_params_t dp;
    wsh_deflate_t *client;
    size_t n;

    if (wsh_deflate_accept(cf, (const char *) p, len, &dp) != WSH_OK) {
        return;
    }
    memset(resp, 0x55, sizeof(resp));
    n = wsh_deflate_response(&dp, resp);
    if (n >= WSH_DEFLATE_RESPONSE_MAX || resp[n] != '\0'
        || (unsigned char) resp[WSH_DEFLATE_RESPONSE_MAX] != 0x55)
    {
        abort();
    }
    if (wsh_deflate_client_new(resp, n, &client) != WSH_OK) {
        abort();                /* we answered what no client accepts */
    }
    wsh_deflate_free(client);
}

static void
fuzz_inflate(wsh_deflate_t *d, const uint8_t *p, size_t len)
{
    const char *why;
    u_char *out;
    size_t outlen, n;
    bool text;
    int rc;

    while (len > 1) {
        n = p[0] % 64 * 8 + 1;          /* message length, from the data */
        text = p[0] & 0x80;
        p++;
        len--;
        if (n > len) {
            n = len;
        }
        rc = wsh_deflate_inflate(d, p, n, FUZZ_MAX, text, &out, &outlen,
                                 &why);
        if (rc == 0) {
            if (outlen > FUZZ_MAX
                || (text && wsh_utf8_validate(WSH_UTF8_ACCEPT, out, outlen)
                            != WSH_UTF8_ACCEPT))
            {
                abort();
            }
        } else if (rc != 1007 && rc != 1009 && rc != 1011) {
            abort();
        }
        p += n;
        len -= n;
    }
}

static void
fuzz_round_trip(const wsh_conf_deflate_t *cf, const uint8_t *p, size_t len)
{
    static const char offer[] = "permessage-deflate; client_max_window_bits";
    char resp[WSH_DEFLATE_RESPONSE_MAX];
    wsh_deflate_params_t dp;
    wsh_deflate_t *server, *client;
    u_char *z, *copy, *back;
    size_t zlen, blen;
    const char *why;

    if (wsh_deflate_accept(cf, offer, sizeof(offer) - 1, &dp) != WSH_OK) {
        abort();                /* the browsers' offer must be accepted */
    }
    server = wsh_deflate_new(&dp, cf);
    if (server == NULL
        || wsh_deflate_client_new(resp, wsh_deflate_response(&dp, resp),
                                  &client) != WSH_OK)
    {
        abort();
    }
    /* Twice: with context takeover the second message leans on the
     * first. */
    for (int i = 0; i < 2; i++) {
        if (wsh_deflate_compress(server, p, len, &z, &zlen) != WSH_OK) {
            continue;           /* sent plain: nothing to check */
        }
        copy = malloc(zlen ? zlen : 1);
        if (copy == NULL) {
            abort();
        }
        memcpy(copy, z, zlen);  /* the buffers are per process */
        if (wsh_deflate_inflate(client, copy, zlen, len, false, &back,
                                &blen, &why) != 0
            || blen != len || (len > 0 && memcmp(back, p, len) != 0))
        {
            abort();
        }
        free(copy);
    }
    wsh_deflate_free(server);
    wsh_deflate_free(client);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsh_conf_deflate_t cf = { true, 1, 0, 15, 15, 8, false, false };
    wsh_deflate_params_t dp;
    wsh_deflate_t *d;
    size_t third;
    uint8_t mode;

    if (size < 1) {
        return 0;
    }
    mode = data[0];
    cf.server_context_takeover = mode & 1;
    cf.client_context_takeover = mode & 2;
    cf.window_bits = 9 + (mode >> 2) % 7;
    cf.client_window_bits = 9 + (mode >> 5) % 7;
    cf.level = 1 + mode % 9;
    data++;
    size--;
    third = size / 3;

    fuzz_negotiate(&cf, data, third);

    memset(&dp, 0, sizeof(dp));
    dp.server_bits = (uint8_t) cf.window_bits;
    dp.client_bits = (uint8_t) cf.client_window_bits;
    dp.server_no_context_takeover = !cf.server_context_takeover;
    dp.client_no_context_takeover = !cf.client_context_takeover;
    d = wsh_deflate_new(&dp, &cf);
    if (d == NULL) {
        abort();
    }
    fuzz_inflate(d, data + third, third);
    wsh_deflate_free(d);

    fuzz_round_trip(&cf, data + 2 * third, size - 2 * third);
    return 0;
}
