/* engine.h -- pub/sub and presence across workers: the worker's side.
 *
 * Modules use the topic functions of src/wshub.h (wsh_topic_join,
 * wsh_publish, ...). Behind them each worker keeps its own topic index
 * (topic.h) and delivers to local members directly; the engine carries
 * what other workers need: with the local engine, frames over the
 * worker's channel (local.h) to the master's relay (relay.h), which fans
 * them out and keeps presence; with Redis, commands (redis.h).
 */
#ifndef WSH_ENGINE_H
#define WSH_ENGINE_H

#include "core/core.h"
#include "core/conf.h"
#include "engine/wire.h"
#include "wshub.h"

#include <sys/uio.h>

/* An engine: how a worker reaches the other workers (and hosts). Every
 * operation is fire-and-forget; answers come back through the
 * wsh_engine_* event functions below. FLAGS of publish are the WSH_ENG_F_*
 * of wire.h (DELIVERED: some local member got it; CONFIRM: report the
 * result of a client-topic publish even when found). */
typedef struct {
    const char *name;
    int  (*init_worker)(void);
    void (*exit_worker)(void);
    void (*subscribe)(int kind, const char *name, size_t len);
    void (*unsubscribe)(int kind, const char *name, size_t len);
    void (*publish)(int kind, const char *name, size_t len, int flags,
                    const char *sender, size_t slen, uint64_t conn_id,
                    const void *data, size_t dlen);
    /* Presence: RULE (the room's, from its module) bounds what a join
     * or leave costs: the member list is sent while the room is within
     * list_max, the event while within announce_max. */
    void (*join)(const char *room, size_t len, const char *id, size_t idlen,
                 uint64_t conn_id, const wsh_presence_rule_t *rule);
    void (*leave)(const char *room, size_t len, const char *id,
                  size_t idlen, const wsh_presence_rule_t *rule);
    /* A page of ROOM's ids for CONN_ID's TICKET (wsh_topic_presence),
     * answered later with wsh_engine_page; -1 (and no answer) when it
     * cannot be asked now (Redis is down). */
    int  (*who)(const char *room, size_t len, uint64_t conn_id,
                uint64_t ticket, const char *cursor, size_t clen,
                size_t limit);
    /* True while the engine reaches the other workers and hosts (NULL:
     * always). */
    bool (*up)(void);
    /* The engine_* fields of INFO past engine_up (NULL: none). */
    void (*info)(wsh_server_info_t *info);
    /* Rooms with history and acknowledged publishes (NULL: this
     * engine keeps no history; such rooms then behave as plain rooms
     * and a join with since is answered recovered: false).
     * publish_acked hands a message to the sequencer, which checks
     * KEY (NULL: none) against the idempotency window, numbers the
     * message when ROOM keeps history, and delivers it to every
     * worker, this one included (wsh_engine_deliver_seq for rooms,
     * skipping CONN_ID; wsh_engine_deliver for the rest): the
     * publisher's worker does not deliver early, so all members see one
     * order and a duplicate reaches nobody. TICKET (0: none) is
     * answered with wsh_engine_acked once the sequencer has it.
     * history asks for CONN_ID's position in ROOM (after the worker
     * subscribed to it), answered with wsh_engine_replay for each
     * missed message, then wsh_engine_position with the same JOIN (a
     * connection that left and joined again tells answers apart by it),
     * all before the members answer of the join sent after it. */
    void (*publish_acked)(int kind, const char *name, size_t len,
                          uint64_t conn_id, uint64_t ticket,
                          const char *key, size_t klen, const void *data,
                          size_t dlen);
    void (*history)(const char *room, size_t len, uint64_t conn_id,
                    uint64_t join, const wsh_since_t *since);
} wsh_engine_ops_t;

extern const wsh_engine_ops_t wsh_engine_local;
extern const wsh_engine_ops_t wsh_engine_redis;

/* A message encoded once as a WebSocket frame and queued by reference
 * on every recipient (net/conn.h): the engine only passes it on. */
typedef struct wsh_shared_frame_s wsh_shared_frame_t;

/* A connection's membership of a topic (engine/topic.h). */
typedef struct wsh_member_s wsh_member_t;

/* The connections that join topics, which the engine knows only as the
 * public API's wsh_conn_t, and through these operations: net implements
 * them (net/conn.h, net/conn_member.h) and the worker hands them to
 * wsh_engine_init_worker, so the engine never sees a connection's
 * insides. A topic's members are all reached through them. */
typedef struct {
    /* A frame of DATA with one reference held by the caller; NULL on
     * ENOMEM. */
    wsh_shared_frame_t *(*frame)(int opcode, const void *data, size_t len);
    void (*frame_hold)(wsh_shared_frame_t *f);
    void (*frame_release)(wsh_shared_frame_t *f);
    /* Queue F on C: 0, or -1 when it was not (C is not an open
     * WebSocket, or over send_buffer: dropped, or closing), or 1 when
     * C is the connection EXCEPT (a publisher, skipped; 0: none). The
     * id is compared on the far side: one call a recipient, in the
     * loop that fans a message out. */
    int  (*deliver)(wsh_conn_t *c, wsh_shared_frame_t *f, uint64_t except);
    /* C is an open WebSocket / C is closed (freed on the next loop
     * turn: it hears no more answers). */
    bool (*open)(const wsh_conn_t *c);
    bool (*closed)(const wsh_conn_t *c);
    /* The module that C's hooks are called on. */
    const wsh_module_t *(*module)(const wsh_conn_t *c);
    /* The engine's state kept in C, the engine's to change even where
     * C is const: its memberships (the first, or NULL: wsh_member_t's
     * owner_next chains the others), its publishes awaiting the
     * sequencer. */
    wsh_member_t **(*topics)(const wsh_conn_t *c);
    uint16_t     *(*acks)(const wsh_conn_t *c);
    /* The connection with id ID, or NULL (a walk: rare answers only). */
    wsh_conn_t *(*find)(uint64_t id);
} wsh_engine_conn_ops_t;

/* The worker's, from wsh_engine_init_worker (recovery.c uses them). */
extern const wsh_engine_conn_ops_t *wsh_engine_conns;

/* Worker side (engine.c). CONNS must outlive the worker. */
int  wsh_engine_init_worker(const wsh_engine_conn_ops_t *conns);
void wsh_engine_exit_worker(void);

/* Whether the engine is connected (health checks); its name is
 * public (wsh_engine_name, wshub.h). */
bool wsh_engine_up(void);
/* The engine's breaker state and connection counts into INFO. */
void wsh_engine_info(wsh_server_info_t *info);

/* A connection is being freed: leave every topic it joined. */
void wsh_engine_conn_closed(wsh_conn_t *c);

/* Events from the engine. */

/* A publish from elsewhere for this worker's members of a topic. */
void wsh_engine_deliver(int kind, const char *name, size_t len,
    const void *data, size_t dlen);
/* Append ID to a list of ids as wsh_engine_members and wsh_engine_page
 * take them at *P: (uint16 length in host order, bytes) pairs. */
static inline void
wsh_engine_put_id(u_char **p, const void *id, size_t len)
{
    uint16_t l = (uint16_t) len;

    memcpy(*p, &l, 2);
    memcpy(*p + 2, id, len);
    *p += 2 + len;
}

/* The member ids of ROOM for the joining connection CONN_ID, COUNT in
 * all; IDS holds (uint16 length in host order, bytes) pairs, none when
 * the room is past its list_max. */
void wsh_engine_members(const char *room, size_t len, uint64_t conn_id,
    const u_char *ids, size_t idslen, size_t count);
/* The answer to CONN_ID's TICKET (who) about ROOM: COUNT ids in it, a
 * page of them in IDS (as for wsh_engine_members), the next page's
 * CURSOR ("0": none); FAILED: the engine could not answer. */
void wsh_engine_page(const char *room, size_t len, uint64_t conn_id,
    uint64_t ticket, bool failed, size_t count, const u_char *ids,
    size_t idslen, const char *cursor, size_t clen);
/* ID appeared in or left ROOM; EXCLUDE_CONN is the joining connection if
 * it is on this worker, else 0. */
void wsh_engine_presence(const char *room, size_t len, const char *id,
    size_t idlen, bool joined, uint64_t exclude_conn);
/* Outcome of a client-topic publish by CONN_ID (client id SENDER). */
void wsh_engine_result(const char *to, size_t len, const char *sender,
    size_t slen, uint64_t conn_id, bool found);

/* A message of a room with history from the sequencer, DATA as
 * published: OFFSET in EPOCH (0: it is not in the history, deliver as
 * is), for every local member but the connection EXCLUDE_CONN (its
 * sender, if local), formatted once by their module (numbered). */
void wsh_engine_deliver_seq(const char *room, size_t len,
    uint64_t exclude_conn, uint64_t offset, const char *epoch, size_t elen,
    const void *data, size_t dlen);
/* One message CONN_ID missed in ROOM, in offset order: DATA as
 * published, OFFSET in EPOCH. */
void wsh_engine_replay(const char *room, size_t len, uint64_t conn_id,
    uint64_t offset, const char *epoch, size_t elen, const void *data,
    size_t dlen);

/* DATA (*DLEN bytes), OFFSET in EPOCH of ROOM, as MODULE's members get
 * it (its numbered hook): DATA itself when the module leaves it as is
 * (or OFFSET is 0), else the engine's buffer, valid until the next
 * call, with *DLEN its length. NULL (logged) out of memory. Worker
 * only. */
const void *wsh_engine_numbered(const wsh_module_t *module,
    const char *room, size_t len, uint64_t offset, const char *epoch,
    size_t elen, const void *data, size_t *dlen);
/* CONN_ID's position in ROOM for its request JOIN: the room's last
 * OFFSET and EPOCH, whether it keeps history and whether every missed
 * message was replayed. */
void wsh_engine_position(const char *room, size_t len, uint64_t conn_id,
    uint64_t join, bool history, bool recovered, uint64_t offset, const char *epoch,
    size_t elen);

/* The sequencer's answer to TICKET, a publish_acked of CONN_ID to a
 * topic of KIND: OFFSET
 * in EPOCH (0: not numbered), FLAGS WSH_ENG_F_FOUND, F_DUPLICATE; FAILED
 * when it never reached the sequencer (the engine is down). */
void wsh_engine_acked(uint64_t conn_id, uint64_t ticket, int kind,
    bool failed, uint64_t offset, const char *epoch, size_t elen, int flags);

/* The messages of ROOM delivered here have a hole, or its history was
 * lost: every local member is told where to rejoin from (SINCE) and
 * taken out of the room, to come back with since. */
void wsh_engine_room_gap(const char *room, size_t len,
    const wsh_room_position_t *since);
/* Messages for this worker were lost (the master dropped them): every
 * room with history here gets wsh_engine_room_gap. */
void wsh_engine_gap_all(void);

#endif /* WSH_ENGINE_H */
