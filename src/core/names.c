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

static bool
names_valid(const char *s, size_t len, size_t max, const char *extra)
{
    size_t i;

    if (len == 0 || len > max) {
        return false;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || strchr(extra, ch) != NULL)
            || ch == '\0')
        {
            return false;
        }
    }
    return true;
}

int
wsh_valid_client_id(const char *s, size_t len)
{
    return names_valid(s, len, WSH_CLIENT_ID_MAX, "_.:@-");
}

int
wsh_valid_room(const char *s, size_t len)
{
    return names_valid(s, len, WSH_ROOM_MAX, "_.:@/-");
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
