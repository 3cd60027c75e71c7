"""wshub_harness.py -- start real wshubd processes for integration tests.

In the spirit of h2o's t/Util.pm and Redis's start_server: a test asks for
a server with some configuration, gets a running wshubd on a free loopback
port, and the harness always stops what it started (by pid), even when the
test fails. Also raw-socket helpers for what a polite client library will
not send: masked frames built by hand, malformed requests.
"""

import atexit
import base64
import contextlib
import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

WSHUBD = os.environ.get("WSHUBD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "wshubd")
SRCDIR = os.environ.get("WSHUB_SRCDIR") or os.path.join(
    os.path.dirname(__file__), "..", "..")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_live = set()


def _cleanup():
    for proc in list(_live):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def _children(pid):
    """Live children of PID (zombies excluded)."""
    path = "/proc/%d/task/%d/children" % (pid, pid)
    try:
        with open(path) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    live = []
    for child in pids:
        try:
            with open("/proc/%d/stat" % child) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            live.append(child)
    return live


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yaml_value(v):
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, list):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    return str(v)


class Server:
    """A wshubd on 127.0.0.1:<port>. Keyword arguments become top-level
    config keys; endpoints is a list of dicts; tls, a dict, is the tls
    section and makes the port a TLS one."""

    def __init__(self, workers=2, endpoints=None, raw_yaml="", wrapper=(),
                 tls=None, **conf):
        self.tmp = tempfile.TemporaryDirectory(prefix="wshub-test-")
        self.dir = self.tmp.name
        self.port = free_port()
        self.conf = {
            "worker_processes": workers,
            "listen": ["127.0.0.1:%d" % self.port],
            "error_log": os.path.join(self.dir, "error.log"),
            "access_log": os.path.join(self.dir, "access.log"),
            "pid_file": os.path.join(self.dir, "wshubd.pid"),
            "log_level": "info",
        }
        if os.geteuid() == 0:
            # wshubd refuses to run workers as root unless told to.
            self.conf["user"] = "root"
        self.tls = tls
        if tls:
            self.conf["listen"] = ["127.0.0.1:%d tls" % self.port]
        self.conf.update(conf)
        self.endpoints = endpoints or [
            {"path": "/echo", "module": "echo", "max_message_size": "16m"}]
        self.raw_yaml = raw_yaml
        self.wrapper = list(wrapper)    # e.g. ["valgrind", ...]
        self.conf_file = os.path.join(self.dir, "wshub.yaml")
        self.proc = None
        self.write_conf()

    def write_conf(self):
        with open(self.conf_file, "w") as f:
            for k, v in self.conf.items():
                f.write("%s: %s\n" % (k, yaml_value(v)))
            f.write("endpoints:\n")
            for ep in self.endpoints:
                first = True
                for k, v in ep.items():
                    f.write("  %s %s: %s\n" % ("-" if first else " ", k,
                                               yaml_value(v)))
                    first = False
            f.write(self.raw_yaml)
            if self.tls:
                f.write("tls:\n" + "".join("  %s: %s\n" % (k, yaml_value(v))
                                            for k, v in self.tls.items()))

    def start(self):
        self.stdout = open(os.path.join(self.dir, "stdout.log"), "w")
        self.proc = subprocess.Popen(
            self.wrapper + [WSHUBD, "-c", self.conf_file], stdout=self.stdout,
            stderr=subprocess.STDOUT, start_new_session=True)
        _live.add(self.proc)
        self.wait_listening()
        self.wait_workers(int(self.conf["worker_processes"]))
        return self

    def wait_listening(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("wshubd exited with %s:\n%s" % (
                    self.proc.returncode, self.log()))
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            time.sleep(0.05)
        raise RuntimeError("wshubd did not listen:\n" + self.log())

    def master(self):
        """The current master's pid: the one started, or the binary it
        upgraded to (upgrade())."""
        return getattr(self, "upgraded_to", None) or self.proc.pid

    def upgrade(self, timeout=20):
        """The binary upgrade of wshubd(8): USR2, then WINCH and QUIT to
        the old master once the new one runs; the new master (same
        process group) is the master from then on."""
        old = self.master()
        pidfile = self.conf["pid_file"]
        os.kill(old, signal.SIGUSR2)
        wait_for(lambda: os.path.exists(pidfile + ".oldbin"), timeout,
                 ".oldbin", self.log)
        new = wait_for(lambda: _read_pid(pidfile) not in (None, old)
                       and _read_pid(pidfile), timeout, "the new master",
                       self.log)
        wait_for(lambda: len(_children(new)) >= int(
            self.conf["worker_processes"]), timeout, "the new workers",
            self.log)
        os.kill(old, signal.SIGWINCH)
        # The new master is a child of the old one too.
        wait_for(lambda: set(_children(old)) <= {new}, timeout,
                 "old workers gone", self.log)
        os.kill(old, signal.SIGQUIT)
        if old == self.proc.pid:
            self.proc.wait(timeout=timeout)
        else:
            wait_for(lambda: not os.path.exists("/proc/%d" % old), timeout,
                     "the old master's exit", self.log)
        self.upgraded_to = new
        return new

    def workers(self):
        """Pids of the master's live children (not yet reaped zombies
        excluded)."""
        return _children(self.master())


    def wait_workers(self, n, timeout=10, exclude=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for p in self.workers() if p not in exclude]
            if len(pids) >= n:
                return pids
            time.sleep(0.05)
        raise AssertionError("expected %d workers, have %s\n%s" % (
            n, self.workers(), self.log()))

    def signal(self, sig):
        os.kill(self.master(), sig)

    def wait_exit(self, timeout=15):
        rc = self.proc.wait(timeout=timeout)
        _live.discard(self.proc)
        return rc

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.proc is not None:
            # Workers of a killed master must not outlive the test.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            _live.discard(self.proc)
        if getattr(self, "stdout", None) is not None:
            self.stdout.close()
        log = self.log()
        self.tmp.cleanup()
        # A sanitizer build reports into the server's stderr: any report
        # fails the test that ran the server.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:"):
            if marker in log:
                raise AssertionError("sanitizer report from wshubd:\n" + log)

    def log(self):
        out = []
        for name in ("stdout.log", "error.log"):
            with contextlib.suppress(OSError):
                with open(os.path.join(self.dir, name)) as f:
                    out.append(f.read())
        return "\n".join(out)

    def access_log(self):
        with contextlib.suppress(OSError):
            with open(os.path.join(self.dir, "access.log")) as f:
                return f.read()
        return ""

    def wait_log(self, text, timeout=10, access=False):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in (self.access_log() if access else self.log()):
                return
            time.sleep(0.05)
        raise AssertionError("%r not logged within %ss:\n%s" % (
            text, timeout, self.access_log() if access else self.log()))

    def url(self, path="/echo"):
        return "%s://127.0.0.1:%d%s" % ("wss" if self.tls else "ws",
                                        self.port, path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_for(pred, timeout, what, log=None):
    """Poll PRED until it returns something true; fail after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %ss waiting for %s%s" % (
                timeout, what, "\n" + log() if log else ""))
        time.sleep(0.05)

# ---- TLS: a throwaway CA made with the openssl command line -----------

class CertAuthority:
    """A CA in DIR (ca.pem, ca.key) that issues EC server certificates for
    IP 127.0.0.1. Needs the openssl binary."""

    def __init__(self, dir):
        self.dir = dir
        self.cert = os.path.join(dir, "ca.pem")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                     "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
                     "/CN=wshub test CA")
        for use in ("server", "client"):
            with open(os.path.join(dir, use + ".ext"), "w") as f:
                f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints="
                        "CA:FALSE\nextendedKeyUsage=%sAuth\n" % use)

    def openssl(self, *args):
        subprocess.run(("openssl",) + args, cwd=self.dir, check=True,
                       capture_output=True, timeout=60)

    def issue(self, name, serial, client=False):
        """NAME.pem and NAME.key, serial number SERIAL, for a server (or
        a CLIENT); returns the tls section for them."""
        self.openssl("req", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                     name + ".key", "-out", name + ".csr", "-subj",
                     "/CN=127.0.0.1")
        self.openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
                     "-CAkey", "ca.key", "-set_serial", str(serial), "-days",
                     "2", "-extfile", "client.ext" if client else "server.ext",
                     "-out", name + ".pem")
        return {"certificate": os.path.join(self.dir, name + ".pem"),
                "certificate_key": os.path.join(self.dir, name + ".key")}

    def context(self):
        """A client ssl.SSLContext that trusts only this CA."""
        import ssl
        return ssl.create_default_context(cafile=self.cert)

# ---- raw WebSocket client pieces --------------------------------------

def mask_payload(key, data):
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None,
          len_form=None):
    """A client frame. length overrides the declared length; len_form
    (7, 16, 64) forces a length encoding, minimal or not."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    form = len_form or (7 if n < 126 else 16 if n < 65536 else 64)
    if form == 7:
        head = struct.pack("!BB", b0, mbit | n)
    elif form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_payload(key, payload)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawWS:
    """A blocking raw socket that completed the opening handshake."""

    def __init__(self, port, path="/echo", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
        head = self._read_until(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise AssertionError("handshake failed: %r" % head)
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
        if b"Sec-WebSocket-Accept: " + want not in head:
            raise AssertionError("bad accept in %r" % head)

    def _read_until(self, sep):
        while sep not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        head, self.buf = self.buf.split(sep, 1)
        return head

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """(fin, opcode, payload) of the next server frame."""
        b0, b1 = self._read_exact(2)
        if b1 & 0x80:
            raise AssertionError("server frame is masked")
        if b0 & 0x70:
            raise AssertionError("server frame has RSV bits")
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        return bool(b0 & 0x80), b0 & 0x0f, self._read_exact(n)

    def recv_message(self):
        """(opcode, payload), skipping pings."""
        while True:
            fin, op, data = self.recv_frame()
            if op == 9:
                continue
            return op, data

    def expect_close(self, code=None, timeout=5):
        """Read until the server's close frame and its TCP close; return
        the close code (None for an empty close payload)."""
        self.sock.settimeout(timeout)
        while True:
            fin, op, data = self.recv_frame()
            if op == 8:
                break
        got = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
        # Answer like a real client, so the server need not wait for
        # close_timeout (it may already have closed: that is fine too).
        with contextlib.suppress(OSError):
            self.sock.sendall(frame(8, data[:2]))
        if code is not None and got != code:
            raise AssertionError("close code %r, expected %r (reason %r)" % (
                got, code, data[2:]))
        self.expect_eof(timeout)
        return got

    def expect_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not chunk:
                return
        raise AssertionError("server did not close the TCP connection")

    def close(self):
        self.sock.close()


def http(port, request, timeout=10):
    """Send raw bytes, return (status, headers dict lowercased, body) of
    the first response."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return parse_response(data, s)


def parse_response(data, sock=None):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0] else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", 0))
    while sock is not None and len(body) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def upgrade_request(port, path="/echo", extra="", key=None, version="13",
                    method="GET", proto="HTTP/1.1"):
    key = key or base64.b64encode(os.urandom(16)).decode()
    return ("%s %s %s\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: %s\r\n%s\r\n" % (
                method, path, proto, port, key, version, extra)).encode()


# ---- python3-websockets client shorthands -----------------------------

def arun(coro, timeout=30):
    """Run a coroutine to completion, bounded in time."""
    import asyncio
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(url, **kw):
    """websockets.connect with test-friendly defaults: bounded handshake
    and close, no client pings, no compression, no size limit."""
    import websockets
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("ping_interval", None)
    kw.setdefault("compression", None)
    kw.setdefault("max_size", None)
    return websockets.connect(url, **kw)


async def recv_json(ws, timeout=10):
    """The next message of WS, as JSON, within TIMEOUT seconds."""
    import asyncio
    import json
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def quiet(ws, seconds=0.5):
    """The messages WS receives within SECONDS (for tests that expect
    none, or a known few)."""
    import asyncio
    got = []
    try:
        while True:
            got.append(await recv_json(ws, seconds))
    except asyncio.TimeoutError:
        return got


async def recv_type(ws, type_, timeout=10):
    """The next message of type TYPE_, skipping any others."""
    while True:
        msg = await recv_json(ws, timeout)
        if msg["type"] == type_:
            return msg


async def aecho(url, msg):
    import asyncio
    async with connect(url) as ws:
        await ws.send(msg)
        return await asyncio.wait_for(ws.recv(), 5)


def echo(url, msg="hello"):
    """One message through a fresh connection; returns the echo."""
    return arun(aecho(url, msg), 15)


def main():
    """unittest.main(), but skipped (77) without python3-websockets."""
    try:
        import websockets  # noqa: F401
    except ImportError:
        print("SKIP: python3-websockets is not installed "
              "(packaging/install-deps.sh --test)")
        sys.exit(77)
    if not os.access(WSHUBD, os.X_OK):
        print("FAIL: no wshubd binary at %s" % WSHUBD)
        sys.exit(1)
    unittest.main(verbosity=2)
