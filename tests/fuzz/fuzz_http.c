/* fuzz_http.c -- libFuzzer harness of the HTTP request parser.
 *
 * Feeds the input to wsh_http_parse() in two pieces cut at a point taken
 * from the data (the parser must not care where reads end), with small
 * limits so the 414/431 paths are reached, then runs the WebSocket
 * handshake check on every head that parsed.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "net/http.h"
#include "ws/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsh_request_t r;
    char accept[WSH_WS_ACCEPT_LEN + 1];
    const char *why = NULL;
    const char *p = (const char *) data;
    size_t cut, used, i;
    unsigned sum = 0;
    int rc;

    for (i = 0; i < size; i++) {
        sum = sum * 31 + data[i];
    }
    cut = size ? sum % (size + 1) : 0;

    wsh_http_request_init(&r, 512, 16);

    used = 0;
    rc = wsh_http_parse(&r, p, cut, &used);
    if (rc == WSH_OK && used > cut) {
        abort();
    }
    if (rc == WSH_AGAIN) {
        used = 0;
        rc = wsh_http_parse(&r, p + cut, size - cut, &used);
        if (rc == WSH_OK && used > size - cut) {
            abort();
        }
    }

    if (rc == WSH_OK) {
        (void) wsh_http_header(&r, "Host");
        (void) wsh_http_header_count(&r, "Sec-WebSocket-Key");
        if (wsh_handshake_check(&r, accept, &why) == WSH_OK
            && accept[WSH_WS_ACCEPT_LEN] != '\0')
        {
            abort();
        }
    }

    wsh_http_request_free(&r);
    return 0;
}
