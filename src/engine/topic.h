/* topic.h -- a worker's pub/sub index: topic <-> local connections.
 *
 * Indexed both ways as in Redis: a topic lists its member connections,
 * and each connection lists its memberships, so a closing connection
 * leaves everything without a search. A membership is found by walking
 * both lists at once, so in as many steps as the shorter has: the
 * connection's topics (a hub client's rooms, at most
 * max_rooms_per_connection) or the topic's local members. A table of
 * memberships would make that one lookup, for more memory than a
 * membership itself.
 */
#ifndef WSH_TOPIC_H
#define WSH_TOPIC_H

#include "core/core.h"

typedef struct wsh_topic_s wsh_topic_t;
typedef struct wsh_member_s wsh_member_t;

struct wsh_topic_s {
    wsh_topic_t *next;          /* the index's hash chain */
    wsh_queue_t  members;       /* wsh_member_t.topic_link */
    uint32_t     nmembers;
    /* Room memberships whose presence id this topic's name holds: a
     * topic out of the index (no member left) lives on for them. */
    uint32_t     pins;
    uint32_t     nrecovering;   /* members with a recovery (recovery.c) */
    uint16_t     len;
    uint8_t      kind;
    char         name[];
};

/* A connection's memberships are a singly linked list, in the order
 * joined: 8 bytes less a membership and a connection than a queue, for
 * a walk of the connection's few topics (at most
 * max_rooms_per_connection and two) when one is left by name, which
 * finding it by name walks anyway. A topic's members stay a queue: a
 * room may have thousands, and a leaver must not walk them. */
struct wsh_member_s {
    wsh_queue_t   topic_link;
    wsh_member_t *owner_next;   /* the connection's list */
    wsh_topic_t  *topic;
    void         *owner;        /* the connection */
};

#define WSH_TOPIC_NAME_MAX 1024

int  wsh_topic_index_init(void);
void wsh_topic_index_free(void);

/* The topic, or NULL when it has no local member. */
wsh_topic_t *wsh_topic_find(int kind, const char *name, size_t len);

/* The membership of a topic in OWNED (a connection's list: the first
 * of its memberships, or NULL), or NULL. */
wsh_member_t *wsh_topic_membership(const wsh_member_t *owned, int kind,
    const char *name, size_t len);

/* Add OWNER (whose membership list is *OWNED) to a topic, creating it,
 * at the end of *OWNED; *first tells whether it is the topic's first
 * local member. ID is the presence id of a room membership (ignored for
 * other kinds). NULL on ENOMEM. */
wsh_member_t *wsh_topic_add(wsh_member_t **owned, void *owner, int kind,
    const char *name, size_t len, const char *id, size_t idlen, bool *first);

/* The presence id of room membership M ("" without one). */
const char *wsh_topic_member_id(const wsh_member_t *m, size_t *len);

/* Remove membership M from its topic and from *OWNED, its owner's list
 * (in one step when M is the first); when it was the topic's last, the
 * topic leaves the index and *last is set. M, its topic and its id stay
 * readable until wsh_topic_member_free(M). */
void wsh_topic_remove(wsh_member_t **owned, wsh_member_t *m, bool *last);

/* Free removed membership M, and its topic when nothing holds it. */
void wsh_topic_member_free(wsh_member_t *m);

#endif /* WSH_TOPIC_H */
