#!/usr/bin/env python3
"""wsfuzz -- a strict, independent RFC 6455 server conformance fuzzer.

Modelled on Autobahn|Testsuite's "fuzzingclient": a client that opens a fresh
connection per test case against an *echo* endpoint, provokes the server with
valid and invalid traffic, and judges what comes back.

    python3 wsfuzz.py ws://127.0.0.1:9001/echo [--cases 1-7,9,10 | --cases 5.*,6.2.1]
                      [--json report.json] [--timeout SECONDS] [--quick]

Outcomes (Autobahn semantics):
  OK             the strict, expected behaviour
  NON-STRICT     acceptable but not the strict behaviour (e.g. failed the
                 connection only after the whole message instead of failing
                 fast, dropped TCP without a close frame)
  INFORMATIONAL  behaviour is implementation defined; details in the report
  FAILED         wrong echo, missing/incorrect failure, malformed server
                 frame, hang until timeout, ...

Exit status: 0 = no case FAILED, 1 = at least one FAILED, 2 = usage or
connection error (e.g. server not reachable).

Only the Python standard library is used.
"""

import argparse
import base64
import fnmatch
import hashlib
import json
import os
import re
import select
import socket
import struct
import sys
import time
import zlib

VERSION = "1.0"

# --------------------------------------------------------------------------
# Protocol constants (RFC 6455 5.2, 7.4)
# --------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OK, NON_STRICT, INFORMATIONAL, FAILED = "OK", "NON-STRICT", "INFORMATIONAL", "FAILED"
OUTCOMES = (OK, NON_STRICT, INFORMATIONAL, FAILED)

DEFAULT_TIMEOUT = 10.0   # per case
PERF_FACTOR = 6          # 9.x cases get PERF_FACTOR * timeout (60 s by default)
CLOSE_WAIT = 5.0         # max wait for the close frame answering ours
LINGER_WAIT = 2.0        # max wait for the server to close TCP after the close handshake
FAILFAST_WAIT = 1.0      # Autobahn 6.4.x: time the server has to fail fast
FRAMEWISE_PAUSE = 0.05   # pause between frames in "frame-wise" (slow) sends
OCTETWISE_PAUSE = 0.001  # pause between chops in "octet-wise" sends

# Codes a server may reasonably use when it *fails* a connection.  The
# expected code (1002 or 1007) gives OK, the others NON-STRICT.
FAIL_CODES = {1002, 1007, 1008, 1011}

CATEGORY_NAMES = {
    1: "Framing", 2: "Pings/Pongs", 3: "Reserved bits", 4: "Opcodes",
    5: "Fragmentation", 6: "UTF-8 handling", 7: "Close handling",
    9: "Limits/Performance", 10: "Auto-fragmentation",
    12: "Compression: payloads", 13: "Compression: parameters",
    14: "Compression: errors",
}


def close_code_valid(code):
    """May `code` appear in a Close frame on the wire?  RFC 6455 7.4.1/7.4.2
    plus the IANA registry (1012-1014 were registered after the RFC).
    1004-1006 and 1015 are reserved / must never be sent, 1016-2999 are
    reserved for future RFCs, 0-999 are unused, >= 5000 is undefined."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def mask_bytes(data, key):
    """XOR `data` with the repeating 4-byte `key` (RFC 6455 5.3); fast for
    large payloads because it works on one big integer."""
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True):
    """Encode one frame (RFC 6455 5.2).  Client frames are always masked with
    a fresh random key (5.3); the minimal length encoding is used."""
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def close_payload(code=None, reason=b""):
    return b"" if code is None else struct.pack("!H", code) + reason


def utf8_error_index(data):
    """Strict UTF-8 check (RFC 3629, Unicode table 3-7: no overlongs, no
    surrogates, nothing above U+10FFFF).  Returns None if `data` is valid,
    otherwise the index of the first octet at which `data` can no longer be
    the prefix of valid UTF-8 -- or len(data) if it is merely truncated."""
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif c == 0xE0:
            need, lo, hi = 2, 0xA0, 0xBF
        elif c == 0xED:
            need, lo, hi = 2, 0x80, 0x9F
        elif 0xE1 <= c <= 0xEF:
            need, lo, hi = 2, 0x80, 0xBF
        elif c == 0xF0:
            need, lo, hi = 3, 0x90, 0xBF
        elif 0xF1 <= c <= 0xF3:
            need, lo, hi = 3, 0x80, 0xBF
        elif c == 0xF4:
            need, lo, hi = 3, 0x80, 0x8F
        else:
            return i
        for k in range(1, need + 1):
            j = i + k
            if j >= n:
                return n
            lo_k, hi_k = (lo, hi) if k == 1 else (0x80, 0xBF)
            if not lo_k <= data[j] <= hi_k:
                return j
        i += need + 1
    return None


def utf8_valid(data):
    """Fast strict UTF-8 check (CPython's decoder rejects overlongs,
    surrogates and code points above U+10FFFF, like utf8_error_index)."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def preview(data, limit=24):
    s = repr(bytes(data[:limit]))[2:-1]
    return s + ("..." if len(data) > limit else "")


# --------------------------------------------------------------------------
# Events, results
# --------------------------------------------------------------------------

class Event:
    """Something observed from the server: a complete message ('text' or
    'binary'), a 'pong', a 'close' frame, or 'eof' (TCP closed / reset)."""

    __slots__ = ("kind", "payload", "code", "reason", "reset")

    def __init__(self, kind, payload=b"", code=None, reason=b"", reset=False):
        self.kind, self.payload, self.code = kind, payload, code
        self.reason, self.reset = reason, reset

    def __eq__(self, other):
        return (isinstance(other, Event) and self.kind == other.kind
                and self.payload == other.payload)

    def __str__(self):
        if self.kind == "close":
            r = ", reason=%r" % bytes(self.reason[:40]) if self.reason else ""
            return "close(code=%s%s)" % (self.code, r)
        if self.kind == "eof":
            return "TCP reset" if self.reset else "TCP close"
        return "%s[%dB '%s']" % (self.kind, len(self.payload), preview(self.payload))


def TXT(p):
    return Event("text", p)


def BIN(p):
    return Event("binary", p)


def PONG(p=b""):
    return Event("pong", p)


def echo_of(op, payload):
    return Event("text" if op == OP_TEXT else "binary", payload)


def mismatch(expected, got):
    """Human readable description of why `got` is not `expected`."""
    if expected.kind != got.kind:
        return "expected %s, got %s" % (expected, got)
    a, b = expected.payload, got.payload
    if len(a) != len(b):
        return "%s echo has %d bytes, expected %d" % (got.kind, len(b), len(a))
    for off in range(0, len(a), 4096):
        if a[off:off + 4096] != b[off:off + 4096]:
            i = off + next(k for k in range(4096) if a[off + k] != b[off + k])
            return "%s echo differs from what was sent at byte %d" % (got.kind, i)
    return "expected %s, got %s" % (expected, got)


class Result:
    """Outcome of one case: the worst verdict recorded wins."""

    def __init__(self):
        self.failed, self.nonstrict, self.infos = [], [], []
        self.close_code = None
        self.details = {}
        self.duration_ms = 0

    def fail(self, msg):
        if msg not in self.failed:
            self.failed.append(msg)

    def non_strict(self, msg):
        if msg not in self.nonstrict:
            self.nonstrict.append(msg)

    def informational(self, msg):
        self.infos.append(msg)

    @property
    def outcome(self):
        if self.failed:
            return FAILED
        if self.nonstrict:
            return NON_STRICT
        if self.infos:
            return INFORMATIONAL
        return OK

    @property
    def reason(self):
        msgs = {FAILED: self.failed, NON_STRICT: self.nonstrict,
                INFORMATIONAL: self.infos, OK: []}[self.outcome]
        return "; ".join(msgs)


class HandshakeError(Exception):
    pass


class CaseTimeout(Exception):
    pass


# --------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------

class Target:
    """A parsed ws:// URL."""

    def __init__(self, url):
        m = re.match(r"^ws://(\[[^\]]+\]|[^/:?#\[\]]+)(?::(\d+))?([/?][^#]*)?$", url)
        if not m:
            raise ValueError("only plain ws://host[:port]/path URLs are supported: %r" % url)
        self.url = url
        host = m.group(1)
        self.port = int(m.group(2) or 80)
        self.host = host.strip("[]")
        self.host_header = host if self.port == 80 else "%s:%d" % (host, self.port)
        path = m.group(3) or "/"
        self.path = path if path.startswith("/") else "/" + path


class Connection:
    """One client WebSocket connection.

    All I/O is full duplex: while we write (possibly many MiB, possibly in
    slow chops) we keep reading, so a server that echoes while we are still
    sending can never dead-lock us.  Every frame from the server is checked
    (RFC 6455 5.1-5.7); protocol violations are collected in `violations`
    (FAILED) and `notes` (NON-STRICT)."""

    def __init__(self, target, timeout, offer=None):
        self.target = target
        self.offer = offer              # permessage-deflate offers (list of dicts)
        self.pmd = None                 # the negotiated PerMessageDeflate
        self.frag_compressed = False
        self.deadline = time.monotonic() + timeout
        self.sock = None
        self.rx = bytearray()
        self.eof = False
        self.reset = False
        self.write_failed = False
        self.close_sent = False
        self.close_received = None
        self.mid_frame = False          # a partially written frame is on the wire
        self.frag_op = None             # opcode of the server message being reassembled
        self.frag_parts = []
        self.violations = []
        self.notes = []
        self.server_pings = 0

    # -- bookkeeping -------------------------------------------------------

    def violation(self, msg):
        if msg not in self.violations:
            self.violations.append(msg)

    def note(self, msg):
        if msg not in self.notes:
            self.notes.append(msg)

    def note_nonminimal(self, bits, length):
        if not any(n.startswith("server used a non-minimal") for n in self.notes):
            self.note("server used a non-minimal payload length encoding (RFC 6455 5.2), e.g. %d-bit "
                      "length for a %d-byte payload" % (bits, length))

    def remaining(self):
        return self.deadline - time.monotonic()

    def extend(self, seconds):
        """Make sure at least `seconds` are left (used for the closing phase)."""
        self.deadline = max(self.deadline, time.monotonic() + seconds)

    # -- opening handshake (RFC 6455 4.1, 4.2.2) ----------------------------

    def open(self):
        t = self.target
        try:
            self.sock = socket.create_connection((t.host, t.port), timeout=max(self.remaining(), 0.1))
        except socket.timeout:
            raise HandshakeError("TCP connect timed out")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s"
               "User-Agent: wsfuzz/%s\r\n\r\n" % (t.path, t.host_header, key,
                                                 pmd_offer_header(self.offer), VERSION))
        buf = b""
        try:
            self.sock.sendall(req.encode())
            while b"\r\n\r\n" not in buf:
                if len(buf) > 16384:
                    raise HandshakeError("response headers too long")
                self.sock.settimeout(max(self.remaining(), 0.01))
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise HandshakeError("connection closed during the opening handshake")
                buf += chunk
        except socket.timeout:
            raise HandshakeError("timed out waiting for the handshake response")
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.rx += rest
        lines = head.decode("iso-8859-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or not status[0].startswith("HTTP/1.1") or status[1] != "101":
            raise HandshakeError("expected 'HTTP/1.1 101', got %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise HandshakeError("malformed header line %r" % line)
            name = name.strip().lower()
            headers[name] = (headers[name] + ", " if name in headers else "") + value.strip()
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        if headers.get("upgrade", "").lower() != "websocket":
            raise HandshakeError("missing/invalid Upgrade header: %r" % headers.get("upgrade"))
        if "upgrade" not in [v.strip().lower() for v in headers.get("connection", "").split(",")]:
            raise HandshakeError("Connection header lacks 'Upgrade': %r" % headers.get("connection"))
        if headers.get("sec-websocket-accept") != accept:
            raise HandshakeError("wrong Sec-WebSocket-Accept %r (expected %r)"
                                 % (headers.get("sec-websocket-accept"), accept))
        if "sec-websocket-extensions" in headers and self.offer:
            self.pmd = PerMessageDeflate(self.offer, headers["sec-websocket-extensions"])
        elif "sec-websocket-extensions" in headers:
            raise HandshakeError("server selected an extension we did not offer: %r"
                                 % headers["sec-websocket-extensions"])
        if "sec-websocket-protocol" in headers:
            raise HandshakeError("server selected a subprotocol we did not offer: %r"
                                 % headers["sec-websocket-protocol"])
        self.sock.setblocking(False)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    # -- raw I/O ------------------------------------------------------------

    def _recv_some(self):
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:            # ECONNRESET and friends
            self.eof = self.reset = True
            return
        if data:
            self.rx += data
        else:
            self.eof = True

    def _write(self, data):
        """Write all of `data`, reading whatever arrives meanwhile."""
        view = memoryview(data)
        while view:
            if self.eof or self.write_failed:
                return False
            left = self.remaining()
            if left <= 0:
                raise CaseTimeout()
            r, w, _ = select.select([self.sock], [self.sock], [], left)
            if r:
                self._recv_some()
            if w:
                try:
                    n = self.sock.send(view[:1 << 20])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    self.write_failed = True
                    return False
                view = view[n:]
        return True

    def pump(self, seconds):
        """Sleep for `seconds` while reading incoming data."""
        end = min(time.monotonic() + seconds, self.deadline)
        while not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self._recv_some()

    def send_raw(self, data, chop=None, delay=0.0):
        """Send bytes, optionally in TCP chops.  `chop` is an int (fixed chop
        size) or a list of sizes whose last entry repeats."""
        if not chop:
            self._write(data)
            return
        sizes = chop if isinstance(chop, (list, tuple)) else [chop]
        pos, i = 0, 0
        while pos < len(data):
            n = sizes[min(i, len(sizes) - 1)]
            if not self._write(data[pos:pos + n]):
                return
            pos, i = pos + n, i + 1
            if delay and pos < len(data):
                self.pump(delay)

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, chop=None, delay=0.0):
        if opcode == OP_CLOSE:
            self.close_sent = True
        self.send_raw(encode_frame(opcode, payload, fin, rsv), chop, delay)

    def send_frames(self, frames, mode="chop"):
        """Send (opcode, payload, fin, rsv) tuples.  Modes (Autobahn terms):
        'chop'  -- all frames in one TCP write ("sent in one chop")
        'frame' -- one write per frame with a pause ("frame-wise chops", slow)
        'octet' -- every octet in its own write ("octet-wise chops")"""
        if any(f[0] == OP_CLOSE for f in frames):
            self.close_sent = True
        if mode == "chop":
            self.send_raw(b"".join(encode_frame(*f) for f in frames))
        elif mode == "frame":
            for f in frames:
                self.send_raw(encode_frame(*f))
                self.pump(FRAMEWISE_PAUSE)
        elif mode == "octet":
            for f in frames:
                self.send_raw(encode_frame(*f), chop=1, delay=OCTETWISE_PAUSE)
        else:
            raise ValueError(mode)

    def send_message(self, opcode, payload):
        """One data message, compressed (RSV1) when permessage-deflate is on."""
        if self.pmd is None:
            self.send_frame(opcode, payload)
        else:
            self.send_frame(opcode, self.pmd.compress(payload), rsv=4)

    def send_close(self, code=None, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    # -- frame parsing and validation (RFC 6455 5.1-5.7, 7.4, 8.1) ------------

    def _parse_frame(self):
        rx = self.rx
        if len(rx) < 2:
            return None
        b0, b1 = rx[0], rx[1]
        length, pos = b1 & 0x7F, 2
        if length == 126:
            if len(rx) < 4:
                return None
            length, pos = struct.unpack_from("!H", rx, 2)[0], 4
            if length < 126:
                self.note_nonminimal(16, length)
        elif length == 127:
            if len(rx) < 10:
                return None
            length, pos = struct.unpack_from("!Q", rx, 2)[0], 10
            if length >> 63:
                self.violation("server frame length has the most significant bit set (RFC 6455 5.2)")
                length &= (1 << 63) - 1
            if length < 65536:
                self.note_nonminimal(64, length)
        key = None
        if b1 & 0x80:
            if len(rx) < pos + 4:
                return None
            key, pos = bytes(rx[pos:pos + 4]), pos + 4
        if len(rx) < pos + length:
            return None
        payload = bytes(rx[pos:pos + length])
        del rx[:pos + length]
        if key is not None:
            payload = mask_bytes(payload, key)
        return (b0 >> 7, (b0 >> 4) & 7, b0 & 0x0F, key is not None, payload)

    def _process(self, frame):
        """Validate one server frame; return an Event or None."""
        fin, rsv, op, masked, payload = frame
        if self.close_received is not None:
            self.violation("server sent a frame (opcode %d) after its close frame (RFC 6455 5.5.1)" % op)
            return None
        if masked:
            self.violation("server sent a masked frame (RFC 6455 5.1)")
        compressed = False
        if rsv == 4 and self.pmd is not None:
            if op >= 8 or op == OP_CONT:
                self.violation("server set RSV1 on a %s frame (RFC 7692 6.1)"
                               % ("control" if op >= 8 else "continuation"))
            compressed = op in (OP_TEXT, OP_BINARY)
        elif rsv:
            self.violation("server frame has RSV bits 0x%x set, no extension negotiated (RFC 6455 5.2)" % rsv)
        if op >= 8:
            if op not in (OP_CLOSE, OP_PING, OP_PONG):
                self.violation("server sent reserved control opcode %d (RFC 6455 5.2)" % op)
                return None
            if not fin:
                self.violation("server sent a fragmented control frame (RFC 6455 5.5)")
            if len(payload) > 125:
                self.violation("server control frame payload is %d > 125 bytes (RFC 6455 5.5)" % len(payload))
            if op == OP_CLOSE:
                return self._process_close(payload)
            if op == OP_PING:
                self.server_pings += 1
                if not self.close_sent and not self.mid_frame and not self.eof:
                    self.send_frame(OP_PONG, payload)
                return None
            return Event("pong", payload)
        if op not in (OP_CONT, OP_TEXT, OP_BINARY):
            self.violation("server sent reserved data opcode %d (RFC 6455 5.2)" % op)
            return None
        if op == OP_CONT:
            if self.frag_op is None:
                self.violation("server sent a continuation frame with no message in progress (RFC 6455 5.4)")
                return None
            self.frag_parts.append(payload)
        else:
            if self.frag_op is not None:
                self.violation("server started a new message inside a fragmented one (RFC 6455 5.4)")
            self.frag_op, self.frag_parts = op, [payload]
            self.frag_compressed = compressed
        if not fin:
            return None
        data = b"".join(self.frag_parts)
        if self.frag_compressed:
            try:
                data = self.pmd.decompress(data)
            except zlib.error as e:
                self.violation("server sent a compressed message that does not inflate with the "
                               "negotiated parameters (RFC 7692 7.2.2): %s" % e)
                data = b""
        kind = "text" if self.frag_op == OP_TEXT else "binary"
        self.frag_op, self.frag_parts = None, []
        if kind == "text" and not utf8_valid(data):
            self.violation("server sent a text message that is not valid UTF-8 (RFC 6455 8.1)")
        return Event(kind, data)

    def _process_close(self, payload):
        code, reason = None, b""
        if len(payload) == 1:
            self.violation("server close frame has a 1-byte payload (RFC 6455 5.5.1)")
        elif len(payload) >= 2:
            code, reason = struct.unpack("!H", payload[:2])[0], payload[2:]
            if not close_code_valid(code):
                self.violation("server sent invalid close code %d (RFC 6455 7.4)" % code)
            if not utf8_valid(reason):
                self.violation("server close reason is not valid UTF-8 (RFC 6455 5.5.1)")
        ev = Event("close", payload, code, reason)
        self.close_received = ev
        return ev

    def next_event(self, timeout=None):
        """Return the next Event, or None if nothing arrived within `timeout`
        seconds (or before the case deadline)."""
        end = self.deadline if timeout is None else min(self.deadline, time.monotonic() + timeout)
        while True:
            frame = self._parse_frame()
            if frame is not None:
                ev = self._process(frame)
                if ev is not None:
                    return ev
                continue
            if self.eof:
                if self.rx:
                    self.violation("server closed TCP in the middle of a frame")
                    self.rx.clear()
                return Event("eof", reset=self.reset)
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self._recv_some()


# --------------------------------------------------------------------------
# Judging helpers shared by the case templates
# --------------------------------------------------------------------------

def answer_close(conn, ev):
    """We received the server's close frame: reply (RFC 6455 5.5.1) unless we
    already sent one, echoing its status code.  Not possible while one of our
    frames is only partially written (fail-fast inside a frame)."""
    if conn.close_sent or conn.eof or conn.mid_frame:
        return
    conn.extend(LINGER_WAIT)
    if ev.code is None:
        conn.send_close()
    elif close_code_valid(ev.code):
        conn.send_close(ev.code)
    else:
        conn.send_close(1002)


def wait_tcp_close(conn, res):
    """After the close handshake the server should close TCP first (7.1.1);
    after failing the connection it must not wait for anything (7.1.7)."""
    conn.extend(LINGER_WAIT)
    end = time.monotonic() + LINGER_WAIT
    while True:
        ev = conn.next_event(timeout=max(end - time.monotonic(), 0))
        if ev is None:
            if conn.mid_frame:
                res.non_strict("server did not close TCP within %gs after failing the connection in "
                               "the middle of our frame (RFC 6455 7.1.7: no close reply can follow, "
                               "the server must close without waiting for one)" % LINGER_WAIT)
            else:
                res.non_strict("server did not close the TCP connection within %gs after the "
                               "closing handshake" % LINGER_WAIT)
            return
        if ev.kind == "eof":
            if ev.reset:
                res.details["tcp_reset"] = True
            return
        # frames after the server's close are flagged by Connection._process


def abort(conn):
    """Best-effort cleanup after a case already FAILED."""
    try:
        if not conn.eof and not conn.close_sent and not conn.mid_frame:
            conn.extend(1.0)
            conn.send_close(1000)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                ev = conn.next_event(timeout=end - time.monotonic())
                if ev is None or ev.kind == "eof":
                    break
    except (OSError, CaseTimeout):
        pass


def close_handshake(conn, res):
    """Normal end of a case: send close 1000, expect the close echo (nothing
    else), then expect the server to close TCP (RFC 6455 5.5.1, 7.1.1-7.1.3)."""
    conn.extend(CLOSE_WAIT + LINGER_WAIT)
    conn.send_close(1000)
    while True:
        ev = conn.next_event(timeout=CLOSE_WAIT)
        if ev is None:
            res.fail("no close frame in reply to our close (waited %gs)" % CLOSE_WAIT)
            return
        if ev.kind == "eof":
            res.non_strict("server closed TCP without answering our close frame")
            return
        if ev.kind == "close":
            res.close_code = ev.code
            if ev.code not in (None, 1000):
                res.non_strict("close reply carries code %d, expected 1000 (echo)" % ev.code)
            break
        res.fail("unexpected %s after all expected events" % ev)
    wait_tcp_close(conn, res)


def expect_events(conn, res, expected, coalesce_pongs=False, limit_ok=False):
    """Receive exactly `expected` (in order).  Returns True on success;
    otherwise the verdict is recorded and the connection cleaned up."""
    i = 0
    while i < len(expected):
        ev = conn.next_event()
        if ev is None:
            res.fail("timed out waiting for %s (%d of %d expected events received)"
                     % (expected[i], i, len(expected)))
            abort(conn)
            return False
        if ev.kind == "close":
            res.close_code = ev.code
            if limit_ok and ev.code == 1009:
                res.non_strict("server refused the large message with close 1009 (message too big)")
            else:
                res.fail("server closed the connection with %s instead of sending %s" % (ev, expected[i]))
            answer_close(conn, ev)
            wait_tcp_close(conn, res)
            return False
        if ev.kind == "eof":
            res.fail("server dropped the TCP connection while %s was expected" % expected[i])
            return False
        if ev == expected[i]:
            i += 1
            continue
        if coalesce_pongs and ev.kind == "pong":
            j = next((j for j in range(i + 1, len(expected)) if expected[j] == ev), None)
            if j is not None and all(e.kind == "pong" for e in expected[i:j]):
                res.non_strict("server answered only the most recent of several pings "
                               "(allowed by RFC 6455 5.5.3, not the strict behaviour)")
                i = j + 1
                continue
        res.fail(mismatch(expected[i], ev))
        abort(conn)
        return False
    return True


def expect_failure(conn, res, codes, pre=(), first=None):
    """The server must _Fail the WebSocket Connection_ (RFC 6455 7.1.7):
    optionally after the events in `pre` (echoes of valid messages sent
    before the bad frame), send a close frame with a code in `codes`, and
    close TCP.  No close frame (TCP dropped) or another failure code is
    NON-STRICT; answering the bad traffic or hanging is FAILED."""
    got = 0
    want = "/".join(str(c) for c in sorted(codes))
    while True:
        ev, first = (first or conn.next_event()), None
        if ev is None:
            res.fail("server did not fail the connection (no close %s within the case timeout)" % want)
            abort(conn)
            return
        if ev.kind in ("text", "binary", "pong"):
            if got < len(pre) and ev == pre[got]:
                got += 1
                continue
            res.fail("server processed/answered traffic it should have rejected: %s" % ev)
            abort(conn)
            return
        break
    if got < len(pre):
        res.non_strict("connection failed without the expected %s before it" % pre[got])
    if ev.kind == "eof":
        res.non_strict("server dropped TCP without a close frame (expected close %s)" % want)
        return
    res.close_code = ev.code
    if ev.code in codes:
        pass
    elif ev.code is None and conn.close_sent:
        res.fail("server answered our invalid close frame like a normal close (expected close %s)" % want)
    elif ev.code is None:
        res.non_strict("close frame without status code (expected %s)" % want)
    elif ev.code in FAIL_CODES:
        res.non_strict("close code %d, expected %s" % (ev.code, want))
    else:
        res.fail("wrong close code %d, expected %s" % (ev.code, want))
    answer_close(conn, ev)
    wait_tcp_close(conn, res)


# --------------------------------------------------------------------------
# Case templates.  Each returns a run(conn, res) function.
# --------------------------------------------------------------------------

def fr(op, payload=b"", fin=True, rsv=0):
    """A client frame description; sent masked."""
    return (op, payload, fin, rsv)


def send(frames, mode="chop"):
    """Step: send frames (see Connection.send_frames for modes)."""
    return lambda conn: conn.send_frames(frames, mode)


def send_chopped(frame, chop, delay=0.0):
    """Step: send one frame in TCP chops."""
    def step(conn):
        if frame[0] == OP_CLOSE:
            conn.close_sent = True
        conn.send_raw(encode_frame(*frame), chop, delay)
    return step


def pause(seconds):
    return lambda conn: conn.pump(seconds)


def echo_case(steps, expected, coalesce_pongs=False, timed=False, limit_ok=False):
    """Send `steps`, expect exactly `expected` back, then close normally."""
    return phased_echo_case([(steps, expected)], coalesce_pongs, timed, limit_ok)


def phased_echo_case(phases, coalesce_pongs=False, timed=False, limit_ok=False):
    def run(conn, res):
        t0 = time.monotonic()
        for steps, expected in phases:
            for step in steps:
                step(conn)
            if not expect_events(conn, res, expected, coalesce_pongs, limit_ok):
                return
        if timed:
            res.details["roundtrip_ms"] = round((time.monotonic() - t0) * 1000, 1)
        close_handshake(conn, res)
    return run


def fail_case(steps, codes=(1002,), pre=()):
    """Send `steps` containing a protocol violation; the connection must be failed."""
    def run(conn, res):
        for step in steps:
            step(conn)
        expect_failure(conn, res, set(codes), pre)
    return run


def client_close_case(steps, expected, informational=False):
    """`steps` include our close frame (possibly followed by more frames).
    The server must deliver exactly `expected` (echoes of what preceded the
    close), answer with a close 1000/empty, ignore anything after our close
    and close TCP."""
    def run(conn, res):
        for step in steps:
            step(conn)
        got = []
        while True:
            ev = conn.next_event(timeout=CLOSE_WAIT)
            if ev is None:
                res.fail("no close frame in reply to our close (waited %gs)" % CLOSE_WAIT)
                return
            if ev.kind == "eof":
                res.non_strict("server dropped TCP without answering our close frame")
                break
            if ev.kind == "close":
                res.close_code = ev.code
                if ev.code not in (None, 1000):
                    res.fail("close reply has code %d, expected 1000" % ev.code)
                break
            got.append(ev)
        n = 0
        while n < min(len(got), len(expected)) and got[n] == expected[n]:
            n += 1
        if n < len(got):
            res.fail("unexpected %s (frames after our close must be ignored)" % got[n]
                     if n >= len(expected) else mismatch(expected[n], got[n]))
        elif informational:
            if n == len(expected):
                res.informational("all messages sent before the close were echoed before the close reply")
            else:
                res.informational("close was processed before %d of %d messages were echoed"
                                  % (len(expected) - n, len(expected)))
        elif n < len(expected):
            res.fail("missing %s before the close reply" % expected[n])
        if ev.kind == "close":
            wait_tcp_close(conn, res)
    return run


def close_case(payload, policy, rsv=0):
    """Send one close frame with `payload` and judge the server's reply.
    policy: ('echo', codes)   -- clean close, reply code in codes (or empty)
            ('fail', codes)   -- connection must be failed with a code in codes
            ('either', codes) -- any code in codes is OK (1012-1014)
            ('undef', codes)  -- codes >= 5000: 1002 OK, echo NON-STRICT"""
    kind, codes = policy

    def run(conn, res):
        conn.send_frame(OP_CLOSE, payload, rsv=rsv)
        while True:
            ev = conn.next_event(timeout=CLOSE_WAIT)
            if ev is None:
                res.fail("no close frame in reply (waited %gs)" % CLOSE_WAIT)
                return
            if ev.kind == "eof":
                res.non_strict("server dropped TCP without a close frame")
                return
            if ev.kind == "close":
                break
            res.fail("unexpected %s after our close frame" % ev)
        res.close_code = c = ev.code
        want = "/".join(str(x) for x in sorted(x for x in codes if x is not None))
        if kind in ("echo", "either"):
            if c not in codes:
                res.fail("close reply has code %s, expected %s (or empty)" % (c, want))
        elif kind == "fail":
            if c in codes:
                pass
            elif c in FAIL_CODES:
                res.non_strict("close code %d, expected %s" % (c, want))
            else:
                res.fail("close reply has code %s, expected %s (connection must be failed)" % (c, want))
        elif kind == "undef":
            if c == 1002:
                pass
            elif c in FAIL_CODES:
                res.non_strict("close code %d, expected 1002" % c)
            else:
                res.non_strict("server accepted a close code >= 5000 (code %s in reply); RFC 6455 "
                               "defines no such codes, strict behaviour is close 1002" % c)
        wait_tcp_close(conn, res)
    return run


def failfast_case(parts, chops=False):
    """Autobahn 6.4.x fail-fast: an invalid UTF-8 text message is sent as
    parts (p1, p2, p3); p2 ends with (or is) the octet that makes it invalid.
    frames: p1 non-final text frame, wait, p2 non-final continuation, wait,
            p3 final continuation.
    chops:  one frame whose announced length covers everything; its bytes
            are written in three chops p1 | p2 | p3 with waits in between.
    The server must not react to p1 (valid so far) and must close 1007
    within FAILFAST_WAIT after p2 (OK); closing only after p3 is NON-STRICT."""
    p1, p2, p3 = parts

    def run(conn, res):
        if chops:
            whole = encode_frame(OP_TEXT, p1 + p2 + p3)
            hl = len(whole) - len(p1 + p2 + p3)
            pieces = [whole[:hl + len(p1)], whole[hl + len(p1):hl + len(p1) + len(p2)],
                      whole[hl + len(p1) + len(p2):]]
        else:
            pieces = [encode_frame(OP_TEXT, p1, fin=False),
                      encode_frame(OP_CONT, p2, fin=False),
                      encode_frame(OP_CONT, p3, fin=True)]
            if not p1:
                pieces[:2] = [b"", encode_frame(OP_TEXT, p2, fin=False)]
        conn.mid_frame = chops
        if pieces[0]:
            conn.send_raw(pieces[0])
            ev = conn.next_event(timeout=FAILFAST_WAIT)
            if ev is not None:
                res.fail("server reacted to the first part, which is valid UTF-8 so far: %s" % ev)
                if ev.kind == "close":
                    res.close_code = ev.code
                    answer_close(conn, ev)
                    wait_tcp_close(conn, res)
                return
        conn.send_raw(pieces[1])
        ev = conn.next_event(timeout=FAILFAST_WAIT)
        if ev is not None:      # (in chops mode our frame stays unfinished)
            expect_failure(conn, res, {1007}, first=ev)
            return
        conn.send_raw(pieces[2])
        conn.mid_frame = False
        expect_failure(conn, res, {1007})
        if not res.failed:
            res.non_strict("not fail-fast: connection failed only after the rest of the message "
                           "(expected close 1007 within %gs of the invalid octet)" % FAILFAST_WAIT)
    return run


# --------------------------------------------------------------------------
# UTF-8 test vectors (Markus Kuhn's UTF-8-test.txt, as used by Autobahn 6.5-6.23)
# --------------------------------------------------------------------------

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"       # "kosme" in Greek


def utf8_test_sequences():
    """[(title, [payload, ...]), ...] in Autobahn's order; validity is
    computed by utf8_error_index (and cross-checked against Python)."""
    s = []
    s.append(("Some valid UTF-8 sequences",
              [b"hello\x24world", b"hello\xc2\xa2world", b"hello\xe2\x82\xacworld",
               b"hello\xf0\xa4\xad\xa2world", KOSME]))
    s.append(("All prefixes of a valid UTF-8 string that contains multi-byte code points",
              [KOSME[:i] for i in range(1, len(KOSME) + 1)]))
    s.append(("First possible sequence of a certain length",
              [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"]))
    s.append(("First possible sequence length 5/6 (invalid codepoints)",
              [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]))
    s.append(("Last possible sequence of a certain length",
              [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"]))
    s.append(("Last possible sequence length 4/5/6 (invalid codepoints)",
              [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"]))
    s.append(("Other boundary conditions",
              [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf",
               b"\xf4\x90\x80\x80"]))
    s.append(("Unexpected continuation bytes",
              [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
               b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xbf))]))
    s.append(("Lonely start characters",
              [b"".join(bytes([i, 0x20]) for i in range(a, b))
               for a, b in [(0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd)]]))
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
               b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    s.append(("Sequences with last continuation byte missing", missing))
    s.append(("Concatenation of incomplete sequences", [b"".join(missing)]))
    s.append(("Impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]))
    s.append(("Examples of an overlong ASCII character",
              [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",
               b"\xfc\x80\x80\x80\x80\xaf"]))
    s.append(("Maximum overlong sequences",
              [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf",
               b"\xfc\x83\xbf\xbf\xbf\xbf"]))
    s.append(("Overlong representation of the NUL character",
              [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80",
               b"\xfc\x80\x80\x80\x80\x80"]))
    s.append(("Single UTF-16 surrogates",
              [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
               b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]))
    s.append(("Paired UTF-16 surrogates",
              [a + b for a in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf")
               for b in (b"\xed\xb0\x80", b"\xed\xbf\xbf")]))
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in (0xf0, 0xf1, 0xf2, 0xf3, 0xf4):
        for z2 in (0x8f, 0x9f, 0xaf, 0xbf):
            if z1 == 0xf4 and z2 != 0x8f:
                continue                        # would be > U+10FFFF
            for z3 in (0xbe, 0xbf):
                zz = bytes([z1, z2, 0xbf, z3])
                if zz not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):   # overlong
                    nonchars.append(zz)
    s.append(("Non-character code points (valid UTF-8)", nonchars))
    s.append(("Unicode specials (i.e. replacement char)",
              [b"\xef\xbf\xb9", b"\xef\xbf\xba", b"\xef\xbf\xbb", b"\xef\xbf\xbc",
               b"\xef\xbf\xbd", b"\xef\xbf\xbe", b"\xef\xbf\xbf"]))
    for _, vectors in s:                        # cross-check our validator
        for v in vectors:
            assert utf8_valid(v) == (utf8_error_index(v) is None), v
    return s


# --------------------------------------------------------------------------
# The case table
# --------------------------------------------------------------------------

class Case:
    __slots__ = ("id", "desc", "run", "perf", "big", "key", "offer")

    def __init__(self, cid, desc, run, perf=False, big=False, offer=None):
        self.id, self.desc, self.run, self.perf, self.big = cid, desc, run, perf, big
        self.offer = offer
        self.key = tuple(int(x) for x in cid.split("."))


def text_pattern(n):
    return (b"BAsd7&jh23" * (n // 10 + 1))[:n]


def binary_pattern(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


FRAMEWISE_HOW = (", sent frame-wise with %d ms pauses (approximates Autobahn's frame-wise chops)"
                 % (FRAMEWISE_PAUSE * 1000))


def cat1(add):
    """1.x Framing (RFC 6455 5.2, 5.6): text and binary messages with payload
    lengths at the 7-bit/16-bit/64-bit length-encoding boundaries, sent in one
    write and in TCP chops; the echo must be byte-identical, same opcode."""
    lengths = [0, 125, 126, 127, 128, 65535, 65536]
    for sub, op, name, fill in [(1, OP_TEXT, "text", b"*"), (2, OP_BINARY, "binary", b"\xfe")]:
        for i, n in enumerate(lengths, 1):
            p = fill * n
            add("1.%d.%d" % (sub, i), "Send %s message with payload length %d" % (name, n),
                echo_case([send([fr(op, p)])], [echo_of(op, p)]))
        p = fill * 65536
        add("1.%d.8" % sub, "Send %s message with payload length 65536, sent in chops of 997 octets" % name,
            echo_case([send_chopped(fr(op, p), 997)], [echo_of(op, p)]))
        pat = text_pattern if op == OP_TEXT else binary_pattern
        for i, n in enumerate(lengths, 1):
            p = pat(n)
            add("1.%d.%d.1" % (sub, i),
                "[ext] Like 1.%d.%d (patterned payload): the first 16 octets of the frame are written "
                "one by one (header split across reads), the rest in 997-octet chops" % (sub, i),
                echo_case([send_chopped(fr(op, p), [1] * 16 + [997], OCTETWISE_PAUSE)], [echo_of(op, p)]))


def cat2(add):
    """2.x Pings and pongs (RFC 6455 5.5.2, 5.5.3): every ping is answered by
    a pong with identical payload; control payloads > 125 fail the connection
    (5.5); unsolicited pongs are ignored."""
    bin8 = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    unsolicited = b"unsolicited pong payload"
    add("2.1", "Send ping without payload", echo_case([send([fr(OP_PING)])], [PONG()]))
    add("2.2", "Send ping with small text payload",
        echo_case([send([fr(OP_PING, b"Hello, world!")])], [PONG(b"Hello, world!")]))
    add("2.3", "Send ping with small binary (non UTF-8) payload",
        echo_case([send([fr(OP_PING, bin8)])], [PONG(bin8)]))
    add("2.4", "Send ping with binary payload of 125 octets",
        echo_case([send([fr(OP_PING, b"\xfe" * 125)])], [PONG(b"\xfe" * 125)]))
    add("2.5", "Send ping with binary payload of 126 octets (control frame too long) -> fail 1002",
        fail_case([send([fr(OP_PING, b"\xfe" * 126)])]))
    add("2.6", "Send ping with binary payload of 125 octets, sent in octet-wise chops",
        echo_case([send([fr(OP_PING, b"\xfe" * 125)], "octet")], [PONG(b"\xfe" * 125)]))
    add("2.7", "Send unsolicited pong without payload -> ignored", echo_case([send([fr(OP_PONG)])], []))
    add("2.8", "Send unsolicited pong with payload -> ignored",
        echo_case([send([fr(OP_PONG, unsolicited)])], []))
    add("2.9", "Send unsolicited pong with payload, then ping with payload -> only the pong for the ping",
        echo_case([send([fr(OP_PONG, unsolicited), fr(OP_PING, b"ping payload")])],
                  [PONG(b"ping payload")]))
    pings = [b"payload-%d" % i for i in range(10)]
    add("2.10", "Send 10 pings in a row -> 10 pongs in order (answering only the last is NON-STRICT)",
        echo_case([send([fr(OP_PING, p) for p in pings])], [PONG(p) for p in pings], coalesce_pongs=True))
    add("2.11", "Send 10 pings in a row, sent slowly in octet-wise chops -> 10 pongs",
        echo_case([send([fr(OP_PING, p) for p in pings], "octet")], [PONG(p) for p in pings],
                  coalesce_pongs=True))
    add("2.4.1", "[ext] Send pings with every payload length 0..125 (one at a time, each answered)",
        phased_echo_case([([send([fr(OP_PING, binary_pattern(n))])], [PONG(binary_pattern(n))])
                          for n in range(126)]))


def cat3(add):
    """3.x Reserved bits (RFC 6455 5.2): RSV1-3 MUST be 0 unless an extension
    defines them; otherwise the connection must be failed (1002)."""
    hello = b"Hello, world!"
    add("3.1", "Send small text message with RSV = 1 -> fail 1002",
        fail_case([send([fr(OP_TEXT, hello, rsv=1)])]))
    for cid, rsv, mode, how in [("3.2", 2, "chop", ""), ("3.3", 3, "frame", FRAMEWISE_HOW),
                                ("3.4", 4, "octet", ", sent in octet-wise chops")]:
        add(cid, "Send small text message, then again with RSV = %d, then ping%s -> echo of the first, "
                 "then fail 1002 (no pong)" % (rsv, how),
            fail_case([send([fr(OP_TEXT, hello), fr(OP_TEXT, hello, rsv=rsv), fr(OP_PING)], mode)],
                      pre=[TXT(hello)]))
    add("3.5", "Send small binary message with RSV = 5 -> fail 1002",
        fail_case([send([fr(OP_BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)])]))
    add("3.6", "Send ping with payload and RSV = 6 -> fail 1002 (no pong)",
        fail_case([send([fr(OP_PING, hello, rsv=6)])]))
    add("3.7", "Send close with RSV = 7 -> fail 1002",
        fail_case([send([fr(OP_CLOSE, rsv=7)])]))
    add("3.8", "[ext] Send fragmented text message with RSV = 1 only on the continuation frame -> fail 1002",
        fail_case([send([fr(OP_TEXT, b"fragment1", fin=False), fr(OP_CONT, b"fragment2", rsv=1)])]))
    add("3.9", "[ext] Send unsolicited pong with RSV = 2 -> fail 1002",
        fail_case([send([fr(OP_PONG, hello, rsv=2)])]))


def cat4(add):
    """4.x Opcodes (RFC 6455 5.2): reserved non-control (3-7) and control
    (11-15) opcodes must fail the connection (1002), whether they come alone
    or after a valid message (whose echo must still arrive)."""
    hello, junk = b"Hello, world!", b"reserved opcode payload"
    for sub, ops, kind in [(1, [3, 4, 5, 6, 7], "non-control"), (2, [11, 12, 13, 14, 15], "control")]:
        for i, op in enumerate(ops, 1):
            payload = b"" if i in (1, 3) else junk
            pl = "non-empty payload" if payload else "no payload"
            alone = fail_case([send([fr(op, payload)])])
            after = fail_case([send([fr(OP_TEXT, hello), fr(op, payload), fr(OP_PING)])], pre=[TXT(hello)])
            d_alone = "Send frame with reserved %s opcode %d and %s -> fail 1002" % (kind, op, pl)
            d_after = ("Send small text message, then frame with reserved %s opcode %d and %s, then ping "
                       "-> echo, then fail 1002 (no pong)" % (kind, op, pl))
            if i <= 2:     # Autobahn: 4.x.1/4.x.2 alone, 4.x.3-4.x.5 after a valid message
                add("4.%d.%d" % (sub, i), d_alone, alone)
                add("4.%d.%d.1" % (sub, i), "[ext] " + d_after, after)
            else:
                add("4.%d.%d" % (sub, i), d_after, after)
                add("4.%d.%d.1" % (sub, i), "[ext] " + d_alone, alone)


def cat5(add):
    """5.x Fragmentation (RFC 6455 5.4, 5.5): control frames must not be
    fragmented, may be interleaved inside a fragmented message; continuation
    frames need a message in progress; a new data frame may not start inside
    a fragmented message."""
    f1, f2 = b"fragment1", b"fragment2"
    add("5.1", "Send ping fragmented into 2 fragments -> fail 1002",
        fail_case([send([fr(OP_PING, f1, fin=False), fr(OP_CONT, f2)])]))
    add("5.2", "Send pong fragmented into 2 fragments -> fail 1002",
        fail_case([send([fr(OP_PONG, f1, fin=False), fr(OP_CONT, f2)])]))
    modes = [("chop", ""), ("frame", FRAMEWISE_HOW), ("octet", ", sent in octet-wise chops")]
    two = [fr(OP_TEXT, f1, fin=False), fr(OP_CONT, f2)]
    for k, (mode, how) in enumerate(modes):
        add("5.%d" % (3 + k), "Send text message fragmented into 2 fragments%s" % how,
            echo_case([send(two, mode)], [TXT(f1 + f2)]))
    withping = [fr(OP_TEXT, f1, fin=False), fr(OP_PING, b"ping payload"), fr(OP_CONT, f2)]
    for k, (mode, how) in enumerate(modes):
        add("5.%d" % (6 + k), "Send text message in 2 fragments with a ping in between%s -> pong, echo" % how,
            echo_case([send(withping, mode)], [PONG(b"ping payload"), TXT(f1 + f2)]))
    for base, fin in [(9, True), (12, False)]:
        frames = [fr(OP_CONT, b"non-continuation payload", fin=fin), fr(OP_TEXT, b"Hello, world!")]
        for k, (mode, how) in enumerate(modes):
            add("5.%d" % (base + k), "Send continuation frame with FIN = %s where there is nothing to "
                "continue, then text message%s -> fail 1002" % (str(fin).lower(), how or ", in one chop"),
                fail_case([send(frames, mode)]))
    add("5.15", "Send text message in 2 fragments, then continuation frame with FIN = false where there is "
                "nothing to continue, then text message -> echo of the first, then fail 1002",
        fail_case([send([fr(OP_TEXT, f1, fin=False), fr(OP_CONT, f2), fr(OP_CONT, b"fragment3", fin=False),
                         fr(OP_TEXT, b"fragment4")])], pre=[TXT(f1 + f2)]))
    for cid, fin in [("5.16", False), ("5.17", True)]:
        frames = [fr(OP_CONT, f1, fin=fin), fr(OP_TEXT, f2, fin=False), fr(OP_CONT, b"fragment3")] * 2
        add(cid, "Repeated 2x: continuation frame with FIN = %s (nothing to continue), then text message in "
                 "2 fragments -> fail 1002" % str(fin).lower(), fail_case([send(frames)]))
    add("5.18", "Send text message in 2 fragments with both frame opcodes set to text -> fail 1002",
        fail_case([send([fr(OP_TEXT, f1, fin=False), fr(OP_TEXT, f2)])]))
    frags = [b"fragment%d" % i for i in range(1, 6)]
    pongs = [b"pongme 1!", b"pongme 2!"]
    for cid, mode, how in [("5.19", "chop", ""), ("5.20", "frame", "; every frame written separately "
                                                                   "(approximates Autobahn's sync=True)")]:
        add(cid, "Fragmented text message in 5 frames: 2 fragments, ping, wait 1 s, 2 fragments, ping, "
                 "final fragment%s -> 2 pongs, then the echo" % how,
            echo_case([send([fr(OP_TEXT, frags[0], fin=False), fr(OP_CONT, frags[1], fin=False),
                             fr(OP_PING, pongs[0])], mode),
                       pause(1.0),
                       send([fr(OP_CONT, frags[2], fin=False), fr(OP_CONT, frags[3], fin=False),
                             fr(OP_PING, pongs[1]), fr(OP_CONT, frags[4])], mode)],
                      [PONG(pongs[0]), PONG(pongs[1]), TXT(b"".join(frags))]))


def octet_frames(payload):
    """A text message with one octet per frame (an empty final frame for
    1-octet payloads so that it is really fragmented)."""
    if len(payload) <= 1:
        return [fr(OP_TEXT, payload, fin=False), fr(OP_CONT, b"")]
    return ([fr(OP_TEXT, payload[:1], fin=False)]
            + [fr(OP_CONT, payload[i:i + 1], fin=False) for i in range(1, len(payload) - 1)]
            + [fr(OP_CONT, payload[-1:])])


def cat6(add):
    """6.x UTF-8 handling (RFC 6455 5.6, 8.1): text messages must be valid
    UTF-8 (RFC 3629) as a whole -- fragment boundaries may split code points;
    invalid text must fail the connection with 1007, preferably as soon as
    the invalid octet is seen (fail-fast, Autobahn 6.4.x)."""
    add("6.1.1", "Send text message of length 0", echo_case([send([fr(OP_TEXT)])], [TXT(b"")]))
    add("6.1.2", "Send fragmented text message, 3 fragments each of length 0",
        echo_case([send([fr(OP_TEXT, fin=False), fr(OP_CONT, fin=False), fr(OP_CONT)])], [TXT(b"")]))
    mid = b"middle frame payload"
    add("6.1.3", "Send fragmented text message, 3 fragments, first and last of length 0",
        echo_case([send([fr(OP_TEXT, fin=False), fr(OP_CONT, mid, fin=False), fr(OP_CONT)])], [TXT(mid)]))
    hello = "Hello-µ@ßöäüàá-UTF-8!!".encode()
    p1, p2 = "Hello-µ@ßöä".encode(), "üàá-UTF-8!!".encode()
    add("6.2.1", "Send valid UTF-8 text message in one fragment",
        echo_case([send([fr(OP_TEXT, hello)])], [TXT(hello)]))
    add("6.2.2", "Send valid UTF-8 text message in 2 fragments, split on a code point boundary",
        echo_case([send([fr(OP_TEXT, p1, fin=False), fr(OP_CONT, p2)])], [TXT(hello)]))
    add("6.2.3", "Send valid UTF-8 text message in fragments of 1 octet",
        echo_case([send(octet_frames(hello))], [TXT(hello)]))
    add("6.2.4", "Send valid UTF-8 text message (kosme) in fragments of 1 octet (splitting code points)",
        echo_case([send(octet_frames(KOSME))], [TXT(KOSME)]))
    bad = KOSME + b"\xed\xa0\x80" + b"edited"
    add("6.3.1", "Send invalid UTF-8 text message (surrogate) in one fragment -> fail 1007",
        fail_case([send([fr(OP_TEXT, bad)])], codes=(1007,)))
    add("6.3.2", "Send invalid UTF-8 text message in fragments of 1 octet -> fail 1007",
        fail_case([send(octet_frames(bad))], codes=(1007,)))
    ff = KOSME + b"\xf4\x90\x80\x80" + b"edited"        # invalid at octet 12 (0x90 > U+10FFFF)
    add("6.4.1", "Fail-fast: invalid text in 3 frames: valid part, wait 1 s, frame with the invalid "
                 "code point, wait 1 s, rest -> close 1007 before the rest (after it: NON-STRICT)",
        failfast_case((KOSME, b"\xf4\x90\x80\x80", b"edited")))
    add("6.4.2", "Fail-fast: like 6.4.1 but the 2nd frame ends exactly at the octet making the text invalid",
        failfast_case((ff[:12], ff[12:13], ff[13:])))
    add("6.4.3", "Fail-fast: like 6.4.1 but 3 chops of one single frame",
        failfast_case((KOSME, b"\xf4\x90\x80\x80", b"edited"), chops=True))
    add("6.4.4", "Fail-fast: like 6.4.2 but 3 chops of one single frame",
        failfast_case((ff[:12], ff[12:13], ff[13:]), chops=True))

    for n, (title, vectors) in enumerate(utf8_test_sequences(), 5):
        for m, v in enumerate(vectors, 1):
            cid = "6.%d.%d" % (n, m)
            err = utf8_error_index(v)
            hexv = v.hex() if len(v) <= 32 else v[:32].hex() + "..."
            if err is None:
                add(cid, "%s: valid UTF-8 0x%s in one frame -> echo" % (title, hexv),
                    echo_case([send([fr(OP_TEXT, v)])], [TXT(v)]))
                add(cid + ".1", "[ext] %s: valid UTF-8 0x%s in 1-octet fragments -> echo" % (title, hexv),
                    echo_case([send(octet_frames(v))], [TXT(v)]))
                continue
            add(cid, "%s: invalid UTF-8 0x%s in one frame -> fail 1007" % (title, hexv),
                fail_case([send([fr(OP_TEXT, v)])], codes=(1007,)))
            add(cid + ".1", "[ext] %s: invalid UTF-8 0x%s in 1-octet fragments -> fail 1007" % (title, hexv),
                fail_case([send(octet_frames(v))], codes=(1007,)))
            if err < len(v):
                add(cid + ".2", "[ext] Fail-fast (like 6.4.2): %s: 0x%s up to and including the invalid "
                    "octet #%d in a non-final frame, wait 1 s, then the rest -> close 1007 before the rest"
                    % (title, hexv, err), failfast_case((b"", v[:err + 1], v[err + 1:])))


def cat7(add):
    """7.x Close handling (RFC 6455 5.5.1, 7.1-7.4): the server answers a
    close with a close (echoing the code), sends nothing after it, ignores
    frames after our close, closes TCP; invalid close payloads (1-byte,
    > 125 bytes, invalid codes, invalid UTF-8 reason) fail the connection."""
    hello = b"Hello World!"
    close1000 = fr(OP_CLOSE, close_payload(1000))
    add("7.1.1", "Send a message, then (after its echo) a close frame -> echo, then clean close",
        echo_case([send([fr(OP_TEXT, hello)])], [TXT(hello)]))
    add("7.1.1.1", "[ext] Send a message and a close frame back to back -> INFORMATIONAL (whether the "
                   "echo precedes the close reply is implementation defined, as in 7.1.6)",
        client_close_case([send([fr(OP_TEXT, hello), close1000])], [TXT(hello)], informational=True))
    add("7.1.2", "Send two close frames -> one close reply, second close ignored",
        client_close_case([send([close1000, close1000])], []))
    add("7.1.3", "Send a ping after the close frame -> no pong",
        client_close_case([send([close1000, fr(OP_PING, hello)])], []))
    add("7.1.4", "Send a text message after the close frame -> no echo",
        client_close_case([send([close1000, fr(OP_TEXT, hello)])], []))
    add("7.1.5", "Send message fragment 1, then close, then fragment 2 -> no echo, clean close",
        client_close_case([send([fr(OP_TEXT, b"fragment1", fin=False), close1000, fr(OP_CONT, b"fragment2")])],
                          []))
    big = text_pattern(256 * 1024)
    add("7.1.6", "Send 256 KiB message, a small message, then close, then ping -> INFORMATIONAL "
                 "(whether the echoes precede the close reply is implementation defined)",
        client_close_case([send([fr(OP_TEXT, big), fr(OP_TEXT, hello), close1000, fr(OP_PING)])],
                          [TXT(big), TXT(hello)], informational=True))
    echo = lambda code: ("echo", {None, 1000, code})
    add("7.3.1", "Send close with payload length 0 -> close reply (empty or 1000)",
        close_case(b"", ("echo", {None, 1000})))
    add("7.3.2", "Send close with payload length 1 -> fail 1002", close_case(b"a", ("fail", {1002})))
    add("7.3.3", "Send close with code 1000 and no reason -> close reply",
        close_case(close_payload(1000), echo(1000)))
    add("7.3.4", "Send close with code 1000 and reason 'Hello World!' -> close reply",
        close_case(close_payload(1000, hello), echo(1000)))
    add("7.3.5", "Send close with code 1000 and 123-octet reason (payload 125) -> close reply",
        close_case(close_payload(1000, b"*" * 123), echo(1000)))
    add("7.3.6", "Send close with code 1000 and 124-octet reason (payload 126 > 125) -> fail 1002",
        close_case(close_payload(1000, b"*" * 124), ("fail", {1002})))
    add("7.5.1", "Send close with invalid UTF-8 reason -> fail 1007",
        close_case(close_payload(1000, KOSME + b"\xed\xa0\x80edited"), ("fail", {1007})))
    for i, code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999], 1):
        add("7.7.%d" % i, "Send close with valid code %d -> close reply (code echoed or 1000)" % code,
            close_case(close_payload(code), echo(code)))
    for i, code in enumerate([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015], 1):
        ext = "[ext] " if i > 9 else ""
        add("7.9.%d" % i, "%sSend close with invalid code %d -> fail 1002" % (ext, code),
            close_case(close_payload(code), ("fail", {1002})))
    for i, code in enumerate([1012, 1013, 1014], 11):
        add("7.9.%d" % i, "[ext] Send close with code %d (valid per IANA, not in RFC 6455) -> close reply "
                          "with %d/1000 or fail 1002, both OK" % (code, code),
            close_case(close_payload(code), ("either", {None, 1000, code, 1002})))
    for i, code in enumerate([5000, 65535], 1):
        add("7.13.%d" % i, "Send close with code %d (undefined by RFC 6455) -> fail 1002; echoing it is "
                           "NON-STRICT (Autobahn: informational)" % code,
            close_case(close_payload(code), ("undef", {1002})))


def cat9(add):
    """9.x Limits and performance (RFC 6455 5.2, 5.4): large messages, many
    small fragments, tiny TCP chops, many messages back to back.  Durations
    are recorded (roundtrip_ms in the JSON report)."""
    KiB, MiB = 1024, 1024 * 1024
    for sub, op, name, pat in [(1, OP_TEXT, "text", text_pattern), (2, OP_BINARY, "binary", binary_pattern)]:
        for i, (n, label) in enumerate([(64 * KiB, "64 KiB"), (256 * KiB, "256 KiB"), (MiB, "1 MiB"),
                                        (4 * MiB, "4 MiB"), (8 * MiB, "8 MiB"), (16 * MiB, "16 MiB")], 1):
            p = pat(n)
            add("9.%d.%d" % (sub, i), "Send %s message of %s" % (name, label),
                echo_case([send([fr(op, p)])], [echo_of(op, p)], timed=True, limit_ok=True),
                perf=True, big=n >= 8 * MiB)
    for sub, op, name, pat in [(3, OP_TEXT, "text", text_pattern), (4, OP_BINARY, "binary", binary_pattern)]:
        p = pat(4 * MiB)
        for i, size in enumerate([64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB], 1):
            frames = [fr(op if k == 0 else OP_CONT, p[k:k + size], fin=k + size >= len(p))
                      for k in range(0, len(p), size)]
            add("9.%d.%d" % (sub, i), "Send fragmented %s message of 4 MiB in frames of %d octets"
                % (name, size),
                echo_case([send(frames)], [echo_of(op, p)], timed=True, limit_ok=True), perf=True)
    for sub, op, name, pat in [(5, OP_TEXT, "text", text_pattern), (6, OP_BINARY, "binary", binary_pattern)]:
        p = pat(MiB)
        for i, chop in enumerate([64, 128, 256, 512, 1024, 2048, 4096], 1):
            ext = "[ext] " if i == 7 else ""
            add("9.%d.%d" % (sub, i), "%sSend %s message of 1 MiB in TCP chops of %d octets"
                % (ext, name, chop),
                echo_case([send_chopped(fr(op, p), chop)], [echo_of(op, p)], timed=True, limit_ok=True),
                perf=True)
    for sub, op, name, pat in [(7, OP_TEXT, "text", text_pattern), (8, OP_BINARY, "binary", binary_pattern)]:
        for i, n in enumerate([0, 16, 64, 256, 1024, 4096], 1):
            p = pat(n)
            add("9.%d.%d" % (sub, i), "Send 1000 %s messages of %d octets back to back, then receive all "
                "echoes (approximates Autobahn's RTT measurement: no waiting between messages)" % (name, n),
                echo_case([send([fr(op, p)] * 1000)], [echo_of(op, p)] * 1000, timed=True), perf=True)


def cat10(add):
    """10.x Auto-fragmentation (RFC 6455 5.4): a 64 KiB message as 1300-octet
    frames (Autobahn 10.1.1) and as 1300-octet TCP chops of one frame."""
    p = b"*" * 65536
    frames = lambda op, data: [fr(op if k == 0 else OP_CONT, data[k:k + 1300], fin=k + 1300 >= len(data))
                               for k in range(0, len(data), 1300)]
    add("10.1.1", "Send text message of 65536 octets fragmented into frames of 1300 octets",
        echo_case([send(frames(OP_TEXT, p))], [TXT(p)], timed=True))
    add("10.1.2", "[ext] Send text message of 65536 octets as one frame written in TCP chops of 1300 octets",
        echo_case([send_chopped(fr(OP_TEXT, p), 1300)], [TXT(p)], timed=True))
    b = binary_pattern(65536)
    add("10.1.3", "[ext] Send binary message of 65536 octets fragmented into frames of 1300 octets",
        echo_case([send(frames(OP_BINARY, b))], [BIN(b)], timed=True))


# --------------------------------------------------------------------------
# permessage-deflate (RFC 7692), client side, for categories 12-14
# --------------------------------------------------------------------------

PMD_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
              "server_max_window_bits", "client_max_window_bits")
PMD_TAIL = b"\x00\x00\xff\xff"


def pmd_offer_header(offers):
    """Sec-WebSocket-Extensions for `offers`: a list of dicts mapping a
    parameter to True (no value) or a window size."""
    if not offers:
        return ""
    text = []
    for o in offers:
        text.append("; ".join(["permessage-deflate"]
                              + [k if v is True else "%s=%d" % (k, v) for k, v in o.items()]))
    return "Sec-WebSocket-Extensions: %s\r\n" % ", ".join(text)


def pmd_parse_response(value):
    """The server's one permessage-deflate response as a dict, or raise."""
    parts = [p.strip() for p in value.split(";")]
    if "," in value or parts[0].lower() != "permessage-deflate":
        raise HandshakeError("server response is not one permessage-deflate: %r" % value)
    params = {}
    for p in parts[1:]:
        name, eq, v = (x.strip() for x in p.partition("="))
        v = v.strip('"')
        if name not in PMD_PARAMS or name in params:
            raise HandshakeError("unknown or duplicate parameter %r in %r (RFC 7692 5)" % (name, value))
        if name.endswith("context_takeover"):
            if eq:
                raise HandshakeError("%s with a value in %r (RFC 7692 7.1.1)" % (name, value))
            params[name] = True
        else:
            if not re.match(r"^(8|9|1[0-5])$", v):
                raise HandshakeError("invalid %s value in %r (RFC 7692 7.1.2)" % (name, value))
            params[name] = int(v)
    return params


def pmd_matches(offer, params):
    """Is the response `params` a valid acceptance of `offer`?"""
    smwb = params.get("server_max_window_bits")
    if "server_max_window_bits" in offer and (smwb is None or smwb > offer["server_max_window_bits"]):
        return False            # RFC 7692 7.1.2.1
    cmwb = params.get("client_max_window_bits")
    if cmwb is not None:
        if "client_max_window_bits" not in offer:
            return False        # RFC 7692 7.1.2.2
        if offer["client_max_window_bits"] is not True and cmwb > offer["client_max_window_bits"]:
            return False
    if "server_no_context_takeover" in offer and "server_no_context_takeover" not in params:
        return False            # RFC 7692 7.1.1.1
    return True


class PerMessageDeflate:
    """The negotiated extension: our compressor and the server's inflater.
    Uses context takeover whenever allowed, so a server that resets its
    inflater when it should not is caught; checks the server honours its
    window and no-context-takeover promise by inflating with exactly that."""

    def __init__(self, offers, response):
        self.response = response
        self.params = pmd_parse_response(response)
        if not any(pmd_matches(o, self.params) for o in offers):
            raise HandshakeError("response %r accepts none of our offers (RFC 7692 5)" % response)
        self.offer = next(o for o in offers if pmd_matches(o, self.params))
        self.server_bits = self.params.get("server_max_window_bits", 15)
        self.client_bits = self.params.get("client_max_window_bits", 15)
        if self.offer.get("client_max_window_bits") not in (None, True):
            self.client_bits = min(self.client_bits, self.offer["client_max_window_bits"])
        self.server_reset = "server_no_context_takeover" in self.params
        self.client_reset = ("client_no_context_takeover" in self.params
                             or "client_no_context_takeover" in self.offer)
        self.comp = self.decomp = None

    def _compressor(self):
        # zlib cannot make an 8-bit window: Huffman-only output has no
        # back-references at all, so it is valid under any window.
        if self.client_bits == 8:
            return zlib.compressobj(6, zlib.DEFLATED, -9, 8, zlib.Z_HUFFMAN_ONLY)
        return zlib.compressobj(6, zlib.DEFLATED, -self.client_bits)

    def compress(self, data):
        if self.comp is None or self.client_reset:
            self.comp = self._compressor()
        out = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(PMD_TAIL)
        return out[:-4]

    def decompress(self, data):
        if self.decomp is None or self.server_reset:
            self.decomp = zlib.decompressobj(-self.server_bits)
        return self.decomp.decompress(data + PMD_TAIL)


def send_pmd(messages):
    """Step: send (opcode, payload) messages, each compressed, in one write."""
    def step(conn):
        conn.send_raw(b"".join(encode_frame(op, conn.pmd.compress(p), rsv=4) for op, p in messages))
    return step


PMD_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]


def pmd_count(n):
    """Autobahn sends 1000 messages per case; fewer when big, so that what
    is in flight (512 KiB) stays under a server's default send buffer."""
    return max(4, min(1000, (512 << 10) // n))


def chat_pattern(n):
    line = b'{"type":"message","room":"lobby","from":"user-42","text":"see you at 10, ok?"}\n'
    return (line * (n // len(line) + 1))[:n]


def lorem_pattern(n):
    words = (b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
             b"incididunt ut labore et dolore magna aliqua ").split()
    import random
    rnd = random.Random(n)
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(words) + b" "
    return bytes(out[:n])


def random_pattern(n):
    import random
    return random.Random(n).randbytes(n)


def pmd_echo_case(op, payload, count):
    msgs = [(op, payload)] * count
    return echo_case([send_pmd(msgs)], [echo_of(op, payload)] * count)


def cat12(add):
    """12.x Compression, different payloads (Autobahn 12.1-12.5): messages of
    16 B to 128 KiB offered with a plain permessage-deflate offer, each sent
    compressed with context takeover, echoed byte-identical."""
    kinds = [(1, OP_TEXT, "artificial text", text_pattern),
             (2, OP_BINARY, "binary pattern", binary_pattern),
             (3, OP_TEXT, "JSON chat", chat_pattern),
             (4, OP_TEXT, "lorem ipsum", lorem_pattern),
             (5, OP_BINARY, "random (incompressible)", random_pattern)]
    for sub, op, name, pat in kinds:
        for i, n in enumerate(PMD_SIZES, 1):
            c = pmd_count(n)
            add("12.%d.%d" % (sub, i), "permessage-deflate: send %d compressed %s messages of %d "
                "octets, expect the echoes" % (c, name, n),
                pmd_echo_case(op, pat(n), c), offer=[{}])


def cat13(add):
    """13.x Compression, parameters (Autobahn 13.1-13.7 plus each window size
    and no-context-takeover combination): chat messages of several sizes."""
    cnct, snct = "client_no_context_takeover", "server_no_context_takeover"
    cmwb, smwb = "client_max_window_bits", "server_max_window_bits"
    offers = [([{}], "default offer"),
              ([{cnct: True}], cnct),
              ([{cmwb: 8}], cmwb + "=8"),
              ([{cmwb: 15}], cmwb + "=15"),
              ([{cnct: True, cmwb: 8}], cnct + ", " + cmwb + "=8"),
              ([{cnct: True, cmwb: 15}], cnct + ", " + cmwb + "=15"),
              ([{cnct: True, cmwb: 8}, {cnct: True}, {}], "three offers"),
              ([{snct: True}], snct),
              ([{snct: True, cnct: True, smwb: 9, cmwb: 9}], "everything, 9-bit windows")]
    offers += [([{smwb: b}], "%s=%d" % (smwb, b)) for b in range(9, 16)]
    offers += [([{cmwb: b}], "%s=%d" % (cmwb, b)) for b in range(9, 16)]
    offers += [([{cmwb: True}], cmwb + " without a value (browsers)"),
               ([{smwb: 8}, {}], smwb + "=8 (zlib cannot), then a plain offer")]
    for sub, (offer, name) in enumerate(offers, 1):
        for i, n in enumerate([16, 256, 4096, 65536], 1):
            c = pmd_count(n) // 4
            add("13.%d.%d" % (sub, i), "permessage-deflate offer %s: %d compressed messages of %d octets"
                % (name, c, n), pmd_echo_case(OP_TEXT, chat_pattern(n), c), offer=offer)


def cat14(add):
    """14.x Compression, errors and edge cases: RSV1 where RFC 7692 forbids it,
    data that does not inflate, a decompression bomb over max_message_size,
    fragmented and empty compressed messages, plain messages between them."""
    def frames(build):
        return lambda conn: conn.send_frames(build(conn))
    p = chat_pattern(3000)
    add("14.1.1", "RSV1 on a ping: fail with 1002 (RFC 7692 6.1)",
        fail_case([send([fr(OP_PING, b"hi", rsv=4)])]), offer=[{}])
    add("14.1.2", "RSV1 on a continuation frame: fail with 1002 (RFC 7692 6.1)",
        fail_case([frames(lambda c: [fr(OP_TEXT, c.pmd.compress(b"abc"), fin=False, rsv=4),
                                     fr(OP_CONT, b"", rsv=4)])]), offer=[{}])
    add("14.1.3", "RSV2 with permessage-deflate: still reserved, fail with 1002",
        fail_case([send([fr(OP_TEXT, b"abc", rsv=2)])]), offer=[{}])
    # RFC 7692 8 says "fail the connection" and names no code: 1007
    # (invalid data) and 1002 (protocol error) are both reasonable.
    add("14.2.1", "Compressed data that does not inflate: fail the connection (1007 or 1002)",
        fail_case([send([fr(OP_TEXT, b"\xff\xff\xff\xff", rsv=4)])], codes=(1007, 1002)), offer=[{}])
    add("14.2.2", "Compressed text that inflates to invalid UTF-8: fail with 1007",
        fail_case([frames(lambda c: [fr(OP_TEXT, c.pmd.compress(b"ok\xc3\x28"), rsv=4)])],
                  codes=(1007,)), offer=[{}])
    add("14.2.3", "A 40 KiB message that inflates to 40 MiB, over max_message_size: fail with 1009",
        fail_case([frames(lambda c: [fr(OP_BINARY, c.pmd.compress(bytes(40 << 20)), rsv=4)])],
                  codes=(1009,)), offer=[{}])
    add("14.3.1", "A compressed message in 3 fragments (RSV1 on the first only), echoed",
        echo_case([frames(lambda c: (lambda z: [fr(OP_TEXT, z[:10], fin=False, rsv=4),
                                                fr(OP_CONT, z[10:20], fin=False),
                                                fr(OP_CONT, z[20:])])(c.pmd.compress(p)))],
                  [TXT(p)]), offer=[{}])
    add("14.3.2", "An empty compressed message, echoed",
        echo_case([send_pmd([(OP_TEXT, b"")])], [TXT(b"")]), offer=[{}])
    add("14.3.3", "Plain and compressed messages interleaved, echoed",
        echo_case([lambda c: c.send_message(OP_TEXT, p), send([fr(OP_TEXT, p)]),
                   lambda c: c.send_message(OP_BINARY, p), send([fr(OP_BINARY, p)])],
                  [TXT(p), TXT(p), BIN(p), BIN(p)]), offer=[{}])


def build_cases():
    cases = []
    add = lambda cid, desc, run, perf=False, big=False, offer=None: \
        cases.append(Case(cid, desc, run, perf, big, offer))
    for family in (cat1, cat2, cat3, cat4, cat5, cat6, cat7, cat9, cat10, cat12, cat13, cat14):
        family(add)
    cases.sort(key=lambda c: c.key)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return cases


# --------------------------------------------------------------------------
# Case selection, running, reporting
# --------------------------------------------------------------------------

def parse_key(s):
    if not re.match(r"^\d+(\.\d+)*$", s):
        raise ValueError("bad case id %r" % s)
    return tuple(int(x) for x in s.split("."))


def select_cases(cases, spec):
    """`spec`: comma separated tokens -- exact ids / prefixes ('6.2', '6.2.1'),
    ranges ('1-7', '6.2.1-6.2.3') or glob patterns ('5.*', '6.1?.*')."""
    matchers = []
    for tok in (t.strip() for t in spec.split(",")):
        if not tok:
            continue
        if any(ch in tok for ch in "*?["):
            if not re.match(r"^[\d.*?\[\]!-]+$", tok):
                raise ValueError("bad case pattern %r" % tok)
            matchers.append(lambda c, t=tok: fnmatch.fnmatchcase(c.id, t))
        elif "-" in tok:
            lo, hi = (parse_key(x.strip()) for x in tok.split("-", 1))
            matchers.append(lambda c, lo=lo, hi=hi: lo <= c.key[:len(lo)] and c.key[:len(hi)] <= hi)
        else:
            parse_key(tok)
            matchers.append(lambda c, t=tok: c.id == t or c.id.startswith(t + "."))
    return [c for c in cases if any(m(c) for m in matchers)]


def run_case(target, case, timeout):
    res = Result()
    conn = Connection(target, timeout, case.offer)
    t0 = time.monotonic()
    try:
        conn.open()
        if case.offer and conn.pmd is None:
            # Autobahn's UNIMPLEMENTED: declining an extension is allowed.
            res.informational("server declined permessage-deflate")
            close_handshake(conn, res)
        else:
            if conn.pmd is not None:
                res.details["extension"] = conn.pmd.response
            case.run(conn, res)
    except HandshakeError as e:
        res.fail("opening handshake failed: %s" % e)
    except CaseTimeout:
        res.fail("case did not complete within %gs (server stopped reading?)" % timeout)
    except OSError as e:
        res.fail("socket error: %s" % e)
    finally:
        conn.close()
    res.failed[:0] = [v for v in conn.violations if v not in res.failed]
    for n in conn.notes:
        res.non_strict(n)
    if conn.server_pings:
        res.details["server_pings"] = conn.server_pings
    res.duration_ms = int(round((time.monotonic() - t0) * 1000))
    return res


def preflight(target, timeout):
    """Make sure the endpoint is reachable and speaks WebSocket; exit 2 if not."""
    conn = Connection(target, min(timeout, 10.0))
    try:
        conn.open()
        conn.send_close(1000)
        conn.next_event(timeout=2.0)
    except (OSError, HandshakeError, CaseTimeout) as e:
        print("wsfuzz: cannot open a WebSocket connection to %s: %s" % (target.url, e), file=sys.stderr)
        sys.exit(2)
    finally:
        conn.close()


def print_summary(target, results, elapsed):
    cats = sorted({c.key[0] for c, _ in results})
    rows = []
    for cat in cats + [None]:
        sel = [r for c, r in results if cat is None or c.key[0] == cat]
        counts = [sum(1 for r in sel if r.outcome == o) for o in OUTCOMES]
        name = "Total" if cat is None else "%d %s" % (cat, CATEGORY_NAMES.get(cat, ""))
        rows.append([name] + counts + [len(sel)])
    head = ["Category"] + list(OUTCOMES) + ["Total"]
    w0 = max(len(r[0]) for r in rows + [head])
    widths = [w0] + [max(len(h), 6) for h in head[1:]]
    fmt = lambda cells: "  ".join(str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
                                  for i, c in enumerate(cells))
    print("\nwsfuzz summary for %s: %d cases in %.1fs" % (target.url, len(results), elapsed))
    print(fmt(head))
    print("-" * len(fmt(head)))
    for r in rows[:-1]:
        print(fmt(r))
    print("-" * len(fmt(head)))
    print(fmt(rows[-1]))
    notable = [(c, r) for c, r in results if r.outcome != OK]
    if notable:
        print("\nCases not OK:")
        for c, r in notable:
            print("  %-10s %-13s %s" % (c.id, r.outcome, r.reason))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Strict RFC 6455 server conformance fuzzer (Autobahn fuzzingclient style) "
                    "for an echo endpoint.")
    ap.add_argument("url", help="echo endpoint, e.g. ws://127.0.0.1:9001/echo")
    ap.add_argument("--cases", default="*",
                    help="case selection: ids/prefixes, ranges, globs, e.g. '1-7,9,10' or '5.*,6.2.1' "
                         "(default: all)")
    ap.add_argument("--json", metavar="FILE", help="write a machine-readable report to FILE")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                    help="per-case timeout in seconds (default %g; 9.x cases get %dx)"
                         % (DEFAULT_TIMEOUT, PERF_FACTOR))
    ap.add_argument("--quick", action="store_true", help="skip the biggest 9.x cases (8 and 16 MiB)")
    ap.add_argument("--list", action="store_true", help="list the selected cases and exit")
    args = ap.parse_args(argv)

    try:
        target = Target(args.url)
    except ValueError as e:
        ap.error(str(e))
    if args.timeout <= 0:
        ap.error("--timeout must be positive")
    all_cases = build_cases()
    try:
        cases = select_cases(all_cases, args.cases)
    except ValueError as e:
        ap.error(str(e))
    if args.quick:
        cases = [c for c in cases if not c.big]
    if not cases:
        ap.error("--cases %r selects no case" % args.cases)
    if args.list:
        for c in cases:
            print("%-10s %s" % (c.id, c.desc))
        return 0

    preflight(target, args.timeout)
    print("wsfuzz %s: running %d cases against %s" % (VERSION, len(cases), target.url), file=sys.stderr)
    started, t0 = time.time(), time.monotonic()
    results = []
    for case in cases:
        timeout = args.timeout * (PERF_FACTOR if case.perf else 1)
        res = run_case(target, case, timeout)
        results.append((case, res))
        extra = ("  " + res.reason) if res.outcome != OK else ""
        print("%-10s %-13s %6dms%s" % (case.id, res.outcome, res.duration_ms, extra), file=sys.stderr)
        sys.stderr.flush()
    elapsed = time.monotonic() - t0
    print_summary(target, results, elapsed)

    if args.json:
        report = {
            "tool": "wsfuzz", "version": VERSION, "target": target.url,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(elapsed, 3),
            "summary": {o: sum(1 for _, r in results if r.outcome == o) for o in OUTCOMES},
            "cases": [{"id": c.id, "description": c.desc, "outcome": r.outcome,
                       "close_code": r.close_code, "duration_ms": r.duration_ms,
                       "reason": r.reason or None, "details": r.details or None}
                      for c, r in results],
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 1 if any(r.outcome == FAILED for _, r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
