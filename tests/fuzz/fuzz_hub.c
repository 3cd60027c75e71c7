/* fuzz_hub.c -- libFuzzer harness of the hub module's JSON handling.
 *
 * The hub module (modules/hub/hub.c) is linked alone, on an in-memory
 * implementation of the src/wshub.h calls it makes: three connections,
 * a topic table, captured replies and publishes. The input is a script
 * of steps; each step picks a connection and hands the module a
 * message, a publish API request, a member list, a presence event, a
 * publish result, a sequencer's acknowledgement or a shutdown. The invariants, checked with abort():
 * every frame the hub sends is a JSON object with a string "type"; every
 * relayed publish is an object whose "from" is the sender's id (never
 * the client's claim); a client is never in more rooms than
 * max_rooms_per_connection, nor in a room its token forbids; every HTTP
 * answer is JSON with a status the API documents; and the module never
 * touches a connection after close.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hub/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const wsh_module_t wsh_hub_module;
extern const wsh_module_t wsh_hub_api_module;
extern const wsh_module_t wsh_hub_presence_module;

#define FUZZ_CONNS   3
#define FUZZ_TOPICS  64
#define FUZZ_NAME    200

struct wsh_conn_s {
    void     *data;
    uint64_t  id;
    int       open;
    int       closed_by_module;
    unsigned  rooms;
    const char *realm;          /* NULL: a publish API of several realms */
    int       verified;         /* the realm has an endpoint with auth */
};

struct wsh_request_s {
    const char *method;
    const char *query;
    const char *auth;
    const char *body;
    size_t      body_len;
};

typedef struct {
    wsh_conn_t *c;
    int         kind;
    size_t      len;
    char        name[FUZZ_NAME];
} fuzz_member_t;

static hub_conf_t fuzz_conf;            /* the hub: section */

/* hub.rooms: one rule of each kind, for rooms the scripts can name. */
static hub_room_rule_t fuzz_rules[] = {
    { (char *) "big:*", HUB_PRESENCE_FULL, 2, 1, 0, 1, { 0, 0 } },
    { (char *) "full:*", HUB_PRESENCE_FULL, 1000, 1, 2, 1, { 0, 0 } },
    { (char *) "news", HUB_PRESENCE_COUNT, 1000, 0, 0, 0, { 10, 1000 } },
    { (char *) "quiet:*", HUB_PRESENCE_OFF, 1000, 1, 0, 1, { 0, 0 } },
};

static wsh_conn_t fuzz_conns[FUZZ_CONNS];
static fuzz_member_t fuzz_members[FUZZ_TOPICS];
static wsh_conn_t *fuzz_http_conn;     /* the API request's connection */
static int fuzz_http_status;

/* A room_joined without members, as a room rule says: a member_count of
 * at least 1, or nothing in a presence: off room. */
static int
fuzz_counted(json_t *root)
{
    json_t *count = json_object_get(root, "member_count");
    const char *room = json_string_value(json_object_get(root, "room"));

    if (json_object_get(root, "members") != NULL) {
        if (count != NULL) {
            abort();            /* one or the other */
        }
        return 0;
    }
    if (count != NULL
        ? !json_is_integer(count) || json_integer_value(count) < 1
        : room == NULL || strncmp(room, "quiet:", 6) != 0)
    {
        abort();
    }
    return 1;
}

static void
fuzz_check_object(const void *p, size_t len, const char *must_have)
{
    json_t *root = json_loadb(p, len, JSON_ALLOW_NUL, NULL), *members;
    size_t i;

    if (!json_is_object(root)
        || (must_have != NULL
            && !json_is_string(json_object_get(root, must_have))))
    {
        abort();
    }
    /* room_joined is written by hand when the ids allow: its member
     * list must still be an array of strings, "alice" first (step 9;
     * an id that is not UTF-8 is left out). Under a rule it is a
     * member_count instead, or nothing with presence: off ("quiet:*"). */
    if (json_is_string(json_object_get(root, "type"))
        && strcmp(json_string_value(json_object_get(root, "type")),
                  "room_joined") == 0
        && !fuzz_counted(root))
    {
        members = json_object_get(root, "members");
        if (!json_is_array(members) || json_array_size(members) < 1) {
            abort();
        }
        for (i = 0; i < json_array_size(members); i++) {
            if (!json_is_string(json_array_get(members, i))) {
                abort();
            }
        }
        if (strcmp(json_string_value(json_array_get(members, 0)), "alice")
            != 0)
        {
            abort();
        }
    }
    json_decref(root);
}

/* ---- the API of src/wshub.h, in memory ------------------------------ */

int
wsh_conn_send(wsh_conn_t *c, int opcode, const void *data, size_t len)
{
    if (!c->open || opcode != WSH_OPCODE_TEXT) {
        abort();
    }
    fuzz_check_object(data, len, "type");
    return 0;
}

void
wsh_conn_close(wsh_conn_t *c, int code, const char *reason)
{
    if (!c->open) {
        abort();
    }
    c->closed_by_module = 1;
}

void *
wsh_conn_get_data(const wsh_conn_t *c)
{
    return c->data;
}

void
wsh_conn_set_data(wsh_conn_t *c, void *data)
{
    c->data = data;
}

uint64_t
wsh_conn_id(const wsh_conn_t *c)
{
    return c->id;
}

/* Connection 2 is authenticated: its token allows rooms "chat:*". */
const char *
wsh_conn_user(const wsh_conn_t *c, size_t *len)
{
    if (c != &fuzz_conns[2]) {
        return NULL;
    }
    *len = 5;
    return "alice";
}

int
wsh_conn_may(const wsh_conn_t *c, int action, const char *room, size_t len)
{
    return c != &fuzz_conns[2] || (len >= 5 && memcmp(room, "chat:", 5) == 0);
}

static fuzz_member_t *
fuzz_find(const wsh_conn_t *c, int kind, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < FUZZ_TOPICS; i++) {
        if (fuzz_members[i].c == c && fuzz_members[i].kind == kind
            && fuzz_members[i].len == len
            && memcmp(fuzz_members[i].name, name, len) == 0)
        {
            return &fuzz_members[i];
        }
    }
    return NULL;
}

int
wsh_topic_join(wsh_conn_t *c, int kind, const char *name, size_t len,
    const char *presence_id, size_t idlen)
{
    fuzz_member_t *m;

    if (!c->open || len >= FUZZ_NAME || fuzz_find(c, kind, name, len)) {
        abort();
    }
    if (kind == WSH_TOPIC_ROOM) {
        /* Topics are "REALM#NAME": the permission is the room's. */
        if (len < 4 || memcmp(name, "/ws#", 4) != 0
            || ++c->rooms > fuzz_conf.max_rooms_per_connection
            || !wsh_conn_may(c, WSH_MAY_JOIN, name + 4, len - 4))
        {
            abort();
        }
    }
    m = fuzz_find(NULL, 0, "", 0);
    if (m == NULL) {
        return -1;              /* full: the hub must answer an error */
    }
    m->c = c;
    m->kind = kind;
    m->len = len;
    memcpy(m->name, name, len);
    return 0;
}

int
wsh_topic_leave(wsh_conn_t *c, int kind, const char *name, size_t len)
{
    fuzz_member_t *m = fuzz_find(c, kind, name, len);

    if (m == NULL) {
        return -1;
    }
    memset(m, 0, sizeof(*m));
    if (kind == WSH_TOPIC_ROOM) {
        c->rooms--;
    }
    return 0;
}

int
wsh_topic_is_member(const wsh_conn_t *c, int kind, const char *name,
    size_t len)
{
    return fuzz_find(c, kind, name, len) != NULL;
}

const char *
wsh_topic_joined(const wsh_conn_t *c, int kind, size_t *len)
{
    size_t i;

    for (i = 0; i < FUZZ_TOPICS; i++) {
        if (fuzz_members[i].c == c && fuzz_members[i].kind == kind) {
            *len = fuzz_members[i].len;
            return fuzz_members[i].name;
        }
    }
    *len = 0;
    return NULL;
}

size_t
wsh_topic_count(const wsh_conn_t *c, int kind)
{
    size_t i, n = 0;

    for (i = 0; i < FUZZ_TOPICS; i++) {
        n += fuzz_members[i].c == c && fuzz_members[i].kind == kind;
    }
    return n;
}

/* Rooms with history: "chat:" rooms have it here, at a fixed position.
 * ROOM is a topic, "REALM#NAME". */
int
wsh_topic_has_history(const char *room, size_t len)
{
    const char *name = memchr(room, WSH_REALM_SEP, len);

    name = name != NULL ? name + 1 : room;
    len -= (size_t) (name - room);
    return len >= 5 && memcmp(name, "chat:", 5) == 0;
}

int
wsh_topic_join_since(wsh_conn_t *c, const char *room, size_t len,
    const char *presence_id, size_t idlen, const wsh_since_t *since)
{
    if (since != NULL && since->epoch != NULL
        && (since->epoch_len == 0 || since->epoch_len > WSH_EPOCH_MAX))
    {
        abort();                /* the hub validates since */
    }
    return wsh_topic_join(c, WSH_TOPIC_ROOM, room, len, presence_id, idlen);
}

int
wsh_topic_position(const wsh_conn_t *c, const char *room, size_t len,
    wsh_room_position_t *pos)
{
    if (!fuzz_find(c, WSH_TOPIC_ROOM, room, len)) {
        return -1;
    }
    memset(pos, 0, sizeof(*pos));
    pos->history = wsh_topic_has_history(room, len);
    pos->recovered = -1;
    pos->offset = 7;
    memcpy(pos->epoch, "0123456789abcdef", 17);
    return 0;
}

void
wsh_topic_positions(const wsh_conn_t *c, void (*cb)(void *arg,
    const char *room, size_t len, const wsh_room_position_t *pos),
    void *arg)
{
    wsh_room_position_t pos;
    size_t i;

    for (i = 0; i < FUZZ_TOPICS; i++) {
        if (fuzz_members[i].c == c && fuzz_members[i].kind == WSH_TOPIC_ROOM
            && wsh_topic_position(c, fuzz_members[i].name,
                                  fuzz_members[i].len, &pos) == 0
            && pos.history)
        {
            cb(arg, fuzz_members[i].name, fuzz_members[i].len, &pos);
        }
    }
}

/* A message the hub published to the room NAME, as members get it when
 * the engine numbered it (the numbered hook): an object with "type",
 * the offset and epoch given, and, in a room with history (where the
 * hub drops the publisher's), no key twice. */
static void
fuzz_numbered(const char *name, size_t len, const void *data, size_t dlen)
{
    static const char epoch[] = "0123456789abcdef";
    size_t n, cap;
    json_t *root;
    char *out;

    n = wsh_hub_module.numbered(name, len, data, dlen, 42, epoch, 16, NULL,
                                0);
    cap = n + (dlen & 7);
    out = malloc(cap ? cap : 1);
    if (n == 0 || out == NULL
        || wsh_hub_module.numbered(name, len, data, dlen, 42, epoch, 16,
                                   out, cap) != n)
    {
        abort();                /* the hub publishes objects only */
    }
    root = json_loadb(out, n, JSON_ALLOW_NUL
                      | (wsh_topic_has_history(name, len)
                         ? JSON_REJECT_DUPLICATES : 0), NULL);
    if (json_integer_value(json_object_get(root, "offset")) != 42
        || !json_is_string(json_object_get(root, "epoch"))
        || strcmp(json_string_value(json_object_get(root, "epoch")), epoch)
           != 0)
    {
        abort();
    }
    json_decref(root);
    fuzz_check_object(out, n, "type");
    free(out);
}

size_t
wsh_publish(int kind, const char *name, size_t len, const void *data,
    size_t dlen, wsh_conn_t *sender, int flags)
{
    json_t *root = json_loadb(data, dlen, JSON_ALLOW_NUL, NULL), *from;
    const char *type, *want = "server";
    size_t idlen = 6;

    type = json_string_value(json_object_get(root, "type"));
    if (!json_is_object(root) || type == NULL) {
        abort();
    }
    if (strncmp(type, "user_", 5) == 0) {
        /* user_joined(_room), user_left(_room): presence announcements,
         * about someone, not from anyone */
        fuzz_check_object(data, dlen, strstr(type, "_room") ? "userId" : "id");
        json_decref(root);
        return 0;
    }
    if (kind == WSH_TOPIC_ROOM) {
        fuzz_numbered(name, len, data, dlen);
    }
    from = json_object_get(root, "from");
    if (sender != NULL && sender != fuzz_http_conn) {
        /* An authenticated sender's id is its token's; the others have
         * a generated or ?id= id, checked only to be a string. */
        want = wsh_conn_user(sender, &idlen);
    }
    if (!json_is_string(from)
        || (want != NULL && (json_string_length(from) != idlen
                             || memcmp(json_string_value(from), want, idlen)
                                != 0)))
    {
        abort();
    }
    json_decref(root);
    return 0;
}

/* Tickets handed out and not answered yet, by connection. */
#define FUZZ_TICKETS 16
static struct {
    wsh_conn_t *c;
    uint64_t    ticket;
    int         page;           /* wsh_topic_presence's, not an ack */
} fuzz_tickets[FUZZ_TICKETS];
static uint64_t fuzz_last_ticket;

static uint64_t
fuzz_ticket(wsh_conn_t *c, int page)
{
    size_t i;

    for (i = 0; i < FUZZ_TICKETS && fuzz_tickets[i].c != NULL; i++) { }
    if (i == FUZZ_TICKETS) {
        return 0;               /* as the engine does past its cap */
    }
    fuzz_tickets[i].c = c;
    fuzz_tickets[i].page = page;
    return fuzz_tickets[i].ticket = ++fuzz_last_ticket;
}

uint64_t
wsh_topic_presence(wsh_conn_t *c, const char *room, size_t len,
    const char *cursor, size_t clen, size_t limit)
{
    size_t i;

    if (c == NULL || len == 0 || len > HUB_TOPIC_MAX
        || limit > WSH_PRESENCE_PAGE_MAX
        || (cursor != NULL && (clen == 0 || clen > WSH_PRESENCE_CURSOR_MAX)))
    {
        abort();                /* the hub checks all of these */
    }
    for (i = 0; cursor != NULL && i < clen; i++) {
        if (cursor[i] < '0' || cursor[i] > '9') {
            abort();
        }
    }
    return fuzz_ticket(c, 1);
}

size_t
wsh_publish_acked(int kind, const char *name, size_t len, const void *data,
    size_t dlen, wsh_conn_t *sender, int flags, wsh_publish_ack_t *ack)
{
    size_t n = wsh_publish(kind, name, len, data, dlen, sender, flags), i;

    if (ack == NULL) {
        return n;
    }
    ack->ticket = 0;
    ack->refused = 0;
    if (ack->key == NULL
        && !(kind == WSH_TOPIC_ROOM && wsh_topic_has_history(name, len)))
    {
        return n;
    }
    if (sender == NULL || ack->key_len > WSH_IDEMPOTENCY_KEY_MAX) {
        abort();
    }
    ack->ticket = fuzz_ticket(sender, 0);
    if (ack->ticket == 0) {
        ack->refused = 1;
        return 0;
    }
    (void) i;
    return n;
}

/* The engine's answer to a presence request of C. */
static void
fuzz_page(wsh_conn_t *c, uint64_t ticket, unsigned how)
{
    static const char *const ids[] = { "alice", "bob", "u-1" };
    static const size_t lens[] = { 5, 3, 3 };
    wsh_presence_page_t page = { 0 };

    page.room = "/ws#lobby";
    page.room_len = 9;
    page.failed = how & 1;
    page.count = how * 1000;
    page.ids = ids;
    page.lens = lens;
    page.n = (how >> 1) % 4;
    page.cursor = how & 0x40 ? "4096" : "0";
    page.cursor_len = strlen(page.cursor);
    (c == fuzz_http_conn ? &wsh_hub_presence_module : &wsh_hub_module)
        ->presence_page(c, ticket, &page);
}

/* Answer the oldest ticket of C, as the sequencer would; false if it
 * has none. */
static int
fuzz_ack(wsh_conn_t *c, unsigned how)
{
    static const char epoch[] = "0123456789abcdef";
    wsh_ack_t ack = { 0 };
    size_t i, first = FUZZ_TICKETS;

    for (i = 0; c != NULL && i < FUZZ_TICKETS; i++) {
        if (fuzz_tickets[i].c == c
            && (first == FUZZ_TICKETS
                || fuzz_tickets[i].ticket < fuzz_tickets[first].ticket))
        {
            first = i;
        }
    }
    if (first == FUZZ_TICKETS) {
        return 0;
    }
    if (fuzz_tickets[first].page) {
        fuzz_tickets[first].c = NULL;
        fuzz_page(c, fuzz_tickets[first].ticket, how);
        return 1;
    }
    ack.failed = how & 1;
    ack.duplicate = (how >> 1) & 1;
    ack.found = (how >> 2) & 1;
    ack.kind = (int) ((how >> 3) % 3);
    if (!ack.failed && (how & 0x40)) {
        ack.offset = how + 1;
        ack.epoch = epoch;
        ack.epoch_len = sizeof(epoch) - 1;
    }
    fuzz_tickets[first].c = NULL;
    (c == fuzz_http_conn ? &wsh_hub_api_module : &wsh_hub_module)
        ->acked(c, fuzz_tickets[first].ticket, &ack);
    return 1;
}

void
wsh_module_log(int level, const wsh_conn_t *c, const char *fmt, ...)
{
    (void) level;
    (void) c;
    (void) fmt;
}

const void *
wsh_module_conf(const wsh_module_t *m)
{
    (void) m;                   /* the hub's and hub_api's: the hub: section */
    return &fuzz_conf;
}

int
wsh_http_respond_headers(wsh_conn_t *c, int status, const char *headers,
    const char *content_type, const void *body, size_t len)
{
    (void) content_type;
    if (c != fuzz_http_conn || fuzz_http_status != 0
        || (status != 202 && status != 400 && status != 401
            && status != 404 && status != 405 && status != 500
            && status != 503)
        || ((status == 401 || status == 405) != (headers != NULL)))
    {
        abort();
    }
    fuzz_http_status = status;
    fuzz_check_object(body, len, NULL);
    return 0;
}

int
wsh_http_respond(wsh_conn_t *c, int status, const char *content_type,
    const void *body, size_t len)
{
    return wsh_http_respond_headers(c, status, NULL, content_type, body, len);
}

int
wsh_http_only_handshake(wsh_conn_t *c, const wsh_request_t *r)
{
    (void) c;
    (void) r;
    return 404;
}

const char *
wsh_conn_realm(const wsh_conn_t *c, size_t *len, int *verified)
{
    if (verified != NULL) {
        *verified = c->verified;
    }
    *len = c->realm != NULL ? strlen(c->realm) : 0;
    return c->realm;
}

int
wsh_realm_known(const char *name, size_t len)
{
    return (len == 3 && memcmp(name, "/ws", 3) == 0)
           || (len == 7 && memcmp(name, "/secure", 7) == 0);
}

const char *
wsh_request_method(const wsh_request_t *r, size_t *len)
{
    *len = strlen(r->method);
    return r->method;
}

const char *
wsh_request_query(const wsh_request_t *r, size_t *len)
{
    *len = r->query ? strlen(r->query) : 0;
    return r->query;
}

const char *
wsh_request_header(const wsh_request_t *r, const char *name, size_t *len)
{
    if (strcmp(name, "Authorization") != 0 || r->auth == NULL) {
        return NULL;
    }
    *len = strlen(r->auth);
    return r->auth;
}

const char *
wsh_request_body(const wsh_request_t *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}

/* ---- the script ----------------------------------------------------- */

/* Take a length-prefixed chunk (up to 4 KiB) off the input. */
static const uint8_t *
fuzz_chunk(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *chunk;

    if (end - *p < 2) {
        return NULL;
    }
    *len = ((size_t) (*p)[0] << 8 | (*p)[1]) & 0xfff;
    *p += 2;
    if ((size_t) (end - *p) < *len) {
        *len = (size_t) (end - *p);
    }
    chunk = *p;
    *p += *len;
    return chunk;
}

static void
fuzz_api(const uint8_t *body, size_t len, int keyed)
{
    static wsh_conn_t api = { .open = 1, .id = 1000 };
    wsh_request_t r = { keyed & 4 ? "GET" : "POST", NULL,
                        keyed & 1 ? "apikey fuzz-key" : "apikey x",
                        (const char *) body, len };
    const wsh_module_t *m = keyed & 8 ? &wsh_hub_presence_module
                                      : &wsh_hub_api_module;
    size_t max = 0;

    api.realm = keyed & 2 ? NULL : "/ws";
    fuzz_http_conn = &api;
    fuzz_http_status = 0;
    if (m->http_head(&api, &r, &max) != 0) {
        if (fuzz_http_status == 0 || max != 0) {
            abort();            /* refused: answered, and no body read */
        }
        return;
    }
    if (max != fuzz_conf.api_max_body || fuzz_http_status != 0) {
        abort();
    }
    if (m->http(&api, &r) != 0 || fuzz_http_status == 0) {
        /* Answered later: by the sequencer for a publish with a ticket;
         * else a private publish that reached nobody here, by the
         * cluster. Give the answer now. */
        if (!fuzz_ack(&api, (unsigned) len) && m->publish_result != NULL) {
            m->publish_result(&api, "x", 1, len & 1);
        }
        if (fuzz_http_status == 0) {
            abort();
        }
    }
}

static void
fuzz_step(uint8_t op, const uint8_t *chunk, size_t len)
{
    wsh_conn_t *c = &fuzz_conns[(op >> 4) % FUZZ_CONNS];
    const char *ids[2] = { "alice", (const char *) chunk };
    size_t lens[2] = { 5, len < 64 ? len : 64 };

    if (!c->open) {
        return;
    }
    switch (op & 0x0f) {
    case 0: case 1: case 2: case 3: case 4: case 5:
        wsh_hub_module.message(c, WSH_OPCODE_TEXT, chunk, len);
        break;
    case 6:
        wsh_hub_module.message(c, WSH_OPCODE_BINARY, chunk, len);
        break;
    case 7: case 8:
        fuzz_api(chunk, len, (op & 1) | ((op >> 4) & 14));
        break;
    case 9:
        /* Past the presence limit, the engine gives a count alone. */
        wsh_hub_module.members(c, (const char *) chunk, len < 128 ? len : 128,
                               ids, lens, len & 2 ? 0 : 2,
                               len & 2 ? 5000 : 2);
        break;
    case 10:
        wsh_hub_module.presence((const char *) chunk, len < 128 ? len : 128,
                                ids[1], lens[1], len & 1, NULL);
        break;
    case 11:
        wsh_hub_module.publish_result(c, (const char *) chunk,
                                      len < 64 ? len : 64, 0);
        break;
    case 12:
        wsh_hub_module.shutdown(c, len & 1 ? WSH_CLOSE_RESTART
                                           : WSH_CLOSE_GOING_AWAY);
        break;
    case 13:
        (void) fuzz_ack(c, len > 0 ? chunk[0] : 0);
        break;
    default:
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *queries[] = { NULL, "id=bob", "id=%62ob&x=1",
                                     "id=bad%20id" };
    const uint8_t *p = data, *end = data + size, *chunk;
    wsh_request_t r = { "GET", NULL, NULL, NULL, 0 };
    size_t i, len;
    uint8_t op;

    fuzz_conf.client_ids = true;
    fuzz_conf.max_rooms_per_connection = 4;
    fuzz_conf.announce_connections = size & 1;
    fuzz_conf.api_key = (char *) "fuzz-key";
    fuzz_conf.api_max_body = 1 << 20;
    fuzz_conf.rooms.items = fuzz_rules;
    fuzz_conf.rooms.n = size & 4 ? sizeof(fuzz_rules) / sizeof(fuzz_rules[0])
                                 : 0;
    memset(fuzz_members, 0, sizeof(fuzz_members));
    memset(fuzz_tickets, 0, sizeof(fuzz_tickets));
    for (i = 0; i < FUZZ_CONNS; i++) {
        memset(&fuzz_conns[i], 0, sizeof(fuzz_conns[i]));
        fuzz_conns[i].id = i + 1;
        fuzz_conns[i].open = 1;
        fuzz_conns[i].realm = "/ws";
        fuzz_conns[i].verified = i == 2 && (size & 2);
        r.query = queries[(i + size) % 4];
        wsh_hub_module.open(&fuzz_conns[i], &r);
    }
    while (p < end) {
        op = *p++;
        chunk = fuzz_chunk(&p, end, &len);
        if (chunk == NULL) {
            break;
        }
        fuzz_step(op, chunk, len);
    }
    for (i = 0; i < FUZZ_CONNS; i++) {
        wsh_hub_module.close(&fuzz_conns[i], WSH_CLOSE_NORMAL);
        if (fuzz_conns[i].data != NULL) {
            abort();            /* the module's state must be freed */
        }
        fuzz_conns[i].open = 0;
    }
    return 0;
}
