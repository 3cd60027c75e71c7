/* conn_member.h -- a connection as a member of the engine's topics.
 *
 * The engine knows connections only as the public API's wsh_conn_t:
 * what else it may ask of one is here, and the worker hands it over
 * (engine.h, wsh_engine_conn_ops_t) with the shared frames of conn.h,
 * so that the engine never includes net/conn.h. Worker only.
 */
#ifndef WSH_CONN_MEMBER_H
#define WSH_CONN_MEMBER_H

#include "net/conn.h"

/* One more reference to F, for a member that holds it for later. */
void wsh_shared_frame_hold(wsh_shared_frame_t *f);

/* C is an open WebSocket: its module may hear a members answer. */
bool wsh_conn_is_open(const wsh_conn_t *c);

/* C is closed, and freed on the next loop turn: its module hears no
 * more answers. */
bool wsh_conn_is_closed(const wsh_conn_t *c);

/* The module of C's endpoint. */
const wsh_module_t *wsh_conn_module(const wsh_conn_t *c);

/* The engine's state kept in C, the engine's to change even where C is
 * const: its memberships (the first; net knows no more of them) and
 * its publishes awaiting the sequencer. */
struct wsh_member_s **wsh_conn_topics(const wsh_conn_t *c);
uint16_t *wsh_conn_acks(const wsh_conn_t *c);

/* The connection with id ID, or NULL: a walk over all of them, for the
 * rare answers to a connection in no topic. */
wsh_conn_t *wsh_conn_find(uint64_t id);

#endif /* WSH_CONN_MEMBER_H */
