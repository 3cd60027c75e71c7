/* utf8.h -- incremental UTF-8 validation (RFC 3629) for text messages.
 *
 * The state survives across frames and reads, and turns to REJECT at the
 * first byte that cannot continue a valid sequence, so an invalid message
 * is failed as soon as its bad byte arrives (RFC 6455 section 8.1).
 */
#ifndef WSH_UTF8_H
#define WSH_UTF8_H

#include "core/core.h"

#define WSH_UTF8_ACCEPT 0
#define WSH_UTF8_REJECT 12

/* Feed LEN bytes; returns the new state (ACCEPT at a character boundary,
 * REJECT once invalid, anything else in the middle of a character). */
uint32_t wsh_utf8_validate(uint32_t state, const u_char *p, size_t len);

#endif /* WSH_UTF8_H */
