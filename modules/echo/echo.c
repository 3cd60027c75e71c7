/* echo.c -- the echo module: every message back to its sender.
 *
 * The first module and the conformance target: each text or binary
 * message is sent back with the same opcode, so an Autobahn-style client
 * can check framing, fragmentation and UTF-8 handling end to end.
 */
#include "wshub.h"

static void
echo_message(wsh_conn_t *c, int opcode, const unsigned char *data,
    size_t len)
{
    /* On failure the core has already closed the connection (1008). */
    (void) wsh_conn_send(c, opcode, data, len);
}

/* Conformance suites send messages of up to 16 MiB. */
static const wsh_default_endpoint_t echo_default = { "/echo", "16m", 0 };

const wsh_module_t wsh_echo_module = {
    .name = "echo",
    .api_version = WSHUB_API_VERSION,
    .default_endpoint = &echo_default,
    .message = echo_message,
};
