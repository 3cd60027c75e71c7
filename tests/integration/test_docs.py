"""test_docs.py -- the manual pages keep up with the code.

Every key of etc/wshub.yaml, nested keys and commented-out example keys
included, must be documented in wshub.yaml(5); every option and -s signal
in "wshubd -h" in wshubd(8). Keys added without documentation fail here.
"""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import WSHUBD  # noqa: E402

SRCDIR = os.environ.get("WSHUB_SRCDIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))

# "key:" or "- key:", live or commented out as "#key:" or "#  key:" (a
# nested one). Prose comments have exactly one blank after the '#' ("# it:
# close..." is prose). Group 1: the indentation, less the '#', so "#  rps:"
# is nested under "#rate_limit:" and "  #node_id:" under "engine:".
KEY_LINE = re.compile(
    r"^(\s*(?:#(?: {2,})?)?(?:- )?)([a-z][a-z0-9_]*):(?:\s|$)")


def conf_keys(path):
    """Dotted paths of every key in PATH (endpoints.path, engine.redis.host,
    rate_limit.rps...), in file order."""
    keys, stack = [], []          # stack: (indent, name) of the parents
    with open(path) as f:
        for line in f:
            m = KEY_LINE.match(line)
            if not m:
                continue
            indent = len(m.group(1)) - m.group(1).count("#")
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, m.group(2)))
            key = ".".join(name for _, name in stack)
            if key not in keys:
                keys.append(key)
    return keys


def man(name):
    with open(os.path.join(SRCDIR, "man", name)) as f:
        return f.read()


class ConfigKeysDocumentedTest(unittest.TestCase):

    def test_parser_sees_nested_and_commented_keys(self):
        keys = conf_keys(os.path.join(SRCDIR, "etc", "wshub.yaml"))
        for k in ("daemon", "pid_file", "rate_limit.rps", "endpoints.path",
                  "endpoints.module", "hub.api_key", "engine.redis.host",
                  "engine.redis.presence_ttl"):
            self.assertIn(k, keys)
        self.assertNotIn("default", [k.split(".")[-1] for k in keys])

    def test_every_key_is_in_wshub_yaml_5(self):
        page = man("wshub.yaml.5")
        items = set(re.findall(r"^\.It Ic (\S+)", page, re.M))
        sections = set(re.findall(r"^\.Sh (.+)$", page, re.M))
        missing = []
        for key in conf_keys(os.path.join(SRCDIR, "etc", "wshub.yaml")):
            parts = key.split(".")
            # Nested keys are listed under their parent's section (HUB) or
            # item, by their full or a shorter dotted name (redis.host
            # under ENGINE, client_ids under HUB).
            # A mapping with its own section (HUB) or dotted items
            # (rate_limit.rps) is documented by them.
            named = (any(".".join(parts[i:]) in items
                         for i in range(len(parts)))
                     or key.upper().replace("_", " ") in sections
                     or any(i.startswith(key + ".") for i in items))
            top = parts[0]
            placed = (len(parts) == 1 or top in items
                      or any(i.startswith(top + ".") for i in items)
                      or top.upper().replace("_", " ") in sections)
            if not (named and placed):
                missing.append(key)
        self.assertEqual(missing, [], "keys of etc/wshub.yaml missing from "
                         "man/wshub.yaml.5 (add an .It Ic entry)")


def schema_keys(path):
    """Key names of the config loader's cyaml schema tables in PATH: the
    CONF_*("name", ...) / CONF_HUB(name) and CYAML_FIELD_*("name", ...)
    entries ("key" is the parameter name inside the macro definitions)."""
    with open(path) as f:
        src = f.read()
    names = re.findall(
        r'^\s+(?:CONF_[A-Z_]+|CYAML_FIELD_[A-Z_]+)\("?([a-z][a-z0-9_]*)"?[,)]',
        src, re.M)
    return sorted(set(names) - {"key"})


class SchemaKeysDocumentedTest(unittest.TestCase):
    """Also keys the loader accepts but etc/wshub.yaml does not show."""

    def test_every_schema_key_is_in_wshub_yaml_5(self):
        keys = schema_keys(os.path.join(SRCDIR, "src", "core", "conf.c"))
        for k in ("daemon", "listen", "rps", "client_ids", "presence_ttl"):
            self.assertIn(k, keys)
        page = man("wshub.yaml.5")
        items = re.findall(r"^\.It Ic (\S+)", page, re.M)
        leaves = {i.split(".")[-1] for i in items}
        sections = set(re.findall(r"^\.Sh (.+)$", page, re.M))
        missing = [k for k in keys if k not in leaves
                   and k.upper().replace("_", " ") not in sections
                   and not any(i.startswith(k + ".") for i in items)]
        self.assertEqual(missing, [], "keys of src/core/conf.c missing from "
                         "man/wshub.yaml.5")

    def test_every_schema_key_is_in_etc_wshub_yaml(self):
        # The house rule: a commented key in etc/wshub.yaml for each key.
        keys = schema_keys(os.path.join(SRCDIR, "src", "core", "conf.c"))
        shown = {k.split(".")[-1] for k in
                 conf_keys(os.path.join(SRCDIR, "etc", "wshub.yaml"))}
        self.assertEqual([k for k in keys if k not in shown], [],
                         "keys of src/core/conf.c missing from etc/wshub.yaml")


class WshubdOptionsDocumentedTest(unittest.TestCase):

    def test_every_option_and_signal_is_in_wshubd_8(self):
        usage = subprocess.run([WSHUBD, "-h"], capture_output=True,
                               text=True, timeout=10, check=True).stdout
        page = man("wshubd.8")
        options = re.findall(r"^\s+-(\w)\b", usage, re.M)
        self.assertGreaterEqual(len(options), 5, usage)
        for opt in options:
            self.assertRegex(page, r"(?m)^\.It Fl %s\b" % opt,
                             "wshubd -%s is not in man/wshubd.8" % opt)
        # "  -s signal  send a signal to the running master: reload, quit
        #              (graceful stop), stop (fast stop), reopen (log files)"
        text = re.search(r"-s signal .*?: (.*?)\n  -", usage, re.S).group(1)
        names = [item.split()[0]
                 for item in " ".join(text.split()).split(", ")]
        self.assertGreaterEqual(len(names), 4, text)
        for name in names:
            self.assertRegex(page, r"(?m)^\.It Cm %s$" % name,
                             "wshubd -s %s is not in man/wshubd.8" % name)


class ToolOptionsDocumentedTest(unittest.TestCase):
    """Every -x and --name in a tool's --help is an Fl in its page."""

    def check(self, binary, page_name):
        out = subprocess.run([binary, "--help"], capture_output=True,
                             text=True, timeout=10)
        usage = out.stdout + out.stderr
        page = man(page_name)
        opts = set()
        for line in usage.splitlines():
            if line.lstrip().startswith("-"):       # option lines only
                opts.update(re.findall(r"(?:^|[\s,\[])(--?[A-Za-z][\w-]*)",
                                       line))
        self.assertGreaterEqual(len(opts), 5, usage)
        for opt in sorted(opts):
            name = opt.lstrip("-")
            # mdoc writes --name as "Fl -name" or "Fl Fl name".
            pat = (r"Fl %s\b" % re.escape(name) if not opt.startswith("--")
                   else r"Fl (?:-|Fl )%s\b" % re.escape(name))
            self.assertRegex(page, pat, "%s %s is not in man/%s" % (
                os.path.basename(binary), opt, page_name))

    def test_wshub_cli_1(self):
        self.check(os.environ["WSHUB_CLI"], "wshub-cli.1")

    def test_wshub_bench_1(self):
        self.check(os.environ["WSHUB_BENCH"], "wshub-bench.1")


if __name__ == "__main__":
    wshub_harness.main()
