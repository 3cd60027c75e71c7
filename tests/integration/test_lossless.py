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
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import Server, arun, connect, main, wait_for  # noqa: E402

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


async def recv(ws, timeout=10):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws, type_, timeout=10):
    while True:
        msg = await recv(ws, timeout)
        if msg["type"] == type_:
            return msg


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
                        await recv(ws, 20)
                await asyncio.sleep(0.5)
            finally:
                srv.signal(signal.SIGCONT)
        arun(go(), timeout=90)
        return pid

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
                msg = await recv(ws, 20)
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
            wait_for(lambda: pid not in srv.workers()
                     and len(srv.workers()) == 1, 20, "the worker respawned",
                     srv.log)
            self.assert_all_numbered(srv, "log:a", 800)
            srv.wait_log("handed the master its last")
            self.assertNotIn("unsent", srv.log())

    def test_b_master_reads_a_dead_workers_channel_to_eof(self):
        with server() as srv:
            pid = self.publish_while_master_stopped(srv, "log:b", 80, 200)
            wait_for(lambda: pid not in srv.workers()
                     and len(srv.workers()) == 1, 20, "the worker respawned",
                     srv.log)
            self.assert_all_numbered(srv, "log:b", 80)
            self.assertNotIn("incomplete frame", srv.log())


if __name__ == "__main__":
    main()
