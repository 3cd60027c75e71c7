/* wshub.js -- the browser client of wshub's hub protocol.
 *
 * One ES module, no dependencies: rooms, presence, private messages and
 * broadcasts of wshub-protocol(7) over one WebSocket that comes back by
 * itself. It reconnects with jittered exponential back-off (or after
 * the server's reconnect_after_ms on a reload), rejoins every room, with
 * "since" in rooms with history so that nothing is lost, drops what it
 * already has by offset, and tells the application when a room could not
 * be recovered. wshub.d.ts beside it types the API; wshub-protocol(7),
 * CLIENT LIBRARY, documents it.
 *
 *   import { WsHub } from "/client?wshub.js";
 *   const hub = new WsHub("/ws", { id: "alice" });
 *   const room = hub.join("chat:lobby", { onMessage: (m) => show(m) });
 *   room.send({ text: "hi" });
 */

/* The delay before reconnect ATTEMPT (1, 2, ...): drawn at random in the
 * upper half of min * 2^attempt, capped at max, never below min. */
export function backoff(attempt, min, max, random = Math.random) {
    const cap = Math.min(max, min * 2 ** Math.min(attempt, 30));
    return Math.max(min, Math.round(cap / 2 + random() * cap / 2));
}

const error = (code, message, extra) =>
    Object.assign(new Error(message), { code }, extra);
const key = (id) => JSON.stringify(id);

/* A room joined through WsHub.join(). Its position (epoch, offset) is
 * the last message the application has of a room with history; OWN holds
 * the offsets of its own messages past it (from their acks), which the
 * server replays like the others and the application must not get. */
class Room {
    constructor(hub, name, opts) {
        this.hub = hub;
        this.name = name;
        this.onMessage = opts.onMessage;
        this.onPresence = opts.onPresence;
        this.since = opts.since;        /* the next join's, once */
        this.state = 0;                 /* 0 out, 1 joining, 2 joined */
        this.queue = [];                /* requests waiting for the join */
        this.own = new Set();
        this.epoch = this.offset = undefined;
    }

    /** Sends a room_message; resolves on its ack when OBJ has an id. */
    send(obj) {
        return this.hub._request(Object.assign({}, obj, {
            type: "room_message", room: this.name }), this);
    }

    /** A page of the members: {members, count, cursor}. */
    async members(opts = {}) {
        const m = await this.hub._request({ type: "room_members",
            room: this.name, cursor: opts.cursor, limit: opts.limit,
            id: this.hub._id() }, this);
        return { members: m.members || [], count: m.member_count,
                 cursor: m.cursor };
    }

    /** Every page of the members, in turn. */
    async *pages(opts = {}) {
        let cursor;
        do {
            const page = await this.members({ cursor, limit: opts.limit });
            yield page;
            cursor = page.cursor;
        } while (cursor && cursor !== "0");
    }

    /** The number of members. */
    async count() {
        return (await this.hub._request({ type: "room_count",
            room: this.name, id: this.hub._id() }, this)).member_count;
    }

    leave() {
        const hub = this.hub;
        if (hub.rooms.get(this.name) !== this) {
            return;
        }
        hub.rooms.delete(this.name);
        if (this.state) {
            hub._send({ type: "leave_room", room: this.name });
        }
        this._fail(error("closed", "left the room"));
    }

    _fail(e) {
        for (const q of this.queue.splice(0)) {
            q[1](e);
        }
    }

    _join(since) {
        const hub = this.hub;
        this.since = since = since ?? (this.epoch === undefined ? this.since
            : { offset: this.offset, epoch: this.epoch });
        this.state = 1;
        const id = hub._id();
        hub.pending.set(key(id), [null, (e) => this._refused(e), 1]);
        this.joinId = id;
        hub._send({ type: "join_room", room: this.name, since, id });
    }

    _refused(e) {
        if (this.hub.rooms.get(this.name) === this) {
            this.hub.rooms.delete(this.name);
            this._fail(e);
            this.hub._emit("error", e);
        }
    }

    _joined(m) {
        const hub = this.hub, since = this.since;
        hub.pending.delete(key(this.joinId));
        this.since = undefined;
        if (m.epoch !== undefined) {
            const same = m.epoch === this.epoch;
            let missed = 0;
            if (since && m.recovered) {
                /* (since, m.offset] follows: what the app has already,
                 * its own messages included, is dropped as it comes. */
                const base = same ? Math.max(this.offset, since.offset)
                                  : since.offset;
                if (!same) {
                    this.own.clear();
                }
                missed = Math.max(0, m.offset - base);
                for (const o of this.own) {
                    missed -= o > base && o <= m.offset;
                }
                this.offset = base;
            } else {
                this.own.clear();
                this.offset = m.offset;
            }
            /* A new epoch: what the old one held past our offset is
             * gone, whatever the server could replay of the new one. */
            if (since) {
                hub._emit("recovered", this.name, !!m.recovered &&
                          (same || this.epoch === undefined), missed);
            }
            this.epoch = m.epoch;
        } else if (since) {
            hub._emit("recovered", this.name, false, 0);
        }
        this.state = 2;
        this.onPresence && this.onPresence({ type: "members",
            members: m.members, count: m.member_count
                ?? (m.members && m.members.length) });
        for (const q of this.queue.splice(0)) {
            q[0]();
        }
    }

    /* Messages of a room with history come in offset order, the replay
     * after a rejoin first: one at or before our offset, or one of our
     * own, is one the application has. */
    _message(m) {
        if (typeof m.offset === "number" && this.epoch !== undefined) {
            let dup = false;
            if (m.epoch === this.epoch) {
                dup = m.offset <= this.offset || this.own.delete(m.offset);
            } else {
                this.epoch = m.epoch;
                this.own.clear();
            }
            this.offset = Math.max(this.offset, m.offset);
            this._advance();
            if (dup) {
                return;
            }
        }
        this.onMessage && this.onMessage(m);
    }

    _ack(a) {
        if (a.epoch === this.epoch && a.offset > this.offset) {
            this.own.add(a.offset);
            this._advance();
        }
    }

    _advance() {
        while (this.own.delete(this.offset + 1)) {
            this.offset++;
        }
    }
}

export class WsHub {
    /**
     * @param url  ws://, wss://, or a path resolved against the page
     * @param opts {id, token | getToken, reconnect: {min, max}, ...}:
     *   see wshub.d.ts
     */
    constructor(url, opts = {}) {
        const r = opts.reconnect || {};
        this.url = url;
        this.opts = opts;
        this.min = Math.max(100, r.min ?? 500);
        this.max = Math.max(this.min, r.max ?? 30000);
        this.WebSocket = opts.WebSocket || globalThis.WebSocket;
        this.rooms = new Map();
        this.pending = new Map();       /* key(id) -> [resolve, reject] */
        this.queue = [];                /* requests waiting for welcome */
        this.handlers = {};
        this.seq = 0;
        this.attempt = 0;       /* reconnections since the last welcome */
        this.fails = 0;         /* connections in a row that never opened */
        this.welcomed = false;  /* ever */
        this.ready = false;     /* welcomed on this connection */
        this.id = null;
        this.ws = null;
        this.timer = null;
        this.stopped = false;
        this.shutdown = null;   /* reconnect_after_ms of server_shutdown */
        Promise.resolve().then(() => this._connect());
    }

    on(name, fn) {
        (this.handlers[name] ||= []).push(fn);
        return this;
    }

    off(name, fn) {
        const h = this.handlers[name] || [];
        h.includes(fn) && h.splice(h.indexOf(fn), 1);
        return this;
    }

    /** Joins ROOM (again after every reconnect) until leave(). */
    join(name, opts = {}) {
        let room = this.rooms.get(name);
        if (!room) {
            room = new Room(this, name, opts);
            this.rooms.set(name, room);
            this.ready && room._join(room.since);
        }
        return room;
    }

    /** hub.to(id).send(obj): a private_message. */
    to(id) {
        return { send: (obj) => this._request(Object.assign({}, obj,
            { type: "private_message", to: id })) };
    }

    broadcast(obj) {
        return this._request(Object.assign({}, obj, { type: "broadcast" }));
    }

    /** Stops for good (until connect()). */
    close() {
        const ws = this.ws;
        this._stop();
        if (ws) {
            ws.onclose({ code: 1000, reason: "closed" });
            ws.close(1000);
        }
    }

    /* No more connections; what waits fails with E, and the error event
     * tells E when it is not close()'s. */
    _stop(e) {
        this.stopped = true;
        clearTimeout(this.timer);
        e && this._emit("error", e);
        e = e || error("closed", "closed");
        for (const q of this.queue.splice(0)) {
            q[1](e);
        }
        for (const room of this.rooms.values()) {
            room._fail(e);
        }
    }

    /** Connects again after close() or a stop. */
    connect() {
        if (this.stopped) {
            this.stopped = false;
            this.attempt = this.fails = 0;
            this._connect();
        }
    }

    _id() {
        return "wshub." + ++this.seq;
    }

    _emit(name, ...args) {
        for (const fn of (this.handlers[name] || []).slice()) {
            fn(...args);
        }
    }

    _send(msg) {
        this.ws.send(JSON.stringify(msg));
    }

    /* Sends MSG now, or once welcomed (and ROOM joined); resolves at once,
     * or with the answer to its id. */
    _request(msg, room) {
        return new Promise((resolve, reject) => {
            const go = () => {
                if (msg.id !== undefined) {
                    this.pending.set(key(msg.id), [(a) => {
                        room && a.type === "ack" && room._ack(a);
                        resolve(a);
                    }, reject]);
                }
                this._send(msg);
                msg.id === undefined && resolve();
            };
            if (this.stopped || room && this.rooms.get(room.name) !== room) {
                reject(error("closed", "closed"));
            } else if (this.ready && (!room || room.state === 2)) {
                go();
            } else {
                (room || this).queue.push([go, reject]);
            }
        });
    }

    async _connect() {
        const o = this.opts;
        let token = o.token;
        this.timer = null;
        try {
            if (o.getToken) {
                token = await o.getToken();
            }
        } catch (e) {
            this._emit("error", error("token", "getToken: " + e, { cause: e }));
            return this._retry(false);
        }
        if (this.stopped) {
            return;
        }
        let opened = false, ws;
        try {
            const url = new URL(this.url, globalThis.location &&
                                          globalThis.location.href);
            url.protocol = url.protocol.replace("http", "ws");
            o.id && url.searchParams.set("id", o.id);
            token && url.searchParams.set(o.tokenParam || "token", token);
            ws = this.ws = new this.WebSocket(url.href);
        } catch (e) {
            return this._stop(error("url", "" + e, { cause: e }));
        }
        const drop = (code, reason) => {
            clearTimeout(ws.limit);
            clearInterval(ws.ping);
            if (this.ws === ws) {
                this.ws = null;
                ws.onclose = ws.onmessage = null;
                this._closed(code, reason, opened);
            }
        };
        /* No welcome in time: a handshake or a network that hangs. */
        ws.limit = setTimeout(() => {
            drop(1006, "timeout");
            ws.close();
        }, o.timeout || 10000);
        ws.onopen = () => {
            opened = true;
        };
        ws.onerror = () => {};
        ws.onclose = (ev) => drop(ev.code, ev.reason);
        ws.onmessage = (ev) => {
            ws.heard = true;
            this._message(ws, ev.data);
        };
    }

    _closed(code, reason, opened) {
        const e = error("disconnected", "disconnected");
        const was = this.ready;
        this.ready = false;
        for (const room of this.rooms.values()) {
            room.state = 0;
        }
        /* Joins are sent again once welcomed: only requests fail. */
        for (const [k, p] of this.pending) {
            p[2] || p[1](e);
            this.pending.delete(k);
        }
        was && this._emit("disconnect", code, reason);
        if (this.stopped) {
            return;
        }
        if (code === 1008) {
            /* Policy Violation: a rate limit, or the server would not
             * have us: coming back would do it again. (A slow consumer
             * is dropped without a close frame: 1006, and we retry.) */
            return this._stop(error("policy", "closed with 1008: " + reason,
                                    { reason }));
        }
        this._retry(opened);
    }

    /* Schedules the next connection. Handshakes refused (401, 403) look
     * to a browser like an unreachable server: after "refusals"
     * connections in a row that never opened, and never a welcome since
     * the start, the error event says so and every attempt waits about
     * max from then on. */
    _retry(opened) {
        const n = this.opts.refusals || 3;
        let delay;
        this.fails = opened ? 0 : this.fails + 1;
        this.attempt++;
        if (this.shutdown !== null) {
            delay = this.shutdown + Math.round(Math.random() * this.min);
            this.shutdown = null;
        } else if (!this.welcomed && this.fails >= n) {
            this.fails === n && this._emit("error", error("refused",
                "no connection to " + this.url + " opened " + n +
                " times in a row: refused, or unreachable"));
            delay = backoff(99, this.min, this.max);
        } else {
            delay = backoff(this.attempt, this.min, this.max);
        }
        this._emit("reconnecting", this.attempt, delay);
        this.timer = setTimeout(() => this._connect(), delay);
    }

    _settle(m, failed) {
        const p = m.id !== undefined && this.pending.get(key(m.id));
        if (p) {
            this.pending.delete(key(m.id));
            failed ? p[1](error("server", m.error, { reply: m }))
                   : p[0] && p[0](m);
        }
        return p;
    }

    _message(ws, data) {
        let m;
        try {
            m = JSON.parse(data);
        } catch (e) {
            return;
        }
        const room = this.rooms.get(m.room);
        this._emit("message", m);
        switch (m.type) {
        case "welcome":
            clearTimeout(ws.limit);
            this.id = m.id;
            this.ready = this.welcomed = true;
            this.attempt = 0;
            if (this.opts.ping !== 0) {
                /* Nothing heard for a whole period after a ping: the
                 * connection is dead without a FIN (a suspended laptop,
                 * a NAT that forgot it). */
                ws.ping = setInterval(() => {
                    if (!ws.heard) {
                        ws.onclose({ code: 1006, reason: "ping timeout" });
                        return ws.close();
                    }
                    ws.heard = false;
                    this._send({ type: "ping" });
                }, this.opts.ping || 25000);
            }
            this._emit("connect", m.id);
            for (const r of this.rooms.values()) {
                r._join();
            }
            for (const q of this.queue.splice(0)) {
                q[0]();
            }
            break;
        case "room_joined":
            room && room._joined(m);
            break;
        case "room_message":
            room && room._message(m);
            break;
        case "user_joined_room":
        case "user_left_room":
            room && room.onPresence && room.onPresence({
                type: m.type === "user_joined_room" ? "join" : "leave",
                id: m.userId });
            break;
        case "room_reset":
            /* Out of the room: back in from the position it gives. */
            if (room) {
                room._join(m.since);
            }
            break;
        case "server_shutdown":
            this.shutdown = m.reconnect_after_ms ?? null;
            for (const [name, pos] of Object.entries(m.rooms || {})) {
                const r = this.rooms.get(name);
                if (r && r.epoch === undefined) {
                    r.epoch = pos.epoch;
                    r.offset = pos.offset;
                }
            }
            break;
        case "error":
            if (!this._settle(m, true)) {
                const e = error("server", m.error, { reply: m });
                m.request === "join_room" && room ? room._refused(e)
                                                  : this._emit("error", e);
            }
            break;
        case "private_message":
        case "broadcast":
            this._emit(m.type === "broadcast" ? m.type : "private", m);
            break;
        default:
            this._settle(m, false);
        }
    }
}
