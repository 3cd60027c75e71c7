/* redis_cluster_map.c -- a Redis Cluster's slot map from CLUSTER SLOTS,
 * and the MOVED and ASK redirections.
 *
 * CLUSTER SLOTS answers one array per slot range:
 *
 *     [START, END, MASTER, REPLICA...]   each node [HOST, PORT, ID, META]
 *
 * HOST is NULL, "" or "?" when the node does not know its endpoint (the
 * client then uses the host it asked); ID came with Redis 3.2 and META
 * (hostname...) with 7.0, so a node has 2 to 4 elements. The reply
 * comes from the network: everything is checked, and a reply that does
 * not fit is refused with a message, never trusted in part.
 */
#include "engine/redis_cluster_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Node entries in one reply, at most: each costs a look-up among the
 * nodes, so a reply cannot make the parse quadratic without bound. */
#define REDIS_CLUSTER_ENTRIES_MAX  (4 * REDIS_SLOTS)

/* The reply's string element E as host, or "" for an unknown one. */
static int
redis_cluster_host(const redisReply *e, const char **host, size_t *n)
{
    if (e->type == REDIS_REPLY_NIL) {
        *host = "";
        *n = 0;
        return WSH_OK;
    }
    if (e->type != REDIS_REPLY_STRING) {
        return WSH_ERROR;
    }
    *host = e->str;
    *n = e->len;
    if (*n == 1 && e->str[0] == '?') {
        *n = 0;
    }
    return WSH_OK;
}

/* Node E of range RANGE at position POS (0: the master) into M. */
static int
redis_cluster_node(redis_cluster_map_t *m, const redisReply *e,
    const char *seed, unsigned range, size_t pos, char *err, size_t len)
{
    redis_cluster_node_t *node;
    const char *host, *id = "";
    size_t hlen, idlen = 0, i;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) {
        snprintf(err, len, "range %u, node %zu: not an array of host, "
                 "port, id", range, pos);
        return WSH_ERROR;
    }
    if (redis_cluster_host(e->element[0], &host, &hlen) != WSH_OK) {
        snprintf(err, len, "range %u, node %zu: the host is not a string",
                 range, pos);
        return WSH_ERROR;
    }
    if (hlen == 0) {
        host = seed;
        hlen = strlen(seed);
    }
    if (hlen > REDIS_CLUSTER_HOST_MAX || memchr(host, '\0', hlen) != NULL) {
        snprintf(err, len, "range %u, node %zu: host of %zu bytes", range,
                 pos, hlen);
        return WSH_ERROR;
    }
    if (e->element[1]->type != REDIS_REPLY_INTEGER
        || e->element[1]->integer < 1 || e->element[1]->integer > 65535)
    {
        snprintf(err, len, "range %u, node %zu: the port is not an integer "
                 "in 1..65535", range, pos);
        return WSH_ERROR;
    }
    if (e->elements >= 3) {
        if (e->element[2]->type != REDIS_REPLY_STRING
            || e->element[2]->len > REDIS_CLUSTER_ID_LEN
            || memchr(e->element[2]->str, '\0', e->element[2]->len) != NULL)
        {
            snprintf(err, len, "range %u, node %zu: the id is not a string "
                     "of at most %d bytes", range, pos, REDIS_CLUSTER_ID_LEN);
            return WSH_ERROR;
        }
        id = e->element[2]->str;
        idlen = e->element[2]->len;
    }
    if (e->elements >= 4 && e->element[3]->type != REDIS_REPLY_ARRAY
#ifdef REDIS_REPLY_MAP
        && e->element[3]->type != REDIS_REPLY_MAP
#endif
        )
    {
        snprintf(err, len, "range %u, node %zu: its metadata is not an "
                 "array", range, pos);
        return WSH_ERROR;
    }
    if (e->elements > 4) {
        snprintf(err, len, "range %u, node %zu: %zu elements, not 2 to 4",
                 range, pos, e->elements);
        return WSH_ERROR;
    }

    for (i = 0; i < m->nnodes; i++) {
        node = &m->nodes[i];
        if (idlen > 0 ? strlen(node->id) == idlen
                        && memcmp(node->id, id, idlen) == 0
                      : node->port == (unsigned) e->element[1]->integer
                        && strlen(node->host) == hlen
                        && memcmp(node->host, host, hlen) == 0)
        {
            break;
        }
    }
    if (i == m->nnodes) {
        if (m->nnodes == REDIS_CLUSTER_NODES_MAX) {
            snprintf(err, len, "more than %d nodes", REDIS_CLUSTER_NODES_MAX);
            return WSH_ERROR;
        }
        node = &m->nodes[m->nnodes++];
        memcpy(node->host, host, hlen);
        node->host[hlen] = '\0';
        node->port = (unsigned) e->element[1]->integer;
        memcpy(node->id, id, idlen);
        node->id[idlen] = '\0';
    }
    if (pos == 0) {
        if (!node->master) {
            node->master = true;
            m->masters++;
        }
    }
    return (int) i;
}

redis_cluster_map_t *
redis_cluster_map_parse(const redisReply *r, const char *seed_host,
    char *err, size_t len)
{
    redis_cluster_map_t *m;
    const redisReply *range;
    size_t i, j, entries = 0;
    long long start, end;
    int master;
    char why[160];

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL && r->type == REDIS_REPLY_ERROR) {
            snprintf(err, len, "CLUSTER SLOTS: %.*s", (int) r->len < 200
                     ? (int) r->len : 200, r->str);
        } else {
            snprintf(err, len, "CLUSTER SLOTS: the reply is not an array");
        }
        return NULL;
    }
    if (strlen(seed_host) > REDIS_CLUSTER_HOST_MAX) {
        snprintf(err, len, "CLUSTER SLOTS: seed host too long");
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL
        || (m->nodes = calloc(REDIS_CLUSTER_NODES_MAX,
                              sizeof(*m->nodes))) == NULL)
    {
        snprintf(err, len, "CLUSTER SLOTS: no memory");
        free(m);
        return NULL;
    }
    memset(m->slot, 0xff, sizeof(m->slot));     /* REDIS_CLUSTER_NONE */

    for (i = 0; i < r->elements; i++) {
        range = r->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3
            || range->element[0]->type != REDIS_REPLY_INTEGER
            || range->element[1]->type != REDIS_REPLY_INTEGER)
        {
            snprintf(why, sizeof(why), "range %zu: not an array of start, "
                     "end, master", i);
            goto failed;
        }
        start = range->element[0]->integer;
        end = range->element[1]->integer;
        if (start < 0 || end >= REDIS_SLOTS || start > end) {
            snprintf(why, sizeof(why), "range %zu: slots %lld-%lld not "
                     "within 0-%d", i, start, end, REDIS_SLOTS - 1);
            goto failed;
        }
        entries += range->elements - 2;
        if (entries > REDIS_CLUSTER_ENTRIES_MAX) {
            snprintf(why, sizeof(why), "more than %d node entries",
                     REDIS_CLUSTER_ENTRIES_MAX);
            goto failed;
        }
        master = -1;
        for (j = 2; j < range->elements; j++) {
            int n = redis_cluster_node(m, range->element[j], seed_host,
                                       (unsigned) i, j - 2, why,
                                       sizeof(why));
            if (n < 0) {
                goto failed;
            }
            if (j == 2) {
                master = n;
            } else if (n == master) {
                snprintf(why, sizeof(why), "range %zu: node %zu is its "
                         "master again", i, j - 2);
                goto failed;
            }
        }
        for (j = (size_t) start; j <= (size_t) end; j++) {
            if (m->slot[j] != REDIS_CLUSTER_NONE) {
                snprintf(why, sizeof(why), "range %zu: slot %zu is in an "
                         "earlier range too", i, j);
                goto failed;
            }
            m->slot[j] = (uint16_t) master;
        }
        m->nodes[master].slots += (unsigned) (end - start + 1);
        m->assigned += (unsigned) (end - start + 1);
    }
    return m;

failed:
    snprintf(err, len, "CLUSTER SLOTS: %s", why);
    redis_cluster_map_free(m);
    return NULL;
}

void
redis_cluster_map_free(redis_cluster_map_t *m)
{
    if (m != NULL) {
        free(m->nodes);
        free(m);
    }
}

const redis_cluster_node_t *
redis_cluster_map_node(const redis_cluster_map_t *m, unsigned slot)
{
    if (slot >= REDIS_SLOTS || m->slot[slot] == REDIS_CLUSTER_NONE) {
        return NULL;
    }
    return &m->nodes[m->slot[slot]];
}

int
redis_cluster_map_find(const redis_cluster_map_t *m, const char *host,
    unsigned port)
{
    size_t i;

    for (i = 0; i < m->nnodes; i++) {
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0) {
            return (int) i;
        }
    }
    return -1;
}

/* ---- redirections ------------------------------------------------------- */

/* Decimal digits P .. LAST as a number no larger than MAX; WSH_ERROR
 * for no digits, another byte or a larger number. */
static int
redis_cluster_number(const char *p, const char *last, unsigned max,
    unsigned *v)
{
    unsigned n = 0;

    if (p == last) {
        return WSH_ERROR;
    }
    for (; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return WSH_ERROR;
        }
        n = n * 10 + (unsigned) (*p - '0');
        if (n > max) {
            return WSH_ERROR;
        }
    }
    *v = n;
    return WSH_OK;
}

int
redis_cluster_redirect(const char *err, size_t len,
    redis_cluster_redirect_t *rd)
{
    const char *p = err, *last = err + len, *sp, *colon, *host, *hend;
    size_t n;

    if (len > 0 && *p == '-') {
        p++;
    }
    if (last - p >= 6 && memcmp(p, "MOVED ", 6) == 0) {
        rd->ask = false;
        p += 6;
    } else if (last - p >= 4 && memcmp(p, "ASK ", 4) == 0) {
        rd->ask = true;
        p += 4;
    } else {
        return WSH_DECLINED;
    }
    /* A reply line may keep its CRLF. */
    while (last > p && (last[-1] == '\n' || last[-1] == '\r')) {
        last--;
    }
    sp = memchr(p, ' ', (size_t) (last - p));
    if (sp == NULL
        || redis_cluster_number(p, sp, REDIS_SLOTS - 1, &rd->slot) != WSH_OK)
    {
        return WSH_ERROR;
    }
    host = sp + 1;
    /* The port follows the last ':', so a bare IPv6 address keeps its
     * own colons. */
    for (colon = last; colon > host && colon[-1] != ':'; colon--) {
        /* void */
    }
    if (colon == host) {
        return WSH_ERROR;
    }
    if (redis_cluster_number(colon, last, 65535, &rd->port) != WSH_OK
        || rd->port == 0)
    {
        return WSH_ERROR;
    }
    hend = colon - 1;
    if (hend > host && *host == '[') {
        if (hend[-1] != ']') {
            return WSH_ERROR;
        }
        host++;
        hend--;
    }
    n = (size_t) (hend - host);
    if (n > REDIS_CLUSTER_HOST_MAX) {
        return WSH_ERROR;
    }
    for (p = host; p < hend; p++) {
        if ((unsigned char) *p <= ' ' || *p == '[' || *p == ']'
            || (unsigned char) *p == 0x7f)
        {
            return WSH_ERROR;
        }
    }
    memcpy(rd->host, host, n);
    rd->host[n] = '\0';
    return WSH_OK;
}
