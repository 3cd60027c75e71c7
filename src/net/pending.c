/* pending.c -- handshake slots per client address (pending.h).
 *
 * A hash of addresses (net/limit.c's 16-byte keys), each with its
 * pending connections oldest first; the connection points back at its
 * address, so adding and removing are O(1). Finding the heaviest
 * address scans the addresses, but only when the worker is out of
 * sockets, and each holds at most per_ip_pending of them.
 */
#include "net/pending.h"
#include "net/conn.h"
#include "net/limit.h"
#include "core/hash.h"

#include <stdlib.h>
#include <string.h>

struct wsh_pending_ip_s {
    wsh_queue_t conns;          /* wsh_conn_t.pending_link, oldest first */
    unsigned    n;
    uint8_t     key[16];
};

static wsh_hash_t *pending_ips;

int
wsh_pending_init(void)
{
    pending_ips = wsh_hash_new();
    return pending_ips != NULL ? WSH_OK : WSH_ERROR;
}

void
wsh_pending_free(void)
{
    wsh_hash_free(pending_ips, free);
    pending_ips = NULL;
}

bool
wsh_pending_full(const struct sockaddr *sa, unsigned limit)
{
    const wsh_pending_ip_t *ip;
    uint8_t key[16];

    if (limit == 0) {
        return false;
    }
    wsh_limit_key(sa, key);
    ip = wsh_hash_get(pending_ips, key, sizeof(key));
    return ip != NULL && ip->n >= limit;
}

void
wsh_pending_add(wsh_conn_t *c)
{
    wsh_pending_ip_t *ip;
    uint8_t key[16];

    wsh_limit_key(&c->peer.sa, key);
    ip = wsh_hash_get(pending_ips, key, sizeof(key));
    if (ip == NULL) {
        ip = malloc(sizeof(*ip));
        if (ip == NULL) {
            return;             /* uncounted: fail open, as limit.c */
        }
        wsh_queue_init(&ip->conns);
        ip->n = 0;
        memcpy(ip->key, key, sizeof(key));
        if (wsh_hash_put(pending_ips, ip->key, sizeof(ip->key), ip)
            != WSH_OK)
        {
            free(ip);
            return;
        }
    }
    wsh_queue_insert_tail(&ip->conns, &c->pending_link);
    ip->n++;
    c->pending = ip;
}

void
wsh_pending_remove(wsh_conn_t *c)
{
    wsh_pending_ip_t *ip = c->pending;

    if (ip == NULL) {
        return;
    }
    wsh_queue_remove(&c->pending_link);
    c->pending = NULL;
    if (--ip->n == 0) {
        (void) wsh_hash_remove(pending_ips, ip->key, sizeof(ip->key));
        free(ip);
    }
}

wsh_conn_t *
wsh_pending_victim(void)
{
    wsh_pending_ip_t *ip, *heaviest = NULL;
    wsh_hash_iter_t it;
    const void *key;
    size_t len;
    void *value;

    wsh_hash_iter_init(pending_ips, &it);
    while (wsh_hash_next(&it, &key, &len, &value)) {
        ip = value;
        if (heaviest == NULL || ip->n > heaviest->n) {
            heaviest = ip;
        }
    }
    if (heaviest == NULL) {
        return NULL;
    }
    return wsh_queue_data(wsh_queue_head(&heaviest->conns), wsh_conn_t,
                          pending_link);
}
