#!/bin/sh
# check_js.sh -- the unit tests of clients/js/wshub.js, in Node's test
# runner (make check). They drive the client through a fake WebSocket
# and mock timers, so they need node 20.4 or later (node:test's
# mock.timers); without such a node they are skipped (77), as Chromium
# tests are without Chromium: the client has no dependency to install.
srcdir=${srcdir:-.}
NODE=${NODE:-node}
if ! command -v "$NODE" > /dev/null 2>&1; then
    echo "SKIP: no node: the tests of clients/js/wshub.js need Node.js"
    exit 77
fi
if ! "$NODE" -e 'process.exit(require("node:test").mock.timers ? 0 : 1)' \
    2> /dev/null
then
    echo "SKIP: $("$NODE" --version) has no node:test mock timers (20.4+)"
    exit 77
fi
exec "$NODE" --test "$srcdir"/clients/js/test/*.test.mjs
