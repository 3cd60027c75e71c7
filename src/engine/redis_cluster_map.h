/* redis_cluster_map.h -- a Redis Cluster's slot map, read from CLUSTER
 * SLOTS, and its redirections (MOVED, ASK). Pure code on hiredis's
 * reply objects, any process. Internal to src/engine.
 *
 * Cluster mode (issue 22) asks a seed node for CLUSTER SLOTS, parses it
 * here into one shard per master (redis_cluster_map_t: slot -> master),
 * and sends a room's commands to redis_cluster_map_node(map,
 * redis_slot(...)). A "-MOVED" reply (redis_cluster_redirect) says the
 * map is stale: the command goes to the named node and the map is read
 * again; "-ASK" sends that one command, after ASKING, to the named
 * node, leaving the map as it is.
 */
#ifndef WSH_ENGINE_REDIS_CLUSTER_MAP_H
#define WSH_ENGINE_REDIS_CLUSTER_MAP_H

#include "core/core.h"
#include "engine/redis_slot.h"

#include <hiredis/hiredis.h>

#define REDIS_CLUSTER_NONE      0xffff  /* a slot no master serves */
#define REDIS_CLUSTER_NODES_MAX 1024    /* nodes in a map, at most */
#define REDIS_CLUSTER_HOST_MAX  255     /* bytes of a host name */
#define REDIS_CLUSTER_ID_LEN    40      /* hex digits of a node id */

typedef struct {
    char      host[REDIS_CLUSTER_HOST_MAX + 1];
    unsigned  port;                         /* 1 .. 65535 */
    char      id[REDIS_CLUSTER_ID_LEN + 1]; /* "" when the reply had none */
    bool      master;                       /* first of a slot range */
    unsigned  slots;                        /* slots it serves as master */
} redis_cluster_node_t;

typedef struct {
    uint16_t               slot[REDIS_SLOTS];  /* index in nodes, or
                                                * REDIS_CLUSTER_NONE */
    redis_cluster_node_t  *nodes;       /* masters and replicas, each once,
                                         * in the order of the reply */
    size_t                 nnodes;
    unsigned               assigned;    /* slots with a master */
    unsigned               masters;     /* nodes with master set */
} redis_cluster_map_t;

/* The map of a CLUSTER SLOTS reply R, asked of SEED_HOST: a node
 * whose endpoint is unknown (NULL, "" or "?" in the reply) is taken to
 * be on SEED_HOST, as the specification says. Every element is
 * checked (types, slot ranges within 0..16383 and not overlapping,
 * ports, host and id lengths, at most REDIS_CLUSTER_NODES_MAX nodes):
 * anything else gives NULL with the reason in ERR (LEN bytes), as does
 * an error reply or no memory. A node is known by its id, or by
 * host:port when it has none. Slots no range covers stay
 * REDIS_CLUSTER_NONE (a cluster not fully covered: see assigned). The
 * caller frees the map with redis_cluster_map_free. */
redis_cluster_map_t *redis_cluster_map_parse(const redisReply *r,
    const char *seed_host, char *err, size_t len);

void redis_cluster_map_free(redis_cluster_map_t *m);

/* The master serving SLOT (< REDIS_SLOTS), or NULL: none does. */
const redis_cluster_node_t *redis_cluster_map_node(
    const redis_cluster_map_t *m, unsigned slot);

/* The index of the node at HOST:PORT in M, or -1. */
int redis_cluster_map_find(const redis_cluster_map_t *m, const char *host,
    unsigned port);

typedef struct {
    bool      ask;      /* ASK: this one command; MOVED: the map is stale */
    unsigned  slot;
    char      host[REDIS_CLUSTER_HOST_MAX + 1];   /* "" : the host the
                                                   * command went to */
    unsigned  port;
} redis_cluster_redirect_t;

/* An error reply's text ERR (LEN bytes; with or without the leading
 * '-') read as "MOVED SLOT HOST:PORT" or "ASK SLOT HOST:PORT" into
 * *RD. HOST may be an IPv6 address, bare as Redis writes it
 * ("::1:7000": the port follows the last ':') or in brackets
 * ("[::1]:7000"), or empty (an unknown endpoint: the same host).
 * WSH_OK: *RD is set. WSH_DECLINED: another error (not a redirection).
 * WSH_ERROR: a MOVED or ASK that is malformed (slot out of range, port
 * not in 1..65535, host too long or with spaces, trailing bytes). */
int redis_cluster_redirect(const char *err, size_t len,
    redis_cluster_redirect_t *rd);

#endif /* WSH_ENGINE_REDIS_CLUSTER_MAP_H */
