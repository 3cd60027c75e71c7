#!/bin/bash
# run.sh -- the standard benchmark scenarios against a fresh wshubd.
#
# Starts a wshubd from the build tree for every scenario (generated
# configuration, free loopback port, local engine, 1 or 2 workers),
# drives it with wshub-bench, stops it by pid, and writes RESULTS.md (a
# markdown table) and results.json. The Redis scenarios start a
# redis-server (if installed) and two wshubd nodes of 2 workers on it,
# the publisher on the first, the subscribers split over both. It
# reports figures; it never decides that a figure is too slow. The
# echo, fanout and connect scenarios also run against two reference
# peers installed with npm into a scratch directory when missing: Node's
# `ws` (ref_ws_server.js) and uWebSockets through its Node binding
# (ref_uws_server.mjs, npm package uws-pack): RESULTS.md gives wshub's
# figures as a ratio to each. See tests/bench/README.md.
#
# usage: tests/bench/run.sh [-d SECONDS] [-j THREADS] [-o DIR] [-q]
#                           [-s PATTERN] [-P] [-N]
#   -d  measured seconds per scenario (10)
#   -j  wshub-bench threads (2)
#   -o  where RESULTS.md and results.json go (tests/bench in the sources)
#   -q  quick: 3-second scenarios, for trying the script out
#   -s  only the scenarios whose name matches PATTERN (grep -E)
#   -P  pin the servers to CPU 0 and wshub-bench to CPU 1 (taskset)
#   -N  no reference peers (Node's ws, uWebSockets)

set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
WSHUBD=${WSHUBD:-$top/wshubd}
WSHUB_BENCH=${WSHUB_BENCH:-$(dirname "$WSHUBD")/wshub-bench}
duration=10
threads=2
out=$here

only=
pin_server=
pin_bench=
reference=1
# npm installs `ws` here (never into the sources); kept between runs
ref_dir=${WSHUB_BENCH_NODE_DIR:-${TMPDIR:-/tmp}/wshub-bench-node}
while getopts "d:j:o:qs:PNh" ch; do
    case $ch in
    d) duration=$OPTARG ;;
    j) threads=$OPTARG ;;
    o) out=$OPTARG ;;
    q) duration=3 ;;
    s) only=$OPTARG ;;
    P) pin_server="taskset -c 0"; pin_bench="taskset -c 1" ;;
    N) reference= ;;
    *) sed -n '17,25p' "$0"; exit 2 ;;
    esac
done

for prog in "$WSHUBD" "$WSHUB_BENCH"; do
    if [ ! -x "$prog" ]; then
        echo "run.sh: $prog is not built (run make first)" >&2
        exit 1
    fi
done
command -v python3 >/dev/null || { echo "run.sh: needs python3" >&2; exit 1; }
if [ -n "$pin_server" ] && ! command -v taskset >/dev/null; then
    echo "run.sh: -P needs taskset (util-linux)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wshub-bench.XXXXXX")
server_pid=
pids=                   # every wshubd and redis-server started, to stop

stop_server() {
    local pid
    for pid in $pids; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=
    server_pid=
}
trap 'stop_server; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server WORKERS [YAML]: a fresh wshubd, YAML appended to its
# configuration; sets $port and $server_pid.
start_server() {
    port=$(free_port)
    cat >"$tmp/wshub-$port.yaml" <<EOF
worker_processes: $1
user: $(id -un)
listen: [127.0.0.1:$port]
error_log: $tmp/error.log
log_level: warn
max_connections: 20000
endpoints:
  - path: /echo
    module: echo
  - path: /ws
    module: hub
${2:-}
EOF
    $pin_server "$WSHUBD" -c "$tmp/wshub-$port.yaml" >>"$tmp/stdout.log" 2>&1 &
    server_pid=$!
    pids="$pids $server_pid"
    wait_up wshubd wshubd_up "$tmp/stdout.log" "$tmp/error.log"
}

wshubd_up() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        sleep 0.2       # let every worker come up
        return 0
    fi
    return 1
}

# wait_up WHAT CHECK LOG...: run CHECK every 0.1 s until it succeeds
# (10 s at most) while $server_pid lives; otherwise show the LOGs, exit.
wait_up() {
    local what=$1 check=$2
    shift 2
    for _ in $(seq 100); do
        if $check; then
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "run.sh: $what did not start:" >&2
    cat "$@" >&2 2>/dev/null || true
    exit 1
}

n=0
# skip NAME: true when -s leaves scenario NAME out.
skip() {
    [ -n "$only" ] && ! printf '%s\n' "$1" | grep -Eq -- "$only"
}

# scenario NAME WORKERS PATH BENCH-ARGS...: one run against a fresh server.
scenario() {
    local name=$1 workers=$2 path=$3 rc=0
    shift 3
    if skip "$name"; then
        return 0
    fi
    n=$((n + 1))
    echo "== [$n] $name, $workers worker(s): wshub-bench $* -j $threads" >&2
    if [ "$workers" = ws ] || [ "$workers" = uws ]; then
        start_reference "$workers"
    else
        start_server "$workers" "$server_yaml"
    fi
    $pin_bench "$WSHUB_BENCH" "$@" -j "$threads" --json "ws://127.0.0.1:$port$path" \
        >"$tmp/run$n.json" || rc=$?
    stop_server
    printf '%s\t%s\t%s\t%s\n' "$name" "$workers" "$rc" "$*" >>"$tmp/index"
    echo "   exit status $rc" >&2
}

# The reference peers: workers-column name, npm package, server script.
REF_PKG_ws=ws@8
REF_PKG_uws=uws-pack@20.0.8
REF_SCRIPT_ws=ref_ws_server.js
REF_SCRIPT_uws=ref_uws_server.mjs
REF_LOAD_ws='require("ws")'
REF_LOAD_uws='import(require("path").join(process.env.NODE_PATH, "uws-pack/dist/index.mjs"))'

# reference_ready KIND: true when node can load KIND's package from
# $ref_dir, after installing it there with npm if needed; says why not
# otherwise.
reference_ready() {
    local pkg load
    eval "pkg=\$REF_PKG_$1 load=\$REF_LOAD_$1"
    if ! command -v node >/dev/null; then
        echo "run.sh: no node, reference peer $1 skipped" >&2
        return 1
    fi
    if NODE_PATH="$ref_dir/node_modules" node -e "$load" 2>/dev/null; then
        return 0
    fi
    if ! command -v npm >/dev/null; then
        echo "run.sh: no npm to install $pkg, reference peer $1 skipped" \
             "(packaging/install-deps.sh --bench installs it)" >&2
        return 1
    fi
    # Every peer's package in one go: a --no-save install removes the
    # packages it was not given.
    echo "== installing $REF_PKG_ws $REF_PKG_uws with npm into $ref_dir" >&2
    mkdir -p "$ref_dir"
    if ! npm install --prefix "$ref_dir" --no-save --no-audit --no-fund \
        "$REF_PKG_ws" "$REF_PKG_uws" >&2 \
        || ! NODE_PATH="$ref_dir/node_modules" node -e "$load" 2>/dev/null
    then
        echo "run.sh: $pkg cannot be installed or loaded here," \
             "reference peer $1 skipped" >&2
        return 1
    fi
}

# start_reference KIND: that peer serving /echo and /ws like wshub (see
# its script); sets $port and $server_pid.
start_reference() {
    local script
    eval "script=\$REF_SCRIPT_$1"
    port=$(free_port)
    NODE_PATH="$ref_dir/node_modules" $pin_server node \
        "$here/$script" "$port" >"$tmp/ref-$port.log" 2>&1 &
    server_pid=$!
    pids="$pids $server_pid"
    wait_up "the reference server $1" reference_up "$tmp/ref-$port.log"
}

reference_up() {
    grep -q listening "$tmp/ref-$port.log" 2>/dev/null
}

# start_redis: a redis-server without persistence; sets $redis_port.
start_redis() {
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
        --appendonly no --dir "$tmp" >>"$tmp/redis.log" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 100); do
        if [ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" = PONG ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "run.sh: redis-server did not start" >&2
    exit 1
}

# scenario_redis NAME WORKERS BENCH-ARGS...: one Redis, nodes A and B
# of WORKERS workers each; wshub-bench gets A's URL first (its
# publishers go there) and B's, subscribers alternating between them.
scenario_redis() {
    local name=$1 workers=$2 rc=0 a
    shift 2
    if skip "$name"; then
        return 0
    fi
    n=$((n + 1))
    echo "== [$n] $name, 2 nodes x $workers workers, redis: wshub-bench $* -j $threads" >&2
    start_redis
    start_server "$workers" "engine: {type: redis, redis: {port: $redis_port}}"
    a=$port
    start_server "$workers" "engine: {type: redis, redis: {port: $redis_port}}"
    $pin_bench "$WSHUB_BENCH" "$@" -j "$threads" --json "ws://127.0.0.1:$a/ws" \
        "ws://127.0.0.1:$port/ws" >"$tmp/run$n.json" || rc=$?
    stop_server
    printf '%s\t%s\t%s\t%s\n' "$name" "$workers+$workers redis" "$rc" "$*" \
        >>"$tmp/index"
    echo "   exit status $rc" >&2
}

d=$duration
server_yaml=        # configuration added to the next scenarios' servers
scenario "echo 100 conns, 64 B" 1 /echo echo -c 100 -s 64 -d "$d"
scenario "echo 100 conns, 64 B" 2 /echo echo -c 100 -s 64 -d "$d"
for rate in 500 1000 2000; do
    scenario "fanout 1 -> 1000, $rate msg/s" 2 /ws \
        fanout -c 1000 -p 1 -r "$rate" -d "$d" --max-loss 100
done
scenario "fanout 1 -> 1000, max" 2 /ws fanout -c 1000 -p 1 -d "$d" \
    --max-loss 100
scenario "fanout 1 -> 1000, max" 1 /ws fanout -c 1000 -p 1 -d "$d" \
    --max-loss 100
# Issue 12's acceptance: 5 M deliveries/s on one worker, default
# configuration.
scenario "fanout 1 -> 1000, 5000 msg/s" 1 /ws \
    fanout -c 1000 -p 1 -r 5000 -d "$d" --max-loss 100
# Broadcasts coalesced over write_delay (wshub.yaml(5)): one write per
# subscriber per 20 ms instead of per loop turn.
server_yaml="write_delay: 20ms"
scenario "fanout 1 -> 1000, 5000 msg/s, write_delay 20ms" 1 /ws \
    fanout -c 1000 -p 1 -r 5000 -d "$d" --max-loss 100
scenario "fanout 1 -> 1000, max, write_delay 20ms" 1 /ws \
    fanout -c 1000 -p 1 -d "$d" --max-loss 100
server_yaml=
# 8,000: long enough (about half a second) to be more than start-up.
scenario "connect 8000" 1 /ws connect -c 8000
scenario "connect 8000" 2 /ws connect -c 8000
ref_wanted=
for name in "echo 100 conns, 64 B" "fanout 1 -> 1000, max" \
    "fanout 1 -> 1000, 5000 msg/s" "connect 8000"; do
    skip "$name" || ref_wanted=1
done
for kind in ws uws; do
    if [ -n "$reference" ] && [ -n "$ref_wanted" ] && reference_ready "$kind"
    then
        # the same scenario names with the peer in the workers column
        scenario "echo 100 conns, 64 B" "$kind" /echo echo -c 100 -s 64 \
            -d "$d"
        scenario "fanout 1 -> 1000, max" "$kind" /ws fanout -c 1000 -p 1 \
            -d "$d" --max-loss 100
        scenario "fanout 1 -> 1000, 5000 msg/s" "$kind" /ws \
            fanout -c 1000 -p 1 -r 5000 -d "$d" --max-loss 100
        scenario "connect 8000" "$kind" /ws connect -c 8000
    fi
done
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    for rate in 100 500 1000; do
        scenario_redis "cross-node fanout A -> 500 A + 500 B, $rate msg/s" \
            2 fanout -c 1000 -p 1 -r "$rate" -d "$d" --max-loss 100
    done
    for workers in 1 2; do
        scenario_redis "cross-node fanout A -> 500 A + 500 B, max" \
            "$workers" fanout -c 1000 -p 1 -d "$d" --max-loss 100
    done
else
    echo "run.sh: no redis-server, Redis scenarios skipped" >&2
fi

mkdir -p "$out"
version=$("$WSHUBD" -V 2>&1 | head -n 1)
commit=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)

python3 - "$tmp" "$out" "$version" "$commit" "$threads" "$pin_server" <<'EOF'
import json, os, platform, sys, time

tmp, out, version, commit, threads, pinned = sys.argv[1:7]
cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
host = {"system": " ".join(platform.uname()[0:3:2]), "cpu": cpu,
        "cpus": os.cpu_count()}

runs = []
if not os.path.exists(os.path.join(tmp, "index")):
    sys.exit("run.sh: no scenario ran")
with open(os.path.join(tmp, "index")) as f:
    for i, line in enumerate(f, 1):
        name, workers, rc, args = line.rstrip("\n").split("\t")
        try:
            with open(os.path.join(tmp, "run%d.json" % i)) as r:
                res = json.load(r)
        except (OSError, ValueError):
            res = None
        runs.append({"scenario": name,
                     "workers": int(workers) if workers.isdigit()
                     else workers,
                     "bench_args": args.split(), "exit": int(rc),
                     "result": res})

def us(v):
    if v >= 1e6:
        return "%.2f s" % (v / 1e6)
    if v >= 1e3:
        return "%.2f ms" % (v / 1e3)
    return "%.0f us" % v

rows = []
for r in runs:
    res = r["result"]
    if res is None:
        rows.append([r["scenario"], r["workers"], "-", "no result (exit %d)"
                     % r["exit"], "", "", "", "", "", ""])
        continue
    c = res["connections"]
    conns = "%d/%d" % (c["opened"], c["target"])
    fail = c["failed"] + c["dropped"]
    cpu = "%.0f%%" % res["cpu"]["percent"]
    if res["scenario"] == "echo":
        h = res["rtt_us"]
        rate, loss = "%.0f msg/s" % res["msgs_per_s"], "-"
    elif res["scenario"] == "fanout":
        h = res["latency_us"]
        rate = "%.0f pub/s, %.0f deliv/s" % (res["publish_rate"],
                                             res["delivered_per_s"])
        loss = "%.3f%%" % res["loss_percent"]
    else:
        h = {k: v * 1000 for k, v in c["handshake_ms"].items()}
        rate, loss = "%.0f handshakes/s" % res["handshakes_per_s"], "-"
    rows.append([r["scenario"], r["workers"], conns, rate, us(h["p50"]),
                 us(h["p99"]), us(h["max"]), loss, fail, cpu])

stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
head = ["Scenario", "Workers", "Conns", "Throughput", "p50", "p99", "max",
        "Loss", "Failed", "Bench CPU"]
md = ["# wshub benchmark results", "",
      "Generated by `tests/bench/run.sh` on %s." % stamp, "",
      "- wshub: %s (commit %s), local engine; the cross-node scenarios: "
      "two wshubd of 2 workers on one redis-server, publisher on the "
      "first, subscribers alternating" % (version, commit),
      "- host: %s, %s, %s CPUs" % (host["system"], host["cpu"],
                                   host["cpus"]),
      "- generator: wshub-bench -j %s on the same host; %s" % (threads,
          "server pinned to CPU 0, generator to CPU 1" if pinned else
          "server and generator share the CPUs"), "",
      "Latency: round trip (echo), publish to delivery (fanout), handshake "
      "(connect). Bench CPU: wshub-bench's own CPU time over the measured "
      "part, in % of one core (near 100% x threads: the generator was the "
      "bottleneck). Figures only: nothing here passes or fails.", "",
      "| " + " | ".join(head) + " |",
      "|" + "|".join("---" for _ in head) + "|"]
for row in rows:
    md.append("| " + " | ".join(str(x) for x in row) + " |")
md.append("")

# wshub (1 worker: each peer is one thread too) against the peers
def figure(res):
    if res is None:
        return None
    return {"echo": res.get("msgs_per_s"),
            "fanout": res.get("delivered_per_s"),
            "connect": res.get("handshakes_per_s")}.get(res["scenario"])

units = {"echo": "msg/s", "fanout": "deliveries/s", "connect": "handshakes/s"}
peers = {"ws": "Node's `ws` (tests/bench/ref_ws_server.js)",
         "uws": "uWebSockets through uWebSockets.js, npm package uws-pack "
                "(tests/bench/ref_uws_server.mjs, its own pub/sub for the "
                "fan-out)"}
ref = [r for r in runs if r["workers"] in peers]
if ref:
    md += ["## wshub / reference peers (same run)", "",
           "Each peer is one process (" + "; ".join(peers.values()) +
           ") against wshub with 1 worker, the same scenario and "
           "generator. A ratio over 1: wshub is faster. Fan-out at a fixed "
           "rate compares deliveries/s: a server that cannot keep up "
           "delivers less within the run (see Loss above).", "",
           "| Scenario | Peer | wshub, 1 worker | peer | Ratio |",
           "|---|---|---|---|---|"]
    for r in ref:
        mine = [w for w in runs if w["workers"] == 1
                and w["scenario"] == r["scenario"]]
        a = figure(mine[0]["result"]) if mine else None
        b = figure(r["result"])
        unit = units.get(r["result"]["scenario"], "") if r["result"] else ""
        md.append("| %s | %s | %s | %s | %s |" % (
            r["scenario"], r["workers"],
            "%.0f %s" % (a, unit) if a else "-",
            "%.0f %s" % (b, unit) if b else "-",
            "%.2f" % (a / b) if a and b else "-"))
    md.append("")
with open(os.path.join(out, "RESULTS.md"), "w") as f:
    f.write("\n".join(md))
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump({"generated": stamp, "wshub": version, "commit": commit,
               "host": host, "bench_threads": int(threads),
               "pinned": bool(pinned), "runs": runs},
              f, indent=2)
    f.write("\n")
print("\n".join(md[9:]))
print("wrote %s and %s" % (os.path.join(out, "RESULTS.md"),
                           os.path.join(out, "results.json")),
      file=sys.stderr)
EOF
