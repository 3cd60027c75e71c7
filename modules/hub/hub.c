/* hub.c -- the hub module: rooms, presence and private messages.
 *
 * Implements the JSON protocol of wshub-protocol(7) on the topic API of
 * src/wshub.h: each connection joins the all-clients topic and the topic
 * of its client id, and rooms on request, every topic in the realm of
 * its endpoint ("REALM#NAME"). Relayed messages are the sender's object
 * with "from" set by the server, serialized once and published once;
 * the engine shares that one frame among recipients. The publish API
 * for backends is module hub_api (api.c).
 */
#include "hub/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <jansson.h>

/* server_shutdown's reconnect hint: uniform in [MIN, MIN + SPREAD). */
#define HUB_RECONNECT_MIN_MS     100
#define HUB_RECONNECT_SPREAD_MS  2000

/* Acknowledgements a client waits for: publishes to rooms with history
 * are acknowledged once the sequencer has numbered them. */
#define HUB_PENDING_MAX 1024

typedef struct {
    uint64_t ticket;
    json_t  *id;                /* the client's "id", as it sent it */
    int      what;              /* HUB_WAIT_* */
} hub_pending_t;

/* The acknowledgements a connection waits for, in publish order; only
 * while it waits for some: the connection's data (wsh_conn_get_data),
 * else NULL. That is all the hub keeps per connection. Its id is read
 * back from its client topic (hub_conn_id), its rooms counted from its
 * memberships: 32 bytes of a record per idle connection were an eighth
 * of what it costs, and the engine holds both anyway. */
typedef struct {
    size_t        n;
    size_t        cap;
    hub_pending_t v[];
} hub_pending_list_t;

/* The message being handled, and its "id", which the errors and the
 * ack answering it carry: a worker handles one message at a time. */
static wsh_conn_t *hub_request_conn;
static json_t     *hub_request_id;

extern const wsh_module_t wsh_hub_module;

const hub_conf_t *
hub_conf(void)
{
    return wsh_module_conf(&wsh_hub_module);
}

size_t
hub_topic(char *buf, const char *realm, size_t rlen, const char *name,
    size_t len)
{
    memcpy(buf, realm, rlen);
    buf[rlen] = WSH_REALM_SEP;
    memcpy(buf + rlen + 1, name, len);
    return rlen + 1 + len;
}

const char *
hub_topic_name(const char *topic, size_t *len)
{
    const char *sep = memchr(topic, WSH_REALM_SEP, *len);

    if (sep == NULL) {
        return topic;
    }
    *len -= (size_t) (sep + 1 - topic);
    return sep + 1;
}

/* NAME in C's realm, into BUF (HUB_TOPIC_MAX bytes); the realm's
 * all-clients topic ("REALM#") for an empty NAME. */
static size_t
hub_conn_topic(const wsh_conn_t *c, char *buf, const char *name,
    size_t len)
{
    size_t rlen;
    const char *realm = wsh_conn_realm(c, &rlen, NULL);

    return hub_topic(buf, realm != NULL ? realm : "", rlen, name, len);
}

size_t
hub_conn_room_topic(wsh_conn_t *c, char *buf, const char *name, size_t len)
{
    return hub_conn_topic(c, buf, name, len);
}

/* C's client id: the name of its client topic ("REALM#ID", the first
 * topic it joins, in hub_open) without the realm. NULL until it joined
 * it, or after: C is not (or no longer) the hub's open client. */
static const char *
hub_conn_id(const wsh_conn_t *c, size_t *len)
{
    const char *topic = wsh_topic_joined(c, WSH_TOPIC_CLIENT, len);

    return topic != NULL ? hub_topic_name(topic, len) : NULL;
}

void
hub_send(wsh_conn_t *c, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);

    if (text != NULL) {
        (void) wsh_conn_send(c, WSH_OPCODE_TEXT, text, strlen(text));
        free(text);
    }
    json_decref(obj);
}

void
hub_error(wsh_conn_t *c, const char *error, const char *request)
{
    json_t *obj = json_pack("{s:s, s:s}", "type", "error", "error", error);

    if (obj != NULL && request != NULL) {
        json_object_set_new(obj, "request", json_string(request));
    }
    if (obj != NULL && c == hub_request_conn && hub_request_id != NULL) {
        json_object_set(obj, "id", hub_request_id);
    }
    if (obj != NULL) {
        hub_send(c, obj);
    }
}

void
hub_ack_position(json_t *obj, const wsh_ack_t *ack)
{
    if (obj != NULL && ack != NULL && ack->offset != 0) {
        json_object_set_new(obj, "offset",
                            json_integer((json_int_t) ack->offset));
        json_object_set_new(obj, "epoch",
                            json_stringn(ack->epoch, ack->epoch_len));
    }
}

/* {"type":"ack","id":ID} plus the position of a numbered message. */
static void
hub_send_ack(wsh_conn_t *c, json_t *id, const wsh_ack_t *ack)
{
    json_t *obj = json_pack("{s:s, s:O}", "type", "ack", "id", id);

    hub_ack_position(obj, ack);
    if (obj != NULL) {
        hub_send(c, obj);
    }
}

size_t
hub_publish(int kind, const char *name, size_t len, json_t *obj,
    wsh_conn_t *sender, int flags)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    size_t n = 0;

    json_decref(obj);
    if (text != NULL) {
        n = wsh_publish(kind, name, len, text, strlen(text), sender, flags);
        free(text);
    }
    return n;
}

static int
hub_hex(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') {
        return (ch | 0x20) - 'a' + 10;
    }
    return -1;
}

/* The value of query parameter NAME, percent-decoded into out (at most
 * outmax bytes); false if absent, too long or badly encoded. */
static bool
hub_query_param(const char *q, size_t qlen, const char *name, char *out,
    size_t outmax, size_t *outlen)
{
    const char *last = q + qlen, *p = q, *amp, *v;
    size_t nlen = strlen(name), n = 0;
    int hi, lo;

    for (; p < last; p = amp + 1) {
        amp = memchr(p, '&', (size_t) (last - p));
        if (amp == NULL) {
            amp = last;
        }
        if ((size_t) (amp - p) <= nlen || memcmp(p, name, nlen) != 0
            || p[nlen] != '=')
        {
            continue;
        }
        for (v = p + nlen + 1; v < amp; v++) {
            if (n == outmax) {
                return false;
            }
            if (*v != '%') {
                out[n++] = *v;
                continue;
            }
            if (amp - v < 3 || (hi = hub_hex(v[1])) < 0
                || (lo = hub_hex(v[2])) < 0)
            {
                return false;
            }
            out[n++] = (char) (hi << 4 | lo);
            v += 2;
        }
        *outlen = n;
        return true;
    }
    return false;
}

/* Ids no client may claim: "server" (the publish API's "from") and
 * the generated ones' prefix, so that neither a backend's messages nor
 * another client's generated id can be borrowed with ?id=. */
static bool
hub_reserved_id(const char *id, size_t len)
{
    return (len == 6 && memcmp(id, "server", 6) == 0)
           || (len >= 2 && memcmp(id, "u-", 2) == 0);
}

/* A random id into ID (WSH_CLIENT_ID_MAX bytes); returns its length. */
static size_t
hub_generate_id(char *id)
{
    unsigned char rnd[12];
    size_t i;

    /* 96 random bits: unique across workers and hosts without any
     * coordination. */
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        memset(rnd, 0, sizeof(rnd));
    }
    memcpy(id, "u-", 2);
    for (i = 0; i < sizeof(rnd); i++) {
        snprintf(id + 2 + 2 * i, 3, "%02x", rnd[i]);
    }
    return 2 + 2 * sizeof(rnd);
}

/* The client id into ID (WSH_CLIENT_ID_MAX bytes), its length in *LEN,
 * in the order of wshub-protocol(7) "Identity": the verified one (auth:
 * jwt, its sub), else a valid ?id= when client_ids allows it and the
 * realm has no endpoint with auth (whose verified ids it would borrow),
 * else a random one. False when the endpoint has no realm, or an auth
 * module verified an id the protocol cannot carry. */
static bool
hub_client_id(wsh_conn_t *c, const wsh_request_t *r, char *id, size_t *len)
{
    const char *p;
    size_t n;
    int verified;

    *len = 0;
    if (wsh_conn_realm(c, &n, &verified) == NULL) {
        return false;
    }
    p = wsh_conn_user(c, &n);
    if (p != NULL) {
        if (!wsh_valid_client_id(p, n)) {
            return false;
        }
        memcpy(id, p, n);
        *len = n;
    } else if (!hub_conf()->client_ids || verified
               || (p = wsh_request_query(r, &n)) == NULL
               || !hub_query_param(p, n, "id", id, WSH_CLIENT_ID_MAX, len)
               || !wsh_valid_client_id(id, *len)
               || hub_reserved_id(id, *len))
    {
        *len = hub_generate_id(id);
    }
    return true;
}

static void
hub_open(wsh_conn_t *c, const wsh_request_t *r)
{
    char id[WSH_CLIENT_ID_MAX], topic[HUB_TOPIC_MAX];
    size_t idlen;
    bool valid = hub_client_id(c, r, id, &idlen);
    json_t *obj;

    if (!valid) {
        wsh_conn_close(c, WSH_CLOSE_POLICY, "invalid client id");
        return;
    }
    /* The client topic first: hub_conn_id reads the id from it. */
    if (wsh_topic_join(c, WSH_TOPIC_CLIENT, topic,
                       hub_conn_topic(c, topic, id, idlen), NULL, 0) != 0
        || wsh_topic_join(c, WSH_TOPIC_ALL, topic,
                          hub_conn_topic(c, topic, "", 0), NULL, 0) != 0)
    {
        wsh_conn_close(c, WSH_CLOSE_INTERNAL, "out of memory");
        return;
    }
    obj = json_pack("{s:s, s:s%, s:s}", "type", "welcome", "id", id, idlen,
                    "message", "Welcome to wshub");
    if (obj != NULL) {
        hub_send(c, obj);
    }
    if (hub_conf()->announce_connections) {
        obj = json_pack("{s:s, s:s%}", "type", "user_joined", "id", id,
                        idlen);
        if (obj != NULL) {
            hub_publish(WSH_TOPIC_ALL, topic, hub_conn_topic(c, topic, "", 0),
                        obj, c, 0);
        }
    }
}

static void
hub_close(wsh_conn_t *c, int code)
{
    hub_pending_list_t *l = wsh_conn_get_data(c);
    char topic[HUB_TOPIC_MAX];
    const char *id;
    size_t idlen;
    json_t *obj;

    /* Only a client that was welcomed (it joined its client topic; the
     * engine takes it out after this hook) is announced as gone. */
    id = hub_conn_id(c, &idlen);
    if (id != NULL && hub_conf()->announce_connections) {
        obj = json_pack("{s:s, s:s%}", "type", "user_left", "id", id, idlen);
        if (obj != NULL) {
            hub_publish(WSH_TOPIC_ALL, topic, hub_conn_topic(c, topic, "", 0),
                        obj, c, 0);
        }
    }
    while (l != NULL && l->n > 0) {
        json_decref(l->v[--l->n].id);
    }
    free(l);
    wsh_conn_set_data(c, NULL);
}

/* {"offset": N, "epoch": E} of a history room position. */
static json_t *
hub_position(const wsh_room_position_t *pos)
{
    return json_pack("{s:I, s:s}", "offset", (json_int_t) pos->offset,
                     "epoch", pos->epoch);
}

static void
hub_shutdown_room(void *arg, const char *room, size_t len,
    const wsh_room_position_t *pos)
{
    json_t *rooms = arg;
    char name[WSH_ROOM_MAX + 1];

    room = hub_topic_name(room, &len);
    if (len <= WSH_ROOM_MAX) {
        memcpy(name, room, len);
        name[len] = '\0';
        json_object_set_new(rooms, name, hub_position(pos));
    }
}

/* Reload or stop: tell the client to come back, at a random moment so
 * a reload does not bring every client back in the same millisecond,
 * and where it stands in its rooms with history, so that it rejoins
 * them with since at once. */
static void
hub_shutdown(wsh_conn_t *c, int code)
{
    unsigned r = 0;
    json_t *obj, *rooms = json_object();

    if (getrandom(&r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
        r = (unsigned) wsh_conn_id(c);
    }
    obj = json_pack("{s:s, s:s, s:i}", "type", "server_shutdown",
                    "message", code == WSH_CLOSE_RESTART
                    ? "Server restarting" : "Server shutting down",
                    "reconnect_after_ms",
                    HUB_RECONNECT_MIN_MS
                    + (int) (r % HUB_RECONNECT_SPREAD_MS));
    if (obj != NULL && rooms != NULL) {
        wsh_topic_positions(c, hub_shutdown_room, rooms);
        if (json_object_size(rooms) > 0) {
            json_object_set(obj, "rooms", rooms);
        }
    }
    json_decref(rooms);
    hub_send(c, obj);
}

const char *
hub_room(wsh_conn_t *c, json_t *root, const char *type, size_t *len)
{
    json_t *room = json_object_get(root, "room");

    if (!json_is_string(room)
        || !wsh_valid_room(json_string_value(room),
                           json_string_length(room)))
    {
        hub_error(c, "Invalid room name", type);
        return NULL;
    }
    *len = json_string_length(room);
    return json_string_value(room);
}

/* join_room's "since": {offset: N >= 0, epoch: E (optional)}. False
 * after an error reply; *given tells whether it was there. */
static bool
hub_since(wsh_conn_t *c, json_t *root, wsh_since_t *since, bool *given)
{
    json_t *s = json_object_get(root, "since"), *offset, *epoch;

    *given = s != NULL && !json_is_null(s);
    if (!*given) {
        return true;
    }
    if (!json_is_object(s)) {
        hub_error(c, "Invalid since", "join_room");
        return false;
    }
    offset = json_object_get(s, "offset");
    epoch = json_object_get(s, "epoch");
    if (!json_is_integer(offset) || json_integer_value(offset) < 0) {
        hub_error(c, "Invalid since offset", "join_room");
        return false;
    }
    if (epoch != NULL && (!json_is_string(epoch)
                          || json_string_length(epoch) == 0
                          || json_string_length(epoch) > WSH_EPOCH_MAX))
    {
        hub_error(c, "Invalid since epoch", "join_room");
        return false;
    }
    since->offset = (uint64_t) json_integer_value(offset);
    since->epoch = epoch ? json_string_value(epoch) : NULL;
    since->epoch_len = epoch ? json_string_length(epoch) : 0;
    return true;
}

static void
hub_join_room(wsh_conn_t *c, const char *id, size_t idlen, json_t *root)
{
    const char *room;
    char topic[HUB_TOPIC_MAX];
    size_t len, tlen;
    wsh_since_t since;
    bool given;

    room = hub_room(c, root, "join_room", &len);
    if (room == NULL || !hub_since(c, root, &since, &given)) {
        return;
    }
    if (!wsh_conn_may(c, WSH_MAY_JOIN, room, len)) {
        hub_error(c, "Not allowed", "join_room");
        return;
    }
    tlen = hub_conn_topic(c, topic, room, len);
    if (wsh_topic_is_member(c, WSH_TOPIC_ROOM, topic, tlen)) {
        hub_error(c, "Already in room", "join_room");
        return;
    }
    if (wsh_topic_count(c, WSH_TOPIC_ROOM)
        >= hub_conf()->max_rooms_per_connection)
    {
        hub_error(c, "Too many rooms", "join_room");
        return;
    }
    /* room_joined is sent when the member list arrives (hub_members),
     * then, in a room with history, what the client missed. */
    if (wsh_topic_join_since(c, topic, tlen, id, idlen,
                             given ? &since : NULL) != 0)
    {
        hub_error(c, "Server error", "join_room");
    }
}

static void
hub_leave_room(wsh_conn_t *c, json_t *root)
{
    const char *room;
    char topic[HUB_TOPIC_MAX];
    size_t len;

    room = hub_room(c, root, "leave_room", &len);
    if (room == NULL) {
        return;
    }
    if (wsh_topic_leave(c, WSH_TOPIC_ROOM, topic,
                        hub_conn_topic(c, topic, room, len)) != 0)
    {
        hub_error(c, "Not in room", "leave_room");
        return;
    }
    hub_send(c, json_pack("{s:s, s:s%}", "type", "room_left", "room", room,
                          len));
}

void
hub_reserve_position(json_t *obj, int kind, const char *room, size_t len)
{
    if (kind == WSH_TOPIC_ROOM && wsh_topic_has_history(room, len)) {
        json_object_del(obj, "offset");
        json_object_del(obj, "epoch");
    }
}

/* The numbered hook: a message of a room with history as members get
 * it, "offset" and "epoch" its last keys. Every message the hub
 * publishes is an object serialised compactly by jansson, so its text
 * ends with the object's '}', and hub_reserve_position removed any
 * "offset" or "epoch" of the publisher's, so the keys stay unique: the
 * two are written before that '}', without serialising again. Anything
 * else goes as is. */
static size_t
hub_numbered(const char *room, size_t len, const void *data, size_t dlen,
    uint64_t offset, const char *epoch, size_t elen, void *out, size_t cap)
{
    const char *p = data;
    char head[64];
    size_t body, hlen, n;
    char *o = out;

    (void) room;
    (void) len;
    if (dlen < 2 || p[0] != '{' || p[dlen - 1] != '}') {
        return 0;
    }
    body = dlen - 1;
    /* No comma after "{": the empty object. */
    hlen = (size_t) snprintf(head, sizeof(head),
                             "%s\"offset\":%" PRIu64 ",\"epoch\":\"",
                             body > 1 ? "," : "", offset);
    n = body + hlen + elen + 2;
    if (n > cap) {
        return n;
    }
    memcpy(o, data, body);
    memcpy(o + body, head, hlen);
    memcpy(o + body + hlen, epoch, elen);
    memcpy(o + body + hlen + elen, "\"}", 2);
    return n;
}

/* A message with an "id": acknowledged at once when this worker is
 * where it is accepted, else (a room with history) when the sequencer
 * has numbered it (hub_acked). The id stays in the relayed message. */
static void
hub_relay_acked(wsh_conn_t *c, json_t *root, int kind, const char *name,
    size_t len)
{
    wsh_publish_ack_t ack = { NULL, 0, 0, 0 };
    const char *type = json_string_value(json_object_get(root, "type"));
    hub_pending_list_t *l = wsh_conn_get_data(c);
    char *text;

    if (l != NULL && l->n == HUB_PENDING_MAX) {
        hub_error(c, "Too many messages waiting for their ack", type);
        return;
    }
    text = json_dumps(root, JSON_COMPACT);
    if (text == NULL) {
        hub_error(c, "Server error", NULL);
        return;
    }
    (void) wsh_publish_acked(kind, name, len, text, strlen(text), c, 0, &ack);
    free(text);
    if (ack.refused) {
        hub_error(c, "Server error", type);
        return;
    }
    if (ack.ticket == 0) {
        hub_send_ack(c, hub_request_id, NULL);
        return;
    }
    if (hub_wait(c, ack.ticket, HUB_WAIT_ACK) != 0) {
        hub_error(c, "Server error", type);
    }
}

int
hub_wait(wsh_conn_t *c, uint64_t ticket, int what)
{
    hub_pending_list_t *l = wsh_conn_get_data(c), *old = l;
    hub_pending_t *p;
    size_t cap, idlen;

    if (hub_conn_id(c, &idlen) == NULL
        || (l != NULL && l->n == HUB_PENDING_MAX))
    {
        return -1;
    }
    if (l == NULL || l->n == l->cap) {
        cap = l != NULL ? l->cap * 2 : 4;
        l = realloc(l, sizeof(*l) + cap * sizeof(*p));
        if (l == NULL) {
            return -1;
        }
        if (old == NULL) {
            l->n = 0;
        }
        l->cap = cap;
        wsh_conn_set_data(c, l);
    }
    p = &l->v[l->n++];
    p->ticket = ticket;
    p->id = json_incref(hub_request_id);
    p->what = what;
    return 0;
}

bool
hub_waited(wsh_conn_t *c, uint64_t ticket, int *what, json_t **id)
{
    hub_pending_list_t *l = wsh_conn_get_data(c);
    size_t i;

    if (l == NULL) {
        return false;
    }
    for (i = 0; i < l->n && l->v[i].ticket != ticket; i++) { }
    if (i == l->n) {
        return false;
    }
    *id = l->v[i].id;
    *what = l->v[i].what;
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
    if (--l->n == 0) {
        free(l);
        wsh_conn_set_data(c, NULL);
    }
    return true;
}

/* The sequencer's answer to a message with an "id". */
static void
hub_acked(wsh_conn_t *c, uint64_t ticket, const wsh_ack_t *ack)
{
    json_t *obj, *id;
    int what;

    if (!hub_waited(c, ticket, &what, &id)) {
        return;
    }
    if (!ack->failed) {
        hub_send_ack(c, id, ack);
    } else {
        obj = json_pack("{s:s, s:s, s:O}", "type", "error", "error",
                        "Not published: the engine is unavailable, retry",
                        "id", id);
        if (obj != NULL) {
            hub_send(c, obj);
        }
    }
    json_decref(id);
}

/* room_message, private_message, broadcast: relay the object as sent,
 * with "from" set here (never trusted from the client). */
static void
hub_relay(wsh_conn_t *c, const char *id, size_t idlen, json_t *root,
    const char *type)
{
    const hub_room_rule_t *rule;
    const char *name = "";
    char topic[HUB_TOPIC_MAX];
    size_t len = 0;
    json_t *to;
    int kind;

    if (strcmp(type, "room_message") == 0) {
        kind = WSH_TOPIC_ROOM;
        name = hub_room(c, root, type, &len);
        if (name == NULL) {
            return;
        }
        if (!wsh_conn_may(c, WSH_MAY_PUBLISH, name, len)) {
            hub_error(c, "Not allowed", type);
            return;
        }
        rule = hub_room_rule(hub_conf(), name, len);
        if (rule != NULL && !rule->client_publish) {
            /* Only backends publish here (the publish API). */
            hub_error(c, "Not allowed", type);
            return;
        }
        len = hub_conn_topic(c, topic, name, len);
        name = topic;
        if (!wsh_topic_is_member(c, WSH_TOPIC_ROOM, name, len)) {
            hub_error(c, "Not in room", type);
            return;
        }
    } else if (strcmp(type, "private_message") == 0) {
        kind = WSH_TOPIC_CLIENT;
        to = json_object_get(root, "to");
        if (!json_is_string(to)
            || !wsh_valid_client_id(json_string_value(to),
                                    json_string_length(to)))
        {
            hub_error(c, "Invalid target", type);
            return;
        }
        len = hub_conn_topic(c, topic, json_string_value(to),
                             json_string_length(to));
        name = topic;
    } else {
        kind = WSH_TOPIC_ALL;
        len = hub_conn_topic(c, topic, "", 0);
        name = topic;
    }
    json_object_set_new(root, "from", json_stringn(id, idlen));
    hub_reserve_position(root, kind, name, len);
    if (hub_request_id == NULL) {
        json_incref(root);
        hub_publish(kind, name, len, root, c, 0);
        return;
    }
    hub_relay_acked(c, root, kind, name, len);
}

/* C's request ROOT is being handled: its optional "id", any JSON
 * value but null, is echoed in its ack and errors. Not checked further:
 * v1 relayed every field as sent, "id" included, and still does. */
static void
hub_request(wsh_conn_t *c, json_t *root)
{
    json_t *id = json_object_get(root, "id");

    hub_request_conn = c;
    hub_request_id = id != NULL && !json_is_null(id) ? id : NULL;
}

static void
hub_message(wsh_conn_t *c, int opcode, const unsigned char *data, size_t len)
{
    json_error_t err;
    json_t *root, *type;
    const char *t, *id;
    size_t idlen;

    id = hub_conn_id(c, &idlen);
    if (id == NULL) {
        return;
    }
    if (opcode != WSH_OPCODE_TEXT) {
        hub_error(c, "Binary messages are not supported", NULL);
        return;
    }
    root = json_loadb((const char *) data, len,
                      JSON_REJECT_DUPLICATES | JSON_DECODE_ANY
                      | JSON_ALLOW_NUL, &err);
    if (root == NULL) {
        hub_error(c, "Invalid JSON", NULL);
        return;
    }
    type = json_object_get(root, "type");
    if (!json_is_object(root) || !json_is_string(type)) {
        hub_error(c, "Missing or invalid type", NULL);
        json_decref(root);
        return;
    }
    t = json_string_value(type);
    hub_request(c, root);
    if (strcmp(t, "ping") == 0) {
        hub_send(c, json_pack("{s:s}", "type", "pong"));
    } else if (strcmp(t, "echo") == 0) {
        hub_send(c, json_pack("{s:s, s:O?}", "type", "echo", "data",
                              json_object_get(root, "data")));
    } else if (strcmp(t, "join_room") == 0) {
        hub_join_room(c, id, idlen, root);
    } else if (strcmp(t, "leave_room") == 0) {
        hub_leave_room(c, root);
    } else if (strcmp(t, "room_members") == 0
               || strcmp(t, "room_count") == 0)
    {
        hub_room_presence_request(c, root, t);
    } else if (strcmp(t, "room_message") == 0
               || strcmp(t, "private_message") == 0
               || strcmp(t, "broadcast") == 0)
    {
        hub_relay(c, id, idlen, root, t);
    } else {
        hub_error(c, "Unknown message type", t);
    }
    hub_request_conn = NULL;
    hub_request_id = NULL;
    json_decref(root);
}

/* room_joined as text: `{"members":[IDS],` and the rest of REST (the
 * other fields, as jansson wrote them) after its '{'. By hand because a
 * room filling up to N members sends N of these, and jansson (an object
 * per id, then a dump that checks every character) cost 1.7 M
 * instructions per reply at 1,000 members, 72% of the worker's work in a
 * 1 -> 1,000 fan-out run. Client ids are protocol names (letters, digits
 * and "_.:@-"): nothing to escape. NULL when an id is not one (an engine
 * could bring one; jansson escapes it then) or out of memory. */
static char *
hub_members_text(const char *const *ids, const size_t *lens, size_t n,
    const char *rest, size_t *len)
{
    static const char head[] = "{\"members\":[";
    size_t i, need = sizeof(head) + 2 + strlen(rest);
    char *text, *p;

    for (i = 0; i < n; i++) {
        if (!wsh_valid_client_id(ids[i], lens[i])) {
            return NULL;
        }
        need += lens[i] + 3;
    }
    text = malloc(need);
    if (text == NULL) {
        return NULL;
    }
    p = text;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (i = 0; i < n; i++) {
        *p++ = '"';
        memcpy(p, ids[i], lens[i]);
        p += lens[i];
        *p++ = '"';
        *p++ = ',';
    }
    if (n > 0) {
        p--;                    /* the last comma */
    }
    *p++ = ']';
    *p++ = ',';
    memcpy(p, rest + 1, strlen(rest + 1));
    p += strlen(rest + 1);
    *len = (size_t) (p - text);
    return text;
}

/* A join past the rule's max_members (N counts the joiner): C leaves
 * at once, told "Room full". Joins on several workers at the same moment
 * may pass the limit by as many. */
static bool
hub_room_full(wsh_conn_t *c, const hub_room_rule_t *r, const char *topic,
    size_t len, size_t n)
{
    const char *room = topic;
    size_t rlen = len;

    if (r == NULL || r->max_members == 0 || n <= r->max_members) {
        return false;
    }
    room = hub_topic_name(topic, &rlen);
    (void) wsh_topic_leave(c, WSH_TOPIC_ROOM, topic, len);
    hub_send(c, json_pack("{s:s, s:s, s:s, s:s%}", "type", "error", "error",
                          "Room full", "request", "join_room", "room", room,
                          rlen));
    return true;
}

static void
hub_members(wsh_conn_t *c, const char *topic, size_t len,
    const char *const *ids, const size_t *lens, size_t n, size_t count)
{
    const hub_room_rule_t *r = hub_room_rule(hub_conf(), topic, len);
    size_t rlen = len;
    const char *room = hub_topic_name(topic, &rlen);
    json_t *obj, *members;
    wsh_room_position_t pos;
    char *rest, *text = NULL;
    size_t i, tlen;

    if (hub_room_full(c, r, topic, len, count)) {
        return;
    }
    obj = json_pack("{s:s, s:s%}", "type", "room_joined", "room", room,
                    rlen);
    if (obj == NULL) {
        return;
    }
    if (wsh_topic_position(c, topic, len, &pos) == 0) {
        if (pos.history) {
            json_object_set_new(obj, "offset",
                                json_integer((json_int_t) pos.offset));
            json_object_set_new(obj, "epoch", json_string(pos.epoch));
        }
        if (pos.recovered >= 0) {
            json_object_set_new(obj, "recovered",
                                json_boolean(pos.recovered));
        }
    }
    if (n < count) {
        /* Past the room's presence_limit, or its presence is not full
         * (hub_room_presence): a list of N ids to each of N joiners
         * costs O(N^2). */
        if (r == NULL || r->presence != HUB_PRESENCE_OFF) {
            json_object_set_new(obj, "member_count",
                                json_integer((json_int_t) count));
        }
        hub_send(c, obj);
        return;
    }
    rest = json_dumps(obj, JSON_COMPACT);
    if (rest != NULL) {
        text = hub_members_text(ids, lens, n, rest, &tlen);
        free(rest);
    }
    if (text != NULL) {
        (void) wsh_conn_send(c, WSH_OPCODE_TEXT, text, tlen);
        free(text);
        json_decref(obj);
        return;
    }
    members = json_array();
    for (i = 0; members != NULL && i < n; i++) {
        json_array_append_new(members, json_stringn(ids[i], lens[i]));
    }
    json_object_set_new(obj, "members", members);
    hub_send(c, obj);
}

static void
hub_presence(const char *topic, size_t len, const char *id, size_t idlen,
    int joined, wsh_conn_t *exclude)
{
    const hub_room_rule_t *r = hub_room_rule(hub_conf(), topic, len);
    size_t rlen = len;
    const char *room = hub_topic_name(topic, &rlen);
    json_t *obj;

    if (r != NULL && (!r->announce || r->presence == HUB_PRESENCE_OFF)) {
        return;
    }
    obj = json_pack("{s:s, s:s%, s:s%}", "type",
                    joined ? "user_joined_room" : "user_left_room",
                    "room", room, rlen, "userId", id, idlen);
    if (obj != NULL) {
        hub_publish(WSH_TOPIC_ROOM, topic, len, obj, exclude,
                    WSH_PUBLISH_LOCAL);
    }
}

static void
hub_publish_result(wsh_conn_t *c, const char *to, size_t len, int found)
{
    size_t idlen;

    if (!found && hub_conn_id(c, &idlen) != NULL) {
        to = hub_topic_name(to, &len);
        hub_send(c, json_pack("{s:s, s:s, s:s, s:s%}", "type", "error",
                              "error", "User not found", "request",
                              "private_message", "to", to, len));
    }
}

/* C's messages of ROOM have a hole (wsh_room_position_t): the core takes
 * it out of the room; the client rejoins with since and gets what it
 * missed from the history. */
static void
hub_room_reset(wsh_conn_t *c, const char *room, size_t len,
    const wsh_room_position_t *since)
{
    size_t idlen;

    if (hub_conn_id(c, &idlen) == NULL) {
        return;
    }
    room = hub_topic_name(room, &len);
    hub_send(c, json_pack("{s:s, s:s%, s:o, s:s}", "type", "room_reset",
                          "room", room, len, "since", hub_position(since),
                          "message", "Messages of this room were lost on "
                          "their way to you, or its history was lost: "
                          "rejoin with since"));
}

static const wsh_default_endpoint_t hub_default = { "/ws", NULL, 0 };

const wsh_module_t wsh_hub_module = {
    .name = "hub",
    .api_version = WSHUB_API_VERSION,
    .default_endpoint = &hub_default,
    .conf = &hub_section,
    .room_history = hub_room_history,
    .room_presence = hub_room_presence,
    .numbered = hub_numbered,
    .open = hub_open,
    .message = hub_message,
    .shutdown = hub_shutdown,
    .close = hub_close,
    .members = hub_members,
    .presence = hub_presence,
    .publish_result = hub_publish_result,
    .acked = hub_acked,
    .presence_page = hub_presence_page,
    .room_reset = hub_room_reset,
};
