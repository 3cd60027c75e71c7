/* redis.h -- the parts of the Redis engine shared by its files:
 * connections (redis.c), the sentinels (redis_sentinel.c) and presence
 * (redis_presence.c). Internal to src/engine.
 */
#ifndef WSH_ENGINE_REDIS_H
#define WSH_ENGINE_REDIS_H

#include "engine/engine.h"
#include "core/conf.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define REDIS_ENVELOPE  "#wshub1 "
/* After the tag: a message the origin worker did not deliver locally
 * (it went through the sequencer), so it is not skipped there. */
#define REDIS_TAG_SEQUENCED "/s"
#define REDIS_NAME_MAX  (WSH_TOPIC_NAME_MAX + 512)

typedef enum {
    REDIS_DOWN = 0,             /* waiting for the reconnect timer */
    REDIS_CONNECTING,
    REDIS_UP
} redis_state_e;

typedef struct {
    const char         *name;       /* "subscriber" or "command" */
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

/* Context of a reply callback. */
typedef struct {
    wsh_msec_t    sent;         /* when the request was made */
    uint64_t      conn_id;
    int           flags;
    size_t        len;          /* room or recipient */
    size_t        slen;         /* sender, or the joining id */
    char          name[];       /* name, then sender */
} redis_req_t;

extern redis_conn_t redis_sub;
extern redis_conn_t redis_cmd;
extern bool         redis_exiting;
extern char         redis_tag[128];     /* "NODE/PID" */
extern size_t       redis_taglen;
/* The server in use: engine.redis.host and port, or the master the
 * sentinels named ("" until they did). */
extern char         redis_host[256];
extern unsigned     redis_port;

const wsh_conf_engine_t *redis_conf(void);
size_t redis_channel(char *buf, int kind, const char *name, size_t len);
size_t redis_envelope(char *buf);
redis_req_t *redis_req(const char *name, size_t len, const char *sender,
    size_t slen, uint64_t conn_id, int flags);

/* Connections (redis.c). A context to HOST:PORT or the UNIX socket
 * PATH, on the worker's loop; NULL with the reason in ERR. */
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
/* Connect RC to redis_host:redis_port. */
void redis_connect_to(redis_conn_t *rc);
/* RC could not connect (the reason is logged): retry after the back-off. */
void redis_connect_failed(redis_conn_t *rc);
/* RC is connected to the server to use: up, and set up. */
void redis_setup(redis_conn_t *rc);
/* Let go of RC's context now (not from its own callbacks). */
void redis_drop(redis_conn_t *rc);
/* The server changed: drop both connections, reconnect at once. */
void redis_restart(void);

/* Sentinel (redis_sentinel.c), with engine.redis.sentinel. */
int  redis_sentinel_init(void);
void redis_sentinel_exit(void);
/* Ask the sentinels for the master, then connect RC to it. */
void redis_sentinel_resolve(redis_conn_t *rc);
/* RC is connected: check with ROLE that it is the master before
 * redis_setup. */
void redis_sentinel_role(redis_conn_t *rc);

/* Command accounting, for the command timeout. */
void redis_sent(redis_conn_t *rc);
redis_conn_t *redis_replied(const redisAsyncContext *ac);

/* Circuit breaker (redis_breaker.c). */
/* A connect of RC failed (refused, timed out, not answered). */
void redis_breaker_failed(redis_conn_t *rc);
/* RC answered: the breaker closes, waking the other connection. */
void redis_breaker_ok(redis_conn_t *rc);
/* Before arming RC's reconnect timer: 0, use the back-off; 1, arm it
 * for *DELAY (RC probes when the breaker's open time is over); -1, do
 * not arm it (the other connection probes). */
int  redis_breaker_wait(redis_conn_t *rc, wsh_msec_t *delay);
/* The probe's timer fired: half-open. */
void redis_breaker_probe(void);
/* The sentinels named a new master: what failed was the old one. */
void redis_breaker_reset(void);
void redis_breaker_info(wsh_server_info_t *info);

/* Presence scripts (redis_script.c). */
enum { REDIS_LUA_JOIN, REDIS_LUA_LEAVE, REDIS_LUA_SYNC, REDIS_LUA_HPUB,
       REDIS_LUA_HREAD, REDIS_LUA_KPUB, REDIS_LUA_WHO, REDIS_LUA_N };
int  redis_script_init(void);
/* The command connection is (re)connected: SCRIPT LOAD them. */
void redis_script_load(void);
/* Run SCRIPT with its keys, then its arguments, in ARGV/ARGL (how many
 * are keys is the script's: redis_script.c); DONE (may be NULL)
 * gets the reply, NULL when the connection went away. WSH_ERROR: not
 * sent, DONE will not be called. */
int  redis_script(int script, int argc, const char *const *argv,
    const size_t *argl, redisCallbackFn *done, void *privdata);

/* True while the command connection is up. */
bool redis_cmd_up(void);

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
/* True once Redis confirmed our subscription to channel CH. */
bool redis_subscribed(const char *ch, size_t n);

/* After a reconnect: read ROOM's position, which the worker compares
 * with POS, its members' (wsh_engine_position with no connection). */
void redis_history_check(const char *room, size_t len,
    const wsh_room_position_t *pos);

/* Presence (redis_presence.c). */
int  redis_presence_init(void);
void redis_presence_exit(void);
/* A connection answers again: leaves by difference wait presence_ttl. */
void redis_presence_reconnected(void);
/* Put back and announce what changed while we were cut off, and learn
 * what we missed. */
void redis_presence_resync(void);
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
