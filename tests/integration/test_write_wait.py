#!/usr/bin/python3
"""test_write_wait.py -- a client that stops reading is closed after
write_wait, and the others are served; a client that only reads more
slowly than it sends is held back by TCP (the server stops reading it
while its answers wait), not closed.

Connections whose output the kernel refuses wait on one list, ordered
by their last progress, driven by one timer (src/net/io.c); this checks
that it fires for one connection among several.
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import RawWS, Server, echo, frame  # noqa: E402


class TestWriteWait(unittest.TestCase):

    def test_reader_that_stops_is_closed_after_write_wait(self):
        # send_buffer far above what is sent: only write_wait can act.
        with Server(workers=1, send_buffer="64m", write_wait="1s") as srv:
            idle = RawWS(srv.port)      # shares the timeout, must stay
            stuck = RawWS(srv.port)
            try:
                stuck.sock.settimeout(5)
                msg = frame(2, os.urandom(65536))
                for _ in range(400):    # 25 MiB of echoes it never reads
                    try:
                        stuck.send(msg)
                    except OSError:     # closed, or the server stopped
                        break           # reading: enough is queued
                srv.wait_log("write_wait expired", timeout=10)
                idle.send(frame(1, b"still here"))
                self.assertEqual(idle.recv_message(), (1, b"still here"))
            finally:
                stuck.close()
                idle.close()
            self.assertEqual(echo(srv.url(), "after"), "after")


class TestBackpressure(unittest.TestCase):

    def test_fast_sender_slow_reader_gets_every_echo(self):
        # 4 MiB of echoes against a 64k send_buffer: without backpressure
        # the server would have to queue them and close the client with
        # 1008 (slow consumer).
        n, size = 512, 8192
        with Server(workers=1, send_buffer="64k", write_wait="20s") as srv:
            ws = RawWS(srv.port)
            try:
                ws.sock.settimeout(30)
                msgs = [bytes([i % 251]) * size for i in range(n)]
                sender = threading.Thread(
                    target=lambda: ws.send(b"".join(frame(2, m)
                                                    for m in msgs)))
                sender.start()
                time.sleep(1)           # not reading yet
                for i, m in enumerate(msgs):
                    op, data = ws.recv_message()
                    self.assertEqual((op, len(data), data[:1]),
                                     (2, size, m[:1]), "echo %d" % i)
                sender.join(30)
                self.assertFalse(sender.is_alive())
            finally:
                ws.close()
            self.assertNotIn("slow client", srv.log())


if __name__ == "__main__":
    wshub_harness.main()
