#!/bin/sh
# replay.sh -- replay each checked-in fuzz corpus once (make check).
# Runs every file of tests/fuzz/corpus/NAME through the harness
# fuzz_NAME.c linked with replay.c instead of libFuzzer.
set -e
srcdir=${srcdir:-.}
for name in http frame conf hub deflate; do
    ./tests/fuzz/replay_$name "$srcdir/tests/fuzz/corpus/$name"
done
