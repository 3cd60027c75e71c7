#!/bin/sh
# install-deps.sh -- install what wshub needs to build (and, with --test,
# to run its test suite), by name, from the distribution's packages.
#
#   packaging/install-deps.sh          build dependencies
#   packaging/install-deps.sh --test   build + test dependencies
#   packaging/install-deps.sh --package  build + packaging tools (make deb,
#                                      make rpm, ci-package-test.sh)
#   packaging/install-deps.sh --bench  build + benchmark tools: Node.js
#                                      and npm for the reference peer of
#                                      tests/bench/run.sh, util-linux
#                                      (taskset), strace, valgrind
#
# Debian/Ubuntu (apt-get) and Fedora/RHEL (dnf). Uses sudo when not root.
set -eu

test_deps=no
package_deps=no
bench_deps=no
for arg in "$@"; do
    case "$arg" in
    --test) test_deps=yes ;;
    --package) package_deps=yes ;;
    --bench) bench_deps=yes ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option $arg (use --test, --package or --bench)" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -eq 0 ]; then
    SUDO=
elif command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
else
    echo "install-deps.sh: run as root or install sudo" >&2
    exit 1
fi

if command -v apt-get >/dev/null 2>&1; then
    build="build-essential autoconf automake pkg-config libevent-dev
        libssl-dev libhiredis-dev libjansson-dev libcyaml-dev libyaml-dev
        zlib1g-dev libedit-dev libjwt-dev"
    test="check python3 python3-websockets python3-prometheus-client
        redis-server redis-sentinel valgrind mandoc curl xz-utils chromium
        openssl iproute2"
    pkgs=$build
    [ "$test_deps" = yes ] && pkgs="$pkgs $test"
    # systemd for systemd-analyze verify; python3-websockets and man-db
    # for ci-package-test.sh.
    package="dpkg-dev debhelper lintian fakeroot rpm systemd python3
        python3-websockets man-db"
    [ "$package_deps" = yes ] && pkgs="$pkgs $package"
    # A Node.js that already brings its own npm (NodeSource's nodejs
    # conflicts with Debian's npm package) is used as it is.
    bench="util-linux strace valgrind"
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        bench="nodejs npm $bench"
    [ "$bench_deps" = yes ] && pkgs="$pkgs $bench"
    echo "install-deps.sh: apt-get install $(echo $pkgs)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends $pkgs
elif command -v dnf >/dev/null 2>&1; then
    build="gcc make autoconf automake pkgconf-pkg-config libevent-devel
        openssl-devel hiredis-devel jansson-devel libcyaml-devel libyaml-devel
        zlib-devel libedit-devel libjwt-devel"
    test="check-devel python3 python3-websockets python3-prometheus_client
        redis valgrind mandoc curl xz chromium openssl iproute"
    pkgs=$build
    [ "$test_deps" = yes ] && pkgs="$pkgs $test"
    package="rpm-build systemd-rpm-macros"
    [ "$package_deps" = yes ] && pkgs="$pkgs $package"
    bench="nodejs npm util-linux strace valgrind"
    [ "$bench_deps" = yes ] && pkgs="$pkgs $bench"
    echo "install-deps.sh: dnf install $(echo $pkgs)"
    # shellcheck disable=SC2086
    $SUDO dnf install -y $pkgs
else
    echo "install-deps.sh: no apt-get or dnf here; install by hand:" \
         "libevent, OpenSSL, hiredis, jansson, libcyaml, libyaml, zlib," \
         "libedit, libjwt" \
         "(and check, python3-websockets, redis for the tests)" >&2
    exit 1
fi
