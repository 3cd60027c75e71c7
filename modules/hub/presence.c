/* presence.c -- the hub's presence past v1: rules the engine obeys, and
 * presence on demand.
 *
 * v1 gives every joiner the room's member list and tells every member
 * of every join and leave: filling a room of N costs O(N^2). A room's
 * rule (hub.rooms; rooms matching none get the defaults) bounds that:
 * while the room has at most presence_limit members it behaves as v1,
 * past it a joiner gets member_count only and nobody hears of joins or
 * leaves, so a join costs O(1). Whoever wants the members of a big room
 * asks for them, a page at a time: room_members and room_count from a
 * member of the room, POST /api/presence (module hub_presence) from a
 * backend with the API key.
 */
#include "hub/hub.h"

#include <stdio.h>
#include <string.h>

void
hub_room_presence(const void *conf, const char *room, size_t len,
    wsh_presence_rule_t *rule)
{
    const hub_room_rule_t *r = hub_room_rule(conf, room, len);
    int presence = r ? r->presence : HUB_PRESENCE_FULL;
    size_t limit = r ? r->presence_limit : HUB_PRESENCE_LIMIT;

    rule->list_max = presence == HUB_PRESENCE_FULL ? limit : 0;
    rule->announce_max = (r == NULL || r->announce)
                         && presence != HUB_PRESENCE_OFF ? limit : 0;
}

/* Whether CUR, a request's "cursor", is absent or one of the engines'
 * (decimal digits). */
static bool
hub_cursor_ok(json_t *cur)
{
    return cur == NULL || json_is_null(cur)
           || (json_is_string(cur) && json_string_length(cur) > 0
               && json_string_length(cur) <= WSH_PRESENCE_CURSOR_MAX
               && strspn(json_string_value(cur), "0123456789")
                  == json_string_length(cur));
}

/* A page request's "cursor" and "limit"; false after an error reply. */
static bool
hub_page_args(wsh_conn_t *c, json_t *root, const char *type,
    const char **cursor, size_t *clen, size_t *limit)
{
    json_t *cur = json_object_get(root, "cursor");
    json_t *lim = json_object_get(root, "limit");

    *cursor = NULL;
    *clen = 0;
    *limit = WSH_PRESENCE_PAGE_MAX;
    if (!hub_cursor_ok(cur)) {
        hub_error(c, "Invalid cursor", type);
        return false;
    }
    if (json_is_string(cur)) {
        *cursor = json_string_value(cur);
        *clen = json_string_length(cur);
    }
    if (lim != NULL && !json_is_null(lim)) {
        if (!json_is_integer(lim) || json_integer_value(lim) < 1
            || json_integer_value(lim) > WSH_PRESENCE_PAGE_MAX)
        {
            hub_error(c, "Invalid limit", type);
            return false;
        }
        *limit = (size_t) json_integer_value(lim);
    }
    return true;
}

/* Why the rule of TOPIC refuses a request of TYPE, or NULL. */
static const char *
hub_presence_refusal(const char *topic, size_t len, const char *type)
{
    const hub_room_rule_t *r = hub_room_rule(hub_conf(), topic, len);

    if (r == NULL || r->presence == HUB_PRESENCE_FULL) {
        return NULL;
    }
    if (r->presence == HUB_PRESENCE_OFF) {
        return "Presence is off in this room";
    }
    return strcmp(type, "room_members") == 0
           ? "Member lists are off in this room" : NULL;
}

/* room_members {room, cursor?, limit?} and room_count {room}: from a
 * member of the room, answered when the engine has looked. */
void
hub_room_presence_request(wsh_conn_t *c, json_t *root, const char *type)
{
    bool count_only = strcmp(type, "room_count") == 0;
    const char *room, *cursor = NULL, *why;
    char topic[HUB_TOPIC_MAX];
    size_t len, tlen, clen = 0, limit = 0;
    uint64_t ticket;

    room = hub_room(c, root, type, &len);
    if (room == NULL
        || (!count_only
            && !hub_page_args(c, root, type, &cursor, &clen, &limit)))
    {
        return;
    }
    tlen = hub_conn_room_topic(c, topic, room, len);
    if (!wsh_topic_is_member(c, WSH_TOPIC_ROOM, topic, tlen)) {
        hub_error(c, "Not in room", type);
        return;
    }
    why = hub_presence_refusal(topic, tlen, type);
    if (why != NULL) {
        hub_error(c, why, type);
        return;
    }
    /* The cursor is checked: a refusal is the engine being down (or
     * 65,535 requests of C waiting). */
    ticket = wsh_topic_presence(c, topic, tlen, cursor, clen, limit);
    if (ticket == 0) {
        hub_error(c, "Presence is unavailable, retry", type);
        return;
    }
    if (hub_wait(c, ticket, count_only ? HUB_WAIT_COUNT : HUB_WAIT_MEMBERS)
        != 0)
    {
        hub_error(c, "Too many requests waiting", type);
    }
}

/* The answer's fields but "type" and "id": room, member_count, and for
 * a page its members and the next page's cursor (none after the last). */
static json_t *
hub_page_object(const wsh_presence_page_t *page, bool count_only)
{
    size_t rlen = page->room_len, i;
    const char *room = hub_topic_name(page->room, &rlen);
    json_t *obj, *ids;

    obj = json_pack("{s:s%, s:I}", "room", room, rlen, "member_count",
                    (json_int_t) page->count);
    if (obj == NULL || count_only) {
        return obj;
    }
    ids = json_array();
    for (i = 0; ids != NULL && i < page->n; i++) {
        json_array_append_new(ids, json_stringn(page->ids[i],
                                                page->lens[i]));
    }
    json_object_set_new(obj, "members", ids);
    if (page->cursor_len != 1 || page->cursor[0] != '0') {
        json_object_set_new(obj, "cursor", json_stringn(page->cursor,
                                                        page->cursor_len));
    }
    return obj;
}

void
hub_presence_page(wsh_conn_t *c, uint64_t ticket,
    const wsh_presence_page_t *page)
{
    json_t *obj, *id;
    int what;

    if (!hub_waited(c, ticket, &what, &id)) {
        return;
    }
    if (page->failed) {
        obj = json_pack("{s:s, s:s, s:s}", "type", "error", "error",
                        "Presence is unavailable, retry", "request",
                        what == HUB_WAIT_COUNT ? "room_count"
                                               : "room_members");
    } else {
        obj = hub_page_object(page, what == HUB_WAIT_COUNT);
        if (obj != NULL) {
            json_object_set_new(obj, "type",
                                json_string(what == HUB_WAIT_COUNT
                                            ? "room_count"
                                            : "room_members"));
        }
    }
    if (obj != NULL && id != NULL) {
        json_object_set(obj, "id", id);
    }
    if (obj != NULL) {
        hub_send(c, obj);
    }
    json_decref(id);
}

/* ---- POST /api/presence (module hub_presence) --------------------------- */

/* POST {"room", "realm"?, "cursor"?, "limit"?}: a page of the room's
 * ids with its member_count; "limit": 0 asks for the count alone. */
static int
hub_api_presence(wsh_conn_t *c, const wsh_request_t *r)
{
    const char *body, *room, *realm, *cursor = NULL;
    char topic[HUB_TOPIC_MAX];
    size_t blen, len, rlen, clen = 0, limit = WSH_PRESENCE_PAGE_MAX;
    json_t *root, *cur, *lim;
    json_error_t err;
    int status = 0;
    const char *error = NULL;

    body = wsh_request_body(r, &blen);
    root = body ? json_loadb(body, blen, JSON_REJECT_DUPLICATES, &err) : NULL;
    if (root == NULL) {
        return hub_api_error(c, 400, body ? err.text : "empty body");
    }
    room = json_string_value(json_object_get(root, "room"));
    len = json_string_length(json_object_get(root, "room"));
    cur = json_object_get(root, "cursor");
    lim = json_object_get(root, "limit");
    if (room == NULL || !wsh_valid_room(room, len)) {
        status = 400, error = "Invalid room name";
    } else if (!hub_cursor_ok(cur)) {
        status = 400, error = "Invalid cursor";
    } else if (lim != NULL && !json_is_null(lim)
               && (!json_is_integer(lim) || json_integer_value(lim) < 0
                   || json_integer_value(lim) > WSH_PRESENCE_PAGE_MAX))
    {
        status = 400, error = "\"limit\": 0 to 1000";
    }
    if (error != NULL) {
        json_decref(root);
        return hub_api_error(c, status, error);
    }
    if (json_is_string(cur)) {
        cursor = json_string_value(cur);
        clen = json_string_length(cur);
    }
    if (json_is_integer(lim)) {
        limit = (size_t) json_integer_value(lim);
    }
    realm = hub_api_realm(c, root, &rlen);
    if (realm != NULL) {
        len = hub_topic(topic, realm, rlen, room, len);
        if (wsh_topic_presence(c, topic, len, cursor, clen, limit) == 0) {
            hub_api_error(c, 503, "presence is unavailable, retry");
        }
    }
    json_decref(root);
    return 0;                   /* answered by hub_api_page */
}

static void
hub_api_page(wsh_conn_t *c, uint64_t ticket, const wsh_presence_page_t *page)
{
    (void) ticket;              /* one request, one ticket */
    if (page->failed) {
        hub_api_error(c, 503, "presence is unavailable, retry");
        return;
    }
    /* The members are listed only when asked for (limit > 0): a count
     * request gets the cursor "0" and no ids from the engine. */
    hub_http_reply(c, 200, hub_page_object(page, false));
}

/* Backends ask from the same host unless told otherwise. */
static const wsh_default_endpoint_t hub_presence_default = {
    "/api/presence", NULL, 1
};

const wsh_module_t wsh_hub_presence_module = {
    .name = "hub_presence",
    .api_version = WSHUB_API_VERSION,
    .default_endpoint = &hub_presence_default,
    .handshake = wsh_http_only_handshake,
    .http_head = hub_api_head,
    .http = hub_api_presence,
    .presence_page = hub_api_page,
};
