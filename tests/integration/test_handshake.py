"""test_handshake.py -- the opening handshake and plain HTTP answers.

Every way a request can be wrong gets its own status (RFC 6455 section
4.2.1, RFC 9112), sent over raw sockets because client libraries refuse
to produce most of these requests.
"""

import base64
import glob
import hashlib
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (GUID, Server, frame, http,  # noqa: E402
                           parse_response, upgrade_request)


class HandshakeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(workers=2, max_header_size="2k", max_headers=16,
                         handshake_timeout="1s").start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def status(self, raw):
        return http(self.port, raw)

    def test_rfc_sample_accept_key(self):
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        st, h, _ = self.status(upgrade_request(self.port, key=key))
        self.assertEqual(st, 101)
        self.assertEqual(h["sec-websocket-accept"],
                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(h["upgrade"].lower(), "websocket")
        self.assertEqual(h["connection"].lower(), "upgrade")

    def test_browser_style_tokens(self):
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /echo HTTP/1.1\r\nhost: x\r\nconnection: keep-alive, "
               "Upgrade\r\nupgrade: WebSocket\r\nsec-websocket-key: %s\r\n"
               "sec-websocket-version: 13\r\nOrigin: http://x\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n" % key)
        st, h, _ = self.status(req.encode())
        self.assertEqual(st, 101)
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        self.assertEqual(h["sec-websocket-accept"], want.decode())
        # No extension is accepted (none is implemented yet).
        self.assertNotIn("sec-websocket-extensions", h)

    def test_unknown_path_404(self):
        st, _, body = self.status(upgrade_request(self.port, path="/nope"))
        self.assertEqual(st, 404)
        self.assertIn(b"no endpoint", body)

    def test_query_string_is_not_part_of_the_path(self):
        st, _, _ = self.status(upgrade_request(self.port, path="/echo?x=1"))
        self.assertEqual(st, 101)

    def test_plain_get_426(self):
        st, h, _ = self.status(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(st, 426)
        self.assertEqual(h["sec-websocket-version"], "13")
        self.assertEqual(h["upgrade"], "websocket")

    def test_post_405(self):
        st, h, _ = self.status(upgrade_request(self.port, method="POST"))
        self.assertEqual(st, 405)
        self.assertEqual(h["allow"], "GET")

    def test_wrong_version_426(self):
        st, h, _ = self.status(upgrade_request(self.port, version="8"))
        self.assertEqual(st, 426)
        self.assertEqual(h["sec-websocket-version"], "13")

    def test_bad_keys_400(self):
        for key in ("", "short", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=x",
                    "dGhlIHNhbXBsZSBub25jZR==", "!!!!!!!!!!!!!!!!!!!!!A=="):
            req = upgrade_request(self.port, key=key or "x")
            if not key:
                req = req.replace(b"Sec-WebSocket-Key: x\r\n", b"")
            st, _, _ = self.status(req)
            self.assertEqual(st, 400, key)

    def test_missing_connection_upgrade_400(self):
        req = upgrade_request(self.port).replace(b"Connection: Upgrade",
                                                 b"Connection: keep-alive")
        self.assertEqual(self.status(req)[0], 400)

    def test_missing_host_400(self):
        req = upgrade_request(self.port).replace(b"Host: ", b"X-Host: ")
        self.assertEqual(self.status(req)[0], 400)

    def test_http10_400(self):
        req = upgrade_request(self.port, proto="HTTP/1.0")
        self.assertEqual(self.status(req)[0], 400)

    def test_http2_505(self):
        req = upgrade_request(self.port, proto="HTTP/2.0")
        self.assertEqual(self.status(req)[0], 505)

    def test_malformed_400(self):
        for raw in (b"GET\r\n\r\n", b"GET /echo\r\n\r\n",
                    b"GET /echo HTTP/1.1\r\nHost : x\r\n\r\n",
                    b"GET /echo HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                    b"GET /echo HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",
                    b"\x00\x01\x02\r\n\r\n"):
            self.assertEqual(self.status(raw)[0], 400, raw)

    def test_request_line_too_long_414(self):
        raw = b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assertEqual(self.status(raw)[0], 414)

    def test_headers_too_large_431(self):
        raw = (b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000
               + b"\r\n\r\n")
        self.assertEqual(self.status(raw)[0], 431)

    def test_too_many_headers_431(self):
        raw = (b"GET /echo HTTP/1.1\r\nHost: x\r\n"
               + b"".join(b"X-H%d: v\r\n" % i for i in range(20)) + b"\r\n")
        self.assertEqual(self.status(raw)[0], 431)

    def test_keep_alive_then_upgrade_on_one_connection(self):
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\n\n" not in data.replace(b"\r", b"") or not data.endswith(b"\n"):
                data += s.recv(4096)
            st, h, body = parse_response(data, s)
            self.assertEqual(st, 404)
            self.assertEqual(h["connection"], "keep-alive")
            s.sendall(upgrade_request(self.port))
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            self.assertTrue(data.startswith(b"HTTP/1.1 101 "), data)

    def test_handshake_byte_at_a_time_then_frame_in_same_write(self):
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            req = upgrade_request(self.port)
            for b in req[:-1]:
                s.send(bytes([b]))
            # The last head byte and a frame arrive together.
            s.sendall(req[-1:] + frame(1, b"after"))
            data = b""
            while b"after" not in data:
                chunk = s.recv(4096)
                self.assertTrue(chunk)
                data += chunk
            self.assertIn(b" 101 ", data.split(b"\r\n")[0])

    def test_handshake_timeout(self):
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
            start = time.monotonic()
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data)
            self.assertLess(time.monotonic() - start, 4)
        with socket.create_connection(("127.0.0.1", self.port), 5) as s:
            self.assertEqual(s.recv(4096), b"")     # idle: just closed

    def test_body_on_get_closes(self):
        raw = (b"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
               b"hello")
        st, h, _ = self.status(raw)
        self.assertEqual(st, 404)
        self.assertEqual(h["connection"], "close")


API_KEY = "test-api-key-0123456789abcdef"
PUBLISH = b'{"broadcast":true,"data":{"text":"hi"}}'


def read_all(sock):
    """Everything SOCK receives until the server closes it."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def exchange(port, raw):
    """Send RAW on a new connection and return all the server sends
    before it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(raw)
        return read_all(s)


def publish_request(lengths, body=PUBLISH, extra=""):
    """POST /api/publish with one Content-Length field per item of
    LENGTHS (an int, or a raw value) and BODY."""
    fields = "".join("Content-Length: %s\r\n" % n for n in lengths)
    return ("POST /api/publish HTTP/1.1\r\nHost: x\r\n"
            "Authorization: apikey %s\r\nContent-Type: application/json\r\n"
            "%s%s\r\n" % (API_KEY, fields, extra)).encode() + body


class HttpAnswersTest(unittest.TestCase):
    """Plain HTTP answers (issue 19): a body whose length is in doubt is
    refused, HEAD never gets a body, every status has its reason."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(
            workers=1,
            endpoints=[{"path": "/echo", "module": "echo"},
                       {"path": "/ws", "module": "hub"},
                       {"path": "/api/publish", "module": "hub_api"},
                       {"path": "/health", "module": "health"},
                       {"path": "/metrics", "module": "metrics"},
                       {"path": "/status", "module": "status"}],
            raw_yaml="hub:\n  api_key: %s\n" % API_KEY).start()
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def assert_only_400(self, data, what):
        """DATA is one complete 400 answer and nothing else: the server
        closed the connection after it, taking no byte after the head for
        a request."""
        self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"),
                        (what, data))
        self.assertEqual(data.count(b"HTTP/1.1 "), 1, (what, data))
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"\r\nConnection: close\r\n", head + b"\r\n", what)
        length = int(parse_response(data)[1]["content-length"])
        self.assertEqual(len(body), length, (what, data))

    def test_one_content_length_publishes(self):
        # The control for the next tests: the same request with one
        # Content-Length is published.
        data = exchange(self.port, publish_request(
            [len(PUBLISH)], extra="Connection: close\r\n"))
        self.assertTrue(data.startswith(b"HTTP/1.1 202 Accepted\r\n"), data)

    def test_differing_content_length_400(self):
        # RFC 9112 section 6.3: two differing lengths make a request
        # whose end a proxy in front may see elsewhere (smuggling).
        n = len(PUBLISH)
        for lengths in ([n, n + 10], [n + 10, n], [n, 0], [0, n], [n, 1]):
            self.assert_only_400(exchange(self.port,
                                          publish_request(lengths)), lengths)

    def test_smuggled_request_not_answered(self):
        # A proxy in front that takes the last length forwards one
        # request; a server that took the first would answer the end of
        # the body as a second request, one the proxy never saw.
        inner = (b"GET /health HTTP/1.1\r\nHost: x\r\n"
                 b"Connection: close\r\n\r\n")
        n = len(PUBLISH)
        raw = publish_request([n, n + len(inner)], body=PUBLISH + inner)
        data = exchange(self.port, raw)
        self.assert_only_400(data, "smuggled")
        self.assertNotIn(b"200 OK", data)

    def test_doubtful_content_length_400(self):
        # The same value twice or as a list is refused too (a choice:
        # RFC 9110 section 8.6 allows either), and so are a length with
        # Transfer-Encoding and one that is not a plain decimal.
        n = len(PUBLISH)
        cases = ([n, n], ["%d, %d" % (n, n)], ["+%d" % n], ["0x%x" % n],
                 ["%d.0" % n], ["-1"], [""], ["99999999999999999999999"])
        for lengths in cases:
            self.assert_only_400(exchange(self.port,
                                          publish_request(lengths)), lengths)
        raw = publish_request([n], extra="Transfer-Encoding: chunked\r\n")
        self.assert_only_400(exchange(self.port, raw), "with chunked")

    # RFC 9110 section 9.3.2: the answer to HEAD is the GET's without
    # the body; Content-Length may give the length the GET's body has.

    def head_answer(self, raw):
        """Send RAW (a HEAD request) and a GET /health behind it on one
        connection. Returns (status, headers) of the first answer and
        the bytes that follow its head."""
        follow = (b"GET /health HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        data = exchange(self.port, raw + follow)
        head, sep, rest = data.partition(b"\r\n\r\n")
        self.assertEqual(sep, b"\r\n\r\n", data)
        st, h, _ = parse_response(head + sep)
        return st, h, rest

    def get_length(self, raw):
        st, h, body = http(self.port, raw)
        self.assertEqual(len(body), int(h["content-length"]))
        return st, len(body)

    def test_head_has_no_body(self):
        # Answers the modules write (200, 405) and the core's (404, 405):
        # the next answer on the connection starts right after the
        # head, and Content-Length is that of the GET.
        upgrade = upgrade_request(self.port, "/echo")
        for path, status, same in (("/health", 200, False),
                                   ("/metrics", 200, False),
                                   ("/status", 200, True),
                                   ("/status?json", 200, False),
                                   ("/nope", 404, True),
                                   ("/api/publish", 405, True),
                                   ("/echo", 405, True)):
            get = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()
            head = b"HEAD" + get[3:]
            if path == "/echo":
                get, head = upgrade, upgrade.replace(b"GET ", b"HEAD ", 1)
            st, h, rest = self.head_answer(head)
            self.assertEqual(st, status, path)
            self.assertEqual(h["connection"], "keep-alive", path)
            self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK\r\n"),
                            (path, rest[:200]))
            self.assertEqual(rest.count(b"HTTP/1.1 "), 1, path)
            self.assertGreater(int(h["content-length"]), 0, path)
            if same:
                get_status, get_len = self.get_length(
                    get if path != "/echo"
                    else get.replace(b"GET ", b"POST ", 1))
                if path != "/echo":
                    self.assertEqual(get_status, status, path)
                self.assertEqual(int(h["content-length"]), get_len, path)
        # The access log counts the body bytes sent: none.
        self.srv.wait_log('"HEAD /nope" 404 0 ', access=True)
        self.srv.wait_log('"GET /nope" 404 %d ' % self.get_length(
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")[1], access=True)

    def test_head_error_that_closes_has_no_body(self):
        # A 400 closes the connection: it yields exactly the head.
        raw = (b"HEAD /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
               b"Content-Length: 2\r\n\r\n")
        data = exchange(self.port, raw)
        self.assertTrue(data.startswith(b"HTTP/1.1 400 Bad Request\r\n"),
                        data)
        self.assertTrue(data.endswith(b"\r\n\r\n"), data)
        self.assertEqual(data.count(b"\r\n\r\n"), 1, data)
        self.assertGreater(int(parse_response(data)[1]["content-length"]), 0)

    def test_every_status_sent_has_its_reason(self):
        # Each status the sources send (passed to an answering function,
        # returned or assigned as a status) must be in http_sent of
        # tests/unit/check_http.c, whose test_status_text checks that it
        # has its reason phrase.
        sent = sent_statuses()
        for status in (101, 202, 400, 401, 404, 408, 413, 414, 429, 503,
                       504, 505):
            self.assertIn(status, sent, "the scan misses %d" % status)
        with open(os.path.join(wshub_harness.SRCDIR, "tests", "unit",
                               "check_http.c")) as f:
            m = re.search(r"http_sent\[\] = \{([^}]*)\}", f.read())
        listed = {int(n) for n in re.findall(r"\d+", m.group(1))}
        missing = {s: sorted(f) for s, f in sent.items() if s not in listed}
        self.assertEqual(missing, {}, "statuses sent but not in http_sent "
                         "of tests/unit/check_http.c")


# Statuses in C: the argument after the connection of a function that
# answers (wsh_http_respond, conn_http_error, hub_http_reply...), a
# #define for one (AUTH_JWT_REFUSED), and the literals a return or an
# assignment to a status variable yields (not operands of arithmetic or
# of a comparison: "len7 == 126 ? 2 : 8").
STATUS_CALL = re.compile(
    r"\b\w*(?:respond|reply|error|answer)\s*\(\s*c\s*,\s*([1-5]\d\d)\b")
STATUS_DEFINE = re.compile(r"#define\s+\w*(?:STATUS|REFUSED)\w*\s+"
                           r"([1-5]\d\d)\b")
STATUS_STMT = re.compile(r"\b(?:return|status\s*=|code\s*=|rc\s*=)"
                         r"([^;]*);")
STATUS_VALUE = re.compile(r"(?<![-+*/%<>=!]\s)(?<![-+*/%<>=!\w.])"
                          r"([1-5]\d\d)\b(?!\s*[-+*/%<>=!])(?![\w.])")


def sent_statuses():
    """{status: files} of the statuses the server's sources send."""
    found = {}
    src = wshub_harness.SRCDIR
    for pattern in ("src/net/*.c", "src/ws/*.c", "modules/*/*.c"):
        for path in glob.glob(os.path.join(src, pattern)):
            with open(path) as f:
                text = re.sub(r"(?s)/\*.*?\*/", "", f.read())
            text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
            values = STATUS_CALL.findall(text) + STATUS_DEFINE.findall(text)
            for m in STATUS_STMT.finditer(text):
                values += STATUS_VALUE.findall(m.group(1))
            for v in values:
                found.setdefault(int(v), set()).add(os.path.relpath(path,
                                                                    src))
    return found


if __name__ == "__main__":
    wshub_harness.main()
