/* frame.h -- RFC 6455 frame codec: the server side of section 5.
 *
 * wsh_ws_parse() is an incremental parser that accepts input in pieces of
 * any size (one byte at a time included) and returns one event at a time:
 * a complete message (fragments joined and unmasked), a ping, a pong or a
 * valid close. Every violation ends parsing with the close code the RFC
 * asks for. No socket in here, so the unit tests drive it with tables.
 */
#ifndef WSH_FRAME_H
#define WSH_FRAME_H

#include "core/core.h"

enum {
    WSH_WS_OP_CONT = 0x0,
    WSH_WS_OP_TEXT = 0x1,
    WSH_WS_OP_BINARY = 0x2,
    WSH_WS_OP_CLOSE = 0x8,
    WSH_WS_OP_PING = 0x9,
    WSH_WS_OP_PONG = 0xa
};

enum {
    WSH_WS_EV_MESSAGE = 1,      /* opcode, data, len: a whole message */
    WSH_WS_EV_PING,             /* data, len: ping payload */
    WSH_WS_EV_PONG,
    WSH_WS_EV_CLOSE             /* code (1005 if none), data/len: reason */
};

#define WSH_WS_RSV1         0x40    /* "compressed" (RFC 7692) */
#define WSH_WS_CONTROL_MAX  125
#define WSH_WS_HEADER_MAX   14  /* server frames: at most 10 */

typedef struct {
    int             type;
    int             opcode;
    int             code;       /* close code, received or to send */
    u_char         *data;
    size_t          len;
    const char     *error;      /* why the connection fails (for logs) */
    bool            compressed; /* message: RSV1 was set, data deflated */
} wsh_ws_event_t;

/* Parser state of one connection: kept compact because it lives in every
 * connection; the payload buffer is allocated only while a message is
 * being received. */
typedef struct {
    u_char          hdr[WSH_WS_HEADER_MAX];
    uint8_t         hdr_len;    /* header bytes collected so far */
    uint8_t         state;
    uint8_t         opcode;     /* current frame */
    uint8_t         fin:1;
    uint8_t         in_message:1;   /* a fragmented message is open */
    uint8_t         client:1;       /* parsing server frames (tools) */
    uint8_t         rsv1_allowed:1; /* permessage-deflate negotiated */
    uint8_t         compressed:1;   /* the open message has RSV1 */
    uint8_t         msg_opcode;     /* TEXT or BINARY of that message */
    uint8_t         mask[4];
    uint32_t        utf8;           /* validator state for text */
    uint64_t        remaining;      /* payload bytes left in this frame */
    uint64_t        frame_pos;      /* payload bytes of this frame seen */

    u_char         *buf;            /* message (or control) payload */
    size_t          buf_len;
    size_t          buf_cap;
    size_t          ctl_start;      /* control payload after the message */
    size_t          max_message;
    uint32_t        fragments;      /* frames of the open message */
    uint32_t        max_fragments;  /* 0: any number */
} wsh_ws_t;

void wsh_ws_init(wsh_ws_t *ws, size_t max_message_size);

/* The same parser for a client (src/tools): frames from a server must
 * be unmasked (RFC 6455 section 5.1), everything else is identical. */
void wsh_ws_init_client(wsh_ws_t *ws, size_t max_message_size);

/* Allow RSV1 on the first frame of data messages: permessage-deflate
 * was negotiated. Such messages come out with ev->compressed set and
 * their payload as received (not UTF-8 checked: that is for after
 * inflating). */
void wsh_ws_allow_rsv1(wsh_ws_t *ws);

/* Release the payload buffer (the parser stays usable). */
void wsh_ws_reset_buffer(wsh_ws_t *ws);

/* At a frame boundary with no message open, once the last event's
 * payload is released: the state may be dropped and set up again. */
bool wsh_ws_idle(wsh_ws_t *ws);

/* True while a message or frame is partly received (the buffer is in use). */
bool wsh_ws_busy(const wsh_ws_t *ws);

/* Parse from *pos up to last. The input is writable because a message
 * that lies whole in it is unmasked in place and its event data points
 * there (parse in place); others come from the parser's buffer. Returns:
 *   WSH_OK     an event is in *ev, *pos moved past what was used; its data
 *              stays valid until the next call and while the input is
 *              neither freed nor overwritten;
 *   WSH_AGAIN  all input consumed, no complete event yet;
 *   WSH_ERROR  the peer violated the protocol: ev->code is the close code
 *              (1002, 1007 or 1009: 1009 also for a message in more
 *              than max_fragments frames) and ev->error says why; the
 *              connection must be failed, the parser not called again. */
int wsh_ws_parse(wsh_ws_t *ws, u_char **pos, const u_char *last,
    wsh_ws_event_t *ev);

/* Write a server (unmasked) frame header for a final frame of OPCODE and
 * LEN payload bytes into out (WSH_WS_HEADER_MAX bytes); returns its size. */
size_t wsh_ws_frame_header(u_char *out, int opcode, uint64_t len);

/* dst = src XOR MASK (RFC 6455 section 5.3), src being N payload bytes
 * from offset POS of their frame; masking and unmasking are the same.
 * dst may equal src; any alignment. */
void wsh_ws_mask(u_char *dst, const u_char *src, size_t n,
    const uint8_t mask[4], uint64_t pos);

/* A close code a peer may send (RFC 6455 section 7.4, IANA registry). */
bool wsh_ws_close_code_valid(int code);

#endif /* WSH_FRAME_H */
