/* handshake.h -- the server's opening handshake (RFC 6455 section 4.2).
 *
 * The upgrade of an HTTP request (net/http.h) to a WebSocket: the
 * request checked, the accept key computed, the extensions negotiated
 * (ws/deflate.h judges each offer). The codecs the connection speaks
 * after it are in src/ws/.
 */
#ifndef WSH_HANDSHAKE_H
#define WSH_HANDSHAKE_H

#include "core/conf.h"
#include "net/http.h"
#include "ws/deflate.h"

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

/* Judge the permessage-deflate offers of every Sec-WebSocket-Extensions
 * header of R, in order (wsh_deflate_accept): WSH_OK with the first
 * acceptable one's parameters in *P, or WSH_DECLINED. Pure. */
int wsh_handshake_deflate(const wsh_conf_deflate_t *cf,
    const wsh_request_t *r, wsh_deflate_params_t *p);

#endif /* WSH_HANDSHAKE_H */
