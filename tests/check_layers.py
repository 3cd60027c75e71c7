#!/usr/bin/python3
# check_layers.py -- no source file includes a header of a layer above it.
#
# The layers of src/, lowest first (HACKING.md, "Layers"):
#
#   core < ws < net < engine < process < tools, wshubd.c
#
# A file may include the headers of its own layer and of the layers
# below, and include/wshub.h (the public module API, which includes no
# other header of ours). A module (modules/NAME/) may include only
# wshub.h, the headers of its own directory and system headers: the
# module API is its only door into the server. The build enforces that
# too (modules/ is compiled with -Iinclude -Imodules only; see
# tests/check_module_door.sh); this script also catches "../../src/..."
# and says which layer a header belongs to.
#
# Every violation is printed as FILE:LINE: includes HEADER (why), and
# the exit status is 1 when there is one. Run by "make check" and "make
# check-layers", with the source tree as argument (default: the tree
# this script is in).
import os
import re
import sys

LAYERS = ["core", "ws", "net", "engine", "process", "tools"]
TOP = len(LAYERS) - 1           # src/tools and src/wshubd.c
PUBLIC = "include/wshub.h"

# Exceptions, each (FILE, HEADER) on a line of its own with a comment
# saying why and until when; an entry that no longer matches is an
# error, so the list only shrinks. The last ones, for the modules'
# configuration, went with issue 20 item 1: none is left.
ALLOWED = set()

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def sources(root, top):
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".c", ".h")):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, root).replace(os.sep, "/")


def resolve(root, rel, header):
    """The tree path of HEADER as the compiler finds it from REL (its
    own directory first, then -Iinclude, -Isrc, -Imodules), or None
    for a header of the build (config.h) or one not in the tree."""
    for base in (os.path.dirname(rel), "include", "src", "modules"):
        path = os.path.normpath(os.path.join(base, header))
        if os.path.isfile(os.path.join(root, path)):
            return path.replace(os.sep, "/")
    return None


def layer_of(path):
    """(layer index, name) of a path under src/, or None."""
    if path == PUBLIC:
        return (-1, "public")
    parts = path.split("/")
    if parts[0] != "src":
        return None
    if len(parts) == 2:
        return (TOP, "top")
    if parts[1] in LAYERS:
        return LAYERS.index(parts[1]), parts[1]
    return None


def judge(rel, target, header):
    """Why REL may not include HEADER (found at TARGET), or None."""
    if header == "config.h":    # made by configure: for src/ only
        return None if rel.startswith("src/") else "the build's config.h"
    if target is None:
        return "not a header of src/ or of its own module"
    if target == PUBLIC and rel != PUBLIC:
        return None
    if rel.startswith("modules/"):
        own = "/".join(rel.split("/")[:2]) + "/"
        if target.startswith(own):
            return None
        where = layer_of(target)
        what = ("layer %s" % where[1]) if where else "another module"
        return "%s; a module includes only wshub.h and its own headers" % what
    mine, theirs = layer_of(rel), layer_of(target)
    if theirs is None:
        return "a module's header, from src/"
    if mine[0] == -1:
        return "wshub.h includes no header of ours"
    if theirs[0] > mine[0]:
        return "layer %s above %s" % (theirs[1], mine[1])
    return None


def main(argv):
    root = argv[1] if len(argv) > 1 else os.environ.get(
        "WSHUB_SRCDIR", os.path.join(os.path.dirname(__file__), ".."))
    used = set()
    bad = 0

    for top in ("include", "src", "modules"):
        for rel in sources(root, top):
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                lines = f.read().splitlines()
            for n, line in enumerate(lines, 1):
                m = INCLUDE.match(line)
                if m is None:
                    continue
                header = m.group(1)
                why = judge(rel, resolve(root, rel, header), header)
                if why is None:
                    continue
                if (rel, header) in ALLOWED:
                    used.add((rel, header))
                    continue
                print("%s:%d: includes %s (%s)" % (rel, n, header, why))
                bad += 1
    for rel, header in sorted(ALLOWED - used):
        print("%s: allowed to include %s, which it no longer does: remove "
              "the entry from tests/check_layers.py" % (rel, header))
        bad += 1
    if bad:
        print("%d layering violation%s (HACKING.md, \"Layers\")"
              % (bad, "" if bad == 1 else "s"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
