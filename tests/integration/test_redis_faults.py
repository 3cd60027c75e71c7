#!/usr/bin/python3
"""The Redis engine when Redis fails: a real redis-server on a free
loopback port, killed and restarted on the same port while 100 clients
chat on two nodes (2 workers each); joins and leaves made while Redis is
down announced when it is back; EVALSHA and the NOSCRIPT fallback; the
circuit breaker against a port that accepts and hangs up at once or
never answers, and /health's engine object.

Every process started here is stopped by pid whatever happens; every
wait is bounded.
"""

import asyncio
import collections
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import Server, http, wait_for  # noqa: E402
from test_hub import all_quiet, join  # noqa: E402
from test_redis import (RedisTestCase, chat_once, main,  # noqa: E402
                        wait_connected, wait_subscribed)

ROOMS = 10
PER_ROOM = 10           # half on each node: 100 clients
MESSAGES = 30           # per client
INTERVAL = 0.2          # seconds between a client's messages


async def joined(c, room):
    """Join ROOM, skipping the presence of the others joining too."""
    await c.send({"type": "join_room", "room": room})
    while True:
        m = await c.recv(10)
        if m.get("type") == "room_joined" and m.get("room") == room:
            return m


class TestRestartWhileChatting(RedisTestCase):

    def test_redis_restarted_while_100_clients_chat(self):
        self.redis.start()
        a, b = self.start_node(), self.start_node()
        pids = {n: sorted(n.workers()) for n in (a, b)}
        got = collections.defaultdict(list)     # client id -> texts

        async def reader(c):
            while True:
                try:
                    raw = await c.ws.recv()
                except Exception:
                    return
                m = json.loads(raw)
                if m.get("type") == "room_message":
                    got[c.id].append((m["room"], m["text"], m["from"]))

        async def sender(c, room):
            for i in range(MESSAGES):
                await c.send({"type": "room_message", "room": room,
                              "text": "%s:%d" % (c.id, i)})
                await asyncio.sleep(INTERVAL)

        async def body(pa, pb):
            rooms = {}
            for r in range(ROOMS):
                half = PER_ROOM // 2
                rooms["chat%d" % r] = (
                    await pa.open_many(["a%d_%d" % (r, i)
                                        for i in range(half)])
                    + await pb.open_many(["b%d_%d" % (r, i)
                                          for i in range(half)]))
            for room, cs in rooms.items():
                await asyncio.gather(*(joined(c, room) for c in cs))
            for room in rooms:
                await wait_subscribed(self.redis, "wshub:room:/ws#" + room, 2)
            readers = [asyncio.create_task(reader(c))
                       for cs in rooms.values() for c in cs]
            senders = asyncio.gather(*(sender(c, room)
                                       for room, cs in rooms.items()
                                       for c in cs))
            # Redis dies mid-run and comes back on the same port.
            await asyncio.sleep(MESSAGES * INTERVAL / 4)
            await asyncio.to_thread(self.redis.stop)
            await asyncio.sleep(1)
            await asyncio.to_thread(self.redis.start)
            await wait_connected(self.redis, 8, 20)
            for room in rooms:
                await wait_subscribed(self.redis, "wshub:room:/ws#" + room, 2,
                                      20)
            await senders
            # Delivery resumed: a last message per room from each node
            # reaches every other member, on both nodes.
            for room, cs in rooms.items():
                for c in (cs[0], cs[-1]):
                    await c.send({"type": "room_message", "room": room,
                                  "text": "last:" + c.id})
            want = {(c.id, room, "last:" + s.id)
                    for room, cs in rooms.items()
                    for c in cs for s in (cs[0], cs[-1]) if s is not c}

            def missing():
                return {(cid, room, text) for cid, room, text in want
                        if not any(t == text and r == room
                                   for r, t, _ in got[cid])}
            deadline = time.monotonic() + 15
            while missing() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert not missing(), "not delivered after the restart: %r" % (
                sorted(missing())[:10],)
            await asyncio.sleep(1)      # late duplicates would come now
            for t in readers:
                t.cancel()
            return rooms

        rooms = self.run_pools(body, 120)
        crossed = 0
        for room, cs in rooms.items():
            for c in cs:
                texts = collections.Counter(t for _, t, _ in got[c.id])
                twice = [t for t, n in texts.items() if n > 1]
                self.assertEqual(twice, [], "%s got twice: %r" % (c.id,
                                                                  twice))
                self.assertFalse(any(f == c.id for _, _, f in got[c.id]),
                                 "%s got its own message" % c.id)
                self.assertTrue(all(r == room for r, _, _ in got[c.id]))
                crossed += sum(1 for _, _, f in got[c.id]
                               if f[0] != c.id[0])
        self.assertGreater(crossed, 0)
        for n, before in pids.items():
            self.assertEqual(sorted(n.workers()), before,
                             "a worker died:\n" + n.log())


class TestChangesWhileDown(RedisTestCase):

    def test_joins_and_leaves_while_down_are_announced(self):
        self.redis.start()
        self.start_node(workers=1)
        self.start_node(workers=1)
        room = "offline"
        chan = "wshub:room:/ws#" + room

        async def body(pa, pb):
            a1 = await pa.open("a1")
            b1 = await pb.open("b1")
            b2 = await pb.open("b2")
            await join(a1, room)
            await wait_subscribed(self.redis, chan, 1)
            for c in (b1, b2):
                await join(c, room)
                await a1.expect("user_joined_room", room=room, userId=c.id)
            await b1.expect("user_joined_room", room=room, userId="b2")
            await wait_subscribed(self.redis, chan, 2)

            await asyncio.to_thread(self.redis.stop)
            # Told at once on the same node; the members as last known...
            a2 = await pa.open("a2")
            m = await join(a2, room)
            assert sorted(m["members"]) == ["a1", "a2", "b1", "b2"], m
            await a1.expect("user_joined_room", room=room, userId="a2")
            await b1.request({"type": "leave_room", "room": room},
                             "room_left", room=room)
            await b2.expect("user_left_room", room=room, userId="b1")
            # ... and on the other once Redis is back, exactly once.
            await asyncio.to_thread(self.redis.start)
            await b2.expect("user_joined_room", 20, room=room, userId="a2")
            await a1.expect("user_left_room", 20, room=room, userId="b1")
            await a2.expect("user_left_room", 5, room=room, userId="b1")
            assert not await all_quiet([a1, a2, b1, b2], 1)

            # One subscription per worker, presence complete again.
            await wait_subscribed(self.redis, chan, 2)
            assert self.redis.cli("PUBSUB", "NUMSUB", chan).split()[1] == "2"
            await chat_once(b2, [a1, a2], room, "back")
            b3 = await pb.open("b3")
            m = await join(b3, room)
            assert sorted(m["members"]) == ["a1", "a2", "b2", "b3"], m

        self.run_pools(body)


class TestPresenceChurn(RedisTestCase):

    def test_presence_alternates_under_churn(self):
        """Clients on two nodes join and leave a room over and over while
        the refresh (every 333 ms) compares what observers know with
        Redis: every observer sees each id join and leave alternately,
        never twice in a row, and last leave."""
        self.redis.start()
        for _ in range(2):
            srv = Server(workers=1, endpoints=[{"path": "/ws",
                                                "module": "hub"}],
                         raw_yaml="engine:\n  type: redis\n  redis:\n"
                                  "    port: %d\n    presence_ttl: 1s\n"
                                  % self.redis.port)
            self.addCleanup(srv.stop)
            srv.start()
            self.nodes.append(srv)
        room = "churn"

        async def body(pa, pb):
            observers = [await pa.open("oa"), await pb.open("ob")]
            for o in observers:
                await joined(o, room)
            await wait_subscribed(self.redis, "wshub:room:/ws#" + room, 2)
            await asyncio.sleep(1.2)    # past presence_ttl: leaves by
            #                             difference are on
            churners = [await (pa if i % 2 else pb).open("c%d" % i)
                        for i in range(8)]

            async def churn(c, i):
                for n in range(8):
                    await joined(c, room)
                    await asyncio.sleep(0.05 * ((i + n) % 5))
                    await c.send({"type": "leave_room", "room": room})
                    while (await c.recv(10)).get("type") != "room_left":
                        pass
                    await asyncio.sleep(0.03 * ((i * n) % 4))
            await asyncio.gather(*(churn(c, i)
                                   for i, c in enumerate(churners)))
            seen = {}
            for o in observers:
                events = collections.defaultdict(list)
                for m in await o.quiet(3):
                    if (m.get("type") in ("user_joined_room",
                                          "user_left_room")
                            and m["userId"].startswith("c")):
                        events[m["userId"]].append(m["type"][5])
                seen[o.id] = events
            return seen

        seen = self.run_pools(body, 120)
        for oid, events in seen.items():
            for cid, evs in events.items():
                line = "".join(evs)
                self.assertTrue(line.startswith("j") and line.endswith("l")
                                and "jj" not in line and "ll" not in line,
                                "%s saw %s: %s" % (oid, cid, line))
            self.assertEqual(len(events), 8, "%s: %r" % (oid, events))


class TestOlderSave(RedisTestCase):
    """Redis comes back from a save older than what was delivered (as a
    replica that had not got the last messages does after a failover):
    same epoch, lower offset. The members are told (room_reset), and
    rejoining from where they are gives recovered: false and Redis's
    position, so that offsets it gives again are not taken for ones
    they have."""

    def test_members_told_when_redis_is_behind(self):
        from test_redis_sentinel import HUB_YAML, publish
        import http.client
        self.redis.start()
        srv = self.start_node(endpoints=[
            {"path": "/ws", "module": "hub"},
            {"path": "/api/publish", "module": "hub_api"}],
            more_yaml=HUB_YAML)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        room = "log:failover"

        def publish_ok(n):
            # 503 until the worker that takes it is connected again:
            # retried with its key, as a backend does.
            deadline = time.monotonic() + 10
            while True:
                status, body = publish(srv, conn, n)
                if status != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(status, 202, body)
            return body

        async def expect(c, type_, timeout=5, **fields):
            # The member's own leave and join, as the reset made them,
            # may reach it (Redis announces them) around its answers.
            while True:
                m = await c.recv(timeout)
                if m.get("type") not in ("user_joined_room",
                                         "user_left_room"):
                    break
            self.assertEqual((m.get("type"), {k: m.get(k) for k in fields}),
                             (type_, fields), m)
            return m

        async def body(pa, pb=None):
            m = await pa.open("m")
            await m.send({"type": "join_room", "room": room})
            await m.expect("room_joined", room=room)
            for n in range(5):
                await asyncio.to_thread(publish_ok, n)
            self.assertEqual(self.redis.cli("SAVE"), "OK")
            for n in range(5, 10):
                last = await asyncio.to_thread(publish_ok, n)
            for n in range(10):
                await m.expect("room_message", n=n, offset=n + 1)
            self.redis.stop()
            self.redis.start()          # from the save: offset 5
            reset = await expect(m, "room_reset", 20, room=room)
            self.assertEqual(reset["since"], {"offset": 10,
                                              "epoch": last["epoch"]})
            await m.send({"type": "join_room", "room": room,
                          "since": reset["since"]})
            j = await expect(m, "room_joined", room=room)
            self.assertEqual((j["recovered"], j["offset"], j["epoch"]),
                             (False, 5, last["epoch"]))
            body = await asyncio.to_thread(publish_ok, 10)
            self.assertEqual(body["offset"], 6)
            await expect(m, "room_message", n=10, offset=6)
            srv.wait_log("behind the 10 delivered here: it lost messages")

        self.run_pools(body)
        conn.close()


def commandstat(redis, cmd):
    """Calls of CMD in Redis's INFO commandstats."""
    for line in (redis.cli("INFO", "commandstats") or "").splitlines():
        if line.startswith("cmdstat_%s:" % cmd):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


class TestScripts(RedisTestCase):

    def test_evalsha_and_noscript(self):
        """Presence goes by EVALSHA; after SCRIPT FLUSH the NOSCRIPT
        reply is answered with EVAL and the join still works."""
        self.redis.start()
        self.start_node(workers=1)
        room = "scripts"

        async def body(pa):
            a1 = await pa.open("s1")
            await join(a1, room, ["s1"])
            assert commandstat(self.redis, "evalsha") >= 1
            assert commandstat(self.redis, "eval") == 0
            self.redis.cli("SCRIPT", "FLUSH")
            a2 = await pa.open("s2")
            await join(a2, room, ["s1", "s2"])
            await a1.expect("user_joined_room", room=room, userId="s2")
            assert commandstat(self.redis, "eval") >= 1
            # EVAL cached the script again: EVALSHA works once more.
            a3 = await pa.open("s3")
            await join(a3, room, ["s1", "s2", "s3"])
            assert not await all_quiet([a3], 0.3)

        self.run_pools(body)


class HangUp:
    """A port that accepts and closes at once (or with HOLD, keeps the
    connection and never answers): a Redis that fails every connect.
    Counts the connects."""

    def __init__(self, port, hold=False):
        self.hold = hold
        self.held = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            try:
                s, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            if self.hold:
                self.held.append(s)
            else:
                s.close()

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()
        for s in self.held:
            s.close()


def health(port):
    st, _, body = http(port, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
    return st, json.loads(body)


class TestBreaker(RedisTestCase):

    def start_fast_node(self, **redis):
        """One worker retrying every 10-50 ms, REDIS the other
        engine.redis keys, /health answering 503 while Redis is down."""
        keys = {"port": self.redis.port, "reconnect_min": "10ms",
                "reconnect_max": "50ms"}
        keys.update(redis)
        srv = Server(workers=1,
                     endpoints=[{"path": "/ws", "module": "hub"},
                                {"path": "/health", "module": "health"}],
                     raw_yaml="health:\n  engine_required: on\n"
                              "engine:\n  type: redis\n  redis:\n"
                              + "".join("    %s: %s\n" % kv
                                        for kv in keys.items()))
        self.addCleanup(srv.stop)
        srv.start()
        return srv

    def test_silent_redis_opens_the_breaker(self):
        """Connects that succeed but never get an answer count too."""
        fake = HangUp(self.redis.port, hold=True)
        self.addCleanup(fake.close)
        srv = self.start_fast_node(command_timeout="300ms",
                                   breaker_failures=2, breaker_open="60s")
        srv.wait_log("redis circuit breaker open", 15)
        self.assertIn("command: timed out", srv.log())

    def test_breaker_opens_probes_and_closes(self):
        fake = HangUp(self.redis.port)
        self.addCleanup(fake.close)
        srv = self.start_fast_node(breaker_failures=4, breaker_open="4s")
        srv.wait_log("redis circuit breaker open", 10)
        n0 = fake.accepted
        self.assertGreaterEqual(n0, 4)
        st, doc = health(srv.port)
        self.assertEqual(st, 503)
        self.assertEqual(doc["status"], "degraded")
        self.assertEqual(doc["checks"]["engine"], "down")
        self.assertEqual(doc["engine"]["type"], "redis")
        self.assertFalse(doc["engine"]["up"])
        self.assertIn(doc["engine"]["breaker"], ("open", "half-open"))
        self.assertGreaterEqual(doc["engine"]["failures"], 4)
        # Open: nothing tried, once the connect that was on its way when
        # the breaker opened has landed.
        time.sleep(1)
        n1 = fake.accepted
        self.assertLessEqual(n1, n0 + 1)
        time.sleep(1)
        self.assertEqual(fake.accepted, n1)
        # Then one probe, which fails: open again.
        srv.wait_log("redis circuit breaker half-open", 10)
        srv.wait_log("the probe failed", 10)
        self.assertLessEqual(fake.accepted, n1 + 1)
        log = srv.log()
        self.assertEqual(log.count("failed connects in a row"), 1, log)

        # A real Redis on the port: the next probe closes the breaker.
        fake.close()
        self.redis.start()
        srv.wait_log("redis circuit breaker closed", 15)
        wait_for(lambda: health(srv.port)[0] == 200, 10, "health 200")
        st, doc = health(srv.port)
        self.assertEqual(doc["status"], "ok")
        self.assertEqual(doc["engine"], {"type": "redis", "up": True,
                                         "breaker": "closed",
                                         "reconnects": 0, "failures": 0,
                                         "address": "127.0.0.1:%d"
                                                    % self.redis.port})
        log = srv.log()
        self.assertEqual(log.count("redis circuit breaker closed"), 1, log)

        # A restart: both connections come back, counted.
        self.redis.stop()
        self.redis.start()
        wait_for(lambda: health(srv.port)[1]["engine"]["reconnects"] == 2,
                 15, "two reconnects", srv.log)
        self.assertEqual(health(srv.port)[1]["engine"]["breaker"], "closed")


if __name__ == "__main__":
    main()
