"""test_memory.py -- idle connections stay cheap.

Opens 3,000 WebSocket connections to one worker and checks that the
worker's resident memory grew by less than 384 bytes per connection
(issue 12 asks for 256 at 10,000 connections, which
tests/bench/idle_memory.py reports; at 3,000 the worker's one-time
buffers weigh more per connection, and the margin keeps allocator
differences from failing the test). Memory, not time: deterministic enough to assert.

The same for hub connections with an id, in no room (/ws?id=mN): less
than 512 bytes each, a third more than tests/bench/idle_memory.py
--path /ws --id measures at 3,000 (about 390; 381 at 10,000, where
issue 21 asks for 400). Before issue 21 a hub connection cost about
940, and 430 with the hub's record of each connection and doubly
linked memberships.
"""

import os
import resource
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import wshub_harness  # noqa: E402
from wshub_harness import Server  # noqa: E402
from idle_memory import open_idle, rss_kib  # noqa: E402

N = 3000


def idle_cost(srv, target=None, welcome=False):
    """Bytes of the worker's RSS per connection for N idle ones."""
    worker = srv.workers()[0]
    for s in open_idle(srv.port, 10, lambda m: None, "", target, welcome):
        s.close()
    time.sleep(0.3)
    before = rss_kib(worker)
    socks = open_idle(srv.port, N, lambda m: None, "", target, welcome)
    time.sleep(0.5)
    after = rss_kib(worker)
    for s in socks:
        s.close()
    return (after - before) * 1024 / N


@unittest.skipIf(os.environ.get("WSHUB_SANITIZERS") == "yes",
                 "ASan's shadow memory and quarantine inflate RSS")
class MemoryTest(unittest.TestCase):

    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < N + 100:
            self.skipTest("open files limit %d is below %d" % (hard, N + 100))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def test_idle_connection_cost(self):
        with Server(workers=1, ping_period=0, access_log="off",
                    log_level="warn", max_connections=N + 10) as srv:
            per = idle_cost(srv)
        print("%d idle connections: %.0f bytes each" % (N, per))
        self.assertLess(per, 384)

    def test_idle_hub_connection_cost(self):
        with Server(workers=1, ping_period=0, access_log="off",
                    log_level="warn", max_connections=N + 10,
                    endpoints=[{"path": "/ws", "module": "hub"}]) as srv:
            per = idle_cost(srv, lambda i: "/ws?id=m%d" % i, True)
        print("%d idle hub connections: %.0f bytes each" % (N, per))
        self.assertLess(per, 512)


if __name__ == "__main__":
    wshub_harness.main()
