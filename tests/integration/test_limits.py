#!/usr/bin/python3
"""Limits and timeouts: slow consumers, max_connections, max_message_size,
keepalive pings, handshake_timeout, request head limits.

Every wait is bounded; no test asserts how fast the server is, only that
it acts within generous bounds derived from the configured timeouts.
"""

import asyncio
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (RawWS, Server, aecho, arun, close_payload,  # noqa: E402
                           connect, echo, frame,
                           http, upgrade_request)

import websockets  # noqa: E402


# ---- helpers -------------------------------------------------------------

def read_to_eof(sock, timeout):
    """Read and discard until EOF or reset; False if neither came within
    TIMEOUT seconds."""
    sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            pass
    return False


def read_response_head(sock, timeout):
    """Bytes received up to the end of a response head (or EOF)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def expect_close_logged(ws, code, srv, timeout=5):
    try:
        return ws.expect_close(code, timeout=timeout)
    except (AssertionError, EOFError, OSError) as e:
        raise AssertionError("expected close %s: %r\n%s" % (
            code, e, srv.log()))


# ---- tests ---------------------------------------------------------------

class TestSlowClient(unittest.TestCase):

    def test_client_that_never_reads_is_held_then_closed(self):
        # Its echoes fill send_buffer: the server stops reading it
        # (backpressure, so its sends block) instead of queueing more,
        # and closes it when write_wait passes without progress.
        with Server(send_buffer="64k", write_wait="2s") as srv:
            ws = RawWS(srv.port)
            try:
                ws.sock.settimeout(5)
                msg = frame(2, os.urandom(65536))
                for sent in range(2000):
                    try:
                        ws.send(msg)
                    except OSError:     # reset, broken pipe or timeout
                        break
                self.assertLess(sent, 2000, "the server read 128 MiB from "
                                "a client that reads nothing")
                self.assertTrue(read_to_eof(ws.sock, 15),
                                "server kept a client that never reads "
                                "(%d messages sent)\n%s" % (sent, srv.log()))
            finally:
                ws.close()
            srv.wait_log("write_wait expired")
            self.assertNotIn("slow client", srv.log())
            self.assertEqual(echo(srv.url(), "after slow"), "after slow")


class TestMaxConnections(unittest.TestCase):

    def test_503_beyond_max_connections(self):
        with Server(workers=1, max_connections=2) as srv:
            a, b = RawWS(srv.port), RawWS(srv.port)
            try:
                for ws in (a, b):
                    ws.send(frame(1, b"open"))
                    self.assertEqual(ws.recv_message(), (1, b"open"))
                status, headers, body = http(srv.port,
                                             upgrade_request(srv.port))
                self.assertEqual(status, 503, body)
                self.assertIn("retry-after", headers)
                a.send(frame(8, close_payload(1000)))
                a.expect_close(1000)
                # The slot frees once the server has reaped the closed
                # connection; retry briefly.
                deadline = time.monotonic() + 5
                while True:
                    try:
                        c = RawWS(srv.port)
                        break
                    except AssertionError as e:
                        if time.monotonic() > deadline:
                            raise AssertionError("no slot after a close: %s"
                                                 "\n%s" % (e, srv.log()))
                    time.sleep(0.05)
                try:
                    c.send(frame(1, b"third"))
                    self.assertEqual(c.recv_message(), (1, b"third"))
                finally:
                    c.close()
            finally:
                a.close()
                b.close()


class TestMaxMessageSize(unittest.TestCase):

    EP = [{"path": "/small", "module": "echo", "max_message_size": "1k"}]

    def test_limit_itself_echoes(self):
        with Server(endpoints=self.EP) as srv:
            msg = os.urandom(1024)
            self.assertEqual(arun(aecho(srv.url("/small"), msg)), msg)

    def test_declared_length_over_limit(self):
        with Server(endpoints=self.EP) as srv:
            ws = RawWS(srv.port, "/small")
            try:
                head = frame(2, b"", length=1025)
                self.assertEqual(len(head), 8)      # 2 + 2 (length) + mask
                ws.send(head)
                expect_close_logged(ws, 1009, srv)
            finally:
                ws.close()

    def test_fragments_over_limit(self):
        with Server(endpoints=self.EP) as srv:
            ws = RawWS(srv.port, "/small")
            try:
                ws.send(frame(2, b"a" * 600, fin=False))
                ws.send(frame(0, b"b" * 425, fin=True))
                expect_close_logged(ws, 1009, srv)
            finally:
                ws.close()


class TestKeepalive(unittest.TestCase):

    def test_keepalive(self):
        with Server(ping_period="1s", pong_wait="2s") as srv:
            # A ping arrives about ping_period after the upgrade.
            ws = RawWS(srv.port)
            try:
                ws.sock.settimeout(4)
                fin, op, data = ws.recv_frame()
                self.assertEqual(op, 9, "expected a ping, got opcode %d" % op)
            finally:
                ws.close()

            # A client that never sends anything is dropped after
            # pong_wait (2s); allow generous slack.
            silent = RawWS(srv.port)
            try:
                self.assertTrue(read_to_eof(silent.sock, 6),
                                "silent client not closed\n" + srv.log())
            finally:
                silent.close()
            srv.wait_log("pong_wait expired")

            # A polite client answers the pings (its own pings are off)
            # and stays connected well past pong_wait.
            async def body():
                async with connect(srv.url()) as ws:
                    await asyncio.sleep(4)
                    await ws.send("still here")
                    return await asyncio.wait_for(ws.recv(), 5)

            self.assertEqual(arun(body()), "still here", srv.log())


class TestHandshakeTimeout(unittest.TestCase):

    def test_silent_connection_closed(self):
        with Server(handshake_timeout="1s") as srv:
            with socket.create_connection(("127.0.0.1", srv.port), 5) as s:
                self.assertTrue(read_to_eof(s, 4),
                                "idle connection not closed\n" + srv.log())

    def test_partial_head_gets_408(self):
        with Server(handshake_timeout="1s") as srv:
            with socket.create_connection(("127.0.0.1", srv.port), 5) as s:
                s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
                head = read_response_head(s, 4)
                self.assertTrue(head.startswith(b"HTTP/1.1 408"),
                                "%r\n%s" % (head, srv.log()))
                self.assertTrue(read_to_eof(s, 4), "not closed after 408")


class TestRequestLimits(unittest.TestCase):

    def test_request_limits(self):
        with Server(max_header_size="1k", max_headers=8) as srv:
            port = srv.port
            # Request line over max_header_size: 414.
            req = ("GET /echo?%s HTTP/1.1\r\nHost: x\r\n\r\n"
                   % ("a" * 2000)).encode()
            status, _, body = http(port, req)
            self.assertEqual(status, 414, body)

            # 5 headers in an upgrade request + 15 = 20 > max_headers: 431.
            extra = "".join("X-H%d: %d\r\n" % (i, i) for i in range(15))
            req = upgrade_request(port, extra=extra)
            self.assertLess(len(req), 1024)
            status, _, body = http(port, req)
            self.assertEqual(status, 431, body)

            # Few headers (7 <= 8) but over 1k in all: 431.
            extra = "X-Big1: %s\r\nX-Big2: %s\r\n" % ("b" * 600, "c" * 600)
            status, _, body = http(port, upgrade_request(port, extra=extra))
            self.assertEqual(status, 431, body)

            # Within the limits the same server upgrades fine.
            extra = "X-Small: %s\r\n" % ("d" * 200)
            status, _, _ = http(port, upgrade_request(port, extra=extra))
            self.assertEqual(status, 101)


if __name__ == "__main__":
    wshub_harness.main()
