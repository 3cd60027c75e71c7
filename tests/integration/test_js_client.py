"""test_js_client.py -- wshub.js and the chat page, in Chromium, through
reloads and a worker killed.

Headless Chromium, driven over the DevTools protocol, opens the chat page
that wshubd serves (/client, examples/chat) twice, as alice and bob, in a
room with history on a server of two workers. Both pages chat (ten
messages a second each) while the test sends SIGHUP three times and
SIGKILLs the worker that holds a page's WebSocket. Then every message the
room numbered (the room's whole history, read by a plain client) must be
shown on each page exactly once and in order, each page must have
reported its recoveries, all complete; a screenshot of the page taken
mid-run goes to tests/artifacts/js_client_chat.png.

Two more pages are refused, one by its origin (403), one by its token
(401): the client must not loop, which the access log tells by its
handshakes: three, then nothing for the max back-off. The Chromium test
is skipped only without Chromium; ServedTest checks the endpoint's ETag,
304 and client.demo with plain HTTP.
"""

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server, arun  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = os.path.join(os.getcwd(), "tests", "artifacts")
ROOM = "chat:run"
SECRET = "js-client-" + "k" * 40
YAML = """hub:
  rooms:
    - match: "chat:*"
      history: {size: 1000}
auth_jwt:
  algorithm: HS256
  secret: "%s"
""" % SECRET


class Cdp:
    """A DevTools protocol connection to the browser: calls by id, pages
    attached in flat mode (their session id on each call)."""

    def __init__(self, ws):
        self.ws = ws
        self.seq = 0
        self.waiting = {}
        self.reader = asyncio.ensure_future(self.read())

    async def read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            f = self.waiting.pop(m.get("id"), None)
            if f is not None and not f.done():
                f.set_result(m)

    async def call(self, method, session=None, timeout=20, **params):
        self.seq += 1
        msg = {"id": self.seq, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        f = asyncio.get_running_loop().create_future()
        self.waiting[self.seq] = f
        await self.ws.send(json.dumps(msg))
        m = await asyncio.wait_for(f, timeout)
        if "error" in m:
            raise AssertionError("%s: %s" % (method, m["error"]))
        return m["result"]

    async def page(self, url):
        t = await self.call("Target.createTarget", url=url)
        s = await self.call("Target.attachToTarget", targetId=t["targetId"],
                            flatten=True)
        return Page(self, s["sessionId"], url)


class Page:
    def __init__(self, cdp, session, url):
        self.cdp = cdp
        self.session = session
        self.url = url

    async def js(self, expr, timeout=20):
        r = await self.cdp.call("Runtime.evaluate", self.session, timeout,
                                expression=expr, returnByValue=True,
                                awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    async def wait(self, expr, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            v = await self.js(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("%s: timed out after %ss waiting for "
                                     "%s; status %r" % (
                                         self.url, timeout, what,
                                         await self.js("window.chat && "
                                                       "chat.status")))
            await asyncio.sleep(0.1)

    async def shown(self):
        """[offset, text] of the room's numbered lines, in page order."""
        return await self.js(
            "[...document.querySelectorAll('ol[data-room=\"%s\"] "
            "li[data-offset]')].map((li) => [+li.dataset.offset, "
            "li.dataset.text])" % ROOM)


def room_workers(srv):
    """Pids of the workers with a member of a room: /status's "rooms"
    gauge. Counting a worker's TCP connections is not enough: Chromium
    preconnects sockets that send no request, and a draining worker
    keeps serving those until their handshake timeout."""
    status, _, body = wshub_harness.http(
        srv.port, b"GET /status?json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200, (status, body)
    return [w["pid"] for w in json.loads(body)["workers"] if w["rooms"] > 0]


async def history(port):
    """[offset, text] of every message the room kept: its whole history
    (size 1000 holds the run), replayed to a join with since offset 0."""
    import websockets
    url = "ws://127.0.0.1:%d/ws?id=audit" % port
    async with websockets.connect(url, max_size=None) as ws:
        json.loads(await ws.recv())                     # welcome
        await ws.send(json.dumps({"type": "join_room", "room": ROOM,
                                  "since": {"offset": 0}}))
        while True:
            m = json.loads(await ws.recv())
            if m["type"] == "room_joined":
                break
        assert m.get("recovered") is True, m
        out = []
        while len(out) < m["offset"]:
            r = json.loads(await ws.recv())
            if r["type"] == "room_message":
                out.append([r["offset"], r.get("text")])
        return out


def get(port, target, extra=""):
    return wshub_harness.http(port, (
        "GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
        % (target, extra)).encode())


class ServedTest(unittest.TestCase):
    """What the client endpoint answers, without a browser."""

    def test_etag_cache_and_demo(self):
        with open(os.path.join(wshub_harness.SRCDIR, "clients", "js",
                               "wshub.js"), "rb") as f:
            lib = f.read()
        with Server(workers=1, endpoints=[
                {"path": "/client", "module": "client"}]) as srv:
            status, h, body = get(srv.port, "/client?wshub.js")
            self.assertEqual((status, body), (200, lib))
            self.assertEqual(h["content-type"],
                             "text/javascript; charset=utf-8")
            self.assertEqual(h["cache-control"], "public, max-age=3600")
            self.assertRegex(h["etag"], r'^"[0-9a-f]{16}"$')
            etag = h["etag"]
            # a cache buster after "&"; the same file, the same ETag
            status, h, _ = get(srv.port, "/client?wshub.js&v=2")
            self.assertEqual((status, h["etag"]), (200, etag))
            status, h, body = get(srv.port, "/client?wshub.js",
                                  "If-None-Match: W/%s, \"x\"\r\n" % etag)
            self.assertEqual((status, body, h["etag"]), (304, b"", etag))
            self.assertEqual(int(h["content-length"]), len(lib))
            status, h, body = get(srv.port, "/client")
            self.assertEqual(status, 200)
            self.assertIn(b"?chat.js", body)
            self.assertEqual(get(srv.port, "/client?chat.js")[0], 200)
            self.assertEqual(get(srv.port, "/client?nope")[0], 404)
        with Server(workers=1, endpoints=[
                {"path": "/client", "module": "client"}],
                raw_yaml="client:\n  demo: off\n  max_age: 0\n") as srv:
            status, h, _ = get(srv.port, "/client?wshub.js")
            self.assertEqual((status, h["cache-control"]), (200, "no-cache"))
            self.assertEqual(get(srv.port, "/client")[0], 404)
            self.assertEqual(get(srv.port, "/client?chat.js")[0], 404)


@unittest.skipUnless(CHROMIUM, "chromium is not installed")
class JsClientTest(unittest.TestCase):

    def test_chat_through_reloads_and_a_killed_worker(self):
        with tempfile.TemporaryDirectory() as profile:
            srv = Server(workers=2, raw_yaml=YAML, endpoints=[
                {"path": "/ws", "module": "hub"},
                {"path": "/secure", "module": "hub", "auth": "jwt"},
                {"path": "/client", "module": "client"},
                {"path": "/status", "module": "status"}])
            srv.conf["allowed_origins"] = ["http://127.0.0.1:%d" % srv.port]
            srv.write_conf()
            with srv:
                browser = subprocess.Popen(
                    [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                     "--disable-quic", "--no-first-run",
                     "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-background-timer-throttling",
                     "--disable-renderer-backgrounding",
                     "--disable-backgrounding-occluded-windows",
                     "--window-size=1000,640",
                     "--user-data-dir=" + profile,
                     "--remote-debugging-port=0", "about:blank"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True)
                try:
                    arun(self.run_chat(srv, profile), timeout=75)
                finally:
                    os.killpg(browser.pid, signal.SIGKILL)
                    browser.wait(10)

    async def run_chat(self, srv, profile):
        import websockets
        port_file = os.path.join(profile, "DevToolsActivePort")
        for _ in range(200):
            if os.path.exists(port_file):
                with open(port_file) as f:
                    lines = f.read().split()
                if len(lines) == 2:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("chromium wrote no DevToolsActivePort")
        ws = await websockets.connect(
            "ws://127.0.0.1:%s%s" % (lines[0], lines[1]), max_size=None)
        cdp = Cdp(ws)
        try:
            await self.chat(srv, cdp)
        finally:
            cdp.reader.cancel()
            await ws.close()

    async def chat(self, srv, cdp):
        base = "http://127.0.0.1:%d/client#room=%s&min=200" % (srv.port,
                                                               ROOM)
        alice = await cdp.page(base + "&id=alice&max=2000")
        bob = await cdp.page(base + "&id=bob&max=2000")
        # Refused: another origin (localhost is not 127.0.0.1), a bad
        # token; max 60 s, so that a fourth try would be a loop.
        eve = await cdp.page("http://localhost:%d/client#room=chat:x"
                             "&id=eve&min=200&max=60000" % srv.port)
        mallory = await cdp.page(base + "&id=mallory&max=60000&ws=/secure"
                                 "&token=not.a.token")
        pages = (alice, bob)
        for p in pages:
            await p.wait("window.chat && chat.hub.rooms.get('%s')"
                         ".state === 2" % ROOM, 20, "the room joined")
        bot = ("window.n = 0; window.bot = setInterval(() => chat.say("
               "chat.me + '-' + ++n, '%s').catch(() => null), 100); 0"
               % ROOM)
        for p in pages:
            await p.js(bot)

        # Each reload once both pages are back from the previous one, so
        # that each reconnects and recovers three times.
        shot = None
        for i in range(3):
            for p in pages:
                await p.wait("chat.recoveries.length >= %d" % i, 15,
                             "recovery %d" % i)
            await asyncio.sleep(1)
            srv.signal(signal.SIGHUP)
            if i == 1:
                shot = await self.screenshot(cdp, pages)
        # Once the third generation holds the pages (the old ones have
        # drained), kill the worker holding the most of them.
        for p in pages:
            await p.wait("chat.recoveries.length >= 3", 15,
                         "the third recovery")
        await asyncio.sleep(0.5)
        held = room_workers(srv)
        self.assertTrue(held, "no worker holds a page:\n" + srv.log())
        victim = held[0]
        before = {"alice": await alice.js("chat.recoveries.length"),
                  "bob": await bob.js("chat.recoveries.length")}
        os.kill(victim, signal.SIGKILL)
        await asyncio.sleep(3)
        for p in pages:
            await p.js("clearInterval(window.bot); 0")
        # What was sent is acked or failed, then the pages catch up.
        for p in pages:
            await p.wait("!document.querySelector('li.pending')", 15,
                         "every message acked or failed")
        truth = await asyncio.wait_for(history(srv.port), 15)
        self.assertGreaterEqual(len(truth), 100, truth)
        self.assertEqual([o for o, _ in truth],
                         list(range(1, len(truth) + 1)))
        texts = [t for _, t in truth]
        self.assertEqual(len(set(texts)), len(texts), "a text twice")
        for name, p in (("alice", alice), ("bob", bob)):
            deadline = time.monotonic() + 15
            while True:
                shown = await p.shown()
                if shown == truth or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            if shown != truth:
                missing = [m for m in truth if m not in shown]
                extra = [m for m in shown if m not in truth]
                dup = len(shown) - len({tuple(m) for m in shown})
                self.fail("%s shows %d lines, the room has %d: missing "
                          "%s, not in the room %s, %d twice, in order: %s"
                          % (name, len(shown), len(truth), missing[:10],
                             extra[:10], dup, shown == sorted(shown)))
            sent = await p.js("window.n")
            mine = [t for t in texts if t.startswith(name + "-")]
            self.assertGreaterEqual(len(mine), sent // 2, (name, sent))
        # Recoveries: every reload for both, the kill for one, all whole.
        rec = {"alice": await alice.js("chat.recoveries"),
               "bob": await bob.js("chat.recoveries")}
        for name, r in rec.items():
            self.assertGreaterEqual(len(r), 3, (name, r))
            self.assertTrue(all(x["recovered"] for x in r), (name, r))
            self.assertTrue(all(x["room"] == ROOM for x in r), (name, r))
        self.assertGreater(sum(len(rec[n]) - before[n] for n in rec), 0,
                           "the killed worker's page did not recover")
        self.assertTrue(any(x["missed"] > 0 for r in rec.values()
                            for x in r), rec)
        await self.check_refused(srv, eve, mallory)

        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, "js_client_chat.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        self.assertGreater(os.path.getsize(path), 5000)

    async def screenshot(self, cdp, pages):
        """The page whose header says "recovered N messages", N > 0
        (the one back last missed the other's), else the first."""
        deadline = time.monotonic() + 10
        shown = pages[0]
        while time.monotonic() < deadline:
            for p in pages:
                if await p.js("chat.recoveries.length >= 2 && "
                              "chat.recoveries.at(-1).missed > 0"):
                    shown = p
                    break
            else:
                await asyncio.sleep(0.1)
                continue
            break
        await asyncio.sleep(0.3)
        return await cdp.call("Page.captureScreenshot", shown.session,
                              format="png")

    async def check_refused(self, srv, eve, mallory):
        """Three handshakes each, then the error event, then quiet."""
        for p in (eve, mallory):
            await p.wait("chat.errors.some((e) => e.code === 'refused')",
                         10, "the refused error")
            self.assertRegex(await p.js("chat.status"), "refused")
            self.assertFalse(await p.js("chat.status.startsWith"
                                        "('connected')"))
        log = srv.access_log()
        origin = re.findall(r'"GET /ws\?id=eve" 403', log)
        token = re.findall(r'"GET /secure[^"]*" 401', log)   # query hidden
        self.assertEqual(len(origin), 3, log)
        self.assertEqual(len(token), 3, log)


if __name__ == "__main__":
    wshub_harness.main()
