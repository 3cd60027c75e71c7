/* handshake.c -- validate an upgrade request, compute the accept key,
 * negotiate the extensions.
 *
 * Section 4.2.1 lists what a client request must hold; each missing part
 * gets its own status and reason so a developer debugging a client sees
 * exactly what was wrong. Header tokens are compared as case-insensitive
 * lists because browsers send "Connection: keep-alive, Upgrade".
 */
#include "net/handshake.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

void
wsh_handshake_accept(const char *key, size_t len,
    char accept[WSH_WS_ACCEPT_LEN + 1])
{
    u_char digest[EVP_MAX_MD_SIZE], buf[128];
    unsigned dlen;

    wsh_assert(len + sizeof(WS_GUID) <= sizeof(buf));
    memcpy(buf, key, len);
    memcpy(buf + len, WS_GUID, sizeof(WS_GUID) - 1);
    EVP_Digest(buf, len + sizeof(WS_GUID) - 1, digest, &dlen, EVP_sha1(),
               NULL);
    EVP_EncodeBlock((u_char *) accept, digest, (int) dlen);
}

static bool
handshake_b64(u_char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')
           || (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

/* A base64 encoding of exactly 16 bytes: 22 characters and "==", the
 * last character holding only 2 significant bits (section 4.1). */
static bool
handshake_key_valid(const char *key, size_t len)
{
    size_t i;

    if (len != 24 || key[22] != '=' || key[23] != '=') {
        return false;
    }
    for (i = 0; i < 22; i++) {
        if (!handshake_b64((u_char) key[i])) {
            return false;
        }
    }
    return strchr("AQgw", key[21]) != NULL;
}

int
wsh_handshake_check(const wsh_request_t *r,
    char accept[WSH_WS_ACCEPT_LEN + 1], const char **why)
{
    const wsh_http_header_t *key, *version;

    if (!wsh_http_header_has_token(r, "Upgrade", "websocket")) {
        *why = "this endpoint speaks WebSocket: send an Upgrade request";
        return 426;
    }
    if (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0) {
        *why = "the WebSocket handshake must be a GET request";
        return 405;
    }
    if (r->version < 11) {
        *why = "the WebSocket handshake needs HTTP/1.1";
        return 400;
    }
    if (!wsh_http_header_has_token(r, "Connection", "upgrade")) {
        *why = "the Connection header must list \"Upgrade\"";
        return 400;
    }
    version = wsh_http_header(r, "Sec-WebSocket-Version");
    if (version == NULL || version->value_len != 2
        || memcmp(version->value, "13", 2) != 0)
    {
        *why = "only WebSocket version 13 is supported";
        return 426;
    }
    key = wsh_http_header(r, "Sec-WebSocket-Key");
    if (key == NULL || !handshake_key_valid(key->value, key->value_len)
        || wsh_http_header_count(r, "Sec-WebSocket-Key") != 1)
    {
        *why = "Sec-WebSocket-Key must be one header of 16 bytes in base64";
        return 400;
    }
    if (r->has_body) {
        *why = "a handshake request has no body";
        return 400;
    }
    wsh_handshake_accept(key->value, key->value_len, accept);
    return WSH_OK;
}

int
wsh_handshake_deflate(const wsh_conf_deflate_t *cf, const wsh_request_t *r,
    wsh_deflate_params_t *p)
{
    static const char hdr[] = "Sec-WebSocket-Extensions";
    const wsh_http_header_t *h;
    unsigned i;

    for (i = 0; i < r->nheaders; i++) {
        h = &r->headers[i];
        if (h->name_len == sizeof(hdr) - 1
            && strncasecmp(h->name, hdr, h->name_len) == 0
            && wsh_deflate_accept(cf, h->value, h->value_len, p) == WSH_OK)
        {
            return WSH_OK;
        }
    }
    return WSH_DECLINED;
}
