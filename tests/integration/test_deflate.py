"""test_deflate.py -- permessage-deflate (RFC 7692) with real clients.

python3-websockets (compression on, its default) and headless Chromium
(test_browser.py's page) negotiate it with wshub and exchange messages; the independent fuzzer's
compression categories (12-14, modelled on Autobahn 12 and 13) run
against /echo under the default policy and under context takeover with
small windows; a hub broadcast reaches compressing clients as one
identical compressed frame and plain clients as a plain one; bad
compression settings are refused with FILE:LINE:COL.
"""

import asyncio
import base64
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "bench"))
import idle_memory  # noqa: E402
import test_bench  # noqa: E402
import test_browser  # noqa: E402
import test_valgrind  # noqa: E402
import wshub_harness  # noqa: E402
from wshub_harness import (SRCDIR, WSHUBD, Server, arun, connect,  # noqa: E402
                           frame)

FUZZER = os.path.join(SRCDIR, "tests", "conformance", "wsfuzz.py")
ON = "compression:\n  enabled: on\n"
TAKEOVER = ON + ("  server_context_takeover: on\n"
                 "  client_context_takeover: on\n"
                 "  window_bits: 11\n  client_window_bits: 10\n"
                 "  min_size: 0\n")
HUB = [{"path": "/ws", "module": "hub"},
       {"path": "/echo", "module": "echo", "max_message_size": "16m"}]
PMD = "permessage-deflate"


def pmd_socket(port, path, offer=PMD):
    """A raw client that offered OFFER; returns (socket, extension answer)."""
    s = socket.create_connection(("127.0.0.1", port), 10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: %s\r\n\r\n"
               % (path, key, offer)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    ext = [line.split(b":", 1)[1].strip().decode()
           for line in head.split(b"\r\n")
           if line.lower().startswith(b"sec-websocket-extensions:")]
    return s, (ext[0] if ext else None)


def read_frame(s):
    """(first byte, payload) of the next server frame."""
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise EOFError("connection closed")
            data += chunk
        return data
    b0, b1 = exact(2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    return b0, exact(n)


def inflate(payload):
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


class WebsocketsTest(unittest.TestCase):

    async def exchange(self, url):
        async with connect(url, compression="deflate") as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions")
            names = [e.name for e in ws.extensions]
            msgs = ["hello", "{\"a\": 1}" * 2000, b"\x00\x01" * 40000,
                    "h\u00e9llo \u2603" * 500]
            got = []
            for m in msgs * 3:
                await ws.send(m)
                got.append(await ws.recv())
            return ext, names, got == msgs * 3

    def test_websockets_default_policy(self):
        with Server(workers=1, raw_yaml=ON) as srv:
            ext, names, same = arun(self.exchange(srv.url("/echo")))
        self.assertEqual(names, [PMD])
        self.assertIn("server_no_context_takeover", ext)
        self.assertIn("client_no_context_takeover", ext)
        self.assertTrue(same)

    def test_websockets_context_takeover(self):
        with Server(workers=1, raw_yaml=TAKEOVER) as srv:
            ext, names, same = arun(self.exchange(srv.url("/echo")))
        self.assertEqual(names, [PMD])
        self.assertNotIn("no_context_takeover", ext)
        self.assertIn("server_max_window_bits=11", ext)
        self.assertIn("client_max_window_bits=10", ext)
        self.assertTrue(same)

    def test_off_by_default(self):
        with Server(workers=1) as srv:
            s, ext = pmd_socket(srv.port, "/echo")
            s.close()
        self.assertIsNone(ext)


class WireTest(unittest.TestCase):

    def test_small_and_control_frames_stay_plain(self):
        with Server(workers=1, raw_yaml=ON) as srv:
            s, ext = pmd_socket(srv.port, "/echo")
            self.assertTrue(ext.startswith(PMD))
            big = b"abc" * 1000
            s.sendall(frame(1, b"hi") + frame(9, b"ping")
                      + frame(1, big) + frame(8, struct.pack("!H", 1000)))
            b0, data = read_frame(s)
            self.assertEqual((b0, data), (0x81, b"hi"))   # under min_size
            self.assertEqual(read_frame(s), (0x8a, b"ping"))
            b0, data = read_frame(s)
            self.assertEqual(b0, 0xc1)                      # FIN, RSV1, text
            self.assertLess(len(data), 100)
            self.assertEqual(inflate(data), big)
            self.assertEqual(read_frame(s)[0], 0x88)
            s.close()

    def test_broadcast_one_compressed_frame(self):
        """Compressing recipients get the same compressed bytes, the plain
        one the plain frame."""
        with Server(workers=1, endpoints=HUB, raw_yaml=ON) as srv:
            socks = [pmd_socket(srv.port, "/ws")[0] for _ in range(3)]
            plain_s, ext = pmd_socket(srv.port, "/ws", offer="x-other")
            self.assertIsNone(ext)
            for s in socks + [plain_s]:
                read_frame(s)                   # welcome
            text = "all the news that fits " * 50
            socks[0].sendall(frame(1, json.dumps(
                {"type": "broadcast", "text": text}).encode()))
            frames = [read_frame(s) for s in socks[1:]]
            b0, data = read_frame(plain_s)
            for s in socks + [plain_s]:
                s.close()
        self.assertEqual(frames[0], frames[1])
        self.assertEqual(frames[0][0], 0xc1)
        msg = json.loads(inflate(frames[0][1]))
        self.assertEqual((msg["type"], msg["text"]), ("broadcast", text))
        self.assertEqual(b0, 0x81)
        self.assertEqual(json.loads(data), msg)


@unittest.skipIf(os.environ.get("WSHUB_SANITIZERS") == "yes",
                 "ASan's shadow memory and quarantine inflate RSS")
class MemoryTest(unittest.TestCase):
    """Under the default policy a compressed connection keeps no zlib
    state: after a compressed message each way it stays within the idle
    budget of test_memory.py plus a message's leftovers (context takeover
    would add about 100 KiB each)."""

    def test_no_zlib_state_per_connection(self):
        n = 2000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < n + 100:
            self.skipTest("open files limit %d is below %d" % (hard, n + 100))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        with Server(workers=1, ping_period=0, access_log="off",
                    log_level="warn", max_connections=n + 10,
                    raw_yaml=ON) as srv:
            worker = srv.workers()[0]
            warmup = idle_memory.open_idle(srv.port, 10, lambda m: None,
                                           idle_memory.OFFER)
            idle_memory.warm(warmup, True)     # the worker's shared streams
            before = idle_memory.rss_kib(worker)
            socks = idle_memory.open_idle(srv.port, n, lambda m: None,
                                          idle_memory.OFFER)
            idle_memory.warm(socks, True)
            per = (idle_memory.rss_kib(worker) - before) * 1024 / n
            for s in socks + warmup:
                s.close()
        print("%.0f bytes per compressed connection" % per)
        self.assertLess(per, 4096)


class BenchTest(unittest.TestCase):
    """wshub-bench --deflate: offers the extension, inflates broadcasts."""

    def test_fanout_inflates(self):
        with Server(workers=2, endpoints=HUB, raw_yaml=ON) as srv:
            rc, out, err = test_bench.bench(
                "fanout", "-c", "20", "-p", "1", "-n", "100", "-r", "500",
                "-s", "300", "--deflate", srv.url("/ws"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertEqual(out["delivered"], 2000)
        self.assertEqual(out["reordered"], 0)

    def test_declined_offer_is_fine(self):
        with Server(workers=1, endpoints=HUB) as srv:
            rc, out, err = test_bench.bench(
                "echo", "-c", "2", "-n", "20", "--deflate", srv.url("/echo"))
        self.assertEqual(rc, 0, err + str(out))

    def test_offer_through_header(self):
        """An offer given with --header is an offer too."""
        with Server(workers=1, endpoints=HUB, raw_yaml=ON) as srv:
            rc, out, err = test_bench.bench(
                "echo", "-c", "1", "-n", "5", "--header",
                "Sec-WebSocket-Extensions: permessage-deflate",
                srv.url("/echo"))
        self.assertEqual(rc, 0, err + str(out))


class ConformanceTest(unittest.TestCase):

    def fuzz(self, raw_yaml):
        with Server(workers=2, log_level="warn", access_log="off",
                    raw_yaml=raw_yaml) as srv:
            report = os.path.join(srv.dir, "report.json")
            proc = subprocess.run(
                [sys.executable, FUZZER, srv.url("/echo"), "--cases", "12-14",
                 "--json", report], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=600, text=True)
            print(proc.stdout[-2000:])
            with open(report) as f:
                cases = json.load(f)["cases"]
        self.assertEqual([c for c in cases if c["outcome"] != "OK"], [])
        self.assertEqual(proc.returncode, 0)
        self.assertEqual({c["id"].split(".")[0] for c in cases},
                         {"12", "13", "14"})
        self.assertGreater(len(cases), 150)

    def test_default_policy(self):
        self.fuzz(ON)

    def test_context_takeover_small_windows(self):
        self.fuzz(TAKEOVER)


@unittest.skipUnless(test_browser.CHROMIUM, "chromium is not installed")
class ChromiumTest(test_browser.BrowserTest):
    """The browser echo page of test_browser.py, compression on: Chromium
    negotiates permessage-deflate and every message (1 MiB included)
    comes back."""
    raw_yaml = ON

    def test_chromium_echo(self):
        super().test_chromium_echo()
        ext = test_browser.Collector.result["extensions"]
        print("Chromium negotiated: %s" % ext)
        self.assertTrue(ext.startswith(PMD), ext)


class ValgrindTest(test_valgrind.ValgrindTest):
    """Inflate is input parsing: compressed sessions under valgrind, both
    policies, with broadcasts, bad data and a decompression bomb."""
    test_hub_session_has_no_definite_leak = None    # run in test_valgrind
    test_echo_session_has_no_definite_leak = None

    def session(self, raw_yaml):
        srv = self.valgrind_server(workers=1, endpoints=HUB,
                                   raw_yaml=raw_yaml)
        with srv:
            async def clients():
                async with connect(srv.url("/echo"),
                                   compression="deflate") as ws:
                    for m in ("x" * 5000, b"\x01" * 70000, "short") * 2:
                        await ws.send(m)
                        await ws.recv()
                hub = [await connect(srv.url("/ws"), compression=c)
                       for c in ("deflate", "deflate", None)]
                for ws in hub:
                    await ws.recv()                         # welcome
                await hub[0].send(json.dumps({"type": "broadcast",
                                              "text": "news " * 100}))
                for ws in hub[1:]:
                    await ws.recv()
                for ws in hub:
                    await ws.close()
            arun(clients(), 120)
            bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
            bomb = bomb.compress(bytes(20 << 20)) + bomb.flush()
            for bad, code in ((b"\xff\xff\xff\xff", 1007), (bomb, 1009)):
                s, _ = pmd_socket(srv.port, "/echo")
                s.sendall(frame(2, bad, rsv=4))
                b0, data = read_frame(s)
                self.assertEqual((b0, data[:2]),
                                 (0x88, struct.pack("!H", code)))
                s.close()
            srv.signal(signal.SIGQUIT)
            self.finish(srv, 2)

    def test_default_policy(self):
        self.session(ON)

    def test_context_takeover(self):
        self.session(TAKEOVER)


class ConfigTest(unittest.TestCase):

    def check(self, section, line, key):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "wshub.yaml")
            with open(path, "w") as f:
                f.write("worker_processes: 1\ncompression:\n" + section)
            r = subprocess.run([WSHUBD, "-t", "-c", path], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=10)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, "%s:%d:\\d+: " % (path, line))
        self.assertIn(key, r.stderr)

    def test_bad_values(self):
        self.check("  enabled: maybe\n", 3, "compression.enabled")
        self.check("  level: 0\n", 3, "compression.level")
        self.check("  enabled: on\n  window_bits: 8\n", 4,
                   "compression.window_bits")
        self.check("  client_window_bits: 16\n", 3,
                   "compression.client_window_bits")
        self.check("  mem_level: 10\n", 3, "compression.mem_level")
        self.check("  min_size: lots\n", 3, "compression.min_size")
        self.check("  zlib: yes\n", 3, "zlib")

    def test_etc_file_loads(self):
        r = subprocess.run([WSHUBD, "-t", "-c",
                            os.path.join(SRCDIR, "etc", "wshub.yaml")],
                           text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    wshub_harness.main()
