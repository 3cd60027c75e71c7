#!/usr/bin/python3
"""engine.redis.cluster: a real 3-master/3-replica Redis Cluster
(redis_cluster.py) and two wshubd nodes finding its masters from the
seeds (issue 22, item 2).

- rooms, private messages, broadcast and presence exactly once across
  the nodes, each channel SSUBSCRIBEd on the master of its slot only;
- rooms spread over all three masters (PUBSUB SHARDNUMSUB on each) and
  the per-shard counters of /metrics;
- presence and history keys hash-tagged beside the room's channel (one
  slot); a history room recovered with since across the nodes;
- a slot migrated under a room with members (MOVED, ASK, the dropped
  SSUBSCRIBE): it keeps delivering from its new master;
- a master SIGKILLed while messages go to rooms on every master: the
  other masters' rooms lose nothing, the killed one's come back once its
  replica is promoted (the seconds printed, not asserted), and its room
  with history is recovered with since, without duplicates;
- the configuration refusals of wshubd -t.

Every process started here is stopped by pid; every wait is bounded.
"""

import asyncio
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis_cluster  # noqa: E402
from wshub_harness import Server, wait_for  # noqa: E402
from test_hub import all_quiet, join  # noqa: E402
import test_history  # noqa: E402
from test_redis_sentinel import HUB_YAML, health  # noqa: E402
from test_redis import (RedisConfigTestCase, RedisTestCase,  # noqa: E402
                        chat_once, metric)

ENDPOINTS = [{"path": "/ws", "module": "hub"},
             {"path": "/health", "module": "health"},
             {"path": "/metrics", "module": "metrics"}]


def room_channel(room):
    """As redis_slot_key writes it, realm /ws (no brace, no % in ROOM)."""
    return "wshub:room:{/ws#%s}" % room


def client_channel(cid):
    return "wshub:client:{/ws#%s}" % cid


ALL_CHANNEL = "wshub:all:{/ws#}"


def cluster_yaml(cluster, more=""):
    return ("engine:\n  type: redis\n  redis:\n    presence_ttl: 3s\n"
            "    reconnect_max: 1s\n    cluster:\n"
            + "".join("      - %s\n" % s for s in cluster.seeds()[:2])
            + more)


class ClusterEngineTestCase(RedisTestCase):
    """One cluster for the class; nodes per test."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = redis_cluster.RedisCluster(masters=3)
        cls.cluster.start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        self.nodes = []

    def start_node(self, workers=2, more_yaml=""):
        srv = Server(workers=workers, endpoints=ENDPOINTS,
                     raw_yaml=cluster_yaml(self.cluster) + more_yaml)
        self.addCleanup(srv.stop)
        srv.start()
        self.nodes.append(srv)
        wait_for(lambda: metric(srv.port, 'wshub_engine_up{engine="redis"}')
                 == 1, 15, "the engine up", srv.log)
        return srv

    def master_of(self, channel):
        return self.cluster.node_for_slot(self.cluster.keyslot(channel))

    def shard_subscribers(self, port, channel):
        out = self.cluster.command(port, "PUBSUB", "SHARDNUMSUB", channel)
        return int(out[1]) if isinstance(out, list) and out else 0

    async def wait_subscribed(self, channel, n, timeout=10):
        """Until N worker connections SSUBSCRIBE CHANNEL on the master
        of its slot."""
        port = self.master_of(channel)
        await asyncio.to_thread(
            wait_for, lambda: self.shard_subscribers(port, channel) >= n,
            timeout, "%d subscribers of %s on %d" % (n, channel, port))

    def named(self, prefix, master):
        """The first name PREFIX-<i> whose room is on masters()[MASTER]."""
        port = self.cluster.masters()[master]
        for i in range(200):
            name = "%s-%d" % (prefix, i)
            if self.master_of(room_channel(name)) == port:
                return name
        raise AssertionError("no room on master %d" % port)

    async def meet(self, pa, pb, room):
        """alice on PA's node joins ROOM, then bob on PB's: presence both
        ways, and each message exactly once to the other."""
        chan = room_channel(room)
        a1 = await pa.open("alice")
        b1 = await pb.open("bob")
        await join(a1, room, ["alice"])
        await self.wait_subscribed(chan, 1)
        m = await join(b1, room)
        assert sorted(m["members"]) == ["alice", "bob"], m
        await a1.expect("user_joined_room", room=room, userId="bob")
        await self.wait_subscribed(chan, 2)
        await chat_once(a1, [b1], room, "from a")
        await chat_once(b1, [a1], room, "from b")
        return a1, b1


class TestAcrossNodes(ClusterEngineTestCase):

    def test_rooms_private_broadcast_presence(self):
        self.start_node()
        self.start_node()
        rooms = [self.named("lobby", m) for m in range(3)]
        masters = self.cluster.masters()

        async def body(pa, pb):
            for room in rooms:
                a1, b1 = await self.meet(pa, pb, room)
                # Only the master of the slot has the subscriptions, and
                # the presence keys are in the channel's slot.
                for port in masters:
                    if port != self.master_of(room_channel(room)):
                        self.assertEqual(self.shard_subscribers(
                            port, room_channel(room)), 0)
                self.assertEqual(
                    self.cluster.keyslot("wshub:presence:{/ws#%s}" % room),
                    self.cluster.keyslot(room_channel(room)))
                self.assertEqual(self.cluster.command(
                    self.master_of(room_channel(room)), "EXISTS",
                    "wshub:presence:{/ws#%s}" % room), 1)
                # Leave: told once on the other node.
                await b1.request({"type": "leave_room", "room": room},
                                 "room_left", room=room)
                await a1.expect("user_left_room", room=room, userId="bob")
                assert not await all_quiet([a1, b1], 0.5)

            x = await pa.open("xavier")
            y = await pb.open("yvonne")
            for cid in ("xavier", "yvonne"):
                await self.wait_subscribed(client_channel(cid), 1)
            await y.send({"type": "private_message", "to": "xavier",
                          "text": "psst"})
            m = await x.expect("private_message", text="psst")
            assert m["from"] == "yvonne", m
            await x.send({"type": "private_message", "to": "yvonne",
                          "text": "back"})
            m = await y.expect("private_message", text="back")
            assert m["from"] == "xavier", m
            await y.error({"type": "private_message", "to": "nobody",
                           "text": "?"}, "User not found", "private_message")
            assert not await all_quiet([x, y], 0.5)

            # A broadcast: once to each client, on the slot of its realm.
            await self.wait_subscribed(ALL_CHANNEL, 2)
            await x.send({"type": "broadcast", "text": "all"})
            await y.expect("broadcast", text="all", **{"from": "xavier"})
            assert not await all_quiet([x, y], 0.5)

        self.run_pools(body, timeout=120)

    def test_rooms_spread_over_every_master(self):
        """60 rooms joined on one node: each SSUBSCRIBEd on the master of
        its slot, every master with some; each room's publish counted
        on its shard in /metrics, three shards up."""
        srv = self.start_node()
        rooms = ["spread-%d" % i for i in range(60)]
        masters = self.cluster.masters()
        per = {p: 0 for p in masters}
        for room in rooms:
            per[self.master_of(room_channel(room))] += 1

        async def body(pa):
            c = await pa.open("spreader")
            for room in rooms:
                await join(c, room)
            for room in rooms:
                await self.wait_subscribed(room_channel(room), 1)
            for room in rooms:
                await c.send({"type": "room_message", "room": room,
                              "text": "x"})
            await c.ping()

        self.run_pools(body)
        self.assertTrue(all(n > 5 for n in per.values()), per)
        for s in range(3):
            self.assertEqual(metric(srv.port,
                                    'wshub_redis_up{shard="%d"}' % s), 1)
        self.assertIsNone(metric(srv.port, 'wshub_redis_up{shard="3"}'))
        # The publishes of each master: its rooms' count, on one shard
        # each (which shard index a master has is the worker's).
        wait_for(lambda: sorted(
            metric(srv.port, 'wshub_redis_publishes_total{shard="%d"}' % s)
            or 0 for s in range(3)) == sorted(per.values()), 10,
            "the publishes per shard", srv.log)


class TestHistory(ClusterEngineTestCase):

    def test_history_room_across_nodes(self):
        """A room with history on the third master: its messages
        numbered by the script there, its keys in the channel's slot,
        and a member on the other node recovering with since."""
        a = self.start_node(more_yaml=HUB_YAML)
        b = self.start_node(more_yaml=HUB_YAML)
        room = self.named("log:h", 2)
        chan = room_channel(room)

        async def go():
            w = await test_history.client(b, "watch")
            first = await test_history.join(w, room)
            await self.wait_subscribed(chan, 1)
            p = await test_history.client(a, "pub")
            await test_history.join(p, room)
            await self.wait_subscribed(chan, 2)
            for n in range(5):
                await p.send(json.dumps({"type": "room_message",
                                         "room": room, "n": n}))
            seen = await test_history.collect(w, 5)
            self.assertEqual([m["offset"] for m in seen], [1, 2, 3, 4, 5])
            self.assertEqual({m["epoch"] for m in seen}, {first["epoch"]})
            r = await test_history.client(a, "r")
            j = await test_history.join(r, room, {
                "offset": seen[0]["offset"], "epoch": seen[0]["epoch"]})
            self.assertIs(j["recovered"], True, j)
            missed = await test_history.collect(r, 4)
            self.assertEqual(missed, seen[1:])
            await test_history.quiet(w)
            await test_history.quiet(r)
            for ws in (w, p, r):
                await ws.close()

        self.run_pools(lambda *_: go(), timeout=60)
        master = self.master_of(chan)
        for key in ("wshub:hist:{/ws#%s}:s" % room,
                    "wshub:hist:{/ws#%s}:l" % room):
            self.assertEqual(self.cluster.keyslot(key),
                             self.cluster.keyslot(chan))
            self.assertEqual(self.cluster.command(master, "EXISTS", key), 1)


class TestYMigration(ClusterEngineTestCase):

    def test_slot_migration_keeps_delivering(self):
        """The slot of a room with a member on each node moves to another
        master: its subscriptions follow (sunsubscribe pushed, map read
        again), its publishes are redirected, presence stays."""
        self.start_node()
        self.start_node()
        room = self.named("mig", 0)
        chan = room_channel(room)
        slot = self.cluster.keyslot(chan)
        to = self.cluster.masters()[1]

        async def body(pa, pb):
            a1, b1 = await self.meet(pa, pb, room)
            await asyncio.to_thread(self.cluster.migrate_slot, slot, to)
            self.assertEqual(self.master_of(chan), to)
            await self.wait_subscribed(chan, 2, timeout=15)
            await chat_once(a1, [b1], room, "moved a")
            await chat_once(b1, [a1], room, "moved b")
            m = await a1.request({"type": "room_members", "room": room},
                                 "room_members", room=room)
            self.assertEqual(sorted(m["members"]), ["alice", "bob"], m)

        self.run_pools(body, timeout=90)

    def test_ask_while_the_slot_migrates(self):
        """A history room's keys already moved to the importing master,
        its slot still MIGRATING: the publish's script gets -ASK and
        runs there (ASKING, EVAL), and is acknowledged; once the slot
        is moved, the member on the other node, subscribed on the old
        master meanwhile, gets it exactly once (live or by since)."""
        self.start_node(more_yaml=HUB_YAML)
        self.start_node(more_yaml=HUB_YAML)
        room = self.named("log:ask", 0)
        chan = room_channel(room)
        slot = self.cluster.keyslot(chan)
        src, dst = self.master_of(chan), self.cluster.masters()[1]
        ids = {n["port"]: n["id"] for n in self.cluster.topology()}

        async def body(pa, pb):
            a1, b1 = await self.meet(pa, pb, room)
            stop = asyncio.Event()
            fb, fa = Follower(b1, stop), Follower(a1, stop)
            tasks = [asyncio.ensure_future(f.run()) for f in (fa, fb)]
            c = self.cluster
            self.assertEqual(c.command(dst, "CLUSTER", "SETSLOT", slot,
                                       "IMPORTING", ids[src]), b"OK")
            self.assertEqual(c.command(src, "CLUSTER", "SETSLOT", slot,
                                       "MIGRATING", ids[dst]), b"OK")
            keys = c.command(src, "CLUSTER", "GETKEYSINSLOT", slot, 100)
            self.assertTrue(keys)
            self.assertNotIsInstance(c.command(
                src, "MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS",
                *keys), Exception)
            await a1.send({"type": "room_message", "room": room,
                           "text": "asked", "id": "m1"})
            await asyncio.to_thread(
                wait_for, lambda: fa.acks, 10, "the ack of the publish")
            self.assertEqual(fa.acks[0]["id"], "m1", fa.acks)
            self.assertIn("cmdstat_asking", c.info(dst, "commandstats"))
            for p in [dst, src] + [m for m in c.masters()
                                   if m not in (src, dst)]:
                c.command(p, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
            await asyncio.to_thread(
                wait_for, lambda: [m["text"] for m in fb.got.get(room, [])
                                   if m["text"] == "asked"], 15,
                "the message on the other node")
            await self.wait_subscribed(chan, 2, timeout=15)
            await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*tasks)
            texts = [m["text"] for m in fb.got[room]]
            self.assertEqual(texts.count("asked"), 1, (texts, fb.resets))
            # The sender: never live; once at most by since, when its
            # node reset the room too.
            self.assertLessEqual([m["text"] for m in fa.got.get(room, [])]
                                 .count("asked"), 1)
            print("ASK: the other node got it %s" % (
                "by since" if fb.resets else "live"), file=sys.stderr)

        self.run_pools(body, timeout=90)


class Follower:
    """A client's messages until STOP, kept by room; a room_reset is
    answered by a rejoin with since, as a client does."""

    def __init__(self, c, stop):
        self.c, self.stop = c, stop
        self.got, self.resets, self.joins, self.acks = {}, [], [], []

    async def run(self):
        while not self.stop.is_set():
            try:
                m = await self.c.recv(0.5)
            except AssertionError:
                continue
            if m.get("type") == "room_message":
                self.got.setdefault(m["room"], []).append(m)
            elif m.get("type") == "room_reset":
                self.resets.append(m)
                await self.c.send({"type": "join_room", "room": m["room"],
                                   "since": m["since"]})
            elif m.get("type") == "room_joined":
                self.joins.append(m)
            elif m.get("type") == "ack":
                self.acks.append(m)


class TestZFailover(ClusterEngineTestCase):

    def test_master_killed_under_load(self):
        more = "    breaker_open: 2s\n" + HUB_YAML
        a = self.start_node(more_yaml=more)
        self.start_node(more_yaml=more)
        rooms = [self.named("load", m) for m in range(3)]
        log = self.named("log:f", 1)
        killed = self.cluster.masters()[1]

        async def body(pa, pb):
            a1 = await pa.open("alice")
            b1 = await pb.open("bob")
            for room in rooms + [log]:
                await join(a1, room)
                await self.wait_subscribed(room_channel(room), 1)
                await join(b1, room)
                await a1.expect("user_joined_room", room=room,
                                userId="bob")
                await self.wait_subscribed(room_channel(room), 2)
            stop = asyncio.Event()
            fb, fa = Follower(b1, stop), Follower(a1, stop)
            got, resets, joins = fb.got, fb.resets, fb.joins

            sent = {room: [] for room in rooms + [log]}

            async def publish(phase, count):
                for i in range(count):
                    for room in rooms + [log]:
                        text = "%s-%d" % (phase, i)
                        sent[room].append(text)
                        await a1.send({"type": "room_message",
                                       "room": room, "text": text})
                    await asyncio.sleep(0.02)

            tasks = [asyncio.ensure_future(fb.run()),
                     asyncio.ensure_future(fa.run())]
            await publish("before", 20)
            kill = asyncio.ensure_future(
                asyncio.to_thread(self.cluster.kill_master, 1))
            n = 0
            while not kill.done() and n < 1000:
                await publish("during%d" % n, 1)
                n += 1
            elapsed = await kill
            t0 = time.monotonic()
            new = self.cluster.masters()

            def back():
                shards = health(a.port)[1]["engine"]["shards"]
                return (all(s["up"] for s in shards)
                        and {s["address"] for s in shards}
                        == {"127.0.0.1:%d" % p for p in new})
            await asyncio.to_thread(wait_for, back, 10,
                                    "the promoted replica in use", a.log)
            print("master %d killed: replica promoted after %.1f s, "
                  "served by wshubd %.1f s later" % (
                      killed, elapsed, time.monotonic() - t0),
                  file=sys.stderr)
            for room in rooms + [log]:
                await self.wait_subscribed(room_channel(room), 2)
            await publish("after", 20)
            await asyncio.sleep(2)
            stop.set()
            await asyncio.gather(*tasks)

            # The outage is logged, not each retry: per worker at most a
            # "lost" and one failure per connection (REDIS_LOG_EVERY).
            for node in self.nodes:
                errors = [line for line in node.log().splitlines()
                          if "[error]" in line]
                self.assertLessEqual(len(errors), 2 * 2 * 2, node.log())
            # The other masters' rooms: everything, once, in order.
            for room in (rooms[0], rooms[2]):
                self.assertEqual([m["text"] for m in got.get(room, [])],
                                 sent[room])
            # The killed master's rooms: what came after, once; nothing
            # twice.
            for room in (rooms[1], log):
                texts = [m.get("text") for m in got.get(room, [])]
                self.assertEqual(len(texts), len(set(texts)), (
                    room, [(m.get("text"), m.get("offset")) for m in
                           got[room]], resets, joins))
                self.assertEqual(texts[-20:],
                                 ["after-%d" % i for i in range(20)])
            offsets = [(m["epoch"], m["offset"]) for m in got[log]]
            self.assertEqual(len(offsets), len(set(offsets)), offsets)
            for j in joins:
                self.assertEqual(j["room"], log, j)
            if all(j.get("recovered") for j in joins):
                # Recovered with since: no gap either, in its epoch.
                last = got[log][-1]["epoch"]
                mine = sorted(o for e, o in offsets if e == last)
                self.assertEqual(mine, list(range(mine[0], mine[-1] + 1)))
            print("history room: %d resets, recovered %r" % (
                len(resets), [j.get("recovered") for j in joins]),
                file=sys.stderr)

        self.run_pools(body, timeout=150)


class TestConfig(RedisConfigTestCase):
    """wshubd -t on engine.redis.cluster."""

    def test_cluster_keys(self):
        seeds = "    cluster: [\"127.0.0.1:7000\", \"[::1]:7001\"]\n"
        self.check(seeds, None)
        self.check("    password: pw\n" + seeds, None)
        # Each key naming a server: refused where it is written.
        for other, where, key in (
                ("    host: 10.0.0.1\n", "4:11", "host"),
                ("    port: 6390\n", "4:11", "port"),
                ("    db: 2\n", "4:9", "db"),
                ("    unix_socket: /s\n", "4:18", "unix_socket"),
                ("    sentinel:\n      master: m\n"
                 "      addresses: [\"h:1\"]\n", "5:7", "sentinel"),
                ("    shards:\n      - host: a\n", "5:7", "shards")):
            self.check(other + seeds, where, "engine.redis." + key,
                       "not used with cluster", "or remove cluster")
        self.check("    prefix: \"ws{x}:\"\n" + seeds, "4:13",
                   "engine.redis.prefix", "hash tag")
        self.check("    user: u\n" + seeds, "4:11", "engine.redis.user",
                   "not supported with cluster")
        self.check(seeds + "    tls:\n      ca_file: /x\n", "6:7",
                   "engine.redis.tls")
        self.check("    cluster: []\n", "4:14", "engine.redis.cluster",
                   "at least 1")
        self.check("    cluster: [\"nohost\"]\n", "4:15",
                   "engine.redis.cluster[0]", "invalid address",
                   "HOST:PORT")
        self.check("    cluster: [\"h:70000\"]\n", "4:15",
                   "engine.redis.cluster[0]", "invalid address")


def main():
    redis_cluster.skip_unless_available()
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
