#!/usr/bin/python3
"""test_bench_reference.py -- the reference peers of tests/bench/run.sh.

tests/bench/ref_ws_server.js (Node's `ws` package) and
tests/bench/ref_uws_server.mjs (uWebSockets through uWebSockets.js, npm
package uws-pack) must serve what the benchmark scenarios use, or
run.sh's ratios would compare wshub with a server doing less: /echo
echoes, /ws answers join_room with room_joined and relays room_message
with `from` to every other member. Checked with wshub-bench's default hub
templates and with python3-websockets. Each peer is skipped when node
cannot load its package from the directory run.sh installs it into (make
check never installs anything).
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_DIR = os.path.join(HERE, "..", "bench")
BENCH = os.environ.get("WSHUB_BENCH") or os.path.join(
    os.path.dirname(os.path.abspath(wshub_harness.WSHUBD)), "wshub-bench")
NODE_DIR = os.environ.get("WSHUB_BENCH_NODE_DIR") or os.path.join(
    os.environ.get("TMPDIR") or "/tmp", "wshub-bench-node")
ENV = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))


# The load checks are run.sh's (REF_LOAD_*).
LOAD_WS = 'require("ws")'
LOAD_UWS = ('import(require("path").join(process.env.NODE_PATH, '
            '"uws-pack/dist/index.mjs"))')


def loads(code):
    try:
        return subprocess.run(["node", "-e", code], env=ENV,
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class ReferencePeer:
    """The checks, for the peer whose server is SCRIPT (a mixin: the
    subclasses below are the test cases)."""

    SCRIPT = None

    def setUp(self):
        self.port = wshub_harness.free_port()
        self.log = tempfile.NamedTemporaryFile()
        self.proc = subprocess.Popen(["node", self.SCRIPT, str(self.port)],
                                     env=ENV, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.addCleanup(self.stop)
        wshub_harness.wait_for(
            lambda: b"listening" in self.output()
            or self.proc.poll() is not None, 20, "the reference server")
        self.assertIsNone(self.proc.poll(), self.output().decode())
        self.url = "ws://127.0.0.1:%d" % self.port

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read()

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()

    def bench(self, *args):
        p = subprocess.run([BENCH] + list(args) + ["--json", "-q"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_echo(self):
        out = self.bench("echo", "-c", "4", "-n", "200", self.url + "/echo")
        self.assertEqual(out["msgs"], 200, out)
        self.assertEqual(wshub_harness.echo(self.url + "/echo", "hi"), "hi")

    def test_hub_fanout(self):
        out = self.bench("fanout", "-c", "5", "-p", "1", "-n", "40",
                         self.url + "/ws")
        self.assertEqual(out["delivered"], 200, out)
        self.assertEqual(out["loss_percent"], 0, out)

    def test_hub_messages(self):
        async def run():
            a = await wshub_harness.connect(self.url + "/ws")
            b = await wshub_harness.connect(self.url + "/ws")
            await a.send('{"type":"join_room","room":"r"}')
            joined = json.loads(await a.recv())
            self.assertEqual(joined["type"], "room_joined")
            self.assertEqual(len(joined["members"]), 1)
            await b.send('{"type":"room_message","room":"r","x":1}')
            self.assertEqual(json.loads(await b.recv())["message"],
                             "Not in room")
            await b.send('{"type":"join_room","room":"r"}')
            self.assertEqual(json.loads(await a.recv())["type"],
                             "user_joined_room")
            self.assertEqual(len(json.loads(await b.recv())["members"]), 2)
            await b.send('{"type":"room_message","room":"r","x":1}')
            got = json.loads(await a.recv())
            self.assertEqual((got["type"], got["x"]), ("room_message", 1))
            self.assertIn("from", got)
            await a.close()
            await b.close()
        wshub_harness.arun(run())


@unittest.skipUnless(os.access(BENCH, os.X_OK), "no wshub-bench")
@unittest.skipUnless(loads(LOAD_WS), "node or its ws package missing "
                     "(tests/bench/run.sh installs ws)")
class WsPeerTest(ReferencePeer, unittest.TestCase):
    SCRIPT = os.path.join(BENCH_DIR, "ref_ws_server.js")


@unittest.skipUnless(os.access(BENCH, os.X_OK), "no wshub-bench")
@unittest.skipUnless(loads(LOAD_UWS), "node or the uws-pack package "
                     "missing (tests/bench/run.sh installs uws-pack)")
class UwsPeerTest(ReferencePeer, unittest.TestCase):
    SCRIPT = os.path.join(BENCH_DIR, "ref_uws_server.mjs")


if __name__ == "__main__":
    wshub_harness.main()
