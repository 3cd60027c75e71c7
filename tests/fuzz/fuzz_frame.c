/* fuzz_frame.c -- libFuzzer harness of the frame parser and UTF-8 DFA.
 *
 * Parses the input as client frames in chunk sizes taken from the data
 * (the parser must give the same events however reads are cut), checks
 * that every text message it delivers is valid UTF-8, and checks that
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsh_ws_t ws;
    wsh_ws_event_t ev;
    u_char *copy, *pos, *last, *end;
    size_t n;
    int rc = WSH_AGAIN;

    /* Writable, as a read buffer is: whole messages are unmasked in
     * place. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    if (size > 0) {
        memcpy(copy, data, size);
    }
    pos = copy;
    last = copy + size;
    wsh_ws_init(&ws, 64 * 1024);

    while (pos < last && rc != WSH_ERROR) {
        /* 1 to 16 bytes, chosen by the byte where this read starts. */
        n = (size_t) (*pos & 0x0f) + 1;
        end = (size_t) (last - pos) < n ? last : pos + n;

        while (pos < end) {
            rc = wsh_ws_parse(&ws, &pos, end, &ev);
            if (rc == WSH_ERROR) {
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
            wsh_ws_reset_buffer(&ws);
        }
    }

    free(ws.buf);
    free(copy);

    fuzz_utf8(data, size, size ? data[0] % (size + 1) : 0);
    return 0;
}
