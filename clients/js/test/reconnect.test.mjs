/* reconnect.test.mjs -- wshub.js: back-off, refusals, 1008, tokens. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoff } from "../wshub.js";
import { hub, settle } from "./fake.mjs";

test("backoff stays within [min, max] and doubles per attempt", () => {
    for (const [min, max] of [[500, 30000], [100, 150], [1000, 1000]]) {
        for (let a = 1; a < 60; a++) {
            for (const r of [0, 0.25, 0.5, 0.999, 1]) {
                const d = backoff(a, min, max, () => r);
                assert.ok(d >= min && d <= max, `${a} ${r}: ${d}`);
                /* the upper half of min * 2^a, capped */
                const cap = Math.min(max, min * 2 ** a);
                assert.ok(d >= Math.min(cap / 2, max) - 1 || d === min);
                assert.ok(d <= cap);
            }
        }
    }
    assert.equal(backoff(1, 500, 30000, () => 0), 500);
    assert.equal(backoff(1, 500, 30000, () => 1), 1000);
    assert.equal(backoff(3, 500, 30000, () => 0), 2000);
    assert.equal(backoff(40, 500, 30000, () => 1), 30000);
    assert.equal(backoff(40, 500, 30000, () => 0), 15000);
});

test("backoff is jittered", () => {
    const seen = new Set();
    for (let i = 0; i < 50; i++) {
        seen.add(backoff(5, 500, 30000));
    }
    assert.ok(seen.size > 10, [...seen].join(" "));
});

test("id and token go in the query, getToken before each connect", async (tc) => {
    let n = 0;
    const t = await hub(tc, { id: "alice", getToken: async () => "tok" + ++n });
    assert.equal(t.sockets.length, 1);
    assert.equal(t.last().url.searchParams.get("id"), "alice");
    assert.equal(t.last().url.searchParams.get("token"), "tok1");
    t.last().welcome();
    t.last().end(1006);
    t.tick(t.named("reconnecting")[0][2]);
    await settle();
    assert.equal(t.sockets.length, 2);
    assert.equal(t.last().url.searchParams.get("token"), "tok2");
    assert.equal(n, 2);
});

test("tokenParam names the query parameter; http URLs become ws", async (tc) => {
    const t = await hub(tc, { token: "abc", tokenParam: "access_token" });
    assert.equal(t.last().url.searchParams.get("access_token"), "abc");
    assert.equal(t.last().url.searchParams.get("token"), null);
    assert.equal(t.last().url.protocol, "ws:");
});

test("reconnects with growing jittered delays, never at once", async (tc) => {
    const t = await hub(tc, { reconnect: { min: 200, max: 3000 } });
    t.last().welcome();
    t.last().end(1006);
    let prev = 0;
    for (let a = 1; a <= 8; a++) {
        const [, attempt, delay] = t.named("reconnecting").at(-1);
        assert.equal(attempt, a);
        assert.ok(delay >= 200 && delay <= 3000, delay);
        assert.ok(delay <= Math.min(3000, 200 * 2 ** a));
        assert.ok(delay >= Math.min(1500, 100 * 2 ** a));
        const n = t.sockets.length;
        t.tick(delay - 1);
        assert.equal(t.sockets.length, n, "connected before the delay");
        t.tick(1);
        assert.equal(t.sockets.length, n + 1);
        t.last().open();        /* opens, then drops before a welcome */
        t.last().end(1006);
        prev = delay;
    }
    assert.ok(prev >= 1500);
    /* a welcome starts the back-off again */
    t.tick(t.named("reconnecting").at(-1)[2]);
    assert.equal(t.sockets.length, 10);
    t.last().welcome();
    t.last().end(1011);
    assert.equal(t.named("reconnecting").at(-1)[1], 1);
    assert.ok(t.named("reconnecting").at(-1)[2] <= 400);
    assert.equal(t.named("connect").length, 2);
    assert.deepEqual(t.named("disconnect").at(-1), ["disconnect", 1011, ""]);
});

test("reconnect.min has a floor: no tight loop", async (tc) => {
    const t = await hub(tc, { reconnect: { min: 0, max: 0 } });
    t.last().welcome();
    t.last().end(1006);
    assert.ok(t.named("reconnecting")[0][2] >= 100);
});

test("close code 1008 stops for good with an error", async (tc) => {
    const t = await hub(tc);
    t.last().welcome();
    const sent = t.hub.broadcast({ text: "x", id: 1 });
    t.last().end(1008, "rate limit");
    await assert.rejects(sent, { code: "disconnected" });
    const later = t.hub.broadcast({ text: "y" });
    await assert.rejects(later, { code: "closed" });
    assert.equal(t.named("error").length, 1);
    assert.equal(t.named("error")[0][1].code, "policy");
    assert.match(t.named("error")[0][1].message, /1008: rate limit/);
    assert.equal(t.named("reconnecting").length, 0);
    t.tick(10 * 60 * 1000);
    assert.equal(t.sockets.length, 1);
    /* until the application asks */
    t.hub.connect();
    assert.equal(t.sockets.length, 2);
});

test("refused handshakes: error after 3, then about max apart", async (tc) => {
    const t = await hub(tc, { reconnect: { min: 200, max: 10000 } });
    for (let i = 1; i <= 6; i++) {
        t.last().end(1006);     /* never opened: 401, 403 or no server */
        const [, attempt, delay] = t.named("reconnecting").at(-1);
        assert.equal(attempt, i);
        if (i < 3) {
            assert.ok(delay <= 200 * 2 ** i);
            assert.equal(t.named("error").length, 0);
        } else {
            assert.ok(delay >= 5000 && delay <= 10000, delay);
            assert.equal(t.named("error").length, 1);
            assert.equal(t.named("error")[0][1].code, "refused");
        }
        t.tick(delay);
    }
    assert.equal(t.sockets.length, 7);
});

test("a server that was reachable once is not called refusing", async (tc) => {
    const t = await hub(tc, { reconnect: { min: 200, max: 1000 } });
    t.last().welcome();
    t.last().end(1006);
    for (let i = 0; i < 5; i++) {
        t.tick(t.named("reconnecting").at(-1)[2]);
        t.last().end(1006);
    }
    assert.equal(t.named("error").length, 0);
});

test("no welcome within timeout: dropped and retried", async (tc) => {
    const t = await hub(tc, { timeout: 3000 });
    t.last().open();
    t.tick(2999);
    assert.equal(t.named("reconnecting").length, 0);
    t.tick(1);
    assert.notEqual(t.sockets[0].closed, null);
    assert.equal(t.named("reconnecting").length, 1);
});

test("a silent connection is dropped after a ping period", async (tc) => {
    const t = await hub(tc, { ping: 1000 });
    t.last().welcome();
    t.tick(1000);
    assert.equal(t.last().of("ping").length, 1);
    t.last().recv({ type: "pong" });
    t.tick(1000);
    assert.equal(t.last().of("ping").length, 2);
    t.tick(1000);     /* nothing heard since */
    assert.deepEqual(t.named("disconnect")[0], ["disconnect", 1006,
                                                "ping timeout"]);
    assert.equal(t.named("reconnecting").length, 1);
});

test("server_shutdown: back after reconnect_after_ms, jittered", async (tc) => {
    const t = await hub(tc, { reconnect: { min: 200, max: 5000 } });
    t.last().welcome();
    t.last().recv({ type: "server_shutdown", message: "Server restarting",
                    reconnect_after_ms: 1500 });
    t.last().end(1012);
    const delay = t.named("reconnecting")[0][2];
    assert.ok(delay >= 1500 && delay <= 1700, delay);
    t.tick(1499);
    assert.equal(t.sockets.length, 1);
    t.tick(delay - 1499);
    assert.equal(t.sockets.length, 2);
});

test("close() stops; requests made meanwhile fail", async (tc) => {
    const t = await hub(tc);
    t.last().welcome();
    t.hub.close();
    assert.equal(t.sockets[0].closed, 1000);
    assert.equal(t.named("disconnect").length, 1);
    await assert.rejects(t.hub.to("bob").send({ text: "x" }),
                         { code: "closed" });
    t.tick(60000);
    assert.equal(t.sockets.length, 1);
});

test("a URL no WebSocket can take stops with an error", async (tc) => {
    const t = await hub(tc);
    t.hub.close();
    t.hub.url = "/ws";          /* relative, and no page to resolve it */
    t.hub.connect();
    await settle();
    assert.equal(t.named("error").at(-1)[1].code, "url");
    assert.equal(t.sockets.length, 1);
    t.tick(60000);
    assert.equal(t.sockets.length, 1);
});
