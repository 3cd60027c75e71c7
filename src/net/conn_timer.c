/* conn_timer.c -- a connection's deadlines: handshake, ping, drain, close.
 *
 * Timers cost no memory per connection: handshake deadlines and keepalive
 * pings are FIFO queues (every connection has the same timeout, so the
 * head is always the next to expire) each driven by one worker timer.
 * Silence (pong_wait) is checked when a ping is due; a stuck writer
 * (write_wait) is net/io.c's; a closing connection's close_timeout is
 * another FIFO queue, and a drain spreads the WebSockets' closes over a
 * fourth.
 */
#include "net/conn.h"
#include "net/conn_int.h"
#include "core/stats.h"
#include "core/runtime.h"

static struct timeval
conn_tv(wsh_msec_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t) (ms / 1000);
    tv.tv_usec = (suseconds_t) ((ms % 1000) * 1000);
    return tv;
}

/* Deadlines are kept in 32 bits, msec mod 2^32 (timeouts are far
 * shorter than the 49 days that wrap around): is NOW before AT? */
static bool
conn_before(wsh_msec_t now, uint32_t at)
{
    return (int32_t) (at - (uint32_t) now) > 0;
}

/* Arm a FIFO timer queue's event for its head, if not armed yet. */
static void
conn_timer_arm(wsh_queue_t *q, struct event *ev)
{
    wsh_conn_t *head;
    wsh_msec_t now;
    struct timeval tv;

    if (wsh_queue_empty(q) || evtimer_pending(ev, NULL)) {
        return;
    }
    head = wsh_queue_data(wsh_queue_head(q), wsh_conn_t, timer_link);
    now = wsh_monotonic_msec();
    tv = conn_tv(conn_before(now, head->deadline)
                 ? (uint32_t) (head->deadline - (uint32_t) now) : 0);
    evtimer_add(ev, &tv);
}

/* The head of a FIFO timer queue, unlinked, if its deadline has come. */
static wsh_conn_t *
conn_timer_due(wsh_queue_t *q, wsh_msec_t now)
{
    wsh_conn_t *c;

    if (wsh_queue_empty(q)) {
        return NULL;
    }
    c = wsh_queue_data(wsh_queue_head(q), wsh_conn_t, timer_link);
    if (conn_before(now, c->deadline)) {
        return NULL;
    }
    wsh_queue_remove(&c->timer_link);
    return c;
}

/* Put C at the end of timer queue Q (every entry of a queue waits as
 * long: AFTER msec), driven by EV. */
void
wsh_conn_timer_add(wsh_conn_t *c, wsh_queue_t *q, struct event *ev,
    wsh_msec_t after)
{
    conn_timer_unlink(c);
    c->deadline = (uint32_t) (wsh_monotonic_msec() + after);
    wsh_queue_insert_tail(q, &c->timer_link);
    conn_timer_arm(q, ev);
}

void
wsh_conn_handshake_deadline(wsh_conn_t *c)
{
    wsh_conn_timer_add(c, &wsh_worker.handshakes, wsh_worker.handshake_timer,
                       wsh_worker.conf->handshake_timeout);
}

/* The closing handshake, flushing and lingering all end by close_timeout
 * at the latest. */
void
wsh_conn_close_deadline(wsh_conn_t *c)
{
    wsh_conn_timer_add(c, &wsh_worker.closes, wsh_worker.close_timer,
                       wsh_worker.conf->close_timeout);
}

void
wsh_conn_close_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.closes, now)) != NULL) {
        wsh_conn_finalize(c, c->state == WSH_CONN_LINGER
                             ? NULL : "close_timeout expired");
    }
    conn_timer_arm(&wsh_worker.closes, wsh_worker.close_timer);
}

void
wsh_conn_handshake_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.handshakes, now)) != NULL) {
        if (c->awaiting) {
            wsh_conn_http_error(c, 504, "the answer did not come within "
                                "handshake_timeout");
        } else if (c->req != NULL && c->req->len > 0) {
            wsh_conn_http_error(c, 408, "handshake_timeout expired");
        } else {
            wsh_conn_finalize(c, c->status ? NULL : "handshake_timeout expired "
                              "before a request");
        }
    }
    conn_timer_arm(&wsh_worker.handshakes, wsh_worker.handshake_timer);
}

void
wsh_conn_ping_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.pings, now)) != NULL) {
        /* Silence is checked when a ping is due (pong_wait is longer
         * than ping_period): a live client has answered the last one. */
        if ((uint32_t) ((uint32_t) now - c->last_rx)
            >= wsh_worker.conf->pong_wait)
        {
            wsh_stat_error(WSH_ERR_WS_PONG_TIMEOUT);
            wsh_conn_finalize(c, "pong_wait expired: no data from the client");
            continue;
        }
        if (!wsh_conn_send_frame(c, WSH_WS_OP_PING, NULL, 0)) {
            continue;
        }
        c->deadline = (uint32_t) (now + wsh_worker.conf->ping_period);
        wsh_queue_insert_tail(&wsh_worker.pings, &c->timer_link);
    }
    conn_timer_arm(&wsh_worker.pings, wsh_worker.ping_timer);
}

/* A draining WebSocket's turn: the module's last word, then close. */
static void
conn_drain_one(wsh_conn_t *c)
{
    int code = wsh_worker.drain_code;

    if (c->endpoint->module->shutdown != NULL) {
        c->endpoint->module->shutdown(c, code);
    }
    wsh_conn_close(c, code, code == WSH_CLOSE_RESTART ? "server restarting"
                                                      : "server shutting down");
}

void
wsh_conn_drain_timer(evutil_socket_t fd, short what, void *arg)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_conn_t *c;

    while ((c = conn_timer_due(&wsh_worker.drains, now)) != NULL) {
        if (c->state == WSH_CONN_WS) {
            conn_drain_one(c);
        }
    }
    conn_timer_arm(&wsh_worker.drains, wsh_worker.drain_timer);
}

/* Close the WebSockets evenly over shutdown_spread, in the order they
 * connected, so that a reload does not send every client back in the
 * same millisecond; idle HTTP connections go at once. */
void
wsh_conn_drain_all(int code)
{
    wsh_msec_t now = wsh_monotonic_msec();
    wsh_msec_t spread = wsh_worker.conf->shutdown_spread;
    unsigned n = wsh_worker.nwebsockets, i = 0;
    wsh_queue_t *q, *next;
    wsh_conn_t *c;

    (void) code;
    for (q = wsh_queue_head(&wsh_worker.conns); q != &wsh_worker.conns;
         q = next)
    {
        next = q->next;
        c = wsh_queue_data(q, wsh_conn_t, link);
        if (c->state == WSH_CONN_WS) {
            conn_timer_unlink(c);       /* no more pings */
            c->deadline = (uint32_t) (now + (n ? spread * i++ / n : 0));
            wsh_queue_insert_tail(&wsh_worker.drains, &c->timer_link);
        }
    }
    /* A connection that has not sent its first request yet is served. */
    wsh_conn_close_idle(false);
    wsh_conn_drain_timer(-1, 0, NULL);
}
