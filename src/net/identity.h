/* identity.h -- the verified identity of an authenticated connection. */
#ifndef WSH_IDENTITY_H
#define WSH_IDENTITY_H

#include "core/core.h"

typedef struct wsh_identity_s wsh_identity_t;

/* One block holding USER and the room patterns (see wsh_conn_set_user()
 * in include/wshub.h for their meaning). Returns a block the caller frees
 * with free(), or NULL on bad lengths or ENOMEM. Pure: any process. */
wsh_identity_t *wsh_identity_new(const char *user, size_t len,
    const char *const *patterns, const size_t *lens, size_t n);

const char *wsh_identity_user(const wsh_identity_t *id, size_t *len);

/* Whether ROOM matches one of ID's patterns (always with no pattern
 * list). */
bool wsh_identity_may(const wsh_identity_t *id, const char *room,
    size_t len);

#endif /* WSH_IDENTITY_H */
