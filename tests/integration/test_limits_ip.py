#!/usr/bin/python3
"""test_limits_ip.py -- abuse limits shared by all workers, and the
per-worker caps: limits.per_ip_connections, per_ip_handshake_rate,
max_connections_total, max_fragments, worker_send_buffer, and accept()
running out of descriptors.

Connections come from 127.0.0.1 and spread over the workers by
reuseport; the shared table must count them all. Counts are observed
through behaviour only (how many upgrades get 101). No wall-clock time
is asserted: the accept back-off is checked as a bound on the worker's
CPU time.
"""

import os
import re
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (RawWS, Server, frame, parse_response,  # noqa: E402
                           upgrade_request, wait_for)


def try_upgrade(port, rcvbuf=None, timeout=10, host="127.0.0.1"):
    """An upgrade request on a new socket: (status, headers, sock); the
    socket stays open (the WebSocket, when 101)."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    data = b""
    try:
        s.connect((host, port))
        s.sendall(upgrade_request(port))
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        s.close()
        raise
    head = data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    status, headers, _ = parse_response(head)
    return status, headers, s


class Opened:
    """Sockets opened by a test, closed at its end."""

    def __init__(self, test=None):
        self.socks = []
        if test is not None:
            test.addCleanup(self.close_all)

    def add(self, s):
        self.socks.append(s)
        return s

    def close_all(self):
        for s in self.socks:
            s.close()
        self.socks = []


def attempts(port, n, opened, host="127.0.0.1"):
    """N upgrades in a row: a list of statuses; every socket is kept."""
    out = []
    for _ in range(n):
        status, headers, s = try_upgrade(port, host=host)
        opened.add(s)
        if status != 101:
            assert "retry-after" in headers, headers
        out.append(status)
    return out


def worker_cpu(pid):
    """utime + stime of PID, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def socket_fds(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def cut_off(sock):
    """True if the server side of SOCK is gone (EOF or reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def limits_yaml(**kw):
    return "limits:\n" + "".join("  %s: %s\n" % kv for kv in kw.items())


class PerIpTest(unittest.TestCase):

    def full_cap_free(self, srv, cap, opened):
        """Wait until exactly CAP upgrades succeed again, then one more is
        refused (closes go through the server asynchronously)."""
        def ok():
            trial = Opened()
            statuses = attempts(srv.port, cap + 1, trial)
            good = statuses == [101] * cap + [429]
            if good:
                opened.socks.extend(trial.socks)
            else:
                trial.close_all()
            return good
        wait_for(ok, 20, "the full per-IP cap to be free again", srv.log)

    def freed_then_refused(self, srv, n, opened):
        """Wait until N more upgrades succeed (closes and deaths reach
        the table asynchronously); then the next must be refused."""
        got = 0

        def more():
            nonlocal got
            status, _, s = try_upgrade(srv.port)
            opened.add(s)
            got += status == 101
            return got >= n
        wait_for(more, 20, "%d freed slots" % n, srv.log)
        status, _, s = try_upgrade(srv.port)
        opened.add(s)
        self.assertEqual(status, 429)

    def test_cap_across_workers(self):
        cap = 20
        with Server(workers=2, raw_yaml=limits_yaml(per_ip_connections=cap)) \
                as srv:
            opened = Opened(self)
            statuses = attempts(srv.port, cap + 10, opened)
            self.assertEqual(statuses.count(101), cap, statuses)
            self.assertEqual(statuses.count(429), 10, statuses)
            self.assertEqual(statuses[:cap], [101] * cap)
            # A refusal is a proper answer: status, Retry-After, reason.
            status, headers, s = try_upgrade(srv.port)
            opened.add(s)
            self.assertEqual(status, 429)
            self.assertEqual(headers["retry-after"], "1")
            srv.wait_log("refused: per_ip_connections reached")
            self.assertRegex(srv.log(), r"\[info\].*refused: "
                             r"per_ip_connections reached.*127\.0\.0\.1")
            # Logging is rate-limited (a line a second per worker at
            # most), so a flood of refusals does not flood the log.
            more = attempts(srv.port, 30, opened)
            self.assertEqual(more, [429] * 30)
            lines = srv.log().count("refused: per_ip_connections")
            self.assertLess(lines, 20, srv.log())
            for s in opened.socks[cap:]:
                s.close()
            opened.socks = opened.socks[:cap]

            # Closing one frees one slot.
            opened.socks[0].close()
            opened.socks = opened.socks[1:]

            self.freed_then_refused(srv, 1, opened)

            # All closed: the counts are back to zero.
            opened.close_all()
            self.full_cap_free(srv, cap, opened)
            opened.close_all()
            workers = wait_for(
                lambda: set(re.findall(r'" 101 .* worker=(\d+)',
                                       srv.access_log())) or None,
                10, "access log lines", srv.log)
        # The cap held over connections served by both workers.
        self.assertEqual(workers, {"0", "1"})

    def test_sigkilled_worker_gives_its_count_back(self):
        cap = 12
        with Server(workers=2, raw_yaml=limits_yaml(per_ip_connections=cap)) \
                as srv:
            opened = Opened(self)
            pids = srv.wait_workers(2)
            base = {p: socket_fds(p) for p in pids}
            statuses = attempts(srv.port, cap, opened)
            self.assertEqual(statuses, [101] * cap)
            # The worker holding more of them (roughly: a descriptor
            # count) is killed; its clients are the ones cut off.
            victim = max(pids, key=lambda p: socket_fds(p) - base[p])
            os.kill(victim, signal.SIGKILL)
            srv.wait_workers(2, exclude=(victim,))
            killed = wait_for(lambda: sum(map(cut_off, opened.socks)), 10,
                              "the killed worker's clients to be cut off",
                              srv.log)
            # The master took exactly the victim's share out of the
            # table: that many upgrades succeed again, then no more.
            self.freed_then_refused(srv, killed, opened)
            opened.close_all()
            self.full_cap_free(srv, cap, opened)

    def test_draining_workers_still_count_after_reload(self):
        cap = 4
        with Server(workers=2, shutdown_spread="30s", shutdown_timeout="60s",
                    raw_yaml=limits_yaml(per_ip_connections=cap)) as srv:
            opened = Opened(self)
            old = srv.wait_workers(2)
            self.assertEqual(attempts(srv.port, cap, opened), [101] * cap)
            srv.signal(signal.SIGHUP)
            srv.wait_workers(2, exclude=old)
            srv.wait_log("reload done")
            # The old generation closes its clients one by one over 30s
            # (the first at once): a reset count would admit all four.
            statuses = attempts(srv.port, cap, opened)
            self.assertLessEqual(statuses.count(101), 1, statuses)
            self.assertIn(429, statuses)

    def test_ipv6_clients_have_their_own_count(self):
        port6 = wshub_harness.free_port()
        srv = Server(workers=2, raw_yaml=limits_yaml(per_ip_connections=3))
        srv.conf["listen"].append('"[::1]:%d"' % port6)
        srv.write_conf()
        with srv:
            opened = Opened(self)
            self.assertEqual(attempts(port6, 4, opened, host="::1"),
                             [101, 101, 101, 429])
            self.assertEqual(attempts(srv.port, 4, opened),
                             [101, 101, 101, 429])
            srv.wait_log("client: [::1]:")

    def test_handshake_rate(self):
        with Server(workers=2, raw_yaml=limits_yaml(
                per_ip_handshake_rate=1, per_ip_handshake_burst=3)) as srv:
            opened = Opened(self)
            statuses = []
            for _ in range(4):
                status, headers, s = try_upgrade(srv.port)
                s.close()
                statuses.append(status)
            self.assertEqual(statuses[:3], [101, 101, 101])
            self.assertEqual(statuses[3], 429)
            self.assertGreaterEqual(int(headers["retry-after"]), 1)
            # Plain HTTP on the same address is not a handshake.
            s = socket.create_connection(("127.0.0.1", srv.port), 10)
            opened.add(s)
            s.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b" 404 ", s.recv(4096))
            srv.wait_log("refused: per_ip_handshake_rate exceeded")

    def test_max_connections_total(self):
        with Server(workers=2, max_connections=100,
                    raw_yaml=limits_yaml(max_connections_total=5)) as srv:
            opened = Opened(self)
            statuses = attempts(srv.port, 8, opened)
            self.assertEqual(statuses, [101] * 5 + [503] * 3)
            srv.wait_log("refused: max_connections_total reached")


class FragmentTest(unittest.TestCase):

    def test_max_fragments_1009(self):
        with Server(workers=1, raw_yaml=limits_yaml(max_fragments=4)) as srv:
            ok = RawWS(srv.port)
            self.addCleanup(ok.close)
            ok.send(frame(1, b"a", fin=False) + frame(0, b"b", fin=False)
                    + frame(0, b"c", fin=False) + frame(0, b"d"))
            self.assertEqual(ok.recv_message(), (1, b"abcd"))
            # A ping between fragments is not a fragment.
            bad = RawWS(srv.port)
            self.addCleanup(bad.close)
            bad.send(frame(1, b"a", fin=False) + frame(9, b"p")
                     + b"".join(frame(0, b"x", fin=False) for _ in range(3)))
            self.assertEqual(bad.recv_frame()[1:], (10, b"p"))
            bad.send(frame(0, b"y"))
            bad.expect_close(1009)
            srv.wait_log("limits.max_fragments")


class WorkerOutputTest(unittest.TestCase):

    def test_worker_send_buffer_drops_the_slow_first(self):
        with Server(workers=1, send_buffer="64m", raw_yaml=limits_yaml(
                worker_send_buffer="256k")) as srv:
            opened = Opened(self)
            status, _, slow = try_upgrade(srv.port, rcvbuf=4096)
            opened.add(slow)
            self.assertEqual(status, 101)
            fastws = RawWS(srv.port)
            opened.add(fastws.sock)
            payload = b"s" * 65536
            # 16 MiB of echoes that the slow client does not read: far
            # over the kernel's buffers and the worker's 256k.
            for _ in range(256):
                try:
                    slow.sendall(frame(2, payload))
                except OSError:
                    break
                if "limits.worker_send_buffer" in srv.log():
                    break
            srv.wait_log("output over its share of limits.worker_send_buffer")
            self.assertIn("closing with 1008", srv.log())
            # The fast neighbour is served all along.
            for i in range(20):
                fastws.send(frame(1, b"n%d" % i))
                self.assertEqual(fastws.recv_message(), (1, b"n%d" % i))


class AcceptBackoffTest(unittest.TestCase):

    def test_emfile_backoff_without_spinning(self):
        with Server(workers=1, worker_rlimit_nofile=48,
                    max_connections=1000) as srv:
            opened = Opened(self)
            pid = srv.wait_workers(1)[0]
            for _ in range(64):
                try:
                    status, _, s = try_upgrade(srv.port, timeout=1)
                except socket.timeout:
                    break
                opened.add(s)
                self.assertEqual(status, 101)
            # The last connect() completed in the kernel's backlog but was
            # never accepted: the worker is out of descriptors.
            srv.wait_log("Too many open files")
            pending = socket.create_connection(("127.0.0.1", srv.port), 10)
            opened.add(pending)
            pending.sendall(upgrade_request(srv.port))
            # Over two seconds a spinning accept loop would burn about two
            # seconds of CPU; the 200ms back-off costs next to nothing.
            before = worker_cpu(pid)
            time.sleep(2)
            used = worker_cpu(pid) - before
            self.assertLess(used, os.sysconf("SC_CLK_TCK") // 4, used)
            self.assertEqual(srv.log().count("accept() failed"), 1)
            # Descriptors come back: the waiting clients are served.
            for s in opened.socks[:8]:
                s.close()
            pending.settimeout(10)
            self.assertIn(b" 101 ", pending.recv(4096))
            srv.wait_log("accept() works again")
            # Resuming may run short again while the closes come in: a
            # new episode, one more line; never one per retry.
            log = srv.log()
            self.assertIn(log.count("accept() failed")
                          - log.count("accept() works again"), (0, 1), log)


if __name__ == "__main__":
    wshub_harness.main()
