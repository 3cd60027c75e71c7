"""test_reload.py -- reloads under load refuse nothing.

200 hub clients connected and a client opening a new connection every few
milliseconds, then 5 SIGHUPs in a row, each with a changed configuration:
no handshake may fail, every old-generation client gets server_shutdown
then close 1012, and the process tree comes back to master + N workers.
"""

import asyncio
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server, arun, connect  # noqa: E402

import websockets  # noqa: E402

WORKERS = 2


class ReloadUnderLoadTest(unittest.TestCase):

    def test_five_reloads_refuse_nothing(self):
        with Server(workers=WORKERS, shutdown_spread="1s",
                    shutdown_timeout="10s", log_level="notice",
                    endpoints=[{"path": "/ws", "module": "hub"}]) as srv:
            stats = {"ok": 0, "failed": [], "told": 0, "closed_1012": 0}

            async def resident(i):
                """Stays until the server tells it to go."""
                async with connect(srv.url("/ws?id=r%d" % i)) as ws:
                    await asyncio.wait_for(ws.recv(), 10)       # welcome
                    try:
                        while True:
                            msg = json.loads(await asyncio.wait_for(
                                ws.recv(), 60))
                            if msg["type"] == "server_shutdown":
                                stats["told"] += 1
                    except websockets.ConnectionClosed as e:
                        if e.code == 1012:
                            stats["closed_1012"] += 1

            async def churn(stop):
                """A new connection every few milliseconds."""
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        async with connect(srv.url("/ws?id=n%d" % n),
                                           open_timeout=10) as ws:
                            msg = json.loads(await asyncio.wait_for(
                                ws.recv(), 10))
                            if msg["type"] != "welcome":
                                raise AssertionError(msg)
                        stats["ok"] += 1
                    except Exception as e:     # noqa: BLE001
                        stats["failed"].append(repr(e))
                    await asyncio.sleep(0.003)

            async def go():
                residents = [asyncio.ensure_future(resident(i))
                             for i in range(200)]
                stop = asyncio.Event()
                churners = [asyncio.ensure_future(churn(stop))
                            for _ in range(3)]
                await asyncio.sleep(1)
                for k in range(5):
                    srv.conf["max_connections"] = 5000 + k
                    srv.write_conf()
                    srv.signal(signal.SIGHUP)
                    await asyncio.sleep(0.4)
                await asyncio.sleep(1)
                stop.set()
                await asyncio.gather(*churners)
                await asyncio.wait_for(asyncio.gather(*residents), 60)

            arun(go(), 120)
            print("handshakes during the reloads: %d ok, %d failed"
                  % (stats["ok"], len(stats["failed"])))
            self.assertEqual(stats["failed"], [])
            self.assertGreater(stats["ok"], 50)
            self.assertEqual(stats["told"], 200)
            self.assertEqual(stats["closed_1012"], 200)
            # Back to master + N workers once the old ones drained.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if len(srv.workers()) == WORKERS:
                    break
                time.sleep(0.1)
            self.assertEqual(len(srv.workers()), WORKERS, srv.log())
            self.assertEqual(srv.log().count("reload done"), 5, srv.log())


class WorkerCountTest(unittest.TestCase):

    def test_reload_changes_worker_processes(self):
        """With reuseport, growing and shrinking the worker count by reload
        opens and closes the per-slot sockets: every new connection is
        served (none lands on a socket nobody accepts on)."""
        with Server(workers=2, shutdown_spread="0s") as srv:
            for n in (3, 1, 2):
                old = set(srv.workers())
                srv.conf["worker_processes"] = n
                srv.write_conf()
                srv.signal(signal.SIGHUP)
                # Until the old generation is gone, a connection it had
                # just accepted is closed with 1012 by design.
                deadline = time.monotonic() + 15
                while (len(srv.workers()) != n
                       or set(srv.workers()) & old):
                    self.assertLess(time.monotonic(), deadline, srv.log())
                    time.sleep(0.05)
                for i in range(12):
                    self.assertEqual(wshub_harness.echo(srv.url(), "m%d" % i),
                                     "m%d" % i)


class ContinuityTest(unittest.TestCase):
    """Messages published on the new generation reach the clients still
    waiting for their turn on the draining old workers."""

    def test_new_generation_reaches_draining_clients(self):
        with Server(workers=2, shutdown_spread="6s",
                    shutdown_timeout="20s",
                    endpoints=[{"path": "/ws", "module": "hub"}]) as srv:
            async def go():
                old = []
                for i in range(20):
                    ws = await connect(srv.url("/ws?id=old%d" % i))
                    await asyncio.wait_for(ws.recv(), 5)        # welcome
                    await ws.send(json.dumps({"type": "join_room",
                                              "room": "r"}))
                    old.append(ws)
                for ws in old:
                    while json.loads(await asyncio.wait_for(
                            ws.recv(), 5))["type"] != "room_joined":
                        pass
                srv.signal(signal.SIGHUP)
                await asyncio.sleep(1)
                new = await connect(srv.url("/ws?id=new"))
                await asyncio.wait_for(new.recv(), 5)
                await new.send(json.dumps({"type": "join_room",
                                           "room": "r"}))
                while json.loads(await asyncio.wait_for(
                        new.recv(), 5))["type"] != "room_joined":
                    pass
                await new.send(json.dumps({"type": "room_message",
                                           "room": "r", "n": 1}))
                got, closed_first = 0, 0
                for ws in old:
                    try:
                        while True:
                            m = json.loads(await asyncio.wait_for(
                                ws.recv(), 10))
                            if m["type"] == "room_message":
                                got += 1
                                break
                    except websockets.ConnectionClosed:
                        closed_first += 1   # its turn came before
                await new.close()
                for ws in old:
                    await ws.close()
                return got, closed_first
            got, closed_first = arun(go(), 90)
        print("draining clients: %d received, %d closed before" % (
            got, closed_first))
        self.assertEqual(got + closed_first, 20)
        # The drain is spread over 6 s and the message left after ~1 s:
        # most old clients were still there to receive it.
        self.assertGreaterEqual(got, 5)


if __name__ == "__main__":
    wshub_harness.main()
