/* fuzz_http.c -- libFuzzer harness of the HTTP request parser.
 *
 * Feeds the input to wsh_http_parse() in two pieces cut at a point taken
 * from the data (the parser must not care where reads end), with small
 * limits so the 414/431 paths are reached, then runs the WebSocket
 * handshake check on every head that parsed.
 *
 * A head that parsed is then parsed again with header fields added just
 * before its blank line, chosen from the data: Content-Length twice with
 * differing or equal values, as a list, or beside Transfer-Encoding; a
 * second Host; another Upgrade. Smuggling rules (RFC 9112 sections 3.2
 * and 6.3) say which of these must be refused; the others must parse as
 * the original did.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"
#include "net/handshake.h"

#define FUZZ_MAX_HEADER  512
#define FUZZ_MAX_HEADERS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse P in two pieces cut at CUT into R (initialised here, freed by
 * the caller). Returns the parser's result; *head is the length of the
 * head when it is WSH_OK. Aborts if the parser claims more bytes than
 * it was given. */
static int
fuzz_parse(wsh_request_t *r, const char *p, size_t size, size_t cut,
    size_t *head)
{
    size_t used = 0;
    int rc;

    wsh_http_request_init(r, FUZZ_MAX_HEADER, FUZZ_MAX_HEADERS);
    rc = wsh_http_parse(r, p, cut, &used);
    if (rc == WSH_OK && used > cut) {
        abort();
    }
    *head = used;
    if (rc == WSH_AGAIN) {
        used = 0;
        rc = wsh_http_parse(r, p + cut, size - cut, &used);
        if (rc == WSH_OK && used > size - cut) {
            abort();
        }
        *head = cut + used;
    }
    return rc;
}

static void
fuzz_handshake(const wsh_request_t *r)
{
    char accept[WSH_WS_ACCEPT_LEN + 1];
    const char *why = NULL;

    (void) wsh_http_header(r, "Host");
    (void) wsh_http_header_count(r, "Sec-WebSocket-Key");
    if (wsh_handshake_check(r, accept, &why) == WSH_OK
        && accept[WSH_WS_ACCEPT_LEN] != '\0')
    {
        abort();
    }
}

/* The head of DATA (HEAD bytes, parsed as R) again with fields added
 * before its blank line, which fields chosen by SUM. */
static void
fuzz_duplicate(const wsh_request_t *r, const uint8_t *data, size_t size,
    size_t head, unsigned sum)
{
    char fields[96], *p;
    unsigned n = sum % 100000, m = n + 1 + (sum >> 17) % 9;
    size_t blank, flen, len, got;
    bool refuse;
    wsh_request_t r2;
    int rc;

    /* The blank line is "\n" or "\r\n" (RFC 9112 allows a bare LF). */
    blank = head >= 2 && data[head - 2] == '\r' ? 2 : 1;
    refuse = true;
    switch ((sum >> 8) % 6) {
    case 0:                     /* differing: smuggling */
        snprintf(fields, sizeof(fields), "Content-Length: %u\r\n"
                 "Content-Length: %u\r\n", n, m);
        break;
    case 1:                     /* equal: refused too, our choice */
        snprintf(fields, sizeof(fields), "Content-Length: %u\r\n"
                 "content-length: %u\r\n", n, n);
        break;
    case 2:
        snprintf(fields, sizeof(fields), "Content-Length: %u, %u\r\n", n,
                 sum & 1 ? n : m);
        break;
    case 3:
        snprintf(fields, sizeof(fields), "Transfer-Encoding: chunked\r\n");
        refuse = wsh_http_header(r, "Content-Length") != NULL;
        break;
    case 4:                     /* RFC 9112 section 3.2 for HTTP/1.1 */
        snprintf(fields, sizeof(fields), "Host: %u\r\n", n);
        refuse = r->version == 11;
        break;
    default:
        snprintf(fields, sizeof(fields), "Upgrade: websocket\r\n");
        refuse = false;
        break;
    }
    flen = strlen(fields);

    len = size + flen;
    p = malloc(len);
    if (p == NULL) {
        return;
    }
    memcpy(p, data, head - blank);
    memcpy(p + head - blank, fields, flen);
    memcpy(p + head - blank + flen, data + head - blank, size - head + blank);

    rc = fuzz_parse(&r2, p, len, sum % (len + 1), &got);
    /* 431 when the fields added pass the small limits; else the answer
     * is the rule's. */
    if (rc != 431) {
        if (refuse ? rc != 400 : rc != WSH_OK) {
            abort();
        }
        if (rc == WSH_OK) {
            if (got != head + flen) {
                abort();
            }
            fuzz_handshake(&r2);
        }
    }
    wsh_http_request_free(&r2);
    free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsh_request_t r;
    size_t cut, head, i;
    unsigned sum = 0;
    int rc;

    for (i = 0; i < size; i++) {
        sum = sum * 31 + data[i];
    }
    cut = size ? sum % (size + 1) : 0;

    rc = fuzz_parse(&r, (const char *) data, size, cut, &head);
    if (rc == WSH_OK) {
        fuzz_handshake(&r);
        fuzz_duplicate(&r, data, size, head, sum);
    }
    wsh_http_request_free(&r);
    return 0;
}
