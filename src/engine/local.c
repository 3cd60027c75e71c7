/* local.c -- the local engine: workers talk through the master.
 *
 * Each operation is one frame on the worker's channel to the master
 * (wire.h), which relays it to the other workers (relay.c); what the
 * master sends back is decoded here and handed to engine.c. Nothing to
 * configure or install: one host, any number of workers.
 */
#include "engine/local.h"
#include "engine/engine.h"
#include "core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static wsh_local_send_pt local_send_fn;     /* the worker's channel */

void
wsh_local_init_worker(wsh_local_send_pt send)
{
    local_send_fn = send;
}

static void
local_send_at(uint32_t cmd, int kind, int flags, const char *name,
    size_t nlen, const char *id, size_t idlen, uint64_t conn_id,
    uint64_t offset, const void *data, size_t dlen)
{
    wsh_eng_hdr_t h;
    struct iovec iov[4];

    wsh_eng_pack(&h, iov, kind, flags, name, nlen, id, idlen, conn_id, data,
                 dlen);
    h.offset = offset;
    if (local_send_fn(cmd, iov, 4) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "engine message %u to the master lost", cmd);
    }
}

static void
local_send(uint32_t cmd, int kind, int flags, const char *name, size_t nlen,
    const char *id, size_t idlen, uint64_t conn_id, const void *data,
    size_t dlen)
{
    local_send_at(cmd, kind, flags, name, nlen, id, idlen, conn_id, 0, data,
                  dlen);
}

static void
local_subscribe(int kind, const char *name, size_t len)
{
    local_send(WSH_ENG_SUB, kind, 0, name, len, NULL, 0, 0, NULL, 0);
}

static void
local_unsubscribe(int kind, const char *name, size_t len)
{
    local_send(WSH_ENG_UNSUB, kind, 0, name, len, NULL, 0, 0, NULL, 0);
}

static void
local_publish(int kind, const char *name, size_t len, int flags,
    const char *sender, size_t slen, uint64_t conn_id, const void *data,
    size_t dlen)
{
    local_send(WSH_ENG_PUB, kind, flags, name, len, sender, slen, conn_id,
               data, dlen);
}

static uint32_t
local_cap32(size_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t) v;
}

/* The master keeps presence (relay.c) and obeys RULE there. */
static void
local_presence(uint32_t cmd, const char *room, size_t len, const char *id,
    size_t idlen, uint64_t conn_id, const wsh_presence_rule_t *rule)
{
    wsh_eng_rule_t r;

    r.list_max = local_cap32(rule->list_max);
    r.announce_max = local_cap32(rule->announce_max);
    local_send(cmd, WSH_TOPIC_ROOM, 0, room, len, id, idlen, conn_id, &r,
               sizeof(r));
}

static void
local_join(const char *room, size_t len, const char *id, size_t idlen,
    uint64_t conn_id, const wsh_presence_rule_t *rule)
{
    local_presence(WSH_ENG_JOIN, room, len, id, idlen, conn_id, rule);
}

static void
local_leave(const char *room, size_t len, const char *id, size_t idlen,
    const wsh_presence_rule_t *rule)
{
    local_presence(WSH_ENG_LEAVE, room, len, id, idlen, 0, rule);
}

/* The master's cursors are wsh_hash_scan's, in decimal (checked by
 * wsh_topic_presence). */
static int
local_who(const char *room, size_t len, uint64_t conn_id, uint64_t ticket,
    const char *cursor, size_t clen, size_t limit)
{
    wsh_eng_who_t w;
    size_t i;

    memset(&w, 0, sizeof(w));
    for (i = 0; i < clen; i++) {
        w.cursor = w.cursor * 10 + (uint64_t) (cursor[i] - '0');
    }
    w.ticket = ticket;
    w.limit = local_cap32(limit);
    local_send(WSH_ENG_WHO, WSH_TOPIC_ROOM, 0, room, len, NULL, 0, conn_id,
               &w, sizeof(w));
    return 0;
}

static void
local_page(const wsh_eng_msg_t *m)
{
    wsh_eng_page_t pg;
    char cursor[24];
    int n;

    if (m->data_len < sizeof(pg)) {
        wsh_log(WSH_LOG_ALERT, "malformed presence page from the master");
        return;
    }
    memcpy(&pg, m->data, sizeof(pg));
    n = snprintf(cursor, sizeof(cursor), "%" PRIu64, pg.cursor);
    wsh_engine_page(m->name, m->h.name_len, m->h.conn_id, pg.ticket, false,
                    (size_t) m->h.offset, m->data + sizeof(pg),
                    m->data_len - sizeof(pg), cursor, (size_t) n);
}

/* The master is the sequencer (relay.c): it checks the key, numbers
 * the message and sends it back to every worker, this one included;
 * the ticket rides in the offset. */
static void
local_publish_acked(int kind, const char *name, size_t len,
    uint64_t conn_id, uint64_t ticket, const char *key, size_t klen,
    const void *data, size_t dlen)
{
    local_send_at(WSH_ENG_SEQPUB, kind, ticket ? WSH_ENG_F_ACK : 0, name,
                  len, key, klen, conn_id, ticket, data, dlen);
}

/* Sent after the SUB of the room: the master answers in channel order,
 * so every message it sequences after the answer reaches us live. */
static void
local_history(const char *room, size_t len, uint64_t conn_id,
    uint64_t join, const wsh_since_t *since)
{
    /* JOIN rides as data; the master echoes it in the POSITION. */
    local_send_at(WSH_ENG_HISTORY, WSH_TOPIC_ROOM,
                  since ? WSH_ENG_F_SINCE : 0, room, len,
                  since && since->epoch ? since->epoch : NULL,
                  since && since->epoch ? since->epoch_len : 0, conn_id,
                  since ? since->offset : 0, &join, sizeof(join));
}

const wsh_engine_ops_t wsh_engine_local = {
    .name = "local",
    .subscribe = local_subscribe,
    .unsubscribe = local_unsubscribe,
    .publish = local_publish,
    .join = local_join,
    .leave = local_leave,
    .publish_acked = local_publish_acked,
    .history = local_history,
    .who = local_who,
};

void
wsh_local_message(uint32_t cmd, const u_char *p, size_t len)
{
    wsh_eng_msg_t m;
    uint64_t join, ticket;

    if (wsh_eng_decode(p, len, &m) != WSH_OK) {
        wsh_log(WSH_LOG_ALERT, "malformed engine message %u", cmd);
        return;
    }
    switch (cmd) {
    case WSH_ENG_DELIVER:
        wsh_engine_deliver(m.h.kind, m.name, m.h.name_len, m.data,
                           m.data_len);
        break;
    case WSH_ENG_MEMBERS:
        wsh_engine_members(m.name, m.h.name_len, m.h.conn_id, m.data,
                           m.data_len, (size_t) m.h.offset);
        break;
    case WSH_ENG_PAGE:
        local_page(&m);
        break;
    case WSH_ENG_PRESENCE:
        wsh_engine_presence(m.name, m.h.name_len, m.id, m.h.id_len,
                            m.h.flags & WSH_ENG_F_JOINED, m.h.conn_id);
        break;
    case WSH_ENG_SEQ:
        wsh_engine_deliver_seq(m.name, m.h.name_len, m.h.conn_id, m.h.offset,
                               m.id, m.h.id_len, m.data, m.data_len);
        break;
    case WSH_ENG_REPLAY:
        wsh_engine_replay(m.name, m.h.name_len, m.h.conn_id, m.h.offset,
                          m.id, m.h.id_len, m.data, m.data_len);
        break;
    case WSH_ENG_POSITION:
        join = 0;
        if (m.data_len == sizeof(join)) {
            memcpy(&join, m.data, sizeof(join));
        }
        wsh_engine_position(m.name, m.h.name_len, m.h.conn_id, join,
                            m.h.flags & WSH_ENG_F_HISTORY,
                            m.h.flags & WSH_ENG_F_RECOVERED, m.h.offset,
                            m.id, m.h.id_len);
        break;
    case WSH_ENG_ACKED:
        ticket = 0;
        if (m.data_len == sizeof(ticket)) {
            memcpy(&ticket, m.data, sizeof(ticket));
        }
        wsh_engine_acked(m.h.conn_id, ticket, m.h.kind, false, m.h.offset,
                         m.id, m.h.id_len, m.h.flags);
        break;
    case WSH_ENG_GAP:
        wsh_engine_gap_all();
        break;
    case WSH_ENG_RESULT:
        wsh_engine_result(m.name, m.h.name_len, m.id, m.h.id_len,
                          m.h.conn_id, m.h.flags & WSH_ENG_F_FOUND);
        break;
    default:
        wsh_log(WSH_LOG_ALERT, "unknown engine message %u", cmd);
        break;
    }
}
