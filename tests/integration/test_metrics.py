"""test_metrics.py -- GET /metrics: Prometheus text summed over workers.

Every scrape is parsed with a real Prometheus text parser (Debian's
python3-prometheus-client). With 4 workers the counters must be the
sum over all of them whichever worker answers; across reloads and a
worker SIGKILL no counter may go down.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import (WSHUBD, Server, arun, connect,  # noqa: E402
                           free_port, http, recv_type, upgrade_request,
                           wait_for)

from prometheus_client.parser import text_string_to_metric_families  # noqa

import websockets  # noqa: E402

ENDPOINTS = [{"path": "/echo", "module": "echo"},
             {"path": "/ws", "module": "hub"},
             {"path": "/metrics", "module": "metrics"}]


def scrape(port):
    return scrape_path(port, "/metrics")


def scrape_path(port, path):
    st, h, body = http(port, b"GET %s HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n" % path.encode())
    assert st == 200, (st, body)
    assert h["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    types = {}
    for fam in text_string_to_metric_families(body.decode()):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, "duplicate sample %r" % (key,)
            samples[key] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def monotonic_keys(samples, types):
    """Samples that Prometheus requires never to decrease: those of
    counters and of histograms (their buckets, count and sum)."""
    out = {}
    for (name, labels), v in samples.items():
        for suffix in ("_total", "_bucket", "_count", "_sum", ""):
            fam = name[:len(name) - len(suffix)] if suffix else name
            if name.endswith(suffix) and fam in types:
                break
        if types.get(fam) in ("counter", "histogram"):
            out[(name, labels)] = v
    return out


def check_histograms(test, samples, types):
    """Each histogram's buckets never decrease as le grows, and the +Inf
    bucket is its _count."""
    series = {}
    for (name, labels), v in samples.items():
        fam = name[:-len("_bucket")]
        if name.endswith("_bucket") and types.get(fam) == "histogram":
            rest = tuple(kv for kv in labels if kv[0] != "le")
            le = float(dict(labels)["le"])
            series.setdefault((fam, rest), []).append((le, v))
    test.assertIn(("websocket_connection_duration_seconds",
                   (("reason", "normal"),)), series)
    for (fam, rest), buckets in series.items():
        buckets.sort()
        counts = [v for _, v in buckets]
        test.assertEqual(counts, sorted(counts),
                         "%s%s: buckets decrease as le grows: %s"
                         % (fam, dict(rest), buckets))
        test.assertEqual(buckets[-1], (float("inf"),
                                       value(samples, fam + "_count",
                                             **dict(rest))))


class MetricsTest(unittest.TestCase):

    def test_sum_over_four_workers(self):
        n_clients, n_msgs = 40, 5
        with Server(workers=4, endpoints=ENDPOINTS) as srv:
            srv.wait_workers(4)

            async def go():
                conns = [await websockets.connect(srv.url("/echo"))
                         for _ in range(n_clients)]
                for ws in conns:
                    for i in range(n_msgs):
                        await ws.send("m%d" % i)
                        await ws.recv()
                await conns[0].send(b"\x00\x01")
                await conns[0].recv()
                # Eight scrapes land on various workers: the sums must
                # not depend on which one answers.
                scrapes = [scrape(srv.port) for _ in range(8)]
                for ws in conns:
                    await ws.close()
                return scrapes

            for s, types in arun(go()):
                self.assertEqual(value(s, "websocket_connections_total",
                                       status="accepted"), n_clients)
                self.assertEqual(value(s, "websocket_active_connections"),
                                 n_clients)
                self.assertEqual(value(s, "websocket_messages_total",
                                       direction="in", type="text"),
                                 n_clients * n_msgs)
                self.assertEqual(value(s, "websocket_messages_total",
                                       direction="in", type="binary"), 1)
                self.assertEqual(value(s, "websocket_messages_total",
                                       direction="out", type="text"),
                                 n_clients * n_msgs)
                self.assertEqual(value(s, "wshub_workers", generation="0"),
                                 4)
                self.assertEqual(value(s, "wshub_build_info",
                                       version="0.1.0"), 1)
                self.assertEqual(value(s, "wshub_engine_up", engine="local"),
                                 1)
                self.assertEqual(value(
                    s, "websocket_message_size_bytes_count", direction="in"),
                    n_clients * n_msgs + 1)
                per_worker = [v for (name, _), v in s.items()
                              if name == "wshub_worker_connections"]
                self.assertEqual(sum(per_worker), n_clients)
                self.assertGreater(len([v for v in per_worker if v]), 1,
                                   "connections should spread over workers")
                self.assertEqual(
                    types["websocket_connection_duration_seconds"],
                    "histogram")

            def closed():
                s, _ = scrape(srv.port)
                return (value(s, "websocket_active_connections") == 0
                        and value(s, "websocket_connection_duration_seconds"
                                  "_count", reason="normal") == n_clients)
            wait_for(closed, 10, "every close counted", srv.log)

    def test_errors_and_rejections(self):
        with Server(workers=2, endpoints=ENDPOINTS) as srv:
            st, _, _ = http(srv.port, b"GET /nope HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n")
            self.assertEqual(st, 404)
            st, _, _ = http(srv.port, b"GET /echo HTTP/1.1\r\nHost: x\r\n"
                                      b"Upgrade: websocket\r\n"
                                      b"Connection: Upgrade\r\n\r\n")
            self.assertEqual(st, 426)
            s, _ = scrape(srv.port)
            self.assertEqual(value(s, "websocket_errors_total",
                                   component="http", error_type="not_found"),
                             1)
            self.assertEqual(value(s, "websocket_errors_total",
                                   component="http",
                                   error_type="bad_handshake"), 1)
            self.assertEqual(value(s, "websocket_connections_total",
                                   status="rejected"), 1)

            async def bad_utf8():
                ws = await websockets.connect(srv.url("/echo"))
                await ws.send(b"")      # warm up
                await ws.recv()
                # A text frame that is not UTF-8, sent raw.
                ws.transport.write(bytes([0x81, 0x82, 0, 0, 0, 0,
                                          0xc3, 0x28]))
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except websockets.ConnectionClosed:
                    pass
                return ws.close_code
            self.assertEqual(arun(bad_utf8()), 1007)
            wait_for(lambda: value(scrape(srv.port)[0],
                                   "websocket_errors_total",
                                   component="websocket",
                                   error_type="invalid_data") == 1,
                     10, "the 1007 counted", srv.log)

    def test_allow_list(self):
        eps = [{"path": "/metrics", "module": "metrics",
                "allow": ["10.0.0.0/8", "'::1'"]},
               {"path": "/m2", "module": "metrics",
                "allow": ["127.0.0.1/32"]}]
        with Server(workers=1, endpoints=eps) as srv:
            st, _, body = http(srv.port, b"GET /metrics HTTP/1.1\r\n"
                                         b"Host: x\r\n\r\n")
            self.assertEqual(st, 403)
            srv.wait_log("address not in the allow list of /metrics, client: "
                         "127.0.0.1:")
            st, _, _ = http(srv.port, b"GET /m2 HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(st, 200)
            s, _ = scrape_path(srv.port, "/m2")
            self.assertEqual(value(s, "websocket_errors_total",
                                   component="http", error_type="forbidden"),
                             1)

    def test_separate_listener(self):
        other = free_port()
        eps = [{"path": "/echo", "module": "echo"},
               {"path": "/metrics", "module": "metrics",
                "listen": ["127.0.0.1:%d" % other]}]
        srv = Server(workers=2, endpoints=eps)
        srv.conf["listen"].append("127.0.0.1:%d" % other)
        srv.write_conf()
        with srv:
            wait_for(lambda: http(other, b"GET /metrics HTTP/1.1\r\n"
                                         b"Host: x\r\n\r\n")[0] == 200,
                     10, "metrics on the second listener", srv.log)
            st, _, _ = http(srv.port, b"GET /metrics HTTP/1.1\r\n"
                                      b"Host: x\r\n\r\n")
            self.assertEqual(st, 404)
            # Endpoints without "listen" are served everywhere.
            st, _, _ = http(other, upgrade_request(other, "/echo"))
            self.assertEqual(st, 101)
        # An address that is not a listen entry is a config error.
        eps[1]["listen"] = ["127.0.0.1:1"]
        bad = Server(workers=1, endpoints=eps)
        r = subprocess.run([WSHUBD, "-t", "-c", bad.conf_file],
                           capture_output=True, text=True, timeout=10)
        bad.tmp.cleanup()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('endpoints[1].listen[0]: "127.0.0.1:1" is not one of '
                      'the listen addresses', r.stderr)

    def test_room_deliveries_counted(self):
        """A room message's deliveries are counted once per publish (the
        shared frame's count), not once per recipient: the counters must
        still say exactly what each recipient got, with permessage-
        deflate recipients counted at the size before compression."""
        n_msgs = 7

        def delta(before, after, name, **labels):
            return value(after, name, **labels) - value(before, name,
                                                         **labels)

        async def go(srv):
            url = srv.url("/ws")
            pub = await connect(url)
            members = [await connect(url) for _ in range(3)]
            members += [await connect(url, compression="deflate")
                        for _ in range(2)]
            for ws in members[3:]:
                self.assertIn("permessage-deflate", ws.response_headers.get(
                    "Sec-WebSocket-Extensions", ""))
            for ws in [pub] + members:
                await recv_type(ws, "welcome")
                await ws.send('{"type":"join_room","room":"count"}')
                await recv_type(ws, "room_joined")
            before, _ = scrape(srv.port)
            for i in range(n_msgs):
                await pub.send(json.dumps({"type": "room_message",
                                           "room": "count",
                                           "text": "x" * (10 * i)}))
            got = []
            for ws in members:
                for i in range(n_msgs):
                    text = await asyncio.wait_for(ws.recv(), 10)
                    self.assertEqual(json.loads(text)["type"],
                                     "room_message")
                    got.append(len(text.encode()))
            after, _ = scrape(srv.port)
            for ws in [pub] + members:
                await ws.close()
            return before, after, got

        # No join announcements: the members get the messages alone.
        # Two members compress: they share the frame's deflated copy.
        with Server(workers=1, endpoints=ENDPOINTS,
                    hub={"rooms": [{"match": "count",
                                    "announce": "off"}]},
                    raw_yaml="compression:\n  enabled: on\n"
                             "  min_size: 0\n") as srv:
            before, after, got = arun(go(srv))
        n = len(got)
        self.assertEqual(n, 5 * n_msgs)
        self.assertEqual(delta(before, after, "websocket_messages_total",
                               direction="out", type="text"), n)
        self.assertEqual(delta(before, after,
                               "websocket_message_bytes_total",
                               direction="out"), sum(got))
        self.assertEqual(delta(before, after,
                               "websocket_message_size_bytes_count",
                               direction="out"), n)
        self.assertEqual(delta(before, after,
                               "websocket_message_size_bytes_sum",
                               direction="out"), sum(got))

    def test_rooms(self):
        """wshub_rooms{size_le}: rooms now of at most size_le members.
        Sizes 1, 1, 2, 3 and 6, then 6 down to 2, then none."""
        sizes = {"one": 1, "one2": 1, "pair": 2, "trio": 3, "big": 6}

        def expect(s, counts):
            self.assertEqual(value(s, "websocket_rooms_total"),
                             counts["+Inf"])
            for le, n in counts.items():
                self.assertEqual(value(s, "wshub_rooms", size_le=le), n,
                                 "wshub_rooms{size_le=%s}" % le)

        async def go(srv):
            conns = [await connect(srv.url("/ws")) for _ in range(6)]
            for ws in conns:
                await recv_type(ws, "welcome")
            for room, n in sizes.items():
                for ws in conns[:n]:
                    await ws.send(json.dumps({"type": "join_room",
                                              "room": room}))
                    await recv_type(ws, "room_joined")
            first = scrape(srv.port)
            for ws in conns[2:]:
                await ws.send('{"type":"leave_room","room":"big"}')
                await recv_type(ws, "room_left")
            second = scrape(srv.port)
            for ws in conns:
                await ws.close()
            return first, second

        with Server(workers=1, endpoints=ENDPOINTS) as srv:
            (first, types), (second, _) = arun(go(srv))
            self.assertEqual(types["wshub_rooms"], "gauge")
            self.assertNotIn("websocket_clients_per_room", types)
            expect(first, {"1": 2, "2": 3, "5": 4, "10": 5, "100": 5,
                           "10000": 5, "+Inf": 5})
            expect(second, {"1": 2, "2": 4, "5": 5, "10": 5, "+Inf": 5})
            wait_for(lambda: value(scrape(srv.port)[0], "wshub_rooms",
                                   size_le="+Inf") == 0,
                     10, "no room left", srv.log)
            expect(scrape(srv.port)[0], {"1": 0, "2": 0, "5": 0, "+Inf": 0})

    def test_valid_prometheus_across_joins_and_leaves(self):
        """Issue 19: websocket_clients_per_room was a histogram whose
        buckets went down on leaves; Prometheus reads a falling bucket
        as a counter reset. Across joins, leaves and disconnects on two
        workers, no counter or histogram sample may decrease, and every
        scrape's histograms must have buckets non-decreasing in le."""
        async def go(srv):
            scrapes = [scrape(srv.port)]
            conns = [await connect(srv.url("/ws")) for _ in range(12)]
            for i, ws in enumerate(conns):
                await recv_type(ws, "welcome")
                for room in ("lobby", "r%d" % (i % 3)):
                    await ws.send(json.dumps({"type": "join_room",
                                              "room": room}))
                    await recv_type(ws, "room_joined")
            scrapes.append(scrape(srv.port))
            for ws in conns[:8]:
                await ws.send('{"type":"leave_room","room":"lobby"}')
                await recv_type(ws, "room_left")
            scrapes.append(scrape(srv.port))
            for ws in conns[4:]:
                await ws.close()
            scrapes.append(scrape(srv.port))
            for ws in conns[:4]:
                await ws.close()
            return scrapes

        with Server(workers=2, endpoints=ENDPOINTS) as srv:
            srv.wait_workers(2)
            scrapes = arun(go(srv))
            wait_for(lambda: value(scrape(srv.port)[0],
                                   "websocket_active_connections") == 0,
                     10, "every client gone", srv.log)
            scrapes.append(scrape(srv.port))
            prev = None
            for step, (s, types) in enumerate(scrapes):
                check_histograms(self, s, types)
                cur = monotonic_keys(s, types)
                for key, v in (prev or {}).items():
                    self.assertGreaterEqual(
                        cur.get(key, 0), v,
                        "%s went down at scrape %d" % (key, step))
                prev = cur
            # Before the first client and after the last, no room.
            for s, _ in (scrapes[0], scrapes[-1]):
                self.assertEqual(value(s, "websocket_rooms_total"), 0)

    def test_rooms_gauge_returns_to_zero(self):
        """Issue 19: a leave passed the member count already decremented,
        so every leave of a room's last member counted one more room
        (409 rooms with nobody in them after a test). Joins on two
        workers, leaves and disconnects: the gauge must come back to 0."""
        n = 24
        rooms = lambda i: ("all", "r%d" % (i % 4), "solo%d" % i)  # noqa

        async def go(srv):
            conns = [await connect(srv.url("/ws")) for _ in range(n)]
            for i, ws in enumerate(conns):
                await recv_type(ws, "welcome")
                for room in rooms(i):
                    await ws.send(json.dumps({"type": "join_room",
                                              "room": room}))
                    await recv_type(ws, "room_joined")
            joined = scrape(srv.port)[0]
            # Half leave every room, one by one, then close; the others
            # just close (the leave of a connection that goes away).
            for i, ws in enumerate(conns[:n // 2]):
                for room in rooms(i):
                    await ws.send(json.dumps({"type": "leave_room",
                                              "room": room}))
                    await recv_type(ws, "room_left")
            for ws in conns:
                await ws.close()
            return joined

        with Server(workers=2, endpoints=ENDPOINTS) as srv:
            srv.wait_workers(2)
            joined = arun(go(srv))
            # Counted once per worker holding members: n solo rooms, and
            # "all" and r0-r3 on one or both workers.
            self.assertGreaterEqual(value(joined, "websocket_rooms_total"),
                                    n + 5)
            self.assertLessEqual(value(joined, "websocket_rooms_total"),
                                 n + 10)
            last = []

            def empty():
                s = scrape(srv.port)[0]
                last[:] = [value(s, "websocket_rooms_total")]
                return (last[0] == 0
                        and value(s, "websocket_active_connections") == 0)
            try:
                wait_for(empty, 10, "websocket_rooms_total back to 0")
            except AssertionError:
                self.fail("websocket_rooms_total is %s with every client "
                          "gone" % last[0])

    def test_counters_survive_reloads_and_kill(self):
        with Server(workers=2, endpoints=ENDPOINTS,
                    shutdown_timeout="5s") as srv:
            pids = srv.wait_workers(2)

            async def traffic(k):
                for _ in range(k):
                    async with websockets.connect(srv.url("/echo")) as ws:
                        await ws.send("x")
                        await ws.recv()

            arun(traffic(6))
            prev = monotonic_keys(*scrape(srv.port))
            accepted = value(prev, "websocket_connections_total",
                             status="accepted")
            self.assertEqual(accepted, 6)

            def check(step):
                cur = monotonic_keys(*scrape(srv.port))
                for key, v in prev.items():
                    self.assertGreaterEqual(
                        cur.get(key, 0), v,
                        "%s went down after %s" % (key, step))
                return cur

            for i in range(3):
                srv.signal(signal.SIGHUP)
                srv.wait_log("reload done: generation %d" % (i + 1))
                old = set(pids)

                def replaced():
                    w = srv.workers()
                    return w if len(w) == 2 and not set(w) & old else None
                pids = wait_for(replaced, 15, "old workers gone", srv.log)
                arun(traffic(2))
                prev = check("reload %d" % (i + 1))
                self.assertEqual(value(prev, "wshub_reloads_total"), i + 1)
            victim = pids[0]
            os.kill(victim, signal.SIGKILL)
            srv.wait_workers(2, exclude=(victim,))
            arun(traffic(1))
            cur = check("SIGKILL of a worker")
            self.assertEqual(value(cur, "websocket_connections_total",
                                   status="accepted"), 6 + 3 * 2 + 1)
            s, _ = scrape(srv.port)
            self.assertEqual(value(s, "wshub_workers", generation="3"), 2)


if __name__ == "__main__":
    unittest.main()
