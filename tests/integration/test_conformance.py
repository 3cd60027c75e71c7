"""test_conformance.py -- the Autobahn-style suite against /echo.

tests/conformance/wsfuzz.py is an independent fuzzing client written from
RFC 6455 and Autobahn|Testsuite's case list (categories 1-7, 9, 10), not
from this server's code. Every case must come out OK, NON-STRICT or
INFORMATIONAL; a single FAILED case fails the test. Runs with two workers,
once with the test configuration and once with the shipped
etc/wshub.yaml (only its address, log, pid file and user changed), which
must pass every case as it is.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import SRCDIR, Server  # noqa: E402

FUZZER = os.path.join(SRCDIR, "tests", "conformance", "wsfuzz.py")


class DefaultServer(Server):
    """wshubd on etc/wshub.yaml as shipped, but for where it listens and
    logs, and the user (root when the tests are)."""

    def write_conf(self):
        with open(os.path.join(SRCDIR, "etc", "wshub.yaml")) as f:
            text = f.read()
        swaps = [("  - 127.0.0.1:8080\n", "  - 127.0.0.1:%d\n" % self.port),
                 ("\nworker_processes: auto\n", "\nworker_processes: %d\n"
                  % self.conf["worker_processes"]),
                 ("\nerror_log: stderr\n", "\nerror_log: %s\n"
                  % self.conf["error_log"])]
        if "user" in self.conf:
            swaps.append(("\nuser: nobody\n", "\nuser: root\n"))
        for old, new in swaps:
            self.assertIn(old, text)
            text = text.replace(old, new)
        with open(self.conf_file, "w") as f:
            f.write(text + "pid_file: %s\n" % self.conf["pid_file"])

    @staticmethod
    def assertIn(part, whole):
        if part not in whole:
            raise AssertionError("etc/wshub.yaml no longer has %r" % part)


class ConformanceTest(unittest.TestCase):

    def run_suite(self, srv):
        report = os.path.join(srv.dir, "report.json")
        proc = subprocess.run(
            [sys.executable, FUZZER, srv.url("/echo"), "--json", report],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=600, text=True)
        print(proc.stdout[-3000:])
        with open(report) as f:
            cases = json.load(f)["cases"]
        failed = [c for c in cases if c["outcome"] == "FAILED"]
        self.assertEqual(failed, [])
        self.assertEqual(proc.returncode, 0)
        # Every category the issue names was run.
        categories = {c["id"].split(".")[0] for c in cases}
        self.assertTrue({"1", "2", "3", "4", "5", "6", "7", "9", "10"}
                        <= categories, categories)
        self.assertGreater(len(cases), 300)
        return {c["id"]: c["outcome"] for c in cases}

    def test_no_failed_case(self):
        with Server(workers=2, log_level="warn", access_log="off") as srv:
            self.run_suite(srv)

    def test_default_configuration_passes_every_case(self):
        with DefaultServer(workers=2) as srv:
            outcomes = self.run_suite(srv)
        # 1 MiB in 64- and 256-byte fragments: refused by the old
        # max_fragments default of 1024.
        for case in ("9.3.1", "9.3.2", "9.4.1", "9.4.2"):
            self.assertEqual(outcomes[case], "OK", case)


if __name__ == "__main__":
    wshub_harness.main()
