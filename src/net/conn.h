/* conn.h -- one client connection from accept to close. */
#ifndef WSH_CONN_H
#define WSH_CONN_H

#include "core/core.h"
#include "core/conf.h"
#include "core/cycle.h"
#include "net/http.h"
#include "ws/deflate.h"
#include "net/identity.h"
#include "net/io.h"
#include "ws/frame.h"
#include "wshub.h"

#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>

enum {
    WSH_CONN_HTTP = 0,      /* reading a request head */
    WSH_CONN_WS,            /* WebSocket open */
    WSH_CONN_CLOSING,       /* our close frame sent, awaiting the peer's */
    WSH_CONN_FLUSHING,      /* last bytes going out, then linger or close */
    WSH_CONN_LINGER,        /* write side shut, discarding until EOF */
    WSH_CONN_DEAD           /* on the worker's dead list */
};

struct wsh_conn_s {
    wsh_io_t              io;           /* first: io callbacks cast back */
    uint64_t              id;
    wsh_queue_t           link;         /* wsh_worker.conns */
    wsh_queue_t           timer_link;   /* handshakes or pings queue */
    wsh_msec_t            start;
    const wsh_endpoint_t *endpoint;
    void                 *data;         /* the module's */
    union {                             /* by the websocket bit: */
        wsh_request_t    *req;          /* HTTP: the request being read */
        wsh_ws_t         *ws;           /* only while a frame is partial */
    };

    uint64_t              bytes_in;
    uint64_t              bytes_out;
    uint32_t              msgs_in;
    uint32_t              msgs_out;

    union {
        struct sockaddr     sa;
        struct sockaddr_in  sin;
        struct sockaddr_in6 sin6;
    }                     peer;
    uint32_t              last_rx;      /* for pong_wait, msec mod 2^32 */

    struct wsh_member_s  *topics;       /* engine memberships (the
                                         * engine's topic.h), the first */
    wsh_identity_t       *identity;     /* NULL: not authenticated */
    /* The handshake slot (net/pending.h) until the upgrade, then the
     * WebSocket's: wsh_pending_remove() zeroes the slot in between, and
     * frees it before the connection is freed. */
    union {
        struct {
            wsh_queue_t   pending_link; /* its address's handshakes */
            struct wsh_pending_ip_s *pending; /* NULL: not counted */
        };
        struct {
            wsh_deflate_t *deflate;     /* permessage-deflate, or NULL */
            float         rate_tokens;  /* rate_limit bucket */
            uint32_t      rate_last;    /* msec mod 2^32 */
        };
    };

    uint16_t              status;       /* HTTP status of the last answer */
    uint16_t              close_code;
    uint8_t               state;
    uint8_t               listener;     /* its index in conf->listen */
    uint8_t               close_sent:1;
    uint8_t               close_received:1;
    uint8_t               linger:1;     /* shut down writes after flushing */
    uint8_t               opened:1;     /* module open() was called */
    uint8_t               keep_alive:1; /* HTTP: read another request */
    uint8_t               limited:1;    /* counted by net/limit.c */
    uint8_t               websocket:1;  /* upgraded: counted as open */
    uint8_t               dropped:1;    /* slow: messages were skipped */
    uint8_t               rate_limited:1; /* over rate_limit */
    uint8_t               rate_started:1;
    uint8_t               awaiting:1;   /* HTTP: the module answers later */
    int16_t               limit_entry;  /* net/limit.c address entry */
    uint16_t              acks;         /* publishes awaiting the engine */
    uint32_t              deadline;     /* timer queue's, msec mod 2^32 */
};

/* A server frame built once and queued by reference on any number of
 * connections: its bytes live in an output block (net/io.h), where
 * frames built in the same loop turn follow each other, so a recipient
 * of several gets them in one iovec. */
typedef struct wsh_shared_frame_s wsh_shared_frame_t;

struct wsh_shared_frame_s {
    unsigned            refs;
    /* Deliveries not yet in the server's counters: counted once per
     * frame (wsh_shared_frame_release), not once per recipient. */
    unsigned            unstated;
    size_t              payload;    /* message bytes, for the counters */
    size_t              len;
    /* The permessage-deflate variant, built on first need for the
     * connections that compress without context takeover. */
    wsh_shared_frame_t *deflated;
    bool                deflate_tried;
    wsh_oblock_t       *block;
    u_char             *data;
};

/* A text or binary frame of DATA, with one reference held by the
 * caller. NULL on ENOMEM. */
wsh_shared_frame_t *wsh_shared_frame_new(int opcode, const void *data,
    size_t len);
void wsh_shared_frame_release(wsh_shared_frame_t *f);

/* Queue F on C. When C's output is over send_buffer, the message is
 * dropped (slow_consumer: drop) or C is closed with 1008; returns -1
 * then, and when C is not an open WebSocket. */
int wsh_conn_send_shared(wsh_conn_t *c, wsh_shared_frame_t *f);
/* The same for the engine's members (wsh_engine_conn_ops_t): 1, and
 * nothing sent, when C is the connection EXCEPT (a publisher skipped). */
int wsh_conn_deliver(wsh_conn_t *c, wsh_shared_frame_t *f, uint64_t except);

/* Take over a socket accepted on LS (worker only); on a TLS listener the
 * TLS handshake comes first, within handshake_timeout. */
void wsh_conn_accept(int fd, const struct sockaddr *sa, socklen_t len,
    const wsh_listening_t *ls);

/* Close every connection now with 1001 (fast stop). */
void wsh_conn_terminate_all(void);

/* Begin closing every connection with CODE (graceful drain). */
void wsh_conn_drain_all(int code);

/* Close the HTTP connections that have nothing under way: no request
 * being read or awaiting its answer, no answer being written (those
 * are closed after it). FRESH: those that have not sent a request yet
 * too. */
void wsh_conn_close_idle(bool fresh);

/* Free the connections closed since the last loop turn. */
void wsh_conn_free_dead(void);

/* Timer queue callbacks (worker.c arms them). */
void wsh_conn_handshake_timer(evutil_socket_t fd, short what, void *arg);
void wsh_conn_ping_timer(evutil_socket_t fd, short what, void *arg);
void wsh_conn_drain_timer(evutil_socket_t fd, short what, void *arg);
void wsh_conn_close_timer(evutil_socket_t fd, short what, void *arg);

/* What the layers above hear of connections, as conn.c is told of its
 * sockets by io.c (wsh_io_handler_t): net never calls them by name.
 * The worker gives it (process/worker.c). */
typedef struct {
    /* C is being freed, after its module's close hook (the engine takes
     * it out of its topics). */
    void (*closed)(wsh_conn_t *c);
    /* The closed connections were freed (the worker exits when it is
     * draining and none is left). */
    void (*gone)(void);
} wsh_conn_handler_t;

/* Worker start: the socket I/O layer with the connections' callbacks,
 * and H (which must outlive the worker) for the layers above. */
int wsh_conn_init_worker(const wsh_conn_handler_t *h);

#endif /* WSH_CONN_H */
