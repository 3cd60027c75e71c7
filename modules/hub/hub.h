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

/* Serialize and send OBJ to C (steals the reference). */
void hub_send(wsh_conn_t *c, json_t *obj);

/* An error reply to the request of type REQUEST (may be NULL); it
 * carries the "id" of the request being handled. */
void hub_error(wsh_conn_t *c, const char *error, const char *request);

/* The "room" string of a request of TYPE, validated; NULL after an
 * error reply. */
const char *hub_room(wsh_conn_t *c, json_t *root, const char *type,
    size_t *len);

/* NAME's topic in C's realm, into BUF (HUB_TOPIC_MAX bytes). */
size_t hub_conn_room_topic(wsh_conn_t *c, char *buf, const char *name,
    size_t len);

/* Requests of a WebSocket client waiting for the engine's answer, by
 * ticket: what they are, and the "id" of the request (hub_wait keeps
 * the one being handled). hub_wait: 0, or -1 when C has too many
 * waiting (or ENOMEM); hub_waited: false when TICKET is not C's, else
 * the request's kind and its id, a reference the caller drops. */
enum { HUB_WAIT_ACK, HUB_WAIT_MEMBERS, HUB_WAIT_COUNT };
int  hub_wait(wsh_conn_t *c, uint64_t ticket, int what);
bool hub_waited(wsh_conn_t *c, uint64_t ticket, int *what, json_t **id);

/* api.c: what the publish API (hub_api) and the presence API
 * (hub_presence) share. An answer of STATUS with OBJ (steals it); one
 * with {"error": ERROR}, returning 0 for the http hook; the http_head
 * hook (POST with the API key, else an answer before the body is read);
 * the realm a request goes to (the body's "realm", else the
 * endpoint's), NULL after an error answer. */
void hub_http_reply(wsh_conn_t *c, int status, json_t *obj);
int  hub_api_error(wsh_conn_t *c, int status, const char *error);
int  hub_api_head(wsh_conn_t *c, const wsh_request_t *r, size_t *max_body);
const char *hub_api_realm(wsh_conn_t *c, json_t *root, size_t *len);

/* presence.c: the presence rules the engine obeys (room_presence
 * hook), room_members and room_count from clients, and their answers
 * (presence_page hook). */
#define HUB_PRESENCE_LIMIT 1000     /* hub.rooms[].presence_limit */
#define HUB_STR(x)  HUB_STR_(x)     /* the default as the field table's */
#define HUB_STR_(x) #x
void hub_room_presence(const void *conf, const char *room, size_t len,
    wsh_presence_rule_t *rule);
void hub_room_presence_request(wsh_conn_t *c, json_t *root,
    const char *type);
void hub_presence_page(wsh_conn_t *c, uint64_t ticket,
    const wsh_presence_page_t *page);

#endif /* WSH_HUB_H */
