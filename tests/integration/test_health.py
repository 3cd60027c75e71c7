"""test_health.py -- GET /health for load balancers.

200 "ok" while serving, with the checks and system figures; 405 for other
methods; 404 for a WebSocket upgrade; 503 "draining" from a worker that
is stopping gracefully (it keeps answering while its clients drain).
"""

import asyncio
import json
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (Server, arun, connect, http,  # noqa: E402
                           upgrade_request)

ENDPOINTS = [{"path": "/ws", "module": "hub"},
             {"path": "/health", "module": "health"}]


def get_health(port):
    st, h, body = http(port, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
    return st, h, json.loads(body)


class HealthTest(unittest.TestCase):

    def test_ok(self):
        with Server(workers=2, endpoints=ENDPOINTS) as srv:
            st, h, doc = get_health(srv.port)
            self.assertEqual(st, 200)
            self.assertEqual(h["content-type"], "application/json")
            self.assertEqual(doc["status"], "ok")
            self.assertEqual(doc["checks"], {"websocket": "ok",
                                             "engine": "ok"})
            self.assertRegex(doc["timestamp"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertGreaterEqual(doc["duration"], 0)
            sysinfo = doc["system"]
            self.assertEqual(sysinfo["workers"], 2)
            self.assertEqual(sysinfo["engine"], "local")
            self.assertGreater(sysinfo["memory_rss"], 0)
            self.assertGreaterEqual(sysinfo["uptime"], 0)
            st, _, _ = http(srv.port, b"POST /health HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 0\r\n\r\n")
            self.assertEqual(st, 405)
            st, _, _ = http(srv.port, upgrade_request(srv.port, "/health"))
            self.assertEqual(st, 404)

    def test_connections_of_all_workers(self):
        with Server(workers=2, endpoints=ENDPOINTS) as srv:
            srv.wait_workers(2)

            async def go():
                conns = [await connect(srv.url("/ws")) for _ in range(6)]
                docs = [get_health(srv.port)[2] for _ in range(6)]
                for ws in conns:
                    await ws.close()
                return docs
            for doc in arun(go()):
                # whichever worker answers
                self.assertEqual(doc["system"]["connections"], 6)
                self.assertLessEqual(doc["system"]["worker_connections"], 6)

    def test_503_while_draining(self):
        with Server(workers=1, shutdown_spread="0s", shutdown_timeout="20s",
                    endpoints=ENDPOINTS) as srv:
            async def go():
                # A client that ignores the close keeps the worker draining
                # until close_timeout.
                sock = socket.create_connection(("127.0.0.1", srv.port))
                sock.sendall(upgrade_request(srv.port, "/ws?id=stay"))
                sock.recv(4096)
                srv.signal(signal.SIGQUIT)
                deadline = time.monotonic() + 5
                while True:
                    st, _, doc = await asyncio.to_thread(get_health,
                                                         srv.port)
                    if st == 503 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
                self.assertEqual(st, 503)
                self.assertEqual(doc["status"], "draining")
                self.assertEqual(doc["checks"]["websocket"], "draining")
                # New WebSockets are refused with 503 meanwhile.
                st, _, _ = await asyncio.to_thread(
                    http, srv.port, upgrade_request(srv.port, "/ws"))
                self.assertEqual(st, 503)
                sock.close()
            arun(go(), 60)
            self.assertEqual(srv.wait_exit(timeout=30), 0)


if __name__ == "__main__":
    wshub_harness.main()
