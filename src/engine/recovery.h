/* recovery.h -- the worker side of room history (see recovery.c).
 *
 * Used by engine.c on the memberships of engine/topic.h: a join of a
 * room with history holds the room's live messages until the engine
 * has told the connection's position and replayed what it missed.
 */
#ifndef WSH_RECOVERY_H
#define WSH_RECOVERY_H

#include "engine/engine.h"
#include "engine/topic.h"
#include "wshub.h"

/* M joins a room: with HISTORY its position is asked of the engine, and
 * live messages are held until then; SINCE may be NULL. WSH_ERROR on
 * ENOMEM. */
int  wsh_recovery_start(wsh_member_t *m, const wsh_since_t *since,
    bool history);

/* The id of M's request for its position (engine.h history). */
uint64_t wsh_recovery_join(const wsh_member_t *m);

/* True while M waits for its position: a members answer is then one
 * for an earlier join of the same connection. */
bool wsh_recovery_waiting(const wsh_member_t *m);

/* A live message OFFSET for M: false when M is not joining (deliver it),
 * else held, or dropped when the replay has it already. */
bool wsh_recovery_live(wsh_member_t *m, uint64_t offset,
    wsh_shared_frame_t *f);

/* After the members hook answered M's join: send what was held, in
 * order, and deliver live from now on. */
void wsh_recovery_finish(wsh_member_t *m);

/* M leaves or closes during its join. */
void wsh_recovery_free(wsh_member_t *m);

/* OFFSET in EPOCH is being delivered in ROOM here: the position of its
 * members. True when it does not follow the last one delivered here: a
 * hole (messages were lost on their way here) or a new epoch (the
 * history was lost); *SINCE is then where the members should rejoin
 * from to get what they missed: the last position, or the new epoch's
 * start. */
bool wsh_recovery_advance(const char *room, size_t len, uint64_t offset,
    const char *epoch, size_t elen, wsh_room_position_t *since);
/* A join learned ROOM's position: it is its members' position if the
 * room had none here. */
void wsh_recovery_seed(const char *room, size_t len, uint64_t offset,
    const char *epoch, size_t elen);
/* ROOM's position as the engine tells it after a reconnect: the test of
 * wsh_recovery_advance, without moving: a position past the last
 * delivered, or in another epoch, is a hole. False when ROOM has no
 * position here. */
bool wsh_recovery_check(const char *room, size_t len, uint64_t offset,
    const char *epoch, size_t elen, wsh_room_position_t *since);
/* Call CB for every room with history that has members here, with
 * their position; CB may take the room's members out. */
void wsh_recovery_each_room(void (*cb)(const char *room, size_t len,
    const wsh_room_position_t *pos));

/* ROOM has no local member any more. */
void wsh_recovery_room_gone(const char *room, size_t len);

void wsh_recovery_exit(void);

#endif /* WSH_RECOVERY_H */
