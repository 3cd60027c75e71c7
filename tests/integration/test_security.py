#!/usr/bin/python3
"""Attacks on identity and on the publish API's door (issue 19), each
written as the attacker would try it against a real wshubd:

- an unauthenticated client on /ws claiming the id of a client verified
  on /secure gets none of its private messages, cannot speak as it, and
  in a shared realm gets a generated id instead;
- POST to a WebSocket endpoint publishes nothing, a WebSocket upgrade
  on the publish API is refused;
- a keyless 16 MiB POST is refused with 401 before its body is read:
  the worker's memory does not grow;
- 300 half-sent requests from one address (slowloris) leave other
  addresses served, and the refusals are counted in /metrics.
"""
import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import (Server, arun, connect, http,  # noqa: E402
                           quiet, recv_json, upgrade_request)
from test_auth import SECRET, config_test, future, hs_token  # noqa: E402

API_KEY = "security-test-key-0123456789"


def jwt_yaml():
    return ("auth_jwt:\n  algorithm: HS256\n  secret: \"%s\"\n"
            "hub:\n  api_key: %s\n" % (SECRET, API_KEY))


def token(sub, rooms):
    return hs_token({"sub": sub, "rooms": rooms, "exp": future()})




def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RealmTest(unittest.TestCase):
    """/secure (auth: jwt) and /ws (no auth) side by side, as in the
    shipped etc/wshub.yaml."""

    def test_cross_endpoint_impersonation_fails(self):
        eps = [{"path": "/secure", "module": "hub", "auth": "jwt"},
               {"path": "/ws", "module": "hub"},
               {"path": "/api/publish", "module": "hub_api"}]
        with Server(workers=2, endpoints=eps, raw_yaml=jwt_yaml()) as srv:
            async def main():
                sec = srv.url("/secure")
                async with connect(sec, extra_headers={
                        "Authorization": "Bearer " + token(
                            "alice", ["chat:*"])}) as alice, \
                        connect(sec, extra_headers={
                            "Authorization": "Bearer " + token(
                                "bob", ["*"])}) as bob, \
                        connect(srv.url("/ws") + "?id=alice") as mallory:
                    self.assertEqual((await recv_json(alice))["id"], "alice")
                    await recv_json(bob)
                    # /ws is its own realm: the id is free there, and
                    # that is all it is.
                    self.assertEqual((await recv_json(mallory))["id"],
                                     "alice")
                    await bob.send(json.dumps({
                        "type": "private_message", "to": "alice",
                        "text": "for alice only"}))
                    got = await recv_json(alice)
                    self.assertEqual((got["text"], got["from"]),
                                     ("for alice only", "bob"))
                    self.assertEqual(await quiet(mallory), [])
                    # Mallory in "staff", which alice's token forbids:
                    # bob's staff is another realm's room.
                    await bob.send(json.dumps({"type": "join_room",
                                               "room": "staff"}))
                    self.assertEqual((await recv_json(bob))["type"],
                                     "room_joined")
                    await mallory.send(json.dumps({"type": "join_room",
                                                   "room": "staff"}))
                    joined = await recv_json(mallory)
                    self.assertEqual(joined["members"], ["alice"])
                    await mallory.send(json.dumps({
                        "type": "room_message", "room": "staff",
                        "text": "I am alice"}))
                    self.assertEqual(await quiet(bob), [])
                    # And mallory's private message to bob reaches no
                    # bob of hers.
                    await mallory.send(json.dumps({
                        "type": "private_message", "to": "bob",
                        "text": "hi"}))
                    err = await recv_json(mallory)
                    self.assertEqual(err["error"], "User not found")
                    self.assertEqual(await quiet(bob), [])
            arun(main())

    def test_shared_realm_refuses_claimed_ids(self):
        """/secure and /ws in one realm: /ws clients share the rooms but
        get generated ids only, so a verified id cannot be borrowed."""
        eps = [{"path": "/secure", "module": "hub", "auth": "jwt",
                "realm": "chat"},
               {"path": "/ws", "module": "hub", "realm": "chat"},
               {"path": "/api/publish", "module": "hub_api"}]
        with Server(workers=2, endpoints=eps, raw_yaml=jwt_yaml()) as srv:
            async def main():
                async with connect(srv.url("/secure"), extra_headers={
                        "Authorization": "Bearer " + token(
                            "alice", ["*"])}) as alice, \
                        connect(srv.url("/ws") + "?id=alice") as guest:
                    self.assertEqual((await recv_json(alice))["id"], "alice")
                    gid = (await recv_json(guest))["id"]
                    self.assertTrue(gid.startswith("u-"), gid)
                    for ws in (alice, guest):
                        await ws.send(json.dumps({"type": "join_room",
                                                  "room": "lobby"}))
                        await recv_json(ws)
                    await guest.send(json.dumps({
                        "type": "room_message", "room": "lobby",
                        "text": "hello"}))
                    got = await recv_json(alice)
                    while got["type"] != "room_message":
                        got = await recv_json(alice)
                    self.assertEqual(got["from"], gid)
                    # The publish API names this realm without being told
                    # (it is the only one).
                    body = json.dumps({"room": "lobby",
                                       "data": {"text": "news"}})
                    status, _, _ = http(srv.port, (
                        "POST /api/publish HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: apikey %s\r\nContent-Length: %d"
                        "\r\n\r\n%s" % (API_KEY, len(body), body)).encode())
                    self.assertEqual(status, 202)
                    got = await recv_json(alice)
                    self.assertEqual((got["text"], got["from"]),
                                     ("news", "server"))
            arun(main())

    def test_realm_config_errors(self):
        for realm in ('"a#b"', '"a b"', "x" * 65):
            status, err, _ = config_test(
                "endpoints:\n  - path: /ws\n    module: hub\n"
                "    realm: %s\n" % realm)
            self.assertEqual(status, 1, err)
            self.assertIn("endpoints[0].realm", err)
            self.assertIn("is not a realm", err)
        # A path too long to be its own realm (fuzz_conf found it crashed
        # the check of realms once).
        status, err, _ = config_test(
            "endpoints:\n  - path: /%s\n    module: hub\n"
            "  - path: /ws\n    module: hub\n" % ("x" * 70))
        self.assertEqual(status, 1, err)
        self.assertIn(":2:11: endpoints[0].path: over 64 bytes", err)


def half_sent(port, n):
    """N connections from 127.0.0.1, each with a request head that never
    ends; the caller closes them."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), 10)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    return socks


def probe(port):
    """A complete request from another address, 127.0.0.2: its status,
    or 0 when the connection failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), 5,
                                      source_address=("127.0.0.2", 0)) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return 0
                data += chunk
            return int(data.split()[1])
    except OSError:
        return 0


def refused(port):
    """wshub_refused_total by reason, scraped from 127.0.0.2."""
    with socket.create_connection(("127.0.0.1", port), 5,
                                  source_address=("127.0.0.2", 0)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    out = {}
    for line in data.decode().splitlines():
        if line.startswith("wshub_refused_total{"):
            reason = line.split('"')[1]
            out[reason] = int(line.split()[-1])
    return out


class SlowlorisTest(unittest.TestCase):
    """0.1.0: 120 half-sent requests from one address kept every other
    client out (0 of 13 probes over 26 s), refused with a silent reset."""

    def attack(self, workers, limits, max_connections, logged):
        eps = [{"path": "/ws", "module": "hub"},
               {"path": "/health", "module": "health"},
               {"path": "/metrics", "module": "metrics"}]
        with Server(workers=workers, endpoints=eps, limits=limits,
                    max_connections=max_connections,
                    handshake_timeout="60s") as srv:
            socks = half_sent(srv.port, 300)
            try:
                results = [probe(srv.port) for _ in range(13)]
                self.assertEqual(results, [200] * 13)
                srv.wait_log(logged)
                return refused(srv.port)
            finally:
                for s in socks:
                    s.close()

    def test_per_ip_pending(self):
        """8 handshakes per address per worker: the rest are refused at
        accept, counted."""
        counts = self.attack(2, {"per_ip_pending": 8}, 10000,
                             "limits.per_ip_pending reached")
        self.assertGreaterEqual(counts["per_ip_pending"], 300 - 16, counts)

    def test_out_of_sockets_evicts_the_heaviest_address(self):
        """No per-address cap, a worker of 75 sockets (max_connections 10
        x 9/8 + 64): the attacker's oldest handshakes make room."""
        counts = self.attack(1, {"per_ip_pending": 0}, 10,
                             "out of sockets: closing the oldest handshake")
        self.assertGreaterEqual(counts["evicted"], 300 - 75, counts)
        self.assertEqual(counts["sockets"], 0, counts)


class ApiDoorTest(unittest.TestCase):
    """The publish API answers only where it is declared (hub_api)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(workers=1, endpoints=[
            {"path": "/ws", "module": "hub"},
            {"path": "/api/publish", "module": "hub_api"}],
            hub={"api_key": API_KEY})
        cls.srv.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def post(self, path, body, key=API_KEY):
        data = json.dumps(body)
        auth = "Authorization: apikey %s\r\n" % key if key else ""
        return http(self.srv.port, (
            "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path, auth, len(data), data)).encode())

    def test_post_to_websocket_endpoint_does_not_publish(self):
        async def main():
            async with connect(self.srv.url("/ws") + "?id=m") as m:
                await recv_json(m)
                await m.send(json.dumps({"type": "join_room",
                                         "room": "news"}))
                await recv_json(m)
                status, _, _ = self.post("/ws", {"room": "news",
                                                 "data": {"x": 1}})
                self.assertEqual(status, 426)
                self.assertEqual(await quiet(m), [])
                status, _, _ = self.post("/api/publish", {
                    "room": "news", "data": {"x": 2}})
                self.assertEqual(status, 202)
                self.assertEqual((await recv_json(m))["x"], 2)
        arun(main())

    def test_upgrade_on_publish_api_refused(self):
        status, _, _ = http(self.srv.port, upgrade_request(
            self.srv.port, path="/api/publish"))
        self.assertEqual(status, 404)

    def test_methods_and_keys(self):
        status, headers, _ = http(self.srv.port,
                                  b"GET /api/publish HTTP/1.1\r\nHost: x"
                                  b"\r\n\r\n")
        self.assertEqual((status, headers.get("allow")), (405, "POST"))
        status, headers, body = self.post("/api/publish", {}, key="wrong")
        self.assertEqual(status, 401)
        self.assertEqual(headers.get("www-authenticate"), "apikey")
        self.assertEqual(json.loads(body), {
            "error": "missing or wrong API key"})

    def test_keyless_huge_post_refused_before_the_body(self):
        """20 keyless POSTs announcing 16 MiB each, sending 1 MiB: 401
        to each, and the worker's RSS stays within a few MiB."""
        worker = self.srv.workers()[0]
        before = rss_kib(worker)
        socks = []
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", self.srv.port),
                                             10)
                s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 16777216\r\n\r\n")
                s.settimeout(10)
                head = s.recv(4096)
                self.assertTrue(head.startswith(b"HTTP/1.1 401 "), head)
                socks.append(s)
            chunk = b"x" * 65536
            for s in socks:
                try:
                    for _ in range(16):
                        s.sendall(chunk)
                except OSError:
                    pass                # closed by the server: fine
            time.sleep(0.5)
            grew = rss_kib(worker) - before
            self.assertLess(grew, 8 * 1024, "worker RSS grew %d KiB" % grew)
        finally:
            for s in socks:
                s.close()

    def test_expect_continue_after_the_key(self):
        """A keyed request with Expect: 100-continue gets 100 first; a
        keyless one gets 401 at once."""
        body = json.dumps({"room": "r", "data": {"x": 1}}).encode()
        with socket.create_connection(("127.0.0.1", self.srv.port), 10) as s:
            s.sendall(b"POST /api/publish HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: apikey " + API_KEY.encode() +
                      b"\r\nExpect: 100-continue\r\nContent-Length: %d"
                      b"\r\n\r\n" % len(body))
            self.assertEqual(s.recv(4096), b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(body)
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 202 "))


if __name__ == "__main__":
    unittest.main(verbosity=2)
