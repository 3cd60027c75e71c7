"""test_cli.py -- wshub-cli -e, the scripted mode, against real wshubd.

Two wshub-cli processes chat through the hub endpoint with their stdin
and stdout on pipes: room messages and private messages arrive as the
server's own JSON lines, with the right "from". When wshubd is stopped
and a new one started on the same port, the cli reconnects by itself and
rejoins its room. Against a closed port it exits non-zero, quickly.
Every wait is bounded.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server, arun, connect, free_port  # noqa: E402

CLI = os.environ.get("WSHUB_CLI") or os.path.join(
    os.path.dirname(os.path.abspath(wshub_harness.WSHUBD)), "wshub-cli")
HUB = [{"path": "/ws", "module": "hub"}]


class Cli:
    """A `wshub-cli -e` process. Its stdout lines (one JSON message
    each) are read by a thread into a queue; stderr is kept for
    failure messages."""

    def __init__(self, url, *args):
        self.proc = subprocess.Popen(
            [CLI, "-e"] + list(args) + [url], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        # The harness kills what is left at exit, whatever happens.
        wshub_harness._live.add(self.proc)
        self.lines = queue.Queue()
        self.seen = []
        self.err = []
        self.threads = [threading.Thread(target=f, daemon=True)
                        for f in (self._read_out, self._read_err)]
        for t in self.threads:
            t.start()

    def _read_out(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode("utf-8", "replace").rstrip("\n"))

    def _read_err(self):
        for line in self.proc.stderr:
            self.err.append(line.decode("utf-8", "replace"))

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, what, timeout=10, **fields):
        """The next message whose fields equal FIELDS (earlier ones are
        kept in self.seen); fails after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                raw = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError(
                    "%s: no %s within %ss\nstdout: %s\nstderr: %s" % (
                        what, fields, timeout, "\n".join(self.seen),
                        "".join(self.err))) from None
            self.seen.append(raw)
            msg = json.loads(raw)
            if all(msg.get(k) == v for k, v in fields.items()):
                return msg, raw

    def wait(self, timeout=10):
        """The exit status, once stdout and stderr are read to the end."""
        rc = self.proc.wait(timeout=timeout)
        wshub_harness._live.discard(self.proc)
        for t in self.threads:
            t.join(timeout=5)
        return rc

    def finish(self, timeout=10):
        """Close stdin; return the exit status (the cli drains first)."""
        self.proc.stdin.close()
        return self.wait(timeout)

    def kill(self):
        """Cleanup: kill it if still running, close the pipes."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.wait(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


class CliChatTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(workers=2, endpoints=HUB).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def cli(self, ident, *args):
        c = Cli(self.srv.url("/ws?id=" + ident), "--drain", "200", *args)
        self.addCleanup(c.kill)
        return c

    def test_two_clis_chat(self):
        alice, bob = self.cli("alice"), self.cli("bob")
        _, raw = alice.expect("welcome", type="welcome")
        # Exactly the server's JSON, compact, one message per line.
        self.assertEqual(raw, '{"type":"welcome","id":"alice",'
                              '"message":"Welcome to wshub"}')
        bob.expect("welcome", type="welcome", id="bob")

        alice.send("/join chat")
        alice.expect("alice joined", type="room_joined", room="chat")
        bob.send("/join chat")
        msg, _ = bob.expect("bob joined", type="room_joined", room="chat")
        self.assertEqual(sorted(msg["members"]), ["alice", "bob"])
        alice.expect("presence", type="user_joined_room", room="chat",
                     userId="bob")

        bob.send("hello alice")
        msg, _ = alice.expect("bob's message", type="room_message",
                              room="chat", text="hello alice")
        self.assertEqual(msg["from"], "bob")
        alice.send("hello bob \u00e9\u2603")
        msg, _ = bob.expect("alice's message", type="room_message",
                            room="chat", text="hello bob \u00e9\u2603")
        self.assertEqual(msg["from"], "alice")

        # /to: a private message, with the server-set "from".
        alice.send("/to bob just for you")
        msg, _ = bob.expect("private", type="private_message",
                            text="just for you")
        self.assertEqual(msg["from"], "alice")
        self.assertEqual(msg["to"], "bob")
        alice.send("/to nobody hello?")
        alice.expect("no such user", type="error", error="User not found")

        # /all, /ping, /raw; "//" escapes a leading slash.
        bob.send("/all to everyone")
        msg, _ = alice.expect("broadcast", type="broadcast",
                              text="to everyone")
        self.assertEqual(msg["from"], "bob")
        bob.send("/ping")
        bob.expect("pong", type="pong")
        bob.send('/raw {"type":"echo","data":[1,"two"]}')
        bob.expect("echo", type="echo", data=[1, "two"])
        bob.send("//not a command")
        alice.expect("escaped", type="room_message", text="/not a command")

        # /leave: the other member sees it; messages need a room again.
        bob.send("/leave chat")
        bob.expect("left", type="room_left", room="chat")
        alice.expect("bob left", type="user_left_room", userId="bob")
        bob.send("lost words")
        self.assertEqual(bob.finish(), 0)
        self.assertIn("no current room", "".join(bob.err))
        self.assertEqual(alice.finish(), 0)

    def test_quit_command(self):
        c = self.cli("quitter")
        c.expect("welcome", type="welcome")
        start = time.monotonic()
        c.send("/quit")
        self.assertEqual(c.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - start, 5)

    def test_lines_wait_for_the_connection(self):
        # Input written before the handshake is sent once it is open.
        c = self.cli("early")
        c.send("/join early-room")
        c.send("first words")
        c.expect("joined", type="room_joined", room="early-room")
        self.assertEqual(c.finish(), 0)


class CliReconnectTest(unittest.TestCase):

    def test_reconnects_and_rejoins_after_restart(self):
        srv = Server(workers=1, endpoints=HUB).start()
        self.addCleanup(srv.stop)
        port = srv.port
        carol = Cli(srv.url("/ws?id=carol"), "--drain", "200")
        self.addCleanup(carol.kill)
        carol.expect("welcome", type="welcome", id="carol")
        carol.send("/join chat")
        carol.expect("joined", type="room_joined", room="chat")

        srv.signal(signal.SIGTERM)
        srv.wait_exit(timeout=15)

        # A new server on the same port (SO_REUSEADDR: no wait for the
        # closed connections' TIME_WAIT).
        srv2 = Server(workers=1, endpoints=HUB)
        srv2.port = port
        srv2.conf["listen"] = ["127.0.0.1:%d" % port]
        srv2.write_conf()
        srv2.start()
        self.addCleanup(srv2.stop)

        # By itself: a new welcome, then the room joined again.
        carol.expect("welcome again", timeout=20, type="welcome", id="carol")
        carol.expect("rejoined", timeout=10, type="room_joined", room="chat")
        self.assertIn("reconnect", "".join(carol.err))

        async def dave():
            async with connect(srv2.url("/ws?id=dave")) as ws:
                json.loads(await ws.recv())                 # welcome
                await ws.send(json.dumps({"type": "join_room",
                                          "room": "chat"}))
                while json.loads(await ws.recv())["type"] != "room_joined":
                    pass
                await ws.send(json.dumps({"type": "room_message",
                                          "room": "chat",
                                          "text": "welcome back"}))
        arun(dave(), 15)
        msg, _ = carol.expect("dave's message", type="room_message",
                              room="chat", text="welcome back")
        self.assertEqual(msg["from"], "dave")
        self.assertEqual(carol.finish(), 0)


class CliNoServerTest(unittest.TestCase):

    def test_closed_port_exits_nonzero(self):
        url = "ws://127.0.0.1:%d/ws" % free_port()
        for args in (["--no-reconnect"], ["--retries", "2"]):
            start = time.monotonic()
            c = Cli(url, *args)
            self.addCleanup(c.kill)
            rc = c.wait(timeout=15)
            self.assertNotEqual(rc, 0, args)
            self.assertLess(time.monotonic() - start, 10, args)
            self.assertIn("cannot connect", "".join(c.err), args)

    def test_usage_errors(self):
        for args in (["http://127.0.0.1/ws"], [], ["--retries", "x",
                                                   "ws://127.0.0.1/ws"]):
            p = subprocess.run([CLI] + args, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 2, args)
        p = subprocess.run([CLI, "-h"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"/join ROOM", p.stdout)
        self.assertIn(b"Examples:", p.stdout)


def main():
    if not os.access(CLI, os.X_OK):
        print("FAIL: no wshub-cli binary at %s" % CLI)
        sys.exit(1)
    wshub_harness.main()


if __name__ == "__main__":
    main()
