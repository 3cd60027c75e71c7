#!/usr/bin/python3
"""chaos.py -- the lossless soak: publish, fail, count.

Starts real wshubd nodes (2 workers each; the local engine on one node,
or the redis engine on two nodes and a real redis-server), then runs
together:

- HTTP publishers: 1 KB messages to rooms with history over
  POST /api/publish, each with its own Idempotency-Key, retried with the
  same key until answered 202 (timeouts, resets, 503 and 504 are
  retried): every message is acknowledged once, with its offset;
- WebSocket publishers: batches of 10 room_messages with an "id", each
  batch waiting for its acks; a connection lost meanwhile reconnects,
  and its unacknowledged messages count as unknown (neither
  acknowledged nor retried);
- subscribers: members of the rooms that keep their position, come
  back after any close with since, rejoin after room_reset, and drop
  duplicates by offset, as a careful client does;
- faults, in an order drawn from --seed: "hup" (reload), "kill" (SIGKILL
  one worker), "stop" (SIGSTOP a worker for 2 s, its channel backs up),
  "usr2" (binary upgrade: USR2, WINCH, QUIT; with the local engine the
  new master starts new epochs), "redis" (redis-server killed and
  restarted empty: a new epoch; redis engine only).

At the end every subscriber must have every acknowledged message, or
have been told it cannot have it (room_reset or recovered:false for that
message's epoch: the history itself was lost); and no message may be
numbered twice. One line per fault type: the messages acknowledged
while that fault was the latest, how many reached every subscriber, how
many were lost silently, how many were told lost, and duplicates. Exits
1 when anything was lost silently or duplicated.

    tests/soak/chaos.py --engine local --duration 60 --faults hup*8,kill*6
    tests/soak/chaos.py --engine redis --duration 600 --seed 7
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from wshub_harness import Server, connect  # noqa: E402

API_KEY = "0123456789abcdef0123"
ROOMS = ["log:%d" % i for i in range(4)]
PAD = "x" * 1000                    # 1 KB messages


def hub_yaml(extra=""):
    return ("hub:\n  api_key: %s\n  history:\n    - rooms: \"log:*\"\n"
            "      size: 100000\n      ttl: 30m\n" % API_KEY) + extra


class Ledger:
    """What was acknowledged, when, and what each subscriber got."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}             # pid -> (room, epoch, offset, t)
        self.faults = [(0.0, "none")]
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def ack(self, pid, room, epoch, offset):
        with self.lock:
            self.acked[pid] = (room, epoch, offset, self.now())

    def fault(self, kind):
        with self.lock:
            self.faults.append((self.now(), kind))

    def fault_at(self, t):
        kind = "none"
        for start, k in self.faults:
            if start <= t:
                kind = k
        return kind


class Subscriber:
    def __init__(self, nodes, name, room, log):
        self.nodes, self.name, self.room, self.log = nodes, name, room, log
        self.got = {}               # (epoch, offset) -> pid
        self.told = set()           # epochs it was told are gone
        self.epoch = None
        self.offset = 0
        self.reconnects = 0
        self.resets = 0

    def since(self):
        if self.epoch is None:
            return None
        return {"offset": self.offset, "epoch": self.epoch}

    def take(self, msg):
        key = (msg["epoch"], msg["offset"])
        if key in self.got:
            return                  # a replay overlap: dropped by offset
        self.got[key] = msg.get("pid")
        if msg["epoch"] != self.epoch:
            self.epoch, self.offset = msg["epoch"], 0
        self.offset = max(self.offset, msg["offset"])

    def joined(self, msg, asked):
        """True when the room's history began anew meanwhile: what the
        new epoch holds is then asked for from its start."""
        epoch = msg.get("epoch")
        if asked is not None and msg.get("recovered") is False:
            self.told.add(asked["epoch"])
            if epoch and epoch != asked["epoch"] and msg["offset"] > 0:
                self.epoch, self.offset = epoch, 0
                return True
        if epoch and epoch != self.epoch:
            if self.epoch is not None:
                self.told.add(self.epoch)
            self.epoch, self.offset = epoch, msg["offset"]
        return False

    async def join(self, ws):
        asked = self.since()
        req = {"type": "join_room", "room": self.room}
        if asked is not None:
            req["since"] = asked
        await ws.send(json.dumps(req))
        return asked

    async def run(self, stop):
        rng = random.Random(self.name)
        while not stop.is_set():
            node = rng.choice(self.nodes)
            try:
                ws = await connect(node.url("/ws?id=" + self.name))
            except Exception:
                await asyncio.sleep(0.2)
                continue
            self.reconnects += 1
            asked = "pending"
            try:
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 1)
                    except asyncio.TimeoutError:
                        if stop.is_set():
                            await ws.close()
                            return
                        continue
                    msg = json.loads(raw)
                    t = msg.get("type")
                    if t == "welcome":
                        asked = await self.join(ws)
                    elif t == "room_joined":
                        if self.joined(msg, asked):
                            await ws.send(json.dumps({
                                "type": "leave_room", "room": self.room}))
                            asked = await self.join(ws)
                    elif t == "room_message":
                        self.take(msg)
                    elif t == "room_reset":
                        self.resets += 1
                        since = msg["since"]
                        if self.epoch is not None \
                                and since["epoch"] != self.epoch:
                            self.told.add(self.epoch)
                        self.epoch, self.offset = since["epoch"], \
                            since["offset"]
                        asked = await self.join(ws)
            except Exception:
                # A connection lost: closed here, not left to the garbage
                # collector once the loop is gone.
                await ws.close()
                await asyncio.sleep(0.1 + rng.random() * 0.3)


def http_publisher(nodes, ledger, name, stop, stats):
    """Publish until STOP, each message retried with its key until 202."""
    rng = random.Random(name)
    n = 0
    conn = None
    while not stop.is_set():
        pid = "%s-%d" % (name, n)
        room = ROOMS[n % len(ROOMS)]
        body = json.dumps({"room": room, "data": {"pid": pid, "pad": PAD}})
        while True:
            try:
                if conn is None:
                    node = rng.choice(nodes)
                    conn = http.client.HTTPConnection("127.0.0.1", node.port,
                                                      timeout=5)
                conn.request("POST", "/api/publish", body, {
                    "Authorization": "apikey " + API_KEY,
                    "Idempotency-Key": pid})
                r = conn.getresponse()
                answer = json.loads(r.read() or b"{}")
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                if r.status == 202:
                    ledger.ack(pid, room, answer["epoch"], answer["offset"])
                    stats["retried"] += answer.get("duplicate", False)
                    break
                stats["refused %d" % r.status] = \
                    stats.get("refused %d" % r.status, 0) + 1
                if r.status not in (408, 429, 503, 504):
                    # Not a refusal a retry can change: the publisher
                    # stops, and the run fails.
                    stats["fatal"] = "POST /api/publish answered %d: %s" % (
                        r.status, answer)
                    if conn is not None:
                        conn.close()
                    return
            except (OSError, http.client.HTTPException, ValueError):
                stats["errors"] += 1
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.05)
        n += 1
        time.sleep(0.002)
    if conn is not None:
        conn.close()


async def ws_publisher(nodes, ledger, name, stop, stats):
    rng = random.Random(name)
    n = 0
    while not stop.is_set():
        ws = None
        try:
            ws = await connect(rng.choice(nodes).url("/ws?id=" + name))
            for room in ROOMS:
                await ws.send(json.dumps({"type": "join_room",
                                          "room": room}))
            while not stop.is_set():
                batch = {}
                for _ in range(10):
                    pid = "%s-%d" % (name, n)
                    room = ROOMS[n % len(ROOMS)]
                    n += 1
                    batch[pid] = room
                    await ws.send(json.dumps({
                        "type": "room_message", "room": room, "id": pid,
                        "pid": pid, "pad": PAD}))
                while batch:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg.get("type") == "room_reset":
                        # Still a member for the next batches.
                        await ws.send(json.dumps({"type": "join_room",
                                                  "room": msg["room"]}))
                    if msg.get("type") == "ack" and msg["id"] in batch:
                        ledger.ack(msg["id"], batch.pop(msg["id"]),
                                   msg["epoch"], msg["offset"])
                    elif msg.get("type") == "error" and "id" in msg:
                        batch.pop(msg["id"], None)
                        key = "ws error: " + msg.get("error", "?")
                        stats[key] = stats.get(key, 0) + 1
        except Exception:
            stats["ws unknown"] += 10     # the batch in flight, at most
            await asyncio.sleep(0.2)
        finally:
            if ws is not None:
                await ws.close()


class Faults:
    def __init__(self, nodes, redis, ledger, log):
        self.nodes, self.redis, self.ledger, self.log = (nodes, redis,
                                                         ledger, log)

    def apply(self, kind, rng):
        node = rng.choice(self.nodes)
        self.ledger.fault(kind)
        self.log("fault %s" % kind)
        if kind == "hup":
            node.signal(signal.SIGHUP)
        elif kind == "kill":
            workers = node.workers()
            if workers:
                os.kill(rng.choice(workers), signal.SIGKILL)
        elif kind == "stop":
            workers = node.workers()
            if workers:
                pid = rng.choice(workers)
                os.kill(pid, signal.SIGSTOP)
                time.sleep(2)
                os.kill(pid, signal.SIGCONT)
        elif kind == "redis":
            self.redis.stop()
            time.sleep(1)
            self.redis.start()
        elif kind == "usr2":
            node.upgrade()


def report(ledger, subs, stats, out):
    per = {}
    for pid, (room, epoch, offset, t) in ledger.acked.items():
        row = per.setdefault(ledger.fault_at(t), [0, 0, 0, 0, 0])
        row[0] += 1
        members = [s for s in subs if s.room == room]
        got = [s for s in members if (epoch, offset) in s.got]
        told = [s for s in members if (epoch, offset) not in s.got
                and epoch in s.told]
        row[1] += len(got) == len(members)
        row[2] += len(members) - len(got) - len(told) > 0
        row[3] += len(told) > 0
    # A message numbered twice: one pid at two positions of its room.
    where = {}
    for s in subs:
        for key, pid in s.got.items():
            if pid is not None:
                where.setdefault(pid, set()).add(key)
    dups = {pid for pid, keys in where.items() if len(keys) > 1}
    for pid in dups:
        t = ledger.acked.get(pid, (None, None, None, 0))[3]
        per.setdefault(ledger.fault_at(t), [0, 0, 0, 0, 0])[4] += 1
    out("%-8s %12s %10s %6s %6s %11s" % ("fault", "acknowledged",
                                         "delivered", "lost", "told",
                                         "duplicated"))
    total = [0, 0, 0, 0, 0]
    for kind in sorted(per):
        row = per[kind]
        total = [a + b for a, b in zip(total, row)]
        out("%-8s %12d %10d %6d %6d %11d" % ((kind,) + tuple(row)))
    out("%-8s %12d %10d %6d %6d %11d" % (("all",) + tuple(total)))
    out("faults: %s" % ", ".join("%s@%.1fs" % (k, t)
                                 for t, k in ledger.faults[1:]))
    out("publishers: %s" % ", ".join("%s %d" % kv
                                     for kv in sorted(stats.items())))
    out("subscribers: %d connections, %d room resets" % (
        sum(s.reconnects for s in subs), sum(s.resets for s in subs)))
    return total


def parse_faults(text, engine, duration, rng):
    """"hup*8,kill*6": that many, in that order; "" : drawn at random,
    one every 5 s."""
    kinds = ["hup", "kill", "stop", "usr2"] + (["redis"] if engine == "redis"
                                               else [])
    if not text:
        return [rng.choice(kinds) for _ in range(max(1, duration // 5))]
    out = []
    for part in text.split(","):
        kind, _, count = part.partition("*")
        if kind not in kinds:
            raise SystemExit("chaos.py: unknown fault %r (have %s)"
                             % (kind, ", ".join(kinds)))
        out += [kind] * int(count or 1)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["local", "redis"], default="local")
    ap.add_argument("--duration", type=int, default=60,
                    help="seconds of publishing (default 60)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", default="",
                    help="e.g. hup*8,kill*6 (default: random, one per 5 s)")
    ap.add_argument("--subscribers", type=int, default=8)
    ap.add_argument("--publishers", type=int, default=2,
                    help="HTTP publishers; as many WebSocket ones")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    faults = parse_faults(args.faults, args.engine, args.duration, rng)

    def log(text):
        print("chaos: %6.1fs %s" % (ledger.now(), text), flush=True)

    ledger = Ledger()
    redis = None
    nodes = []
    try:
        extra = ""
        if args.engine == "redis":
            from test_redis import Redis
            redis = Redis().start()
            extra = "engine:\n  type: redis\n  redis:\n    port: %d\n" \
                    % redis.port
        for _ in range(2 if args.engine == "redis" else 1):
            srv = Server(workers=2, reuseport=True, shutdown_spread="200ms",
                         shutdown_timeout="10s", log_level="notice",
                         access_log="off",
                         endpoints=[{"path": "/ws", "module": "hub"},
                                    {"path": "/api/publish",
                                     "module": "hub_api"}],
                         raw_yaml=hub_yaml(extra))
            nodes.append(srv.start())
        log("%d node(s), engine %s, faults: %s" % (
            len(nodes), args.engine, " ".join(faults)))
        subs = [Subscriber(nodes, "s%d" % i, ROOMS[i % len(ROOMS)], log)
                for i in range(args.subscribers)]
        stats = {"errors": 0, "retried": 0,
                 "ws unknown": 0}

        async def run():
            stop_subs = asyncio.Event()
            stop_pubs = asyncio.Event()
            tasks = [asyncio.create_task(s.run(stop_subs)) for s in subs]
            await asyncio.sleep(1)
            thread_stop = threading.Event()
            # Daemons: a fault that fails must not leave them publishing.
            threads = [threading.Thread(target=http_publisher, args=(
                nodes, ledger, "h%d" % i, thread_stop, stats), daemon=True)
                for i in range(args.publishers)]
            for t in threads:
                t.start()
            pubs = [asyncio.create_task(ws_publisher(
                nodes, ledger, "w%d" % i, stop_pubs, stats))
                for i in range(args.publishers)]
            fault_runner = Faults(nodes, redis, ledger, log)
            loop = asyncio.get_running_loop()
            gap = args.duration / (len(faults) + 1)
            start = time.monotonic()
            try:
                for i, kind in enumerate(faults):
                    await asyncio.sleep(max(0, start + gap * (i + 1)
                                            - time.monotonic()))
                    await loop.run_in_executor(None, fault_runner.apply,
                                               kind, rng)
                    log("%d acknowledged so far" % len(ledger.acked))
                await asyncio.sleep(max(0, start + args.duration
                                        - time.monotonic()))
            except BaseException:
                stop_subs.set()
                raise
            finally:
                thread_stop.set()
                stop_pubs.set()
            for t in threads:
                await loop.run_in_executor(None, t.join)
            await asyncio.gather(*pubs)
            # Subscribers catch up (reconnects, replays), bounded.
            last = {}
            for room, epoch, offset, t in ledger.acked.values():
                if offset > last.get((room, epoch), 0):
                    last[(room, epoch)] = offset
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                behind = [s for s in subs if any(
                    room == s.room and epoch not in s.told
                    and (epoch, offset) not in s.got
                    for (room, epoch), offset in last.items())]
                if not behind:
                    break
                await asyncio.sleep(0.2)
            stop_subs.set()
            await asyncio.gather(*tasks)
        asyncio.run(run())
        total = report(ledger, subs, stats, print)
        for srv in nodes:
            for line in srv.log().splitlines():
                if "[alert]" in line or "[emerg]" in line:
                    print("chaos: server: " + line)
        if "fatal" in stats:
            print("chaos: " + stats["fatal"])
            return 1
        return 1 if total[2] or total[4] or total[0] == 0 else 0
    finally:
        for srv in nodes:
            srv.stop()
        if redis is not None:
            redis.cleanup()


if __name__ == "__main__":
    sys.exit(main())
