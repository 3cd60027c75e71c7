/* handshake.h -- the server's opening handshake (RFC 6455 section 4.2). */
#ifndef WSH_HANDSHAKE_H
#define WSH_HANDSHAKE_H

#include "net/http.h"

#define WSH_WS_ACCEPT_LEN 28

/* Check that R is a valid WebSocket upgrade request. Returns WSH_OK and
 * the Sec-WebSocket-Accept value in accept (NUL-terminated), or the HTTP
 * status to refuse with: 405 not GET, 426 not an upgrade or a version
 * other than 13 (answer with Sec-WebSocket-Version: 13), 400 otherwise;
 * *why names the problem for the log and the response body. */
int wsh_handshake_check(const wsh_request_t *r,
    char accept[WSH_WS_ACCEPT_LEN + 1], const char **why);

/* Sec-WebSocket-Accept for KEY (section 4.2.2, step 5.4). */
void wsh_handshake_accept(const char *key, size_t len,
    char accept[WSH_WS_ACCEPT_LEN + 1]);

#endif /* WSH_HANDSHAKE_H */
