#!/usr/bin/python3
"""test_bench_other.py -- wshub-bench against a server that is not wshub.

The load generator must work with any WebSocket server through its
templates: here a small independent server written with
python3-websockets (echo on /echo, and a plain pub/sub relay that sends
every message to every other client on /relay, with no rooms and no
JSON). A functional test: figures are checked for sanity, never speed.
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402

BENCH = os.environ.get("WSHUB_BENCH") or os.path.join(
    os.path.dirname(os.path.abspath(wshub_harness.WSHUBD)), "wshub-bench")


class OtherServer:
    """python3-websockets in a thread: /echo and /relay."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.relay = set()

    async def handler(self, ws, path):
        if path == "/echo":
            async for msg in ws:
                await ws.send(msg)
            return
        self.relay.add(ws)
        try:
            async for msg in ws:
                for other in list(self.relay):
                    if other is not ws:
                        try:
                            await other.send(msg)
                        except Exception:
                            pass
        finally:
            self.relay.discard(ws)

    def run(self):
        import websockets
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server = await websockets.serve(
                self.handler, "127.0.0.1", 0, compression=None,
                max_size=None)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            self.stopped = asyncio.Event()
            await self.stopped.wait()
            self.server.close()
            await self.server.wait_closed()

        self.loop.run_until_complete(main())

    def __enter__(self):
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)


def bench(*args):
    p = subprocess.run([BENCH] + list(args) + ["--json", "-q"],
                       capture_output=True, text=True, timeout=120)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stderr


@unittest.skipUnless(os.access(BENCH, os.X_OK), "no wshub-bench")
class OtherServerTest(unittest.TestCase):

    def test_echo_and_fanout_via_templates(self):
        with OtherServer() as other:
            base = "ws://127.0.0.1:%d" % other.port
            rc, out, err = bench("echo", "-c", "4", "-n", "200",
                                 base + "/echo")
            self.assertEqual(rc, 0, err)
            self.assertEqual(out["msgs"], 200, out)
            self.assertGreater(out["rtt_us"]["p50"], 0, out)
            # No rooms, no JSON: subscribe by connecting, publish the
            # bare payload.
            rc, out, err = bench(
                "fanout", "-c", "5", "-p", "1", "-n", "50",
                "--subscribe-template", "", "--settle", "1",
                "--publish-template", "{payload}", base + "/relay")
            self.assertEqual(rc, 0, err + str(out))
            self.assertEqual(out["delivered"], 250, out)


if __name__ == "__main__":
    wshub_harness.main()
