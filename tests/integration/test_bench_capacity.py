#!/usr/bin/python3
"""test_bench_capacity.py -- tests/bench/capacity.py runs and reports.

capacity.py measures the inputs of the capacity model of wshubd(8),
CAPACITY. Here it runs in its quick mode (small counts, about 30
seconds) and its JSON must hold every input the model names, each a
positive, finite number, with its spread and the Redis commands by name.
A functional test: no figure's value is checked, only that it was
measured. Without redis-server the Redis part is left out.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402

SCRIPT = os.path.join(wshub_harness.SRCDIR, "tests", "bench", "capacity.py")

MEMORY = ["memory_idle_echo_bytes", "memory_idle_hub_bytes",
          "memory_membership_bytes", "memory_membership_marginal_bytes"]
CPU = ["cpu_delivery_us", "cpu_handshake_hub_us", "cpu_close_hub_us",
       "cpu_handshake_echo_us", "cpu_close_echo_us",
       "wall_fanout_deliveries_per_s", "wall_fanout_latency_p50_ms",
       "wall_fanout_latency_p99_ms", "wall_handshakes_hub_per_s",
       "wall_handshakes_echo_per_s"]
OPS = ["publish", "publish_history", "private", "broadcast", "join",
       "leave", "join_new_room", "leave_last", "connection"]
REDIS = (["redis_%s_%s" % (op, what) for op in OPS
          for what in ("commands", "cpu_us", "bytes_in", "bytes_out",
                       "workers_cpu_us")]
         + ["redis_refresh_%s_%s" % (layout, what)
            for layout in ("big_room", "rooms_of_50", "small_rooms")
            for what in ("commands_per_sync", "members_per_sync",
                         "cpu_us_per_sync", "cpu_us_per_membership",
                         "memory_bytes_per_membership")]
         + ["redis_room_subscribers", "redis_idle_cpu_ms_per_s",
            "redis_publish_bytes_out_per_subscriber",
            "redis_publish_deliveries",
            "redis_publish_message_bytes", "redis_publish_envelope_bytes"])
CEILING = ["redis_publish_ceiling_0_subs_cpu_us",
           "redis_publish_ceiling_n_subs_cpu_us",
           "wall_redis_publish_ceiling_0_subs_per_s",
           "wall_redis_publish_ceiling_n_subs_per_s"]


def run(*args, timeout=150, env=None):
    return subprocess.run([sys.executable, SCRIPT] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, env=env)


class CapacityTest(unittest.TestCase):

    def test_quick_run_reports_every_input(self):
        expected = MEMORY + CPU
        parts = "memory,cpu"
        if shutil.which("redis-server"):
            parts += ",redis"
            expected += REDIS
            if shutil.which("redis-benchmark"):
                expected += CEILING
        with tempfile.TemporaryDirectory(prefix="wshub-test-") as tmp:
            path = os.path.join(tmp, "capacity.json")
            out = run("--quick", "--only", parts, "--json", path)
            self.assertEqual(out.returncode, 0, out.stderr[-3000:])
            with open(path) as f:
                result = json.load(f)
        figures = result["figures"]
        for key in expected:
            with self.subTest(key=key):
                self.assertIn(key, figures)
                value = figures[key]
                self.assertIsInstance(value, (int, float))
                self.assertTrue(math.isfinite(value) and value > 0,
                                "%s = %r" % (key, value))
                lo, hi = result["spread"][key]
                self.assertTrue(lo <= value <= hi)
        # The printed table names every figure too.
        for key in expected:
            self.assertIn(key, out.stdout)
        for key in ("date", "host", "command", "settings",
                    "cpu_time_source"):
            self.assertIn(key, result)
        if "redis" in parts:
            # Commands by name, per operation: what the figures add up.
            for op in OPS:
                with self.subTest(op=op):
                    per = result["redis_commands"][op]
                    self.assertTrue(per)
                    self.assertAlmostEqual(
                        sum(per.values()),
                        figures["redis_%s_commands" % op])

    def test_bad_arguments(self):
        for args in (["--only", "disk"], ["--runs", "0"], ["-n", "5"],
                     ["--ops", "x"]):
            with self.subTest(args=args):
                out = run(*args, timeout=30)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn("usage:", out.stderr)

    def test_no_redis_server(self):
        """Without redis-server on the PATH the Redis part is refused
        with the way around it, before any server starts."""
        env = dict(os.environ, PATH=tempfile.gettempdir())
        out = run("--quick", "--only", "redis", timeout=30, env=env)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("capacity.py: redis-server is not installed: "
                      "--only memory,cpu leaves Redis out", out.stderr)


if __name__ == "__main__":
    unittest.main()
