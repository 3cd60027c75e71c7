#!/usr/bin/python3
"""test_lossless.py -- an acknowledged message is never lost when a
process ends.

Deterministic reproductions of wshub issue 18, causes A and B: the
master is stopped (SIGSTOP) while a worker acknowledges publishes and
then exits; when the master continues, every acknowledged message must
be numbered and delivered.

- A: the worker exited with its channel output unsent (800 x 1 KB is
  more than the socketpair holds while the master does not read).
- B: the master freed a dead worker's channel after reading only what
  libevent read in one callback, discarding the rest (80 messages of
  ~300 bytes fit in the socket, so the worker exits at once; before the
  fix 13 were numbered).

Real wshubd, local engine; python3-websockets clients.
"""

import asyncio
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import (Server, arun, connect, main, recv_json,  # noqa: E402
                            recv_type, wait_for)

HISTORY_YAML = """hub:
  history:
    - rooms: "log:*"
      size: 2000
      ttl: 10m
"""


def server(workers=1, **kw):
    kw.setdefault("shutdown_spread", "100ms")
    kw.setdefault("shutdown_timeout", "20s")
    return Server(workers=workers, raw_yaml=HISTORY_YAML,
                  endpoints=[{"path": "/ws", "module": "hub"}], **kw)


class FlushOnExitTest(unittest.TestCase):

    def publish_while_master_stopped(self, srv, room, count, size):
        """COUNT room messages of SIZE bytes, acknowledged by a pong
        that follows them, sent to the only worker while the master is
        stopped; then the worker is told to quit (SIGQUIT) and exits,
        and the master continues. Returns the worker's pid."""
        pid = srv.workers()[0]

        async def go():
            ws = await connect(srv.url("/ws?id=pub"), max_size=None)
            await recv_type(ws, "welcome")
            await ws.send(json.dumps({"type": "join_room", "room": room}))
            await recv_type(ws, "room_joined")
            srv.signal(signal.SIGSTOP)
            try:
                pad = "x" * size
                for n in range(count):
                    await ws.send(json.dumps({
                        "type": "room_message", "room": room, "n": n,
                        "pad": pad}))
                await ws.send(json.dumps({"type": "ping"}))
                await recv_type(ws, "pong", timeout=20)
                # Acknowledged. Now the worker drains and exits while
                # the master still reads nothing.
                os.kill(pid, signal.SIGQUIT)
                await recv_type(ws, "server_shutdown", timeout=20)
                with self.assertRaises(Exception):
                    while True:
                        await recv_json(ws, 20)
                await asyncio.sleep(0.5)
            finally:
                srv.signal(signal.SIGCONT)
        arun(go(), timeout=90)
        return pid

    @staticmethod
    def wait_respawned(srv, pid):
        wait_for(lambda: pid not in srv.workers()
                 and len(srv.workers()) == 1, 20, "the worker respawned",
                 srv.log)

    def assert_all_numbered(self, srv, room, count):
        """A new client joining with since 0 gets all COUNT messages,
        offsets 1..COUNT, each n once."""
        async def go():
            ws = await connect(srv.url("/ws?id=reader"), max_size=None)
            await recv_type(ws, "welcome")
            await ws.send(json.dumps({"type": "join_room", "room": room,
                                      "since": {"offset": 0}}))
            joined = await recv_type(ws, "room_joined", timeout=20)
            self.assertEqual(joined["offset"], count)
            got = []
            while len(got) < count:
                msg = await recv_json(ws, 20)
                if msg["type"] == "room_message":
                    got.append(msg)
            self.assertEqual([m["offset"] for m in got],
                             list(range(1, count + 1)))
            self.assertEqual([m["n"] for m in got], list(range(count)))
            await ws.close()
        arun(go(), timeout=60)

    def test_a_worker_flushes_its_channel_before_exiting(self):
        with server() as srv:
            pid = self.publish_while_master_stopped(srv, "log:a", 800, 1024)
            self.wait_respawned(srv, pid)
            self.assert_all_numbered(srv, "log:a", 800)
            srv.wait_log("handed the master its last")
            self.assertNotIn("unsent", srv.log())

    def test_b_master_reads_a_dead_workers_channel_to_eof(self):
        with server() as srv:
            pid = self.publish_while_master_stopped(srv, "log:b", 80, 200)
            self.wait_respawned(srv, pid)
            self.assert_all_numbered(srv, "log:b", 80)
            self.assertNotIn("incomplete frame", srv.log())


class Member:
    """A history-room member as a careful client is: it keeps its
    position, rejoins with since when told of a gap (room_reset), drops
    duplicates by offset, and records what it got."""

    def __init__(self, srv, name, room):
        self.srv, self.name, self.room = srv, name, room
        self.got = {}               # (epoch, offset) -> n
        self.abandoned = set()      # epochs it was told are gone
        self.resets = 0
        self.epoch = None

    def on_joined(self, msg):
        self.epoch = msg.get("epoch", self.epoch)

    def on_message(self, msg):
        self.got[(msg["epoch"], msg["offset"])] = msg["n"]

    async def run(self, stop):
        ws = await connect(self.srv.url("/ws?id=" + self.name))
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"type": "join_room", "room": self.room}))
        quiet = False           # a second without messages after STOP
        while not quiet:
            try:
                msg = await recv_json(ws, 1)
            except asyncio.TimeoutError:
                quiet = stop.is_set()
                continue
            if msg["type"] == "room_joined":
                self.on_joined(msg)
            elif msg["type"] == "room_message":
                self.epoch = msg["epoch"]
                self.on_message(msg)
            elif msg["type"] == "room_reset":
                self.resets += 1
                since = msg["since"]
                if since["epoch"] != self.epoch:
                    self.abandoned.add(self.epoch)
                await ws.send(json.dumps({"type": "join_room",
                                          "room": self.room,
                                          "since": since}))
        await ws.close()


async def until_all_got(members, acked, timeout):
    """Until every one of MEMBERS got the last of ACKED ((epoch, offset)
    -> n), at most TIMEOUT seconds."""
    last = max(acked, key=lambda k: acked[k])
    deadline = time.monotonic() + timeout
    while (not all(last in m.got for m in members)
           and time.monotonic() < deadline):
        await asyncio.sleep(0.1)


class RedisRestartTest(unittest.TestCase):
    """redis-server is killed mid-stream and started again empty (a new
    epoch): every acknowledged message reaches every member of the
    room, or the member is told of the gap (room_reset) and recovers
    what the new history holds."""

    def test_members_are_told_of_every_gap(self):
        from test_redis import Redis
        from test_ack import publish
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        nodes = []
        for _ in range(2):
            srv = Server(workers=2, reuseport=True,
                         endpoints=[{"path": "/ws", "module": "hub"},
                                    {"path": "/api/publish",
                                     "module": "hub_api"}],
                         raw_yaml=HISTORY_YAML.replace(
                             "size: 2000", "size: 10000")
                         + "  api_key: 0123456789abcdef0123\n"
                         "engine:\n  type: redis\n  redis:\n    port: %d\n"
                         % redis.port)
            self.addCleanup(srv.stop)
            nodes.append(srv.start())
        room = "log:restart"
        members = [Member(nodes[i % 2], "m%d" % i, room) for i in range(6)]
        acked = {}                  # (epoch, offset) -> n

        def publish_one(n):
            # Retried with its key until acknowledged (503 while Redis
            # is down): published once.
            while True:
                status, body = publish(nodes[n % 2], {
                    "room": room, "data": {"n": n}}, key="p-%d" % n)
                if status == 202:
                    acked[(body["epoch"], body["offset"])] = n
                    return
                self.assertEqual(status, 503, body)
                time.sleep(0.05)

        async def go():
            stop = asyncio.Event()
            tasks = [asyncio.create_task(m.run(stop)) for m in members]
            await asyncio.sleep(1)
            loop = asyncio.get_running_loop()
            for n in range(600):
                await loop.run_in_executor(None, publish_one, n)
                if n == 200:
                    redis.stop()
                    # Acknowledged meanwhile: nothing (503, retried).
                    await loop.run_in_executor(None, time.sleep, 1)
                    redis.start()
            # Every worker reconnects in its own back-off time: until
            # then its members hear nothing, and then they are told.
            await until_all_got(members, acked, 30)
            stop.set()
            await asyncio.gather(*tasks)
        arun(go(), timeout=180)

        epochs = {e for e, _ in acked}
        self.assertEqual(len(epochs), 2, "Redis restarted empty: 2 epochs")
        self.assertEqual(sorted(acked.values()), list(range(600)))
        last = max(epochs, key=lambda e: max(o for ee, o in acked
                                               if ee == e))
        for m in members:
            for key, n in acked.items():
                self.assertTrue(key in m.got or key[0] in m.abandoned,
                                "%s neither got %r (n=%d) nor was told "
                                "(resets: %d)" % (m.name, key, n, m.resets))
                if key[0] == last:
                    self.assertEqual(m.got.get(key), n, m.name)
            self.assertGreaterEqual(m.resets, 1, m.name)


class RelayOverloadTest(unittest.TestCase):
    """A worker that does not read its channel (stopped) while 80 MB of
    messages are published to its room: past 64 MB the master drops what
    it owes it. When the worker reads again, its members are told
    (room_reset), rejoin with since and get every message."""

    def test_dropped_messages_are_not_silent(self):
        import http.client
        # send_buffer: the member takes 1 MB messages by the dozen once
        # its worker reads again; that is not what is tested here.
        srv = Server(workers=2, reuseport=True, shutdown_timeout="20s",
                     send_buffer="256m", max_message_size="2m",
                     pong_wait="5m",
                     endpoints=[{"path": "/ws", "module": "hub"},
                                {"path": "/api/publish",
                                 "module": "hub_api"},
                                {"path": "/metrics", "module": "metrics"}],
                     raw_yaml=HISTORY_YAML
                     + "  api_key: 0123456789abcdef0123\n"
                     + "  api_max_body: 2m\n")
        self.addCleanup(srv.stop)
        srv.start()
        room, count = "log:overload", 80
        pad = "y" * (1 << 20)

        async def on_stopped_worker(pid):
            """A member whose worker is PID: found by stopping PID and
            seeing which members stop answering."""
            for n in range(40):
                ws = await connect(srv.url("/ws?id=m%d" % n))
                await recv_type(ws, "welcome")
                os.kill(pid, signal.SIGSTOP)
                try:
                    await ws.send(json.dumps({"type": "ping"}))
                    await recv_type(ws, "pong", timeout=0.3)
                    await ws.close()
                except asyncio.TimeoutError:
                    return ws
                finally:
                    os.kill(pid, signal.SIGCONT)
            self.fail("no connection reached worker %d" % pid)

        def publish_all():
            # With the other worker stopped, a connection may reach it and
            # hang: the request is sent again with the same key on a new
            # one; the one that answers is kept (keep-alive).
            conn = None
            for n in range(count):
                body = json.dumps({"room": room, "data": {"n": n,
                                                          "pad": pad}})
                while True:
                    if conn is None:
                        conn = http.client.HTTPConnection(
                            "127.0.0.1", srv.port, timeout=1)
                    try:
                        conn.request("POST", "/api/publish", body, {
                            "Authorization": "apikey 0123456789abcdef0123",
                            "Idempotency-Key": "o-%d" % n})
                        r = conn.getresponse()
                        self.assertEqual(r.status, 202, r.read())
                        break
                    except OSError:
                        conn.close()
                        conn = None
            conn.close()

        async def go():
            pid = srv.workers()[0]
            m = await on_stopped_worker(pid)
            await m.send(json.dumps({"type": "join_room", "room": room}))
            await recv_type(m, "room_joined")
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, publish_all)
                srv.wait_log("dropping its messages", timeout=30)
            finally:
                os.kill(pid, signal.SIGCONT)
            got, resets = {}, 0
            while len(got) < count:
                msg = await recv_json(m, 30)
                if msg["type"] == "room_message":
                    got[msg["offset"]] = msg["n"]
                elif msg["type"] == "room_reset":
                    resets += 1
                    await m.send(json.dumps({"type": "join_room",
                                             "room": room,
                                             "since": msg["since"]}))
            self.assertGreaterEqual(resets, 1)
            self.assertEqual(sorted(got), list(range(1, count + 1)))
            self.assertEqual([got[o] for o in sorted(got)],
                             list(range(count)))
            srv.wait_log("told of the messages it missed")
            # Counted too (issue 21, item 4): every dropped delivery.
            def scrape():
                conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                                  timeout=5)
                conn.request("GET", "/metrics")
                return conn.getresponse().read().decode()
            metrics = await asyncio.to_thread(scrape)
            dropped = [line for line in metrics.splitlines()
                       if line.startswith('wshub_relay_dropped_total{'
                                          'kind="message"}')]
            self.assertEqual(len(dropped), 1, metrics)
            self.assertGreaterEqual(float(dropped[0].split()[-1]), 1)
            await m.close()
        arun(go(), timeout=120)


if __name__ == "__main__":
    main()
