#!/bin/sh
# packaged-conf.sh -- print etc/wshub.yaml as the packages install it.
#
#   sh packaging/packaged-conf.sh etc/wshub.yaml > DESTDIR/etc/wshub/wshub.yaml
#
# etc/wshub.yaml stays the one source of the comments; the packages change
# only what a system service needs: the "wshub" account the packages
# create, a pid file for "wshubd -s" and logrotate (under the unit's
# RuntimeDirectory), and the error log under /var/log/wshub. Each change
# must match exactly once, so an edit of etc/wshub.yaml that breaks one
# fails the package build instead of shipping a half-changed file.
set -eu
src=${1:?usage: packaged-conf.sh etc/wshub.yaml}

out=$(sed -e 's|^user: nobody$|user: wshub|' \
    -e 's|^#pid_file: /run/wshub/wshubd.pid$|pid_file: /run/wshub/wshubd.pid|' \
    -e 's|^error_log: stderr$|error_log: /var/log/wshub/error.log|' "$src")
for line in 'user: wshub' 'pid_file: /run/wshub/wshubd.pid' \
            'error_log: /var/log/wshub/error.log'; do
    if [ "$(printf '%s\n' "$out" | grep -c -x "$line")" -ne 1 ]; then
        echo "packaged-conf.sh: \"$line\" not produced from $src:" \
             "update packaging/packaged-conf.sh" >&2
        exit 1
    fi
done
printf '%s\n' "$out"
