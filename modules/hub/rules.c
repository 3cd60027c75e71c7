/* rules.c -- the hub: section of wshub.yaml, and the rules of rooms.
 *
 * hub.rooms is a list of rules, first match wins, each for the rooms
 * whose name is MATCH or starts with its prefix (in every realm): how
 * their members are shown (presence, presence_limit), whether joins and
 * leaves are announced, how many members they take, whether clients may
 * publish to them, and their history. A room that matches no rule
 * behaves as in v1. hub.history, the rules of history before 0.2, is
 * still read, for rooms that match no hub.rooms rule.
 */
#include "hub/hub.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const hub_presence_words[] = { "full", "count", "off",
                                                  NULL };

static const wsh_conf_field_t hub_rule_history_fields[] = {
    { .name = "size", .type = WSH_CONF_UINT,
      .offset = offsetof(hub_room_rule_t, history.size)
                - offsetof(hub_room_rule_t, history),
      .deflt = "100", .min = 1, .max = 1000000 },
    { .name = "ttl", .type = WSH_CONF_MSEC,
      .offset = offsetof(hub_room_rule_t, history.ttl)
                - offsetof(hub_room_rule_t, history),
      .deflt = "5m", .min = 100 },
    WSH_CONF_END
};

static const wsh_conf_field_t hub_rule_fields[] = {
    { WSH_CONF_FIELD(hub_room_rule_t, match, STRING, NULL, 0, 0),
      .required = 1 },
    { WSH_CONF_FIELD(hub_room_rule_t, presence, ENUM, "full", 0, 0),
      .words = hub_presence_words },
    { WSH_CONF_FIELD(hub_room_rule_t, presence_limit, UINT,
                     HUB_STR(HUB_PRESENCE_LIMIT), 1,
                     100000000) },
    { WSH_CONF_FIELD(hub_room_rule_t, announce, BOOL, "on", 0, 0) },
    { WSH_CONF_FIELD(hub_room_rule_t, max_members, UINT, "0", 0,
                     100000000) },
    { WSH_CONF_FIELD(hub_room_rule_t, client_publish, BOOL, "on", 0, 0) },
    { WSH_CONF_FIELD(hub_room_rule_t, history, MAP, NULL, 0, 0),
      .sub = hub_rule_history_fields },
    WSH_CONF_END
};

static const wsh_conf_field_t hub_history_fields[] = {
    { WSH_CONF_FIELD(hub_history_t, rooms, STRING, NULL, 0, 0),
      .required = 1 },
    { WSH_CONF_FIELD(hub_history_t, size, UINT, "100", 1, 1000000) },
    { WSH_CONF_FIELD(hub_history_t, ttl, MSEC, "5m", 100, 0) },
    WSH_CONF_END
};

static const wsh_conf_field_t hub_fields[] = {
    { WSH_CONF_FIELD(hub_conf_t, client_ids, BOOL, "on", 0, 0) },
    { WSH_CONF_FIELD(hub_conf_t, max_rooms_per_connection, UINT, "100", 1,
                     100000) },
    { WSH_CONF_FIELD(hub_conf_t, announce_connections, BOOL, "off", 0, 0) },
    { WSH_CONF_FIELD(hub_conf_t, api_key, STRING, NULL, 0, 0) },
    { WSH_CONF_FIELD(hub_conf_t, api_max_body, SIZE, "1m", 2,
                     (uint64_t) 1 << 31) },
    { WSH_CONF_FIELD(hub_conf_t, rooms, TABLE, NULL, 0, 256),
      .sub = hub_rule_fields, .item_size = sizeof(hub_room_rule_t) },
    { WSH_CONF_FIELD(hub_conf_t, history, TABLE, NULL, 0, 256),
      .sub = hub_history_fields, .item_size = sizeof(hub_history_t) },
    /* Keys of every endpoint, or of the engine, since 0.2. */
    { .name = "slow_consumer", .type = WSH_CONF_ALIAS,
      .deflt = "slow_consumer" },
    { .name = "idempotency_window", .type = WSH_CONF_ALIAS,
      .deflt = "engine.idempotency_window" },
    WSH_CONF_END
};

/* A room pattern of hub.rooms[i].match or hub.history[i].rooms. */
static int
hub_check_pattern(const char *pattern, const char *list, size_t i,
    const char *key, const char **field, char *err, size_t len)
{
    static char where[64];

    if (pattern != NULL                     /* NULL: written "" */
        && wsh_valid_room_pattern(pattern, strlen(pattern)))
    {
        return 0;
    }
    snprintf(where, sizeof(where), "%s[%zu].%s", list, i, key);
    *field = where;
    snprintf(err, len, "\"%s\" is not a room name or a prefix ending in * "
             "(e.g. \"chat:*\")", pattern ? pattern : "");
    return -1;
}

static int
hub_conf_check(void *conf, int present, const char **field, char *err,
    size_t len)
{
    const hub_conf_t *hub = conf;
    const hub_room_rule_t *r;
    const hub_history_t *h;
    size_t i;

    (void) present;
    if (hub->api_key != NULL && strlen(hub->api_key) < 16) {
        *field = "api_key";
        snprintf(err, len, "too short: use at least 16 random characters "
                 "(e.g. openssl rand -hex 16)");
        return -1;
    }
    for (i = 0; i < hub->rooms.n; i++) {
        r = (const hub_room_rule_t *) hub->rooms.items + i;
        if (hub_check_pattern(r->match, "rooms", i, "match", field, err,
                              len) != 0)
        {
            return -1;
        }
    }
    for (i = 0; i < hub->history.n; i++) {
        h = (const hub_history_t *) hub->history.items + i;
        if (hub_check_pattern(h->rooms, "history", i, "rooms", field, err,
                              len) != 0)
        {
            return -1;
        }
    }
    if (hub->history.n > 0) {
        wsh_module_log(5 /* notice */, NULL, "hub.history is now the "
                       "history of hub.rooms rules; it is still read in "
                       "0.2, for rooms that match no hub.rooms rule");
    }
    return 0;
}

const wsh_conf_section_t hub_section = {
    "hub", sizeof(hub_conf_t), hub_fields, hub_conf_check, NULL
};

const hub_room_rule_t *
hub_room_rule(const hub_conf_t *hub, const char *room, size_t len)
{
    const hub_room_rule_t *r;
    size_t i;

    room = hub_topic_name(room, &len);
    for (i = 0; hub != NULL && i < hub->rooms.n; i++) {
        r = (const hub_room_rule_t *) hub->rooms.items + i;
        if (wsh_room_matches(r->match, strlen(r->match), room, len)) {
            return r;
        }
    }
    return NULL;
}

/* A room keeps history when its hub.rooms rule has some, or, for a room
 * that matches no rule, when a hub.history rule matches it. */
int
hub_room_history(const void *conf, const char *room, size_t len,
    size_t *size, uint64_t *ttl_ms)
{
    const hub_conf_t *hub = conf;
    const hub_room_rule_t *r = hub_room_rule(hub, room, len);
    const hub_history_t *h;
    size_t i;

    if (r != NULL) {
        *size = r->history.size;
        *ttl_ms = r->history.ttl;
        return r->history.size > 0;
    }
    room = hub_topic_name(room, &len);
    for (i = 0; hub != NULL && i < hub->history.n; i++) {
        h = (const hub_history_t *) hub->history.items + i;
        if (wsh_room_matches(h->rooms, strlen(h->rooms), room, len)) {
            *size = h->size;
            *ttl_ms = h->ttl;
            return 1;
        }
    }
    return 0;
}
