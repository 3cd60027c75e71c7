/* rooms.test.mjs -- wshub.js: rejoin with since, dedup by offset,
 * room_reset, recovery reports, presence, requests. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { hub, settle } from "./fake.mjs";

const E = "9f0c3e7a51d2b846";
const msg = (offset, text, from = "bob", epoch = E) => ({
    type: "room_message", room: "chat:1", text, from, offset, epoch });

/* A hub welcomed, in history room chat:1 at offset 5: { t, room, got }. */
async function inRoom(tc, opts) {
    const t = await hub(tc, opts);
    const got = [];
    const presence = [];
    const room = t.hub.join("chat:1", {
        onMessage: (m) => got.push(m.offset ?? m.text),
        onPresence: (p) => presence.push(p),
    });
    t.last().welcome();
    const join = t.last().of("join_room")[0];
    assert.equal(join.room, "chat:1");
    assert.equal(join.since, undefined);
    t.last().recv({ type: "room_joined", room: "chat:1",
                    members: ["alice", "bob"], offset: 5, epoch: E });
    return { t, room, got, presence };
}

/* Drops the connection and welcomes the next one; the join it sent. */
function reconnect(t, code = 1006) {
    t.last().end(code);
    t.tick(t.named("reconnecting").at(-1)[2]);
    t.last().welcome();
    return t.last().of("join_room").at(-1);
}

test("rejoins with since the last offset it got", async (tc) => {
    const { t, got } = await inRoom(tc);
    t.last().recv(msg(6, "a"));
    t.last().recv(msg(7, "b"));
    assert.deepEqual(got, [6, 7]);
    const join = reconnect(t);
    assert.deepEqual(join.since, { offset: 7, epoch: E });
    assert.equal(typeof join.id, "string");
});

test("drops duplicates by offset and reports what was missed",
     async (tc) => {
    const { t, got } = await inRoom(tc);
    t.last().recv(msg(6, "a"));
    t.last().recv(msg(6, "a again"));
    t.last().recv(msg(4, "old"));
    assert.deepEqual(got, [6]);
    reconnect(t);
    t.last().recv({ type: "room_joined", room: "chat:1", members: [],
                    offset: 9, epoch: E, recovered: true });
    for (const o of [6, 7, 8, 9, 9]) {
        t.last().recv(msg(o, "m" + o));
    }
    t.last().recv(msg(10, "live"));
    assert.deepEqual(got, [6, 7, 8, 9, 10]);
    assert.deepEqual(t.named("recovered"), [["recovered", "chat:1", true, 3]]);
});

test("its own acked messages are not handed back from the replay",
     async (tc) => {
    const { t, room, got } = await inRoom(tc);
    const sent = room.send({ text: "mine", id: 1 });
    assert.deepEqual(t.last().of("room_message")[0],
                     { type: "room_message", room: "chat:1", text: "mine",
                       id: 1 });
    t.last().recv({ type: "ack", id: 1, offset: 7, epoch: E });
    assert.deepEqual(await sent, { type: "ack", id: 1, offset: 7, epoch: E });
    t.last().recv(msg(6, "theirs"));    /* numbered before, came after */
    t.last().recv(msg(8, "next"));
    assert.deepEqual(got, [6, 8]);
    const sent2 = room.send({ text: "mine too", id: 2 });
    t.last().recv({ type: "ack", id: 2, offset: 9, epoch: E });
    await sent2;
    const join = reconnect(t);
    assert.deepEqual(join.since, { offset: 9, epoch: E });
    /* a replay from further back holds them */
    t.last().recv({ type: "room_reset", room: "chat:1",
                    since: { offset: 5, epoch: E }, message: "..." });
    assert.deepEqual(t.last().of("join_room").at(-1).since,
                     { offset: 5, epoch: E });
    t.last().recv({ type: "room_joined", room: "chat:1", offset: 10,
                    epoch: E, recovered: true });
    for (let o = 6; o <= 10; o++) {
        t.last().recv(msg(o, "m" + o, o === 7 || o === 9 ? "alice" : "bob"));
    }
    assert.deepEqual(got, [6, 8, 10]);
    assert.deepEqual(t.named("recovered").at(-1),
                     ["recovered", "chat:1", true, 1]);
});

test("an unacked message of its own comes back through the replay",
     async (tc) => {
    const { t, room, got } = await inRoom(tc);
    const sent = room.send({ text: "lost ack", id: "x" });
    reconnect(t);
    await assert.rejects(sent, { code: "disconnected" });
    t.last().recv({ type: "room_joined", room: "chat:1", offset: 6,
                    epoch: E, recovered: true });
    t.last().recv(msg(6, "lost ack", "alice"));
    assert.deepEqual(got, [6]);
});

test("recovered: false when the server could not replay", async (tc) => {
    const { t, got } = await inRoom(tc);
    reconnect(t);
    t.last().recv({ type: "room_joined", room: "chat:1", offset: 2000,
                    epoch: E, recovered: false });
    assert.deepEqual(t.named("recovered"), [["recovered", "chat:1", false,
                                             0]]);
    t.last().recv(msg(2001, "live"));
    t.last().recv(msg(1999, "old"));
    assert.deepEqual(got, [2001]);
    assert.deepEqual(reconnect(t).since, { offset: 2001, epoch: E });
});

test("room_reset: rejoins with its since; a new epoch is a loss",
     async (tc) => {
    const { t, got } = await inRoom(tc);
    t.last().recv(msg(6, "a"));
    t.last().recv(msg(7, "b"));
    /* a hole on the server's way: it replays from 6 */
    t.last().recv({ type: "room_reset", room: "chat:1",
                    since: { offset: 6, epoch: E }, message: "lost" });
    assert.deepEqual(t.last().of("join_room").at(-1).since,
                     { offset: 6, epoch: E });
    t.last().recv({ type: "room_joined", room: "chat:1", offset: 8,
                    epoch: E, recovered: true });
    t.last().recv(msg(7, "b"));
    t.last().recv(msg(8, "c"));
    assert.deepEqual(got, [6, 7, 8]);
    assert.deepEqual(t.named("recovered").at(-1),
                     ["recovered", "chat:1", true, 1]);
    /* the history itself was lost: offset 0 of a new epoch */
    const F = "0123456789abcdef";
    t.last().recv({ type: "room_reset", room: "chat:1",
                    since: { offset: 0, epoch: F }, message: "lost" });
    assert.deepEqual(t.last().of("join_room").at(-1).since,
                     { offset: 0, epoch: F });
    t.last().recv({ type: "room_joined", room: "chat:1", offset: 2,
                    epoch: F, recovered: true });
    t.last().recv(msg(1, "x", "bob", F));
    t.last().recv(msg(2, "y", "bob", F));
    assert.deepEqual(got, [6, 7, 8, 1, 2]);
    assert.deepEqual(t.named("recovered").at(-1),
                     ["recovered", "chat:1", false, 2]);
    assert.deepEqual(reconnect(t).since, { offset: 2, epoch: F });
});

test("server_shutdown's rooms give the since of a join not answered yet",
     async (tc) => {
    const t = await hub(tc);
    t.hub.join("chat:2");
    t.last().welcome();
    t.last().recv({ type: "server_shutdown", reconnect_after_ms: 300,
                    rooms: { "chat:2": { offset: 41, epoch: E } } });
    assert.deepEqual(reconnect(t, 1012).since, { offset: 41, epoch: E });
});

test("rooms without history rejoin without since", async (tc) => {
    const t = await hub(tc);
    const got = [];
    t.hub.join("lobby", { onMessage: (m) => got.push(m.text) });
    t.last().welcome();
    t.last().recv({ type: "room_joined", room: "lobby", members: ["alice"] });
    t.last().recv({ type: "room_message", room: "lobby", text: "hi" });
    t.last().recv({ type: "room_message", room: "lobby", text: "hi" });
    assert.deepEqual(got, ["hi", "hi"]);
    assert.equal(reconnect(t).since, undefined);
    assert.equal(t.named("recovered").length, 0);
});

test("join's since option: the first join recovers too", async (tc) => {
    const t = await hub(tc);
    t.hub.join("chat:1", { since: { offset: 3, epoch: E } });
    t.last().welcome();
    assert.deepEqual(t.last().of("join_room")[0].since,
                     { offset: 3, epoch: E });
    t.last().recv({ type: "room_joined", room: "chat:1", offset: 5,
                    epoch: E, recovered: true });
    assert.deepEqual(t.named("recovered"), [["recovered", "chat:1", true, 2]]);
});

test("requests wait for the welcome and the join", async (tc) => {
    const t = await hub(tc);
    const room = t.hub.join("chat:1");
    const a = room.send({ text: "early" });
    const b = t.hub.to("bob").send({ text: "psst" });
    const c = t.hub.broadcast({ text: "all", id: 5 });
    t.last().welcome();
    assert.deepEqual(t.last().sent.map((m) => m.type),
                     ["join_room", "private_message", "broadcast"]);
    assert.deepEqual(t.last().sent[1], { type: "private_message", to: "bob",
                                         text: "psst" });
    await b;
    t.last().recv({ type: "room_joined", room: "chat:1", offset: 0,
                    epoch: E });
    assert.equal(t.last().sent[3].text, "early");
    await a;
    t.last().recv({ type: "ack", id: 5 });
    assert.deepEqual(await c, { type: "ack", id: 5 });
});

test("errors reject the request of their id, or reach the error event",
     async (tc) => {
    const t = await hub(tc);
    t.last().welcome();
    const p = t.hub.to("carol").send({ text: "x", id: 9 });
    t.last().recv({ type: "error", error: "Invalid target",
                    request: "private_message", id: 9 });
    await assert.rejects(p, { code: "server", message: "Invalid target" });
    t.last().recv({ type: "error", error: "User not found",
                    request: "private_message", to: "carol" });
    assert.equal(t.named("error")[0][1].message, "User not found");
    /* a refused join drops the room */
    t.hub.join("secret");
    const join = t.last().of("join_room")[0];
    t.last().recv({ type: "error", error: "Not allowed",
                    request: "join_room", id: join.id });
    assert.equal(t.named("error")[1][1].message, "Not allowed");
    assert.equal(t.hub.rooms.has("secret"), false);
    t.hub.join("full");
    t.last().recv({ type: "error", error: "Room full",
                    request: "join_room", room: "full" });
    assert.equal(t.hub.rooms.has("full"), false);
    assert.equal(reconnect(t), undefined);
});

test("leave() leaves for good", async (tc) => {
    const t = await hub(tc);
    const room = t.hub.join("chat:1");
    t.last().welcome();
    t.last().recv({ type: "room_joined", room: "chat:1", members: [] });
    room.leave();
    assert.deepEqual(t.last().sent.at(-1), { type: "leave_room",
                                             room: "chat:1" });
    await assert.rejects(room.send({ text: "x" }), { code: "closed" });
    assert.equal(reconnect(t), undefined);
});

test("presence: members on join, joins and leaves", async (tc) => {
    const { t, presence } = await inRoom(tc);
    t.last().recv({ type: "user_joined_room", room: "chat:1",
                    userId: "carol" });
    t.last().recv({ type: "user_left_room", room: "chat:1", userId: "bob" });
    assert.deepEqual(presence, [
        { type: "members", members: ["alice", "bob"], count: 2 },
        { type: "join", id: "carol" }, { type: "leave", id: "bob" }]);
    t.last().recv({ type: "room_joined", room: "chat:1", member_count: 20417,
                    offset: 5, epoch: E });
    assert.deepEqual(presence.at(-1), { type: "members", members: undefined,
                                        count: 20417 });
});

test("members() pages, pages() walks them, count()", async (tc) => {
    const { t, room } = await inRoom(tc);
    const ids = [];
    const walk = (async () => {
        for await (const page of room.pages({ limit: 2 })) {
            ids.push(...page.members);
        }
    })();
    await settle();
    let req = t.last().of("room_members").at(-1);
    assert.equal(req.limit, 2);
    assert.equal(req.cursor, undefined);
    t.last().recv({ type: "room_members", room: "chat:1", member_count: 3,
                    members: ["alice", "bob"], cursor: "2", id: req.id });
    await settle();
    req = t.last().of("room_members").at(-1);
    assert.equal(req.cursor, "2");
    t.last().recv({ type: "room_members", room: "chat:1", member_count: 3,
                    members: ["carol"], id: req.id });
    await walk;
    assert.deepEqual(ids, ["alice", "bob", "carol"]);
    const n = room.count();
    req = t.last().of("room_count").at(-1);
    t.last().recv({ type: "room_count", room: "chat:1", member_count: 3,
                    id: req.id });
    assert.equal(await n, 3);
});

test("private messages and broadcasts reach their events", async (tc) => {
    const t = await hub(tc);
    t.last().welcome();
    t.last().recv({ type: "private_message", to: "alice", text: "hi",
                    from: "bob" });
    t.last().recv({ type: "broadcast", text: "all", from: "bob" });
    assert.deepEqual(t.named("private")[0][1].text, "hi");
    assert.deepEqual(t.named("broadcast")[0][1].text, "all");
});
