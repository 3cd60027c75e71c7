#!/usr/bin/python3
"""The command line: -t, -V, -h, -s, and refusing to start on a bad
configuration or an address already in use."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import SRCDIR, WSHUBD, Server, free_port  # noqa: E402


def wshubd(*args, timeout=10, cwd=None):
    """Run a wshubd command that is expected to exit by itself."""
    return subprocess.run([WSHUBD] + list(args), capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def start_expecting_failure(conf, timeout=10):
    """Start a server that must refuse to run; (status, output). If it
    runs after all, kill its whole process group and report so."""
    proc = subprocess.Popen([WSHUBD, "-c", conf], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    wshub_harness._live.add(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=5)
        raise AssertionError("wshubd started on a configuration it should "
                             "refuse: %s" % conf)
    finally:
        wshub_harness._live.discard(proc)
    return proc.returncode, out, err


class ConfTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wshub-conf-")
        self.addCleanup(self.tmp.cleanup)

    def conf(self, text, name="wshub.yaml"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path


class TestConfigTest(ConfTest):

    def test_default_config_is_ok(self):
        r = wshubd("-t", "-c", "etc/wshub.yaml", cwd=SRCDIR)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("syntax is ok", r.stderr)
        self.assertIn("test is successful", r.stderr)

    def test_connection_caps_need_their_slots(self):
        """Issue 24, bug 4: the connection caps count 64 worker
        processes, two generations during a reload; beyond, wshubd -t
        (and a start or reload) says so instead of leaving connections
        uncounted with an alert."""
        limits = "limits:\n  per_ip_connections: 10\n"
        for workers, caps, rc in ((40, limits, 1), (65, limits, 1),
                                  (32, limits, 0), (65, "", 0)):
            path = self.conf("worker_processes: %d\n%s" % (workers, caps))
            r = wshubd("-t", "-c", path)
            self.assertEqual(r.returncode, rc, r.stderr)
            if rc:
                self.assertIn("%s: limits.per_ip_connections and "
                              "limits.max_connections_total count the "
                              "connections of 64 worker processes at most"
                              % path, r.stderr)
                self.assertIn("set worker_processes to 32 or less",
                              r.stderr)

    def test_unknown_key_with_suggestion(self):
        path = self.conf("worker_processes: 1\n"
                         "log_level: info\n"
                         "ping_perod: 5s\n")
        r = wshubd("-t", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("%s:3:1:" % path, r.stderr)
        self.assertIn("ping_perod", r.stderr)
        self.assertIn('did you mean "ping_period"', r.stderr)
        self.assertIn("test failed", r.stderr)

    def test_bad_duration(self):
        path = self.conf("worker_processes: 1\n"
                         "# a comment\n"
                         "\n"
                         "pong_wait: 5x\n")
        r = wshubd("-t", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        # The value "5x" starts at column 12 of line 4.
        self.assertIn("%s:4:12:" % path, r.stderr)
        self.assertIn("pong_wait", r.stderr)
        self.assertIn("test failed", r.stderr)

    def test_unknown_module(self):
        path = self.conf("worker_processes: 1\n"
                         "endpoints:\n"
                         "  - path: /echo\n"
                         "    module: echo\n"
                         "  - path: /x\n"
                         "    module: nosuch\n")
        r = wshubd("-t", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, re.escape(path) + r":6:\d+:")
        self.assertIn("unknown module", r.stderr)
        self.assertIn("nosuch", r.stderr)

    def test_yaml_syntax_error(self):
        path = self.conf("worker_processes: 1\n"
                         "log_level: info\n"
                         "  listen: x\n")
        r = wshubd("-t", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, re.escape(path) + r":3:\d+:")
        self.assertIn("test failed", r.stderr)

    def test_missing_file(self):
        path = os.path.join(self.tmp.name, "no-such-dir", "wshub.yaml")
        r = wshubd("-t", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(path, r.stderr)


class TestOptions(unittest.TestCase):

    def test_version(self):
        r = wshubd("-V")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout + r.stderr
        self.assertIn("wshubd version", out)
        self.assertIn("libevent", out)
        self.assertIn("OpenSSL", out)

    def test_help(self):
        r = wshubd("-h")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Usage", r.stdout + r.stderr)
        self.assertIn("-c file", r.stdout + r.stderr)

    def test_unknown_option(self):
        r = wshubd("-Z")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Usage", r.stderr)

    def test_extra_argument(self):
        r = wshubd("stray")
        self.assertEqual(r.returncode, 1)


class TestSignalOption(ConfTest):

    def test_reload_without_pid_file(self):
        path = self.conf("worker_processes: 1\n")
        r = wshubd("-s", "reload", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("pid_file", r.stderr)
        self.assertIn("set pid_file", r.stderr)

    def test_bogus_signal(self):
        path = self.conf("worker_processes: 1\npid_file: %s\n"
                         % os.path.join(self.tmp.name, "x.pid"))
        r = wshubd("-s", "bogus", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("bogus", r.stderr)

    def test_reload_without_running_server(self):
        path = self.conf("worker_processes: 1\npid_file: %s\n"
                         % os.path.join(self.tmp.name, "x.pid"))
        r = wshubd("-s", "reload", "-c", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("x.pid", r.stderr)

    def test_reload_running_server(self):
        with Server(workers=1) as srv:
            r = wshubd("-s", "reload", "-c", srv.conf_file)
            self.assertEqual(r.returncode, 0, r.stderr)
            srv.wait_log("reloading")
            srv.wait_log("reload done")
            self.assertIsNone(srv.proc.poll())


class TestRefuseToStart(ConfTest):

    def test_invalid_config(self):
        path = self.conf("worker_processes: 1\n"
                         "listen: [127.0.0.1:%d]\n"
                         "ping_perod: 5s\n" % free_port())
        status, out, err = start_expecting_failure(path)
        self.assertEqual(status, 1, err)
        self.assertIn("%s:3:1:" % path, err)
        self.assertIn("ping_perod", err)

    def test_address_in_use(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            path = self.conf("worker_processes: 1\n"
                             "listen: [127.0.0.1:%d]\n"
                             "pid_file: %s\n"
                             % (port, os.path.join(self.tmp.name, "w.pid")))
            status, out, err = start_expecting_failure(path)
        self.assertEqual(status, 1, err)
        self.assertIn("127.0.0.1:%d" % port, err)
        self.assertIn("bind", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "w.pid")),
                         "pid file written by a server that did not start")


class TestUser(ConfTest):

    def test_unknown_user_fails_the_test(self):
        path = self.conf("worker_processes: 1\n"
                         "user: no-such-user-here\n")
        p = wshubd("-t", "-c", path)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:2:7: user: no such user" % path, p.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_root_without_user_refuses_to_start(self):
        path = self.conf("worker_processes: 1\n"
                         "listen: [127.0.0.1:%d]\n" % free_port())
        status, out, err = start_expecting_failure(path)
        self.assertEqual(status, 1, err)
        self.assertIn('sets no "user"', err)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_workers_run_as_the_configured_user(self):
        with Server(workers=2, user="nobody", worker_rlimit_nofile=4321) \
                as srv:
            for pid in srv.workers():
                # A worker switches right after fork: give it that moment.
                deadline = time.monotonic() + 5
                while True:
                    with open("/proc/%d/status" % pid) as f:
                        status = f.read()
                    uid = [line.split()[1:] for line in status.splitlines()
                           if line.startswith("Uid:")][0]
                    if set(uid) == {"65534"} or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                self.assertEqual(set(uid), {"65534"}, status)
                with open("/proc/%d/limits" % pid) as f:
                    self.assertRegex(f.read(),
                                     r"Max open files\s+4321\s+4321")
            # The error log was given to the workers' user.
            self.assertEqual(os.stat(srv.conf["error_log"]).st_uid, 65534)
            self.assertEqual(wshub_harness.echo(srv.url()), "hello")


if __name__ == "__main__":
    wshub_harness.main()
