/* redis.h -- the parts of the Redis engine shared by its files: the
 * engine operations and subscriptions (redis.c), the shards and their
 * connections (redis_shard.c), the sentinels (redis_sentinel.c), the
 * breaker (redis_breaker.c), presence (redis_presence.c), history
 * (redis_history.c) and the scripts (redis_script.c). Internal to
 * src/engine.
 */
#ifndef WSH_ENGINE_REDIS_H
#define WSH_ENGINE_REDIS_H

#include "engine/engine.h"
#include "core/conf.h"
#include "core/hash.h"

#include <event2/event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define REDIS_ENVELOPE  "#wshub1 "
/* After the tag: a message the origin worker did not deliver locally
 * (it went through the sequencer), so it is not skipped there. */
#define REDIS_TAG_SEQUENCED "/s"
/* A channel or key: a prefix, a kind, and the name, hash-tagged in
 * cluster mode (3 bytes a byte at most, redis_slot.h). */
#define REDIS_NAME_MAX  (3 * WSH_TOPIC_NAME_MAX + 512)

typedef enum {
    REDIS_DOWN = 0,             /* waiting for the reconnect timer */
    REDIS_CONNECTING,
    REDIS_UP
} redis_state_e;

typedef struct redis_shard_s    redis_shard_t;
typedef struct redis_sentinel_s redis_sentinel_t;
struct redis_ssub_s;

typedef struct {
    const char         *name;       /* "subscriber" or "command" */
    redis_shard_t      *shard;      /* the shard it belongs to */
    redisAsyncContext  *ac;
    redis_state_e       state;
    struct event       *timer;      /* reconnect or connect timeout */
    wsh_msec_t          backoff;    /* next reconnect delay, un-jittered */
    unsigned            pending;    /* commands without a reply */
    wsh_msec_t          progress;   /* last reply, or first pending send */
    wsh_msec_t          logged;     /* last failure logged */
    bool                ready;      /* answered our PING */
    bool                connected;  /* was up once: a later connect is a
                                     * reconnect */
} redis_conn_t;

typedef enum {
    REDIS_BREAKER_CLOSED = 0,
    REDIS_BREAKER_OPEN,
    REDIS_BREAKER_HALF_OPEN
} redis_breaker_e;

/* A shard's circuit breaker (redis_breaker.c). */
typedef struct {
    redis_breaker_e  state;
    unsigned         failures;      /* failed connects in a row */
    wsh_msec_t       until;         /* open: the probe's time */
    redis_conn_t    *probe;         /* the connection that will probe */
    uint64_t         reconnects;    /* connections re-established */
} redis_breaker_t;

/* One Redis server of the engine, with its own two connections: the
 * only one without engine.redis.shards, else one of them
 * (redis_shard.c). A topic lives on one shard (redis_shard_for), with
 * its channel, presence and history keys. */
struct redis_shard_s {
    unsigned        index;
    const wsh_conf_redis_server_t *conf;
    char            label[32];      /* "" alone, else " shard N": logs */
    redis_conn_t    sub;            /* in cluster mode only its state: the
                                     * connection is ssub */
    redis_conn_t    cmd;
    struct redis_ssub_s *ssub;      /* cluster mode: the SSUBSCRIBE one */
    bool            retired;        /* cluster mode: serves no slot */
    /* The server in use: conf's host and port, or the master the
     * sentinels named ("" until they did). */
    char            host[256];
    unsigned        port;
    char            address[272];   /* for /health: HOST:PORT, a socket */
    char            role[16];       /* ROLE's first word, "" unknown */
    redis_sentinel_t *sentinel;     /* NULL: no Sentinel */
    wsh_hash_t     *wanted;         /* channel -> 1: local topics here */
    wsh_hash_t     *confirmed;      /* channel -> 1: Redis said so */
    bool            check_rooms;    /* the subscription was lost */
    wsh_msec_t      settled;        /* presence: leaves by difference from
                                     * then (redis_presence.c) */
    wsh_msec_t      refreshed;      /* presence: last refresh */
    bool            refresh;        /* presence: due now */
    redis_breaker_t breaker;
    wsh_msec_t      drop_logged;    /* publishes dropped while down */
    unsigned long   dropped;
};

/* Context of a reply callback. */
typedef struct {
    wsh_msec_t    sent;         /* when the request was made */
    uint64_t      conn_id;
    int           flags;
    size_t        len;          /* room or recipient */
    size_t        slen;         /* sender, or the joining id */
    char          name[];       /* name, then sender */
} redis_req_t;

extern redis_shard_t *redis_shards;
extern size_t         redis_nshards;
extern bool           redis_exiting;
extern char           redis_tag[128];     /* "NODE/PID" */
extern size_t         redis_taglen;

const wsh_conf_engine_t *redis_conf(void);
size_t redis_channel(char *buf, int kind, const char *name, size_t len);
size_t redis_envelope(char *buf);
redis_req_t *redis_req(const char *name, size_t len, const char *sender,
    size_t slen, uint64_t conn_id, int flags);

/* Placement (redis_shard.c): the one place that says where a topic
 * lives. The shard of topic KIND/NAME; of its channel CH (N bytes). */
redis_shard_t *redis_shard_for(int kind, const char *name, size_t len);
redis_shard_t *redis_shard_of_channel(int kind, const char *ch, size_t n);

/* Shards (redis_shard.c). */
int  redis_shards_init(void);
int  redis_shard_init(redis_shard_t *s, unsigned index,
    const wsh_conf_redis_server_t *v);
/* S's server changed: its address for /health and the logs. */
void redis_shard_address(redis_shard_t *s);
/* RC answered (PING, or the sharded subscriber is UP). */
void redis_ready(redis_conn_t *rc);
/* Cluster mode: S's sharded subscriber RC is up; it is gone (the
 * reason is logged). */
void redis_ssub_ready(redis_conn_t *rc);
void redis_ssub_lost(redis_conn_t *rc);
void redis_shards_exit(void);
/* Both connections of S are up. */
bool redis_shard_up(const redis_shard_t *s);
/* S's command connection is up. */
bool redis_cmd_up(const redis_shard_t *s);
/* Count COMMANDS sent to S, PUBLISHES of them publishes, for /metrics
 * (redis_sent counts the commands awaiting a reply). */
void redis_shard_count(redis_shard_t *s, unsigned commands,
    unsigned publishes);
/* The engine is up: every shard's both connections. */
bool redis_all_up(void);

/* Connections (redis_shard.c). A context to HOST:PORT or the UNIX
 * socket PATH, on the worker's loop; NULL with the reason in ERR. */
redisAsyncContext *redis_open(const char *host, unsigned port,
    const char *path, char *err, size_t len);
/* With engine.redis.tls, start TLS on AC, a connection to HOST (whose
 * certificate must name it, or tls.server_name): WSH_OK, or WSH_ERROR
 * with the reason in ERR (redis_tls.c). */
int redis_tls_start(redisAsyncContext *ac, const char *host, char *err,
    size_t len);
/* ERR, hiredis's reason for a failure, or when it has none (hiredis_ssl
 * leaves it empty) why the last TLS handshake failed. */
const char *redis_tls_why(const char *err);
/* RC failed at WHAT for ERR: logged, once in a while while it lasts. */
void redis_log_failure(redis_conn_t *rc, const char *what, const char *err);
/* Connect RC to its shard's host:port. */
void redis_connect_to(redis_conn_t *rc);
/* RC could not connect (the reason is logged): retry after the back-off. */
void redis_connect_failed(redis_conn_t *rc);
/* RC is connected to the server to use: up, and set up. */
void redis_setup(redis_conn_t *rc);
/* Let go of RC's context now (not from its own callbacks). */
void redis_drop(redis_conn_t *rc);
/* S's server changed: drop both connections, reconnect at once. */
void redis_restart(redis_shard_t *s);
/* Subscriptions (redis.c): S's subscriber is up, SUBSCRIBE its
 * channels; S's subscriber is lost. */
void redis_subscribe_all(redis_shard_t *s);
void redis_subscriptions_lost(redis_shard_t *s);
/* ROLE's reply REPLY on S, kept for /health. */
void redis_shard_role(redis_shard_t *s, const redisReply *reply);

/* A message on channel CH (redis.c). */
void redis_message(const char *ch, size_t chlen, const char *p, size_t len);

/* Cluster mode (redis_cluster.c): engine.redis.cluster is set. */
bool redis_clustered(void);
int  redis_cluster_init(void);
void redis_cluster_exit(void);
/* The shard of the master serving the slot of channel CH. */
redis_shard_t *redis_cluster_shard(const char *ch, size_t n);
/* Ask for the slot map again (rate-limited). */
void redis_cluster_refresh(void);
/* Move the wanted channels to the shards of their slots. */
void redis_cluster_rehome(void);
/* REPLY (to a command for a topic) is a -MOVED or -ASK: the shard to
 * send the command again to, ASKING already queued there for an ASK
 * (*ASK); the map is refreshed on MOVED. NULL: not a redirection, or
 * to a node without a shard (yet): the command fails. */
redis_shard_t *redis_cluster_redirected(const redisReply *reply, bool *ask);
/* Connect S's sharded subscriber RC. */
void redis_cluster_ssub_connect(redis_conn_t *rc);
/* SSUBSCRIBE (SUB) or SUNSUBSCRIBE CH on S, when its subscriber is up. */
void redis_cluster_ssub_send(redis_shard_t *s, bool sub, const char *ch, size_t n);

/* Sentinel (redis_sentinel.c), for a shard with a sentinel master. */
int  redis_sentinel_init(redis_shard_t *s);
void redis_sentinel_exit(redis_shard_t *s);
/* Ask the sentinels for the master, then connect RC to it. */
void redis_sentinel_resolve(redis_conn_t *rc);
/* RC is connected: check with ROLE that it is the master before
 * redis_setup. */
void redis_sentinel_role(redis_conn_t *rc);

/* Command accounting, for the command timeout. */
void redis_sent(redis_conn_t *rc);
redis_conn_t *redis_replied(const redisAsyncContext *ac);

/* Circuit breaker (redis_breaker.c), one per shard. */
/* A connect of RC failed (refused, timed out, not answered). */
void redis_breaker_failed(redis_conn_t *rc);
/* RC answered: the breaker closes, waking the other connection. */
void redis_breaker_ok(redis_conn_t *rc);
/* Before arming RC's reconnect timer: 0, use the back-off; 1, arm it
 * for *DELAY (RC probes when the breaker's open time is over); -1, do
 * not arm it (the other connection probes). */
int  redis_breaker_wait(redis_conn_t *rc, wsh_msec_t *delay);
/* The probe's timer fired: half-open. */
void redis_breaker_probe(redis_shard_t *s);
/* The sentinels named a new master: what failed was the old one. */
void redis_breaker_reset(redis_shard_t *s);
const char *redis_breaker_name(const redis_shard_t *s);

/* Presence scripts (redis_script.c). */
enum { REDIS_LUA_JOIN, REDIS_LUA_LEAVE, REDIS_LUA_SYNC, REDIS_LUA_HPUB,
       REDIS_LUA_HREAD, REDIS_LUA_KPUB, REDIS_LUA_WHO, REDIS_LUA_N };
int  redis_script_init(void);
void redis_script_exit(void);
/* S's command connection is (re)connected: SCRIPT LOAD them. */
void redis_script_load(redis_shard_t *s);
/* Run SCRIPT on shard S (the one of the keys) with its keys, then its
 * arguments, in ARGV/ARGL (how many are keys is the script's:
 * redis_script.c); DONE (may be NULL) gets the reply, NULL when the
 * connection went away. WSH_ERROR: not sent, DONE will not be called. */
int  redis_script(redis_shard_t *s, int script, int argc,
    const char *const *argv, const size_t *argl, redisCallbackFn *done,
    void *privdata);

/* Rooms with history (redis_history.c): the engine operations, and a
 * numbered message ("\x02S ...") from a room's channel. */
void redis_publish_acked(int kind, const char *name, size_t len,
    uint64_t conn_id, uint64_t ticket, const char *key, size_t klen,
    const void *data, size_t dlen);
void redis_history(const char *room, size_t len, uint64_t conn_id,
    uint64_t join, const wsh_since_t *since);
void redis_history_message(const char *room, size_t len, bool own,
    const char *p, size_t plen);
/* A room's presence join and leave, behind its history reads that
 * wait for the subscription (engine ops). */
void redis_room_join(const char *room, size_t len, const char *id,
    size_t idlen, uint64_t conn_id, const wsh_presence_rule_t *rule);
void redis_room_leave(const char *room, size_t len, const char *id,
    size_t idlen, const wsh_presence_rule_t *rule);
/* Redis confirmed our subscription to channel CH: the history reads
 * (and the joins and leaves behind them) that waited for it go. */
void redis_history_subscribed(const char *ch, size_t n);
void redis_history_exit(void);
/* True once Redis confirmed our subscription to channel CH, of S. */
bool redis_subscribed(const redis_shard_t *s, const char *ch, size_t n);

/* After a reconnect of S: read the position of each of its rooms with
 * history and members here, which the worker compares with theirs. */
void redis_history_check(redis_shard_t *s);

/* Presence (redis_presence.c). */
int  redis_presence_init(void);
void redis_presence_exit(void);
/* A connection of S answers again: leaves by difference wait
 * presence_ttl. */
void redis_presence_reconnected(redis_shard_t *s);
/* Put back and announce what changed in S's rooms while we were cut
 * off from it, and learn what we missed. */
void redis_presence_resync(redis_shard_t *s);
/* A join or leave event: tell our members of ROOM unless they know;
 * EXCLUDE_CONN is the joining connection if ours. */
void redis_presence_tell(const char *room, size_t len, const char *id,
    size_t idlen, bool joined, uint64_t exclude_conn);
/* Periodic: re-score our entries and sweep the expired ones. */
void redis_presence_tick(void);
void redis_join(const char *room, size_t len, const char *id, size_t idlen,
    uint64_t conn_id, const wsh_presence_rule_t *rule);
void redis_leave(const char *room, size_t len, const char *id,
    size_t idlen, const wsh_presence_rule_t *rule);
int  redis_who(const char *room, size_t len, uint64_t conn_id,
    uint64_t ticket, const char *cursor, size_t clen, size_t limit);

#endif /* WSH_ENGINE_REDIS_H */
