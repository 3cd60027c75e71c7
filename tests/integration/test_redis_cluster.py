#!/usr/bin/python3
"""The Redis Cluster building blocks of the engine against a real
cluster (redis_cluster.py: 3 masters, 3 replicas on loopback ports):
hash slots (redis_slot.c) against CLUSTER KEYSLOT, the slot map
(redis_cluster_map.c) against CLUSTER NODES, and the sharded subscriber
connection (redis_ssub.c): SSUBSCRIBE on the owning masters, every
SPUBLISH delivered exactly once, MOVED from the wrong node, the
server's sunsubscribe when a slot migrates, the reply size limit, the
connect timeout, a master killed.

Driven through tests/tools/cluster_probe (built by make check). Run it
with hiredis 1.x too: tests/compat/hiredis1.sh
tests/integration/test_redis_cluster.py. Skipped (77) without
redis-server and redis-cli.
"""

import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import redis_cluster  # noqa: E402
import wshub_harness  # noqa: E402
from redis_cluster import RedisCluster  # noqa: E402
from wshub_harness import WSHUBD, free_port, wait_for  # noqa: E402

PROBE = os.path.join(os.path.dirname(os.path.abspath(WSHUBD)), "tests",
                     "tools", "cluster_probe")
WAIT = 15       # seconds, for any one expected event


def hexarg(b):
    return b.hex() if b else "-"


def room_channel(name):
    """A room's channel as redis_slot_key writes it (no brace in
    NAME)."""
    return b"wshub:room:{/ws#" + name.encode() + b"}"


class Probe:
    """A cluster_probe process: commands in, event lines out (read by a
    thread into a queue, so every wait is bounded)."""

    def __init__(self):
        self.proc = subprocess.Popen([PROBE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     start_new_session=True)
        # The harness kills what is left at exit, whatever happens.
        wshub_harness._live.add(self.proc)
        self.lines = queue.Queue()
        self.seen = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.err = b""

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode().rstrip("\n"))
        self.lines.put(None)

    def send(self, *lines):
        for line in lines:
            self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, pred, what, timeout=WAIT):
        """The next line PRED accepts; the lines before it are kept in
        self.seen."""
        def match():
            while True:
                try:
                    line = self.lines.get_nowait()
                except queue.Empty:
                    return None
                if line is None:
                    raise AssertionError("cluster_probe exited before %s:\n"
                                         "%s" % (what, self.stderr()))
                self.seen.append(line)
                if pred(line):
                    return line.split()
        return wait_for(match, timeout, what,
                        lambda: "\n".join(self.seen[-30:]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        wshub_harness._live.discard(self.proc)
        self.reader.join(timeout=5)
        err = self.stderr()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err

    def stderr(self):
        if (self.proc.poll() is not None and not self.err
                and not self.proc.stderr.closed):
            self.err = self.proc.stderr.read() or b""
        return self.err.decode(errors="replace")


class ClusterTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = RedisCluster(masters=3).start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def setUp(self):
        self.probe = Probe()

    def tearDown(self):
        err = self.probe.stop()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:"):
            self.assertNotIn(marker, err)

    def rooms_per_master(self, n):
        """N room channels for each master: {port: [channel...]}, in
        as many slots."""
        c = self.cluster
        want = {p: [] for p in c.masters()}
        i = 0
        while min(len(v) for v in want.values()) < n:
            ch = room_channel("room-%d-%d" % (os.getpid(), i))
            i += 1
            port = c.node_for_slot(c.keyslot(ch.decode()))
            if len(want[port]) < n:
                want[port].append(ch)
        return want

    def subscribe(self, conn, port, channels):
        """Open subscriber CONN to PORT, SSUBSCRIBE CHANNELS, wait for
        the confirmations."""
        self.probe.send("open %d %d 0 3000" % (conn, port))
        self.probe.expect(lambda l: l == "%d up" % conn, "%d up" % conn)
        self.probe.send(*["sub %d %s" % (conn, ch.hex()) for ch in channels])
        for ch in channels:
            self.probe.expect(lambda l: l.startswith(
                "%d subscribed %s " % (conn, ch.hex())),
                "subscribed %s" % ch)

    # ---- slots ---------------------------------------------------------

    def test_keyslot(self):
        """redis_slot equals CLUSTER KEYSLOT for 3000 random keys, with
        braces and UTF-8, and the specification's examples."""
        rnd = random.Random(22)
        alphabet = "ab{}{}}{xyz:#%0123456789\u00e9\u4e2d "
        keys = [b"123456789", b"{user1000}.following", b"foo{}{bar}",
                b"foo{{bar}}zap", b"foo{bar}{zap}", b"{}", b"{", b"}", b"",
                b"\xff{\x00}"]
        for _ in range(3000):
            k = "".join(rnd.choice(alphabet)
                        for _ in range(rnd.randint(1, 24)))
            keys.append(k.encode())
        port = self.cluster.masters()[0]
        theirs = self.cluster.pipeline(
            port, [("CLUSTER", "KEYSLOT", k) for k in keys])
        self.probe.send(*["slot %s" % hexarg(k) for k in keys])
        for k, slot in zip(keys, theirs):
            line = self.probe.expect(lambda l: l.startswith("slot "),
                                     "slot of %r" % k)
            self.assertEqual(int(line[1]), slot, "slot of %r" % k)

    def test_map(self):
        """CLUSTER SLOTS of each node parsed into the masters' ranges
        that CLUSTER NODES shows."""
        c = self.cluster
        ranges = sorted((a, b, n["port"]) for n in c.topology()
                        if "master" in n["flags"] for a, b in n["slots"])
        for port in c.live():
            self.probe.send("map %d" % port)
            got = []
            while True:
                line = self.probe.expect(lambda l: l.startswith(
                    ("range ", "map ")), "map of %d" % port)
                if line[0] == "map":
                    break
                got.append(tuple(int(x) for x in line[1:]))
            self.assertNotEqual(line[1], "error", " ".join(line))
            self.assertEqual(got, ranges)
            self.assertEqual(int(line[1]), redis_cluster.SLOTS)
            self.assertEqual(int(line[3]), len(c.masters()))
            # Replicas are listed once the masters learned their
            # offsets: from none to all of them.
            self.assertGreaterEqual(int(line[2]), len(c.masters()))
            self.assertLessEqual(int(line[2]), len(c.live()))

    # ---- the subscriber ------------------------------------------------

    def test_publish_exactly_once(self):
        """Four channels on each master, each on its owner's connection;
        every SPUBLISH arrives once, on that connection; the wrong node
        answers MOVED to the owner; an unsubscribed channel gets
        nothing."""
        c = self.cluster
        want = self.rooms_per_master(4)
        conns = {}
        for i, (port, channels) in enumerate(sorted(want.items())):
            conns[port] = i
            self.subscribe(i, port, channels)

        # The wrong node: MOVED, naming the slot and its owner.
        ports = sorted(want)
        ch = want[ports[1]][0]
        self.probe.send("sub 0 %s" % ch.hex())
        line = self.probe.expect(lambda l: l.startswith(
            "0 error %s " % ch.hex()), "MOVED")
        self.assertEqual(line[3:], ["moved", str(c.keyslot(ch.decode())),
                                    str(ports[1])])

        n = 25
        sent = {}
        for port, channels in want.items():
            cmds = []
            for ch in channels:
                for k in range(n):
                    data = b"%s %d \x00\xff\r\n" % (ch, k)
                    sent[(conns[port], ch, data)] = 0
                    cmds.append(("SPUBLISH", ch, data))
                cmds.append(("SPUBLISH", ch, b"end"))
            for rep in c.pipeline(port, cmds):
                self.assertEqual(rep, 1)
        ends = {(conns[p], ch) for p, chs in want.items() for ch in chs}
        while ends:
            line = self.probe.expect(lambda l: " message " in l, "messages")
            conn, ch, data = (int(line[0]), bytes.fromhex(line[2]),
                              bytes.fromhex(line[3]))
            if data == b"end":
                ends.discard((conn, ch))
                continue
            self.assertIn((conn, ch, data), sent)
            sent[(conn, ch, data)] += 1
        # Order within a channel: every message before its "end".
        self.assertEqual(set(sent.values()), {1})

        # SUNSUBSCRIBE: confirmed, then nothing more for that channel.
        port = ports[2]
        ch = want[port][0]
        self.probe.send("unsub %d %s" % (conns[port], ch.hex()))
        line = self.probe.expect(lambda l: l.startswith(
            "%d unsubscribed %s" % (conns[port], ch.hex())), "unsubscribed")
        self.assertEqual(line[3], "3")
        self.assertEqual(c.command(port, "SPUBLISH", ch, b"gone"), 0)
        other = want[port][1]
        self.assertEqual(c.command(port, "SPUBLISH", other, b"last"), 1)
        line = self.probe.expect(lambda l: " message " in l, "last")
        self.assertEqual(bytes.fromhex(line[3]), b"last")
        self.assertFalse([l for l in self.probe.seen if "dropped" in l])

    def test_slot_migration(self):
        """A slot moved to another master: its channel's subscriber gets
        the server's sunsubscribe (DROPPED), the old owner answers
        MOVED, and the new owner delivers."""
        c = self.cluster
        ch = room_channel("migrating-%d" % os.getpid())
        slot = c.keyslot(ch.decode())
        owner = c.node_for_slot(slot)
        target = [p for p in c.masters() if p != owner][0]
        stay = self.rooms_per_master(1)[owner][0]
        self.subscribe(0, owner, [ch, stay])
        c.command(owner, "SET", ch + b":key", "v")   # a key to MIGRATE

        c.migrate_slot(slot, target)
        line = self.probe.expect(lambda l: l.startswith("0 dropped "),
                                 "dropped")
        self.assertEqual(bytes.fromhex(line[2]), ch)
        self.assertEqual(line[3], "1")      # the other channel stays
        self.assertEqual(c.command(target, "GET", ch + b":key"), b"v")

        self.probe.send("sub 0 %s" % ch.hex())
        line = self.probe.expect(lambda l: l.startswith("0 error "), "MOVED")
        self.assertEqual(line[3:], ["moved", str(slot), str(target)])
        self.subscribe(1, target, [ch])
        self.assertEqual(c.command(target, "SPUBLISH", ch, b"moved"), 1)
        self.assertEqual(c.command(owner, "SPUBLISH", stay, b"stayed"), 1)
        got = set()
        for _ in range(2):
            line = self.probe.expect(lambda l: " message " in l, "messages")
            got.add((line[0], bytes.fromhex(line[3])))
        self.assertEqual(got, {("1", b"moved"), ("0", b"stayed")})

    def test_limits(self):
        """A reply over max_reply closes the connection with a log line;
        a refused connection and a server that never answers close it
        too (the connect timeout)."""
        c = self.cluster
        port = c.masters()[0]
        ch = self.rooms_per_master(1)[port][0]
        self.probe.send("open 0 %d 200 3000" % port)
        self.probe.expect(lambda l: l == "0 up", "up")
        self.probe.send("sub 0 %s" % ch.hex())
        self.probe.expect(lambda l: l.startswith("0 subscribed"),
                          "subscribed")
        self.assertEqual(c.command(port, "SPUBLISH", ch, b"x" * 100), 1)
        self.probe.expect(lambda l: l.startswith("0 message"), "message")
        self.assertEqual(c.command(port, "SPUBLISH", ch, b"x" * 300), 1)
        line = self.probe.expect(lambda l: l.startswith("0 "), "closed")
        self.assertEqual(line[1:], ["closed", "reply", "too", "large"])
        self.probe.send("sub 0 %s" % ch.hex())
        self.probe.expect(lambda l: l == "0 refused", "refused")

        # Nobody on the port.
        self.probe.send("open 1 %d 0 3000" % free_port())
        line = self.probe.expect(lambda l: l.startswith("1 "), "closed")
        self.assertEqual(line[1], "closed")
        self.assertIn("refused", " ".join(line))

        # A listener that never answers PING.
        with socket.socket() as mute:
            mute.bind(("127.0.0.1", 0))
            mute.listen(1)
            self.probe.send("open 2 %d 0 300" % mute.getsockname()[1])
            line = self.probe.expect(lambda l: l.startswith("2 "), "closed")
            self.assertEqual(" ".join(line), "2 closed connect timed out")
        err = self.probe.stop()
        self.assertIn("a reply of more than 200 bytes, closing", err)
        # A connection's failures are its owner's to log (CLOSED says
        # why), rate-limited there: none of them here.
        self.assertNotIn("timed out", err)
        self.assertNotIn("refused", err)

    def test_z_failover(self):
        """A master SIGKILLed: its subscriber is CLOSED; after the
        replica's promotion, the channel is served there. (Last: it
        changes the cluster.)"""
        c = self.cluster
        port = c.masters()[0]
        ch = self.rooms_per_master(1)[port][0]
        slot = c.keyslot(ch.decode())
        self.subscribe(0, port, [ch])
        elapsed = c.kill_master(0)
        print("failover: the replica served slot %d %.1f s after the kill"
              % (slot, elapsed), file=sys.stderr)
        line = self.probe.expect(lambda l: l.startswith("0 "), "closed")
        self.assertEqual(line[1], "closed")
        promoted = c.node_for_slot(slot)
        self.assertNotEqual(promoted, port)
        self.subscribe(1, promoted, [ch])
        self.assertEqual(c.command(promoted, "SPUBLISH", ch, b"after"), 1)
        line = self.probe.expect(lambda l: " message " in l, "message")
        self.assertEqual((line[0], bytes.fromhex(line[3])), ("1", b"after"))


def main():
    redis_cluster.skip_unless_available()
    if not os.access(PROBE, os.X_OK):
        print("FAIL: no cluster_probe at %s (make check builds it)" % PROBE)
        sys.exit(1)
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
