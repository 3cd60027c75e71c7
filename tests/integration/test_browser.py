"""test_browser.py -- a real browser talks to /echo.

Headless Chromium loads a page whose script opens a WebSocket to wshub,
echoes text (ASCII and multi-byte), binary and a 1 MiB message, and posts
what it saw to a small HTTP collector run by this test. A browser is the
client users have; if it echoes, the handshake and framing are right for
them. Skipped (77) only when Chromium is not installed.
"""

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = """<!doctype html><meta charset="utf-8"><title>wshub echo</title>
<script>
const results = {};
function report() {
  fetch("http://127.0.0.1:%(collector)d/result",
        {method: "POST", body: JSON.stringify(results)});
}
const ws = new WebSocket("ws://127.0.0.1:%(port)d/echo");
ws.binaryType = "arraybuffer";
const big = "y".repeat(1 << 20);
const queue = ["hello", "h\\u00e9llo \\u2603 \\ud83d\\ude00", "BIN", big];
ws.onopen = () => {
  results.open = true;
  results.protocol = ws.protocol;
  results.extensions = ws.extensions;
  ws.send(queue[0]);
};
let i = 0;
ws.onmessage = (ev) => {
  const want = queue[i];
  if (want === "BIN") {
    const got = Array.from(new Uint8Array(ev.data));
    results["m" + i] = JSON.stringify(got) === "[0,1,2,253,254,255]";
  } else {
    results["m" + i] = ev.data === want;
  }
  i++;
  if (i < queue.length) {
    if (queue[i] === "BIN") ws.send(new Uint8Array([0,1,2,253,254,255]));
    else ws.send(queue[i]);
  } else {
    ws.close(1000, "done");
  }
};
ws.onclose = (ev) => { results.closeCode = ev.code; results.clean = ev.wasClean; report(); };
ws.onerror = () => { results.error = true; };
</script>"""


class Collector(http.server.BaseHTTPRequestHandler):
    result = None
    done = threading.Event()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        Collector.result = json.loads(self.rfile.read(n))
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        Collector.done.set()

    def log_message(self, *args):
        pass


@unittest.skipUnless(CHROMIUM, "chromium is not installed")
class BrowserTest(unittest.TestCase):
    raw_yaml = ""       # more server configuration, for subclasses

    def test_chromium_echo(self):
        collector = http.server.HTTPServer(("127.0.0.1", 0), Collector)
        threading.Thread(target=collector.serve_forever, daemon=True).start()
        self.addCleanup(collector.server_close)
        self.addCleanup(collector.shutdown)
        with Server(workers=2, raw_yaml=self.raw_yaml) as srv, \
                tempfile.TemporaryDirectory() as profile:
            page = os.path.join(profile, "echo.html")
            with open(page, "w") as f:
                f.write(PAGE % {"port": srv.port,
                                "collector": collector.server_port})
            browser = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--user-data-dir=" + profile,
                 "--remote-debugging-port=0", "file://" + page],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            try:
                self.assertTrue(Collector.done.wait(60),
                                "the page never reported:\n" + srv.log())
            finally:
                os.killpg(browser.pid, 9)
                browser.wait(10)
            access = srv.access_log()
        r = Collector.result
        self.assertTrue(r.get("open"), r)
        self.assertNotIn("error", r)
        for i in range(4):
            self.assertTrue(r.get("m%d" % i), (i, r))
        self.assertEqual(r["closeCode"], 1000)
        self.assertTrue(r["clean"])
        self.assertIn("close=1000", access)


if __name__ == "__main__":
    wshub_harness.main()
