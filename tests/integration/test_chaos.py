#!/usr/bin/python3
"""test_chaos.py -- the short lossless soak (tests/soak/chaos.py).

Issue 18's acceptance, shortened: 8 reloads then 6 worker kills while
HTTP publishers (1 KB, idempotency keys, retried) and batched WebSocket
publishers (ids, acks) publish to rooms with history, with the local
engine on one node and with the redis engine on two nodes. Every
acknowledged message must reach every subscriber, and none may be
numbered twice. "make soak" runs the long version with every fault.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "soak"))
sys.path.insert(0, HERE)
import chaos  # noqa: E402
from wshub_harness import main  # noqa: E402


class ChaosTest(unittest.TestCase):

    def test_local_engine_reloads_then_kills(self):
        self.assertEqual(chaos.main(["--engine", "local", "--duration",
                                     "40", "--faults", "hup*8,kill*6"]), 0)

    def test_redis_engine_two_nodes_reloads_then_kills(self):
        self.assertEqual(chaos.main(["--engine", "redis", "--duration",
                                     "40", "--faults", "hup*8,kill*6"]), 0)


if __name__ == "__main__":
    main()
