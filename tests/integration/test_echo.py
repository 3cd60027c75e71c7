"""test_echo.py -- the echo endpoint with an independent client library.

python3-websockets (Debian's) is a strict, widely used client: if it can
talk to /echo, browsers can. Messages of every kind and size come back
byte for byte, on connections spread over two workers.
"""

import asyncio
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import RawWS, Server, frame  # noqa: E402

import websockets  # noqa: E402


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


class EchoTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(workers=2).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def connect(self, **kw):
        return websockets.connect(self.srv.url(), max_size=None,
                                  compression=None, **kw)

    def test_text_and_binary(self):
        async def go():
            async with self.connect() as ws:
                for msg in ["hello", "", "h\u00e9llo w\u00f6rld \u2603 \U0001f600",
                            b"", b"\x00\x01\xfe\xff", bytes(range(256))]:
                    await ws.send(msg)
                    got = await ws.recv()
                    self.assertEqual(got, msg)
                    self.assertEqual(type(got), type(msg))
        run(go())

    def test_fragmented(self):
        async def go():
            async with self.connect() as ws:
                await ws.send(["frag", "mented ", "t\u00e9xt"])
                self.assertEqual(await ws.recv(), "fragmented t\u00e9xt")
                await ws.send([b"\x01", b"", b"\x02\x03"])
                self.assertEqual(await ws.recv(), b"\x01\x02\x03")
        run(go())

    def test_large_messages(self):
        async def go():
            async with self.connect() as ws:
                for size in (125, 126, 65535, 65536, 1 << 20):
                    data = os.urandom(size)
                    await ws.send(data)
                    self.assertEqual(await ws.recv(), data)
                text = "x\u00e9" * (1 << 19)
                await ws.send(text)
                self.assertEqual(await ws.recv(), text)
        run(go())

    def test_ping_pong(self):
        async def go():
            async with self.connect() as ws:
                waiter = await ws.ping(b"are you there")
                await asyncio.wait_for(waiter, 5)
        run(go())

    def test_many_clients_many_messages(self):
        async def client(i):
            async with self.connect() as ws:
                for j in range(20):
                    msg = "client %d message %d" % (i, j)
                    await ws.send(msg)
                    self.assertEqual(await ws.recv(), msg)

        async def go():
            await asyncio.gather(*(client(i) for i in range(50)))
        run(go())
        # Both workers took connections (the kernel spreads accepts).
        log = self.srv.access_log()
        self.assertIn("worker=0", log)

    def test_pipelined_frames_in_one_write(self):
        ws = RawWS(self.srv.port)
        try:
            ws.send(b"".join(frame(1, b"m%d" % i) for i in range(100)))
            for i in range(100):
                self.assertEqual(ws.recv_message(), (1, b"m%d" % i))
            ws.send(frame(8, b"\x03\xe8"))
            self.assertEqual(ws.expect_close(), 1000)
        finally:
            ws.close()

    def test_clean_close_is_logged(self):
        async def go():
            async with self.connect() as ws:
                await ws.send("bye")
                await ws.recv()
        run(go())
        self.srv.wait_log('"GET /echo" 101', access=True)
        self.srv.wait_log("close=1000", access=True)


if __name__ == "__main__":
    wshub_harness.main()
