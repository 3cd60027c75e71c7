/* fuzz_frame.c -- libFuzzer harness of the frame parser and UTF-8 DFA.
 *
 * Parses the input as client frames twice, in chunk sizes taken from the
 * data and in one piece, and compares the events: the parser must give
 * the same however reads are cut (a message whole in a read is handed
 * out from the read itself, others from the parser's buffer). Checks
 * that every text message it delivers is valid UTF-8, and that
 * wsh_utf8_validate() answers the same for the input fed whole, byte by
 * byte and in two pieces. abort() marks a disagreement for libFuzzer.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"
#include "ws/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed DATA whole, byte by byte and cut at CUT; abort() unless the three
 * final states agree. Feeding stops at REJECT, as the frame parser does. */
static void
fuzz_utf8(const uint8_t *data, size_t size, size_t cut)
{
    uint32_t whole, bytes, split;
    size_t i;

    whole = wsh_utf8_validate(WSH_UTF8_ACCEPT, data, size);

    bytes = WSH_UTF8_ACCEPT;
    for (i = 0; i < size && bytes != WSH_UTF8_REJECT; i++) {
        bytes = wsh_utf8_validate(bytes, data + i, 1);
    }

    split = wsh_utf8_validate(WSH_UTF8_ACCEPT, data, cut);
    if (split != WSH_UTF8_REJECT) {
        split = wsh_utf8_validate(split, data + cut, size - cut);
    }

    if (whole != bytes || whole != split) {
        abort();
    }
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const u_char *b = p;

    while (n--) {
        h = (h ^ *b++) * UINT64_C(0x100000001b3);
    }
    return h;
}

/* Parse DATA as client frames, in reads of 1 to 16 bytes chosen by the
 * data (CHUNKED) or in one read, and return a digest of what came out:
 * every event's type, opcode or close code, length and payload, then
 * the error code if parsing failed. Whole messages are handed out from
 * the input (parse in place) or from the parser's buffer depending on
 * how the reads fall: both must give the same events. abort()s when an
 * invariant breaks. */
static uint64_t
fuzz_parse(const uint8_t *data, size_t size, bool chunked)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    wsh_ws_t ws;
    wsh_ws_event_t ev;
    u_char *copy, *pos, *last, *end;
    size_t n;
    int rc = WSH_AGAIN, what;

    /* Writable, as a read buffer is: whole messages are unmasked in
     * place. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        abort();
    }
    if (size > 0) {
        memcpy(copy, data, size);
    }
    pos = copy;
    last = copy + size;
    wsh_ws_init(&ws, 64 * 1024);

    while (pos < last && rc != WSH_ERROR) {
        /* 1 to 16 bytes, chosen by the byte where this read starts. */
        n = chunked ? (size_t) (*pos & 0x0f) + 1 : size;
        end = (size_t) (last - pos) < n ? last : pos + n;

        while (pos < end) {
            rc = wsh_ws_parse(&ws, &pos, end, &ev);
            if (rc == WSH_ERROR) {
                h = fnv(h, "E", 1);
                h = fnv(h, &ev.code, sizeof(ev.code));
                break;
            }
            if (rc == WSH_AGAIN) {
                if (pos != end) {
                    abort();
                }
                break;
            }
            if (pos > end) {
                abort();
            }
            /* A text message reaches modules only when it is UTF-8 (an
             * empty one may have data NULL). */
            if (ev.type == WSH_WS_EV_MESSAGE && ev.opcode == WSH_WS_OP_TEXT
                && ev.len > 0
                && wsh_utf8_validate(WSH_UTF8_ACCEPT, ev.data, ev.len)
                   != WSH_UTF8_ACCEPT)
            {
                abort();
            }
            /* The opcode of a message, the code of a close; pings and
             * pongs have neither. */
            what = ev.type == WSH_WS_EV_MESSAGE ? ev.opcode
                   : ev.type == WSH_WS_EV_CLOSE ? ev.code : 0;
            h = fnv(h, &ev.type, sizeof(ev.type));
            h = fnv(h, &what, sizeof(what));
            h = fnv(h, &ev.len, sizeof(ev.len));
            h = fnv(h, ev.data, ev.len);
            wsh_ws_reset_buffer(&ws);
        }
    }

    free(ws.buf);
    free(copy);
    return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_parse(data, size, true) != fuzz_parse(data, size, false)) {
        abort();
    }
    fuzz_utf8(data, size, size ? data[0] % (size + 1) : 0);
    return 0;
}
