"""test_close.py -- protocol violations and the closing handshake.

Each violation of RFC 6455 gets its close code (1002 protocol error, 1007
invalid payload, 1009 too big) in a close frame, then the server closes
the TCP connection. Valid closes are echoed. Raw sockets throughout:
client libraries will not send broken frames.
"""

import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import RawWS, Server, close_payload, frame  # noqa: E402

VIOLATIONS_1002 = {
    "rsv1": frame(1, b"x", rsv=4),
    "rsv2": frame(1, b"x", rsv=2),
    "rsv3 on ping": frame(9, b"", rsv=1),
    "opcode 3": frame(3, b"x"),
    "opcode 7": frame(7, b""),
    "opcode 11": frame(11, b""),
    "opcode 15": frame(15, b"x"),
    "unmasked": frame(1, b"hello", mask=False),
    "fragmented ping": frame(9, b"x", fin=False),
    "fragmented close": frame(8, close_payload(1000), fin=False),
    "126-byte ping": frame(9, b"p" * 126),
    "continuation first": frame(0, b"x"),
    "text inside fragmented": frame(1, b"a", fin=False) + frame(1, b"b"),
    "binary inside fragmented": frame(2, b"a", fin=False) + frame(2, b"b"),
    "64-bit length top bit": frame(2, b"", length=1 << 63, len_form=64),
    "non-minimal 16-bit": frame(2, b"abc", len_form=16),
    "non-minimal 64-bit": frame(2, b"abc" * 100, len_form=64),
    "1-byte close": frame(8, b"\x03"),
}

INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000,
                       2999, 5000, 65535]
VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                     1012, 1013, 1014, 3000, 3999, 4000, 4999]


class CloseTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(workers=2, endpoints=[
            {"path": "/echo", "module": "echo", "max_message_size": "16m"},
            {"path": "/small", "module": "echo", "max_message_size": "1k"},
        ]).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def ws(self, path="/echo"):
        ws = RawWS(self.srv.port, path)
        self.addCleanup(ws.close)
        return ws

    def test_violations_1002(self):
        for name, data in VIOLATIONS_1002.items():
            with self.subTest(name):
                ws = self.ws()
                ws.send(data)
                ws.expect_close(1002)

    def test_violation_after_valid_message(self):
        ws = self.ws()
        ws.send(frame(1, b"ok") + frame(5, b""))
        self.assertEqual(ws.recv_message(), (1, b"ok"))
        ws.expect_close(1002)

    def test_invalid_utf8_1007(self):
        for data in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                     b"ok\xce"):
            with self.subTest(data):
                ws = self.ws()
                ws.send(frame(1, data))
                ws.expect_close(1007)

    def test_invalid_utf8_fails_fast_mid_fragment(self):
        ws = self.ws()
        # The bad byte is in the first fragment; the message never ends.
        ws.send(frame(1, b"abc\xed\xa0\x80def", fin=False))
        ws.expect_close(1007)

    def test_utf8_split_across_fragments_is_valid(self):
        ws = self.ws()
        snowman = "\u2603".encode()
        ws.send(frame(1, b"a" + snowman[:1], fin=False)
                + frame(0, snowman[1:2], fin=False) + frame(0, snowman[2:]))
        self.assertEqual(ws.recv_message(), (1, b"a" + snowman))

    def test_invalid_close_codes_1002(self):
        for code in INVALID_CLOSE_CODES:
            with self.subTest(code):
                ws = self.ws()
                ws.send(frame(8, close_payload(code)))
                ws.expect_close(1002)

    def test_valid_close_codes_echoed(self):
        for code in VALID_CLOSE_CODES:
            with self.subTest(code):
                ws = self.ws()
                ws.send(frame(8, close_payload(code, b"bye")))
                self.assertEqual(ws.expect_close(), code)

    def test_empty_close_echoed_empty(self):
        ws = self.ws()
        ws.send(frame(8, b""))
        self.assertIsNone(ws.expect_close())

    def test_close_reason_invalid_utf8_1007(self):
        ws = self.ws()
        ws.send(frame(8, close_payload(1000, b"\xff\xfe")))
        ws.expect_close(1007)

    def test_close_with_123_byte_reason(self):
        ws = self.ws()
        ws.send(frame(8, close_payload(1000, b"r" * 123)))
        self.assertEqual(ws.expect_close(), 1000)

    def test_messages_after_close_are_ignored(self):
        ws = self.ws()
        ws.send(frame(8, close_payload(1000)) + frame(1, b"late"))
        self.assertEqual(ws.expect_close(), 1000)

    def test_ping_answered_unsolicited_pong_ignored(self):
        ws = self.ws()
        ws.send(frame(10, b"unsolicited") + frame(9, b"p" * 125)
                + frame(1, b"after"))
        self.assertEqual(ws.recv_frame(), (True, 10, b"p" * 125))
        self.assertEqual(ws.recv_message(), (1, b"after"))

    def test_ping_inside_fragmented_message(self):
        ws = self.ws()
        ws.send(frame(1, b"frag", fin=False) + frame(9, b"mid")
                + frame(0, b"ment"))
        self.assertEqual(ws.recv_frame(), (True, 10, b"mid"))
        self.assertEqual(ws.recv_message(), (1, b"fragment"))

    def test_oversize_1009_before_payload(self):
        ws = self.ws("/small")
        ws.send(frame(2, b"x" * 1024))
        self.assertEqual(ws.recv_message(), (2, b"x" * 1024))
        # Only the header of a 1025-byte frame: refused without the body.
        ws.send(frame(2, b"", length=1025))
        ws.expect_close(1009)

    def test_oversize_1009_across_fragments(self):
        ws = self.ws("/small")
        ws.send(frame(2, b"x" * 1000, fin=False) + frame(0, b"y" * 25))
        ws.expect_close(1009)

    def test_huge_declared_length_1009(self):
        ws = self.ws()
        ws.send(frame(2, b"", length=1 << 40, len_form=64))
        ws.expect_close(1009)

    def test_close_codes_in_access_log(self):
        ws = self.ws()
        ws.send(frame(8, close_payload(4321)))
        self.assertEqual(ws.expect_close(), 4321)
        self.srv.wait_log("close=4321", access=True)
        ws = self.ws()
        ws.send(frame(3, b""))
        ws.expect_close(1002)
        ws.close()      # the server lingers until our EOF, then logs
        self.srv.wait_log("close=1002", access=True)


if __name__ == "__main__":
    wshub_harness.main()
