#!/usr/bin/python3
"""test_redis_sentinel.py -- the Redis engine through Redis Sentinel
(issue 22, item 1).

A master redis-server, one replica and three redis-sentinel processes
(quorum 2, down after 1 s), all on free loopback ports, and two wshubd
nodes (2 workers each) with engine.redis.sentinel:

- rooms, private messages and presence across the nodes through the
  master the sentinels name; a switchover (SENTINEL FAILOVER, the old
  master stays up as a replica) is followed from +switch-master, and
  the demoted master gets no command of ours afterwards;
- the master is SIGKILLed while a publisher sends to a room with
  history: the nodes reconnect to the promoted replica within 10 s
  (measured from the kill until a publish is delivered again), the
  members of a node that was stopped meanwhile are told to rejoin
  (room_reset) and recover with since, and every acknowledged message
  reaches every member exactly once;
- a sentinel (a fake one here) that names a replica: ROLE refuses it,
  nothing but ROLE is sent to it, and the engine stays down until the
  master is named;
- wshubd -t on the new keys.

Every process started here is stopped by pid whatever happens; every
wait is bounded.
"""

import asyncio
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (Server, WSHUBD, arun, free_port,  # noqa: E402
                           wait_for)
from test_hub import join  # noqa: E402
import test_lossless  # noqa: E402
from test_redis import (REDIS_CLI, Redis, RedisConfigTestCase,  # noqa: E402
                        RedisTestCase, chat_once, meet, wait_subscribed)

REDIS_SENTINEL = "/usr/bin/redis-sentinel"
NAME = "mymaster"
API_KEY = "0123456789abcdef0123"
HUB_YAML = """hub:
  api_key: %s
  rooms:
    - match: "log:*"
      history:
        size: 1000
""" % API_KEY
ENDPOINTS = [{"path": "/ws", "module": "hub"},
             {"path": "/api/publish", "module": "hub_api"},
             {"path": "/health", "module": "health"}]


def cli(port, *args):
    try:
        out = subprocess.run([REDIS_CLI, "-p", str(port)] + list(args),
                             capture_output=True, timeout=5, text=True)
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout.strip()


class Sentinel:
    """A redis-sentinel on 127.0.0.1, monitoring NAME at MASTER_PORT
    with quorum 2; its configuration file (which it rewrites) in a
    directory of its own."""

    def __init__(self, master_port):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="wshub-sentinel-")
        self.conf = os.path.join(self.dir, "sentinel.conf")
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                    "sentinel monitor %s 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds %s 1000\n"
                    "sentinel failover-timeout %s 5000\n"
                    % (self.port, self.dir, NAME, master_port, NAME, NAME))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([REDIS_SENTINEL, self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("PING") == "PONG", 10, "redis-sentinel")
        return self

    def cli(self, *args):
        return cli(self.port, *args)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def clients(port):
    """The connections to the server at PORT but its master link, the
    sentinels' and redis-cli's own: wshubd's."""
    out = []
    for line in cli(port, "CLIENT", "LIST").splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if ("M" in f.get("flags", "") or f.get("name", "").startswith(
                "sentinel-") or f.get("cmd") == "client|list"):
            continue
        out.append(f)
    return out


def commands(port):
    """{command: calls} from INFO commandstats of the server at PORT."""
    stats = {}
    for line in cli(port, "INFO", "commandstats").splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+)", line)
        if m:
            stats[m.group(1)] = int(m.group(2))
    return stats


def health(port):
    st, _, body = wshub_harness.http(
        port, b"GET /health HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\n\r\n")
    return st, json.loads(body)


def sentinel_node(addresses, workers=2, more_yaml=""):
    return Server(workers=workers, endpoints=ENDPOINTS,
                  raw_yaml=HUB_YAML + "engine:\n  type: redis\n  redis:\n"
                  "    presence_ttl: 3s\n    reconnect_max: 1s\n"
                  "    sentinel:\n      master: %s\n      addresses: [%s]\n"
                  % (NAME, ", ".join('"%s"' % a for a in addresses))
                  + more_yaml)


class SentinelTestCase(RedisTestCase):
    """self.redis is the master, self.replica its replica, and three
    sentinels watch them."""

    def setUp(self):
        super().setUp()
        self.redis.start()
        self.replica = Redis(args=["--replicaof", "127.0.0.1",
                                   str(self.redis.port)])
        self.addCleanup(self.replica.cleanup)
        self.replica.start()
        wait_for(lambda: "master_link_status:up" in self.replica.cli(
            "INFO", "replication"), 10, "the replica in sync")
        self.sentinels = []
        for _ in range(3):
            s = Sentinel(self.redis.port)
            self.addCleanup(s.cleanup)
            self.sentinels.append(s.start())
        # A failover needs the sentinels to know the replica and each
        # other (hello messages every 2 s).
        for s in self.sentinels:
            wait_for(lambda: len(s.cli("SENTINEL", "replicas", NAME)
                                 .split("\n")) > 1
                     and s.cli("SENTINEL", "sentinels", NAME).count(
                         "127.0.0.1") == 2, 15,
                     "sentinel %d knows the replica and the others" % s.port)

    def start_node(self, **kw):
        srv = sentinel_node(["127.0.0.1:%d" % s.port
                             for s in self.sentinels], **kw)
        self.addCleanup(srv.stop)
        srv.start()
        self.nodes.append(srv)
        return srv

    def wait_master(self, port, timeout=20):
        """Until every sentinel names 127.0.0.1:PORT as the master."""
        want = "127.0.0.1\n%d" % port
        for s in self.sentinels:
            wait_for(lambda: s.cli("SENTINEL", "get-master-addr-by-name",
                                   NAME) == want, timeout,
                     "sentinel %d names port %d" % (s.port, port))


class TestThroughSentinel(SentinelTestCase):

    def test_rooms_private_presence_and_switchover(self):
        a, b = self.start_node(), self.start_node()
        master, replica = self.redis.port, self.replica.port
        for n in (a, b):
            n.wait_log("redis master of %s is 127.0.0.1:%d" % (NAME, master))
            wait_for(lambda: health(n.port)[0] == 200, 10, "engine up",
                     n.log)
            self.assertEqual(health(n.port)[1]["engine"]["address"],
                             "127.0.0.1:%d" % master)
        room = "lobby"
        chan = "wshub:room:/ws#" + room

        async def body(pa, pb):
            a1, b1 = await meet(self.redis, pa, pb, room)
            await b1.send({"type": "private_message", "to": "alice",
                           "text": "psst"})
            m = await a1.expect("private_message", text="psst")
            self.assertEqual(m["from"], "bob")

            # A switchover: the old master stays up, as a replica, and
            # keeps our connections open; +switch-master moves them.
            self.assertEqual(self.sentinels[0].cli(
                "SENTINEL", "FAILOVER", NAME), "OK")
            self.wait_master(replica)
            for n in (a, b):
                await asyncio.to_thread(
                    n.wait_log, "redis master of %s is now 127.0.0.1:%d "
                    "(was 127.0.0.1:%d)" % (NAME, replica, master), 15)
            new = Redis(port=replica)
            await wait_subscribed(new, chan, 2)
            # Both ways again, presence included, through the new master.
            a2 = await pa.open("carol")
            m = await join(a2, room)
            self.assertEqual(sorted(m["members"]),
                             ["alice", "bob", "carol"])
            for c in (a1, b1):
                await c.expect("user_joined_room", room=room,
                               userId="carol")
            await chat_once(b1, [a1, a2], room, "after the switch")
            await chat_once(a1, [b1, a2], room, "and back")
            await a1.send({"type": "private_message", "to": "bob",
                           "text": "still here"})
            await b1.expect("private_message", text="still here")
            # No connection of ours is left on the old master, which
            # still takes them until the sentinels get round to
            # demoting it.
            self.assertEqual(clients(master), [])

        self.run_pools(body)
        for n in (a, b):
            self.assertEqual(health(n.port)[1]["engine"]["address"],
                             "127.0.0.1:%d" % replica)
            self.assertNotIn("is not the master", n.log())


class Member(test_lossless.Member):
    """test_lossless's careful member, which also keeps every delivery
    of a position, when each message first came, and the answers to
    its rejoins."""

    def __init__(self, srv, name, room):
        super().__init__(srv, name, room)
        self.got = {}               # (epoch, offset) -> [n, ...]
        self.first = {}             # n -> time of its first delivery
        self.rejoins = []           # room_joined answers to since
        self.joined = asyncio.Event()

    def on_joined(self, msg):
        super().on_joined(msg)
        if self.joined.is_set():
            self.rejoins.append(msg)
        self.joined.set()

    def on_message(self, msg):
        key = (msg["epoch"], msg["offset"])
        self.got.setdefault(key, []).append(msg["n"])
        self.first.setdefault(msg["n"], time.monotonic())


def publish(srv, conn, n):
    """POST room message N with its idempotency key; (status, body)."""
    try:
        conn.request("POST", "/api/publish", json.dumps({
            "room": "log:failover", "data": {"n": n}}), {
            "Authorization": "apikey " + API_KEY,
            "Content-Type": "application/json",
            "Idempotency-Key": "p-%d" % n})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError) as e:
        conn.close()
        return None, str(e)


class TestFailover(SentinelTestCase):

    def test_master_killed_under_load(self):
        a, b = self.start_node(), self.start_node()
        master, replica = self.redis.port, self.replica.port
        room = "log:failover"
        members = [Member(a, "a0", room), Member(a, "a1", room),
                   Member(b, "b0", room), Member(b, "b1", room)]
        acked = {}                  # (epoch, offset) -> n
        sent_at = {}                # n -> when its acknowledged try left
        killed = threading.Event()
        done = threading.Event()
        stats = {"refused": 0}

        def publisher():
            # Each message retried with its key until acknowledged (503
            # while no master is up): published once.
            conn = http.client.HTTPConnection("127.0.0.1", a.port,
                                              timeout=5)
            n = 0
            deadline = time.monotonic() + 60
            while not done.is_set() and time.monotonic() < deadline:
                t0 = time.monotonic()
                status, body = publish(a, conn, n)
                if status == 202:
                    acked[(body["epoch"], body["offset"])] = n
                    sent_at[n] = t0
                    n += 1
                    time.sleep(0.02)
                    continue
                if status is not None:
                    self.assertIn(status, (503, 504), body)
                stats["refused"] += 1
                conn = http.client.HTTPConnection("127.0.0.1", a.port,
                                                  timeout=5)
                time.sleep(0.05)
            conn.close()

        async def go():
            stop = asyncio.Event()
            tasks = [asyncio.create_task(m.run(stop)) for m in members]
            # Joined: subscribed first (history rooms wait for it).
            for m in members:
                await asyncio.wait_for(m.joined.wait(), 10)
            pub = threading.Thread(target=publisher)
            pub.start()
            try:
                await asyncio.sleep(1)
                # Node b stalls through the failover (its workers
                # stopped): its members miss what is published on the
                # new master before it is back, and must be told.
                b_workers = b.workers()
                for pid in b_workers:
                    os.kill(pid, signal.SIGSTOP)
                try:
                    before = len(acked)
                    self.redis.proc.kill()
                    killed.set()
                    self.redis.proc.wait(timeout=10)
                    t_kill = time.monotonic()
                    # The first message sent once the master was gone
                    # and acknowledged (so by the new one), delivered to
                    # the members of node a. Not the first ack to arrive
                    # after the kill: that may be the old master's.
                    while True:
                        after = [n for n, t in list(sent_at.items())
                                 if t > t_kill]
                        if after and all(min(after) in m.first
                                         for m in members[:2]):
                            break
                        self.assertLess(time.monotonic() - t_kill, 20,
                                        "no delivery after the kill\n"
                                        + a.log())
                        await asyncio.sleep(0.02)
                    first = min(after)
                    self.reconnect = max(m.first[first]
                                         for m in members[:2]) - t_kill
                    await asyncio.sleep(1)
                finally:
                    for pid in b_workers:
                        os.kill(pid, signal.SIGCONT)
                self.assertGreater(before, 20)
                # On until node b caught up and 100 more went through.
                target = len(acked) + 100
                while len(acked) < target:
                    self.assertTrue(pub.is_alive(), "the publisher ended")
                    await asyncio.sleep(0.05)
            finally:
                done.set()
                await asyncio.to_thread(pub.join, 70)
            await test_lossless.until_all_got(members, acked, 10)
            stop.set()
            await asyncio.gather(*tasks)
        arun(go(), timeout=90)

        print("\nreconnected to the promoted replica %.2f s after the "
              "kill; %d messages acknowledged, %d publishes refused "
              "meanwhile; room_reset: %s" % (
                  self.reconnect, len(acked), stats["refused"],
                  {m.name: m.resets for m in members}), file=sys.stderr)
        self.assertLess(self.reconnect, 10)
        for n in (a, b):
            self.assertIn("redis master of %s is now 127.0.0.1:%d (was "
                          "127.0.0.1:%d)" % (NAME, replica, master),
                          n.log())
            self.assertEqual(health(n.port)[1]["engine"]["address"],
                             "127.0.0.1:%d" % replica)
        self.assertEqual(sorted(acked.values()), list(range(len(acked))))
        # The replica had everything the master acknowledged (loopback:
        # replication keeps up), so history goes on in the same epoch.
        self.assertEqual(len({e for e, _ in acked}), 1)
        for m in members:
            # Node b's members missed messages while it was stopped:
            # they were told, rejoined with since and recovered.
            if m.srv is b:
                self.assertGreaterEqual(m.resets, 1, m.name)
                self.assertTrue(m.rejoins, m.name)
            for r in m.rejoins:
                self.assertTrue(r["recovered"], (m.name, r))
            for key, n in acked.items():
                self.assertEqual(m.got.get(key), [n], "%s: %r (n=%d)" % (
                    m.name, key, n))
            self.assertEqual(set(m.got) - set(acked), set(), m.name)


class FakeSentinel:
    """A sentinel that names ADDRESS (host, port) for any master and
    takes the +switch-master subscription: enough for wshubd."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.asked = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    @staticmethod
    def bulk(s):
        s = s.encode()
        return b"$%d\r\n%s\r\n" % (len(s), s)

    def serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line.startswith(b"*"):
                    return
                args = []
                for _ in range(int(line[1:])):
                    n = int(f.readline()[1:])
                    args.append(f.read(n + 2)[:-2].decode())
                cmd = args[0].upper()
                if cmd == "SENTINEL":
                    self.asked += 1
                    host, port = self.address
                    c.sendall(b"*2\r\n" + self.bulk(host)
                              + self.bulk(str(port)))
                elif cmd == "SUBSCRIBE":
                    c.sendall(b"*3\r\n" + self.bulk("subscribe")
                              + self.bulk(args[1]) + b":1\r\n")
                else:
                    c.sendall(b"+OK\r\n")
        except (OSError, ValueError):
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()


class TestRole(RedisTestCase):

    def test_a_replica_named_by_the_sentinels_is_not_used(self):
        # No PING from the master on the replication stream: the
        # replica's commands are ours.
        self.redis.args = ["--repl-ping-replica-period", "3600"]
        self.redis.start()
        replica = Redis(args=["--replicaof", "127.0.0.1",
                              str(self.redis.port)])
        self.addCleanup(replica.cleanup)
        replica.start()
        cli(replica.port, "CONFIG", "RESETSTAT")
        fake = FakeSentinel(("127.0.0.1", replica.port))
        self.addCleanup(fake.close)
        srv = sentinel_node(["127.0.0.1:%d" % fake.port], workers=1)
        self.addCleanup(srv.stop)
        srv.start()
        srv.wait_log("redis master of %s is 127.0.0.1:%d" % (NAME,
                                                             replica.port))
        srv.wait_log("not the master of %s (ROLE: slave)" % NAME)
        st, doc = health(srv.port)
        self.assertEqual(doc["status"], "degraded")
        # Asked again after the back-off, refused again.
        asked = fake.asked
        wait_for(lambda: fake.asked >= asked + 2, 10, "asked again",
                 srv.log)
        self.assertEqual(health(srv.port)[1]["status"], "degraded")
        # Nothing but ROLE reached the replica (redis-cli's aside).
        self.assertEqual(set(commands(replica.port))
                         - {"info", "config|resetstat"}, {"role"},
                         commands(replica.port))

        # The sentinel names the master: the worker goes there.
        fake.address = ("127.0.0.1", self.redis.port)
        wait_for(lambda: health(srv.port)[0] == 200
                 and health(srv.port)[1]["status"] == "ok", 15,
                 "the engine up on the master", srv.log)
        srv.wait_log("redis master of %s is now 127.0.0.1:%d (was "
                     "127.0.0.1:%d)" % (NAME, self.redis.port, replica.port))


class TestConfig(RedisConfigTestCase):

    def test_sentinel_keys(self):
        self.check("    sentinel:\n      master: m\n"
                   "      addresses: [\"10.0.0.1:26379\", \"[::1]:26379\","
                   " \"s3.example:26379\"]\n      password: pw\n", None)
        self.check("    sentinel:\n      addresses: [\"h:26379\"]\n", "5:7",
                   "engine.redis.sentinel", "missing required key "
                   "\"master\"")
        self.check("    sentinel:\n      master: m\n", "5:7",
                   "missing required key \"addresses\"")
        self.check("    sentinel:\n      master: m\n      addresses:\n"
                   "        - h:26379\n        - h:263790\n", "8:11",
                   "engine.redis.sentinel.addresses[1]",
                   "invalid address \"h:263790\"")
        self.check("    sentinel:\n      master: m\n      addresses: [h]\n",
                   "6:19", "addresses[0]", "HOST:PORT")
        self.check("    port: 6380\n    sentinel:\n      master: m\n"
                   "      addresses: [\"h:1\"]\n", "4:11",
                   "engine.redis.port", "not used with sentinel")
        self.check("    unix_socket: /run/redis.sock\n    sentinel:\n"
                   "      master: m\n      addresses: [\"h:1\"]\n", "4:18",
                   "engine.redis.unix_socket", "not used with sentinel")


def main():
    """Run the tests, or skip (77) without redis-server or
    redis-sentinel."""
    if not os.access(REDIS_SENTINEL, os.X_OK):
        print("SKIP: redis-sentinel is not installed "
              "(packaging/install-deps.sh --test)")
        sys.exit(77)
    from test_redis import main as redis_main
    redis_main()


if __name__ == "__main__":
    main()
