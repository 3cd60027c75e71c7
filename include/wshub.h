/* wshub.h -- the public module API of wshub.
 *
 * A module gives an endpoint its behaviour (echo, the hub protocol,
 * metrics...). It is a const wsh_module_t whose hooks the core calls,
 * and it talks to the core only through the functions declared here, so
 * this header is all an out-of-tree module needs. Every function here
 * runs in a worker process, on the worker's event loop thread.
 */
#ifndef WSHUB_H
#define WSHUB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WSHUB_API_VERSION 4

typedef struct wsh_conn_s    wsh_conn_t;
typedef struct wsh_request_s wsh_request_t;
typedef struct wsh_ack_s     wsh_ack_t;
typedef struct wsh_room_position_s wsh_room_position_t;
typedef struct wsh_presence_page_s wsh_presence_page_t;

/* What the engine does with a room's presence (the room_presence hook):
 * a room costs O(members) per join and leave while it is within these,
 * O(1) past them. */
typedef struct {
    size_t list_max;            /* a joiner gets the member ids while the
                                 * room has at most this many, else the
                                 * count only */
    size_t announce_max;        /* joins and leaves reach the members
                                 * while the room has at most this many
                                 * (after a join, before a leave), else
                                 * nobody hears of them */
} wsh_presence_rule_t;

/* WebSocket opcodes a module sees and sends. */
#define WSH_OPCODE_TEXT   0x1
#define WSH_OPCODE_BINARY 0x2

/* Close codes (RFC 6455 section 7.4.1 and the IANA registry). */
#define WSH_CLOSE_NORMAL        1000
#define WSH_CLOSE_GOING_AWAY    1001
#define WSH_CLOSE_PROTOCOL      1002
#define WSH_CLOSE_UNSUPPORTED   1003
#define WSH_CLOSE_NO_STATUS     1005
#define WSH_CLOSE_ABNORMAL      1006
#define WSH_CLOSE_INVALID_DATA  1007
#define WSH_CLOSE_POLICY        1008
#define WSH_CLOSE_TOO_BIG       1009
#define WSH_CLOSE_INTERNAL      1011
#define WSH_CLOSE_RESTART       1012
#define WSH_CLOSE_TRY_AGAIN     1013

/* Configuration. A module declares its section of wshub.yaml (the
 * top-level KEY) as a table of fields, each with its type, where it goes
 * in the module's struct, its default and its bounds; the core checks
 * the file's shape (unknown keys, with "did you mean", FILE:LINE:COL),
 * parses every value with the one parser of its type, and hands the
 * module its struct through wsh_module_conf(). Values by type:
 *   BOOL    int: on/true/yes or off/false/no
 *   UINT    unsigned: a whole number in [min, max]
 *   SIZE    size_t: bytes, with an optional k, m or g suffix
 *   MSEC    uint64_t: milliseconds, from 250ms, 54s, 5m, 1h (bare: s)
 *   STRING  char *: NULL when not set and no default
 *   ENUM    int: the index of the value in WORDS
 *   LIST    wsh_conf_list_t: strings, between min and max of them
 *   TABLE   wsh_conf_table_t: mappings of SUB's fields, each ITEM_SIZE
 *           bytes, between min and max of them
 *   MAP     one mapping of SUB's fields, into the struct at OFFSET (SUB's
 *           offsets are within it); absent, it is left all zero: its
 *           fields' defaults apply only when it is written
 *   ALIAS   an older spelling of the key named by deflt, a dotted path
 *           from the top ("slow_consumer"); used when that one is not
 *           set, with a notice in the log */
enum {
    WSH_CONF_BOOL = 1,
    WSH_CONF_UINT,
    WSH_CONF_SIZE,
    WSH_CONF_MSEC,
    WSH_CONF_STRING,
    WSH_CONF_ENUM,
    WSH_CONF_LIST,
    WSH_CONF_TABLE,
    WSH_CONF_MAP,
    WSH_CONF_ALIAS
};

typedef struct {
    char      **items;
    size_t      n;
} wsh_conf_list_t;

typedef struct {
    void       *items;          /* n structs of the field's item_size */
    size_t      n;
} wsh_conf_table_t;

typedef struct wsh_conf_field_s {
    const char *name;           /* NULL ends a table */
    int         type;           /* WSH_CONF_* */
    size_t      offset;         /* of the value in the section's struct */
    const char *deflt;          /* the default, written as in the file;
                                 * NULL: zero, off, none */
    uint64_t    min, max;       /* UINT, SIZE, MSEC, LIST and TABLE
                                 * (entries); max 0: no upper bound */
    const char *const *words;   /* ENUM: NULL-terminated */
    const struct wsh_conf_field_s *sub;   /* TABLE: each entry's fields */
    size_t      item_size;      /* TABLE: each entry's struct */
    int         required;       /* the key must be written */
} wsh_conf_field_t;

/* A field NAME of type WSH_CONF_TYPE at MEMBER of STRUCT, with its default
 * (as written in the file, or NULL) and bounds; a table ends with
 * WSH_CONF_END. Other members (words, sub, item_size, required) are set
 * with designated initializers. */
#define WSH_CONF_FIELD(structure, member, type_, deflt_, min_, max_)       \
    .name = #member, .type = WSH_CONF_##type_,                             \
    .offset = offsetof(structure, member), .deflt = (deflt_),              \
    .min = (min_), .max = (max_)
#define WSH_CONF_END { .name = NULL }

typedef struct wsh_conf_section_s {
    const char             *key;        /* the top-level key */
    size_t                  size;       /* of the module's struct */
    const wsh_conf_field_t *fields;
    /* Checks across fields and derived values, once every field is set
     * (PRESENT: the file has the section): 0, or -1 with ERR (LEN
     * bytes) saying what is wrong and how to fix it, and *FIELD the key
     * it is about (NULL: the section). Optional. */
    int  (*check)(void *conf, int present, const char **field, char *err,
                  size_t len);
    /* Frees what check allocated (the core frees the fields). */
    void (*free)(void *conf);
} wsh_conf_section_t;

/* The endpoint a module serves when wshub.yaml lists none. */
typedef struct {
    const char *path;
    const char *max_message_size;   /* as in the file; NULL: the global */
    int         loopback;           /* allow loopback clients only */
} wsh_default_endpoint_t;

typedef struct wsh_module_s {
    const char *name;           /* as used in endpoints[].module */
    int         api_version;    /* WSHUB_API_VERSION */
    /* Its endpoint in the configuration without "endpoints", or NULL. */
    const wsh_default_endpoint_t *default_endpoint;
    /* Its wshub.yaml section, or NULL (wsh_module_conf). */
    const wsh_conf_section_t *conf;
    /* An authentication module: endpoints name it with "auth: NAME"
     * (its name without "auth_"), and it runs its handshake hook before
     * the endpoint's module; never an endpoint's module itself, and its
     * section must be in the file for an endpoint to use it. */
    int         auth;

    /* Process lifecycle: init_master runs once in the master before the
     * workers are forked, init_worker in each worker after fork, and
     * exit_worker when a worker stops. Return 0, or -1 to refuse to
     * start (after logging why). */
    int  (*init_master)(void);
    int  (*init_worker)(void);
    void (*exit_worker)(void);

    /* Connection hooks, all optional (NULL). */

    /* Headers are in, before the 101: return 0 to accept or an HTTP
     * status (401, 403, ...) to refuse the upgrade. */
    int  (*handshake)(wsh_conn_t *c, const wsh_request_t *r);
    /* The 101 has been sent; the connection is a WebSocket. R is the
     * upgrade request, valid during the call only. */
    void (*open)(wsh_conn_t *c, const wsh_request_t *r);
    /* A complete, validated message (text is valid UTF-8). The data is
     * the core's and valid only during the call. */
    void (*message)(wsh_conn_t *c, int opcode, const unsigned char *data,
                    size_t len);
    /* The worker is draining (reload: CODE 1012, stop: 1001): the last
     * chance to send C something before the core's close frame. */
    void (*shutdown)(wsh_conn_t *c, int code);
    /* The connection is gone; called exactly once for every open(). CODE
     * is the close code sent or received (1006 if the TCP connection just
     * dropped). */
    void (*close)(wsh_conn_t *c, int code);
    /* A plain HTTP request (no upgrade) on the endpoint's path. Respond
     * with wsh_http_respond() and return 0, or return -1 to let the core
     * answer 426 Upgrade Required. */
    int  (*http)(wsh_conn_t *c, const wsh_request_t *r);
    /* A plain HTTP request's head is in, before any byte of its body is
     * read, so that refusing it costs no memory: return 0 to go on
     * (reading a body of up to *MAX_BODY bytes, preset to the
     * endpoint's max_message_size, then the http hook; larger gets
     * 413), or -1 after answering it with wsh_http_respond() (the
     * connection then closes: its body was not read). */
    int  (*http_head)(wsh_conn_t *c, const wsh_request_t *r,
                      size_t *max_body);

    /* Engine events, for modules that use topics (all optional). */

    /* In answer to C's wsh_topic_join() of ROOM: COUNT, the number of
     * ids in the room cluster-wide (C's included), and their N ids
     * while COUNT is within the room's list_max (room_presence), else
     * none (N 0). */
    void (*members)(wsh_conn_t *c, const char *room, size_t len,
                    const char *const *ids, const size_t *lens, size_t n,
                    size_t count);
    /* Presence of ID in ROOM changed (its first connection joined, or
     * its last one left or dropped, on any worker), in a room within its
     * announce_max (room_presence): called once per worker that has
     * local members of ROOM. EXCLUDE is the joining connection if it is
     * local, else NULL. */
    void (*presence)(const char *room, size_t len, const char *id,
                     size_t idlen, int joined, wsh_conn_t *exclude);
    /* The outcome of C's private publish to TO across all workers:
     * called when it reached no connection anywhere (found 0), and, for
     * a publish with WSH_PUBLISH_CONFIRM, also when it did (found 1). */
    void (*publish_result)(wsh_conn_t *c, const char *to, size_t len,
                           int found);
    /* C's messages of ROOM, a room with history, have a hole: messages
     * were lost on their way to this worker (the relay was overloaded,
     * the engine's subscription was lost), or the room's history was
     * lost (a new epoch). The core takes C out of ROOM when this
     * returns (the hook must not leave it); joining again with SINCE
     * (wsh_topic_join_since) gets what C missed, from the history. */
    void (*room_reset)(wsh_conn_t *c, const char *room, size_t len,
                       const wsh_room_position_t *since);
    /* The sequencer's answer to C's wsh_publish_acked() of TICKET
     * (struct wsh_ack_s, below); not called when C closed first. */
    void (*acked)(wsh_conn_t *c, uint64_t ticket, const wsh_ack_t *ack);
    /* The answer to C's wsh_topic_presence() of TICKET; not called when
     * C closed first. */
    void (*presence_page)(wsh_conn_t *c, uint64_t ticket,
                          const wsh_presence_page_t *page);

    /* Rules of the module's rooms, asked by the engine in any process
     * (the master's sequencer too) with the module's section CONF of the
     * configuration it runs with. */

    /* Whether ROOM (its topic name: "REALM#NAME") keeps history: 1 with
     * the ring's SIZE (messages) and each message's TTL_MS, else 0. */
    int  (*room_history)(const void *conf, const char *room, size_t len,
                         size_t *size, uint64_t *ttl_ms);
    /* How much of ROOM's presence the engine carries. RULE comes with
     * v1's (every member listed to a joiner, every join and leave
     * announced, at any size); the hook may lower its limits. Asked on
     * the worker at each join and leave of ROOM. */
    void (*room_presence)(const void *conf, const char *room, size_t len,
                          wsh_presence_rule_t *rule);

    /* How members get the messages of the module's rooms, asked by the
     * engine in a worker (optional). */

    /* A message of ROOM that the engine numbered: DATA as the module
     * published it, OFFSET in EPOCH (ELEN hex digits). Writes the
     * message as members get it into OUT, at most CAP bytes (OUT may be
     * NULL when CAP is 0), and returns its whole length: when that is
     * more than CAP the engine calls again with room enough. 0: DATA
     * is delivered as is. Called once per message on each worker with
     * members of ROOM (they share the one frame), and once per replayed
     * message for a client that recovers. NULL: DATA is delivered as
     * is. */
    size_t (*numbered)(const char *room, size_t len, const void *data,
                       size_t dlen, uint64_t offset, const char *epoch,
                       size_t elen, void *out, size_t cap);
} wsh_module_t;

/* Queue one message. Returns 0, or -1 if the connection is closing or
 * its output is over send_buffer: a slow consumer must not make the
 * server grow, so the message is dropped (hub.slow_consumer: drop) or
 * the connection closed with 1008 (close). */
int  wsh_conn_send(wsh_conn_t *c, int opcode, const void *data, size_t len);

/* Start the closing handshake with CODE and an optional REASON. */
void wsh_conn_close(wsh_conn_t *c, int code, const char *reason);

void    *wsh_conn_get_data(const wsh_conn_t *c);
void     wsh_conn_set_data(wsh_conn_t *c, void *data);
uint64_t wsh_conn_id(const wsh_conn_t *c);
/* "ip:port" of the peer. */
const char *wsh_conn_peer(const wsh_conn_t *c);

/* Authentication. An endpoint with "auth:" runs that auth module's
 * handshake hook before its own module's; the auth module records the
 * verified identity with wsh_conn_set_user(), and the endpoint's module
 * reads it back. Connections without auth carry no identity. */
#define WSH_MAY_JOIN    1       /* join a room */
#define WSH_MAY_PUBLISH 2       /* send to a room's members */

/* Record C's verified client id USER (1-255 bytes) and the rooms it may
 * join and publish to: N patterns, each an exact room name or a prefix
 * ending in '*' (1-255 bytes), or every room when PATTERNS is NULL.
 * For auth modules' handshake hooks. Returns 0, or -1 on bad lengths or
 * ENOMEM. */
int  wsh_conn_set_user(wsh_conn_t *c, const char *user, size_t len,
    const char *const *patterns, const size_t *lens, size_t n);
/* Identity realms: the namespace of client ids and topics. Each
 * endpoint has one (its "realm:", by default its path); a module that
 * uses topics names them "REALM#NAME" (WSH_REALM_SEP), so that clients
 * of different realms never meet, on this host or through Redis, and
 * room rules (room_history) hold for NAME in every realm. */
#define WSH_REALM_MAX 64
#define WSH_REALM_SEP '#'

/* C's realm and its length; NULL for an endpoint without one (a
 * publish API shared by several realms). *VERIFIED (may be NULL) is set
 * when an endpoint of the realm authenticates: then the only ids in it
 * are verified ones (wsh_conn_user()). */
const char *wsh_conn_realm(const wsh_conn_t *c, size_t *len, int *verified);
/* Whether NAME is the realm of an endpoint that serves topics. */
int  wsh_realm_known(const char *name, size_t len);

/* C's verified client id, or NULL if C did not authenticate. */
const char *wsh_conn_user(const wsh_conn_t *c, size_t *len);
/* Whether C may do ACTION (WSH_MAY_*) on ROOM: always 1 without auth or
 * when its identity allows every room, else 1 if a pattern matches. */
int  wsh_conn_may(const wsh_conn_t *c, int action, const char *room,
    size_t len);

/* Topics: the engine's pub/sub across all workers (and hosts). A topic
 * is the set of every client (WSH_TOPIC_ALL, name ""), a room, or one
 * client id (private messages). Joining, leaving and
 * wsh_topic_is_member() take as many steps locally as C has topics or
 * the topic has local members, whichever is fewer; the worker tells the
 * engine only when its first member joins or its last one leaves. */
#define WSH_TOPIC_ALL    0
#define WSH_TOPIC_ROOM   1
#define WSH_TOPIC_CLIENT 2

/* Join C to a topic. For a room, PRESENCE_ID (C's client id) is added to
 * the room's cluster-wide presence and the module's members hook is then
 * called for C. Returns 0, or -1 if C already joined it or on ENOMEM. */
int  wsh_topic_join(wsh_conn_t *c, int kind, const char *name, size_t len,
    const char *presence_id, size_t idlen);

/* Leave a topic; -1 if C is not a member. Closing a connection leaves
 * all its topics. */
int  wsh_topic_leave(wsh_conn_t *c, int kind, const char *name, size_t len);

int  wsh_topic_is_member(const wsh_conn_t *c, int kind, const char *name,
    size_t len);

/* The name of the first topic of KIND that C joined (and has not left),
 * *LEN its length; NULL (and 0) when it is in none. A module that joins
 * a client topic first (the hub: "REALM#ID") reads C's id back from it
 * at once, rather than keeping a copy per connection. */
const char *wsh_topic_joined(const wsh_conn_t *c, int kind, size_t *len);

/* The number of topics of KIND that C is in (a step per topic of C). */
size_t wsh_topic_count(const wsh_conn_t *c, int kind);

#define WSH_PUBLISH_LOCAL   0x1 /* this worker's members only */
#define WSH_PUBLISH_CONFIRM 0x2 /* client topics: report back even when
                                 * found elsewhere, if not found here */

/* Send the text message DATA to every member of a topic on every worker,
 * except SENDER (may be NULL). The frame is built once and shared by
 * all local recipients. For a client topic, SENDER's module gets the
 * publish_result hook later if no member anywhere got it. Returns the number
 * of local recipients. */
size_t wsh_publish(int kind, const char *name, size_t len, const void *data,
    size_t dlen, wsh_conn_t *sender, int flags);

/* Acknowledged publishes. A publish to a room with history, or with an
 * idempotency key, goes through the engine's sequencer (the master, or
 * Redis) before anybody gets it: wsh_publish_acked() gives it a ticket,
 * and the sender's module hears the outcome through its acked hook,
 * once the sequencer has the message (numbered, when the room keeps
 * history), or that it never got there. Other publishes are accepted by
 * this worker at once (ticket 0: nothing comes back). */
#define WSH_IDEMPOTENCY_KEY_MAX 128

struct wsh_ack_s {
    int         failed;         /* the sequencer never got it (the engine
                                 * is down): not published; retrying with
                                 * the same key is safe */
    int         duplicate;      /* the key was seen within the window:
                                 * the first publish's outcome, nothing
                                 * was published now */
    int         kind;           /* the WSH_TOPIC_* published to */
    int         found;          /* somebody was subscribed (for a client
                                 * topic: the id is connected) */
    uint64_t    offset;         /* 0: not numbered (no history) */
    const char *epoch;          /* with an offset */
    size_t      epoch_len;
};

typedef struct {
    const char *key;            /* idempotency key (1 to
                                 * WSH_IDEMPOTENCY_KEY_MAX bytes), NULL:
                                 * none */
    size_t      key_len;
    uint64_t    ticket;         /* out: the acked hook's ticket, 0: no
                                 * answer comes */
    int         refused;        /* out: not published (the sender has
                                 * 65535 waiting, or out of memory) */
} wsh_publish_ack_t;

/* wsh_publish() through the sequencer when the topic is a room with
 * history or ACK has a key (see above); ACK->ticket tells whether the
 * acked hook of SENDER (which must not be NULL then) will be called.
 * With a key the message is not delivered locally before the sequencer
 * has seen it, so the return value counts the local members it will
 * reach (rooms), or 0. */
size_t wsh_publish_acked(int kind, const char *name, size_t len,
    const void *data, size_t dlen, wsh_conn_t *sender, int flags,
    wsh_publish_ack_t *ack);

/* Rooms with history (hub.history): the engine numbers every message
 * published to them with an offset, strictly increasing within the
 * room's epoch (an id that changes when the history is lost), keeps and
 * carries the message as published with its offset and epoch beside
 * it, and delivers it only once numbered, so every member sees the same
 * order (the publisher's worker included: wsh_publish then returns the
 * number of local members it will reach). The module of the room's
 * members writes the offset and epoch into the message as delivered
 * (its numbered hook): the engine knows no message format. A client
 * coming back asks for what it missed since the last offset it saw. */
#define WSH_EPOCH_MAX 32

typedef struct {
    uint64_t    offset;         /* the last offset the client saw */
    const char *epoch;          /* its epoch; NULL: the room's current */
    size_t      epoch_len;
} wsh_since_t;

struct wsh_room_position_s {
    int         history;        /* the room keeps history; if not, the
                                 * offset and epoch are unset */
    int         recovered;      /* join with since: 1 if every missed
                                 * message follows, else 0; -1: no since */
    uint64_t    offset;         /* the room's last offset */
    char        epoch[WSH_EPOCH_MAX + 1];
};

/* Presence on demand: a page of ROOM's member ids, cluster-wide, at any
 * size. CURSOR (CLEN bytes; NULL or "0": the first page) is the cursor
 * of the previous page; LIMIT (at most WSH_PRESENCE_PAGE_MAX) the most
 * ids wanted, 0 for the count alone. The answer reaches C's module's
 * presence_page hook with the returned ticket (0: refused, C has too
 * many requests waiting, the engine is down, or the cursor is not 1 to
 * 18 decimal digits).
 * Pages are cut at whatever the room holds when each is asked: an id
 * present throughout comes at least once, and may come twice when the
 * room grew meanwhile; ids that join or leave meanwhile may or may not
 * come. */
#define WSH_PRESENCE_PAGE_MAX   1000
#define WSH_PRESENCE_CURSOR_MAX 18      /* decimal digits */

uint64_t wsh_topic_presence(wsh_conn_t *c, const char *room, size_t len,
    const char *cursor, size_t clen, size_t limit);

struct wsh_presence_page_s {
    const char         *room;       /* the room asked about */
    size_t              room_len;
    int                 failed;     /* the engine could not answer (it
                                     * is down): nothing below is set */
    size_t              count;      /* ids in the room */
    const char *const  *ids;        /* this page's */
    const size_t       *lens;
    size_t              n;
    const char         *cursor;     /* the next page's; "0": none */
    size_t              cursor_len;
};

/* True when ROOM keeps history here (its messages get offsets). */
int  wsh_topic_has_history(const char *room, size_t len);

/* wsh_topic_join of a room, asking for the messages missed after SINCE
 * (NULL: none). For a history room (or with SINCE) the members hook is
 * called once C's position is known, wsh_topic_position() tells it, and
 * right after the hook returns C is sent the missed messages in order,
 * then the live ones, without gap or duplicate. */
int  wsh_topic_join_since(wsh_conn_t *c, const char *room, size_t len,
    const char *presence_id, size_t idlen, const wsh_since_t *since);

/* C's position in ROOM: during the members hook of its join, the one
 * the join is answered with; later, the last offset delivered to the
 * room's members here. -1 when C is not in ROOM. */
int  wsh_topic_position(const wsh_conn_t *c, const char *room, size_t len,
    wsh_room_position_t *pos);

/* Call CB for every room C joined that keeps history, with the position
 * C would rejoin from (for server_shutdown). */
void wsh_topic_positions(const wsh_conn_t *c, void (*cb)(void *arg,
    const char *room, size_t len, const wsh_room_position_t *pos),
    void *arg);

/* One server of the engine (a Redis shard) as this worker sees it. */
typedef struct {
    const char *address;        /* "HOST:PORT" or a UNIX socket; NULL: not
                                 * known yet (the sentinels not asked) */
    int         up;             /* both connections up */
    const char *role;           /* its ROLE ("master"...); NULL: unknown */
    const char *breaker;        /* "closed", "open", "half-open" */
    uint64_t    reconnects;     /* connections re-established */
    unsigned    failures;       /* failed connects in a row */
} wsh_engine_shard_t;

/* The server as this worker sees it, for health checks. */
typedef struct {
    const char *version;
    const char *engine;         /* "local" or "redis" */
    int         engine_up;
    int         draining;       /* this worker is stopping or reloading */
    int         worker;         /* this worker's slot */
    int         workers;        /* worker_processes */
    unsigned    connections;    /* this worker's WebSockets */
    uint64_t    uptime_ms;      /* since this worker started */
    const char *engine_breaker; /* "closed", "open", "half-open"; NULL:
                                 * the engine has no circuit breaker */
    uint64_t    engine_reconnects;  /* engine connections re-established */
    unsigned    engine_failures;    /* failed engine connects in a row */
    const char *engine_address; /* the engine's server in use, "HOST:PORT"
                                 * or a UNIX socket; NULL: none (local,
                                 * or the sentinels not asked yet, or
                                 * several shards) */
    const wsh_engine_shard_t *engine_shards;   /* NULL: local */
    size_t      engine_nshards;
    int         engine_sharded; /* they are engine.redis.shards (else the
                                 * one server of engine.redis) */
} wsh_server_info_t;

void wsh_server_info(wsh_server_info_t *info);

/* The engine's name: "local" or "redis". */
const char *wsh_engine_name(void);

/* Server statistics: counters and gauges kept by every worker in shared
 * memory, summed over all of them by any worker that asks, so that an
 * exporter answers for the whole server (modules/metrics, status,
 * health). The layout follows WSHUB_API_VERSION. */

/* Slots for worker processes alive at once (all generations). A worker
 * started while all are taken counts into a scratch slot that nobody
 * reads, and the master logs it. */
#define WSH_STATS_SLOTS 128

/* Size classes of rooms (bounds in stats.c, the last one unbounded). */
#define WSH_ROOM_SIZES 12

/* Counters and gauges, one uint64 each. */
enum {
    WSH_STAT_CONNECTIONS_ACTIVE = 0,    /* gauge: open WebSockets */
    WSH_STAT_ROOMS,                     /* gauge: rooms with local members */
    WSH_STAT_ENGINE_UP,                 /* gauge: 1 or 0 */
    WSH_STAT_ROOM_SIZES,                /* gauges: those rooms by size class,
                                           WSH_ROOM_SIZES of them */
    WSH_STAT_GAUGES = WSH_STAT_ROOM_SIZES + WSH_ROOM_SIZES,
                                        /* --- counters from here --- */
    WSH_STAT_CONN_ACCEPTED = WSH_STAT_GAUGES,
    WSH_STAT_CONN_REJECTED,
    WSH_STAT_MSG_IN_TEXT,
    WSH_STAT_MSG_IN_BINARY,
    WSH_STAT_MSG_OUT_TEXT,
    WSH_STAT_MSG_OUT_BINARY,
    WSH_STAT_BYTES_IN,
    WSH_STAT_BYTES_OUT,
    WSH_STAT_ENGINE_PUBLISH,
    WSH_STAT_ENGINE_RECONNECTS,
    WSH_STAT_SLOW_CONSUMER_DROPS,
    WSH_STAT_RATE_LIMITED,
    WSH_STAT_ROOM_RESETS,
    WSH_STAT_REFUSED_PENDING,           /* accept: per_ip_pending */
    WSH_STAT_REFUSED_EVICTED,           /* out of sockets: oldest closed */
    WSH_STAT_REFUSED_SOCKETS,           /* out of sockets, all WebSockets */
    WSH_STAT_RELAY_DROPPED_MESSAGE,     /* master: deliveries to a worker
                                         * that does not read */
    WSH_STAT_RELAY_DROPPED_PRESENCE,    /* ... join and leave events */
    WSH_STAT_RELAY_DROPPED_OTHER,       /* ... anything else */
    WSH_STAT_ERRORS,                    /* WSH_ERR_N counters follow */
    WSH_STAT_N = WSH_STAT_ERRORS + 24
};

/* websocket_errors_total{component,error_type}: see stats.c's table. */
enum {
    WSH_ERR_HTTP_BAD_REQUEST = 0,   /* 400, 411 */
    WSH_ERR_HTTP_UNAUTHORIZED,      /* 401 */
    WSH_ERR_HTTP_FORBIDDEN,         /* 403: origin, allow list, module */
    WSH_ERR_HTTP_NOT_FOUND,         /* 404 */
    WSH_ERR_HTTP_BAD_HANDSHAKE,     /* 405, 426, 505 */
    WSH_ERR_HTTP_TIMEOUT,           /* 408 */
    WSH_ERR_HTTP_TOO_LARGE,         /* 413, 414, 431 */
    WSH_ERR_HTTP_RATE_LIMITED,      /* 429 */
    WSH_ERR_HTTP_UNAVAILABLE,       /* 503 */
    WSH_ERR_HTTP_OTHER,
    WSH_ERR_WS_PROTOCOL,            /* we closed with 1002 or 1003 */
    WSH_ERR_WS_INVALID_DATA,        /* 1007 */
    WSH_ERR_WS_TOO_BIG,             /* 1009 */
    WSH_ERR_WS_POLICY,              /* 1008 other than the two below */
    WSH_ERR_WS_RATE_LIMITED,
    WSH_ERR_WS_SLOW_CONSUMER,
    WSH_ERR_WS_PONG_TIMEOUT,
    WSH_ERR_WS_WRITE_TIMEOUT,
    WSH_ERR_WS_INTERNAL,            /* 1011: our fault (ENOMEM...) */
    WSH_ERR_ENGINE_DISCONNECTED,
    WSH_ERR_ENGINE_PUBLISH,
    WSH_ERR_N
};

/* Histograms: fixed bucket bounds (stats.c), counts per bucket and a
 * sum, in micro-units for the duration ones. */
#define WSH_HIST_BUCKETS 12     /* at most; plus one for +Inf */

enum {
    WSH_HIST_DURATION = 0,      /* connection duration, by close reason: */
    WSH_HIST_DURATION_LAST = WSH_HIST_DURATION + 8,
    WSH_HIST_SIZE_IN,           /* message size received */
    WSH_HIST_SIZE_OUT,          /* message size sent */
    WSH_HIST_PROCESSING,        /* module message hook time */
    WSH_HIST_N
};

typedef struct {
    uint64_t bucket[WSH_HIST_BUCKETS + 1];
    uint64_t sum;
} wsh_hist_t;

/* Per Redis shard (engine.redis.shards, or the one server), the first
 * WSH_STATS_SHARDS of them: wshub_redis_*{shard} in /metrics. */
#define WSH_STATS_SHARDS 32

enum {
    WSH_SHARD_STAT_UP = 0,          /* gauge: both connections up */
    WSH_SHARD_STAT_BREAKER_OPEN,    /* gauge: its breaker open or probing */
    WSH_SHARD_STAT_GAUGES,          /* --- counters from here --- */
    WSH_SHARD_STAT_RECONNECTS = WSH_SHARD_STAT_GAUGES,
    WSH_SHARD_STAT_PUBLISHES,       /* PUBLISH and publish scripts */
    WSH_SHARD_STAT_COMMANDS,        /* every command, publishes too */
    WSH_SHARD_STAT_N
};

typedef struct {
    uint64_t    in_use;         /* set by the master */
    uint64_t    pid;
    uint64_t    worker;         /* worker_processes slot */
    uint64_t    generation;
    uint64_t    v[WSH_STAT_N];
    wsh_hist_t  hist[WSH_HIST_N];
    uint64_t    shard[WSH_STATS_SHARDS][WSH_SHARD_STAT_N];
} wsh_stats_slot_t;

/* A consistent sum of all slots for a scrape: counters over every
 * worker that ever ran, gauges over the live ones. */
typedef struct {
    wsh_stats_slot_t total;
    uint64_t         reloads;
    wsh_stats_slot_t live[WSH_STATS_SLOTS];    /* per live worker */
    size_t           nlive;
} wsh_stats_snapshot_t;

/* The sum now, in this worker's copy (about 250 KB, made on the first
 * call), valid until the next call; NULL out of memory. */
const wsh_stats_snapshot_t *wsh_stats_snapshot(void);

/* Gauge I summed over the live workers, without a snapshot. */
uint64_t wsh_stats_gauge(int i);

/* Bounds and names of the histograms and error counters, for an
 * exposition (modules/metrics). */
typedef struct {
    const char     *name;       /* family, without _bucket etc. */
    const char     *help;
    const char     *label;      /* "reason=\"normal\"" or NULL */
    const uint64_t *bounds;     /* ascending, in the stored unit */
    size_t          nbounds;
    unsigned        scale;      /* stored unit per exposed unit */
} wsh_hist_info_t;

const wsh_hist_info_t *wsh_stats_hist_info(int h);

/* The upper bounds of the room size classes, ascending: WSH_ROOM_SIZES - 1
 * of them, the last class having none. */
const uint64_t *wsh_stats_room_bounds(void);

typedef struct {
    const char *component;
    const char *type;
} wsh_err_info_t;

const wsh_err_info_t *wsh_stats_err_info(int err);

/* Resident memory of process PID in bytes (0 if unknown). */
long wsh_stats_rss(uint64_t pid);

/* FNV-1a, 64 bits, of the LEN bytes at P: defined to the bit (no seed),
 * for values every process and node must agree on (an ETag, a shard). */
uint64_t wsh_fnv1a64(const void *p, size_t len);

/* A growing text buffer for a response body: wsh_text_printf appends
 * (0, or -1 out of memory); start from { NULL, 0, 0 } and free(data). */
typedef struct {
    char   *data;
    size_t  len;
    size_t  cap;
} wsh_text_t;

int wsh_text_printf(wsh_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Request accessors (handshake and http hooks). Values are not
 * NUL-terminated: use the lengths. */
const char *wsh_request_method(const wsh_request_t *r, size_t *len);
const char *wsh_request_path(const wsh_request_t *r, size_t *len);
const char *wsh_request_query(const wsh_request_t *r, size_t *len);
const char *wsh_request_header(const wsh_request_t *r, const char *name,
    size_t *len);

/* True for GET and HEAD. */
int wsh_request_is_get(const wsh_request_t *r);

/* A handshake hook for endpoints that serve plain HTTP only: refuses
 * every WebSocket upgrade with 404. */
int wsh_http_only_handshake(wsh_conn_t *c, const wsh_request_t *r);

/* Names of wshub-protocol(7): a client id is 1-64 bytes of
 * [A-Za-z0-9_.:@-], a room 1-128 bytes of [A-Za-z0-9_.:@/-]; a room
 * pattern is a room or a prefix of one ending in '*' ("*": all rooms). */
#define WSH_CLIENT_ID_MAX 64
#define WSH_ROOM_MAX      128

int wsh_valid_client_id(const char *s, size_t len);
int wsh_valid_room(const char *s, size_t len);
int wsh_valid_room_pattern(const char *s, size_t len);
/* True when ROOM is PATTERN, or starts with its prefix. */
int wsh_room_matches(const char *pattern, size_t plen, const char *room,
    size_t len);

/* The request body (POST with Content-Length), or NULL. */
const char *wsh_request_body(const wsh_request_t *r, size_t *len);

/* Send a complete HTTP response from an http or http_head hook. Its
 * Content-Length is LEN; the body is not sent to HEAD, nor with a 304
 * (pass the 200's body: RFC 9110 wants its length). */
int  wsh_http_respond(wsh_conn_t *c, int status, const char *content_type,
    const void *body, size_t len);
/* The same with HEADERS, header lines each ending in CRLF (may be
 * NULL), such as "Allow: POST\r\n" for a 405. */
int  wsh_http_respond_headers(wsh_conn_t *c, int status, const char *headers,
    const char *content_type, const void *body, size_t len);

/* The one reading of boolean words in wshub.yaml, for a module's keys
 * that take a name or off: 1 for on, true and yes; 0 for off, false and
 * no; -1 for anything else. */
int wsh_conf_bool_word(const char *text);

/* M's section of the configuration in force in this process, with
 * every default applied (never NULL for a module that declares one). */
const void *wsh_module_conf(const wsh_module_t *m);

/* The error log's levels, nginx's. */
enum {
    WSH_LOG_EMERG = 0,
    WSH_LOG_ALERT,
    WSH_LOG_CRIT,
    WSH_LOG_ERR,
    WSH_LOG_WARN,
    WSH_LOG_NOTICE,
    WSH_LOG_INFO,
    WSH_LOG_DEBUG
};

/* Log through the server's error log at LEVEL (WSH_LOG_*); C may be
 * NULL. */
void wsh_module_log(int level, const wsh_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* WSHUB_H */
