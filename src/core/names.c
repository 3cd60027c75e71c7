/* names.c -- the protocol's client ids, room names and room patterns.
 *
 * One definition (wshub-protocol(7), "Identity" and room names) for every
 * place that checks them: the hub, token claims, history rules, the
 * tools. A pattern is a room name, or a prefix of one ending in '*'
 * ("chat:*"; "*" alone is every room).
 */
#include "core/core.h"
#include "wshub.h"

#include <string.h>

enum { NAMES_ID = 1, NAMES_ROOM = 2 };

/* Which characters client ids and room names may have: letters, digits
 * and "_.:@-", and '/' in room names. A table, because every id of a
 * room's member list is checked again before it is written out
 * unescaped (hub_members_text): 500,000 checks while 1,000 clients join
 * one room. */
#define B (NAMES_ID | NAMES_ROOM)
static const uint8_t names_chars[256] = {
    ['0'] = B, ['1'] = B, ['2'] = B, ['3'] = B, ['4'] = B, ['5'] = B,
    ['6'] = B, ['7'] = B, ['8'] = B, ['9'] = B, ['A'] = B, ['B'] = B,
    ['C'] = B, ['D'] = B, ['E'] = B, ['F'] = B, ['G'] = B, ['H'] = B,
    ['I'] = B, ['J'] = B, ['K'] = B, ['L'] = B, ['M'] = B, ['N'] = B,
    ['O'] = B, ['P'] = B, ['Q'] = B, ['R'] = B, ['S'] = B, ['T'] = B,
    ['U'] = B, ['V'] = B, ['W'] = B, ['X'] = B, ['Y'] = B, ['Z'] = B,
    ['a'] = B, ['b'] = B, ['c'] = B, ['d'] = B, ['e'] = B, ['f'] = B,
    ['g'] = B, ['h'] = B, ['i'] = B, ['j'] = B, ['k'] = B, ['l'] = B,
    ['m'] = B, ['n'] = B, ['o'] = B, ['p'] = B, ['q'] = B, ['r'] = B,
    ['s'] = B, ['t'] = B, ['u'] = B, ['v'] = B, ['w'] = B, ['x'] = B,
    ['y'] = B, ['z'] = B, ['_'] = B, ['.'] = B, [':'] = B, ['@'] = B,
    ['-'] = B, ['/'] = NAMES_ROOM
};
#undef B

static bool
names_valid(const char *s, size_t len, size_t max, unsigned kind)
{
    size_t i;

    if (len == 0 || len > max) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!(names_chars[(unsigned char) s[i]] & kind)) {
            return false;
        }
    }
    return true;
}

int
wsh_valid_client_id(const char *s, size_t len)
{
    return names_valid(s, len, WSH_CLIENT_ID_MAX, NAMES_ID);
}

int
wsh_valid_room(const char *s, size_t len)
{
    return names_valid(s, len, WSH_ROOM_MAX, NAMES_ROOM);
}

int
wsh_valid_room_pattern(const char *s, size_t len)
{
    if (len > 0 && s[len - 1] == '*') {
        return len == 1 || wsh_valid_room(s, len - 1);
    }
    return wsh_valid_room(s, len);
}

int
wsh_room_matches(const char *pattern, size_t plen, const char *room,
    size_t len)
{
    if (plen > 0 && pattern[plen - 1] == '*') {
        return len >= plen - 1 && memcmp(room, pattern, plen - 1) == 0;
    }
    return len == plen && memcmp(room, pattern, len) == 0;
}
