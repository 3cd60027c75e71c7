#!/usr/bin/python3
"""test_ack.py -- what an acknowledgement means, and idempotency keys.

- POST /api/publish to a room with history is answered 202 once the
  sequencer (the master; Redis) has numbered the message, with its
  "offset" and "epoch"; other publishes are 202 when this worker has
  them.
- A WebSocket room_message, private_message or broadcast with an "id"
  gets {"type":"ack","id":...} (with offset and epoch in a room with
  history), or an error carrying the same id.
- Idempotency-Key (or "idempotency_key"): a retry within
  hub.idempotency_window is answered with the first result and
  published to nobody, on any worker and, with Redis, on any node.
- Answers that wait for the sequencer keep the HTTP/1.1 connection alive
  and requests pipelined behind them are answered in order; a drain
  finishes them instead of cutting them off; without an answer within
  handshake_timeout the request gets 504.

Real wshubd (2 workers with reuseport, so requests spread), real
redis-server, python3-websockets clients and raw HTTP.
"""

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import (Server, arun, connect, main, recv_json,  # noqa: E402
                            recv_type, wait_for)
from test_redis import Redis  # noqa: E402

API_KEY = "0123456789abcdef0123"
HUB_YAML = """hub:
  api_key: %s
  history:
    - rooms: "log:*"
      size: 1000
      ttl: 10m
""" % API_KEY
ENDPOINTS = [{"path": "/ws", "module": "hub"},
             {"path": "/api/publish", "module": "hub_api"}]


def server(workers=2, extra_yaml="", **kw):
    kw.setdefault("shutdown_spread", "100ms")
    return Server(workers=workers, reuseport=True, endpoints=ENDPOINTS,
                  raw_yaml=HUB_YAML + extra_yaml, **kw)


def publish(srv, body, key=None, conn=None):
    """POST /api/publish; (status, parsed body). A fresh connection
    unless CONN (an http.client connection, kept alive) is given."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    headers = {"Authorization": "apikey " + API_KEY,
               "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    try:
        conn.request("POST", "/api/publish", json.dumps(body), headers)
        r = conn.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data or b"null")
        except ValueError:
            return r.status, data.decode()
    finally:
        if own:
            conn.close()


async def member(srv, name, room):
    ws = await connect(srv.url("/ws?id=" + name))
    await recv_type(ws, "welcome")
    await ws.send(json.dumps({"type": "join_room", "room": room}))
    await recv_type(ws, "room_joined")
    return ws


async def room_messages(ws, quiet=0.7):
    """Every room_message until QUIET seconds pass without one."""
    out = []
    try:
        while True:
            msg = await recv_json(ws, quiet)
            if msg["type"] == "room_message":
                out.append(msg)
    except asyncio.TimeoutError:
        return out


class ApiAckTest(unittest.TestCase):

    def test_history_room_202_carries_the_position(self):
        with server() as srv:
            async def go():
                ws = await member(srv, "watcher", "log:api")
                first = publish(srv, {"room": "log:api", "data": {"n": 1}})
                second = publish(srv, {"room": "log:api", "data": {"n": 2}})
                self.assertEqual(first[0], 202)
                self.assertEqual(first[1]["offset"], 1)
                self.assertEqual(second[1]["offset"], 2)
                self.assertEqual(first[1]["epoch"], second[1]["epoch"])
                got = await room_messages(ws)
                self.assertEqual([(m["n"], m["offset"], m["epoch"])
                                  for m in got],
                                 [(1, 1, first[1]["epoch"]),
                                  (2, 2, first[1]["epoch"])])
                # A plain room: accepted by the worker, no position.
                status, body = publish(srv, {"room": "plain", "data": {}})
                self.assertEqual(status, 202)
                self.assertNotIn("offset", body)
                await ws.close()
            arun(go())

    def test_retries_with_a_key_publish_once(self):
        with server() as srv:
            async def go():
                hist = await member(srv, "h", "log:key")
                plain = await member(srv, "p", "plainkey")
                target = await connect(srv.url("/ws?id=target"))
                await recv_type(target, "welcome")
                # Ten tries each, over fresh connections: both workers
                # answer some of them.
                runs = {
                    "log:key": [publish(srv, {"room": "log:key",
                                              "data": {"n": 7}}, key="k-1")
                                for _ in range(10)],
                    "plainkey": [publish(srv, {"room": "plainkey",
                                               "data": {"n": 8},
                                               "idempotency_key": "k-1"})
                                 for _ in range(10)],
                    "to": [publish(srv, {"to": "target", "data": {"n": 9}},
                                   key="k-1") for _ in range(10)],
                }
                for name, answers in runs.items():
                    self.assertEqual({a[0] for a in answers}, {202}, name)
                    self.assertNotIn("duplicate", answers[0][1], name)
                    self.assertEqual([a[1].get("duplicate") for a in
                                      answers[1:]], [True] * 9, name)
                self.assertEqual({a[1]["offset"] for a in runs["log:key"]},
                                 {1})
                self.assertEqual([m["n"] for m in await room_messages(hist)],
                                 [7])
                self.assertEqual([m["n"] for m in await room_messages(plain)],
                                 [8])
                priv = []
                try:
                    while True:
                        priv.append(await recv_json(target, 0.7))
                except asyncio.TimeoutError:
                    pass
                self.assertEqual([m["n"] for m in priv
                                  if m["type"] == "private_message"], [9])
                # Nobody with that id: 404, on the first try and after.
                for _ in range(2):
                    self.assertEqual(publish(srv, {"to": "nobody",
                                                   "data": {}},
                                             key="k-2")[0], 404)
                for ws in (hist, plain, target):
                    await ws.close()
            arun(go())

    def test_api_key_compared_whole(self):
        """A key compared by digest (its length no longer shows in the
        time a wrong one takes): anything but the key itself is 401."""
        with server(workers=1) as srv:
            for wrong in (API_KEY[:-1], API_KEY + "x", "", "x" * 300,
                          API_KEY.upper()):
                conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                                  timeout=10)
                conn.request("POST", "/api/publish", json.dumps(
                    {"room": "r", "data": {}}),
                    {"Authorization": "apikey " + wrong})
                self.assertEqual(conn.getresponse().status, 401, wrong)
                conn.close()
            self.assertEqual(publish(srv, {"room": "r", "data": {}})[0], 202)

    def test_bad_keys_get_400(self):
        with server() as srv:
            self.assertEqual(publish(srv, {"room": "r", "data": {},
                                           "idempotency_key": 5})[0], 400)
            self.assertEqual(publish(srv, {"room": "r", "data": {}},
                                     key="x" * 129)[0], 400)

    def test_keep_alive_and_pipelining_behind_waiting_answers(self):
        with server(workers=1) as srv:
            conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                              timeout=10)
            offsets = [publish(srv, {"room": "log:ka", "data": {"n": n}},
                               conn=conn)[1]["offset"] for n in range(5)]
            self.assertEqual(offsets, [1, 2, 3, 4, 5])
            conn.close()
            self.assertEqual(len(srv.access_log().splitlines()), 5)
            # Three requests in one write: answered in order.
            body = json.dumps({"room": "log:ka", "data": {}})
            req = ("POST /api/publish HTTP/1.1\r\nHost: x\r\n"
                   "Authorization: apikey %s\r\nContent-Length: %d\r\n\r\n%s"
                   % (API_KEY, len(body), body)).encode()
            with socket.create_connection(("127.0.0.1", srv.port), 10) as s:
                s.sendall(req * 3)
                data = b""
                while data.count(b"HTTP/1.1 202") < 3:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, data)
                    data += chunk
            bodies = [part.split(b"\r\n\r\n", 1)[1].decode()
                      for part in data.split(b"HTTP/1.1 ")[1:]]
            self.assertEqual([json.JSONDecoder().raw_decode(b)[0]["offset"]
                              for b in bodies], [6, 7, 8])


def read_all(port):
    """True when no connection to PORT has unread input on the server
    side (ss: Recv-Q 0)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "sport",
                          "= :%d" % port], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    rows = [line.split() for line in out if line.strip()]
    return bool(rows) and all(row[0] == "0" for row in rows)


class DrainAnswersTest(unittest.TestCase):

    def test_a_waiting_answer_survives_the_drain(self):
        """The master is stopped, so a history publish waits for its
        number; the worker is told to stop meanwhile. When the master
        continues, the answer is written (202 with the offset), not cut
        off by the drain."""
        with server(workers=1, shutdown_timeout="20s") as srv:
            pid = srv.workers()[0]
            conn = http.client.HTTPConnection("127.0.0.1", srv.port,
                                              timeout=20)
            body = json.dumps({"room": "log:drain", "data": {"n": 1}})
            srv.signal(signal.SIGSTOP)
            try:
                conn.request("POST", "/api/publish", body, {
                    "Authorization": "apikey " + API_KEY})
                wait_for(lambda: read_all(srv.port), 10,
                         "the worker to read the request")
                os.kill(pid, signal.SIGQUIT)
                srv.wait_log("draining")
            finally:
                srv.signal(signal.SIGCONT)
            r = conn.getresponse()
            self.assertEqual(r.status, 202)
            self.assertEqual(json.loads(r.read())["offset"], 1)
            self.assertEqual(r.getheader("Connection"), "close")

    def test_no_answer_in_time_is_504(self):
        with server(workers=1, handshake_timeout="1s") as srv:
            srv.signal(signal.SIGSTOP)
            try:
                status, body = publish(srv, {"room": "log:late",
                                             "data": {}})
            finally:
                srv.signal(signal.SIGCONT)
            self.assertEqual(status, 504, body)


class WebSocketAckTest(unittest.TestCase):

    def test_ids_are_acknowledged(self):
        with server() as srv:
            async def go():
                a = await member(srv, "a", "log:ws")
                await a.send(json.dumps({"type": "join_room",
                                         "room": "plainws"}))
                await recv_type(a, "room_joined")
                b = await member(srv, "b", "log:ws")
                for n, room in enumerate(["log:ws", "log:ws", "plainws"]):
                    await a.send(json.dumps({"type": "room_message",
                                             "room": room, "id": n}))
                # The plain room's is sent at once, the others once
                # numbered: by id, not in order.
                acks = sorted([await recv_type(a, "ack") for _ in range(3)],
                              key=lambda x: x["id"])
                self.assertEqual([x["id"] for x in acks], [0, 1, 2])
                self.assertEqual([x.get("offset") for x in acks],
                                 [1, 2, None])
                self.assertEqual(acks[0]["epoch"], acks[1]["epoch"])
                got = await room_messages(b)
                self.assertEqual([(m["id"], m["offset"]) for m in got],
                                 [(0, 1), (1, 2)])
                await a.send(json.dumps({"type": "broadcast", "id": "bc"}))
                self.assertEqual((await recv_type(a, "ack"))["id"], "bc")
                await a.send(json.dumps({"type": "private_message",
                                         "to": "b", "id": {"x": 1}}))
                self.assertEqual((await recv_type(a, "ack"))["id"],
                                 {"x": 1})
                # Errors carry the id of the request they answer.
                await a.send(json.dumps({"type": "room_message",
                                         "room": "elsewhere", "id": "e1"}))
                err = await recv_type(a, "error")
                self.assertEqual((err["error"], err["id"]),
                                 ("Not in room", "e1"))
                await a.close()
                await b.close()
            arun(go())


class RedisAckTest(unittest.TestCase):
    """On the Redis engine, Redis is the sequencer: the 202 of a history
    publish carries the offset Redis gave, and a key retried on another
    node publishes nothing."""

    def node(self, redis):
        srv = server(extra_yaml="engine:\n  type: redis\n  redis:\n"
                     "    port: %d\n" % redis.port)
        self.addCleanup(srv.stop)
        return srv.start()

    def test_acks_and_keys_across_two_nodes(self):
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        a, b = self.node(redis), self.node(redis)

        async def go():
            hist = await member(b, "h", "log:r")
            plain = await member(b, "p", "plainr")
            first = publish(a, {"room": "log:r", "data": {"n": 1}}, key="r1")
            again = publish(b, {"room": "log:r", "data": {"n": 1}}, key="r1")
            self.assertEqual(first, (202, {"offset": 1,
                                           "epoch": first[1]["epoch"]}))
            self.assertEqual(again[1], dict(first[1], duplicate=True))
            self.assertEqual(publish(b, {"room": "log:r", "data": {"n": 2}}
                                     )[1]["offset"], 2)
            self.assertEqual([m["n"] for m in await room_messages(hist)],
                             [1, 2])
            for srv in (a, b, a):
                status, body = publish(srv, {"room": "plainr",
                                             "data": {"n": 3}}, key="r2")
                self.assertEqual(status, 202)
            self.assertEqual([m["n"] for m in await room_messages(plain)],
                             [3])
            self.assertEqual(publish(a, {"to": "nobody", "data": {}},
                                     key="r3")[0], 404)
            ws = await member(a, "w", "log:r")
            await ws.send(json.dumps({"type": "room_message", "room": "log:r",
                                      "id": "x"}))
            ack = await recv_type(ws, "ack")
            self.assertEqual((ack["id"], ack["offset"]), ("x", 3))
            for w in (hist, plain, ws):
                await w.close()
        arun(go(), timeout=60)


if __name__ == "__main__":
    main()
