#!/usr/bin/python3
"""engine.redis.shards: three plain redis-servers on free loopback
ports, two wshubd nodes placing rooms and client channels over them by
jump consistent hash (issue 22, items 3 and 5).

- rooms, private messages, broadcast and presence exactly once across
  the nodes, each room on the shard placement names;
- rooms spread over all three shards (PUBSUB CHANNELS on each server)
  and the per-shard counters of /metrics;
- a shard that is a Sentinel master switches over alone;
- one shard's redis-server SIGKILLed: the other shards' rooms keep
  delivering, /health and /metrics show that shard down, and once it is
  restarted (empty) its rooms work again, its room with history alone
  getting room_reset and recovering with since;
- a reload that appends a fourth shard moves about a quarter of the
  rooms, each to the new shard, and a moved room with history answers
  a rejoin with since with recovered: false;
- the configuration refusals of wshubd -t.

Placement is computed here too (FNV-1a 64 and the paper's jump hash),
so that each channel is looked for on the server wshubd must use.
Every process started here is stopped by pid; every wait is bounded.
"""

import asyncio
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import Server, arun, wait_for  # noqa: E402
from test_hub import all_quiet, join  # noqa: E402
import test_history  # noqa: E402
from test_redis import (Redis, RedisTestCase, chat_once, meet,  # noqa: E402
                        metric, subscribers, wait_subscribed)
from test_redis import main as redis_main  # noqa: E402
import test_redis_sentinel  # noqa: E402
from test_redis_sentinel import HUB_YAML, health  # noqa: E402

ENDPOINTS = [{"path": "/ws", "module": "hub"},
             {"path": "/health", "module": "health"},
             {"path": "/metrics", "module": "metrics"}]
MASK = (1 << 64) - 1


def fnv1a(data):
    h = 0xcbf29ce484222325
    for c in data:
        h = ((h ^ c) * 0x100000001b3) & MASK
    return h


def jump(key, n):
    """Lamping and Veach's jump consistent hash, as placement.c has it
    (the same IEEE double arithmetic)."""
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) & MASK
        j = int(float(b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def shard_of(channel, n):
    return 0 if n == 1 else jump(fnv1a(channel.encode()), n)


def room_channel(room):
    return "wshub:room:/ws#" + room        # realm /ws, the path


def client_channel(cid):
    return "wshub:client:/ws#" + cid


def named(prefix, n_shards, shard):
    """The first name PREFIX-<i> whose room channel is on SHARD."""
    for i in range(1000):
        if shard_of(room_channel("%s-%d" % (prefix, i)), n_shards) == shard:
            return "%s-%d" % (prefix, i)
    raise AssertionError("no name on shard %d" % shard)


def shards_yaml(redises, more=""):
    return ("engine:\n  type: redis\n  redis:\n    presence_ttl: 3s\n"
            "    reconnect_max: 1s\n    shards:\n"
            + "".join("      - host: 127.0.0.1\n        port: %d\n" % r.port
                      for r in redises) + more)


def room_channels(redis, pattern):
    return set((redis.cli("PUBSUB", "CHANNELS", pattern) or "").split())


class ShardsTestCase(RedisTestCase):
    """Three redis-servers, and nodes using them as shards."""

    N = 3

    def setUp(self):
        self.redises = [Redis() for _ in range(self.N)]
        for r in self.redises:
            self.addCleanup(r.cleanup)
            r.start()
        self.nodes = []

    def start_node(self, workers=2, redises=None, more_yaml=""):
        srv = Server(workers=workers, endpoints=ENDPOINTS,
                     raw_yaml=shards_yaml(redises or self.redises)
                     + more_yaml)
        self.addCleanup(srv.stop)
        srv.start()
        self.nodes.append(srv)
        return srv

    def on(self, channel):
        """The redis-server of CHANNEL's shard."""
        return self.redises[shard_of(channel, len(self.redises))]


class TestAcrossNodes(ShardsTestCase):

    def test_rooms_private_broadcast_presence(self):
        self.start_node()
        self.start_node()
        rooms = [named("lobby", self.N, s) for s in range(self.N)]
        # Two ids whose private channels are on different shards.
        ids = [named("user", self.N, 1), named("user", self.N, 2)]

        async def body(pa, pb):
            for room in rooms:
                # Joins, presence both ways, and messages both ways, each
                # once; subscribed on the room's shard.
                await meet(self.on(room_channel(room)), pa, pb, room)
            for room in rooms:
                for other in self.redises:
                    if other is not self.on(room_channel(room)):
                        self.assertEqual(
                            subscribers(other, room_channel(room)), 0)

            # Private messages across the nodes, each way.
            x = await pa.open(ids[0])
            y = await pb.open(ids[1])
            for cid in ids:
                await wait_subscribed(self.on(client_channel(cid)),
                                      client_channel(cid), 1)
            await y.send({"type": "private_message", "to": ids[0],
                          "text": "psst"})
            m = await x.expect("private_message", text="psst")
            assert m["from"] == ids[1], m
            await x.send({"type": "private_message", "to": ids[1],
                          "text": "back"})
            m = await y.expect("private_message", text="back")
            assert m["from"] == ids[0], m
            await y.error({"type": "private_message", "to": "nobody",
                           "text": "?"}, "User not found", "private_message")
            assert not await all_quiet([x, y], 0.5)

            # Broadcasts go through shard 0 only, once to each client.
            everyone = [x, y] + [c for p in (pa, pb) for c in p.clients
                                 if c not in (x, y)]
            await x.send({"type": "broadcast", "text": "all"})
            for c in everyone[1:]:
                await c.expect("broadcast", text="all",
                               **{"from": ids[0]})
            assert not await all_quiet(everyone, 0.5)
            self.assertGreaterEqual(
                subscribers(self.redises[0], "wshub:all:/ws#"), 2)
            for other in self.redises[1:]:
                self.assertEqual(subscribers(other, "wshub:all:/ws#"), 0)

        self.run_pools(body, timeout=90)

    def test_rooms_spread_over_every_shard(self):
        """60 rooms joined on one node: each channel on the server
        placement names, every server with some; each room's publish
        counted on its shard in /metrics."""
        srv = self.start_node()
        rooms = ["spread-%d" % i for i in range(60)]
        want = [set() for _ in range(self.N)]
        for room in rooms:
            want[shard_of(room_channel(room), self.N)].add(
                room_channel(room))

        async def body(pa):
            c = await pa.open("spreader")
            for room in rooms:
                await join(c, room)
            for s, r in enumerate(self.redises):
                await asyncio.to_thread(
                    wait_for, lambda: room_channels(
                        r, "wshub:room:/ws#spread-*") == want[s], 10,
                    "the rooms of shard %d" % s, srv.log)
                self.assertGreater(len(want[s]), 5, want)
            for room in rooms:
                await c.send({"type": "room_message", "room": room,
                              "text": "x"})
            await c.ping()

        self.run_pools(body)
        for s in range(self.N):
            wait_for(lambda: metric(srv.port, 'wshub_redis_publishes_total'
                                    '{shard="%d"}' % s) == len(want[s]),
                     10, "the publishes of shard %d" % s, srv.log)
            self.assertEqual(metric(srv.port,
                                    'wshub_redis_up{shard="%d"}' % s), 1)
        self.assertIsNone(metric(srv.port, 'wshub_redis_up{shard="3"}'))


def shard_health(port):
    st, doc = health(port)
    return st, doc["status"], doc["engine"]["shards"]


PRESENCE = ("user_joined_room", "user_left_room")


async def reset_and_rejoin(c, room):
    """C is told room_reset for ROOM (presence events of ROOM may come
    first) and rejoins from its since; (the reset, room_joined)."""
    while True:
        m = await c.recv(20)
        if m.get("room") == room and m["type"] in PRESENCE:
            continue
        assert m["type"] == "room_reset" and m["room"] == room, m
        break
    await c.send({"type": "join_room", "room": room, "since": m["since"]})
    while True:
        j = await c.recv(10)
        if j.get("room") == room and j["type"] in PRESENCE:
            continue
        assert j["type"] == "room_joined" and j["room"] == room, j
        return m, j


async def settle(c, room, seconds=1.0):
    """Only presence events of ROOM reach C within SECONDS."""
    for m in await c.quiet(seconds):
        assert m.get("room") == room and m["type"] in PRESENCE, m


class TestShardDown(ShardsTestCase):

    def test_a_dead_shard_stops_only_its_rooms(self):
        """Rooms on shards 0, 1 and 2, and rooms with history on shards 0
        and 2; shard 2 SIGKILLed, then restarted empty: only its room
        with history gets room_reset (a new epoch), and recovers."""
        # The breaker opens during the outage; 2 s, not 30, until its
        # next probe once the server is back.
        more = "    breaker_open: 2s\n" + HUB_YAML
        a = self.start_node(more_yaml=more)
        self.start_node(more_yaml=more)
        rooms = [named("room", self.N, s) for s in range(self.N)]
        logs = [named("log:r", self.N, s) for s in (0, 2)]
        dead = self.redises[2]

        async def body(pa, pb):
            a1, b1 = await meet(self.on(room_channel(rooms[0])), pa, pb,
                                rooms[0])
            for room in rooms[1:] + logs:
                await join(a1, room)
                await wait_subscribed(self.on(room_channel(room)),
                                      room_channel(room), 1)
                await join(b1, room)
                await a1.expect("user_joined_room", room=room,
                                userId=b1.id)
                await wait_subscribed(self.on(room_channel(room)),
                                      room_channel(room), 2)
            st, status, shards = shard_health(a.port)
            self.assertEqual((st, status), (200, "ok"))
            self.assertEqual([s["up"] for s in shards], [True] * 3)
            self.assertEqual([s["role"] for s in shards], ["master"] * 3)
            self.assertEqual([s["address"] for s in shards],
                             ["127.0.0.1:%d" % r.port for r in self.redises])
            engine = health(a.port)[1]["engine"]
            self.assertEqual((engine["address"], engine["breaker"],
                              engine["up"]), (None, "closed", True))

            dead.stop()         # SIGKILL
            await asyncio.to_thread(
                wait_for, lambda: [s["up"] for s in shard_health(a.port)[2]]
                == [True, True, False], 15, "shard 2 down on node a", a.log)
            self.assertEqual(metric(a.port, 'wshub_redis_up{shard="2"}'), 0)
            self.assertEqual(metric(a.port, 'wshub_redis_up{shard="1"}'), 1)
            self.assertEqual(shard_health(a.port)[1], "degraded")
            for room in rooms[:2] + logs[:1]:
                await chat_once(a1, [b1], room, "while 2 is down")
                await chat_once(b1, [a1], room, "still")

            dead.start()        # on the same port, empty
            await asyncio.to_thread(
                wait_for, lambda: shard_health(a.port)[1] == "ok", 20,
                "shard 2 back", a.log)
            for c in (a1, b1):
                reset, j = await reset_and_rejoin(c, logs[1])
                self.assertEqual(reset["since"]["offset"], 0, reset)
                self.assertEqual(j["epoch"], reset["since"]["epoch"])
            for c in (a1, b1):
                await settle(c, logs[1])
            for room in (rooms[2], logs[1]):
                await wait_subscribed(dead, room_channel(room), 2)
            for room in rooms + logs:
                await chat_once(a1, [b1], room, "2 is back")
                await chat_once(b1, [a1], room, "and answers")
            shards = shard_health(a.port)[2]
            self.assertGreaterEqual(shards[2]["reconnects"], 1)
            self.assertEqual(shards[0]["reconnects"], 0)
            self.assertGreaterEqual(
                metric(a.port, 'wshub_redis_reconnects_total{shard="2"}'), 1)

        self.run_pools(body, timeout=120)


@unittest.skipUnless(os.access(test_redis_sentinel.REDIS_SENTINEL, os.X_OK),
                     "redis-sentinel is not installed")
class TestSentinelShard(test_redis_sentinel.SentinelTestCase):
    """Shards 0 and 2 plain servers, shard 1 a Sentinel master with a
    replica: a switchover moves shard 1 alone."""

    def test_a_sentinel_shard_switches_alone(self):
        plain = [Redis(), Redis()]
        for r in plain:
            self.addCleanup(r.cleanup)
            r.start()
        name = test_redis_sentinel.NAME
        master, replica = self.redis.port, self.replica.port
        yaml = ("engine:\n  type: redis\n  redis:\n    presence_ttl: 3s\n"
                "    reconnect_max: 1s\n    shards:\n"
                "      - host: 127.0.0.1\n        port: %d\n"
                "      - sentinel:\n          master: %s\n"
                "          addresses: [%s]\n"
                "      - host: 127.0.0.1\n        port: %d\n"
                % (plain[0].port, name, ", ".join(
                    '"127.0.0.1:%d"' % s.port for s in self.sentinels),
                   plain[1].port))
        for _ in range(2):
            srv = Server(workers=2, endpoints=ENDPOINTS, raw_yaml=yaml)
            self.addCleanup(srv.stop)
            srv.start()
            self.nodes.append(srv)
        a = self.nodes[0]
        servers = [plain[0], self.redis, plain[1]]
        rooms = [named("room", 3, s) for s in range(3)]
        for n in self.nodes:
            n.wait_log("redis shard 1 master of %s is 127.0.0.1:%d"
                       % (name, master))
            wait_for(lambda: health(n.port)[1]["status"] == "ok", 10,
                     "every shard up", n.log)

        async def body(pa, pb):
            a1, b1 = await meet(servers[0], pa, pb, rooms[0])
            for s in (1, 2):
                await join(a1, rooms[s])
                await wait_subscribed(servers[s], room_channel(rooms[s]), 1)
                await join(b1, rooms[s])
                await a1.expect("user_joined_room", room=rooms[s],
                                userId=b1.id)
                await wait_subscribed(servers[s], room_channel(rooms[s]), 2)
            self.assertEqual(self.sentinels[0].cli(
                "SENTINEL", "FAILOVER", name), "OK")
            self.wait_master(replica)
            for n in self.nodes:
                await asyncio.to_thread(
                    n.wait_log, "redis shard 1 master of %s is now "
                    "127.0.0.1:%d (was 127.0.0.1:%d)" % (name, replica,
                                                         master), 15)
            await wait_subscribed(Redis(port=replica),
                                  room_channel(rooms[1]), 2)
            for room in rooms:
                await chat_once(a1, [b1], room, "after the switch")
                await chat_once(b1, [a1], room, "and back")
            shards = shard_health(a.port)[2]
            self.assertEqual(shards[1]["address"], "127.0.0.1:%d" % replica)
            self.assertEqual(shards[1]["role"], "master")
            self.assertEqual([s["up"] for s in shards], [True] * 3)
            self.assertEqual((shards[0]["reconnects"],
                              shards[2]["reconnects"]), (0, 0))

        self.run_pools(body, timeout=90)


class TestAddShard(ShardsTestCase):

    N = 4
    ROOMS = 400
    HUB = HUB_YAML + "  max_rooms_per_connection: 1000\n"

    def test_reload_with_a_fourth_shard_moves_a_quarter(self):
        """A reload appending a fourth shard: each room channel stays on
        its shard or moves to the new one, about a quarter of them
        (within 0.19 and 0.31, over 3 standard deviations of a
        binomial(400, 1/4)); a moved room with history answers a rejoin
        with since with recovered: false, its history being on its old
        shard."""
        three = self.redises[:3]
        srv = self.start_node(workers=1, redises=three, more_yaml=self.HUB)
        rooms = ["move-%d" % i for i in range(self.ROOMS)]
        hist = next("log:%d" % i for i in range(1000)
                    if shard_of(room_channel("log:%d" % i), 4) == 3)

        def placed():
            where = {}
            for s, r in enumerate(self.redises):
                for ch in room_channels(r, "wshub:room:/ws#move-*"):
                    where[ch] = s
            return where

        async def join_all():
            ws = await test_history.client(srv, "mover")
            for room in rooms:
                await test_history.join(ws, room)
            await asyncio.to_thread(
                wait_for, lambda: len(placed()) == self.ROOMS, 10,
                "the rooms subscribed", srv.log)
            return ws

        async def before():
            ws = await join_all()
            # Three messages kept in the history room (on shard 0, 1 or
            # 2 until the reload), seen by a member: its position.
            watcher = await test_history.client(srv, "watcher")
            await test_history.join(watcher, hist)
            await test_history.join(ws, hist)
            for n in range(3):
                await ws.send('{"type": "room_message", "room": "%s", '
                              '"n": %d}' % (hist, n))
            last = (await test_history.collect(watcher, 3))[-1]
            old = placed()
            await ws.close()
            await watcher.close()
            return old, last

        old, last = arun(before(), 60)
        self.assertEqual(set(old.values()), {0, 1, 2})
        self.assertNotEqual(shard_of(room_channel(hist), 3), 3)
        wait_for(lambda: not placed(), 10, "the rooms unsubscribed")

        first = srv.workers()
        srv.raw_yaml = shards_yaml(self.redises) + self.HUB
        srv.write_conf()
        srv.signal(signal.SIGHUP)
        srv.wait_log("reload done", 15)
        wait_for(lambda: srv.workers() and not set(srv.workers()) & set(first),
                 15, "the new worker alone", srv.log)

        async def after():
            ws = await join_all()
            new = placed()
            again = await test_history.join(
                ws, hist, {"offset": last["offset"], "epoch": last["epoch"]})
            await ws.close()
            return new, again

        new, again = arun(after(), 60)
        moved = [ch for ch in new if new[ch] != old[ch]]
        for ch in moved:
            self.assertEqual(new[ch], 3, ch)
        for ch in new:
            self.assertEqual(new[ch], shard_of(ch, 4), ch)
        frac = len(moved) / self.ROOMS
        self.assertGreaterEqual(frac, 0.19, frac)
        self.assertLessEqual(frac, 0.31, frac)
        print("rooms moved by the fourth shard: %d of %d (%.3f)"
              % (len(moved), self.ROOMS, frac), file=sys.stderr)
        self.assertIs(again["recovered"], False, again)


class TestConfig(test_redis_sentinel.TestConfig):
    """wshubd -t on engine.redis.shards (the sentinel keys are
    test_redis_sentinel.py's)."""

    test_sentinel_keys = None

    def test_shard_keys(self):
        two = ("    shards:\n      - host: 127.0.0.1\n        port: 6380\n"
               "      - unix_socket: /run/redis.sock\n"
               "      - sentinel:\n          master: m\n"
               "          addresses: [\"h:26379\"]\n")
        self.check("    password: pw\n" + two, None)
        self.check("    host: 10.0.0.1\n" + two, "4:11",
                   "engine.redis.host", "not used with shards",
                   "move it into a shard")
        self.check("    port: 6390\n" + two, "4:11", "engine.redis.port",
                   "not used with shards")
        self.check("    unix_socket: /s\n" + two, "4:18",
                   "engine.redis.unix_socket", "not used with shards")
        self.check("    sentinel:\n      master: m\n"
                   "      addresses: [\"h:1\"]\n" + two, "5:7",
                   "engine.redis.sentinel", "not used with shards")
        self.check("    shards: []\n", "4:13", "engine.redis.shards",
                   "at least 1")
        self.check("    shards:\n      - db: 2\n", "5:9",
                   "engine.redis.shards[0]", "name the server")
        self.check("    shards:\n      - host: a\n        unix_socket: /s\n",
                   "6:22", "engine.redis.shards[0].unix_socket",
                   "not used with host")
        self.check("    shards:\n      - host: a\n      - host: a\n",
                   "6:9", "engine.redis.shards[1]",
                   "the same server as engine.redis.shards[0]")
        self.check("    shards:\n      - host: a\n        colour: red\n",
                   "6:9", "unknown key \"colour\"")
        self.check("    shards:\n" + "".join(
            "      - port: %d\n        host: h\n" % (7000 + i)
            for i in range(33)), "69:9", "engine.redis.shards",
            "at most 32")


if __name__ == "__main__":
    redis_main()
