#!/usr/bin/python3
"""The hub module (wshub-protocol(7)) across worker processes: rooms and
their member lists, presence (leave, disconnect, a worker's death),
private messages to ids with several connections, broadcasts, error
replies, identity and `from`, the publish API and slow consumers.

Several worker processes serve the clients, with the local engine relayed
by the master. Where a test needs clients on different workers it finds
out which worker holds a connection from /proc (the socket inode of the
server side of the client's port in a worker's descriptors) and opens
connections until the kernel spread them as needed; every such retry is
bounded.

Every server is started with `with Server(...)`, so the harness stops it
(by pid) whatever happens; every wait is bounded by a deadline; no test
asserts how fast the server is.
"""

import asyncio
import collections
import json
import os
import re
import select
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (RawWS, Server, arun, close_payload,  # noqa: E402
                           connect, frame, parse_response, wait_for,
                           yaml_value)

from websockets.exceptions import ConnectionClosed  # noqa: E402


HUB_ENDPOINTS = [{"path": "/ws", "module": "hub"},
                 {"path": "/api/publish", "module": "hub_api"}]
API_KEY = "test-api-key-0123456789abcdef"


# ---- helpers -------------------------------------------------------------

def hub_server(workers=4, hub=None, **conf):
    """A Server with the hub endpoints and HUB as its hub section."""
    raw = ""
    if hub:
        raw = "hub:\n" + "".join("  %s: %s\n" % (k, yaml_value(v))
                                 for k, v in hub.items())
    return Server(workers=workers, endpoints=HUB_ENDPOINTS, raw_yaml=raw,
                  **conf)


def conn_workers(srv):
    """{client port: worker pid} for the connections to srv.port that a
    worker holds, from the socket inodes in /proc."""
    inode_pid = {}
    for pid in srv.workers():
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inode_pid[int(link[8:-1])] = pid
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            lport = int(p[1].rsplit(":", 1)[1], 16)
            rport = int(p[2].rsplit(":", 1)[1], 16)
            inode = int(p[9])
            if lport == srv.port and inode in inode_pid:
                out[rport] = inode_pid[inode]
    return out


def workers_of_ports(srv, ports, timeout=5):
    """{client port: worker pid} for PORTS, once workers hold them all:
    one scan of /proc for all, which is slow on a machine with many
    sockets."""
    def held():
        found = conn_workers(srv)
        return found if all(p in found for p in ports) else None
    return wait_for(held, timeout, "workers to hold the connections from "
                    "ports %s" % ports, srv.log)


def server_rss_kib(srv):
    """VmRSS of the master and all its workers, in KiB."""
    total = 0
    for pid in [srv.proc.pid] + srv.workers():
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def access_lines(srv, path="/ws"):
    return [line for line in srv.access_log().splitlines()
            if '"GET %s" 101 ' % path in line]


def http_conn(srv, pred=None, rounds=10, batch=4):
    """A connected socket to srv.port and the pid of the worker that
    accepted it, one for which PRED(pid) is true. Connections are made in
    concurrent batches, which the kernel spreads over the workers better
    than one at a time."""
    for _ in range(rounds):
        socks = []
        for _ in range(batch):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            socks.append(s)
        found = None
        try:
            for s in socks:
                _, ready, _ = select.select([], [s], [], 10)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if not ready or err:
                    raise AssertionError("connect to %d failed: %s" % (
                        srv.port, os.strerror(err) if err else "timeout"))
                s.setblocking(True)
                s.settimeout(10)
            held = workers_of_ports(srv, [s.getsockname()[1] for s in socks])
            for s in socks:
                w = held[s.getsockname()[1]]
                if found is None and (pred is None or pred(w)):
                    found = (s, w)
        finally:
            for s in socks:
                if found is None or s is not found[0]:
                    s.close()
        if found is not None:
            return found
    raise AssertionError("no connection on a wanted worker in %d tries" % (
        rounds * batch))


def post_on(sock, srv, body, key=API_KEY, path="/api/publish"):
    """POST BODY (an object, or bytes as is) on SOCK, then close it.
    Returns (status, parsed body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with sock:
        head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n"
                "Connection: close\r\n" % (path, srv.port, len(data)))
        if key is not None:
            head += "Authorization: apikey %s\r\n" % key
        sock.sendall((head + "\r\n").encode() + data)
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = sock.recv(65536)
            if not chunk:
                break
            resp += chunk
        status, headers, rbody = parse_response(resp, sock)
    try:
        parsed = json.loads(rbody) if rbody else None
    except ValueError:
        parsed = rbody
    return status, parsed


def post(srv, body, key=API_KEY, where=None):
    """POST BODY to the publish API through a worker for which WHERE(pid)
    is true (any when None); returns (status, parsed body, worker pid)."""
    sock, worker = http_conn(srv, where)
    return post_on(sock, srv, body, key) + (worker,)


class Client:
    """A websockets client speaking the hub's JSON."""

    def __init__(self, ws):
        self.ws = ws
        self.id = None
        self.port = ws.local_address[1]
        self.worker = None

    def __repr__(self):
        return "<%s port %d worker %s>" % (self.id, self.port, self.worker)

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, (str, bytes))
                           else json.dumps(obj))

    async def recv(self, timeout=5):
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("%r: no message within %ss" % (self,
                                                                timeout))
        if not isinstance(raw, str):
            raise AssertionError("%r: binary message %r" % (self, raw))
        return json.loads(raw)

    async def expect(self, type_, timeout=5, **fields):
        """The next message, which must be of TYPE_ with FIELDS."""
        m = await self.recv(timeout)
        if m.get("type") != type_ or any(m.get(k) != v
                                         for k, v in fields.items()):
            raise AssertionError("%r: expected %s %s, got %r" % (
                self, type_, fields, m))
        return m

    async def request(self, obj, type_, timeout=5, **fields):
        await self.send(obj)
        return await self.expect(type_, timeout, **fields)

    async def error(self, obj, error, request=None):
        """Send OBJ, expect the error reply ERROR (with REQUEST or no
        request member)."""
        await self.send(obj)
        m = await self.recv()
        if m.get("type") != "error" or m.get("error") != error:
            raise AssertionError("%r: sent %r, expected error %r, got %r" % (
                self, obj, error, m))
        if request is None:
            if "request" in m:
                raise AssertionError("%r: sent %r, error has a request "
                                     "member: %r" % (self, obj, m))
        elif m.get("request") != request:
            raise AssertionError("%r: sent %r, expected request %r: %r" % (
                self, obj, request, m))
        return m

    async def ping(self):
        await self.send({"type": "ping"})
        m = await self.recv()
        if m != {"type": "pong"}:
            raise AssertionError("%r: expected pong, got %r" % (self, m))

    async def quiet(self, seconds=0.5):
        """Every message that arrives within SECONDS."""
        got = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                return got
            except ConnectionClosed:
                got.append(("closed", self.ws.close_code))
                return got
            got.append(json.loads(raw) if isinstance(raw, str) else raw)


async def all_quiet(clients, seconds=0.5):
    """{client: messages} for those that received anything in SECONDS."""
    got = await asyncio.gather(*(c.quiet(seconds) for c in clients))
    return {c: g for c, g in zip(clients, got) if g}


class Pool:
    """The clients a test opened; close() closes what is left."""

    def __init__(self, srv):
        self.srv = srv
        self.clients = []

    async def open(self, cid=None, raw_query=None, path="/ws"):
        if raw_query is not None:
            path += "?" + raw_query
        elif cid is not None:
            path += "?id=" + cid
        ws = await connect(self.srv.url(path), max_queue=None,
                           close_timeout=2)
        c = Client(ws)
        self.clients.append(c)
        m = await c.recv()
        if m.get("type") != "welcome" or not isinstance(m.get("id"), str):
            raise AssertionError("expected welcome, got %r" % m)
        if cid is not None and raw_query is None and m["id"] != cid:
            raise AssertionError("asked for id %r, welcomed as %r" % (
                cid, m["id"]))
        c.id = m["id"]
        c.welcome = m
        return c

    async def open_many(self, ids):
        return list(await asyncio.gather(*(self.open(i) for i in ids)))

    async def place(self, clients):
        """Set .worker of CLIENTS; returns {worker pid: [clients]}."""
        deadline = time.monotonic() + 5
        while True:
            where = conn_workers(self.srv)
            if all(c.port in where for c in clients):
                break
            if time.monotonic() >= deadline:
                raise AssertionError("no worker holds %r\n%s" % (
                    [c for c in clients if c.port not in where],
                    self.srv.log()))
            await asyncio.sleep(0.05)
        by = collections.defaultdict(list)
        for c in clients:
            c.worker = where[c.port]
            by[c.worker].append(c)
        return by

    async def open_spread(self, ids, min_workers=2, rounds=6, more="x"):
        """Open IDS concurrently; while they sit on fewer than MIN_WORKERS
        workers, open batches of 8 more (ids MORE0, MORE1...). Returns the
        clients, all placed."""
        clients = await self.open_many(ids)
        n = 0
        for _ in range(rounds):
            if len(await self.place(clients)) >= min_workers:
                break
            clients += await self.open_many(
                ["%s%d" % (more, n + i) for i in range(8)])
            n += 8
        await self.place(clients)
        return clients

    async def open_where(self, cid, pred, batch=8, rounds=6):
        """A connection with id CID on a worker for which PRED(pid) is
        true, or None; the other attempts are closed."""
        for _ in range(rounds):
            cs = await self.open_many([cid] * batch)
            await self.place(cs)
            keep = next((c for c in cs if pred(c.worker)), None)
            await self.close(*[c for c in cs if c is not keep])
            if keep is not None:
                return keep
        return None

    async def close(self, *clients):
        async def one(c):
            try:
                await asyncio.wait_for(c.ws.close(), 5)
            except Exception:
                c.ws.transport.abort()
        await asyncio.gather(*(one(c) for c in clients))
        for c in clients:
            if c in self.clients:
                self.clients.remove(c)

    async def close_all(self):
        await self.close(*list(self.clients))


def run(srv, body, timeout=60):
    """Run BODY(pool) against SRV, closing its clients whatever happens."""
    async def main():
        pool = Pool(srv)
        try:
            return await body(pool)
        finally:
            await pool.close_all()
    return arun(main(), timeout)


async def join(c, room, members=None, timeout=5):
    """Join ROOM; check and return the room_joined reply, with "early":
    the presence messages for the room that came before it.

    A join takes effect on the connection's worker at once, while the
    member list comes from the master: announcements the master sent
    before it saw the join (of ids already present, so listed in
    members) may reach the new member just before its room_joined.
    Only those are tolerated here."""
    await c.send({"type": "join_room", "room": room})
    early = []
    while True:
        m = await c.recv(timeout)
        if (m.get("type") in ("user_joined_room", "user_left_room")
                and m.get("room") == room):
            early.append(m)
            continue
        if m.get("type") != "room_joined" or m.get("room") != room:
            raise AssertionError("%r: expected room_joined %s, got %r" % (
                c, room, m))
        break
    if members is not None and sorted(m["members"]) != sorted(members):
        raise AssertionError("%r joined %s: members %r, expected %r" % (
            c, room, m["members"], sorted(members)))
    for e in early:
        if (e["userId"] in m["members"]) != (e["type"] == "user_joined_room"):
            raise AssertionError("%r: %r before room_joined %r" % (c, e, m))
    m["early"] = early
    return m


async def expect_presence(c, type_, room, ids, timeout=10):
    """Read exactly len(IDS) messages, which must be TYPE_ for ROOM with
    userIds IDS (as a multiset, any order)."""
    want = collections.Counter(ids)
    got = collections.Counter()
    for _ in range(len(ids)):
        m = await c.recv(timeout)
        if m.get("type") != type_ or m.get("room") != room:
            raise AssertionError("%r: expected %s in %s, got %r "
                                 "(so far %r of %r)" % (c, type_, room, m,
                                                        got, want))
        got[m.get("userId")] += 1
    if got != want:
        raise AssertionError("%r: %s %r, expected %r" % (c, type_, got, want))


# ---- tests ---------------------------------------------------------------

class TestRoomAtScale(unittest.TestCase):

    def test_200_clients_in_one_room_across_workers(self):
        n = 200
        with hub_server(workers=4) as srv:
            ids = ["c%d" % i for i in range(n)]

            async def body(pool):
                clients = await pool.open_many(ids)
                # One join at a time: each member list is exactly the ids
                # that joined before, so it grows to all 200.
                early = 0
                for i, c in enumerate(clients):
                    m = await join(c, "big")
                    early += len(m["early"])
                    self.assertEqual(len(m["members"]), i + 1, m)
                    self.assertEqual(set(m["members"]), set(ids[:i + 1]))
                self.assertEqual(sorted(m["members"]), sorted(ids))
                if early:
                    print("\n  note: %d user_joined_room before the "
                          "joiner's room_joined" % early, file=sys.stderr)
                # Everybody hears of each later joiner, exactly once.
                await asyncio.gather(*(
                    expect_presence(c, "user_joined_room", "big",
                                    ids[i + 1:], timeout=20)
                    for i, c in enumerate(clients)))
                by_worker = await pool.place(clients)

                senders = {clients[k]: 1000 + k for k in (0, 49, 99, 149,
                                                          199)}
                # Per sender order is kept: a final message after each
                # numbered one tells a receiver it has everything.
                async def speak(c, seq):
                    await c.send({"type": "room_message", "room": "big",
                                  "seq": seq, "text": "message %d" % seq})
                    await c.send({"type": "room_message", "room": "big",
                                  "fin": seq})

                async def listen(c):
                    want_fins = {s.id for s in senders if s is not c}
                    fins, got = set(), collections.Counter()
                    while fins != want_fins:
                        m = await c.recv(20)
                        self.assertEqual(m.get("type"), "room_message",
                                         (c, m))
                        self.assertEqual(m.get("room"), "big", (c, m))
                        if "fin" in m:
                            self.assertNotIn(m["from"], fins, (c, m))
                            fins.add(m["from"])
                            continue
                        sender = [s for s in senders if s.id == m["from"]]
                        self.assertEqual(len(sender), 1, (c, m))
                        self.assertEqual(m, {
                            "type": "room_message", "room": "big",
                            "seq": senders[sender[0]],
                            "text": "message %d" % senders[sender[0]],
                            "from": sender[0].id}, c)
                        got[(m["from"], m["seq"])] += 1
                    return got

                await asyncio.gather(*(speak(c, s)
                                       for c, s in senders.items()))
                results = await asyncio.gather(*(listen(c) for c in clients))
                extra = await all_quiet(clients, 0.5)
                self.assertEqual(extra, {}, "messages after the last one")
                for c, got in zip(clients, results):
                    want = collections.Counter(
                        {(s.id, seq): 1 for s, seq in senders.items()
                         if s is not c})
                    self.assertEqual(got, want, c)
                return {w: len(cs) for w, cs in by_worker.items()}

            spread = run(srv, body, 90)
            # The access log says which worker served each connection.
            lines = wait_for(lambda: len(access_lines(srv)) >= n
                             and access_lines(srv), 15,
                             "%d access log lines" % n, srv.access_log)
            workers = collections.Counter(
                re.search(r"worker=(\d+)", line).group(1) for line in lines)
            self.assertGreaterEqual(
                len(workers), 2, "all %d clients on one worker: %r (from "
                "/proc: %r)" % (n, workers, spread))


class TestPresence(unittest.TestCase):

    def test_leave_and_disconnect_are_announced(self):
        with hub_server(workers=4) as srv:
            async def body(pool):
                watch = await pool.open("watch")
                await pool.place([watch])
                p1 = await pool.open_where(
                    "p1", lambda w: w != watch.worker) or \
                    await pool.open("p1")
                dup_a = await pool.open("dup")
                await pool.place([dup_a])
                dup_b = await pool.open_where(
                    "dup", lambda w: w != dup_a.worker) or \
                    await pool.open("dup")

                await join(watch, "lobby", ["watch"])
                await join(p1, "lobby", ["watch", "p1"])
                await expect_presence(watch, "user_joined_room", "lobby",
                                      ["p1"])
                await join(dup_a, "lobby", ["watch", "p1", "dup"])
                await expect_presence(watch, "user_joined_room", "lobby",
                                      ["dup"])
                await expect_presence(p1, "user_joined_room", "lobby",
                                      ["dup"])
                # The id's second connection: listed once, not announced
                # (the next thing watch hears must be p1 leaving).
                await join(dup_b, "lobby", ["watch", "p1", "dup"])

                await p1.request({"type": "leave_room", "room": "lobby"},
                                 "room_left", room="lobby")
                for c in (watch, dup_a, dup_b):
                    await expect_presence(c, "user_left_room", "lobby",
                                          ["p1"])
                # Disconnecting is leaving, every room.
                await join(watch, "lobby2", ["watch"])
                await join(p1, "lobby", ["watch", "p1", "dup"])
                for c in (watch, dup_a, dup_b):
                    await expect_presence(c, "user_joined_room", "lobby",
                                          ["p1"])
                await join(p1, "lobby2", ["watch", "p1"])
                await expect_presence(watch, "user_joined_room", "lobby2",
                                      ["p1"])
                await pool.close(p1)
                got = [await watch.recv(10) for _ in range(2)]
                self.assertEqual(sorted((m["type"], m["room"], m["userId"])
                                        for m in got),
                                 [("user_left_room", "lobby", "p1"),
                                  ("user_left_room", "lobby2", "p1")], got)
                for c in (dup_a, dup_b):
                    await expect_presence(c, "user_left_room", "lobby",
                                          ["p1"])
                # The id stays while one of its connections does.
                await pool.close(dup_a)
                await dup_b.request({"type": "leave_room", "room": "lobby"},
                                    "room_left", room="lobby")
                await expect_presence(watch, "user_left_room", "lobby",
                                      ["dup"])
                self.assertEqual(await all_quiet([watch, dup_b]), {})
                # Nobody is left but watch.
                late = await pool.open("late")
                await join(late, "lobby", ["watch", "late"])

            run(srv, body)

    def test_killed_worker_members_are_announced(self):
        with hub_server(workers=4) as srv:
            async def body(pool):
                clients = await pool.open_spread(
                    ["k%d" % i for i in range(12)], min_workers=2)
                by = await pool.place(clients)
                self.assertGreaterEqual(len(by), 2, "clients on one worker")
                victim = max(by, key=lambda w: len(by[w]))
                # An id with a connection on the victim and one elsewhere
                # stays present.
                span_in = await pool.open_where("span",
                                                lambda w: w == victim)
                span_out = await pool.open_where("span",
                                                 lambda w: w != victim)
                if span_in is not None and span_out is not None:
                    clients += [span_in, span_out]
                else:
                    await pool.close(*[c for c in (span_in, span_out) if c])
                # Join one at a time; each hears of the later ids that
                # were not present yet.
                present = []
                later = collections.defaultdict(list)
                for i, c in enumerate(clients):
                    first = c.id not in present
                    await join(c, "zone", present + ([c.id] if first
                                                     else []))
                    if first:
                        for d in clients[:i]:
                            later[d].append(c.id)
                        present.append(c.id)
                await asyncio.gather(*(
                    expect_presence(c, "user_joined_room", "zone", later[c])
                    for c in clients))

                lost = [c for c in clients if c.worker == victim]
                kept = [c for c in clients if c.worker != victim]
                gone = sorted({c.id for c in lost} - {c.id for c in kept})
                self.assertTrue(lost and kept and gone)
                os.kill(victim, signal.SIGKILL)
                # The victim's connections drop, the others stay.
                for c in lost:
                    try:
                        await asyncio.wait_for(c.ws.wait_closed(), 10)
                    except asyncio.TimeoutError:
                        raise AssertionError("%r still open after its "
                                             "worker was killed" % c)
                await asyncio.gather(*(
                    expect_presence(c, "user_left_room", "zone", gone)
                    for c in kept))
                self.assertEqual(await all_quiet(kept), {})
                for c in kept:
                    self.assertTrue(c.ws.open, c)
                # The master forgot them: a newcomer sees the survivors.
                srv.wait_log("pid %d, exited on signal 9" % victim)
                late = await pool.open("late")
                await join(late, "zone",
                           sorted({c.id for c in kept}) + ["late"])
                await asyncio.gather(*(
                    expect_presence(c, "user_joined_room", "zone",
                                    ["late"]) for c in kept))

            run(srv, body)


class TestPrivateMessages(unittest.TestCase):

    def test_private_to_every_connection_of_an_id(self):
        with hub_server(workers=4) as srv:
            async def body(pool):
                sender = await pool.open("psend")
                await pool.place([sender])
                multi = []
                for _ in range(3):
                    used = {c.worker for c in multi}
                    c = await pool.open_where("multi",
                                              lambda w: w not in used)
                    multi.append(c or await pool.open("multi"))
                await pool.place(multi)
                self.assertGreaterEqual(len({c.worker for c in multi}), 2,
                                        multi)
                msg = {"type": "private_message", "to": "multi",
                       "text": "for every tab", "n": [1, {"x": None}]}
                await sender.send(msg)
                for c in multi:
                    m = await c.recv()
                    self.assertEqual(m, dict(msg, **{"from": "psend"}), c)
                await sender.ping()
                self.assertEqual(await all_quiet(multi + [sender]), {})
                # Unknown ids, and answers back across workers.
                m = await sender.error({"type": "private_message",
                                        "to": "nobody-here", "text": "?"},
                                       "User not found", "private_message")
                await sender.ping()
                await multi[2].send({"type": "private_message",
                                     "to": "psend", "text": "back"})
                await sender.expect("private_message", text="back",
                                    to="psend", **{"from": "multi"})
                self.assertEqual(await all_quiet(multi + [sender]), {})

            run(srv, body)

    def test_same_id_other_connection_gets_room_message(self):
        with hub_server(workers=4) as srv:
            async def body(pool):
                twin_a = await pool.open("twin")
                await pool.place([twin_a])
                twin_b = await pool.open_where(
                    "twin", lambda w: w != twin_a.worker) or \
                    await pool.open("twin")
                obs = await pool.open("obs")
                await join(twin_a, "tw", ["twin"])
                await join(twin_b, "tw", ["twin"])
                await join(obs, "tw", ["twin", "obs"])
                await expect_presence(twin_a, "user_joined_room", "tw",
                                      ["obs"])
                await expect_presence(twin_b, "user_joined_room", "tw",
                                      ["obs"])
                msg = {"type": "room_message", "room": "tw", "text": "hi"}
                await twin_a.send(msg)
                want = dict(msg, **{"from": "twin"})
                self.assertEqual(await twin_b.recv(), want)
                self.assertEqual(await obs.recv(), want)
                await twin_a.ping()
                # Broadcasts, the same: not back to the sending connection.
                await twin_a.send({"type": "broadcast", "text": "all"})
                want = {"type": "broadcast", "text": "all", "from": "twin"}
                self.assertEqual(await twin_b.recv(), want)
                self.assertEqual(await obs.recv(), want)
                await twin_a.ping()
                self.assertEqual(await all_quiet([twin_a, twin_b, obs]), {})

            run(srv, body)

    def test_broadcast_reaches_every_other_connection(self):
        with hub_server(workers=4) as srv:
            async def body(pool):
                clients = await pool.open_spread(
                    ["b%d" % i for i in range(8)], min_workers=2)
                src = clients[0]
                await src.send({"type": "broadcast", "seq": 7,
                                "from": "admin"})
                for c in clients[1:]:
                    self.assertEqual(await c.recv(), {
                        "type": "broadcast", "seq": 7, "from": src.id}, c)
                await src.ping()
                self.assertEqual(await all_quiet(clients), {})

            run(srv, body)


class TestErrors(unittest.TestCase):

    def test_errors_keep_the_connection(self):
        with hub_server(workers=2,
                        hub={"max_rooms_per_connection": 2}) as srv:
            async def body(pool):
                c = await pool.open("err")
                await c.error("hello", "Invalid JSON")
                await c.error('{"type":"ping"', "Invalid JSON")
                await c.error("[1, 2]", "Missing or invalid type")
                await c.error({"room": "x"}, "Missing or invalid type")
                await c.error({"type": 5}, "Missing or invalid type")
                await c.error({"type": None}, "Missing or invalid type")
                await c.error({"type": "dance"}, "Unknown message type",
                              "dance")
                for room in ("", "a" * 129, "a b", "\u00e9", "caf\u00e9",
                             "x\ny", 5, None, ["lobby"]):
                    await c.error({"type": "join_room", "room": room},
                                  "Invalid room name", "join_room")
                await c.error({"type": "join_room"}, "Invalid room name",
                              "join_room")
                await c.error({"type": "leave_room", "room": "a b"},
                              "Invalid room name", "leave_room")
                await c.error({"type": "room_message", "room": "",
                               "text": "x"}, "Invalid room name",
                              "room_message")
                await c.error({"type": "room_message", "room": "nojoin",
                               "text": "x"}, "Not in room", "room_message")
                await c.error({"type": "leave_room", "room": "nojoin"},
                              "Not in room", "leave_room")
                await c.error({"type": "private_message", "text": "x"},
                              "Invalid target", "private_message")
                await c.error({"type": "private_message", "to": "a b"},
                              "Invalid target", "private_message")
                await c.error({"type": "private_message", "to": "x" * 65},
                              "Invalid target", "private_message")
                await c.error(b"\x00\x01binary", "Binary messages are not "
                              "supported")
                # Rooms: twice, the limit of 2, the longest name.
                await join(c, "ok-1", ["err"])
                await c.error({"type": "join_room", "room": "ok-1"},
                              "Already in room", "join_room")
                await join(c, "a" * 128, ["err"])
                await c.error({"type": "join_room", "room": "third"},
                              "Too many rooms", "join_room")
                await c.request({"type": "leave_room", "room": "ok-1"},
                                "room_left", room="ok-1")
                await join(c, "third", ["err"])
                await c.error({"type": "join_room", "room": "fourth"},
                              "Too many rooms", "join_room")
                await c.request({"type": "leave_room", "room": "third"},
                                "room_left", room="third")
                await join(c, "Az09_.:@/-", ["err"])
                await c.ping()
                self.assertTrue(c.ws.open)
                self.assertEqual(await c.quiet(0.3), [])

            run(srv, body)
            lines = wait_for(lambda: access_lines(srv), 10,
                             "the access log line", srv.access_log)
            self.assertIn("close=1000", lines[0])

    def test_json_that_is_not_an_object(self):
        """Valid JSON (RFC 8259) that is not an object is "Missing or
        invalid type", not "Invalid JSON"."""
        with hub_server(workers=1) as srv:
            async def body(pool):
                c = await pool.open("err")
                for text in ("[1, 2]", "42", '"ping"', "null", "true"):
                    await c.error(text, "Missing or invalid type")
                await c.ping()

            run(srv, body)


class TestIdentity(unittest.TestCase):

    def test_from_is_set_by_the_server(self):
        with hub_server(workers=2) as srv:
            async def body(pool):
                alice = await pool.open("alice")
                bob = await pool.open("bob")
                self.assertEqual(alice.welcome["message"], "Welcome to wshub")
                await join(alice, "r", ["alice"])
                await join(bob, "r", ["alice", "bob"])
                await expect_presence(alice, "user_joined_room", "r",
                                      ["bob"])
                for msg in ({"type": "room_message", "room": "r",
                             "from": "admin", "text": "t1"},
                            {"type": "broadcast", "from": "admin",
                             "text": "t2"},
                            {"type": "private_message", "to": "bob",
                             "from": {"id": "admin"}, "text": "t3"},
                            {"type": "room_message", "room": "r",
                             "from": None, "text": "t4"}):
                    await alice.send(msg)
                    self.assertEqual(await bob.recv(),
                                     dict(msg, **{"from": "alice"}))
                await alice.ping()
                self.assertEqual(await alice.quiet(0.3), [])

            run(srv, body)

    def test_echo_and_ping(self):
        with hub_server(workers=2) as srv:
            async def body(pool):
                c = await pool.open("e")
                for data in ({"a": [1, 2, {"b": None}]}, [1, "two", 3.5],
                             "text", "caf\u00e9 \u20ac \U0001f600", 42, None,
                             True, {}):
                    await c.send({"type": "echo", "data": data})
                    self.assertEqual(await c.recv(),
                                     {"type": "echo", "data": data})
                await c.send({"type": "ping", "from": "x", "extra": 1})
                self.assertEqual(await c.recv(), {"type": "pong"})
                await c.ping()

            run(srv, body)

    def test_ids(self):
        with hub_server(workers=2) as srv:
            async def body(pool):
                gen = re.compile(r"u-[0-9a-f]{24}\Z")
                a = await pool.open()
                b = await pool.open()
                for c in (a, b):
                    self.assertRegex(c.id, gen)
                self.assertNotEqual(a.id, b.id)
                for query in ("id=a%20b", "id=" + "x" * 65, "id=",
                              "id=caf%C3%A9", "other=alice"):
                    c = await pool.open(raw_query=query)
                    self.assertRegex(c.id, gen, query)
                # Reserved (issue 19): "server" would pass for the publish
                # API, a generated id for its owner, whose private
                # messages it would get.
                for query in ("id=server", "id=" + a.id, "id=u-x"):
                    c = await pool.open(raw_query=query)
                    self.assertRegex(c.id, gen, query)
                    self.assertNotEqual(c.id, a.id, query)
                for cid in ("x" * 64, "user@example.com:1", "A-b_c.d"):
                    c = await pool.open(cid)
                    self.assertEqual(c.id, cid)
                c = await pool.open(raw_query="x=1&id=carol&y=2")
                self.assertEqual(c.id, "carol")
                # A generated id is a real id: messages reach it.
                await b.send({"type": "private_message", "to": a.id,
                              "text": "hi"})
                await a.expect("private_message", text="hi",
                               **{"from": b.id})

            run(srv, body)

    def test_no_connection_announcements_by_default(self):
        with hub_server(workers=4) as srv:
            async def body(pool):
                watchers = await pool.open_spread(["w%d" % i
                                                   for i in range(4)])
                other = await pool.open("carol")
                await pool.close(other)
                self.assertEqual(await all_quiet(watchers, 0.5), {})

            run(srv, body)

    def test_announce_connections(self):
        with hub_server(workers=4,
                        hub={"announce_connections": True}) as srv:
            async def body(pool):
                first = await pool.open("first")
                await pool.place([first])
                others = []
                for i in range(4):
                    c = await pool.open("n%d" % i)
                    for d in [first] + others:
                        await d.expect("user_joined", id=c.id)
                    others.append(c)
                await pool.place(others)
                everyone = [first] + others
                self.assertEqual(await all_quiet(everyone, 0.3), {})
                while others:
                    c = others.pop()
                    await pool.close(c)
                    for d in [first] + others:
                        await d.expect("user_left", id=c.id)
                self.assertEqual(await all_quiet([first], 0.3), {})

            run(srv, body)


class TestPublishAPI(unittest.TestCase):

    def test_publish(self):
        with hub_server(workers=4, hub={"api_key": API_KEY,
                                        "api_max_body": "64k"}) as srv:
            async def body(pool):
                members = await pool.open_spread(
                    ["m%d" % i for i in range(8)], min_workers=2)
                outsider = await pool.open("outsider")
                for i, c in enumerate(members):
                    await join(c, "news", [d.id for d in members[:i + 1]])
                await asyncio.gather(*(
                    expect_presence(c, "user_joined_room", "news",
                                    [d.id for d in members[i + 1:]])
                    for i, c in enumerate(members)))

                status, resp, _ = await asyncio.to_thread(post, srv, {
                    "room": "news", "data": {"text": "Tea time",
                                             "from": "admin"}})
                self.assertEqual(status, 202, resp)
                self.assertIsInstance(resp.get("delivered"), int, resp)
                for c in members:
                    self.assertEqual(await c.recv(), {
                        "type": "room_message", "text": "Tea time",
                        "from": "server"}, c)
                # The application's own type is kept.
                status, resp, _ = await asyncio.to_thread(post, srv, {
                    "room": "news", "data": {"type": "invoice", "n": 1}})
                self.assertEqual(status, 202, resp)
                for c in members:
                    self.assertEqual(await c.recv(), {
                        "type": "invoice", "n": 1, "from": "server"}, c)
                status, resp, _ = await asyncio.to_thread(post, srv, {
                    "broadcast": True, "data": {"text": "closing"}})
                self.assertEqual(status, 202, resp)
                for c in members + [outsider]:
                    self.assertEqual(await c.recv(), {
                        "type": "broadcast", "text": "closing",
                        "from": "server"}, c)

                # Private, served by another worker than the target's and
                # by the target's own.
                for same in (False, True):
                    sock, w = await asyncio.to_thread(
                        http_conn, srv, lambda w: any(
                            (c.worker == w) == same for c in members))
                    target = next(c for c in members
                                  if (c.worker == w) == same)
                    status, resp = await asyncio.to_thread(
                        post_on, sock, srv, {"to": target.id,
                                             "data": {"x": 1}})
                    # Counted on the answering worker only.
                    self.assertEqual((status, resp),
                                     (202, {"delivered": 1 if same else 0}),
                                     "same worker: %s" % same)
                    self.assertEqual(await target.recv(), {
                        "type": "private_message", "x": 1,
                        "from": "server"})
                for _ in range(2):
                    status, resp, _ = await asyncio.to_thread(post, srv, {
                        "to": "nobody-here", "data": {"x": 1}})
                    self.assertEqual((status, resp),
                                     (404, {"error": "User not found"}))

                # Refused requests publish nothing.
                for req, kw, want in (
                        ({"room": "news", "data": {}}, {"key": "wrong" * 6},
                         401),
                        ({"room": "news", "data": {}}, {"key": None}, 401),
                        ({"room": "news", "data": {}},
                         {"key": API_KEY[:-1]}, 401),
                        (b'{"room": "news", "data": {', {}, 400),
                        (b"", {}, 400),
                        ({"room": "news", "data": "text"}, {}, 400),
                        ({"room": "news", "data": [1]}, {}, 400),
                        ({"room": "news"}, {}, 400),
                        ({"data": {"x": 1}}, {}, 400),
                        ({"broadcast": False, "data": {"x": 1}}, {}, 400),
                        ({"room": "a b", "data": {"x": 1}}, {}, 400),
                        ({"room": "news", "data": {"pad": "x" * 70000}}, {},
                         413)):
                    status, resp, _ = await asyncio.to_thread(post, srv, req,
                                                              **kw)
                    self.assertEqual(status, want, (req, kw, resp))
                self.assertEqual(await all_quiet(members + [outsider]), {})
                status, resp, _ = await asyncio.to_thread(post, srv, {
                    "room": "empty-room", "data": {"x": 1}})
                self.assertEqual((status, resp), (202, {"delivered": 0}))

            run(srv, body)

    def test_publish_delivered_counts_the_answering_worker(self):
        """wshub-protocol(7): 202 gives the number of connections reached
        by the worker that answered; every member receives it."""
        with hub_server(workers=4, hub={"api_key": API_KEY}) as srv:
            async def body(pool):
                members = await pool.open_spread(
                    ["m%d" % i for i in range(8)], min_workers=2)
                for i, c in enumerate(members):
                    await join(c, "news", [d.id for d in members[:i + 1]])
                await asyncio.gather(*(
                    expect_presence(c, "user_joined_room", "news",
                                    [d.id for d in members[i + 1:]])
                    for i, c in enumerate(members)))
                status, resp, w = await asyncio.to_thread(post, srv, {
                    "room": "news", "data": {"text": "count"}})
                for c in members:
                    await c.expect("room_message", text="count")
                self.assertEqual(status, 202, resp)
                self.assertEqual(resp, {"delivered": sum(
                    1 for c in members if c.worker == w)},
                                 "members per worker: %r, the POST served "
                                 "by %d" % (collections.Counter(
                                     c.worker for c in members), w))

            run(srv, body)

    def test_publish_disabled_without_api_key(self):
        with hub_server(workers=2) as srv:
            async def body(pool):
                c = await pool.open("m")
                await join(c, "news", ["m"])
                for key in (API_KEY, None):
                    status, resp, _ = await asyncio.to_thread(post, srv, {
                        "room": "news", "data": {"x": 1}}, key=key)
                    self.assertEqual(status, 404, resp)
                self.assertEqual(await c.quiet(0.3), [])

            run(srv, body)


class TestSlowConsumer(unittest.TestCase):
    TOTAL = 3000
    WINDOW = 32         # how far the publisher may run ahead of the reader

    def raw_request(self, ws, obj, type_):
        ws.send(frame(1, json.dumps(obj).encode()))
        op, data = ws.recv_message()
        m = json.loads(data)
        self.assertEqual((op, m.get("type")), (1, type_), m)
        return m

    def firehose(self, srv, slow_check=None, slow_closed=False):
        """A RawWS client 'slow' that never reads and a reader in room
        firehose; a publisher sends TOTAL 1 KiB room messages, never more
        than WINDOW ahead of the reader. With SLOW_CLOSED, the reader and
        the publisher must hear that slow left the room. Returns the RawWS
        client."""
        slow = RawWS(srv.port, "/ws?id=slow")
        self.addCleanup(slow.close)
        op, data = slow.recv_message()
        self.assertEqual(json.loads(data)["id"], "slow")
        self.raw_request(slow, {"type": "join_room", "room": "firehose"},
                         "room_joined")
        pad = "x" * 1000

        async def body(pool):
            reader = await pool.open("reader")
            await join(reader, "firehose", ["slow", "reader"])
            pub = await pool.open("pub")
            await join(pub, "firehose", ["slow", "reader", "pub"])
            await expect_presence(reader, "user_joined_room", "firehose",
                                  ["pub"])
            rss0 = server_rss_kib(srv)
            count = 0
            progress = asyncio.Event()
            left = collections.Counter()

            def slow_left(c, m):
                if m != {"type": "user_left_room", "room": "firehose",
                         "userId": "slow"}:
                    return False
                left[c] += 1
                return True

            async def read():
                nonlocal count
                while count < self.TOTAL:
                    m = await reader.recv(20)
                    if slow_left(reader, m):
                        continue
                    self.assertEqual(m, {"type": "room_message",
                                         "room": "firehose", "seq": count,
                                         "pad": pad, "from": "pub"})
                    count += 1
                    progress.set()

            task = asyncio.create_task(read())
            for i in range(self.TOTAL):
                while i - count >= self.WINDOW:
                    if task.done():
                        task.result()
                        raise AssertionError("reader stopped at %d" % count)
                    progress.clear()
                    try:
                        await asyncio.wait_for(progress.wait(), 20)
                    except asyncio.TimeoutError:
                        raise AssertionError("reader stuck at %d of %d" % (
                            count, i))
                await pub.send({"type": "room_message", "room": "firehose",
                                "seq": i, "pad": pad})
            await asyncio.wait_for(task, 30)
            self.assertEqual(count, self.TOTAL)
            rss1 = server_rss_kib(srv)
            self.assertTrue(reader.ws.open)
            if slow_check is not None:
                await asyncio.to_thread(slow_check, slow)
            if slow_closed:
                # The slow client's departure is announced.
                srv.wait_log("close=1008", timeout=10, access=True)
            for c in (pub, reader):
                await c.send({"type": "ping"})
                while True:
                    m = await c.recv(10)
                    if m == {"type": "pong"}:
                        break
                    if not slow_left(c, m):
                        raise AssertionError("%r: unexpected %r" % (c, m))
                if slow_closed and not left[c]:
                    m = await c.recv(10)
                    self.assertTrue(slow_left(c, m), m)
            self.assertEqual(dict(left), {pub: 1, reader: 1}
                             if slow_closed else {})
            self.assertEqual(await all_quiet([pub, reader], 0.3), {})
            return rss1 - rss0

        growth = run(srv, body, 90)
        # ASan's shadow memory and quarantine inflate RSS: no figure there.
        if os.environ.get("WSHUB_SANITIZERS") != "yes":
            self.assertLess(growth, 50 * 1024, "server RSS grew by %d KiB" %
                            growth)
        return slow

    def test_slow_consumer_closed_with_1008(self):
        with hub_server(workers=2, send_buffer="64k") as srv:
            self.firehose(srv, slow_closed=True)
            lines = access_lines(srv)
            self.assertEqual(sum("close=1008" in line for line in lines), 1,
                             lines)

    def drain_raw(self, ws, quiet=1.0, limit=30):
        """Read ROOM message seqs from WS until nothing comes for QUIET
        seconds; fails on a close frame or EOF."""
        seqs = []
        ws.sock.settimeout(quiet)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                op, data = ws.recv_message()
            except socket.timeout:
                return seqs
            except (EOFError, OSError) as e:
                raise AssertionError("slow client lost (%r) after %d "
                                     "messages" % (e, len(seqs)))
            if op == 8:
                raise AssertionError("slow client closed %r after %d "
                                     "messages" % (data[:2], len(seqs)))
            m = json.loads(data)
            if m.get("type") == "room_message":
                seqs.append(m["seq"])
        raise AssertionError("slow client still receiving after %ss" % limit)

    def test_slow_consumer_drop(self):
        # The top-level key since 0.2; the next test uses its old name.
        with hub_server(workers=2, send_buffer="64k",
                        slow_consumer="drop") as srv:
            got = {}

            def slow_check(slow):
                # Still open: it reads what was queued, with gaps but in
                # order, then is served again.
                seqs = self.drain_raw(slow)
                got["seqs"] = seqs
                self.assertEqual(seqs, sorted(set(seqs)))
                self.assertLess(len(seqs), self.TOTAL)
                self.raw_request(slow, {"type": "ping"}, "pong")

            slow = self.firehose(srv, slow_check)
            self.assertIn("dropping its messages", srv.log())
            slow.send(frame(8, close_payload(1000)))
            slow.expect_close(1000)
            lines = wait_for(lambda: len(access_lines(srv)) >= 3
                             and access_lines(srv), 10,
                             "3 access log lines", srv.access_log)
            self.assertFalse([line for line in lines if "close=1008" in line],
                             lines)

    def test_slow_consumer_drop_keeps_a_client_that_sends(self):
        """hub.slow_consumer: drop keeps the connection open, also when
        the stalled client sends a request while over send_buffer."""
        with hub_server(workers=1, send_buffer="64k",
                        hub={"slow_consumer": "drop"}) as srv:
            slow = RawWS(srv.port, "/ws?id=slow")
            self.addCleanup(slow.close)
            slow.recv_message()
            self.raw_request(slow, {"type": "join_room", "room": "firehose"},
                             "room_joined")

            async def body(pool):
                pub = await pool.open("pub")
                await join(pub, "firehose", ["slow", "pub"])
                pad = "x" * 1000
                for i in range(self.TOTAL):
                    await pub.send({"type": "room_message",
                                    "room": "firehose", "seq": i,
                                    "pad": pad})
                    if i % 100 == 99:
                        await pub.ping()
                        if "dropping its messages" in srv.log():
                            break
                self.assertIn("dropping its messages", srv.log())
                # Over send_buffer now: the stalled client asks something;
                # its answer is dropped like the rest, the connection
                # stays. Once it has caught up, it is answered again.
                slow.send(frame(1, b'{"type":"ping"}'))
                await asyncio.sleep(0.5)

                def check():
                    slow.sock.settimeout(1)
                    caught_up = False
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline:
                        if caught_up:
                            slow.sock.settimeout(5)
                        try:
                            op, data = slow.recv_message()
                        except socket.timeout:
                            if caught_up:
                                raise AssertionError("no pong after "
                                                     "catching up")
                            caught_up = True    # quiet: all read
                            slow.send(frame(1, b'{"type":"ping"}'))
                            continue
                        except (EOFError, OSError) as e:
                            raise AssertionError(
                                "slow client lost after its ping (%r)\n"
                                "access log: %s\nerror log: %s" % (
                                    e, srv.access_log(),
                                    "\n".join(srv.log().splitlines()[-5:])))
                        if op == 8:
                            raise AssertionError(
                                "slow client closed %r after its ping" %
                                data[:2])
                        if (json.loads(data).get("type") == "pong"
                                and caught_up):
                            return
                    raise AssertionError("no pong")
                await asyncio.to_thread(check)

            run(srv, body)


if __name__ == "__main__":
    wshub_harness.main()
