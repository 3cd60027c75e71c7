#!/usr/bin/python3
"""capacity.py -- the measured inputs of the capacity model of wshubd(8).

Measures, on this host, what CAPACITY in wshubd(8) multiplies by the
load an operator expects, and prints it (--json FILE: writes it too):

  memory   bytes of worker RSS per idle connection on /echo and on /ws
           with an id, and per room membership: tests/bench/idle_memory.py,
           run as it is (-n CONNS, then --path /ws --id --rooms 1 and
           --rooms 2);
  cpu      worker CPU time per delivery (wshub-bench fanout: 1 publisher,
           MEMBERS subscribers, MESSAGES messages, run twice, with
           MESSAGES and MESSAGES / 10, and the difference divided by the
           difference of the deliveries, so that handshakes, joins and
           closes cancel out), and per handshake and per close
           (wshub-bench connect -H: the CPU at the first "hold" line of
           its progress, then at its end), on /ws and on /echo; one
           worker, local engine;
  redis    on the Redis engine (one redis-server, NODES wshubd of WORKERS
           workers each): Redis commands (INFO commandstats after CONFIG
           RESETSTAT), redis-server CPU time, bytes in and out, and the
           workers' CPU time per publish (plain room, history room),
           private message, broadcast, join and leave (of a room the
           worker is already subscribed to, and of a room of its own),
           connection (open and close); per presence refresh (one sync
           script per room with local members per worker every
           presence_ttl / 3) in rooms of 1,000, of 50 and of 1 member,
           with the presence keys' bytes (MEMORY USAGE) per membership;
           and the PUBLISH ceiling of this redis-server (redis-benchmark,
           0 and NODES x WORKERS subscribers).

CPU is CPU time, not wall time: this machine has 2 CPUs shared with other
work, and the load generator runs on them too. It is the sum over the
processes' threads of the scheduler's run time (/proc/PID/task/TID/sched,
se.sum_exec_runtime, nanoseconds); where that file is missing, utime +
stime of /proc/PID/stat (10 ms ticks). Loopback TCP is included: the
kernel charges both the sending and most of the receiving side of a
loopback send to the sender. The wall figures wshub-bench prints are
reported beside them, labelled "wall".

    /usr/bin/python3 tests/bench/capacity.py [--quick] [--runs K]
        [--json FILE] [--only memory,cpu,redis] [-n CONNS]
        [--members N] [--messages M] [--rate R] [--ops K]
        [--nodes N] [--workers W] [--window SECONDS]

--runs K repeats every measurement K times: the figures are the medians,
"spread" gives the lowest and highest. --quick: small counts, to try the
script (about 30 seconds; its figures are not worth quoting). Every
server it starts (wshubd through tests/integration/wshub_harness.py,
redis-server here) is stopped by pid, also on failure or Control-C.
A benchmark: it reports, it asserts nothing about the figures.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import idle_memory  # noqa: E402
from wshub_harness import Server, free_port, frame  # noqa: E402

TOP = os.path.join(HERE, "..", "..")
BENCH = os.environ.get("WSHUB_BENCH") or os.path.join(TOP, "wshub-bench")
REDIS_SERVER = shutil.which("redis-server")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
TICK = os.sysconf("SC_CLK_TCK")
PAYLOAD = "x" * 64      # the text of a room_message, as wshub-bench's 64 B
JOIN_ROOMS = 50         # rooms the joiners join, a few dozen each

# Commands of our own (measuring), not of the operation measured.
OURS = {"info", "config|resetstat", "config", "pubsub|numsub", "ping",
        "scan", "memory|usage"}


def progress(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr,
          flush=True)


# ---- CPU time --------------------------------------------------------------

def cpu_seconds(pid):
    """CPU time of process PID so far, all its threads: the scheduler's
    run time (ns), else utime + stime (ticks)."""
    total, found = 0.0, False
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        tids = []
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/sched" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.split(":")[1]) / 1000.0
                        found = True
                        break
        except OSError:
            continue
    if found:
        return total
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_source():
    return ("sched" if os.path.exists("/proc/self/task/%d/sched"
                                      % os.getpid()) else "stat")


def cpu_of(pids):
    return sum(cpu_seconds(p) for p in pids)


# ---- memory ----------------------------------------------------------------

def measure_memory(args):
    """Three runs of idle_memory.py, as it is."""
    script = os.path.join(HERE, "idle_memory.py")

    def run(extra):
        cmd = [sys.executable, script, "-n", str(args.n), "--json"] + extra
        progress("memory: " + " ".join(cmd[1:]))
        status, out, err = child(cmd, 300)
        if status != 0:
            raise RuntimeError("idle_memory.py failed:\n" + "".join(err[-20:]))
        return json.loads(out)

    echo = run([])
    one = run(["--path", "/ws", "--id", "--rooms", "1"])
    two = run(["--path", "/ws", "--id", "--rooms", "2"])
    m1, m2 = one["bytes_per_membership"], two["bytes_per_membership"]
    return {
        "memory_idle_echo_bytes": echo["bytes_per_connection"],
        "memory_idle_hub_bytes": round((one["bytes_per_connection"]
                                        + two["bytes_per_connection"]) / 2),
        "memory_membership_bytes": m2,
        # One more membership: 2 rooms' total minus 1 room's (issue 21).
        "memory_membership_marginal_bytes": 2 * m2 - m1,
    }


# ---- worker CPU (local engine) ---------------------------------------------

def child(cmd, timeout, stderr_line=None):
    """Run CMD: (exit status, standard output, standard error's lines).
    STDERR_LINE(line) is called for each line as it comes. Past TIMEOUT
    seconds, or when we are interrupted, the child gets SIGTERM (so that
    idle_memory.py stops its server), and SIGKILL 10 seconds later."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err, late = [], []

    def reader():
        for line in proc.stderr:
            err.append(line)
            if stderr_line:
                stderr_line(line)

    def stop():
        late.append(True)
        proc.terminate()

    # Standard error is the thread's alone (communicate() would read it
    # too, and take lines from under it).
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    t.join(5)
    if late:
        raise RuntimeError("%s timed out after %d s"
                           % (os.path.basename(cmd[0]), timeout))
    return proc.returncode, out, err


def bench(args_, stderr_line=None, timeout=180):
    """wshub-bench ARGS_ --json: its JSON. STDERR_LINE(line) is called
    for each progress line as it comes."""
    _, out, err = child([BENCH] + args_ + ["--json"], timeout, stderr_line)
    try:
        result = json.loads(out)
    except ValueError:
        raise RuntimeError("wshub-bench %s: no JSON:\n%s"
                           % (" ".join(args_), "".join(err[-20:])))
    if not result.get("ok"):
        raise RuntimeError("wshub-bench %s failed: %s"
                           % (" ".join(args_), result.get("errors")))
    return result


def fanout_cpu(srv, worker, args):
    """Worker CPU per delivery: two runs, MESSAGES and MESSAGES / 10."""
    url = srv.url("/ws")
    runs = []
    for n in (args.messages, max(1, args.messages // 10)):
        cmd = ["fanout", "-q", "-c", str(args.members), "-p", "1",
               "-r", str(args.rate), "-n", str(n), url]
        before = cpu_seconds(worker)
        res = bench(cmd)
        runs.append((cpu_seconds(worker) - before, res["delivered"], res))
        progress("cpu: fanout -c %d -r %d -n %d: %d deliveries, worker "
                 "%.3f s CPU" % (args.members, args.rate, n,
                                 res["delivered"], runs[-1][0]))
    (cpu_a, deliv_a, res), (cpu_b, deliv_b, _) = runs
    lat = res["latency_us"]
    return {
        "cpu_delivery_us": (cpu_a - cpu_b) / (deliv_a - deliv_b) * 1e6,
        "wall_fanout_deliveries_per_s": res["delivered_per_s"],
        "wall_fanout_latency_p50_ms": lat["p50"] / 1000,
        "wall_fanout_latency_p99_ms": lat["p99"] / 1000,
    }


def connect_cpu(srv, worker, path, conns):
    """Worker CPU per handshake (up to the first "hold" progress line)
    and per close (the rest); hub handshakes include the welcome."""
    held = []

    def line(text):
        if "] hold" in text and not held:
            held.append(cpu_seconds(worker))

    before = cpu_seconds(worker)
    res = bench(["connect", "-c", str(conns), "-H", "2", srv.url(path)], line)
    after = cpu_seconds(worker)
    if not held:
        raise RuntimeError("wshub-bench connect printed no hold line")
    n = res["connections"]["opened"]
    hs = res["connections"]["handshake_ms"]
    progress("cpu: connect -c %d %s: worker %.3f s CPU to open, %.3f to "
             "close" % (conns, path, held[0] - before, after - held[0]))
    key = "hub" if path == "/ws" else "echo"
    return {
        "cpu_handshake_%s_us" % key: (held[0] - before) / n * 1e6,
        "cpu_close_%s_us" % key: (after - held[0]) / n * 1e6,
        "wall_handshakes_%s_per_s" % key: res["handshakes_per_s"],
        "wall_handshake_%s_p50_ms" % key: hs["p50"],
    }


def measure_cpu(args):
    endpoints = [{"path": "/ws", "module": "hub"},
                 {"path": "/echo", "module": "echo"}]
    with Server(workers=1, endpoints=endpoints, log_level="warn",
                access_log="off", ping_period=0,
                max_connections=max(args.n, args.members) + 100) as srv:
        worker = srv.workers()[0]
        out = fanout_cpu(srv, worker, args)
        out.update(connect_cpu(srv, worker, "/ws", args.n))
        out.update(connect_cpu(srv, worker, "/echo", args.n))
    return out


# ---- Redis -----------------------------------------------------------------

class Resp:
    """A blocking RESP2 connection to redis-server that counts its own
    bytes, so that they can be taken out of Redis's totals."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.buf = b""
        self.sent = self.received = 0

    def _line(self):
        while b"\r\n" not in self.buf:
            more = self.sock.recv(65536)
            if not more:
                raise RuntimeError("redis-server closed the connection")
            self.received += len(more)
            self.buf += more
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                more = self.sock.recv(65536)
                if not more:
                    raise RuntimeError("redis-server closed the connection")
                self.received += len(more)
                self.buf += more
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if kind == b"*":
            return [self._reply() for _ in range(int(rest))]
        raise RuntimeError("redis: unexpected %r" % line)

    def call(self, *words):
        data = b"*%d\r\n" % len(words) + b"".join(
            b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words)
        self.sock.sendall(data)
        self.sent += len(data)
        return self._reply()

    def info(self, section):
        out = {}
        for line in self.call("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def close(self):
        self.sock.close()


class Redis:
    """A throw-away redis-server on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        self.idle = 0.0
        self.dir = tempfile.mkdtemp(prefix="wshub-capacity-redis-")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.conn = Resp(self.port)
                self.conn.call("PING")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def counters(self):
        """(total commands, CPU s, net in, net out), our own bytes taken
        out; INFO stats itself is one command."""
        s = self.conn.info("stats")
        return (int(s["total_commands_processed"]),
                cpu_seconds(self.proc.pid),
                int(s["total_net_input_bytes"]) - self.conn.sent,
                int(s["total_net_output_bytes"]) - self.conn.received)

    def quiesce(self, timeout=15):
        """Until Redis processes no command but ours for 0.3 s."""
        deadline = time.monotonic() + timeout
        last = self.counters()[0]
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = self.counters()[0]
            if now - last <= 1:
                return
            last = now
        raise RuntimeError("redis-server never went quiet")

    def measure_idle(self, seconds=1.0):
        """Redis's CPU a second with nothing to do (its timers, the
        clients' upkeep), taken out of every figure."""
        self.quiesce()
        cpu0 = cpu_seconds(self.proc.pid)
        time.sleep(seconds)
        self.idle = (cpu_seconds(self.proc.pid) - cpu0) / seconds
        return self.idle

    def busy(self, cpu, seconds):
        """CPU time CPU over SECONDS, the idle share taken out."""
        return max(0.0, cpu - self.idle * seconds)

    def commandstats(self):
        out = {}
        for name, v in self.conn.info("commandstats").items():
            m = re.match(r"cmdstat_(.*)", name)
            calls = re.search(r"calls=(\d+)", v)
            if m and calls and m.group(1) not in OURS:
                out[m.group(1)] = int(calls.group(1))
        return out

    def key_bytes(self, pattern):
        """MEMORY USAGE of the keys matching PATTERN, summed."""
        total, cursor = 0, "0"
        while True:
            cursor, keys = self.conn.call("SCAN", cursor, "MATCH", pattern,
                                          "COUNT", "1000")
            for key in keys:
                total += int(self.conn.call("MEMORY", "USAGE", key,
                                            "SAMPLES", "0") or 0)
            if cursor == "0":
                return total

    def numsub(self, channel):
        return int(self.conn.call("PUBSUB", "NUMSUB", channel)[1])


class Clients:
    """Raw WebSocket clients of the hub (idle_memory.py's), with what
    each received kept between exchanges."""

    def __init__(self):
        self.left = {}
        self.size = {}          # type -> bytes of the last one received

    def open(self, port, ids):
        socks = idle_memory.open_idle(
            port, len(ids), lambda m: None, "",
            lambda i: "/ws?id=" + ids[i], True)
        for s in socks:
            # The welcome (read by open_idle) is not kept: start afresh.
            self.left[s] = b""
        return socks

    def exchange(self, socks, send, kind, count, timeout=120):
        """Socket i sends SEND(i) (bytes, may be empty), then each waits
        for COUNT(i) messages of type KIND; others are dropped."""
        want = {}

        def start(i):
            s = socks[i]
            want[s] = count(i)
            data = send(i)
            if data:
                s.setblocking(True)
                s.sendall(data)
                s.setblocking(False)
            if want[s] == 0:
                # drive() waits for input: have the hub answer something.
                want[s] = -1
                s.setblocking(True)
                s.sendall(frame(1, b'{"type":"ping"}'))
                s.setblocking(False)
            return s

        def input(s, data):
            frames, self.left[s] = idle_memory.server_frames(
                self.left[s] + data)
            for op, payload in frames:
                if op != 1:
                    continue
                t = json.loads(payload).get("type")
                self.size[t] = len(payload)
                if want[s] == -1 and t == "pong":
                    want[s] = 0
                elif t == kind:
                    want[s] -= 1
            return want[s] == 0

        idle_memory.drive(len(socks), start, input, 256, kind, timeout,
                          lambda m: None)


def msg(**kw):
    return frame(1, json.dumps(kw).encode())


def node_yaml(redis_port, ttl):
    return ("engine:\n  type: redis\n  redis:\n    port: %d\n"
            "    presence_ttl: %s\n"
            "hub:\n  rooms:\n    - match: \"caph*\"\n      history: {}\n"
            "    - match: \"capt*\"\n      presence: count\n"
            "      announce: off\n" % (redis_port, ttl))


def start_nodes(redis, args, ttl, stack):
    nodes = []
    for _ in range(args.nodes):
        srv = Server(workers=args.workers,
                     endpoints=[{"path": "/ws", "module": "hub"}],
                     log_level="warn", access_log="off", ping_period=0,
                     max_connections=args.ops * 2 + 1000,
                     raw_yaml=node_yaml(redis.port, ttl))
        nodes.append(stack.enter_context(srv))
    return nodes


def pass_figures(redis, name, ops, work, workers):
    """Run WORK() between two readings of Redis: commands per op by
    name, CPU and bytes per op; and the CPU of the WORKERS (every node's)
    per op."""
    redis.quiesce()
    redis.conn.call("CONFIG", "RESETSTAT")
    t0 = time.monotonic()
    _, cpu0, in0, out0 = redis.counters()
    wcpu0 = cpu_of(workers)
    work()
    redis.quiesce()
    _, cpu1, in1, out1 = redis.counters()
    wcpu = cpu_of(workers) - wcpu0
    stats = redis.commandstats()
    per = {k: v / ops for k, v in sorted(stats.items())}
    total = sum(stats.values()) / ops
    cpu = redis.busy(cpu1 - cpu0, time.monotonic() - t0)
    progress("redis: %s x %d: %.2f commands each (%s), %.1f us CPU"
             % (name, ops, total, ", ".join("%s %.2f" % kv
                                             for kv in per.items()),
                cpu / ops * 1e6))
    return {
        "redis_%s_commands" % name: total,
        "redis_%s_cpu_us" % name: cpu / ops * 1e6,
        "redis_%s_bytes_in" % name: (in1 - in0) / ops,
        "redis_%s_bytes_out" % name: (out1 - out0) / ops,
        "redis_%s_workers_cpu_us" % name: wcpu / ops * 1e6,
    }, per


def measure_redis_ops(redis, args):
    """Publish, private message, broadcast, join, leave, connection."""
    k = args.ops
    out, detail = {}, {}
    with contextlib.ExitStack() as stack:
        nodes = start_nodes(redis, args, "600s", stack)
        workers = [w for srv in nodes for w in srv.workers()]
        cl = Clients()
        members, per_node = [], max(4, 4 * args.workers)
        for ni, srv in enumerate(nodes):
            members += cl.open(srv.port, ["m%d-%d" % (ni, i)
                                          for i in range(per_node)])
        # cap: a plain room, caph: history, capj-N: the joiners' rooms,
        # each with a member on every worker (ideally) beforehand.
        rooms = ["cap", "caph"] + ["capj-%d" % r for r in range(JOIN_ROOMS)]
        cl.exchange(members, lambda i: b"".join(
            msg(type="join_room", room=r) for r in rooms),
            "room_joined", lambda i: len(rooms))
        subs = redis.numsub("wshub:room:/ws#cap")
        out["redis_room_subscribers"] = subs
        progress("redis: %d members on %d nodes x %d workers; %d worker "
                 "subscriptions to the room" % (len(members), args.nodes,
                                                args.workers, subs))
        out["redis_idle_cpu_ms_per_s"] = redis.measure_idle() * 1000
        pub, rest = members[0], members[1:]
        recipient = per_node            # m1-0: on the second node

        def publish(room, kind="room_message"):
            fields = {"type": kind, "text": PAYLOAD}
            if room:
                fields["room"] = room

            def work():
                data = b"".join(msg(**fields) for _ in range(k))
                cl.exchange([pub] + rest,
                            lambda i: data if i == 0 else b"",
                            kind, lambda i: 0 if i == 0 else k)
            return work

        def private():
            data = b"".join(msg(type="private_message", to="m1-0",
                                text=PAYLOAD) for _ in range(k))
            cl.exchange([pub, members[recipient]],
                        lambda i: data if i == 0 else b"",
                        "private_message", lambda i: 0 if i == 0 else k)

        for name, work in (("publish", publish("cap")),
                           ("publish_history", publish("caph")),
                           ("private", private),
                           ("broadcast", publish(None, "broadcast"))):
            figs, detail[name] = pass_figures(redis, name, k, work, workers)
            out.update(figs)
            if name == "publish":
                # As a member of a plain room receives it (a history
                # room's carry their offset and epoch too).
                delivered = cl.size["room_message"]
        # Deliveries a publish: to every member but the publisher.
        out["redis_publish_deliveries"] = len(rest)
        out["redis_publish_bytes_out_per_subscriber"] = (
            out["redis_publish_bytes_out"] / max(1, subs))
        # What a member receives; the rest is wshub's envelope and the
        # RESP framing of Redis's message.
        out["redis_publish_message_bytes"] = delivered
        out["redis_publish_envelope_bytes"] = (
            out["redis_publish_bytes_out_per_subscriber"] - delivered)

        # Joins: K connections over the nodes, opened beforehand.
        joiners = []
        for ni, srv in enumerate(nodes):
            joiners += cl.open(srv.port, ["j%d-%d" % (ni, i)
                                          for i in range(k // args.nodes)])
        nj = len(joiners)

        def joins(room, kind="join_room", ack="room_joined"):
            def work():
                cl.exchange(joiners, lambda i: msg(type=kind,
                                                   room=room(i)),
                            ack, lambda i: 1)
            return work

        for name, work in (
                ("join", joins(lambda i: "capj-%d" % (i % JOIN_ROOMS))),
                ("leave", joins(lambda i: "capj-%d" % (i % JOIN_ROOMS),
                                "leave_room", "room_left")),
                ("join_new_room", joins(lambda i: "capn-%d" % i)),
                ("leave_last", joins(lambda i: "capn-%d" % i, "leave_room",
                                     "room_left"))):
            figs, detail[name] = pass_figures(redis, name, nj, work,
                                              workers)
            out.update(figs)

        def connections():
            for ni, srv in enumerate(nodes):
                socks = cl.open(srv.port, ["c%d-%d" % (ni, i)
                                           for i in range(k // args.nodes)])
                for s in socks:
                    s.close()
                    cl.left.pop(s, None)

        figs, detail["connection"] = pass_figures(
            redis, "connection", (k // args.nodes) * args.nodes, connections,
            workers)
        out.update(figs)
    return out, detail


def measure_redis_refresh(redis, args):
    """Presence refresh: idle members, presence_ttl 3s (a sync a second
    per room with local members per worker), counted over a window.
    Three layouts: one room of many members (presence count, announce
    off), rooms of 50 (the default rule: the sync's reply lists the
    room's ids) and rooms of one member;
    and the bytes of their presence keys (MEMORY USAGE) per membership."""
    out, detail = {}, {}
    window = args.window
    with contextlib.ExitStack() as stack:
        nodes = start_nodes(redis, args, "3s", stack)
        cl = Clients()
        socks = []
        for ni, srv in enumerate(nodes):
            socks += cl.open(srv.port, ["p%d-%d" % (ni, i)
                                        for i in range(args.ops
                                                       // args.nodes)])
        layouts = (
            ("refresh_big_room", "*presence*#capt", lambda i: ["capt"]),
            ("refresh_rooms_of_50", "*presence*#capm-*",
             lambda i: ["capm-%d" % (i % max(1, len(socks) // 50))]),
            ("refresh_small_rooms", "*presence*#caps-*",
             lambda i: ["caps-%d-%d" % (i, r) for r in range(5)]))
        previous = None
        for name, pattern, rooms in layouts:
            if previous:
                cl.exchange(socks, lambda i: b"".join(
                    msg(type="leave_room", room=r) for r in previous(i)),
                    "room_left", lambda i: len(previous(i)))
            cl.exchange(socks, lambda i: b"".join(
                msg(type="join_room", room=r) for r in rooms(i)),
                "room_joined", lambda i: len(rooms(i)))
            previous = rooms
            memberships = sum(len(rooms(i)) for i in range(len(socks)))
            time.sleep(1.0)         # the joins' scripts; refreshes go on
            out["redis_%s_memory_bytes_per_membership" % name] = (
                redis.key_bytes(pattern) / memberships)
            redis.conn.call("CONFIG", "RESETSTAT")
            t0 = time.monotonic()
            _, cpu0, _, _ = redis.counters()
            time.sleep(window)
            _, cpu1, _, _ = redis.counters()
            cpu = redis.busy(cpu1 - cpu0, time.monotonic() - t0)
            stats = redis.commandstats()
            syncs = stats.get("evalsha", 0) + stats.get("eval", 0)
            zadds = stats.get("zadd", 0)
            if syncs == 0 or zadds == 0:
                raise RuntimeError("no presence refresh in %g s" % window)
            detail[name] = {c: v / syncs for c, v in sorted(stats.items())}
            progress("redis: %s: %d memberships, %d syncs, %d ZADD in "
                     "%g s, %.1f us CPU a sync, %.2f a membership refreshed"
                     % (name, memberships, syncs, zadds, window,
                        cpu / syncs * 1e6, cpu / zadds * 1e6))
            out.update({
                "redis_%s_commands_per_sync" % name:
                    sum(stats.values()) / syncs,
                "redis_%s_members_per_sync" % name: zadds / syncs,
                "redis_%s_cpu_us_per_sync" % name: cpu / syncs * 1e6,
                "redis_%s_cpu_us_per_membership" % name: cpu / zadds * 1e6,
            })
    return out, detail


def redis_ceiling(redis, args):
    """PUBLISH throughput and CPU per PUBLISH of this redis-server, with
    no subscriber and with NODES x WORKERS (one per worker, as the room
    channel of a room spread over every worker)."""
    out = {}
    n = args.ops * 200
    payload = "x" * 120
    for subs in (0, args.nodes * args.workers):
        readers, stop = [], threading.Event()
        for _ in range(subs):
            s = socket.create_connection(("127.0.0.1", redis.port), 10)
            s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\ncapch\r\n")
            s.recv(4096)
            s.settimeout(0.2)

            def drain(s=s):
                while not stop.is_set():
                    with contextlib.suppress(socket.timeout):
                        if not s.recv(1 << 20):
                            return
            t = threading.Thread(target=drain, daemon=True)
            t.start()
            readers.append((s, t))
        try:
            cpu0 = cpu_seconds(redis.proc.pid)
            status, res, _ = child(
                [REDIS_BENCHMARK, "-p", str(redis.port), "-n", str(n),
                 "-c", "20", "-P", "16", "-q", "--csv",
                 "PUBLISH", "capch", payload], 120)
            cpu = cpu_seconds(redis.proc.pid) - cpu0
        finally:
            stop.set()
            for s, t in readers:
                t.join(2)
                s.close()
        rate = None
        for line in res.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if len(cells) > 1 and cells[0].upper().startswith("PUBLISH"):
                rate = float(cells[1])
        if status != 0 or rate is None:
            raise RuntimeError("redis-benchmark: %r" % res)
        progress("redis: PUBLISH to %d subscribers: %.0f/s (wall), %.2f us "
                 "CPU each" % (subs, rate, cpu / n * 1e6))
        key = "0" if subs == 0 else "n"
        out["redis_publish_ceiling_%s_subs_cpu_us" % key] = cpu / n * 1e6
        out["wall_redis_publish_ceiling_%s_subs_per_s" % key] = rate
    return out


def measure_redis(args):
    if REDIS_SERVER is None:
        raise RuntimeError("redis-server is not installed: "
                           "--only memory,cpu leaves Redis out")
    redis = Redis()
    try:
        out, detail = measure_redis_ops(redis, args)
        figs, more = measure_redis_refresh(redis, args)
        out.update(figs)
        detail.update(more)
        if REDIS_BENCHMARK:
            out.update(redis_ceiling(redis, args))
        else:
            progress("redis: no redis-benchmark: no PUBLISH ceiling")
        out["redis_version"] = redis.conn.info("server")["redis_version"]
    finally:
        redis.conn.close()
        redis.stop()
    return out, detail


# ---- the runs --------------------------------------------------------------

def summarise(runs):
    """Medians and (lowest, highest) of each numeric figure."""
    figures, spread = {}, {}
    for key in runs[0]:
        values = [r[key] for r in runs if key in r]
        if all(isinstance(v, (int, float)) for v in values):
            figures[key] = statistics.median(values)
            spread[key] = [min(values), max(values)]
        else:
            figures[key] = values[0]
    return figures, spread


def host():
    try:
        with open("/etc/os-release") as f:
            osr = dict(line.rstrip().split("=", 1) for line in f
                       if "=" in line)
        system = osr.get("PRETTY_NAME", "").strip('"')
    except OSError:
        system = platform.system()
    model = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    return {"system": system, "kernel": platform.release(), "cpu": model,
            "cpus": os.cpu_count(), "load": os.getloadavg()[0]}


def commit():
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "-C", TOP, "describe", "--always",
                               "--dirty"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              timeout=10).stdout.strip() or None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small counts, to try the script")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", metavar="FILE",
                    help="also write the results as JSON ('-': stdout)")
    ap.add_argument("--only", default="memory,cpu,redis",
                    help="comma-separated parts: memory, cpu, redis")
    ap.add_argument("-n", type=int, help="connections (memory, handshakes)")
    ap.add_argument("--members", type=int, help="fan-out subscribers")
    ap.add_argument("--messages", type=int, help="fan-out messages")
    ap.add_argument("--rate", type=int, help="fan-out messages a second")
    ap.add_argument("--ops", type=int,
                    help="Redis operations of each kind")
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2,
                    help="workers of each node on the Redis engine")
    ap.add_argument("--window", type=float,
                    help="seconds of presence refreshes counted")
    args = ap.parse_args()
    quick = {"n": 1000, "members": 200, "messages": 2000, "rate": 4000,
             "ops": 300, "window": 1.2}
    full = {"n": 10000, "members": 1000, "messages": 5000, "rate": 1000,
            "ops": 1000, "window": 4.0}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    parts = set(args.only.split(","))
    if parts - {"memory", "cpu", "redis"} or args.runs < 1 \
            or args.nodes < 1 or args.workers < 1 or args.n < 100 \
            or args.members < 10 or args.messages < 10 or args.ops < 10:
        ap.error("bad --only, or a count too small")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(args.n, args.members, args.ops * 2) + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    started = time.time()
    runs, details = [], []
    for r in range(args.runs):
        progress("run %d of %d" % (r + 1, args.runs))
        figs, detail = {}, {}
        if "memory" in parts:
            figs.update(measure_memory(args))
        if "cpu" in parts:
            figs.update(measure_cpu(args))
        if "redis" in parts:
            more, detail = measure_redis(args)
            figs.update(more)
        runs.append(figs)
        details.append(detail)
    figures, spread = summarise(runs)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "host": host(), "commit": commit(), "cpu_time_source": cpu_source(),
        "command": " ".join(sys.argv),
        "settings": {k: getattr(args, k) for k in (
            "n", "members", "messages", "rate", "ops", "nodes", "workers",
            "window", "runs", "quick")},
        "figures": figures, "spread": spread,
        "redis_commands": details[0],
        "runs": runs,
    }
    if args.json:
        text = json.dumps(result, indent=1, sort_keys=True)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    if args.json != "-":
        for key in sorted(figures):
            value = figures[key]
            if not isinstance(value, (int, float)):
                print("%-52s %12s" % (key, value))
                continue
            lo, hi = spread[key]
            print("%-52s %12.4g%s" % (key, value, "   [%.4g .. %.4g]"
                                      % (lo, hi) if args.runs > 1 else ""))
    bad = [k for k, v in figures.items() if isinstance(v, (int, float))
           and not (math.isfinite(v) and v > 0)]
    if bad:
        progress("not positive: " + ", ".join(bad))

if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda *a: sys.exit(130))
    try:
        main()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        sys.exit("capacity.py: %s" % e)
