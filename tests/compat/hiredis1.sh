#!/bin/bash
# hiredis1.sh -- build wshub against hiredis 1.x instead of the system's
# hiredis (0.14 on Debian 12) and run the Redis engine's tests with it.
#
# The 1.x sources come from HIREDIS_SRC (a directory with hiredis.c,
# async.c, ... and adapters/), or else from the npm package
# redis-fast-driver, which bundles hiredis 1.2.0 in deps/hiredis
# (fetched with `npm pack`). hiredis is compiled into a static library;
# the working tree (tracked and untracked files, not ignored ones) is
# copied, configured with HIREDIS_CFLAGS/HIREDIS_LIBS pointing at it
# and --enable-werror, built, and checked with the given tests.
#
# usage: tests/compat/hiredis1.sh [-k] [TEST...]
#   TEST  make check TESTS=... (default: the Redis integration tests;
#         "none" to build only)
#   -k    keep the build directory (printed at the end)

set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
keep=
if [ "${1:-}" = "-k" ]; then
    keep=1
    shift
fi
tests=${*:-tests/integration/test_redis.py \
tests/integration/test_redis_faults.py tests/integration/test_redis_sentinel.py \
tests/integration/test_redis_tls.py tests/integration/test_redis_shards.py \
tests/integration/test_redis_cluster.py \
tests/integration/test_redis_cluster_engine.py}

work=$(mktemp -d "${TMPDIR:-/tmp}/wshub-hiredis1.XXXXXX")
if [ -z "$keep" ]; then
    trap 'rm -rf "$work"' EXIT
fi

src=${HIREDIS_SRC:-}
if [ -z "$src" ]; then
    command -v npm >/dev/null || { echo "hiredis1.sh: needs npm or HIREDIS_SRC" >&2; exit 1; }
    (cd "$work" && npm pack --silent redis-fast-driver@2.2.6 >/dev/null)
    tar xzf "$work"/redis-fast-driver-2.2.6.tgz -C "$work"
    src=$work/package/deps/hiredis
fi
major=$(sed -n 's/^#define HIREDIS_MAJOR \([0-9]*\).*/\1/p' "$src/hiredis.h")
minor=$(sed -n 's/^#define HIREDIS_MINOR \([0-9]*\).*/\1/p' "$src/hiredis.h")
if [ "${major:-0}" -lt 1 ]; then
    echo "hiredis1.sh: $src is hiredis $major.$minor, not 1.x" >&2
    exit 1
fi
echo "hiredis1.sh: hiredis $major.$minor from $src"

# libhiredis.a, and an include directory where <hiredis/...> resolves.
mkdir -p "$work/hiredis-build" "$work/include"
for f in alloc async hiredis net read sds sockcompat; do
    cc -std=c99 -O2 -fPIC -D_GNU_SOURCE -c "$src/$f.c" \
       -o "$work/hiredis-build/$f.o"
done
ar rcs "$work/hiredis-build/libhiredis.a" "$work"/hiredis-build/*.o
# and libhiredis_ssl.a, for engine.redis.tls
cc -std=c99 -O2 -fPIC -D_GNU_SOURCE -c "$src/ssl.c" \
   -o "$work/hiredis-build/ssl.o"
ar rcs "$work/hiredis-build/libhiredis_ssl.a" "$work/hiredis-build/ssl.o"
ln -s "$src" "$work/include/hiredis"

# A copy of the working tree, configured against it.
mkdir "$work/wshub"
(cd "$top" && git ls-files -co --exclude-standard -z \
    | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$work/wshub"
cd "$work/wshub"
autoreconf -fi >/dev/null 2>&1
./configure --enable-werror --with-redis-tls \
    HIREDIS_CFLAGS="-I$work/include" \
    HIREDIS_LIBS="$work/hiredis-build/libhiredis.a" \
    HIREDIS_SSL_CFLAGS="-I$work/include" \
    HIREDIS_SSL_LIBS="$work/hiredis-build/libhiredis_ssl.a -lssl -lcrypto" \
    >/dev/null
make -j2 >/dev/null
# Only 1.x has it, and only the HIREDIS_MAJOR >= 1 branch calls it.
if ! nm wshubd | grep -q ' T redisAsyncConnectWithOptions$'; then
    echo "hiredis1.sh: wshubd is not linked with hiredis $major.$minor" >&2
    exit 1
fi
if ! nm wshubd | grep -q ' T redisInitiateSSL$'; then
    echo "hiredis1.sh: wshubd is not linked with hiredis_ssl" >&2
    exit 1
fi
echo "hiredis1.sh: built with hiredis $major.$minor and hiredis_ssl"
if [ "$tests" != "none" ]; then
    # shellcheck disable=SC2086
    make check TESTS="$tests"
fi
if [ -n "$keep" ]; then
    echo "hiredis1.sh: kept $work"
fi
