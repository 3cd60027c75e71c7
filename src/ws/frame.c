/* frame.c -- RFC 6455 frame parser and server frame headers.
 *
 * The parser checks each frame header as soon as its first two bytes are
 * in, so a violation is answered before any payload is read, and checks
 * declared lengths against max_message_size before buffering a byte
 * (1009 without the memory). Payload is unmasked straight into the
 * message buffer; text is validated while it streams in, so invalid UTF-8
 * fails the connection at the offending byte, even mid-fragment.
 */
#include "ws/frame.h"
#include "ws/utf8.h"

#include <stdlib.h>
#include <string.h>

enum {
    WS_STATE_HEADER = 0,
    WS_STATE_PAYLOAD,
    WS_STATE_RESET_MESSAGE,     /* last event was a message: reset on entry */
    WS_STATE_RESET_CONTROL      /* last event was a control frame */
};

void
wsh_ws_init(wsh_ws_t *ws, size_t max_message_size)
{
    memset(ws, 0, sizeof(*ws));
    ws->max_message = max_message_size;
}

void
wsh_ws_init_client(wsh_ws_t *ws, size_t max_message_size)
{
    wsh_ws_init(ws, max_message_size);
    ws->client = 1;
}

void
wsh_ws_allow_rsv1(wsh_ws_t *ws)
{
    ws->rsv1_allowed = 1;
}

bool
wsh_ws_busy(const wsh_ws_t *ws)
{
    return ws->in_message || ws->hdr_len > 0 || ws->state == WS_STATE_PAYLOAD
           || ws->buf_len > 0;
}

/* The event returned last is no longer in use: forget its payload. */
static void
ws_settle(wsh_ws_t *ws)
{
    if (ws->state == WS_STATE_RESET_MESSAGE) {
        ws->buf_len = 0;
        ws->state = WS_STATE_HEADER;
    } else if (ws->state == WS_STATE_RESET_CONTROL) {
        ws->buf_len = ws->ctl_start;
        ws->state = WS_STATE_HEADER;
    }
}

bool
wsh_ws_idle(wsh_ws_t *ws)
{
    ws_settle(ws);
    return !wsh_ws_busy(ws);
}

void
wsh_ws_reset_buffer(wsh_ws_t *ws)
{
    if (wsh_ws_idle(ws)) {
        free(ws->buf);
        ws->buf = NULL;
        ws->buf_cap = 0;
    }
}

bool
wsh_ws_close_code_valid(int code)
{
    if (code >= 1000 && code <= 1014) {
        return code != 1004 && code != 1005 && code != 1006;
    }
    return code >= 3000 && code <= 4999;
}

static int
ws_fail(wsh_ws_event_t *ev, int code, const char *why)
{
    ev->code = code;
    ev->error = why;
    return WSH_ERROR;
}

/* Room for n more payload bytes; grows by what actually arrives, never by
 * what a header claims, so a lying length cannot reserve memory. */
static int
ws_reserve(wsh_ws_t *ws, size_t n)
{
    size_t need = ws->buf_len + n, cap;
    u_char *p;

    if (need <= ws->buf_cap) {
        return WSH_OK;
    }
    cap = ws->buf_cap ? ws->buf_cap * 2 : 256;
    if (cap < need) {
        cap = need;
    }
    p = realloc(ws->buf, cap);
    if (p == NULL) {
        return WSH_ERROR;
    }
    ws->buf = p;
    ws->buf_cap = cap;
    return WSH_OK;
}

/* Eight bytes per step: the key is rotated to pos once and repeated
 * twice, so every 8-byte word (8 is a multiple of 4) takes the same 64-bit
 * key whatever the byte order; memcpy keeps the loads and stores legal at
 * any alignment and compiles to plain moves. */
void
wsh_ws_mask(u_char *dst, const u_char *src, size_t n, const uint8_t mask[4],
            uint64_t pos)
{
    u_char key[8];
    uint64_t k, w;
    size_t i;

    for (i = 0; i < 8; i++) {
        key[i] = mask[(pos + i) & 3];
    }
    memcpy(&k, key, 8);
    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, src + i, 8);
        w ^= k;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[i & 7];
    }
}

/* First two header bytes: everything that can be judged from them. */
static int
ws_check_start(wsh_ws_t *ws, wsh_ws_event_t *ev)
{
    u_char b0 = ws->hdr[0], b1 = ws->hdr[1];
    int op = b0 & 0x0f;

    ws->fin = (b0 & 0x80) != 0;
    ws->opcode = (uint8_t) op;

    /* RFC 7692 section 6: RSV1 marks a compressed message, on its first
     * frame only; never on control frames (section 6.1). */
    if ((b0 & 0x70) == WSH_WS_RSV1 && ws->rsv1_allowed
        && (op == WSH_WS_OP_TEXT || op == WSH_WS_OP_BINARY))
    {
        b0 &= ~WSH_WS_RSV1;
    }
    if (b0 & 0x70) {
        return ws_fail(ev, 1002, "reserved bits set without an extension");
    }
    if (op >= 0x3 && op != WSH_WS_OP_CLOSE && op != WSH_WS_OP_PING
        && op != WSH_WS_OP_PONG)
    {
        return ws_fail(ev, 1002, "reserved opcode");
    }
    if (((b1 & 0x80) == 0) != ws->client) {
        return ws_fail(ev, 1002, ws->client ? "masked server frame"
                                            : "unmasked client frame");
    }
    if (op & 0x8) {
        if (!ws->fin) {
            return ws_fail(ev, 1002, "fragmented control frame");
        }
        if ((b1 & 0x7f) > WSH_WS_CONTROL_MAX) {
            return ws_fail(ev, 1002, "control frame payload over 125 bytes");
        }
    } else if (op == WSH_WS_OP_CONT) {
        if (!ws->in_message) {
            return ws_fail(ev, 1002, "continuation frame without a message");
        }
    } else if (ws->in_message) {
        return ws_fail(ev, 1002, "new message inside a fragmented message");
    }
    return WSH_OK;
}

/* What each frame of a message costs, against a budget of
 * max_message_size bytes for its headers: the smallest masked header. */
#define WS_FRAGMENT_COST 6
#define WS_FRAGMENT_BUDGET_MIN ((size_t) 64 << 10)

/* The whole header is in: length, mask, size limit. */
static int
ws_check_header(wsh_ws_t *ws, wsh_ws_event_t *ev)
{
    u_char len7 = ws->hdr[1] & 0x7f, *p = ws->hdr + 2;
    uint64_t len = len7;
    int i;

    if (len7 == 126) {
        len = ((uint64_t) p[0] << 8) | p[1];
        p += 2;
        if (len < 126) {
            return ws_fail(ev, 1002, "length not in its shortest form");
        }
    } else if (len7 == 127) {
        len = 0;
        for (i = 0; i < 8; i++) {
            len = (len << 8) | p[i];
        }
        p += 8;
        if (len >> 63) {
            return ws_fail(ev, 1002, "64-bit length with the top bit set");
        }
        if (len <= 0xffff) {
            return ws_fail(ev, 1002, "length not in its shortest form");
        }
    }
    if (!ws->client) {
        memcpy(ws->mask, p, 4);     /* server frames come unmasked */
    }
    ws->remaining = len;
    ws->frame_pos = 0;

    if (ws->opcode & 0x8) {
        ws->ctl_start = ws->buf_len;
    } else {
        if (ws->opcode != WSH_WS_OP_CONT) {
            ws->compressed = (ws->hdr[0] & WSH_WS_RSV1) != 0;
            ws->msg_opcode = ws->opcode;
            ws->utf8 = WSH_UTF8_ACCEPT;
            ws->buf_len = 0;
            ws->fragments = 0;
        }
        /* Tiny fragments cost a header parse each while adding nothing
         * to the payload: the frames of a message are charged the
         * smallest client header each, against a budget of their own of
         * max_message_size bytes (64 KiB at least, so that tiny limits
         * still allow fragments). A stream of empty fragments ends like
         * an oversized message (1009) instead of running forever, while
         * a message in any number of reasonable fragments fits
         * (Autobahn 9.3 and 9.4: 1 MiB in 64-byte fragments). */
        if (len > ws->max_message || ws->buf_len > ws->max_message - len) {
            return ws_fail(ev, 1009, "message exceeds max_message_size");
        }
        if ((uint64_t) ws->fragments * WS_FRAGMENT_COST
            > (ws->max_message > WS_FRAGMENT_BUDGET_MIN
               ? ws->max_message : WS_FRAGMENT_BUDGET_MIN))
        {
            return ws_fail(ev, 1009, "message in more frames than "
                           "max_message_size / 6 allows");
        }
        ws->fragments++;
        if (ws->max_fragments != 0 && ws->fragments > ws->max_fragments) {
            return ws_fail(ev, 1009, "message in more frames than "
                           "limits.max_fragments");
        }
        ws->in_message = 1;
    }
    return WSH_OK;
}

static int
ws_control_event(wsh_ws_t *ws, wsh_ws_event_t *ev)
{
    /* An empty control frame may come before any buffer exists. */
    u_char *data = ws->buf ? ws->buf + ws->ctl_start : NULL;
    size_t len = ws->buf_len - ws->ctl_start;

    ws->state = WS_STATE_RESET_CONTROL;
    ev->opcode = ws->opcode;
    ev->data = data;
    ev->len = len;

    switch (ws->opcode) {
    case WSH_WS_OP_PING:
        ev->type = WSH_WS_EV_PING;
        return WSH_OK;
    case WSH_WS_OP_PONG:
        ev->type = WSH_WS_EV_PONG;
        return WSH_OK;
    default:
        break;
    }

    /* Close: section 5.5.1, codes from section 7.4. */
    ev->type = WSH_WS_EV_CLOSE;
    if (len == 0) {
        ev->code = 1005;        /* "no status": we answer with no code */
        return WSH_OK;
    }
    if (len == 1) {
        return ws_fail(ev, 1002, "close frame with a 1-byte payload");
    }
    ev->code = (data[0] << 8) | data[1];
    if (!wsh_ws_close_code_valid(ev->code)) {
        return ws_fail(ev, 1002, "invalid close code");
    }
    if (wsh_utf8_validate(WSH_UTF8_ACCEPT, data + 2, len - 2)
        != WSH_UTF8_ACCEPT)
    {
        return ws_fail(ev, 1007, "close reason is not valid UTF-8");
    }
    ev->data = data + 2;
    ev->len = len - 2;
    return WSH_OK;
}

/* End of a frame: an event, or WSH_AGAIN to continue a fragmented one. */
static int
ws_frame_end(wsh_ws_t *ws, wsh_ws_event_t *ev)
{
    if (ws->opcode & 0x8) {
        return ws_control_event(ws, ev);
    }
    ws->state = WS_STATE_HEADER;
    if (!ws->fin) {
        return WSH_AGAIN;
    }
    if (ws->msg_opcode == WSH_WS_OP_TEXT && !ws->compressed
        && ws->utf8 != WSH_UTF8_ACCEPT)
    {
        return ws_fail(ev, 1007, "text message ends inside a UTF-8 sequence");
    }
    ws->in_message = 0;
    ws->state = WS_STATE_RESET_MESSAGE;
    ev->type = WSH_WS_EV_MESSAGE;
    ev->compressed = ws->compressed;
    ev->opcode = ws->msg_opcode;
    ev->data = ws->buf;
    ev->len = ws->buf_len;
    return WSH_OK;
}

static size_t
ws_header_size(const wsh_ws_t *ws)
{
    u_char len7 = ws->hdr[1] & 0x7f;

    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0)
           + (ws->client ? 0 : 4);
}

/* A final data frame whose header is in the input: checked like any
 * other and, when its payload is there too, unmasked and validated where
 * it lies and handed out from there: no copy, no buffer, which is every
 * message of a client that sends small ones. WSH_DECLINED: the general
 * path goes on, with the header consumed (state PAYLOAD) when it was
 * whole, untouched otherwise (a fragment, a control frame, a cut
 * header). */
static int
ws_parse_in_place(wsh_ws_t *ws, u_char **pos, const u_char *last,
    wsh_ws_event_t *ev)
{
    u_char *p = *pos, *data;
    size_t avail = (size_t) (last - p), need, len;

    if (avail < 2 || (p[0] & 0x88) != 0x80) {
        return WSH_DECLINED;    /* not a final data frame, or too short */
    }
    ws->hdr[1] = p[1];
    need = ws_header_size(ws);
    if (avail < need) {
        return WSH_DECLINED;
    }
    memcpy(ws->hdr, p, need);
    *pos = p + need;
    if (ws_check_start(ws, ev) != WSH_OK || ws_check_header(ws, ev) != WSH_OK)
    {
        return WSH_ERROR;
    }
    if (ws->remaining > avail - need) {
        ws->state = WS_STATE_PAYLOAD;
        return WSH_DECLINED;
    }
    data = p + need;
    len = (size_t) ws->remaining;
    *pos = data + len;
    if (!ws->client) {
        wsh_ws_mask(data, data, len, ws->mask, 0);
    }
    if (ws->msg_opcode == WSH_WS_OP_TEXT && !ws->compressed
        && wsh_utf8_validate(WSH_UTF8_ACCEPT, data, len) != WSH_UTF8_ACCEPT)
    {
        return ws_fail(ev, 1007, "invalid UTF-8 in a text message");
    }
    ws->in_message = 0;
    ws->remaining = 0;
    ev->type = WSH_WS_EV_MESSAGE;
    ev->compressed = ws->compressed;
    ev->opcode = ws->msg_opcode;
    ev->data = data;
    ev->len = len;
    return WSH_OK;
}

int
wsh_ws_parse(wsh_ws_t *ws, u_char **pos, const u_char *last,
    wsh_ws_event_t *ev)
{
    u_char *p = *pos, *dst;
    size_t n, need;
    int rc;

    ev->error = NULL;
    ws_settle(ws);

    while (p < last) {
        if (ws->state == WS_STATE_HEADER && ws->hdr_len == 0
            && !ws->in_message)
        {
            rc = ws_parse_in_place(ws, &p, last, ev);
            if (rc != WSH_DECLINED) {
                *pos = p;
                return rc;
            }
            if (p == last) {
                break;          /* a header alone: its payload follows */
            }
        }
        if (ws->state == WS_STATE_HEADER) {
            if (ws->hdr_len < 2) {
                ws->hdr[ws->hdr_len++] = *p++;
                if (ws->hdr_len < 2) {
                    continue;
                }
                if (ws_check_start(ws, ev) != WSH_OK) {
                    *pos = p;
                    return WSH_ERROR;
                }
            }
            /* The first two bytes are judged: collect the rest. */
            need = ws_header_size(ws);
            n = need - ws->hdr_len;
            if (n > (size_t) (last - p)) {
                n = (size_t) (last - p);
            }
            memcpy(ws->hdr + ws->hdr_len, p, n);
            ws->hdr_len += (uint8_t) n;
            p += n;
            if (ws->hdr_len < need) {
                continue;
            }
            ws->hdr_len = 0;
            if (ws_check_header(ws, ev) != WSH_OK) {
                *pos = p;
                return WSH_ERROR;
            }
            ws->state = WS_STATE_PAYLOAD;
            if (ws->remaining > 0) {
                continue;
            }

        } else {
            n = (size_t) (last - p);
            if (n > ws->remaining) {
                n = (size_t) ws->remaining;
            }
            if (ws_reserve(ws, n) != WSH_OK) {
                *pos = p;
                return ws_fail(ev, 1011, "out of memory");
            }
            dst = ws->buf + ws->buf_len;
            if (ws->client) {
                memcpy(dst, p, n);      /* server frames are not masked */
            } else {
                wsh_ws_mask(dst, p, n, ws->mask, ws->frame_pos);
            }
            p += n;
            ws->buf_len += n;
            ws->frame_pos += n;
            ws->remaining -= n;
            if (ws->msg_opcode == WSH_WS_OP_TEXT && !(ws->opcode & 0x8)
                && !ws->compressed)
            {
                ws->utf8 = wsh_utf8_validate(ws->utf8, dst, n);
                if (ws->utf8 == WSH_UTF8_REJECT) {
                    *pos = p;
                    return ws_fail(ev, 1007, "invalid UTF-8 in a text "
                                   "message");
                }
            }
            if (ws->remaining > 0) {
                continue;
            }
        }

        /* A frame just ended (possibly with an empty payload). */
        rc = ws_frame_end(ws, ev);
        if (rc != WSH_AGAIN) {
            *pos = p;
            return rc;
        }
    }

    *pos = p;
    return WSH_AGAIN;
}

size_t
wsh_ws_frame_header(u_char *out, int opcode, uint64_t len)
{
    int i;

    out[0] = (u_char) (0x80 | opcode);
    if (len < 126) {
        out[1] = (u_char) len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (u_char) (len >> 8);
        out[3] = (u_char) len;
        return 4;
    }
    out[1] = 127;
    for (i = 0; i < 8; i++) {
        out[2 + i] = (u_char) (len >> (56 - 8 * i));
    }
    return 10;
}
