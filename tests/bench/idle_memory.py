#!/usr/bin/python3
"""idle_memory.py -- server memory per idle WebSocket connection.

Starts one wshubd worker, reads the worker's RSS (/proc/PID/status VmRSS,
user-space memory: kernel socket buffers are not in it), opens N WebSocket
connections that complete the handshake and then stay idle, reads the RSS
again and reports (after - before) / N. A benchmark: it reports, it does
not assert.

    /usr/bin/python3 tests/bench/idle_memory.py [-n 10000] [--json] [--tls]
        [--warm] [--deflate [--takeover]]
        [--path /ws [--id] [--rooms K [--distinct-rooms]]]

With --tls the connections are wss:// (a throwaway CA and certificate are
made with the openssl command line) and opened one after another.
--deflate turns compression on and offers permessage-deflate as browsers
do; --takeover allows context takeover both ways (per-connection zlib
streams); --warm has every connection send one message (compressed with
--deflate) and read its echo first, so whatever a message leaves behind
(with --takeover: the zlib streams) is counted while it sits idle.

--path /ws measures the hub module (default /echo): a connection counts
as open once the hub's welcome has arrived. --id gives connection N the
client id mN (?id=mN; without it the hub generates one). --rooms K then
has every connection join the same K rooms r1..rK (pipelined join_room
requests, each waited for until its room_joined) and reads the RSS a
third time: the growth from the second reading, over N x K, is the cost
of one room membership. --distinct-rooms gives every connection K rooms
of its own instead (rN-1..rN-K), so each membership brings its room.
The hub's rooms are configured {match: "*", presence: count, announce:
off}: filling a room of N members with the default rules sends N
member lists and announces every join to every member (O(N^2)
messages), which would measure presence traffic rather than memory.
"""

import argparse
import base64
import json
import os
import resource
import selectors
import socket
import struct
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from wshub_harness import CertAuthority, Server, frame  # noqa: E402

REQUEST = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\n%s\r\n")
OFFER = ("Sec-WebSocket-Extensions: permessage-deflate; "
         "client_max_window_bits\r\n")


HUB_YAML = ("hub:\n  rooms:\n    - match: \"*\"\n      presence: count\n"
            "      announce: off\n")


def request(extra="", target="/echo"):
    return (REQUEST % (target, base64.b64encode(os.urandom(16)).decode(),
                       extra)).encode()


def check_head(head):
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError("handshake refused: %r" % head)


def server_frames(buf):
    """The complete unmasked frames at the start of BUF, as (opcode,
    payload), and the bytes left over."""
    frames = []
    while len(buf) >= 2:
        n, at = buf[1] & 0x7f, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < at + n:
            break
        frames.append((buf[0] & 0x0f, buf[at:at + n]))
        buf = buf[at + n:]
    return frames, buf


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def drive(n, start, input, window, what, timeout, progress):
    """N exchanges over non-blocking sockets, WINDOW at a time: START(i)
    sends exchange i's request and returns its socket, INPUT(s, data)
    takes what arrived and returns true once s's exchange is over."""
    sel = selectors.DefaultSelector()
    started = done = 0
    deadline = time.monotonic() + timeout
    while done < n:
        if time.monotonic() > deadline:
            raise RuntimeError("timed out with %d of %d %s" % (done, n, what))
        while started - done < window and started < n:
            sel.register(start(started), selectors.EVENT_READ)
            started += 1
        for key, _ in sel.select(5):
            s = key.fileobj
            data = s.recv(65536)
            if not data:
                raise RuntimeError("server closed a connection")
            if input(s, data):
                sel.unregister(s)
                done += 1
                if done % 1000 == 0:
                    progress("  %d connections %s" % (done, what))


def open_idle(port, n, progress, extra="", target=None, welcome=False):
    """Open n connections and complete their handshakes, in batches so
    the listen backlog never overflows. TARGET(i) is connection i's
    request target (default /echo); WELCOME: wait for the first message
    too (the hub's welcome), so the module has opened the connection."""
    socks, pending = [], {}
    target = target or (lambda i: "/echo")

    def start(i):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request(extra, target(i)))
        s.setblocking(False)
        pending[s] = b""
        socks.append(s)
        return s

    def input(s, data):
        pending[s] += data
        head, sep, rest = pending[s].partition(b"\r\n\r\n")
        if not sep:
            return False
        check_head(head)
        return not welcome or bool(server_frames(rest)[0])

    drive(n, start, input, 256, "open", 120, progress)
    return socks


def open_idle_tls(port, n, progress, ctx, extra="", target=None,
                  welcome=False):
    """open_idle over TLS, one blocking handshake at a time."""
    socks = []
    target = target or (lambda i: "/echo")
    for i in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 10),
                            server_hostname="127.0.0.1")
        s.sendall(request(extra, target(i)))
        data = b""
        while True:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep and (not welcome or server_frames(rest)[0]):
                break
            more = s.recv(4096)
            if not more:
                raise RuntimeError("server closed a connection")
            data += more
        check_head(head)
        socks.append(s)
        if (i + 1) % 1000 == 0:
            progress("  %d connections open" % (i + 1))
    return socks


def join_rooms(socks, rooms, progress):
    """Connection i joins the rooms ROOMS(i), all requests sent at once,
    and waits for as many room_joined. A few connections at a time: the
    master sends each joiner of a shared room the room's member list (up
    to N ids), and drops what a worker has not read past 64 MiB."""
    pending = {}

    def start(i):
        names = rooms(i)
        socks[i].sendall(b"".join(frame(1, json.dumps(
            {"type": "join_room", "room": r}).encode()) for r in names))
        pending[socks[i]] = [b"", len(names)]
        return socks[i]

    def input(s, data):
        st = pending[s]
        frames, st[0] = server_frames(st[0] + data)
        for op, payload in frames:
            msg = json.loads(payload)
            if msg.get("type") != "room_joined":
                raise RuntimeError("join answered with %r" % msg)
            st[1] -= 1
        return st[1] == 0

    drive(len(socks), start, input, max(4, 256 // max(1, len(rooms(0)))),
          "joined", 600, progress)


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
    ap.add_argument("--path", default="/echo",
                    help="endpoint: /echo (echo module) or /ws (hub)")
    ap.add_argument("--id", action="store_true",
                    help="client ids mN (?id=mN)")
    ap.add_argument("--rooms", type=int, default=0, metavar="K",
                    help="then every connection joins K rooms")
    ap.add_argument("--distinct-rooms", action="store_true",
                    help="K rooms per connection, not the same K for all")
    args = ap.parse_args()
    hub = args.path != "/echo"
    if args.rooms and not hub:
        ap.error("--rooms needs a hub endpoint (--path /ws)")
    raw_yaml = HUB_YAML if hub else ""
    extra = OFFER if args.deflate else ""
    if args.deflate:
        raw_yaml += "compression:\n  enabled: on\n"
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

    def target(i):
        return args.path + ("?id=m%d" % i if args.id else "")

    def opener(port, n, progress):
        return open_idle(port, n, progress, extra, target, hub)

    if args.tls:
        ca = CertAuthority(tmp.name)
        tls = ca.issue("server", 1)

        def opener(port, n, progress):
            return open_idle_tls(port, n, progress, ca.context(), extra,
                                 target, hub)

    if args.distinct_rooms:
        def rooms(i):
            return ["r%d-%d" % (i, k) for k in range(1, args.rooms + 1)]
    else:
        def rooms(i):
            return ["r%d" % k for k in range(1, args.rooms + 1)]

    endpoints = [{"path": args.path, "module": "hub" if hub else "echo"}]
    with Server(workers=1, max_connections=args.n + 10, ping_period=0,
                access_log="off", log_level="warn", tls=tls,
                endpoints=endpoints, raw_yaml=raw_yaml) as srv:
        worker = srv.workers()[0]
        # Warm up once so one-time allocations are not billed per conn.
        warmup = opener(srv.port, 10, progress)
        if args.rooms:
            join_rooms(warmup, rooms, progress)
        for s in warmup:
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
        result = {"connections": args.n, "path": args.path, "id": args.id,
                  "tls": args.tls,
                  "deflate": args.deflate, "takeover": args.takeover,
                  "warm": args.warm,
                  "rss_before_kib": before,
                  "rss_after_kib": after, "bytes_per_connection": round(per)}
        if args.rooms:
            progress("worker RSS %d KiB; joining %d rooms each"
                     % (after, args.rooms))
            join_rooms(socks, rooms, progress)
            time.sleep(1)
            joined = rss_kib(worker)
            member = (joined - after) * 1024 / (args.n * args.rooms)
            result.update({"rooms": args.rooms,
                           "distinct_rooms": args.distinct_rooms,
                           "rss_joined_kib": joined,
                           "bytes_per_membership": round(member)})
        if args.json:
            print(json.dumps(result))
        else:
            print("%d idle %s connections to %s: worker RSS %d -> %d KiB, "
                  "%.0f bytes per connection"
                  % (args.n, "wss://" if args.tls else "WebSocket",
                     args.path, before, after, per))
            if args.rooms:
                print("%d %s rooms each: worker RSS %d -> %d KiB, %.0f bytes "
                      "per membership"
                      % (args.rooms, "distinct" if args.distinct_rooms
                         else "shared", after, joined, member))
        for s in socks:
            s.close()


if __name__ == "__main__":
    main()
