/* utf8.c -- incremental UTF-8 validator.
 *
 * Bjoern Hoehrmann's DFA ("Flexible and Economical UTF-8 Decoder"): one
 * table lookup per byte, rejecting overlong forms, surrogates (U+D800 to
 * U+DFFF) and code points above U+10FFFF at the earliest byte that proves
 * them, which is what fail-fast needs. Plain ASCII runs are skipped 32 and
 * then eight bytes at a time because most text traffic is ASCII JSON.
 */
#include "ws/utf8.h"

#include <string.h>

static const uint8_t utf8_class[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,
    7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7, 7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,
    8,8,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    10,3,3,3,3,3,3,3,3,3,3,3,3,4,3,3, 11,6,6,6,5,8,8,8,8,8,8,8,8,8,8,8
};

static const uint8_t utf8_trans[108] = {
    0,12,24,36,60,96,84,12,12,12,48,72, 12,12,12,12,12,12,12,12,12,12,12,12,
    12, 0,12,12,12,12,12, 0,12, 0,12,12, 12,24,12,12,12,12,12,24,12,24,12,12,
    12,12,12,12,12,12,12,24,12,12,12,12, 12,24,12,12,12,12,12,12,12,24,12,12,
    12,12,12,12,12,12,12,36,12,36,12,12, 12,36,12,12,12,12,12,36,12,36,12,12,
    12,36,12,12,12,12,12,12,12,12,12,12
};

uint32_t
wsh_utf8_validate(uint32_t state, const u_char *p, size_t len)
{
    const u_char *last;
    uint64_t word;

    if (len == 0) {
        return state;           /* p may be NULL */
    }
    last = p + len;

    while (p < last) {
        if (state == WSH_UTF8_ACCEPT) {
            /* Four words per test first: one branch per 32 bytes. */
            while (last - p >= 32) {
                uint64_t w[4];

                memcpy(w, p, 32);
                if ((w[0] | w[1] | w[2] | w[3])
                    & UINT64_C(0x8080808080808080))
                {
                    break;
                }
                p += 32;
            }
            while (last - p >= 8) {
                memcpy(&word, p, 8);
                if (word & UINT64_C(0x8080808080808080)) {
                    break;
                }
                p += 8;
            }
            if (p == last) {
                break;
            }
        }
        state = utf8_trans[state + utf8_class[*p++]];
        if (state == WSH_UTF8_REJECT) {
            break;
        }
    }
    return state;
}
