/* identity.c -- the verified identity of an authenticated connection.
 *
 * An auth module (modules/auth_jwt) proves who the client is during the
 * handshake; the result is kept in one small block hung off the
 * connection, so a connection without auth pays only a NULL pointer.
 * The block holds the client id, then the room patterns, each as one
 * length byte and its bytes: a handful of patterns is a few dozen bytes
 * and is scanned linearly on join and room_message.
 */
#include "net/identity.h"
#include "net/conn.h"
#include "core/conf.h"
#include "core/runtime.h"

#include <stdlib.h>
#include <string.h>

struct wsh_identity_s {
    uint8_t  userlen;
    uint8_t  all_rooms;         /* no pattern list: every room */
    uint16_t npatterns;
    char     data[];            /* user, then (len byte, bytes) each */
};

wsh_identity_t *
wsh_identity_new(const char *user, size_t len, const char *const *patterns,
    const size_t *lens, size_t n)
{
    wsh_identity_t *id;
    size_t size = len, i;
    char *p;

    if (len == 0 || len > UINT8_MAX || n > UINT16_MAX) {
        return NULL;
    }
    for (i = 0; patterns != NULL && i < n; i++) {
        if (lens[i] == 0 || lens[i] > UINT8_MAX) {
            return NULL;
        }
        size += 1 + lens[i];
    }
    id = malloc(sizeof(*id) + size);
    if (id == NULL) {
        return NULL;
    }
    id->userlen = (uint8_t) len;
    id->all_rooms = patterns == NULL;
    id->npatterns = patterns == NULL ? 0 : (uint16_t) n;
    memcpy(id->data, user, len);
    p = id->data + len;
    for (i = 0; i < id->npatterns; i++) {
        *p++ = (char) lens[i];
        memcpy(p, patterns[i], lens[i]);
        p += lens[i];
    }
    return id;
}

const char *
wsh_identity_user(const wsh_identity_t *id, size_t *len)
{
    *len = id->userlen;
    return id->data;
}

bool
wsh_identity_may(const wsh_identity_t *id, const char *room, size_t len)
{
    const u_char *p = (const u_char *) id->data + id->userlen;
    size_t i, plen;

    if (id->all_rooms) {
        return true;
    }
    for (i = 0; i < id->npatterns; i++, p += plen) {
        plen = *p++;
        if (wsh_room_matches((const char *) p, plen, room, len)) {
            return true;
        }
    }
    return false;
}

int
wsh_conn_set_user(wsh_conn_t *c, const char *user, size_t len,
    const char *const *patterns, const size_t *lens, size_t n)
{
    wsh_identity_t *id = wsh_identity_new(user, len, patterns, lens, n);

    if (id == NULL) {
        return -1;
    }
    free(c->identity);
    c->identity = id;
    return 0;
}

const char *
wsh_conn_user(const wsh_conn_t *c, size_t *len)
{
    if (c->identity == NULL) {
        *len = 0;
        return NULL;
    }
    return wsh_identity_user(c->identity, len);
}

int
wsh_conn_may(const wsh_conn_t *c, int action, const char *room, size_t len)
{
    /* Joining and publishing are granted by the same list for now: the
     * action is part of the API so that they can be told apart later
     * without changing modules. */
    (void) action;
    return c->identity == NULL || wsh_identity_may(c->identity, room, len);
}

const char *
wsh_conn_realm(const wsh_conn_t *c, size_t *len, int *verified)
{
    const wsh_endpoint_t *ep = c->endpoint;

    if (verified != NULL) {
        *verified = ep != NULL && ep->realm_verified;
    }
    if (ep == NULL || ep->realm == NULL) {
        *len = 0;
        return NULL;
    }
    *len = strlen(ep->realm);
    return ep->realm;
}

int
wsh_realm_known(const char *name, size_t len)
{
    return wsh_conf_realm_known(wsh_worker.conf, name, len);
}
