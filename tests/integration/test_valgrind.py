"""test_valgrind.py -- no definite leak and no memory error under valgrind.

A short foreground session against one worker run by valgrind: echo of
every message kind, a protocol error, an abandoned fragmented message, an
abrupt disconnect, then a graceful stop. valgrind follows the fork, so
master and worker are both checked.
"""

import asyncio
import glob
import json
import os
import re
import shutil
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import RawWS, Server, frame, http  # noqa: E402

import websockets  # noqa: E402


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
@unittest.skipIf(os.environ.get("WSHUB_SANITIZERS") == "yes",
                 "a sanitizer build cannot run under valgrind")
class ValgrindTest(unittest.TestCase):

    def valgrind_server(self, **kw):
        srv = Server(**kw)
        logs = os.path.join(srv.dir, "vg.%p.log")
        srv.wrapper = ["valgrind", "--leak-check=full",
                       "--show-leak-kinds=definite",
                       "--errors-for-leak-kinds=definite",
                       "--log-file=" + logs]
        return srv

    def check_reports(self, reports, processes):
        self.assertGreaterEqual(len(reports), processes)
        for text in reports:
            self.assertRegex(text, r"ERROR SUMMARY: 0 errors", text)
            m = re.search(r"definitely lost: ([\d,]+) bytes", text)
            if m:
                self.assertEqual(m.group(1), "0", text)

    def finish(self, srv, processes):
        """After the stop signal: SRV exits with status 0 and each of at
        least PROCESSES valgrind logs is clean. Call inside `with srv`,
        whose exit removes the logs. Other test classes call it unbound
        with their own self, so check_reports is named through the class."""
        self.assertEqual(srv.wait_exit(timeout=60), 0)
        reports = []
        for name in glob.glob(os.path.join(srv.dir, "vg.*.log")):
            with open(name) as f:
                reports.append(f.read())
        ValgrindTest.check_reports(self, reports, processes)

    def test_hub_session_has_no_definite_leak(self):
        """Rooms, presence, private messages, the publish API and a
        dropped member through the master's relay, on two workers; a
        room past its presence_limit, room_members pages and room_count,
        the presence API, and a member that closes with a page on its
        way."""
        srv = self.valgrind_server(
            workers=2, raw_yaml="hub:\n  api_key: 0123456789abcdef\n"
            "  rooms:\n    - match: r\n      presence_limit: 1\n",
            endpoints=[{"path": "/ws", "module": "hub"},
                       {"path": "/api/publish", "module": "hub_api"},
                       {"path": "/api/presence", "module": "hub_presence"}])
        with srv:
            async def session():
                a = await websockets.connect(srv.url("/ws?id=a"))
                b = await websockets.connect(srv.url("/ws?id=b"))
                for ws in (a, b):
                    await ws.recv()                         # welcome
                    await ws.send(json.dumps({"type": "join_room",
                                              "room": "r"}))
                await a.send(json.dumps({"type": "room_message",
                                         "room": "r", "x": 1}))
                await b.send(json.dumps({"type": "private_message",
                                         "to": "a", "y": 2}))
                await b.send(json.dumps({"type": "private_message",
                                         "to": "nobody"}))
                await b.send("not json")
                for req in ({"type": "room_members", "room": "r",
                             "limit": 1},
                            {"type": "room_members", "room": "r",
                             "cursor": "1"},
                            {"type": "room_count", "room": "r"},
                            {"type": "room_members", "room": "r",
                             "cursor": "x"},
                            {"type": "room_count", "room": "nope"}):
                    await b.send(json.dumps(req))
                await b.send(json.dumps({"type": "leave_room",
                                         "room": "r"}))
                await asyncio.sleep(1)
                body = b'{"room":"r","limit":1}'
                st, _, _ = await asyncio.to_thread(http, srv.port, (
                    b'POST /api/presence HTTP/1.1\r\nHost: x\r\n'
                    b'Authorization: apikey 0123456789abcdef\r\n'
                    b'Content-Length: %d\r\n\r\n%s' % (len(body), body)))
                self.assertEqual(st, 200)
                c = await websockets.connect(srv.url("/ws?id=c"))
                await c.recv()                              # welcome
                await c.send(json.dumps({"type": "join_room", "room": "r"}))
                await c.recv()                              # room_joined
                await c.send(json.dumps({"type": "room_members",
                                         "room": "r"}))
                await c.close()                     # its page on the way
                body = b'{"room":"r","data":{"z":3}}'
                st, _, _ = await asyncio.to_thread(http, srv.port, (
                    b'POST /api/publish HTTP/1.1\r\nHost: x\r\n'
                    b'Authorization: apikey 0123456789abcdef\r\n'
                    b'Content-Length: %d\r\n\r\n%s' % (len(body), body)))
                self.assertEqual(st, 202)
                await b.close()
                await asyncio.sleep(1)
                await a.close()
            asyncio.run(asyncio.wait_for(session(), 120))
            srv.signal(signal.SIGQUIT)
            self.finish(srv, 3)

    def test_acks_and_keys_have_no_definite_leak(self):
        """What waits for the sequencer: messages with ids in a room with
        history and a plain one, a member that closes with acks pending,
        and API publishes with idempotency keys (a retry included),
        answered after the http hook returned. (room_reset and the
        master's GAP run under ASan in test_lossless.py.)"""
        key = "0123456789abcdef"
        srv = self.valgrind_server(
            workers=2, raw_yaml="hub:\n  api_key: %s\n  history:\n"
            "    - rooms: \"log:*\"\n      size: 5\n" % key,
            endpoints=[{"path": "/ws", "module": "hub"},
                       {"path": "/api/publish", "module": "hub_api"}])
        with srv:
            async def session():
                a = await websockets.connect(srv.url("/ws?id=a"))
                await a.recv()                              # welcome
                for room in ("log:v", "plain"):
                    await a.send(json.dumps({"type": "join_room",
                                             "room": room}))
                for n in range(8):
                    await a.send(json.dumps({
                        "type": "room_message", "id": n,
                        "room": "log:v" if n % 2 else "plain"}))
                acks = 0
                while acks < 8:
                    acks += json.loads(await a.recv())["type"] == "ack"
                # Closing with acks still pending.
                for n in range(20):
                    await a.send(json.dumps({"type": "room_message",
                                             "room": "log:v", "id": n}))
                await a.close()
                body = b'{"room":"log:v","data":{"z":3}}'
                for k in (b"k1", b"k1", b"k2"):
                    st, _, _ = await asyncio.to_thread(http, srv.port, (
                        b'POST /api/publish HTTP/1.1\r\nHost: x\r\n'
                        b'Authorization: apikey %s\r\n'
                        b'Idempotency-Key: %s\r\n'
                        b'Content-Length: %d\r\n\r\n%s' % (
                            key.encode(), k, len(body), body)))
                    self.assertEqual(st, 202)
            asyncio.run(asyncio.wait_for(session(), 120))
            srv.signal(signal.SIGQUIT)
            self.finish(srv, 3)

    def test_echo_session_has_no_definite_leak(self):
        srv = self.valgrind_server(workers=1, ping_period="1s",
                                   pong_wait="2s")
        with srv:
            async def session():
                async with websockets.connect(srv.url(), max_size=None,
                                              compression=None) as ws:
                    for msg in ("text", b"\x00bin", ["fr", "ag"],
                                os.urandom(300000)):
                        await ws.send(msg)
                        await ws.recv()
                    await asyncio.sleep(1.5)    # one keepalive ping
            asyncio.run(asyncio.wait_for(session(), 120))
            bad = RawWS(srv.port)
            bad.send(frame(1, b"\xff"))
            bad.expect_close(1007, timeout=30)
            partial = RawWS(srv.port)
            partial.send(frame(1, b"abc" * 1000, fin=False))
            partial.close()
            idle = RawWS(srv.port)
            srv.signal(signal.SIGQUIT)
            idle.expect_close(1001, timeout=30)
            self.finish(srv, 2)


if __name__ == "__main__":
    wshub_harness.main()
