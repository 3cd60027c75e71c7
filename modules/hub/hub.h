/* hub.h -- what the hub module's two sides share: the WebSocket
 * protocol (hub.c, module "hub") and the publish API for backends
 * (api.c, module "hub_api").
 */
#ifndef WSH_HUB_H
#define WSH_HUB_H

/* Modules see wshub.h, not the build's config.h: the module's files
 * include this header first, and ask for POSIX and GNU here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "wshub.h"

#include <stdbool.h>

#include <jansson.h>

/* One hub.history rule: rooms whose messages are numbered and kept. */
typedef struct {
    char               *rooms;             /* exact name, or prefix* */
    unsigned            size;              /* messages kept per room */
    uint64_t            ttl;               /* ms each is kept */
} hub_history_t;

/* How a room's members are shown (hub.rooms[].presence). */
enum {
    HUB_PRESENCE_FULL = 0,      /* room_joined lists the members */
    HUB_PRESENCE_COUNT,         /* room_joined gives member_count only */
    HUB_PRESENCE_OFF            /* neither */
};

/* One hub.rooms rule: the rooms it matches and how they behave. */
typedef struct {
    char               *match;             /* exact name, or prefix* */
    int                 presence;          /* HUB_PRESENCE_* */
    unsigned            presence_limit;    /* past it: counts, no lists */
    int                 announce;          /* user_joined_room/left */
    unsigned            max_members;       /* 0: no limit */
    int                 client_publish;    /* room_message from clients */
    struct {
        unsigned        size;              /* 0: no history */
        uint64_t        ttl;               /* ms */
    }                   history;
} hub_room_rule_t;

/* The hub: section of wshub.yaml (rules.c declares it). */
typedef struct {
    int                 client_ids;        /* accept ?id= */
    unsigned            max_rooms_per_connection;
    int                 announce_connections;
    char               *api_key;           /* NULL: publish API off */
    size_t              api_max_body;      /* publish API request body */
    wsh_conf_table_t    rooms;             /* hub_room_rule_t, first match
                                            * wins */
    wsh_conf_table_t    history;           /* hub_history_t: the rooms
                                            * rules' history before 0.2 */
} hub_conf_t;

extern const wsh_conf_section_t hub_section;

/* The rule of ROOM (its name, or its topic's: the realm is skipped),
 * or NULL: the room behaves as with no rule (v1). */
const hub_room_rule_t *hub_room_rule(const hub_conf_t *hub, const char *room,
    size_t len);

/* The room_history hook (wshub.h). */
int hub_room_history(const void *conf, const char *room, size_t len,
    size_t *size, uint64_t *ttl_ms);

/* "REALM#NAME" of the longest realm and room (client ids are shorter). */
#define HUB_TOPIC_MAX (WSH_REALM_MAX + 1 + WSH_ROOM_MAX)

const hub_conf_t *hub_conf(void);

/* The topic of NAME in REALM ("REALM#NAME") into BUF (HUB_TOPIC_MAX
 * bytes for a room or client id); returns its length. */
size_t hub_topic(char *buf, const char *realm, size_t rlen, const char *name,
    size_t len);
/* The room or client id of a topic name, without its realm. */
const char *hub_topic_name(const char *topic, size_t *len);

/* Publish OBJ (steals it) to a topic, excluding SENDER. */
size_t hub_publish(int kind, const char *name, size_t len, json_t *obj,
    wsh_conn_t *sender, int flags);

/* In a room with history the server sets "offset" and "epoch", as it
 * sets "from": never taken from the publisher. */
void hub_reserve_position(json_t *obj, int kind, const char *topic,
    size_t len);

/* "offset" and "epoch" of a numbered message into OBJ (may be NULL). */
void hub_ack_position(json_t *obj, const wsh_ack_t *ack);

#endif /* WSH_HUB_H */
