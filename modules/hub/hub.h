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

/* The hub: section of wshub.yaml (hub.c declares it). */
typedef struct {
    int                 client_ids;        /* accept ?id= */
    unsigned            max_rooms_per_connection;
    int                 announce_connections;
    char               *api_key;           /* NULL: publish API off */
    size_t              api_max_body;      /* publish API request body */
    wsh_conf_table_t    history;           /* hub_history_t, first match
                                            * wins */
} hub_conf_t;

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
