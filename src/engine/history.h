/* history.h -- room history: offsets, epochs and the bounded ring.
 *
 * Rooms with a history rule (the room_history hook of the module whose
 * rooms they are: the hub's hub.history) keep their last messages so that a
 * client coming back (network blip, reload) can ask for what it missed
 * with join_room "since". The sequencer (the master's relay for the
 * local engine) numbers every message of such a room with a strictly
 * increasing offset within the room's epoch, a random id that changes
 * whenever the history is lost (the room was forgotten, the master
 * restarted). Offset and epoch travel beside the message, which is kept
 * and carried as published. This file is the pure part: rules, the
 * per-room ring, recovery decisions; it knows no process, socket or
 * message format, so the unit tests drive it directly with their own
 * clock.
 */
#ifndef WSH_HISTORY_H
#define WSH_HISTORY_H

#include "core/core.h"
#include "core/conf.h"

#define WSH_HISTORY_EPOCH_LEN 16            /* hex digits */

typedef struct {
    uint64_t    offset;
    wsh_msec_t  time;                       /* when it was sequenced */
    size_t      len;
    u_char      data[];                     /* as published */
} wsh_history_entry_t;

typedef struct {
    char                  epoch[WSH_HISTORY_EPOCH_LEN + 1];
    uint64_t              offset;           /* the last one given, 0: none */
    wsh_history_entry_t **ring;             /* cap slots, n used from head */
    size_t                cap;
    size_t                head;
    size_t                n;
    wsh_msec_t            active;           /* last publish or member */
} wsh_history_room_t;

typedef struct wsh_history_s wsh_history_t;

/* How a room keeps history: its last SIZE messages, each for TTL. */
typedef struct {
    size_t      size;
    wsh_msec_t  ttl;
} wsh_history_rule_t;

/* ROOM's rule under CF: asked of every module with a room_history hook
 * (wshub.h), with its section of CF. False: the room keeps no history. */
bool wsh_history_rule(const wsh_conf_t *cf, const char *room, size_t len,
    wsh_history_rule_t *rule);

/* All rooms' histories (one per sequencer); NULL on ENOMEM. */
wsh_history_t *wsh_history_new(void);
void wsh_history_free(wsh_history_t *h);

/* ROOM's history, created with a new epoch when CREATE is set and it has
 * none; NULL if absent (or ENOMEM). Touching marks it active at NOW. */
wsh_history_room_t *wsh_history_room(wsh_history_t *h, const char *room,
    size_t len, bool create, wsh_msec_t now);

/* Sequence DATA in R under RULE: the next offset, stored with DATA as
 * published (whatever its format: the module of the room's members
 * writes offset and epoch into it on delivery, wshub.h numbered) in the
 * ring, which keeps the newest rule->size entries. Returns the entry
 * (owned by R, valid until the next change of R), or NULL on ENOMEM, in
 * which case nothing was sequenced. */
const wsh_history_entry_t *wsh_history_append(wsh_history_room_t *r,
    const wsh_history_rule_t *rule, const void *data, size_t dlen,
    wsh_msec_t now);

/* Drop R's entries older than RULE's ttl at NOW. */
void wsh_history_trim(wsh_history_room_t *r, const wsh_history_rule_t *rule,
    wsh_msec_t now);

/* Whether a client that saw everything up to SINCE in EPOCH (ELEN 0:
 * the current epoch) can get every message it missed from R: the epoch
 * is R's and the ring still holds every offset after SINCE. Then *FIRST
 * is the ring index of the first missed entry (== r->n when none). */
bool wsh_history_recoverable(const wsh_history_room_t *r, uint64_t since,
    const char *epoch, size_t elen, size_t *first);

/* The I-th entry from the oldest (I < r->n). */
const wsh_history_entry_t *wsh_history_at(const wsh_history_room_t *r,
    size_t i);

/* Trim every room by its rule (RULE(room, len, arg, &rule), false: none)
 * at NOW and forget the rooms that have no rule any more, or whose ring
 * is empty, that have no member (HAS_MEMBERS(room, len, arg) false) and
 * were not active for their ttl. Returns how many rooms remain. */
size_t wsh_history_sweep(wsh_history_t *h, wsh_msec_t now,
    bool (*rule)(const char *room, size_t len, void *arg,
                 wsh_history_rule_t *out),
    bool (*has_members)(const char *room, size_t len, void *arg), void *arg);

#endif /* WSH_HISTORY_H */
