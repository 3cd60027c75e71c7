/* topic.h -- a worker's pub/sub index: topic <-> local connections.
 *
 * Indexed both ways as in Redis: a topic lists its member connections,
 * and each connection lists its memberships, so joining and leaving are
 * O(1) and a closing connection leaves everything without a search.
 */
#ifndef WSH_TOPIC_H
#define WSH_TOPIC_H

#include "core/core.h"

typedef struct {
    wsh_queue_t members;        /* wsh_member_t.topic_link */
    size_t      nmembers;
    uint8_t     kind;
    uint16_t    len;
    char        name[];
} wsh_topic_t;

typedef struct {
    wsh_queue_t  topic_link;
    wsh_queue_t  owner_link;    /* the connection's list */
    wsh_topic_t *topic;
    void        *owner;         /* the connection */
    struct wsh_recovery_s *recovery; /* joining a history room, or NULL */
    uint16_t     idlen;         /* presence id, rooms only */
    char         id[];
} wsh_member_t;

#define WSH_TOPIC_NAME_MAX 1024

int  wsh_topic_index_init(void);
void wsh_topic_index_free(void);

/* The topic, or NULL when it has no local member. */
wsh_topic_t *wsh_topic_find(int kind, const char *name, size_t len);

/* OWNER's membership of a topic, or NULL; O(1). */
wsh_member_t *wsh_topic_membership(const void *owner, int kind,
    const char *name, size_t len);

/* Add OWNER (whose membership list is OWNED) to a topic, creating it;
 * *first tells whether it is the topic's first local member. NULL on
 * ENOMEM. */
wsh_member_t *wsh_topic_add(wsh_queue_t *owned, void *owner, int kind,
    const char *name, size_t len, const char *id, size_t idlen, bool *first);

/* Remove a membership (the caller frees m); when it was the topic's
 * last, the topic leaves the index, *last is set and the caller frees
 * m->topic after using it. */
void wsh_topic_remove(wsh_member_t *m, bool *last);

#endif /* WSH_TOPIC_H */
