"""test_conformance.py -- the Autobahn-style suite against /echo.

tests/conformance/wsfuzz.py is an independent fuzzing client written from
RFC 6455 and Autobahn|Testsuite's case list (categories 1-7, 9, 10), not
from this server's code. Every case must come out OK, NON-STRICT or
INFORMATIONAL; a single FAILED case fails the test. Runs with two workers.
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


class ConformanceTest(unittest.TestCase):

    def test_no_failed_case(self):
        with Server(workers=2, log_level="warn", access_log="off") as srv:
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


if __name__ == "__main__":
    wshub_harness.main()
