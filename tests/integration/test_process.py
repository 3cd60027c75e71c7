#!/usr/bin/python3
"""Master and worker processes: respawn, signals, reload, log reopening,
orphaned workers.

Every server is started with `with Server(...)`, so the harness stops it
(by pid) whatever happens; every wait is bounded by a deadline.
"""

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (WSHUBD, RawWS, Server, aecho, arun,  # noqa: E402
                           close_payload, connect, echo,
                           frame, wait_for)

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


# ---- helpers -------------------------------------------------------------

def pid_gone(pid):
    """True when PID no longer runs (absent, or a zombie nobody reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return True
    # "pid (comm) S ...": the state follows the last ')'.
    return stat[stat.rindex(")") + 2] in "ZX"


def live_workers(srv):
    """The master's children that are not zombies waiting to be reaped."""
    return sorted(p for p in srv.workers() if not pid_gone(p))


async def aecho_retry(url, msg, timeout):
    """Echo through a new connection, retrying refused or failed attempts
    (a reload in progress) until TIMEOUT; returns the reply."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await aecho(url, msg)
        except (OSError, asyncio.TimeoutError, ConnectionClosed,
                websockets.exceptions.InvalidHandshake) as e:
            if time.monotonic() >= deadline:
                raise AssertionError("no echo from %s within %ss: %r" % (
                    url, timeout, e))
        await asyncio.sleep(0.1)


async def closed_code(ws, timeout):
    """Wait for the server to close WS; return the close code received."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed:
        pass
    await asyncio.wait_for(ws.wait_closed(), timeout)
    return ws.close_code


def raw_close_reply(ws, code, timeout=5):
    """Read to the server's close frame, check CODE, answer it like a
    polite client, then wait for the TCP close."""
    ws.sock.settimeout(timeout)
    while True:
        fin, op, data = ws.recv_frame()
        if op == 8:
            break
    got = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
    if got != code:
        raise AssertionError("close code %r, expected %r (reason %r)" % (
            got, code, data[2:]))
    try:
        ws.send(frame(8, close_payload(code)))
    except OSError:
        pass
    ws.expect_eof(timeout)
    return got


# ---- tests ---------------------------------------------------------------

class TestWorkers(unittest.TestCase):

    def test_killed_worker_is_respawned(self):
        with Server(workers=2) as srv:
            pids = wait_for(lambda: len(live_workers(srv)) == 2
                            and live_workers(srv), 10, "2 workers", srv.log)
            self.assertEqual(len(pids), 2)
            victim = pids[0]
            os.kill(victim, signal.SIGKILL)
            srv.wait_log("pid %d, exited on signal 9" % victim)
            new = wait_for(
                lambda: (lambda w: len(w) == 2 and victim not in w and w)(
                    live_workers(srv)), 10, "a replacement worker", srv.log)
            self.assertIn(pids[1], new)
            replacement = [p for p in new if p != pids[1]]
            self.assertEqual(len(replacement), 1)
            self.assertNotEqual(replacement[0], victim)
            srv.wait_log("pid %d (" % replacement[0])
            # The kernel spreads connections over both workers.
            for i in range(10):
                msg = "after respawn %d" % i
                self.assertEqual(echo(srv.url(), msg), msg)
            self.assertIsNone(srv.proc.poll())


class TestWorkerSignals(unittest.TestCase):

    def test_master_signals_sent_to_a_worker_are_ignored(self):
        """HUP, USR2 and WINCH are the master's: a worker that gets them
        (systemctl kill -s HUP signals every process of the unit) keeps
        running and keeps its clients; USR1 reopens its logs. The
        worker died on HUP, USR2 and WINCH before."""
        with Server(workers=1) as srv:
            pid = srv.workers()[0]

            async def go():
                async with connect(srv.url()) as ws:
                    for sig in (signal.SIGHUP, signal.SIGUSR1,
                                signal.SIGUSR2, signal.SIGWINCH):
                        os.kill(pid, sig)
                        await asyncio.sleep(0.3)
                        await ws.send("still here")
                        self.assertEqual(await asyncio.wait_for(
                            ws.recv(), 5), "still here")
            arun(go())
            self.assertEqual(srv.workers(), [pid])
            self.assertNotIn("exited on signal", srv.log())


class TestExclusiveListen(unittest.TestCase):
    """Issue 24, bugs 2 and 3: with reuseport on (the default) a second
    wshubd on an address in use started and took half of the new
    connections; a reload that changed reuseport failed with "another
    server is listening there"."""

    def test_second_server_on_the_address_exits_1(self):
        for reuseport in (True, False):
            with Server(workers=1, reuseport=reuseport) as first:
                second = Server(workers=1, reuseport=reuseport)
                second.port = first.port
                second.conf["listen"] = first.conf["listen"]
                second.write_conf()
                try:
                    proc = subprocess.run([WSHUBD, "-c", second.conf_file],
                                          stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT,
                                          timeout=20, text=True)
                    said = proc.stdout + second.log()
                    self.assertEqual(proc.returncode, 1, said)
                    self.assertIn("Address already in use", said)
                finally:
                    second.tmp.cleanup()
                self.assertEqual(echo(first.url(), "still mine"),
                                 "still mine")

    def test_reload_that_changes_reuseport_says_restart(self):
        with Server(workers=1, reuseport=True) as srv:
            pids = srv.workers()
            srv.conf["reuseport"] = False
            srv.write_conf()
            srv.signal(signal.SIGHUP)
            srv.wait_log("reuseport changed to off for 127.0.0.1:%d: the "
                         "listening sockets are kept open across reloads "
                         "and upgrades, so this change needs a restart"
                         % srv.port)
            self.assertNotIn("another server is listening", srv.log())
            self.assertEqual(srv.workers(), pids)
            self.assertEqual(echo(srv.url(), "unchanged"), "unchanged")


class TestStop(unittest.TestCase):

    def test_sigquit_drains_with_1001(self):
        with Server(workers=2, shutdown_timeout="5s") as srv:
            pid_file = srv.conf["pid_file"]
            self.assertTrue(os.path.exists(pid_file))
            with open(pid_file) as f:
                self.assertEqual(int(f.read()), srv.proc.pid)

            async def body():
                async with connect(srv.url()) as ws:
                    await ws.send("before quit")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5),
                                     "before quit")
                    srv.signal(signal.SIGQUIT)
                    return await closed_code(ws, 10)

            self.assertEqual(arun(body()), 1001, srv.log())
            # shutdown_timeout (5s) plus some slack.
            self.assertEqual(srv.wait_exit(timeout=10), 0, srv.log())
            self.assertFalse(os.path.exists(pid_file),
                             "pid file left behind")
            self.assertIn("SIGQUIT received", srv.log())

    def test_sigterm_closes_with_1001(self):
        with Server(workers=2) as srv:
            ws = RawWS(srv.port)
            try:
                ws.send(frame(1, b"ping me"))
                self.assertEqual(ws.recv_message(), (1, b"ping me"))
                srv.signal(signal.SIGTERM)
                try:
                    ws.expect_close(1001, timeout=5)
                except (AssertionError, EOFError, OSError) as e:
                    raise AssertionError("no close 1001 on SIGTERM (%r)\n%s"
                                         % (e, srv.log()))
            finally:
                ws.close()
            self.assertEqual(srv.wait_exit(timeout=10), 0, srv.log())
            self.assertFalse(os.path.exists(srv.conf["pid_file"]))


class TestReload(unittest.TestCase):

    def reload(self, srv):
        r = subprocess.run([WSHUBD, "-s", "reload", "-c", srv.conf_file],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_reload_new_generation(self):
        with Server(workers=2, shutdown_timeout="10s") as srv:
            master = srv.proc.pid
            old = wait_for(lambda: len(live_workers(srv)) == 2
                           and live_workers(srv), 10, "2 workers", srv.log)

            async def body():
                async with connect(srv.url()) as ws:
                    await ws.send("old generation")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5),
                                     "old generation")
                    srv.endpoints.append({"path": "/echo2", "module": "echo"})
                    srv.write_conf()
                    self.reload(srv)
                    code = await closed_code(ws, 10)
                self.assertEqual(code, 1012, srv.log())
                self.assertEqual(
                    await aecho_retry(srv.url("/echo2"), "new path", 10),
                    "new path")

            arun(body(), 40)
            srv.wait_log("reloading")
            new = wait_for(
                lambda: (lambda w: len(w) == 2 and not set(w) & set(old)
                         and w)(live_workers(srv)),
                15, "the old workers to exit and 2 new ones", srv.log)
            for p in old:
                wait_for(lambda: pid_gone(p), 10, "old worker %d" % p,
                         srv.log)
            self.assertFalse(set(new) & set(old))
            self.assertEqual(srv.proc.pid, master)
            self.assertIsNone(srv.proc.poll(), "master exited on reload")
            with open(srv.conf["pid_file"]) as f:
                self.assertEqual(int(f.read()), master)
            for i in range(4):
                self.assertEqual(echo(srv.url("/echo2"), "n%d" % i), "n%d" % i)
                self.assertEqual(echo(srv.url("/echo"), "o%d" % i), "o%d" % i)

    def test_reload_invalid_config_keeps_running(self):
        with Server(workers=2) as srv:
            old = wait_for(lambda: len(live_workers(srv)) == 2
                           and live_workers(srv), 10, "2 workers", srv.log)
            with open(srv.conf_file) as f:
                line = len(f.read().splitlines()) + 1
            with open(srv.conf_file, "a") as f:
                f.write("ping_perod: 5s\n")
            # "wshubd -s" reads the configuration to find the pid file, so
            # it refuses the broken file itself and says where it is wrong.
            r = subprocess.run([WSHUBD, "-s", "reload", "-c", srv.conf_file],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("%s:%d:" % (srv.conf_file, line), r.stderr)
            # The master must survive the same mistake on SIGHUP.
            srv.signal(signal.SIGHUP)
            srv.wait_log("%s:%d:" % (srv.conf_file, line))
            srv.wait_log("ping_perod")
            srv.wait_log("reload failed")
            self.assertIsNone(srv.proc.poll())
            for i in range(4):
                self.assertEqual(echo(srv.url(), "still %d" % i),
                                 "still %d" % i)
            self.assertEqual(live_workers(srv), old)


class TestHubShutdown(unittest.TestCase):
    """Hub clients are told before the close frame, with a jittered
    reconnect hint: server_shutdown, then 1012 on reload, 1001 on stop."""

    def drain(self, sig, code):
        with Server(workers=2, endpoints=[
                {"path": "/ws", "module": "hub"}]) as srv:
            async def go():
                async with connect(srv.url("/ws?id=sd")) as ws:
                    await asyncio.wait_for(ws.recv(), 5)    # welcome
                    srv.signal(sig)
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    self.assertEqual(msg["type"], "server_shutdown")
                    self.assertIn("message", msg)
                    self.assertGreaterEqual(msg["reconnect_after_ms"], 100)
                    self.assertLess(msg["reconnect_after_ms"], 2100)
                    with self.assertRaises(websockets.ConnectionClosed) as cm:
                        await asyncio.wait_for(ws.recv(), 10)
                    self.assertEqual(cm.exception.code, code)
            arun(go())

    def test_reload_sends_server_shutdown_then_1012(self):
        self.drain(signal.SIGHUP, 1012)

    def test_quit_sends_server_shutdown_then_1001(self):
        self.drain(signal.SIGQUIT, 1001)

    def test_closes_are_spread_over_shutdown_spread(self):
        # The server never closes a client before its turn, so a slow
        # machine can only make the spread wider: a lower bound is safe.
        with Server(workers=1, shutdown_spread="2s", endpoints=[
                {"path": "/ws", "module": "hub"}]) as srv:
            async def client(i, times):
                async with connect(srv.url("/ws?id=s%d" % i)) as ws:
                    await asyncio.wait_for(ws.recv(), 5)    # welcome
                    times.append(None)
                    try:
                        while True:
                            await asyncio.wait_for(ws.recv(), 15)
                    except websockets.ConnectionClosed as e:
                        self.assertEqual(e.code, 1012)
                        times[i] = time.monotonic()

            async def go():
                times = []
                tasks = [asyncio.ensure_future(client(i, times))
                         for i in range(10)]
                while len(times) < 10:
                    await asyncio.sleep(0.05)
                times[:] = [None] * 10
                srv.signal(signal.SIGHUP)
                await asyncio.gather(*tasks)
                return times
            times = arun(go(), 60)
        self.assertGreaterEqual(max(times) - min(times), 1.5, times)


class TestLogs(unittest.TestCase):

    def test_sigusr1_reopens_logs(self):
        with Server(workers=2) as srv:
            access = os.path.join(srv.dir, "access.log")
            rotated = access + ".1"
            self.assertEqual(echo(srv.url(), "first"), "first")
            wait_for(lambda: os.path.exists(access)
                     and "101" in srv.access_log(), 10,
                     "an access log line", srv.log)
            os.rename(access, rotated)
            srv.signal(signal.SIGUSR1)
            srv.wait_log("reopening logs")
            wait_for(lambda: os.path.exists(access), 10,
                     "a new access.log", srv.log)
            # Each worker reopens when it reads the master's command; a
            # connection racing that command may still be logged in the
            # rotated file, so try a few, each identified by its port.
            deadline = time.monotonic() + 10
            found = False
            while not found and time.monotonic() < deadline:
                ws = RawWS(srv.port)
                port = ws.sock.getsockname()[1]
                ws.send(frame(1, b"x"))
                ws.recv_message()
                ws.send(frame(8, close_payload(1000)))
                ws.expect_close(1000)
                ws.close()
                tag = "127.0.0.1:%d " % port
                end = time.monotonic() + 5
                while time.monotonic() < end:
                    with open(rotated) as f:
                        in_old = tag in f.read()
                    if tag in srv.access_log():
                        found = True
                        break
                    if in_old:
                        break
                    time.sleep(0.05)
            self.assertTrue(found, "no connection logged in the new "
                            "access.log:\n%s" % srv.log())


class TestOrphans(unittest.TestCase):

    def test_workers_exit_when_master_is_killed(self):
        with Server(workers=2, shutdown_timeout="2s") as srv:
            pids = wait_for(lambda: len(live_workers(srv)) == 2
                            and live_workers(srv), 10, "2 workers", srv.log)
            ws = RawWS(srv.port)
            try:
                ws.send(frame(1, b"hello"))
                self.assertEqual(ws.recv_message(), (1, b"hello"))
                srv.proc.kill()
                srv.proc.wait(timeout=5)
                # The worker serving the client drains it with 1001.
                raw_close_reply(ws, 1001, timeout=10)
            finally:
                ws.close()
            for p in pids:
                wait_for(lambda: pid_gone(p), 15, "orphaned worker %d to "
                         "exit" % p, srv.log)
            srv.wait_log("the master process is gone")


class TestBacklog(unittest.TestCase):
    """`backlog` is what listen(2) gets: with the worker stopped (so
    nothing accepts), the kernel completes backlog + 1 handshakes and
    drops the SYNs that follow. libevent's default used to relisten with
    128 behind the configuration's back."""

    def handshakes_while_stopped(self, srv, attempts):
        worker = srv.wait_workers(1)[0]
        socks = []
        os.kill(worker, signal.SIGSTOP)
        try:
            for _ in range(attempts):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", srv.port))
            # Loopback answers at once; a dropped SYN is retried after
            # 1 s, so count well before that.
            time.sleep(0.3)
            poller = select.poll()
            for s in socks:
                poller.register(s, select.POLLOUT)
            return sum(1 for fd, ev in poller.poll(0)
                       if ev & select.POLLOUT and not ev & select.POLLERR)
        finally:
            os.kill(worker, signal.SIGCONT)
            for s in socks:
                s.close()

    def test_configured_backlog_reaches_listen(self):
        with Server(workers=1, backlog=300) as srv:
            done = self.handshakes_while_stopped(srv, 400)
            self.assertGreaterEqual(done, 300, srv.log())
            self.assertLessEqual(done, 301, srv.log())
            echo(srv.url())     # and it serves again once resumed


if __name__ == "__main__":
    wshub_harness.main()
