/* chat.js -- the chat page of examples/chat, on wshub.js.
 *
 * Rooms (messages of a room with history are kept in offset order, the
 * page's own ones placed when their ack gives their offset), members
 * (presence, and every page of a big room on demand), private messages
 * (click a member), and the connection's state in the header:
 * "reconnecting… attempt 2 in 1.3 s", then "recovered 12 messages".
 * window.chat is the page's state, for the console and for tests.
 */
/* The library beside this script: PATH?wshub.js ("?wshub.js" alone is
 * not a module specifier). */
const { WsHub } = await import(new URL("?wshub.js", import.meta.url).href);

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.hash.slice(1));
const me = params.get("id") ||
    "guest-" + Math.random().toString(16).slice(2, 6);
const hub = new WsHub(params.get("ws") || "/ws", {
    id: me,
    token: params.get("token") || undefined,
    reconnect: { min: +params.get("min") || 500,
                 max: +params.get("max") || 10000 },
});
const PRIVATE = "@private";
const rooms = new Map();        /* name -> { room, log, tab, members } */
let current = null;             /* the room shown */
let target = null;              /* a member: private messages go to it */
let seq = 0;
let trouble = null;             /* a refusal, until a welcome */

const chat = window.chat = { hub, me, recoveries: [], errors: [],
                             status: "connecting", say };

function el(tag, props, ...children) {
    const e = Object.assign(document.createElement(tag), props);
    e.append(...children);
    return e;
}

function setStatus(text, cls, note = "") {
    $("#status").textContent = text;
    $("#status").className = cls;
    $("#note").textContent = note;
    chat.status = text;
}

/* Where LI goes in LOG: numbered lines in offset order, the others
 * (notes, lines of rooms without history) as they come, and lines still
 * waiting for their ack last. */
function place(log, li) {
    let before = null;
    if (li.dataset.offset) {
        const o = +li.dataset.offset;
        before = [...log.querySelectorAll("li[data-offset]")]
            .find((x) => +x.dataset.offset > o);
    }
    log.insertBefore(li, before || log.querySelector("li.pending"));
    log.scrollTop = log.scrollHeight;
}

function line(m) {
    const li = el("li", {}, el("b", {}, m.from === me ? "me" : m.from),
                  String(m.text ?? JSON.stringify(m)));
    if (m.offset !== undefined) {
        li.dataset.offset = m.offset;
        li.prepend(el("span", { className: "o" }, "#" + m.offset));
    }
    typeof m.text === "string" && (li.dataset.text = m.text);
    li.classList.toggle("me", m.from === me);
    return li;
}

function note(name, text) {
    const r = rooms.get(name);
    r && place(r.log, el("li", { className: "sys" }, text));
}

function logFor(name) {
    const log = el("ol", {});
    log.dataset.room = name;
    $("#logs").append(log);
    return log;
}

function addRoom(name) {
    if (rooms.has(name)) {
        return show(name);
    }
    const r = { log: logFor(name), members: new Set(), count: 0,
                tab: el("li", {}, name, el("span", { className: "n" })) };
    r.tab.onclick = () => show(name);
    $("#rooms").append(r.tab);
    rooms.set(name, r);
    if (name !== PRIVATE) {
        r.room = hub.join(name, {
            onMessage: (m) => received(r, m),
            onPresence: (p) => presence(name, p),
        });
    }
    show(name);
}

/* A message of the room; one of ours replayed after a lost ack takes
 * the place of the line that waited for it. */
function received(r, m) {
    const mine = m.from === me && m.id !== undefined &&
        r.log.querySelector(`li[data-id="${CSS.escape(String(m.id))}"]`);
    mine && mine.remove();
    place(r.log, line(m));
}

function presence(name, p) {
    const r = rooms.get(name);
    if (p.type === "members") {
        r.members = new Set(p.members || []);
        r.count = p.count ?? r.members.size;
    } else if (p.type === "join") {
        r.members.add(p.id);
        r.count++;
    } else {
        r.members.delete(p.id);
        r.count--;
    }
    name === current && drawMembers();
}

function drawMembers() {
    const r = rooms.get(current);
    const ul = $("#members");
    ul.replaceChildren();
    $("#count").textContent = r && r.room ? "(" + r.count + ")" : "";
    for (const id of [...(r ? r.members : [])].sort()) {
        const li = el("li", { className: id === target ? "on" : "" },
                      id === me ? id + " (me)" : id);
        li.onclick = () => {
            target = id === me || id === target ? null : id;
            drawMembers();
            drawTo();
        };
        ul.append(li);
    }
}

function drawTo() {
    $("#to").textContent = target ? "to @" + target : "to " + current;
}

function show(name) {
    current = name;
    for (const [n, r] of rooms) {
        r.log.classList.toggle("on", n === name);
        r.tab.classList.toggle("on", n === name);
    }
    drawMembers();
    drawTo();
}

/* Sends TEXT to the member chosen, or to ROOM (the one shown); resolves
 * once the server has it (its ack). */
async function say(text, room = current) {
    const id = me + "." + ++seq;
    const priv = target && room === current;
    const r = rooms.get(priv ? PRIVATE : room);
    if (!priv && !(r && r.room)) {
        throw new Error("choose a room, or a member to write to");
    }
    const li = line({ from: me, text: priv ? "@" + target + " " + text
                                           : text });
    li.dataset.id = id;
    li.classList.add("pending");
    place(r.log, li);
    try {
        const ack = await (priv ? hub.to(target) : r.room)
            .send({ text, id });
        li.classList.remove("pending");
        if (ack && ack.offset !== undefined) {
            li.dataset.offset = ack.offset;
            li.prepend(el("span", { className: "o" }, "#" + ack.offset));
        }
        return ack;
    } catch (e) {
        li.classList.replace("pending", "failed");
        li.title = e.message;
        throw e;
    } finally {
        /* out of the pending tail, to its place (unless its replay,
         * after a lost ack, took it already) */
        if (li.isConnected) {
            li.remove();
            place(r.log, li);
        }
    }
}

hub.on("connect", (id) => {
    trouble = null;
    setStatus("connected as " + id, "up", $("#note").textContent);
});
hub.on("disconnect", (code) => setStatus("disconnected (" + code + ")",
                                         "down"));
hub.on("reconnecting", (attempt, delay) => setStatus(
    (trouble ? trouble + ": trying again" : "reconnecting… attempt " +
     attempt) + " in " + (delay / 1000).toFixed(1) + " s",
    trouble ? "bad" : "down"));
hub.on("recovered", (room, ok, missed) => {
    const text = ok ? "recovered " + missed + " message" +
                      (missed === 1 ? "" : "s") + " in " + room
                    : room + ": could not recover, messages may be missing";
    chat.recoveries.push({ room, recovered: ok, missed });
    $("#note").textContent = text;
    note(room, "reconnected: " + text);
});
hub.on("error", (e) => {
    chat.errors.push({ code: e.code, message: e.message });
    if (e.code === "policy" || e.code === "refused" || e.code === "url") {
        trouble = e.message;
        setStatus(e.message, "bad");
    } else {
        $("#note").textContent = "error: " + e.message;
    }
});
hub.on("private", (m) => place(rooms.get(PRIVATE).log, line(m)));
hub.on("broadcast", (m) => current && place(rooms.get(current).log,
                                            line(m)));

$("#join").onsubmit = (ev) => {
    ev.preventDefault();
    addRoom($("#room").value.trim());
    $("#room").value = "";
};
$("#say").onsubmit = (ev) => {
    ev.preventDefault();
    const text = $("#text").value.trim();
    $("#text").value = "";
    text && current && say(text).catch(() => {});
};
$("#list").onclick = async () => {
    const r = rooms.get(current);
    if (!r || !r.room) {
        return;
    }
    const ids = new Set();
    for await (const page of r.room.pages({ limit: 1000 })) {
        page.members.forEach((id) => ids.add(id));
        r.count = page.count;
    }
    r.members = ids;
    drawMembers();
};

const first = (params.get("room") || "chat:lobby").split(",");
for (const name of first) {
    addRoom(name);
}
addRoom(PRIVATE);
show(first[0]);
