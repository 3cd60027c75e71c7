"""test_access_log.py -- access_log_format, and log levels on reload.

"main" is the default line; "json" gives one JSON object per line; a
template of $variables gives exactly what it says; an unknown variable
is a config error with its line and column. A reload applies a new
log_level to the new workers.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import WSHUBD, Server, arun, http  # noqa: E402

import websockets  # noqa: E402


def echo_once(srv):
    async def go():
        async with websockets.connect(srv.url("/echo")) as ws:
            await ws.send("hello")
            await ws.recv()
    arun(go())


class AccessLogTest(unittest.TestCase):

    def test_json(self):
        with Server(workers=1, access_log_format="json") as srv:
            echo_once(srv)
            http(srv.port, b"GET /nowhere?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            srv.wait_log('"status":404', access=True)
            srv.wait_log('"websocket":true', access=True)
            lines = [json.loads(line) for line in
                     srv.access_log().splitlines()]
        ws = [d for d in lines if d["websocket"]][0]
        self.assertEqual(ws["status"], 101)
        self.assertEqual(ws["path"], "/echo")
        self.assertEqual(ws["messages_in"], 1)
        self.assertEqual(ws["bytes_in"], 5)
        self.assertEqual(ws["messages_out"], 1)
        self.assertEqual(ws["close_code"], 1000)
        self.assertRegex(ws["client"], r"^127\.0\.0\.1:\d+$")
        self.assertRegex(ws["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertGreaterEqual(ws["duration"], 0)
        nf = [d for d in lines if d["status"] == 404][0]
        self.assertEqual(nf["method"], "GET")
        self.assertEqual(nf["path"], "/nowhere?q=1")
        self.assertFalse(nf["websocket"])
        self.assertGreater(nf["body_bytes"], 0)

    def test_template(self):
        fmt = ("'$remote_addr|$method|$path|$status|$messages_in|"
               "${close_code}c|$user|$body_bytes'")
        with Server(workers=1, access_log_format=fmt) as srv:
            echo_once(srv)
            srv.wait_log("|GET|/echo|101|1|1000c|-|-", access=True)
            http(srv.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
            srv.wait_log("|GET|/x|404|-|-c|-|", access=True)
            for line in srv.access_log().splitlines():
                self.assertTrue(line.startswith("127.0.0.1|"), line)

    def test_main_is_default(self):
        with Server(workers=1) as srv:
            echo_once(srv)
            srv.wait_log('"GET /echo" 101', access=True)
            line = srv.access_log().splitlines()[0]
        self.assertRegex(line, r'^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d '
                               r'127\.0\.0\.1:\d+ "GET /echo" 101 '
                               r'\d+\.\d{3}s in=1/5 out=1/5 close=1000 '
                               r'worker=0$')

    def test_bad_variable(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                f.write("daemon: off\n"
                        "access_log_format: '$client $stauts'\n")
            r = subprocess.run([WSHUBD, "-t", "-c", path],
                               capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("bad.yaml:2:20: access_log_format", r.stderr)
        self.assertIn('unknown variable "$stauts" at offset 8', r.stderr)

    def test_log_level_reload(self):
        with Server(workers=1, log_level="notice") as srv:
            echo_once(srv)
            self.assertNotIn("[debug]", srv.log())
            srv.conf["log_level"] = "debug"
            srv.write_conf()
            srv.signal(signal.SIGHUP)
            srv.wait_log("reload done")
            # The new worker logs at debug.
            echo_once(srv)
            srv.wait_log("WebSocket open on /echo")


if __name__ == "__main__":
    wshub_harness.main()
