"""test_upgrade.py -- binary upgrade (USR2, WINCH, QUIT) keeps serving.

The dance of wshubd(8): USR2 starts the binary again with the listening
sockets inherited (the old pid file becomes .oldbin), WINCH drains the
old workers, QUIT ends the old master. A client connecting every few
milliseconds throughout must never be refused; a rollback (the new
master stopped) restores the pid file.
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


def read_pid(path, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return int(f.read())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError("no pid in " + path)


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


class UpgradeTest(unittest.TestCase):

    def test_upgrade_dance_refuses_nothing(self):
        with Server(workers=2, shutdown_spread="0s",
                    endpoints=[{"path": "/ws", "module": "hub"}]) as srv:
            pidfile = srv.conf["pid_file"]
            old = read_pid(pidfile)
            stats = {"ok": 0, "failed": []}

            async def churn(stop):
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        async with connect(srv.url("/ws?id=u%d" % n)) as ws:
                            msg = json.loads(await asyncio.wait_for(
                                ws.recv(), 10))
                            assert msg["type"] == "welcome", msg
                        stats["ok"] += 1
                    except Exception as e:     # noqa: BLE001
                        stats["failed"].append(repr(e))
                    await asyncio.sleep(0.005)

            async def dance():
                stop = asyncio.Event()
                task = asyncio.ensure_future(churn(stop))
                await asyncio.sleep(0.5)
                os.kill(old, signal.SIGUSR2)
                await asyncio.to_thread(wait_until, lambda: os.path.exists(
                    pidfile + ".oldbin"), 10, ".oldbin")
                new = await asyncio.to_thread(read_pid, pidfile)
                await asyncio.to_thread(wait_until, lambda: new != old and
                                        "took over" in srv.log(), 10,
                                        "the new master")
                await asyncio.sleep(0.5)
                os.kill(old, signal.SIGWINCH)
                await asyncio.to_thread(wait_until, lambda: srv.workers()
                                        == [new], 15, "old workers gone")
                await asyncio.sleep(0.5)
                os.kill(old, signal.SIGQUIT)
                await asyncio.to_thread(wait_until, lambda: not alive(old),
                                        15, "the old master's exit")
                await asyncio.sleep(0.5)
                stop.set()
                await task
                return new

            new = arun(dance(), 90)
            print("connections during the upgrade: %d ok, %d failed"
                  % (stats["ok"], len(stats["failed"])))
            self.assertEqual(stats["failed"], [])
            self.assertGreater(stats["ok"], 20)
            self.assertEqual(read_pid(pidfile), new)
            self.assertFalse(os.path.exists(pidfile + ".oldbin"))
            self.assertTrue(alive(new))
            os.kill(new, signal.SIGTERM)
            wait_until(lambda: not alive(new), 15, "the new master's exit")

    def test_rollback_restores_the_pid_file(self):
        with Server(workers=1, endpoints=[
                {"path": "/ws", "module": "hub"}]) as srv:
            pidfile = srv.conf["pid_file"]
            old = read_pid(pidfile)
            os.kill(old, signal.SIGUSR2)
            wait_until(lambda: os.path.exists(pidfile + ".oldbin"), 10,
                       ".oldbin")
            new = read_pid(pidfile)
            self.assertNotEqual(new, old)
            wait_until(lambda: "took over" in srv.log(), 10, "new master")
            os.kill(new, signal.SIGQUIT)        # roll back
            wait_until(lambda: not os.path.exists(pidfile + ".oldbin"), 15,
                       "pid file restored")
            self.assertEqual(read_pid(pidfile), old)
            self.assertIn("goes on serving", srv.log())

            async def still():
                async with connect(srv.url("/ws?id=after")) as ws:
                    return json.loads(await ws.recv())["type"]
            self.assertEqual(arun(still()), "welcome")


if __name__ == "__main__":
    wshub_harness.main()
