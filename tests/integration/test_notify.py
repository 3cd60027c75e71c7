"""test_notify.py -- the systemd notify protocol of the Type=notify unit.

A unix datagram socket stands in for systemd: wshubd started with
NOTIFY_SOCKET naming it must send READY=1 with its MAINPID once the
workers run, RELOADING=1 with MONOTONIC_USEC and then READY=1 around a
SIGHUP reload, and STOPPING=1 when told to stop; after a binary upgrade
the new master claims MAINPID and the old one leaves without STOPPING=1;
a socket nobody listens on costs a warning, not the service. SO_PASSCRED
tells which process sent each datagram.
"""

import os
import signal
import socket
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server, echo, wait_for  # noqa: E402


class NotifyTest(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="wshub-notify-")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.sock.close)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(10)

    def start(self, notify_socket, **conf):
        """A Server started with NOTIFY_SOCKET set in its environment."""
        os.environ["NOTIFY_SOCKET"] = notify_socket
        try:
            srv = Server(**conf)
            self.addCleanup(srv.stop)
            srv.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        return srv

    def recv_from(self):
        """The next datagram as a dict of its VAR=value lines, and the pid
        of its sender."""
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", cdata[:12])[0]
        lines = data.decode().split("\n")
        return dict(line.split("=", 1) for line in lines if line), pid

    def recv(self):
        msg, _ = self.recv_from()
        return msg

    def test_ready_reload_stop(self):
        path = os.path.join(self.dir, "notify")
        self.sock.bind(path)
        srv = self.start(path, workers=2)

        self.assertEqual(self.recv(),
                         {"READY": "1", "MAINPID": str(srv.proc.pid)})

        old = set(srv.workers())
        before = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        srv.signal(signal.SIGHUP)
        msg = self.recv()
        after = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        self.assertEqual(msg["RELOADING"], "1")
        # systemd 253 drops a RELOADING=1 without a fresh CLOCK_MONOTONIC
        # timestamp; ours is taken between our two readings.
        self.assertTrue(before - 1 <= int(msg["MONOTONIC_USEC"]) <= after + 1,
                        msg)
        self.assertEqual(self.recv(),
                         {"READY": "1", "MAINPID": str(srv.proc.pid)})
        srv.wait_log("reload done")
        # A connection still queued at a draining old worker gets 1012.
        wait_for(lambda: not old & set(srv.workers()), 15,
                 "the old workers to exit", srv.log)
        self.assertEqual(echo(srv.url()), "hello")

        srv.signal(signal.SIGTERM)
        self.assertEqual(self.recv(), {"STOPPING": "1"})
        self.assertEqual(srv.wait_exit(), 0)

    def test_graceful_stop_and_abstract_socket(self):
        # "@name" is the abstract namespace: "\0name" on the wire.
        name = "wshub-notify-%d" % os.getpid()
        self.sock.bind("\0" + name)
        srv = self.start("@" + name, workers=1)
        self.assertEqual(self.recv()["READY"], "1")
        srv.signal(signal.SIGQUIT)
        self.assertEqual(self.recv(), {"STOPPING": "1"})
        self.assertEqual(srv.wait_exit(), 0)

    def test_binary_upgrade_moves_mainpid(self):
        path = os.path.join(self.dir, "notify")
        self.sock.bind(path)
        srv = self.start(path, workers=1, shutdown_spread="0s")
        old = srv.proc.pid
        self.assertEqual(self.recv_from(),
                         ({"READY": "1", "MAINPID": str(old)}, old))

        os.kill(old, signal.SIGUSR2)
        msg, sender = self.recv_from()
        new = int(msg["MAINPID"])
        self.addCleanup(self.end, new)
        self.assertEqual((msg["READY"], sender), ("1", new))
        self.assertNotEqual(new, old)

        # The old master drains and quits: the service goes on in the new
        # one, so it must not tell systemd STOPPING=1 (that would stop the
        # unit). It exits before the new master is stopped, so its
        # datagram, if any, would come first.
        os.kill(old, signal.SIGWINCH)
        os.kill(old, signal.SIGQUIT)
        self.assertEqual(srv.wait_exit(), 0)
        os.kill(new, signal.SIGTERM)
        self.assertEqual(self.recv_from(), ({"STOPPING": "1"}, new))

    @staticmethod
    def end(pid):
        """Stop a master that is not our child (the upgraded one)."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        def gone():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True
        wait_for(gone, 15, "upgraded master %d to exit" % pid)

    def test_nobody_listening_is_a_warning(self):
        path = os.path.join(self.dir, "nobody")
        srv = self.start(path, workers=1)
        srv.wait_log("notifying systemd (%s) failed" % path)
        self.assertEqual(echo(srv.url()), "hello")


if __name__ == "__main__":
    wshub_harness.main()
