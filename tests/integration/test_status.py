"""test_status.py -- the live status page, in a real browser.

Headless Chromium loads GET /status from wshubd itself (the page and its
script are compiled in: no CDN), lets the script poll /status?json a few
times while clients chat, and the test reads the rendered DOM: the
connection count, one row per worker, the engine state. A screenshot is
saved to tests/artifacts/status.png for people to look at. The JSON
itself is checked directly too. Chromium tests skip (77) only when
Chromium is not installed.
"""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server, arun, http  # noqa: E402

import websockets  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = os.path.join(os.getcwd(), "tests", "artifacts")

ENDPOINTS = [{"path": "/echo", "module": "echo"},
             {"path": "/ws", "module": "hub"},
             {"path": "/status", "module": "status",
              "allow": ["127.0.0.1"]}]


def chromium(args, profile):
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--user-data-dir=" + profile,
         # Virtual time: the page's one-second timers fire at once while
         # its fetches are real and waited for; the page computes rates
         # with the server's clock, so they stay true.
         "--virtual-time-budget=5000"] + args,
        capture_output=True, text=True, timeout=90,
        start_new_session=True)


class StatusTest(unittest.TestCase):

    def test_json(self):
        with Server(workers=2, endpoints=ENDPOINTS) as srv:
            srv.wait_workers(2)

            async def go():
                async with websockets.connect(srv.url("/ws")) as ws:
                    await ws.recv()
                    await ws.send('{"type":"join_room","room":"lobby"}')
                    await ws.recv()
                    st, h, body = http(srv.port, b"GET /status?json HTTP/1.1"
                                                 b"\r\nHost: x\r\n\r\n")
                return st, h, json.loads(body)
            st, h, doc = arun(go())
            self.assertEqual(st, 200)
            self.assertEqual(h["content-type"], "application/json")
            self.assertEqual(doc["version"], "0.1.0")
            self.assertEqual(doc["engine"], "local")
            self.assertGreater(doc["time"], 0)
            self.assertEqual(doc["totals"]["connections"], 1)
            self.assertEqual(doc["totals"]["rooms"], 1)
            self.assertGreaterEqual(doc["totals"]["messages_in"], 1)
            self.assertEqual(len(doc["workers"]), 2)
            self.assertEqual(sum(w["connections"] for w in doc["workers"]), 1)
            self.assertTrue(all(w["engine_up"] for w in doc["workers"]))
            self.assertTrue(all(w["memory_rss"] > 0 for w in doc["workers"]))
            st, h, body = http(srv.port, b"GET /status HTTP/1.1\r\n"
                                         b"Host: x\r\n\r\n")
            self.assertEqual(st, 200)
            self.assertTrue(h["content-type"].startswith("text/html"))
            self.assertIn(b"<title>wshub status</title>", body)
            self.assertNotRegex(body, rb"https?://",
                                "the page must not load anything from "
                                "elsewhere")
            st, _, _ = http(srv.port, b"POST /status HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 0\r\n\r\n")
            self.assertEqual(st, 405)

    def test_not_allowed(self):
        eps = [{"path": "/status", "module": "status",
                "allow": ["192.0.2.0/24"]}]
        with Server(workers=1, endpoints=eps) as srv:
            st, _, _ = http(srv.port, b"GET /status HTTP/1.1\r\n"
                                      b"Host: x\r\n\r\n")
            self.assertEqual(st, 403)

    @unittest.skipUnless(CHROMIUM, "chromium is not installed")
    def test_chromium_renders_live_numbers(self):
        n_clients = 3
        with Server(workers=2, endpoints=ENDPOINTS) as srv, \
                tempfile.TemporaryDirectory() as profile:
            srv.wait_workers(2)
            url = "http://127.0.0.1:%d/status" % srv.port

            async def go():
                conns = [await websockets.connect(srv.url("/echo"))
                         for _ in range(n_clients)]
                stop = asyncio.Event()

                async def chatter():
                    while not stop.is_set():
                        for ws in conns:
                            await ws.send("tick")
                            await ws.recv()
                        await asyncio.sleep(0)
                task = asyncio.create_task(chatter())
                loop = asyncio.get_running_loop()
                dom = await loop.run_in_executor(
                    None, chromium, ["--dump-dom", url], profile)
                os.makedirs(ARTIFACTS, exist_ok=True)
                shot = os.path.join(ARTIFACTS, "status.png")
                snap = await loop.run_in_executor(
                    None, chromium, ["--window-size=900,700",
                                     "--screenshot=" + shot, url], profile)
                stop.set()
                await task
                for ws in conns:
                    await ws.close()
                return dom.stdout, shot
            dom, shot = arun(go())

        updates = re.search(r'<body[^>]*data-updates="(\d+)"', dom)
        self.assertIsNotNone(updates, "the script never rendered:\n" + dom)
        self.assertGreaterEqual(int(updates.group(1)), 3)
        self.assertRegex(dom, r'id="connections">%d<' % n_clients)
        self.assertRegex(dom, r'id="engine" class="up">up<')
        self.assertRegex(dom, r'id="rate_in">\d+<')
        self.assertRegex(dom, r'id="accepted">%d<' % n_clients)
        msgs = re.search(r'id="messages_in">(\d+)<', dom)
        self.assertGreater(int(msgs.group(1)), 0, "clients are chatting")
        rows = re.findall(r'<tr data-pid="(\d+)">', dom)
        self.assertEqual(len(rows), 2, dom)
        self.assertIn('<div id="error"></div>', dom)
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print("screenshot:", shot)


if __name__ == "__main__":
    wshub_harness.main()
