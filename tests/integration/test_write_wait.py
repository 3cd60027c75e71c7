#!/usr/bin/python3
"""test_write_wait.py -- a client that stops reading is closed after
write_wait, and the others are served; a client that only reads more
slowly than it sends is held back by TCP (the server stops reading it
while its answers wait), not closed.

Connections whose output the kernel refuses wait on one list, ordered
by their last progress, driven by one timer (src/net/io.c); this checks
that it fires for one connection among several.
"""

import contextlib
import os
import socket
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


class Flooder:
    """A client that sends BURST over and over (at most BURSTS times, for
    at most SECONDS) and reads and drops whatever comes back, until
    stop()."""

    def __init__(self, port, path, burst, bursts=200000, seconds=30,
                 first=b""):
        self.ws = RawWS(port, path)
        self.ws.sock.settimeout(seconds)
        if first:
            self.ws.send(first)
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + seconds
        self.burst, self.bursts = burst, bursts
        self.error = None
        self.threads = [threading.Thread(target=self.send, daemon=True),
                        threading.Thread(target=self.drain, daemon=True)]
        for t in self.threads:
            t.start()

    def send(self):
        for _ in range(self.bursts):
            if self.stopping.is_set() or time.monotonic() > self.deadline:
                return
            try:
                self.ws.sock.sendall(self.burst)
            except OSError as e:
                self.error = e
                return

    def drain(self):
        while not self.stopping.is_set():
            try:
                if not self.ws.sock.recv(1 << 20):
                    return
            except OSError:
                return

    def stop(self):
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.ws.sock.shutdown(socket.SHUT_RDWR)     # unblocks sendall
        self.ws.close()
        for t in self.threads:
            t.join(10)


class TestFairness(unittest.TestCase):
    """A client that always has more to send is read a bounded amount per
    loop turn, and the worker polls its other sockets between turns.
    (libevent runs an event activated from its own callback in the same
    pass: the end-of-turn work re-armed itself there, and two flooding
    clients kept every other client of the worker unanswered.) Nothing
    here measures time: each probe only has to be answered while the
    flood goes on."""

    def probe(self, srv, n=5):
        for i in range(n):
            ws = RawWS(srv.port, "/echo", timeout=10)
            try:
                ws.send(frame(1, b"probe %d" % i))
                self.assertEqual(ws.recv_message(), (1, b"probe %d" % i))
            finally:
                ws.close()

    def flooding(self, srv, flooders):
        try:
            time.sleep(0.5)             # let the flood start
            self.probe(srv)
            for f in flooders:
                self.assertTrue(f.threads[0].is_alive(),
                                "a flooder stopped early: %s" % f.error)
        finally:
            for f in flooders:
                f.stop()

    def test_echo_flooders_do_not_starve_others(self):
        with Server(workers=1) as srv:
            burst = frame(1, b"x" * 100) * 2000
            self.flooding(srv, [Flooder(srv.port, "/echo", burst)
                                for _ in range(2)])

    def test_hot_room_publisher_does_not_starve_others(self):
        endpoints = [{"path": "/ws", "module": "hub"},
                     {"path": "/echo", "module": "echo"}]
        join = frame(1, b'{"type":"join_room","room":"hot"}')
        with Server(workers=1, endpoints=endpoints) as srv:
            members = [Flooder(srv.port, "/ws", b"", bursts=0, first=join)
                       for _ in range(50)]
            try:
                burst = frame(1, b'{"type":"room_message","room":"hot",'
                                 b'"text":"hot"}') * 500
                publisher = Flooder(srv.port, "/ws", burst, first=join)
                self.flooding(srv, [publisher])
            finally:
                for m in members:
                    m.stop()


if __name__ == "__main__":
    wshub_harness.main()
