#!/bin/sh
# ci-package-test.sh -- packaging smoke test, run by .ci/run after the test
# suite: build the .deb (and the .rpm, not installed), install the .deb,
# run the packaged wshubd the way the systemd unit starts it (CI has no
# systemd), talk to it, reload it, stop it, purge the package and check
# nothing is left but what should be.
# Needs root (apt-get, starting wshubd as root so that it drops to the
# wshub account). Everything it installs or starts is undone on failure.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    exec sudo "$0" "$@"
fi
started=$(date +%s)

conf=/etc/wshub/wshub.yaml
unit=packaging/systemd/wshub.service
master=
installed=no        # only what this script installed is purged

say() { echo "ci-package-test: $*"; }
fail() { say "FAIL: $*" >&2; exit 1; }

cleanup() {
    rc=$?
    trap - EXIT
    if [ -n "$master" ] && kill -0 "$master" 2>/dev/null; then
        kill -TERM "$master" 2>/dev/null || true
        wait "$master" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f /var/log/wshub/error.log ]; then
        tail -n 30 /var/log/wshub/error.log >&2
    fi
    if [ "$installed" = yes ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q wshub >/dev/null \
            || true
        rm -rf /run/wshub
    fi
    say "done in $(( $(date +%s) - started ))s, exit $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if dpkg-query -W -f '${Status}' wshub 2>/dev/null | grep -q installed; then
    fail "wshub is already installed here: this test would purge it"
fi

packaging/install-deps.sh --package
[ -f Makefile ] || { autoreconf -fi && ./configure; }
rm -f wshub_*.deb
make deb
lintian --fail-on error,warning wshub_*.deb
# The rpm spec builds too (Debian's rpmbuild cannot see the dpkg-installed
# build dependencies, hence --nodeps) and has the same layout.
rm -f wshub-*.rpm
make rpm RPMBUILD_FLAGS=--nodeps
for f in /usr/sbin/wshubd /etc/wshub/wshub.yaml /etc/logrotate.d/wshub \
         /usr/lib/systemd/system/wshub.service /usr/lib/sysusers.d/wshub.conf \
         /usr/share/man/man8/wshubd.8 /usr/share/wshub/wshub.js \
         /usr/share/wshub/wshub.d.ts; do
    rpm -qlp wshub-*.rpm 2>/dev/null | grep -qx "$f" || fail "$f not in the rpm"
done
files=$(dpkg-deb -c wshub_*.deb | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }')
for f in /usr/share/wshub/wshub.js /usr/share/wshub/wshub.d.ts; do
    printf '%s\n' "$files" | grep -qx "$f" || fail "$f not in the deb"
done

installed=yes
DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./wshub_*.deb
/usr/sbin/wshubd -t -c "$conf"
getent passwd wshub >/dev/null || fail "postinst did not create user wshub"
systemd-analyze verify /usr/lib/systemd/system/wshub.service
man -w wshubd >/dev/null && man -w wshub.yaml >/dev/null

# As systemd would: RuntimeDirectory=, the bounding set of
# CapabilityBoundingSet=, NoNewPrivileges=, then ExecStart= itself.
install -d -m 0755 /run/wshub
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr 'A-Z ' 'a-z\n' \
       | sed 's/^cap_/+/' | paste -s -d, -)
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
# shellcheck disable=SC2086
setpriv --bounding-set="-all,$caps" --no-new-privs $exec_start &
master=$!

port=$(sed -n '/^listen:/,/^[^ ]/s/^ *- *"*[0-9.]*:\([0-9]*\)"*$/\1/p' "$conf" \
       | head -n 1)
[ -n "$port" ] || fail "no listen port in $conf"

echo_once() {
    /usr/bin/python3 - "$port" "$1" <<'PY'
import asyncio, sys
import websockets

async def main(port, text):
    for _ in range(100):   # up to ~10 s for the workers to listen
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/echo",
                                          open_timeout=5) as ws:
                await ws.send(text)
                got = await asyncio.wait_for(ws.recv(), 5)
                if got != text:
                    sys.exit(f"echo: sent {text!r}, got {got!r}")
                return
        except OSError:
            await asyncio.sleep(0.1)
    sys.exit(f"nothing answers on 127.0.0.1:{port}")

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
PY
}

# wait_until SHELL-CONDITION: at most ~10 s, while wshubd runs.
wait_until() {
    i=0
    until eval "$1"; do
        i=$((i + 1))
        [ "$i" -le 100 ] || fail "timed out waiting for: $1"
        kill -0 "$master" 2>/dev/null || fail "wshubd exited"
        sleep 0.1
    done
}

echo_once "before reload"
[ "$(cat /run/wshub/wshubd.pid)" = "$master" ] || fail "pid file is wrong"
users=$(ps -o user= --ppid "$master" | sort -u | paste -s -d' ' -)
[ "$users" = wshub ] || fail "workers run as \"$users\", not wshub"
say "master $master (root), workers as $users, echo on port $port"

/usr/sbin/wshubd -s reload -c "$conf"
wait_until 'grep -q "reload done" /var/log/wshub/error.log'
echo_once "after reload"

# What logrotate's postrotate does.
mv /var/log/wshub/error.log /var/log/wshub/error.log.1
/usr/sbin/wshubd -s reopen -c "$conf"
wait_until '[ -f /var/log/wshub/error.log ]'

/usr/sbin/wshubd -s stop -c "$conf"
wait "$master" || fail "wshubd exited with status $?"
master=
[ ! -e /run/wshub/wshubd.pid ] || fail "pid file left after stop"
rm -rf /run/wshub                   # systemd removes RuntimeDirectory=

DEBIAN_FRONTEND=noninteractive apt-get purge -y -q wshub
installed=no
for f in $files /etc/wshub /var/log/wshub; do
    [ ! -e "$f" ] || fail "$f left after purge"
done
! getent passwd wshub >/dev/null || fail "user wshub left after purge"
! getent group wshub >/dev/null || fail "group wshub left after purge"
say "ok"
