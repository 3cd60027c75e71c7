#!/usr/bin/python3
"""test_tls.py -- TLS termination: wss://, protocol versions, ALPN,
certificate reload by SIGHUP, bad certificates, non-TLS bytes.

A throwaway CA and server certificates are made with the openssl command
line in a temporary directory; clients trust only that CA.
"""

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (WSHUBD, CertAuthority, Server, arun,  # noqa: E402
                           close_payload, connect, frame)

CA = None
TMP = None


def setUpModule():
    global CA, TMP
    TMP = tempfile.TemporaryDirectory(prefix="wshub-tls-")
    CA = CertAuthority(TMP.name)


def tearDownModule():
    TMP.cleanup()


def tls_server(name="a", serial=1, tls=None, **conf):
    """A TLS Server whose certificate files live in its own directory, so
    a test may replace them."""
    files = CA.issue(name, serial)
    srv = Server(workers=1, tls=files, **conf)
    for key in ("certificate", "certificate_key"):
        path = os.path.join(srv.dir, os.path.basename(files[key]))
        shutil.copy(files[key], path)
        srv.tls[key] = path
    srv.tls.update(tls or {})
    srv.write_conf()
    return srv


def tls_socket(port, context=None, alpn=None):
    """A TLS socket after its handshake, verifying against the CA; a
    close without close_notify raises ssl.SSLEOFError."""
    ctx = context or CA.context()
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF    # Python sets it
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), 10)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                           suppress_ragged_eofs=False)


def read_to_close_notify(sock):
    """Everything up to the server's TLS close_notify."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def serial_of(der):
    """The serial number of a DER certificate, via the openssl CLI."""
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                          "-serial"], input=der, capture_output=True,
                         check=True, timeout=30).stdout.decode()
    return int(out.strip().split("=")[1], 16)


def peer_cert(ws):
    return ws.transport.get_extra_info("ssl_object").getpeercert(
        binary_form=True)


async def echo_on(ws, msg):
    await ws.send(msg)
    return await asyncio.wait_for(ws.recv(), 5)


def read_eof(sock, timeout=10):
    """Read until the server closes (EOF or reset); True if it did within
    TIMEOUT."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    except socket.timeout:
        return False
    return True


def wait_old_worker_drains(srv, timeout=10):
    """After a SIGHUP: the old worker logs "draining" just before it
    closes its listeners, in the same loop turn, so from then on only
    the new generation accepts."""
    srv.wait_log("reload done", timeout=timeout)
    srv.wait_log("(close 1012)", timeout=timeout)


def no_error_logged(testcase, srv):
    """Hostile or confused clients are the clients' problem: info, at
    most, never error or worse."""
    testcase.assertNotRegex(srv.log(), r"\[(error|crit|alert|emerg)\]")


@unittest.skipUnless(shutil.which("openssl"), "the openssl binary is missing")
class TLSTest(unittest.TestCase):

    def test_wss_echo_and_hub(self):
        with tls_server(endpoints=[
                {"path": "/echo", "module": "echo", "max_message_size": "1m"},
                {"path": "/ws", "module": "hub"}]) as srv:
            async def session():
                async with connect(srv.url("/echo"), ssl=CA.context()) as ws:
                    self.assertEqual(await echo_on(ws, "over tls"),
                                     "over tls")
                    big = os.urandom(200000)    # many TLS records
                    self.assertEqual(await echo_on(ws, big), big)
                async with connect(srv.url("/ws?id=alice"),
                                   ssl=CA.context()) as ws:
                    welcome = json.loads(await ws.recv())
                    self.assertEqual(welcome["type"], "welcome")
                    await ws.send(json.dumps({"type": "join_room",
                                              "room": "lobby"}))
                    while True:
                        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                        if m["type"] == "room_joined":
                            break
                    self.assertEqual(m["room"], "lobby")
            arun(session())
            no_error_logged(self, srv)

    def test_versions_and_alpn(self):
        with tls_server() as srv:
            with tls_socket(srv.port, alpn=["http/1.1"]) as s:
                self.assertEqual(s.version(), "TLSv1.3")
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
            ctx = CA.context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with tls_socket(srv.port, ctx, alpn=["h2", "http/1.1"]) as s:
                self.assertEqual(s.version(), "TLSv1.2")
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
            # TLS 1.1 is refused by the server, not by this client: let
            # the client offer it at any security level.
            ctx = CA.context()
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                tls_socket(srv.port, ctx)
            srv.wait_log("TLS handshake failed: unsupported protocol")
            no_error_logged(self, srv)

    def test_close_notify(self):
        """The server ends TLS cleanly after an HTTP answer and after a
        WebSocket closing handshake, so clients see no truncation."""
        with tls_server() as srv:
            with tls_socket(srv.port) as s:
                s.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                self.assertIn(b" 404 ", read_to_close_notify(s))
            # The close frame right behind the request: its echo is queued
            # while the TLS bufferevent's deferred write callback for the
            # 101 is pending; that callback must not end the connection.
            for _ in range(20):
                with tls_socket(srv.port) as s:
                    s.sendall(wshub_harness.upgrade_request(srv.port))
                    s.sendall(frame(8, close_payload(1000)))
                    data = read_to_close_notify(s)
                    self.assertIn(b" 101 ", data)
                    self.assertTrue(data.endswith(b"\x88\x02\x03\xe8"),
                                    data)
            no_error_logged(self, srv)

    def test_protocols_setting(self):
        """protocols: TLSv1.3 refuses TLS 1.2 clients."""
        with tls_server(tls={"protocols": "TLSv1.3"}) as srv:
            ctx = CA.context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                tls_socket(srv.port, ctx)
            with tls_socket(srv.port) as s:
                self.assertEqual(s.version(), "TLSv1.3")

    def test_plain_http_and_garbage_on_tls_port(self):
        with tls_server() as srv:
            for data in (b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n",
                         b"\x16\x03\x01\x00\x05hello",
                         os.urandom(3000)):
                with socket.create_connection(("127.0.0.1", srv.port),
                                              10) as s:
                    s.sendall(data)
                    self.assertTrue(read_eof(s))
            srv.wait_log("TLS handshake failed: http request")
            arun(self.one_echo(srv))        # still serving
            no_error_logged(self, srv)

    async def one_echo(self, srv):
        async with connect(srv.url(), ssl=CA.context()) as ws:
            self.assertEqual(await echo_on(ws, "still here"), "still here")

    def test_handshake_timeout_covers_tls(self):
        """A client stalling inside the TLS handshake (slowloris) is cut
        off by handshake_timeout."""
        with tls_server(handshake_timeout="1s") as srv:
            with socket.create_connection(("127.0.0.1", srv.port), 10) as s:
                s.sendall(b"\x16\x03\x01\x02\x00\x01")  # half a ClientHello
                self.assertTrue(read_eof(s, 15))
            srv.wait_log("handshake_timeout expired")
            no_error_logged(self, srv)

    def test_sighup_serves_new_certificate(self):
        """After a reload with a replaced certificate, new clients get the
        new one while connections opened before keep working until their
        old worker drains them (1012)."""
        new = CA.issue("b", 2)
        with tls_server(serial=1, shutdown_spread="60s",
                        shutdown_timeout="120s") as srv:
            async def session():
                # Drained in accept order over shutdown_spread: the first
                # goes at once, the last 45s later.
                old = [await connect(srv.url(), ssl=CA.context())
                       for _ in range(4)]
                self.assertEqual(serial_of(peer_cert(old[0])), 1)
                before = srv.workers()
                for key in ("certificate", "certificate_key"):
                    shutil.copy(new[key], srv.tls[key] + ".new")
                    os.replace(srv.tls[key] + ".new", srv.tls[key])
                srv.signal(signal.SIGHUP)
                wait_old_worker_drains(srv)
                srv.wait_workers(1, exclude=before)
                async with connect(srv.url(), ssl=CA.context()) as ws:
                    self.assertEqual(serial_of(peer_cert(ws)), 2)
                    self.assertEqual(await echo_on(ws, "new"), "new")
                await asyncio.wait_for(old[0].wait_closed(), 10)
                self.assertEqual(old[0].close_code, 1012)
                self.assertEqual(await echo_on(old[3], "old"), "old")
                self.assertEqual(serial_of(peer_cert(old[3])), 1)
                # A stop reaches the old TLS connections with 1001 too.
                srv.signal(signal.SIGTERM)
                await asyncio.wait_for(old[3].wait_closed(), 10)
                self.assertEqual(old[3].close_code, 1001)
            arun(session(), 60)
            no_error_logged(self, srv)

    def test_reload_turns_tls_on(self):
        """A reload may make a plain address a TLS one; its socket stays
        open."""
        files = CA.issue("on", 3)
        with Server(workers=1) as srv:
            self.assertEqual(wshub_harness.echo(srv.url()), "hello")
            srv.tls = files
            srv.conf["listen"] = ["127.0.0.1:%d tls" % srv.port]
            srv.write_conf()
            srv.signal(signal.SIGHUP)
            wait_old_worker_drains(srv)
            arun(self.one_echo(srv))
            self.assertNotIn("listening on", srv.log().split("reloading")[1])

    def test_failed_reload_keeps_certificate(self):
        with tls_server(serial=5) as srv:
            with open(srv.tls["certificate"], "w") as f:
                f.write("not a certificate\n")
            srv.signal(signal.SIGHUP)
            srv.wait_log("reload failed")
            self.assertIn("holds no usable PEM certificate", srv.log())

            async def check():
                async with connect(srv.url(), ssl=CA.context()) as ws:
                    self.assertEqual(serial_of(peer_cert(ws)), 5)
            arun(check())


@unittest.skipUnless(shutil.which("openssl"), "the openssl binary is missing")
class TLSConfigTest(unittest.TestCase):
    """wshubd -t reads the certificate and key and names what is wrong."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wshub-tls-conf-")
        self.addCleanup(self.tmp.cleanup)
        self.good = CA.issue("conf", 7)

    def check(self, tls, listen="127.0.0.1:8443 tls"):
        path = os.path.join(self.tmp.name, "wshub.yaml")
        with open(path, "w") as f:
            f.write("listen: [\"%s\"]\n" % listen)
            if tls is not None:
                f.write("tls:\n" + "".join("  %s: %s\n" % kv
                                           for kv in tls.items()))
        r = subprocess.run([WSHUBD, "-t", "-c", path], capture_output=True,
                           text=True, timeout=30)
        return r.returncode, r.stderr, path

    def assert_fails(self, tls, line, col, *words):
        rc, err, path = self.check(tls)
        self.assertEqual(rc, 1, err)
        self.assertIn("%s:%d:%d:" % (path, line, col), err)
        for w in words:
            self.assertIn(w, err)

    def test_good(self):
        rc, err, _ = self.check(dict(self.good, protocols="TLSv1.2 TLSv1.3",
                                     ciphers="ECDHE+AESGCM",
                                     ciphersuites="TLS_AES_128_GCM_SHA256"))
        self.assertEqual(rc, 0, err)

    def test_missing_certificate(self):
        missing = os.path.join(self.tmp.name, "nope.pem")
        self.assert_fails(dict(self.good, certificate=missing), 3, 16,
                          "tls.certificate", missing,
                          "No such file or directory")

    def test_missing_key(self):
        missing = os.path.join(self.tmp.name, "nope.key")
        self.assert_fails(dict(self.good, certificate_key=missing), 4, 20,
                          "tls.certificate_key", missing,
                          "No such file or directory")

    def test_not_a_certificate(self):
        self.assert_fails(dict(self.good,
                               certificate=self.good["certificate_key"]),
                          3, 16, "tls.certificate",
                          self.good["certificate_key"],
                          "no usable PEM certificate", "no start line")

    def test_not_a_key(self):
        self.assert_fails(dict(self.good,
                               certificate_key=self.good["certificate"]),
                          4, 20, "tls.certificate_key",
                          self.good["certificate"], "no usable PEM private key")

    def test_encrypted_key_does_not_prompt(self):
        enc = os.path.join(self.tmp.name, "enc.key")
        subprocess.run(["openssl", "pkey", "-in",
                        self.good["certificate_key"], "-aes128", "-passout",
                        "pass:secret", "-out", enc], check=True,
                       capture_output=True, timeout=30)
        self.assert_fails(dict(self.good, certificate_key=enc), 4, 20,
                          "tls.certificate_key", enc, "unencrypted key")

    def test_key_of_another_certificate(self):
        other = CA.issue("other", 8)
        self.assert_fails(dict(self.good,
                               certificate_key=other["certificate_key"]),
                          4, 20, "tls.certificate_key",
                          other["certificate_key"], "does not match",
                          self.good["certificate"])

    def test_bad_protocols_and_ciphers(self):
        self.assert_fails(dict(self.good, protocols="TLSv1.2 SSLv3"), 5, 14,
                          "tls.protocols", "unknown protocol \"SSLv3\"")
        self.assert_fails(dict(self.good, protocols="TLSv1.1 TLSv1.3"), 5,
                          14, "tls.protocols", "without a gap")
        self.assert_fails(dict(self.good, ciphers="NOPE"), 5, 12,
                          "tls.ciphers", "no cipher matches")
        self.assert_fails(dict(self.good, ciphersuites="NOPE"), 5, 17,
                          "tls.ciphersuites")

    def test_tls_listener_without_tls_section(self):
        rc, err, path = self.check(None)
        self.assertEqual(rc, 1, err)
        self.assertIn("%s:1:10: listen[0]" % path, err)
        self.assertIn("needs a tls section", err)

    def test_tls_section_needs_both_files(self):
        self.assert_fails({"certificate": self.good["certificate"]}, 3, 3,
                          "missing required key \"certificate_key\"")


@unittest.skipUnless(shutil.which("openssl"), "the openssl binary is missing")
@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
@unittest.skipIf(os.environ.get("WSHUB_SANITIZERS") == "yes",
                 "a sanitizer build cannot run under valgrind")
class TLSValgrindTest(unittest.TestCase):
    """test_valgrind.py's check, for the TLS paths: handshakes good and
    bad, a certificate reload in the master, a drain over TLS."""

    def test_tls_session_has_no_definite_leak(self):
        import test_valgrind
        vg = test_valgrind.ValgrindTest
        srv = vg.valgrind_server(self, workers=1, tls=CA.issue("vg", 11),
                                 handshake_timeout="5s")
        with srv:
            async def session():
                async with connect(srv.url(), ssl=CA.context()) as ws:
                    for msg in ("text", os.urandom(100000)):
                        self.assertEqual(await echo_on(ws, msg), msg)
            arun(session(), 120)
            for data in (b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x02"):
                with socket.create_connection(("127.0.0.1", srv.port),
                                              10) as s:
                    s.sendall(data)
                    if data.startswith(b"GET"):
                        self.assertTrue(read_eof(s, 30))
            srv.signal(signal.SIGHUP)
            wait_old_worker_drains(srv, timeout=60)

            async def drained():
                ws = await connect(srv.url(), ssl=CA.context(),
                                   open_timeout=30)
                srv.signal(signal.SIGQUIT)
                await asyncio.wait_for(ws.wait_closed(), 30)
                self.assertEqual(ws.close_code, 1001)
            arun(drained(), 120)
            vg.finish(self, srv, 3)


if __name__ == "__main__":
    wshub_harness.main()
