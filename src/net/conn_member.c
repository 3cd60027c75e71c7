/* conn_member.c -- a connection as a member of the engine's topics.
 *
 * The accessors of conn_member.h: each reads one field of the
 * connection, so that its layout stays net's own.
 */
#include "net/conn_member.h"
#include "core/runtime.h"

void
wsh_shared_frame_hold(wsh_shared_frame_t *f)
{
    f->refs++;
}

bool
wsh_conn_is_open(const wsh_conn_t *c)
{
    return c->state == WSH_CONN_WS;
}

bool
wsh_conn_is_closed(const wsh_conn_t *c)
{
    return c->state == WSH_CONN_DEAD;
}

const wsh_module_t *
wsh_conn_module(const wsh_conn_t *c)
{
    return c->endpoint->module;
}

struct wsh_member_s **
wsh_conn_topics(const wsh_conn_t *c)
{
    return (struct wsh_member_s **) &c->topics;
}

uint16_t *
wsh_conn_acks(const wsh_conn_t *c)
{
    return (uint16_t *) &c->acks;
}

wsh_conn_t *
wsh_conn_find(uint64_t id)
{
    wsh_queue_t *q;
    wsh_conn_t *c;

    for (q = wsh_worker.conns.next; q != &wsh_worker.conns; q = q->next) {
        c = wsh_queue_data(q, wsh_conn_t, link);
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}
