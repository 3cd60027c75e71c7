/* fake.mjs -- a fake WebSocket for the unit tests of wshub.js.
 *
 * hub() makes a WsHub whose WebSocket constructor records every socket
 * it opens; a test plays the server: open(), welcome(), recv() a message,
 * end() with a close code, and reads what the client sent. Timers are
 * node:test's mock timers, so back-off delays are checked to the
 * millisecond without waiting for them.
 */
import { WsHub } from "../wshub.js";

export class FakeSocket {
    constructor(url, list) {
        this.url = new URL(url);
        this.sent = [];
        this.closed = null;
        list.push(this);
    }

    send(data) {
        this.sent.push(JSON.parse(data));
    }

    close(code) {
        this.closed = code ?? 1005;
    }

    open() {
        this.onopen && this.onopen({});
    }

    recv(obj) {
        this.onmessage && this.onmessage({ data: JSON.stringify(obj) });
    }

    welcome(id = "alice") {
        this.open();
        this.recv({ type: "welcome", id, message: "Welcome to wshub" });
    }

    end(code = 1006, reason = "") {
        this.onclose && this.onclose({ code, reason });
    }

    /* What the client sent of TYPE. */
    of(type) {
        return this.sent.filter((m) => m.type === type);
    }
}

/* Lets the constructor's and getToken's promises run. */
export const settle = () => new Promise((r) => setImmediate(r));

/* A hub on fake sockets, with the mock timers of the test context TC
 * (tick(ms) moves them) and every event recorded: { hub, sockets,
 * events, last(), named(event), tick(ms) }. Closed after the test. */
export async function hub(tc, opts = {}) {
    const sockets = [];
    const events = [];
    tc.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
    const h = new WsHub("ws://127.0.0.1:8080/ws", Object.assign({
        WebSocket: function (url) {
            return new FakeSocket(url, sockets);
        },
        reconnect: { min: 200, max: 5000 },
    }, opts));
    for (const name of ["connect", "disconnect", "reconnecting", "recovered",
                        "error", "private", "broadcast"]) {
        h.on(name, (...args) => events.push([name, ...args]));
    }
    tc.after(() => h.close());
    await settle();
    return {
        hub: h, sockets, events,
        last: () => sockets[sockets.length - 1],
        named: (name) => events.filter((e) => e[0] === name),
        tick: (ms) => tc.mock.timers.tick(ms),
    };
}
