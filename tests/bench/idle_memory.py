#!/usr/bin/python3
"""idle_memory.py -- server memory per idle WebSocket connection.

Starts one wshubd worker, reads the worker's RSS (/proc/PID/status VmRSS,
user-space memory: kernel socket buffers are not in it), opens N WebSocket
connections that complete the handshake and then stay idle, reads the RSS
again and reports (after - before) / N. A benchmark: it reports, it does
not assert.

    /usr/bin/python3 tests/bench/idle_memory.py [-n 10000] [--json] [--tls]
        [--warm] [--deflate [--takeover]]

With --tls the connections are wss:// (a throwaway CA and certificate are
made with the openssl command line) and opened one after another.
--deflate turns compression on and offers permessage-deflate as browsers
do; --takeover allows context takeover both ways (per-connection zlib
streams); --warm has every connection send one message (compressed with
--deflate) and read its echo first, so whatever a message leaves behind
(with --takeover: the zlib streams) is counted while it sits idle.
"""

import argparse
import base64
import json
import os
import resource
import selectors
import socket
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from wshub_harness import CertAuthority, Server, frame  # noqa: E402

REQUEST = ("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n%s\r\n")
OFFER = ("Sec-WebSocket-Extensions: permessage-deflate; "
         "client_max_window_bits\r\n")


def request(extra=""):
    return (REQUEST % (base64.b64encode(os.urandom(16)).decode(),
                       extra)).encode()


def check_head(head):
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError("handshake refused: %r" % head)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_idle(port, n, progress, extra=""):
    """Open n connections and complete their handshakes, in batches so
    the listen backlog never overflows."""
    sel = selectors.DefaultSelector()
    socks, pending = [], {}
    done = 0
    deadline = time.monotonic() + 120
    while done < n:
        if time.monotonic() > deadline:
            raise RuntimeError("timed out with %d of %d open" % (done, n))
        while len(pending) < 256 and len(socks) < n:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request(extra))
            s.setblocking(False)
            pending[s] = b""
            socks.append(s)
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(5):
            s = key.fileobj
            data = s.recv(4096)
            if not data:
                raise RuntimeError("server closed a connection")
            pending[s] += data
            if b"\r\n\r\n" in pending[s]:
                check_head(pending[s])
                sel.unregister(s)
                del pending[s]
                done += 1
                if done % 1000 == 0:
                    progress("  %d connections open" % done)
    return socks


def open_idle_tls(port, n, progress, ctx, extra=""):
    """open_idle over TLS, one blocking handshake at a time."""
    socks = []
    for i in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 10),
                            server_hostname="127.0.0.1")
        s.sendall(request(extra))
        head = b""
        while b"\r\n\r\n" not in head:
            data = s.recv(4096)
            if not data:
                raise RuntimeError("server closed a connection")
            head += data
        check_head(head)
        socks.append(s)
        if (i + 1) % 1000 == 0:
            progress("  %d connections open" % (i + 1))
    return socks


def warm(socks, deflate):
    """One 1 KiB JSON-ish message each (compressed with DEFLATE), and its
    echo read."""
    text = b'{"type":"message","text":"hello"}' * 30
    data = frame(1, text)
    if deflate:
        z = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH)
        data = frame(1, payload[:-4], rsv=4)
    for s in socks:
        s.setblocking(True)
        s.settimeout(10)
        s.sendall(data)
    for s in socks:
        if not s.recv(65536):
            raise RuntimeError("server closed a connection")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--tls", action="store_true", help="wss:// connections")
    ap.add_argument("--deflate", action="store_true")
    ap.add_argument("--takeover", action="store_true")
    ap.add_argument("--warm", action="store_true")
    args = ap.parse_args()
    raw_yaml = ""
    extra = OFFER if args.deflate else ""
    if args.deflate:
        raw_yaml = "compression:\n  enabled: on\n"
        if args.takeover:
            raw_yaml += ("  server_context_takeover: on\n"
                         "  client_context_takeover: on\n")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.n + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    def progress(msg):
        print(msg, file=sys.stderr, flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="wshub-bench-")
    tls = ca = None

    def opener(port, n, progress):
        return open_idle(port, n, progress, extra)

    if args.tls:
        ca = CertAuthority(tmp.name)
        tls = ca.issue("server", 1)

        def opener(port, n, progress):
            return open_idle_tls(port, n, progress, ca.context(), extra)

    with Server(workers=1, max_connections=args.n + 10, ping_period=0,
                access_log="off", log_level="warn", tls=tls,
                raw_yaml=raw_yaml) as srv:
        worker = srv.workers()[0]
        # Warm up once so one-time allocations are not billed per conn.
        for s in opener(srv.port, 10, progress):
            s.close()
        time.sleep(0.5)
        before = rss_kib(worker)
        progress("worker %d RSS before: %d KiB; opening %d connections"
                 % (worker, before, args.n))
        socks = opener(srv.port, args.n, progress)
        if args.warm:
            warm(socks, args.deflate)
        time.sleep(1)
        after = rss_kib(worker)
        per = (after - before) * 1024 / args.n
        result = {"connections": args.n, "tls": args.tls,
                  "deflate": args.deflate, "takeover": args.takeover,
                  "warm": args.warm,
                  "rss_before_kib": before,
                  "rss_after_kib": after, "bytes_per_connection": round(per)}
        if args.json:
            print(json.dumps(result))
        else:
            print("%d idle %s connections: worker RSS %d -> %d KiB, "
                  "%.0f bytes per connection" % (args.n, "wss://" if args.tls
                                                  else "WebSocket", before,
                                                  after, per))
        for s in socks:
            s.close()


if __name__ == "__main__":
    main()
