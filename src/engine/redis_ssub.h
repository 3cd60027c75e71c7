/* redis_ssub.h -- a sharded pub/sub subscriber connection to one Redis
 * Cluster node (SSUBSCRIBE, SUNSUBSCRIBE, smessage), on a worker's
 * event_base. Internal to src/engine.
 *
 * Cluster mode (issue 22) opens one per master (shard) and subscribes
 * each room's channel (redis_slot.h) on the master that serves its
 * slot (redis_cluster_map.h). The connection reports, through one
 * callback:
 *
 *   UP            connected: (AUTH accepted and) PING answered
 *   SUBSCRIBED    Redis confirmed an SSUBSCRIBE: only now is the
 *                 channel's traffic certain to arrive
 *   UNSUBSCRIBED  Redis confirmed an SUNSUBSCRIBE we sent
 *   DROPPED       Redis dropped a channel on its own: its slot moved to
 *                 another node (a migration, a failover that demoted
 *                 this node). The engine looks the slot up again and
 *                 subscribes the channel where it now lives, if still
 *                 wanted (a DROPPED may also cross an SUNSUBSCRIBE of
 *                 ours for the same channel).
 *   MESSAGE       an smessage on CHANNEL with DATA
 *   ERROR         an error reply to one of our commands (CHANNEL is the
 *                 command's): -MOVED (redis_cluster_redirect), -CROSSSLOT,
 *                 -NOPERM... The connection stays.
 *   CLOSED        the connection is gone (DATA: why): refused, connect
 *                 timeout, EOF, a reply over the size limit, a protocol
 *                 error. No event follows; subscriptions are lost.
 *
 * Pointers in an event are valid during the callback only. The
 * callback may call any function here, redis_ssub_free included.
 */
#ifndef WSH_ENGINE_REDIS_SSUB_H
#define WSH_ENGINE_REDIS_SSUB_H

#include "core/core.h"

struct event_base;

#define REDIS_SSUB_MAX_REPLY  (1024 * 1024)

typedef struct redis_ssub_s redis_ssub_t;

typedef enum {
    REDIS_SSUB_UP = 0,
    REDIS_SSUB_SUBSCRIBED,
    REDIS_SSUB_UNSUBSCRIBED,
    REDIS_SSUB_DROPPED,
    REDIS_SSUB_MESSAGE,
    REDIS_SSUB_ERROR,
    REDIS_SSUB_CLOSED
} redis_ssub_event_e;

typedef struct {
    redis_ssub_event_e  type;
    const char         *channel;    /* NULL for UP and CLOSED, and for an
                                     * ERROR of AUTH or PING */
    size_t              chlen;
    const char         *data;       /* MESSAGE: the payload; ERROR: the
                                     * error text; CLOSED: the reason */
    size_t              len;
    long long           count;      /* SUBSCRIBED, UNSUBSCRIBED, DROPPED:
                                     * the channels left subscribed on
                                     * this connection, as Redis counts */
} redis_ssub_event_t;

typedef void (*redis_ssub_handler_pt)(redis_ssub_t *s,
    const redis_ssub_event_t *ev, void *arg);

typedef struct {
    const char  *host;              /* an address or a name */
    unsigned     port;
    const char  *password;          /* AUTH before PING, or NULL */
    wsh_msec_t   connect_timeout;   /* until UP; 0: none */
    size_t       max_reply;         /* bytes of one reply, at most: an
                                     * smessage's payload, its channel
                                     * and 40 bytes of framing; 0:
                                     * REDIS_SSUB_MAX_REPLY */
} redis_ssub_conf_t;

/* Connect to CONF's node on BASE (a worker's event_base); HANDLER(s,
 * event, ARG) reports what happens, from BASE's loop only, never from
 * within this call. NULL with the reason in ERR (LEN bytes) when the
 * connection cannot even start (no memory, an empty host, port not in
 * 1..65535); a refused connection or an unknown host is a CLOSED
 * event. Commands may be sent at once: they leave when connected. */
redis_ssub_t *redis_ssub_open(struct event_base *base,
    const redis_ssub_conf_t *conf, redis_ssub_handler_pt handler,
    void *arg, char *err, size_t len);

/* SSUBSCRIBE / SUNSUBSCRIBE the one channel CH (LEN bytes, binary
 * safe): confirmed by SUBSCRIBED / UNSUBSCRIBED, or refused by ERROR
 * (MOVED when this node does not serve its slot). WSH_ERROR, nothing
 * sent, once the connection is CLOSED or out of memory. */
int redis_ssub_subscribe(redis_ssub_t *s, const char *ch, size_t len);
int redis_ssub_unsubscribe(redis_ssub_t *s, const char *ch, size_t len);

/* True between UP and CLOSED. */
bool redis_ssub_up(const redis_ssub_t *s);

/* "HOST:PORT" of the node, for log lines. */
const char *redis_ssub_name(const redis_ssub_t *s);

/* Close (if open) and free S; no event is reported after. */
void redis_ssub_free(redis_ssub_t *s);

#endif /* WSH_ENGINE_REDIS_SSUB_H */
