"""test_ratelimit.py -- rate_limit: a flooding client is stopped alone.

A token bucket per connection (rate_limit.rps, .burst) counts messages
and pings. Over it a client is closed with 1008 (action: close) or its
messages are dropped (action: drop); a neighbour on the same worker is
served all along. No timing is asserted: only counts and codes.
"""

import asyncio
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import RawWS, Server, arun, connect, frame  # noqa: E402


class RateLimitTest(unittest.TestCase):

    def flood(self, srv, n=500):
        ws = RawWS(srv.port)
        self.addCleanup(ws.close)
        ws.send(b"".join(frame(1, b"f%d" % i) for i in range(n)))
        return ws

    def test_flooder_closed_with_1008_neighbour_served(self):
        with Server(workers=1, raw_yaml="rate_limit:\n  rps: 20\n"
                                        "  burst: 40\n") as srv:
            async def neighbour():
                async with connect(srv.url()) as ws:
                    for i in range(30):
                        await ws.send("n%d" % i)
                        self.assertEqual(await asyncio.wait_for(
                            ws.recv(), 5), "n%d" % i)
                        await asyncio.sleep(0.06)   # under 20/s
            task = None

            async def go():
                nonlocal task
                task = asyncio.ensure_future(neighbour())
                await asyncio.sleep(0.1)
                flooder = await asyncio.to_thread(self.flood, srv)
                echoed = 0

                def drain():
                    nonlocal echoed
                    flooder.sock.settimeout(10)
                    while True:
                        fin, op, data = flooder.recv_frame()
                        if op == 8:
                            return int.from_bytes(data[:2], "big")
                        echoed += 1
                code = await asyncio.to_thread(drain)
                await task
                return code, echoed
            code, echoed = arun(go(), 60)
        self.assertEqual(code, 1008)
        self.assertLessEqual(echoed, 60)    # the burst, plus refills
        self.assertGreaterEqual(echoed, 40)

    def test_drop_keeps_the_connection(self):
        with Server(workers=1, raw_yaml="rate_limit:\n  rps: 20\n"
                                        "  burst: 40\n  action: drop\n") \
                as srv:
            ws = self.flood(srv)
            ws.sock.settimeout(1)
            echoed = 0
            try:
                while True:
                    fin, op, data = ws.recv_frame()
                    self.assertNotEqual(op, 8)
                    echoed += 1
            except OSError:
                pass            # quiet: everything over the bucket dropped
            self.assertGreaterEqual(echoed, 40)
            self.assertLess(echoed, 500)
            time.sleep(0.2)     # tokens come back
            ws.send(frame(1, b"again"))
            ws.sock.settimeout(5)
            self.assertEqual(ws.recv_message(), (1, b"again"))
            srv.wait_log("over rate_limit")


if __name__ == "__main__":
    wshub_harness.main()
