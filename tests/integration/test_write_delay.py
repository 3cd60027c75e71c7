#!/usr/bin/python3
"""test_write_delay.py -- write_delay holds messages delivered through the
engine for up to that long, and a reply to the client's own request
takes them along at once, in order.

Only lower bounds on time are asserted (a message must NOT arrive
early), never how fast something happens: a slow machine only delays.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import WSHUBD  # noqa: E402
from test_hub import all_quiet, hub_server, join, run  # noqa: E402


class TestWriteDelay(unittest.TestCase):

    def test_delayed_then_flushed_by_a_reply(self):
        with hub_server(workers=1, write_delay="1s") as srv:
            async def body(pool):
                sub = await pool.open("sub")
                await join(sub, "r", ["sub"])
                pub = await pool.open("pub")
                await join(pub, "r", ["sub", "pub"])
                # sub's user_joined_room notice comes within write_delay.
                m = await sub.recv(10)
                self.assertEqual(m.get("type"), "user_joined_room", m)
                self.assertEqual(await all_quiet([sub, pub], 0.3), {})

                await pub.send({"type": "room_message", "room": "r",
                                "n": 1})
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(sub.ws.recv(), 0.3)
                # A request of its own: the reply takes the delayed
                # message along, queued before it.
                await sub.send({"type": "ping"})
                m = await sub.recv(10)
                self.assertEqual((m.get("type"), m.get("n")),
                                 ("room_message", 1), m)
                self.assertEqual(await sub.recv(10), {"type": "pong"})

                # Left alone, a delayed message still comes.
                await pub.send({"type": "room_message", "room": "r",
                                "n": 2})
                m = await sub.recv(10)
                self.assertEqual((m.get("type"), m.get("n")),
                                 ("room_message", 2), m)
            run(srv, body, 60)

    def test_bad_values_refused(self):
        for value, words in (("2s", "at most 1s"), ("soon", "invalid")):
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                f.write("worker_processes: 1\nwrite_delay: %s\n" % value)
                f.flush()
                r = subprocess.run([WSHUBD, "-t", "-c", f.name], text=True,
                                   capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("write_delay", r.stderr)
            self.assertIn(words, r.stderr)


if __name__ == "__main__":
    wshub_harness.main()
