/* api.c -- the publish API for backends (module hub_api).
 *
 * POST {"room"|"to"|"broadcast", "data"} with the API key, on the
 * endpoints that declare this module and only there: a WebSocket
 * endpoint never takes it, and this one never upgrades. The key is
 * checked from the headers, before any byte of the body is read, so a
 * keyless client cannot make the server buffer anything. A publish goes
 * to one realm (wsh_conn_realm): the body's "realm", else the
 * endpoint's.
 */
#include "hub/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

/* Answer with OBJ (steals it) and header lines HEADERS (may be NULL). */
static void
hub_http_reply_with(wsh_conn_t *c, int status, const char *headers,
    json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);

    json_decref(obj);
    if (text == NULL) {
        (void) wsh_http_respond(c, 500, "text/plain", "", 0);
        return;
    }
    (void) wsh_http_respond_headers(c, status, headers, "application/json",
                                    text, strlen(text));
    free(text);
}

void
hub_http_reply(wsh_conn_t *c, int status, json_t *obj)
{
    hub_http_reply_with(c, status, NULL, obj);
}

/* A private publish waiting for the cluster's answer. */
static void
hub_api_result(wsh_conn_t *c, const char *to, size_t len, int found)
{
    (void) to;
    (void) len;
    if (found) {
        /* Delivered on other workers only: none here. */
        hub_http_reply(c, 202, json_pack("{s:i}", "delivered", 0));
    } else {
        hub_http_reply(c, 404, json_pack("{s:s}", "error",
                                         "User not found"));
    }
}

int
hub_api_error(wsh_conn_t *c, int status, const char *error)
{
    hub_http_reply(c, status, json_pack("{s:s}", "error", error));
    return 0;
}

/* The answer to an API publish that went through the sequencer: 202
 * with its position in a room with history, "duplicate" for a retry of
 * a key already published; 404 for a private one nobody got; 503 when
 * it never got there (safe to retry with the same key). */
static void
hub_api_acked(wsh_conn_t *c, uint64_t ticket, const wsh_ack_t *ack)
{
    json_t *obj;

    (void) ticket;              /* one request, one ticket */
    if (ack->failed) {
        hub_api_error(c, 503, "not published: the engine is unavailable; "
                      "retry (with the same Idempotency-Key)");
        return;
    }
    if (ack->kind == WSH_TOPIC_CLIENT && !ack->found) {
        hub_api_error(c, 404, "User not found");
        return;
    }
    obj = json_object();
    hub_ack_position(obj, ack);
    if (obj != NULL && ack->duplicate) {
        json_object_set_new(obj, "duplicate", json_true());
    }
    hub_http_reply(c, 202, obj);
}

/* The idempotency key of an API publish: the Idempotency-Key header, or
 * the body's "idempotency_key". False after an error answer. */
static bool
hub_api_key(wsh_conn_t *c, const wsh_request_t *r, json_t *root,
    wsh_publish_ack_t *ack)
{
    json_t *k = json_object_get(root, "idempotency_key");

    ack->key = wsh_request_header(r, "Idempotency-Key", &ack->key_len);
    if (ack->key == NULL && k != NULL) {
        if (!json_is_string(k)) {
            hub_api_error(c, 400, "\"idempotency_key\" must be a string");
            return false;
        }
        ack->key = json_string_value(k);
        ack->key_len = json_string_length(k);
    }
    if (ack->key != NULL
        && (ack->key_len == 0 || ack->key_len > WSH_IDEMPOTENCY_KEY_MAX
            || memchr(ack->key, '\0', ack->key_len) != NULL))
    {
        hub_api_error(c, 400, "idempotency key: 1 to 128 bytes, no NUL");
        return false;
    }
    return true;
}

/* Whether GIVEN is KEY, in a time that says nothing of KEY, its length
 * included: their SHA-256 digests are compared, in constant time. */
static bool
hub_key_matches(const char *given, size_t len, const char *key)
{
    unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *) given, len, a);
    SHA256((const unsigned char *) key, strlen(key), b);
    return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

int
hub_api_head(wsh_conn_t *c, const wsh_request_t *r, size_t *max_body)
{
    const char *key = hub_conf()->api_key, *p;
    size_t len;

    p = wsh_request_method(r, &len);
    if (len != 4 || memcmp(p, "POST", 4) != 0) {
        hub_http_reply_with(c, 405, "Allow: POST\r\n",
                            json_pack("{s:s}", "error", "use POST"));
        return -1;
    }
    if (key == NULL) {
        hub_api_error(c, 404, "API disabled: set hub.api_key");
        return -1;
    }
    p = wsh_request_header(r, "Authorization", &len);
    if (p == NULL || len < 7 || strncasecmp(p, "apikey ", 7) != 0
        || !hub_key_matches(p + 7, len - 7, key))
    {
        hub_http_reply_with(c, 401, "WWW-Authenticate: apikey\r\n",
                            json_pack("{s:s}", "error",
                                      "missing or wrong API key"));
        return -1;
    }
    *max_body = hub_conf()->api_max_body;
    return 0;
}

const char *
hub_api_realm(wsh_conn_t *c, json_t *root, size_t *len)
{
    json_t *realm = json_object_get(root, "realm");
    const char *name;

    if (realm == NULL) {
        name = wsh_conn_realm(c, len, NULL);
        if (name == NULL) {
            hub_api_error(c, 400, "this server has several realms: give "
                          "\"realm\"");
        }
        return name;
    }
    if (!json_is_string(realm)
        || !wsh_realm_known(json_string_value(realm),
                            json_string_length(realm)))
    {
        hub_api_error(c, 404, "Unknown realm");
        return NULL;
    }
    *len = json_string_length(realm);
    return json_string_value(realm);
}

/* POST {"room"|"to"|"broadcast", "data", "realm"?}. */
static int
hub_api_publish(wsh_conn_t *c, const wsh_request_t *r)
{
    const char *body, *name = "", *realm;
    char topic[HUB_TOPIC_MAX];
    size_t blen, nlen = 0, rlen, n;
    json_t *root, *data, *room, *to;
    json_error_t err;
    int kind, flags = 0;
    const char *deflt;
    wsh_publish_ack_t ack = { NULL, 0, 0, 0 };
    char *text;

    body = wsh_request_body(r, &blen);
    root = body ? json_loadb(body, blen, JSON_REJECT_DUPLICATES, &err) : NULL;
    if (root == NULL) {
        return hub_api_error(c, 400, body ? err.text : "empty body");
    }
    data = json_object_get(root, "data");
    room = json_object_get(root, "room");
    to = json_object_get(root, "to");
    if (!json_is_object(data)) {
        json_decref(root);
        return hub_api_error(c, 400, "\"data\" must be a JSON object");
    }
    realm = hub_api_realm(c, root, &rlen);
    if (realm == NULL) {
        json_decref(root);
        return 0;
    }
    if (json_is_string(room)) {
        kind = WSH_TOPIC_ROOM;
        deflt = "room_message";
        name = json_string_value(room);
        nlen = json_string_length(room);
        if (!wsh_valid_room(name, nlen)) {
            json_decref(root);
            return hub_api_error(c, 400, "Invalid room name");
        }
    } else if (json_is_string(to)) {
        kind = WSH_TOPIC_CLIENT;
        deflt = "private_message";
        name = json_string_value(to);
        nlen = json_string_length(to);
        flags = WSH_PUBLISH_CONFIRM;
        if (!wsh_valid_client_id(name, nlen)) {
            json_decref(root);
            return hub_api_error(c, 400, "Invalid target");
        }
    } else if (json_is_true(json_object_get(root, "broadcast"))) {
        kind = WSH_TOPIC_ALL;
        deflt = "broadcast";
    } else {
        json_decref(root);
        return hub_api_error(c, 400, "give \"room\", \"to\" or "
                             "\"broadcast\": true");
    }
    if (!json_is_string(json_object_get(data, "type"))) {
        json_object_set_new(data, "type", json_string(deflt));
    }
    if (!hub_api_key(c, r, root, &ack)) {
        json_decref(root);
        return 0;
    }
    json_object_set_new(data, "from", json_string("server"));
    nlen = hub_topic(topic, realm, rlen, name, nlen);
    name = topic;
    hub_reserve_position(data, kind, name, nlen);
    text = json_dumps(data, JSON_COMPACT);
    if (text == NULL) {
        json_decref(root);
        return hub_api_error(c, 500, "out of memory");
    }
    n = wsh_publish_acked(kind, name, nlen, text, strlen(text), c, flags,
                          &ack);
    free(text);
    json_decref(root);
    if (ack.refused) {
        return hub_api_error(c, 503, "not published: out of memory");
    }
    if (ack.ticket != 0) {
        return 0;               /* answered by hub_api_acked */
    }
    /* "delivered" counts this worker's recipients; the other workers
     * deliver too. A private publish that reached nobody here is
     * answered when the cluster says whether the id exists anywhere
     * (hub_publish_result). */
    if (kind != WSH_TOPIC_CLIENT || n > 0) {
        hub_http_reply(c, 202, json_pack("{s:I}", "delivered",
                                         (json_int_t) n));
    }
    return 0;
}

/* Backends publish from the same host unless told otherwise. */
static const wsh_default_endpoint_t hub_api_default = { "/api/publish", NULL, 1 };

const wsh_module_t wsh_hub_api_module = {
    .name = "hub_api",
    .api_version = WSHUB_API_VERSION,
    .default_endpoint = &hub_api_default,
    .handshake = wsh_http_only_handshake,
    .http_head = hub_api_head,
    .http = hub_api_publish,
    .publish_result = hub_api_result,
    .acked = hub_api_acked,
};

