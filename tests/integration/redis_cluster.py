"""redis_cluster.py -- a real Redis Cluster for integration tests.

RedisCluster(masters=3) starts 2 * masters redis-server processes on
free loopback ports in a temporary directory (cluster mode, no
persistence, node timeout 1 s), joins them with `redis-cli --cluster
create ... --cluster-replicas 1`, and waits until every node says
cluster_state:ok and every replica is in sync with its master. Cluster
mode's tests (issue 22) start one, point wshubd's engine.redis.cluster
at seeds(), and kill masters to watch a failover.

It stops only the processes it started, by pid, whatever happens: use
it as a context manager, or call stop(); an atexit hook stops what a
crashed test left. Every wait is bounded and fails with what it saw.

    with RedisCluster() as c:
        port = c.node_for_slot(12739)
        c.cli(port, "SPUBLISH", "123456789", "hi")
        elapsed = c.kill_master(0)
"""

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import free_port, wait_for  # noqa: E402

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
SLOTS = 16384

_live = set()


def available():
    """True when redis-server and redis-cli are installed."""
    return (os.access(REDIS_SERVER, os.X_OK)
            and os.access(REDIS_CLI, os.X_OK))


def skip_unless_available():
    """Exit 77 (skipped), saying why, without redis-server/redis-cli."""
    if not available():
        print("SKIP: redis-server is not installed "
              "(packaging/install-deps.sh --test)")
        sys.exit(77)


@atexit.register
def _cleanup():
    for cluster in list(_live):
        with contextlib.suppress(Exception):
            cluster.stop()


def _resp(f):
    """One RESP2 reply from the binary file F."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise AssertionError("redis cluster: connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return Exception(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise AssertionError("redis cluster: bad reply %r" % line)


class Node:
    """One redis-server of the cluster."""

    def __init__(self, port, bus, directory):
        self.port = port
        self.bus = bus
        self.dir = directory
        self.proc = None

    def start(self, node_timeout):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes",
             "--cluster-port", str(self.bus),
             "--cluster-config-file",
             os.path.join(self.dir, "nodes-%d.conf" % self.port),
             "--cluster-node-timeout", str(node_timeout),
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis-%d.log" % self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)


class RedisCluster:
    """MASTERS masters with one replica each on 127.0.0.1; NODE_TIMEOUT
    is cluster-node-timeout in ms (how soon a dead master is failed
    over)."""

    def __init__(self, masters=3, node_timeout=1000, timeout=30):
        self.nmasters = masters
        self.node_timeout = node_timeout
        self.timeout = timeout
        self.dir = None
        self.nodes = []

    # ---- life ----------------------------------------------------------

    def start(self):
        _live.add(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        self.dir = tempfile.mkdtemp(prefix="wshub-cluster-")
        self.nodes = [Node(free_port(), free_port(), self.dir)
                      for _ in range(2 * self.nmasters)]
        for n in self.nodes:
            n.start(self.node_timeout)
        for n in self.nodes:
            wait_for(lambda: self.cli(n.port, "PING") == "PONG", 10,
                  "redis-server on port %d" % n.port, self.logs)
        out = subprocess.run(
            [REDIS_CLI, "--cluster", "create"]
            + ["127.0.0.1:%d" % n.port for n in self.nodes]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise AssertionError("redis-cli --cluster create failed:\n"
                                 + out.stdout + out.stderr)
        self.wait_ok()
        wait_for(self._replicas_in_sync, self.timeout, "replicas in sync",
              self.describe)

    def stop(self):
        """Kill every node this cluster started (by pid) and remove its
        directory. Safe to call twice, and after a failed start."""
        for n in self.nodes:
            n.kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        _live.discard(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- talking to nodes ----------------------------------------------

    def cli(self, port, *args):
        """redis-cli -p PORT ARGS...: its output, stripped; None when it
        did not answer within 5 s."""
        try:
            out = subprocess.run([REDIS_CLI, "-p", str(port)]
                                 + [str(a) for a in args],
                                 capture_output=True, timeout=5, text=True)
        except subprocess.TimeoutExpired:
            return None
        return out.stdout.strip()

    def pipeline(self, port, commands, timeout=30):
        """Send COMMANDS (lists of str or bytes arguments, binary safe)
        to node PORT in one write and return their replies in order:
        int, bytes, None, a list, or an Exception for an error reply."""
        out = bytearray()
        for cmd in commands:
            out += b"*%d\r\n" % len(cmd)
            for a in cmd:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        with socket.create_connection(("127.0.0.1", port), timeout) as sock:
            sock.sendall(out)
            f = sock.makefile("rb")
            return [_resp(f) for _ in commands]

    def command(self, port, *args):
        """One command of binary-safe ARGS to node PORT (pipeline)."""
        return self.pipeline(port, [args])[0]

    def live(self):
        """The ports of the nodes still running."""
        return [n.port for n in self.nodes if n.alive()]

    def seeds(self):
        """HOST:PORT of every running node, for engine.redis.cluster."""
        return ["127.0.0.1:%d" % p for p in self.live()]

    def info(self, port, section):
        """INFO SECTION of node PORT as a dict."""
        out = self.cli(port, "INFO", section) or ""
        return dict(line.split(":", 1) for line in out.splitlines()
                    if ":" in line and not line.startswith("#"))

    def topology(self, port=None):
        """CLUSTER NODES as one node asks it (PORT, else the first live
        node): a list of dicts with id, port, flags (a set), master (the
        id of its master, or None) and slots (a list of (first, last)
        ranges, migrating and importing entries left out)."""
        port = port or self.live()[0]
        nodes = []
        for line in (self.cli(port, "CLUSTER", "NODES") or "").splitlines():
            f = line.split()
            if len(f) < 8:
                continue
            slots = []
            for s in f[8:]:
                if s.startswith("["):
                    continue
                a, _, b = s.partition("-")
                slots.append((int(a), int(b or a)))
            nodes.append({
                "id": f[0],
                "port": int(f[1].split("@")[0].rsplit(":", 1)[1]),
                "flags": set(f[2].split(",")),
                "master": None if f[3] == "-" else f[3],
                "slots": slots,
            })
        return nodes

    def masters(self):
        """The ports of the masters that serve slots, by their lowest
        slot: masters()[i] serves the i-th part of the slot space."""
        alive = set(self.live())
        ms = [n for n in self.topology()
              if "master" in n["flags"] and "fail" not in n["flags"]
              and n["slots"] and n["port"] in alive]
        ms.sort(key=lambda n: min(a for a, _ in n["slots"]))
        return [n["port"] for n in ms]

    def replicas(self, master_port):
        """The ports of the replicas of the master at MASTER_PORT."""
        nodes = self.topology()
        ids = [n["id"] for n in nodes if n["port"] == master_port]
        return [n["port"] for n in nodes if ids and n["master"] == ids[0]
                and "fail" not in n["flags"]]

    def node_for_slot(self, slot, asked=None):
        """The port of the master serving SLOT, per CLUSTER NODES of
        node ASKED (else the first live node)."""
        for n in self.topology(asked):
            if "master" in n["flags"] and "fail" not in n["flags"] and any(
                    a <= slot <= b for a, b in n["slots"]):
                return n["port"]
        raise AssertionError("no master serves slot %d:\n%s" % (
            slot, self.describe()))

    def keyslot(self, key):
        return int(self.cli(self.live()[0], "CLUSTER", "KEYSLOT", key))

    # ---- state ---------------------------------------------------------

    def _all_ok(self):
        for port in self.live():
            if self.info_cluster(port).get("cluster_state") != "ok":
                return False
        return True

    def info_cluster(self, port):
        out = self.cli(port, "CLUSTER", "INFO") or ""
        return dict(line.split(":", 1) for line in out.splitlines()
                    if ":" in line)

    def _replicas_in_sync(self):
        for port in self.live():
            rep = self.info(port, "replication")
            if rep.get("role") == "slave" and (
                    rep.get("master_link_status") != "up"
                    or rep.get("master_sync_in_progress") != "0"):
                return False
        return True

    def wait_ok(self, timeout=None):
        """Until every running node says cluster_state:ok and agrees
        that all 16384 slots are served."""
        def ok():
            if not self._all_ok():
                return False
            for port in self.live():
                info = self.info_cluster(port)
                if info.get("cluster_slots_ok") != str(SLOTS):
                    return False
            return True
        wait_for(ok, timeout or self.timeout, "cluster_state:ok on every node",
              self.describe)

    def migrate_slot(self, slot, port):
        """Move SLOT to the master at PORT as redis-cli --cluster reshard
        does: IMPORTING on PORT, MIGRATING on the owner, MIGRATE of its
        keys, then SETSLOT NODE on both and every other master; waits
        until every running node sees PORT serve it."""
        owner = self.node_for_slot(slot)
        ids = {n["port"]: n["id"] for n in self.topology()}
        if owner == port:
            return
        for p, args in ((port, ("IMPORTING", ids[owner])),
                        (owner, ("MIGRATING", ids[port]))):
            if self.command(p, "CLUSTER", "SETSLOT", slot, *args) != b"OK":
                raise AssertionError("CLUSTER SETSLOT %d %s on %d failed"
                                     % (slot, args[0], p))
        for _ in range(10000):
            keys = self.command(owner, "CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            rep = self.command(owner, "MIGRATE", "127.0.0.1", port, "", 0,
                               5000, "KEYS", *keys)
            if isinstance(rep, Exception):
                raise AssertionError("MIGRATE: %s" % rep)
        for p in [port, owner] + [m for m in self.masters()
                                  if m not in (port, owner)]:
            self.command(p, "CLUSTER", "SETSLOT", slot, "NODE", ids[port])
        wait_for(lambda: all(self.node_for_slot(slot, p) == port
                          for p in self.live()), self.timeout,
              "every node to see slot %d on %d" % (slot, port),
              self.describe)

    def kill_master(self, i):
        """SIGKILL masters()[i]; wait until one of its replicas is a
        master serving its slots, seen so by every running node, and
        cluster_state:ok everywhere. Returns the seconds from the kill
        to then (a figure to report, not to assert)."""
        port = self.masters()[i]
        slot = min(a for n in self.topology() if n["port"] == port
                   for a, _ in n["slots"])
        replicas = set(self.replicas(port))
        if not replicas:
            raise AssertionError("master %d has no replica:\n%s" % (
                port, self.describe()))
        node = next(n for n in self.nodes if n.port == port)
        t0 = time.monotonic()
        node.kill()

        def promoted():
            for p in self.live():
                try:
                    if self.node_for_slot(slot, p) not in replicas:
                        return False
                except AssertionError:
                    return False
            return True
        wait_for(promoted, self.timeout, "a replica of %d to serve slot %d"
              % (port, slot), self.describe)
        self.wait_ok()
        return time.monotonic() - t0

    def describe(self):
        """What each node says, for failure messages."""
        out = []
        for n in self.nodes:
            if not n.alive():
                out.append("port %d: not running" % n.port)
                continue
            out.append("port %d: %s" % (n.port, self.cli(
                n.port, "CLUSTER", "NODES")))
        return "\n".join(out)

    def logs(self):
        out = []
        for n in self.nodes:
            with contextlib.suppress(OSError):
                with open(os.path.join(self.dir, "redis-%d.log"
                                       % n.port)) as f:
                    out.append("--- %d\n%s" % (n.port, f.read()[-2000:]))
        return "\n".join(out)
