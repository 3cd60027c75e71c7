"""test_valgrind.py -- no definite leak and no memory error under valgrind.

A short foreground session against one worker run by valgrind: echo of
every message kind, a protocol error, an abandoned fragmented message, an
abrupt disconnect, then a graceful stop. valgrind follows the fork, so
master and worker are both checked.
"""

import asyncio
import glob
import os
import re
import shutil
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import RawWS, Server, frame  # noqa: E402

import websockets  # noqa: E402


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
@unittest.skipIf(os.environ.get("WSHUB_SANITIZERS") == "yes",
                 "a sanitizer build cannot run under valgrind")
class ValgrindTest(unittest.TestCase):

    def test_echo_session_has_no_definite_leak(self):
        srv = Server(workers=1, ping_period="1s", pong_wait="2s")
        logs = os.path.join(srv.dir, "vg.%p.log")
        srv.wrapper = ["valgrind", "--leak-check=full",
                       "--show-leak-kinds=definite",
                       "--errors-for-leak-kinds=definite",
                       "--log-file=" + logs]
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
            self.assertEqual(srv.wait_exit(timeout=60), 0)
            reports = [open(f).read() for f in glob.glob(
                os.path.join(srv.dir, "vg.*.log"))]
        self.assertGreaterEqual(len(reports), 2, "master and worker")
        for text in reports:
            self.assertRegex(text, r"ERROR SUMMARY: 0 errors", text)
            m = re.search(r"definitely lost: ([\d,]+) bytes", text)
            if m:
                self.assertEqual(m.group(1), "0", text)


if __name__ == "__main__":
    wshub_harness.main()
