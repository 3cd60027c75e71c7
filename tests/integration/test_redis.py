#!/usr/bin/python3
"""The Redis engine: two wshubd nodes (2 workers each) sharing one real
redis-server started here on a free loopback port.

Rooms, presence, private messages and broadcasts across nodes; the
documented `redis-cli PUBLISH` of wshub-protocol(7); a node killed
whole (master and workers); Redis down at start and restarted mid-run.
Every process started here is stopped by pid whatever happens; every
wait is bounded.
"""

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (Server, WSHUBD, arun, connect,  # noqa: E402
                           free_port, http)
from test_hub import Pool, all_quiet, join, wait_for  # noqa: E402

import websockets  # noqa: E402

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
TTL = 3     # presence_ttl, seconds

MAN_PROTOCOL = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            os.pardir, os.pardir, "man", "wshub-protocol.7")


def documented_publish():
    """The words of the `$ redis-cli PUBLISH ...` example of
    wshub-protocol(7), PUBLISHING FROM A BACKEND, as written there."""
    with open(MAN_PROTOCOL) as f:
        for line in f:
            if line.startswith("$ redis-cli PUBLISH "):
                return shlex.split(line[2:])
    raise AssertionError("no redis-cli PUBLISH example in " + MAN_PROTOCOL)


class Redis:
    """A throw-away redis-server on 127.0.0.1:PORT, no persistence; ARGS
    are more of its options ("--replicaof", "127.0.0.1", "6379")."""

    def __init__(self, port=None, args=()):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="wshub-redis-")
        self.args = list(args)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir]
            + self.args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("PING") == "PONG", 10, "redis-server")
        return self

    def cli(self, *args):
        try:
            out = subprocess.run([REDIS_CLI, "-p", str(self.port)] + list(args),
                                 capture_output=True, timeout=5, text=True)
        except subprocess.TimeoutExpired:
            return None
        return out.stdout.strip()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def node(redis_port, workers=2, endpoints=None, more_yaml=""):
    return Server(workers=workers,
                  endpoints=endpoints or [{"path": "/ws", "module": "hub"}],
                  raw_yaml="engine:\n  type: redis\n  redis:\n"
                           "    port: %d\n    presence_ttl: %ds\n"
                           "    reconnect_max: 1s\n" % (redis_port, TTL)
                           + more_yaml)


def subscribers(redis, channel):
    out = redis.cli("PUBSUB", "NUMSUB", channel).split()
    return int(out[1]) if len(out) == 2 else 0


async def wait_subscribed(redis, channel, n, timeout=10):
    """Until N worker connections are subscribed to CHANNEL."""
    deadline = time.monotonic() + timeout
    while subscribers(redis, channel) < n:
        if time.monotonic() >= deadline:
            raise AssertionError("%s: %d subscribers, expected %d" % (
                channel, subscribers(redis, channel), n))
        await asyncio.sleep(0.05)


def connected(redis):
    """Worker connections to REDIS (redis-cli itself not counted)."""
    for line in (redis.cli("INFO", "clients") or "").splitlines():
        if line.startswith("connected_clients:"):
            return int(line.split(":")[1]) - 1
    return 0


async def wait_connected(redis, n, timeout=15):
    """Until N connections (2 per worker) are back."""
    deadline = time.monotonic() + timeout
    while connected(redis) < n:
        if time.monotonic() >= deadline:
            raise AssertionError("%d connections to redis, expected %d" % (
                connected(redis), n))
        await asyncio.sleep(0.05)




async def chat_once(sender, others, room, text, quiet=1.0):
    """SENDER says TEXT in ROOM: every one of OTHERS gets it exactly
    once, the sender never."""
    await sender.send({"type": "room_message", "room": room, "text": text})
    for c in others:
        m = await c.expect("room_message", 5, room=room, text=text)
        assert m["from"] == sender.id, m
    extra = await all_quiet(others + [sender], quiet)
    assert not extra, "duplicates or echoes: %r" % extra


async def meet(redis, pa, pb, room):
    """alice on PA's node joins ROOM, then bob on PB's: each knows the
    other, both nodes are subscribed in REDIS, and what each says reaches
    the other exactly once, never back to the sender. (alice, bob)."""
    chan = "wshub:room:/ws#" + room         # realm /ws, the path
    a1 = await pa.open("alice")
    b1 = await pb.open("bob")
    await join(a1, room, ["alice"])
    await wait_subscribed(redis, chan, 1)
    m = await join(b1, room)
    assert sorted(m["members"]) == ["alice", "bob"], m
    await a1.expect("user_joined_room", room=room, userId="bob")
    await wait_subscribed(redis, chan, 2)
    await chat_once(a1, [b1], room, "from a")
    await chat_once(b1, [a1], room, "from b")
    return a1, b1


class RedisTestCase(unittest.TestCase):

    def setUp(self):
        self.redis = Redis()
        self.addCleanup(self.redis.cleanup)
        self.nodes = []

    def start_node(self, **kw):
        srv = node(self.redis.port, **kw)
        self.addCleanup(srv.stop)
        srv.start()
        self.nodes.append(srv)
        return srv

    def run_pools(self, body, timeout=60):
        async def main():
            pools = [Pool(n) for n in self.nodes]
            try:
                return await body(*pools)
            finally:
                for p in pools:
                    with contextlib.suppress(Exception):
                        await p.close_all()
        return arun(main(), timeout)


class RedisConfigTestCase(unittest.TestCase):
    """wshubd -t on engine.redis settings."""

    def check(self, redis_yaml, where, *words):
        """wshubd -t on engine.redis REDIS_YAML: refused at WHERE
        (LINE:COL) with WORDS in the message, or accepted if WHERE is
        None."""
        with tempfile.TemporaryDirectory(prefix="wshub-conf-") as d:
            path = os.path.join(d, "wshub.yaml")
            with open(path, "w") as f:
                f.write("engine:\n  type: redis\n  redis:\n" + redis_yaml)
            r = subprocess.run([WSHUBD, "-t", "-c", path],
                               capture_output=True, text=True, timeout=10)
        if where is None:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("test is successful", r.stderr)
            return
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("%s:%s: " % (path, where), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)


class TestAcrossNodes(RedisTestCase):

    def test_rooms_presence_private_broadcast_backend(self):
        self.redis.start()
        a, b = self.start_node(), self.start_node()
        room = "lobby"

        async def body(pa, pb):
            a1, b1 = await meet(self.redis, pa, pb, room)

            # A third member on node a: the list spans nodes.
            a2 = await pa.open("carol")
            m = await join(a2, room)
            assert sorted(m["members"]) == ["alice", "bob", "carol"], m
            for c in (a1, b1):
                await c.expect("user_joined_room", room=room,
                               userId="carol")
            await chat_once(b1, [a1, a2], room, "to both")

            # Private across nodes; unknown id.
            await b1.send({"type": "private_message", "to": "alice",
                           "text": "psst"})
            m = await a1.expect("private_message", text="psst")
            assert m["from"] == "bob", m
            await b1.error({"type": "private_message", "to": "nobody",
                            "text": "?"}, "User not found",
                           "private_message")
            assert not await all_quiet([a1, a2, b1], 0.5)

            # Broadcast across nodes.
            await a2.send({"type": "broadcast", "text": "all"})
            for c in (a1, b1):
                await c.expect("broadcast", text="all", **{"from": "carol"})
            assert not await all_quiet([a1, a2, b1], 0.5)

            # The documented backend publish, verbatim but for the port
            # of this Redis.
            words = documented_publish()
            out = await asyncio.to_thread(
                subprocess.run, words[:1] + ["-p", str(self.redis.port)]
                + words[1:], capture_output=True, text=True, timeout=10)
            assert int(out.stdout) >= 2, out
            for c in (a1, a2, b1):
                await c.expect("room_message", text="hi",
                               **{"from": "backend"})

            # Leaving and disconnecting are seen on the other node.
            await a2.request({"type": "leave_room", "room": room},
                             "room_left", room=room)
            await b1.expect("user_left_room", room=room, userId="carol")
            await a1.expect("user_left_room", room=room, userId="carol")
            await b1.ws.close()
            await a1.expect("user_left_room", room=room, userId="bob")
            assert not await all_quiet([a1, a2], 0.5)

        self.run_pools(body)

    def test_members_paged_across_nodes(self):
        """room_members walks a room held by two nodes in pages (600
        members: past Redis's small-hash encoding of 512, so HSCAN
        really pages): every id exactly once, and the same count on
        every page; past presence_limit a join is answered with the
        count alone (issue 21, items 2 and 3)."""
        self.redis.start()
        rules = "hub:\n  rooms:\n    - match: big\n      presence_limit: 10\n"
        self.start_node(more_yaml=rules)
        self.start_node(more_yaml=rules)
        room, n = "big", 600

        async def body(pa, pb):
            ids = ["m%d" % i for i in range(n)]
            clients = (await pa.open_many(ids[:n // 2])
                       + await pb.open_many(ids[n // 2:]))
            async def answer(c, type_):
                # Announcements of the others' joins come in between.
                while True:
                    m = await c.recv(10)
                    if m["type"] != "user_joined_room":
                        assert m["type"] == type_, m
                        return m

            for i, c in enumerate(clients):
                await c.send({"type": "join_room", "room": room})
                m = await answer(c, "room_joined")
                if i >= 10:
                    assert "members" not in m, m
                    assert m["member_count"] > 10, m
            got, cursor, pages = [], None, 0
            while True:
                req = {"type": "room_members", "room": room, "limit": 200}
                if cursor is not None:
                    req["cursor"] = cursor
                await clients[-1].send(req)
                page = await answer(clients[-1], "room_members")
                assert page["member_count"] == n, page
                assert len(page["members"]) <= 1000, page
                got += page["members"]
                pages += 1
                cursor = page.get("cursor")
                if cursor is None or pages > 60:
                    break
            assert sorted(got) == sorted(ids), (len(got), pages)
            assert pages >= 2, pages
            await clients[0].send({"type": "room_count", "room": room})
            page = await answer(clients[0], "room_count")
            assert page["member_count"] == n, page

        self.run_pools(body, timeout=120)

    def test_realms_stay_apart_across_nodes(self):
        """Node b's /other is another realm than /ws: its "alice" is not
        node a's, and gets none of her messages (issue 19)."""
        self.redis.start()
        self.start_node()
        self.start_node(endpoints=[{"path": "/ws", "module": "hub"},
                                   {"path": "/other", "module": "hub"}])

        async def body(pa, pb):
            alice = await pa.open("alice")
            bob = await pb.open("bob")
            mallory = await pb.open("alice", path="/other")
            await wait_subscribed(self.redis, "wshub:client:/ws#alice", 1)
            await wait_subscribed(self.redis, "wshub:client:/other#alice",
                                  1)
            await bob.send({"type": "private_message", "to": "alice",
                            "text": "psst"})
            m = await alice.expect("private_message", text="psst")
            assert m["from"] == "bob", m
            await bob.send({"type": "broadcast", "text": "to /ws"})
            await alice.expect("broadcast", text="to /ws")
            assert not await all_quiet([mallory], 0.5)

        self.run_pools(body)

    def test_killed_node_members_leave(self):
        self.redis.start()
        a, b = self.start_node(), self.start_node()
        room = "crash"

        async def body(pa, pb):
            a1 = await pa.open("survivor")
            b1 = await pb.open("victim")
            await join(a1, room)
            await wait_subscribed(self.redis, "wshub:room:/ws#" + room, 1)
            await join(b1, room)
            await a1.expect("user_joined_room", room=room, userId="victim")
            os.killpg(b.proc.pid, signal.SIGKILL)
            t0 = time.monotonic()
            await a1.expect("user_left_room", 2 * TTL + 5, room=room,
                            userId="victim")
            took = time.monotonic() - t0
            assert took < 2 * TTL + 5, took
            assert not await all_quiet([a1], TTL), "left twice?"

        self.run_pools(body)


class TestReload(RedisTestCase):

    def test_new_generation_reaches_draining_clients(self):
        """Issue 6, engine continuity: after a reload, a message published
        on the new generation reaches the old generation's clients that
        are still waiting for their turn to be closed."""
        self.redis.start()
        srv = Server(workers=2, shutdown_spread="6s", shutdown_timeout="20s",
                     endpoints=[{"path": "/ws", "module": "hub"}],
                     raw_yaml="engine:\n  type: redis\n  redis:\n"
                              "    port: %d\n" % self.redis.port)
        self.addCleanup(srv.stop)
        srv.start()

        async def joined(ws):
            while json.loads(await asyncio.wait_for(
                    ws.recv(), 5))["type"] != "room_joined":
                pass

        async def go():
            old = []
            for i in range(10):
                ws = await connect(srv.url("/ws?id=old%d" % i))
                await asyncio.wait_for(ws.recv(), 5)            # welcome
                await ws.send(json.dumps({"type": "join_room", "room": "r"}))
                await joined(ws)
                old.append(ws)
            srv.signal(signal.SIGHUP)
            await asyncio.sleep(1)
            new = await connect(srv.url("/ws?id=new"))
            await asyncio.wait_for(new.recv(), 5)
            await new.send(json.dumps({"type": "join_room", "room": "r"}))
            await joined(new)
            await new.send(json.dumps({"type": "room_message", "room": "r",
                                       "n": 1}))
            got = closed = 0
            for ws in old:
                try:
                    while json.loads(await asyncio.wait_for(
                            ws.recv(), 10))["type"] != "room_message":
                        pass
                    got += 1
                except websockets.ConnectionClosed:
                    closed += 1
            for ws in old + [new]:
                await ws.close()
            return got, closed

        got, closed = arun(go(), 60)
        self.assertEqual(got + closed, 10)
        self.assertGreaterEqual(got, 3)


def metric(port, sample):
    """The value of SAMPLE (name{labels} as exposed) in GET /metrics."""
    st, _, body = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
    assert st == 200, st
    for line in body.decode().splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


class TestFaults(RedisTestCase):

    def test_metrics_follow_redis(self):
        """wshub_engine_up, the engine errors and reconnects in /metrics
        follow a Redis that goes away and comes back."""
        self.redis.start()
        srv = Server(workers=2, endpoints=[{"path": "/ws", "module": "hub"},
                                           {"path": "/metrics",
                                            "module": "metrics"}],
                     raw_yaml="engine:\n  type: redis\n  redis:\n"
                              "    port: %d\n    reconnect_max: 1s\n"
                              % self.redis.port)
        self.addCleanup(srv.stop)
        srv.start()
        up = 'wshub_engine_up{engine="redis"}'
        down = ('websocket_errors_total{component="engine",'
                'error_type="disconnected"}')
        wait_for(lambda: metric(srv.port, up) == 1, 10, "engine up",
                 srv.log)
        self.redis.stop()
        wait_for(lambda: metric(srv.port, up) == 0, 10, "engine down",
                 srv.log)
        wait_for(lambda: metric(srv.port, down) >= 2, 10,
                 "disconnections counted", srv.log)
        self.redis.start()
        wait_for(lambda: metric(srv.port, up) == 1, 20, "engine up again",
                 srv.log)
        self.assertGreaterEqual(
            metric(srv.port, "wshub_engine_reconnects_total"), 2)

    def test_redis_down_at_start(self):
        a = self.start_node()
        a.wait_log("redis", timeout=10)
        b = self.start_node()

        async def body(pa, pb):
            a1 = await pa.open("early")
            await a1.ping()
            m = await join(a1, "r")
            assert m["members"] == ["early"], m
            self.redis.start()
            await wait_subscribed(self.redis, "wshub:room:/ws#r", 1, 15)
            b1 = await pb.open("late")
            await wait_subscribed(self.redis, "wshub:client:/ws#late", 1, 15)
            await wait_connected(self.redis, 8)
            await a1.send({"type": "private_message", "to": "late",
                           "text": "hello"})
            await b1.expect("private_message", text="hello")
            m = await join(b1, "r")
            assert sorted(m["members"]) == ["early", "late"], m
            await a1.expect("user_joined_room", room="r", userId="late")
            await chat_once(b1, [a1], "r", "after")

        self.run_pools(body)
        assert "restored" in a.log(), a.log()

    def test_redis_restarted(self):
        self.redis.start()
        a, b = self.start_node(), self.start_node()
        room = "restart"
        chan = "wshub:room:/ws#" + room

        async def body(pa, pb):
            a1 = await pa.open("ra")
            b1 = await pb.open("rb")
            await join(a1, room)
            await wait_subscribed(self.redis, chan, 1)
            await join(b1, room)
            await a1.expect("user_joined_room", room=room, userId="rb")
            await wait_subscribed(self.redis, chan, 2)
            await chat_once(a1, [b1], room, "before")

            self.redis.stop()
            await asyncio.sleep(0.5)
            # Local traffic goes on.
            await a1.ping()
            self.redis.start()
            await wait_subscribed(self.redis, chan, 2, 15)
            await wait_subscribed(self.redis, "wshub:client:/ws#rb", 1, 15)
            await wait_connected(self.redis, 8)
            await chat_once(a1, [b1], room, "after 1")
            await chat_once(b1, [a1], room, "after 2")
            await b1.send({"type": "private_message", "to": "ra",
                           "text": "p"})
            await a1.expect("private_message", text="p")
            # The presence entries come back with the refresh.
            wait_for(lambda: self.redis.cli(
                "ZCARD", "wshub:presence:/ws#" + room) == "2", 5,
                "presence after restart")

        self.run_pools(body)


def main():
    """Run the tests of __main__, or skip (77) without redis-server."""
    if not (os.access(REDIS_SERVER, os.X_OK) and os.access(REDIS_CLI,
                                                            os.X_OK)):
        print("SKIP: redis-server is not installed "
              "(packaging/install-deps.sh --test)")
        sys.exit(77)
    wshub_harness.main()


if __name__ == "__main__":
    main()
