#!/usr/bin/python3
"""test_bench.py -- wshub-bench works (a functional test, not a speed test).

Short runs of the load generator against a real wshubd: echo and fanout
finish with exit status 0 and JSON whose figures are consistent, fanout on
two workers loses nothing, a closed port and a loss over --max-loss give a
non-zero status. --processes and --members: the parent's one report adds
up its children exactly, every member gets every message, and a child
that dies or members that lose messages fail the run. No assertion is
made on how fast anything is.
"""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server, free_port  # noqa: E402

BENCH = os.environ.get("WSHUB_BENCH") or os.path.join(
    os.path.dirname(os.path.abspath(wshub_harness.WSHUBD)), "wshub-bench")

ENDPOINTS = [{"path": "/echo", "module": "echo"},
             {"path": "/ws", "module": "hub"}]


def children(pid):
    """Pids of the live children of PID."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(st[1]) == pid and st[0] != "Z":
            kids.append(int(d))
    return sorted(kids)


def bench(*args, timeout=120):
    """Run wshub-bench ARGS with --json; returns (status, parsed JSON or
    None, stderr)."""
    p = subprocess.run([BENCH] + list(args) + ["--json", "-q"],
                       capture_output=True, text=True, timeout=timeout)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        out = None
    return p.returncode, out, p.stderr


class BenchTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.access(BENCH, os.X_OK):
            raise unittest.SkipTest("no wshub-bench at " + BENCH)
        cls.srv = Server(workers=2, endpoints=ENDPOINTS).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.srv.port, path)

    def sane_percentiles(self, h, count):
        self.assertEqual(h["count"], count)
        self.assertGreater(h["p50"], 0)
        self.assertLessEqual(h["min"], h["p50"])
        self.assertLessEqual(h["p50"], h["p90"])
        self.assertLessEqual(h["p90"], h["p99"])
        self.assertLessEqual(h["p99"], h["max"])
        # Under a minute: a unit mix-up would be off by 1000 or more.
        self.assertLess(h["max"], 60e6)

    def test_echo(self):
        rc, out, err = bench("echo", "-c", "4", "-n", "200", "-s", "100",
                             self.url("/echo"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertTrue(out["ok"])
        self.assertEqual(out["scenario"], "echo")
        self.assertEqual(out["connections"]["opened"], 4)
        self.assertEqual(out["msgs"], 200)
        self.assertGreater(out["msgs_per_s"], 0)
        self.sane_percentiles(out["rtt_us"], 200)
        self.sane_percentiles(out["connections"]["handshake_ms"], 4)
        self.assertIn("percent", out["cpu"])

    def test_echo_threads_and_duration(self):
        rc, out, err = bench("echo", "-c", "6", "-j", "2", "-d", "1",
                             "--binary", self.url("/echo"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertGreater(out["msgs"], 0)
        self.assertGreaterEqual(out["run_s"], 0.9)

    def test_echo_human_summary_and_progress(self):
        p = subprocess.run([BENCH, "echo", "-c", "2", "-d", "1.5",
                            self.url("/echo")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("round trips", p.stdout)
        self.assertIn("cpu", p.stdout)
        self.assertIn("result       ok", p.stdout)
        self.assertIn("msg/s", p.stderr)        # the progress line

    def test_fanout_two_workers_no_loss(self):
        rc, out, err = bench("fanout", "-c", "20", "-p", "1", "-n", "100",
                             "-r", "500", self.url("/ws"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertEqual(out["subscribers"], 20)
        self.assertEqual(out["published"], 100)
        self.assertEqual(out["expected"], 2000)
        self.assertEqual(out["delivered"], 2000)
        self.assertEqual(out["loss_percent"], 0)
        self.assertEqual(out["reordered"], 0)
        self.sane_percentiles(out["latency_us"], 2000)

    def test_fanout_as_fast_as_delivered(self):
        rc, out, err = bench("fanout", "-c", "10", "-p", "2", "-n", "200",
                             "-j", "2", self.url("/ws"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertEqual(out["delivered"], 2000)

    def test_fanout_templates(self):
        # The hub protocol spelled out through the generic templates.
        rc, out, err = bench(
            "fanout", "-c", "5", "-n", "20", "--room", "tpl",
            "--subscribe-template", '{"type":"join_room","room":"{room}"}',
            "--subscribe-ack", "room_joined",
            "--publish-template",
            '{"type":"room_message","room":"{room}","n":{seq},'
            '"d":"{payload}"}', self.url("/ws"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertEqual(out["delivered"], 100)

    def test_max_loss(self):
        # Subscribers that never join lose everything: the run fails at
        # the default --max-loss 0 and passes with --max-loss 100.
        args = ["fanout", "-c", "3", "-n", "10",
                "--subscribe-template", '{"type":"ping"}',
                "--subscribe-ack", "pong",
                "--publish-template",
                '{"type":"broadcast","d":"{payload}"}', self.url("/ws")]
        rc, out, err = bench(*args)
        self.assertEqual(rc, 0, err + str(out))     # broadcast reaches all
        self.assertEqual(out["loss_percent"], 0)
        args[args.index('{"type":"broadcast","d":"{payload}"}')] = (
            '{"type":"room_message","room":"nobody","d":"{payload}"}')
        rc, out, err = bench(*(args + ["--drain", "0.5"]))
        self.assertEqual(rc, 1, err + str(out))
        self.assertEqual(out["loss_percent"], 100)
        self.assertFalse(out["ok"])
        self.assertTrue(any("max-loss" in e for e in out["errors"]))
        rc, out, err = bench(*(args + ["--drain", "0.5", "--max-loss",
                                       "100"]))
        self.assertEqual(rc, 0, err + str(out))

    def test_connect(self):
        rc, out, err = bench("connect", "-c", "50", "-r", "500", "-H",
                             "0.2", self.url("/ws"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertEqual(out["connections"]["opened"], 50)
        self.assertGreater(out["handshakes_per_s"], 0)

    def test_source_addresses(self):
        # Connections from the --source addresses in turn, as the
        # server's access log sees them; a bad address is a usage error.
        rc, out, err = bench("connect", "-c", "4", "-H", "0.2", "--source",
                             "127.0.0.2,127.0.0.3", self.url("/ws"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertEqual(out["connections"]["opened"], 4)
        for addr in ("127.0.0.2", "127.0.0.3"):
            self.srv.wait_log(" %s:" % addr, access=True)
        p = subprocess.run([BENCH, "connect", "--source", "127.0.0.2,nowhere",
                            self.url("/ws")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn('--source: "nowhere" is not an IPv4 or IPv6 address',
                      p.stderr)

    def test_closed_port_fails(self):
        rc, out, err = bench("echo", "-c", "2", "-d", "1",
                             "ws://127.0.0.1:%d/echo" % free_port())
        self.assertEqual(rc, 1, err)
        self.assertFalse(out["ok"])
        self.assertEqual(out["connections"]["failed"], 2)
        self.assertIn("connect: Connection refused",
                      out["connections"]["failures"])

    def test_bad_handshake_fails(self):
        rc, out, err = bench("connect", "-c", "3", self.url("/nowhere"))
        self.assertEqual(rc, 1, err)
        self.assertEqual(out["connections"]["failures"],
                         {"handshake: HTTP 404 Not Found": 3})

    def test_processes_and_members(self):
        # 2 processes x 2 threads: 50 measured subscribers and 200 silent
        # members, joins paced; one report whose sums are exact.
        rc, out, err = bench("fanout", "-P", "2", "-j", "2", "-c", "50",
                             "--members", "200", "-n", "20", "-r", "200",
                             "--connect-rate", "1000", self.url("/ws"))
        self.assertEqual(rc, 0, err + str(out))
        self.assertTrue(out["ok"])
        self.assertEqual(out["processes"], 2)
        self.assertEqual(out["threads"], 2)
        self.assertEqual(out["cpu"]["threads"], 4)
        self.assertEqual(out["connections"]["target"], 251)
        self.assertEqual(out["connections"]["opened"], 251)
        self.assertEqual(out["joined"], 251)
        self.assertGreater(out["joined_s"], 0)
        self.assertLess(out["joined_s"], 30)
        self.assertEqual(out["subscribers"], 50)
        self.assertEqual(out["published"], 20)
        self.assertEqual(out["expected"], 20 * 50)
        self.assertEqual(out["delivered"], 20 * 50)
        self.assertEqual(out["reordered"], 0)
        m = out["members"]
        self.assertEqual(m, {"count": 200, "expected": 20 * 200,
                             "delivered": 20 * 200, "loss_percent": 0,
                             "short": 0})
        # Every member and subscriber got every message.
        self.assertEqual(out["delivered"] + m["delivered"],
                         out["published"] * (200 + 50))
        # Latencies of both processes in one merged histogram.
        self.sane_percentiles(out["latency_us"], 20 * 50)
        self.sane_percentiles(out["connections"]["handshake_ms"], 251)

    def test_processes_human_summary(self):
        p = subprocess.run([BENCH, "fanout", "-P", "2", "-c", "4",
                            "--members", "6", "-n", "5", "-r", "100",
                            self.url("/ws")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("4 subscribers and 6 members", p.stdout)
        self.assertIn("2 processes x 1 thread", p.stdout)
        self.assertIn("joined       11 of 11 in", p.stdout)
        self.assertIn("members      6, delivered 30 of 30 expected, "
                      "loss 0.000%, 0 missed messages", p.stdout)
        self.assertIn("result       ok", p.stdout)

    def test_members_that_lose_fail(self):
        # Members that never join the room (a ping instead of a join) get
        # none of the messages: the one report of two processes counts
        # each of them as short and fails the run on their loss.
        rc, out, err = bench(
            "fanout", "-P", "2", "-c", "2", "--members", "4", "-n", "5",
            "--subscribe-template", '{"type":"ping"}',
            "--subscribe-ack", "pong", "--drain", "0.5", self.url("/ws"))
        self.assertEqual(rc, 1, err + str(out))
        self.assertEqual(out["members"]["delivered"], 0)
        self.assertEqual(out["members"]["short"], 4)
        self.assertEqual(out["members"]["loss_percent"], 100)
        self.assertTrue(any(e.startswith("members: loss")
                            for e in out["errors"]), out["errors"])

    def test_processes_child_killed(self):
        # A child that dies is an error named in the report, the run ends
        # at once, and the exit status is 1.
        p = subprocess.Popen([BENCH, "fanout", "-P", "2", "-c", "10",
                              "--members", "10", "-r", "50", "-d", "60",
                              "--json", "-q", self.url("/ws")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            deadline = time.monotonic() + 20
            kids = []
            while time.monotonic() < deadline and len(kids) < 2:
                time.sleep(0.2)
                kids = children(p.pid)
            self.assertEqual(len(kids), 2)
            time.sleep(1.5)             # into the run
            os.kill(kids[1], signal.SIGKILL)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 1, err)
        out = json.loads(out)
        self.assertFalse(out["ok"])
        self.assertTrue(any(re.match(r"process 1 \(pid %d\) killed by "
                                     r"signal 9" % kids[1], e)
                            for e in out["errors"]), out["errors"])
        self.assertLess(out["run_s"], 30)
        self.assertEqual(children(p.pid), [])

    def test_open_files_limit(self):
        # 2,000 connections in one process of 1,000 files are refused
        # before anything starts, with the number of processes to use.
        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (1000, 1000))
        p = subprocess.run([BENCH, "connect", "-c", "2000",
                            self.url("/ws")], capture_output=True,
                           text=True, timeout=30, preexec_fn=low_limit)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("open files limit (1000, at most 950 connections a "
                      "process): use --processes 3 or more", p.stderr)

    def test_usage(self):
        p = subprocess.run([BENCH, "-h"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("examples", p.stdout)
        p = subprocess.run([BENCH, "flood", "ws://x/"], capture_output=True,
                           text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([BENCH, "echo", "http://x/"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([BENCH, "echo", "--members", "3", "ws://x/"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--members is for fanout", p.stderr)
        p = subprocess.run([BENCH, "echo", "-P", "65", "ws://x/"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    wshub_harness.main()
