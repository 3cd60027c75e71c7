/* wire.h -- the local engine's messages on the master/worker channels.
 *
 * Every engine message is one channel frame whose payload starts with
 * this fixed header, then the topic name, then a client id, then data.
 * Both ends are the same binary on the same host, so fields are in host
 * byte order and the header is copied, never cast from the buffer.
 */
#ifndef WSH_ENGINE_WIRE_H
#define WSH_ENGINE_WIRE_H

#include "core/core.h"

#include <string.h>
#include <sys/uio.h>

/* Channel commands after the process commands of channel.h. */
enum {
    /* worker -> master */
    WSH_ENG_FIRST = 16,
    WSH_ENG_SUB = WSH_ENG_FIRST, /* first local member of a topic */
    WSH_ENG_UNSUB,          /* last local member left */
    WSH_ENG_PUB,            /* publish to other workers */
    WSH_ENG_JOIN,           /* presence: id joined room (conn_id asks) */
    WSH_ENG_LEAVE,          /* presence: one connection of id left room */
    /* master -> worker */
    WSH_ENG_DELIVER,        /* deliver to local members */
    WSH_ENG_MEMBERS,        /* answer to JOIN: offset = the room's count,
                             * data = ids (none past list_max) */
    WSH_ENG_PRESENCE,       /* id joined (flags) or left room */
    WSH_ENG_RESULT,         /* a private PUB reached nobody (or, when
                             * confirmed, somebody: F_FOUND) */
    /* rooms with history (history.h) */
    WSH_ENG_SEQPUB,         /* w->m: through the sequencer: checked
                             * against the idempotency key in id (if
                             * any), numbered when the room keeps
                             * history, then delivered to ALL (the
                             * publisher's worker included); F_ACK: the
                             * ticket in offset, answered with ACKED */
    WSH_ENG_HISTORY,        /* w->m: position (and missed messages) of a
                             * joining conn_id; F_SINCE: offset, id epoch */
    WSH_ENG_SEQ,            /* m->w: a sequenced message as published;
                             * conn_id is the sender to skip, offset 0:
                             * not in history, else id = epoch */
    WSH_ENG_REPLAY,         /* m->w: one missed message for conn_id, as
                             * published: offset, id = epoch */
    WSH_ENG_POSITION,       /* m->w: the answer to HISTORY, after any
                             * REPLAY: F_HISTORY, F_RECOVERED, offset */
    WSH_ENG_ACKED,          /* m->w: a SEQPUB's outcome for conn_id:
                             * data = its ticket, offset (0: not
                             * numbered), id = epoch, F_FOUND (somebody
                             * is subscribed), F_DUPLICATE */
    WSH_ENG_GAP,            /* m->w: frames for this worker were dropped
                             * (it did not read its channel) */
    /* presence on demand */
    WSH_ENG_WHO,            /* w->m: a page of a room's ids for conn_id:
                             * data wsh_eng_who_t */
    WSH_ENG_PAGE            /* m->w: its answer: offset = the room's
                             * count, data wsh_eng_page_t then ids */
};

/* JOIN and LEAVE data: the room's presence rule (wshub.h), each limit
 * capped at UINT32_MAX (no room gets that big). */
typedef struct {
    uint32_t list_max;
    uint32_t announce_max;
} wsh_eng_rule_t;

typedef struct {
    uint64_t ticket;
    uint64_t cursor;        /* 0: the first page */
    uint32_t limit;         /* ids wanted, 0: the count only */
    uint32_t reserved;
} wsh_eng_who_t;

typedef struct {
    uint64_t ticket;
    uint64_t cursor;        /* the next page's, 0: none */
} wsh_eng_page_t;

#define WSH_ENG_F_JOINED    0x1     /* PRESENCE: joined, else left */
#define WSH_ENG_F_DELIVERED 0x2     /* PUB: the origin delivered locally */
#define WSH_ENG_F_CONFIRM   0x4     /* PUB: always send a RESULT */
#define WSH_ENG_F_FOUND     0x8     /* RESULT: delivered somewhere */
#define WSH_ENG_F_SINCE     0x10    /* HISTORY: the client gave since */
#define WSH_ENG_F_HISTORY   0x20    /* POSITION: the room keeps history */
#define WSH_ENG_F_RECOVERED 0x40    /* POSITION: every missed one sent */
#define WSH_ENG_F_ACK       0x80    /* SEQPUB: answer with ACKED */
#define WSH_ENG_F_DUPLICATE 0x80    /* ACKED: the key was seen within the
                                     * window: the first outcome, nothing
                                     * published now */

typedef struct {
    uint8_t  kind;          /* WSH_TOPIC_* */
    uint8_t  flags;
    uint16_t name_len;
    uint16_t id_len;
    uint16_t reserved;
    uint64_t conn_id;       /* the connection concerned, on its worker */
    uint64_t offset;        /* rooms with history; the id is the epoch */
} wsh_eng_hdr_t;

typedef struct {
    wsh_eng_hdr_t  h;
    const char    *name;
    const char    *id;
    const u_char  *data;
    size_t         data_len;
} wsh_eng_msg_t;

/* Lay out a message as 4 iovecs (header, name, id, data) for a channel
 * write; H must outlive the write call. */
static inline void
wsh_eng_pack(wsh_eng_hdr_t *h, struct iovec iov[4], int kind, int flags,
    const char *name, size_t nlen, const char *id, size_t idlen,
    uint64_t conn_id, const void *data, size_t dlen)
{
    memset(h, 0, sizeof(*h));
    h->kind = (uint8_t) kind;
    h->flags = (uint8_t) flags;
    h->name_len = (uint16_t) nlen;
    h->id_len = (uint16_t) idlen;
    h->conn_id = conn_id;
    iov[0].iov_base = h;
    iov[0].iov_len = sizeof(*h);
    iov[1].iov_base = (void *) name;
    iov[1].iov_len = nlen;
    iov[2].iov_base = (void *) id;
    iov[2].iov_len = idlen;
    iov[3].iov_base = (void *) data;
    iov[3].iov_len = dlen;
}

/* Split a received payload; WSH_ERROR if it is malformed. */
static inline int
wsh_eng_decode(const u_char *p, size_t len, wsh_eng_msg_t *m)
{
    if (len < sizeof(m->h)) {
        return WSH_ERROR;
    }
    memcpy(&m->h, p, sizeof(m->h));
    if ((size_t) m->h.name_len + m->h.id_len > len - sizeof(m->h)) {
        return WSH_ERROR;
    }
    m->name = (const char *) p + sizeof(m->h);
    m->id = m->name + m->h.name_len;
    m->data = (const u_char *) m->id + m->h.id_len;
    m->data_len = len - sizeof(m->h) - m->h.name_len - m->h.id_len;
    return WSH_OK;
}

#endif /* WSH_ENGINE_WIRE_H */
