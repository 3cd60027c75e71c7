/* conn_int.h -- what the files of a connection share (src/net only).
 *
 * A connection is one struct (net/conn.h) served by conn.c (accept,
 * close, free, the io callbacks), conn_timer.c (deadlines), conn_http.c
 * (requests and answers), conn_admit.c (the checks before an upgrade)
 * and conn_ws.c (the WebSocket session). Their calls to each other are
 * declared here; the two helpers on the paths that write are static
 * inline, so the split costs no call there.
 */
#ifndef WSH_CONN_INT_H
#define WSH_CONN_INT_H

#include "net/conn.h"

/* conn.c */

/* Log about C: its id and peer address in the line. */
void wsh_conn_log(int level, const wsh_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Take C out of service (logging WHY if not NULL); freed next turn. */
void wsh_conn_finalize(wsh_conn_t *c, const char *why);

/* Close C once its output has left: LINGER shuts the write side and
 * waits for the peer's EOF first. */
void wsh_conn_after_flush(wsh_conn_t *c, bool linger);

/* The access log line of an HTTP answer or (WS) a closed WebSocket. */
void wsh_conn_access_log(wsh_conn_t *c, int status, size_t body, bool ws);

/* Input for C, whatever its state (the io layer's read callback). */
void wsh_conn_io_read(wsh_io_t *io, u_char *p, size_t len);

/* Queue raw bytes (a frame header and its payload). */
static inline bool
conn_output(wsh_conn_t *c, const void *p1, size_t n1, const void *p2,
    size_t n2)
{
    if (wsh_io_write(&c->io, p1, n1) != 0
        || wsh_io_write(&c->io, p2, n2) != 0)
    {
        c->close_code = WSH_CLOSE_INTERNAL;
        wsh_conn_finalize(c, "out of memory for output");
        return false;
    }
    return true;
}

/* conn_timer.c */

/* Put C at the end of the timer queue Q driven by EV, due in AFTER ms. */
void wsh_conn_timer_add(wsh_conn_t *c, wsh_queue_t *q, struct event *ev,
    wsh_msec_t after);

/* C's next request is due within handshake_timeout. */
void wsh_conn_handshake_deadline(wsh_conn_t *c);

/* C's close is over within close_timeout. */
void wsh_conn_close_deadline(wsh_conn_t *c);

/* Take C off whichever timer queue holds it. */
static inline void
conn_timer_unlink(wsh_conn_t *c)
{
    if (wsh_queue_linked(&c->timer_link)) {
        wsh_queue_remove(&c->timer_link);
    }
}

/* conn_http.c */

/* Input for C before the upgrade; returns the bytes used. */
size_t wsh_conn_http_input(wsh_conn_t *c, const u_char *p, size_t len);

/* Answer C's request with STATUS and a text body saying WHY, logged. */
void wsh_conn_http_error(wsh_conn_t *c, int status, const char *why);

/* The same with EXTRA header lines, not logged (the caller decides how
 * often). */
void wsh_conn_http_answer(wsh_conn_t *c, int status, const char *extra,
    const char *why);

/* Hand a plain HTTP request to the endpoint's module: its body first. */
void wsh_conn_http_serve(wsh_conn_t *c);

/* conn_admit.c */

/* C's request head is complete: the admission checks, in order, then
 * the upgrade, unless one of them answered. */
void wsh_conn_admit(wsh_conn_t *c);

/* conn_ws.c */

/* Input for an open or closing WebSocket; returns the bytes used. */
size_t wsh_conn_ws_input(wsh_conn_t *c, u_char *p, size_t len);

/* The 101 with Sec-WebSocket-Accept ACCEPT: C is a WebSocket now. */
void wsh_conn_upgrade(wsh_conn_t *c, const char *accept);

/* Queue one frame on C; false when it was not (dropped or closed). */
bool wsh_conn_send_frame(wsh_conn_t *c, int opcode, const void *data,
    size_t len);

/* Queue C's close frame with CODE and REASON (cut to fit). */
void wsh_conn_send_close(wsh_conn_t *c, int code, const char *reason);

#endif /* WSH_CONN_INT_H */
