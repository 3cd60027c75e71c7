"""test_docs.py -- the manual pages keep up with the code.

Every key of etc/wshub.yaml, nested keys and commented-out example keys
included, must be documented in wshub.yaml(5); every option and -s signal
in "wshubd -h" in wshubd(8). Keys added without documentation fail here.

Statements that went stale once (issue 24) are checked against their
source too: the modules of "wshubd -V", the built-in default endpoints,
every error string of the hub, the default configuration file of
"wshubd -h"; and every page must pass "mandoc -Tlint" with no quoting
macro nested in another.
"""

import glob
import html
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


def section(page, name):
    """The mdoc source of section NAME of PAGE (the .Sh line excluded)."""
    m = re.search(r"(?ms)^\.Sh %s\n(.*?)(?=^\.Sh |\Z)" % re.escape(name),
                  page)
    if m is None:
        raise AssertionError("no section %s" % name)
    return m.group(1)


def mandoc(args, name):
    """mandoc ARGS man/NAME: (stdout, stderr)."""
    out = subprocess.run(["mandoc"] + args + [
        os.path.join(SRCDIR, "man", name)], capture_output=True, text=True,
        timeout=30)
    return out.stdout, out.stderr


def wshubd_output(option):
    return subprocess.run([WSHUBD, option], capture_output=True, text=True,
                          timeout=10, check=True).stdout


PAGES = ("wshubd.8", "wshub.yaml.5", "wshub-protocol.7", "wshub-cli.1",
         "wshub-bench.1")

NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "eight": 8, "nine": 9, "ten": 10}


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
    entries ("key" is the parameter name inside the macro definitions);
    in a module, the fields and section keys it declares (wshub.h):
    WSH_CONF_FIELD(struct, name, ...), .name = "name", X_FIELD(name, ...)
    and the section's key."""
    with open(path) as f:
        src = f.read()
    names = re.findall(
        r'^\s+(?:CONF_[A-Z_]+|CYAML_FIELD_[A-Z_]+|[A-Z]+_FIELD)'
        r'\("?([a-z][a-z0-9_]*)"?[,)]', src, re.M)
    names += re.findall(r'WSH_CONF_FIELD\(\s*\w+,\s*([a-z][a-z0-9_]*),',
                        src)
    names += re.findall(r'\.name = "([a-z][a-z0-9_]*)",\s*\.type = WSH_CONF_',
                        src)
    names += re.findall(r'wsh_conf_section_t \w+ = \{\s*"([a-z][a-z0-9_]*)"',
                        src)
    return sorted(set(names) - {"key", "name"})


def all_schema_keys():
    """The keys of the core's loader (conf.c, and conf_redis.c for
    engine.redis) and of every module's section."""
    keys = set()
    for path in (glob.glob(os.path.join(SRCDIR, "src", "core", "conf*.c"))
                 + glob.glob(os.path.join(SRCDIR, "modules", "*", "*.c"))):
        keys |= set(schema_keys(path))
    return sorted(keys)


class SchemaKeysDocumentedTest(unittest.TestCase):
    """Also keys the loader accepts but etc/wshub.yaml does not show."""

    def test_every_schema_key_is_in_wshub_yaml_5(self):
        keys = all_schema_keys()
        for k in ("daemon", "listen", "rps", "client_ids", "presence_ttl",
                  "engine_required", "require_exp"):
            self.assertIn(k, keys)
        page = man("wshub.yaml.5")
        items = re.findall(r"^\.It Ic (\S+)", page, re.M)
        leaves = {i.split(".")[-1] for i in items}
        sections = set(re.findall(r"^\.Sh (.+)$", page, re.M))
        missing = [k for k in keys if k not in leaves
                   and k.upper().replace("_", " ") not in sections
                   and not any(i.startswith(k + ".") for i in items)]
        self.assertEqual(missing, [], "keys of the loader or a module missing "
                         "from man/wshub.yaml.5")

    def test_every_schema_key_is_in_etc_wshub_yaml(self):
        # The house rule: a commented key in etc/wshub.yaml for each key.
        keys = all_schema_keys()
        shown = {k.split(".")[-1] for k in
                 conf_keys(os.path.join(SRCDIR, "etc", "wshub.yaml"))}
        self.assertEqual([k for k in keys if k not in shown], [],
                         "keys of the loader or a module missing "
                         "from etc/wshub.yaml")


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


def version_modules():
    """The modules "wshubd -V" lists."""
    out = wshubd_output("-V")
    m = re.search(r"^modules: (.*)$", out, re.M)
    if m is None:
        raise AssertionError("no modules line in wshubd -V:\n" + out)
    return [name.strip() for name in m.group(1).split(",")]


class ModulesDocumentedTest(unittest.TestCase):
    """The modules the pages name are those of "wshubd -V"."""

    def test_wshubd_8_lists_the_modules_of_V(self):
        modules = version_modules()
        self.assertIn("echo", modules)
        desc = section(man("wshubd.8"), "DESCRIPTION")
        # ".Nm Fl V / lists the modules compiled in; this build has:",
        # then a list with an ".It Cm NAME" per module.
        m = re.search(r"(?ms)lists the modules compiled in[^\n]*\n"
                      r"\.Bl [^\n]*\n(.*?)^\.El", desc)
        self.assertIsNotNone(m, "wshubd(8) DESCRIPTION has no list of the "
                             "modules after \"lists the modules compiled "
                             "in\"")
        listed = re.findall(r"^\.It Cm (\S+)", m.group(1), re.M)
        self.assertEqual(sorted(listed), sorted(modules),
                         "wshubd(8) DESCRIPTION lists other modules than "
                         "wshubd -V")
        self.assertNotRegex(desc, r"This build has (one|two|three|four|five)"
                            r" module", "a count of modules in wshubd(8)")

    def test_wshub_yaml_5_names_the_endpoint_modules(self):
        # auth_* modules are not endpoints' modules (conf.c refuses them
        # there: "auth: jwt" runs them).
        modules = [m for m in version_modules() if not m.startswith("auth_")]
        page = man("wshub.yaml.5")
        m = re.search(r"(?ms)^\.It Ic module Ar string\n(.*?)^\.It ", page)
        self.assertIsNotNone(m, "no endpoints' module item in wshub.yaml(5)")
        named = re.findall(r"^\.Cm (\w+)", m.group(1), re.M)
        self.assertEqual(sorted(set(named)), sorted(modules),
                         "wshub.yaml(5) endpoints' module names other "
                         "modules than wshubd -V")


def builtin_endpoints():
    """(path, module) of the default endpoints: the default_endpoint each
    module declares (modules/*/*.c), in the registry's order (wshubd
    -V)."""
    order = version_modules()
    found = {}
    for path in glob.glob(os.path.join(SRCDIR, "modules", "*", "*.c")):
        with open(path) as f:
            src = f.read()
        for var, ep in re.findall(r'wsh_default_endpoint_t (\w+) = '
                                  r'\{\s*"(/[^"]*)"', src):
            m = re.search(r'(?s)\.name = "(\w+)",[^}]*'
                          r'\.default_endpoint = &%s,' % var, src)
            if m is None:
                raise AssertionError("%s: %s is no module's" % (path, var))
            found[m.group(1)] = ep
    if not found:
        raise AssertionError("no module declares a default endpoint")
    return [(found[m], m) for m in order if m in found]


def shipped_endpoints():
    """(path, module) of the endpoints of etc/wshub.yaml."""
    eps, inside = [], False
    with open(os.path.join(SRCDIR, "etc", "wshub.yaml")) as f:
        for line in f:
            if re.match(r"endpoints:\s*$", line):
                inside = True
            elif inside and re.match(r"\S", line):      # the next key
                break
            elif inside:
                m = re.match(r"\s+- path:\s*(\S+)", line)
                if m:
                    eps.append([m.group(1), None])
                m = re.match(r"\s+module:\s*(\w+)", line)
                if m and eps:
                    eps[-1][1] = m.group(1)
    return [tuple(e) for e in eps]


class DefaultEndpointsDocumentedTest(unittest.TestCase):
    """The default endpoints the pages state are the built-in ones."""

    def test_shipped_file_has_the_builtin_endpoints(self):
        builtin = builtin_endpoints()
        self.assertGreaterEqual(len(builtin), 2, builtin)
        self.assertEqual(shipped_endpoints(), builtin,
                         "etc/wshub.yaml's endpoints are not the built-in "
                         "defaults of src/core/conf.c")

    def test_wshub_yaml_5_states_the_defaults(self):
        builtin = builtin_endpoints()
        text = section(man("wshub.yaml.5"), "ENDPOINTS")
        # ".Pp / Default: five endpoints: / .Pa /echo , ... / An / .Ic
        # endpoints / list replaces them whole."
        m = re.search(r"(?ms)^Default: (\w+) endpoints?:\n(.*?)^An\n"
                      r"\.Ic endpoints\n", text)
        self.assertIsNotNone(m, "no \"Default: N endpoints:\" paragraph in "
                             "wshub.yaml(5) ENDPOINTS")
        self.assertEqual(NUMBERS.get(m.group(1)), len(builtin),
                         "wshub.yaml(5) says \"Default: %s endpoints\"; "
                         "src/core/conf.c has %d" % (m.group(1),
                                                     len(builtin)))
        paths = re.findall(r"^\.Pa (/\S*)", m.group(2), re.M)
        self.assertEqual(paths, [p for p, _ in builtin])
        for path, module in builtin:
            self.assertRegex(m.group(2), r"(?s)\.Pa %s\b.*?\.Cm %s\b" % (
                re.escape(path), module), "%s served by %s" % (path, module))

    def test_wshubd_8_states_the_defaults(self):
        desc = section(man("wshubd.8"), "DESCRIPTION")
        m = re.search(r"(?ms)^The default configuration serves\n(.*?)^\.Pp",
                      desc)
        self.assertIsNotNone(m, "no \"The default configuration serves\" "
                             "paragraph in wshubd(8) DESCRIPTION")
        paths = re.findall(r"^\.Pa (/\S*)", m.group(1), re.M)
        self.assertEqual(sorted(paths),
                         sorted(p for p, _ in builtin_endpoints()),
                         "wshubd(8) DESCRIPTION: other default endpoints")


def c_args(src, start):
    """The arguments of the C call whose '(' is at START, as source text,
    split at top-level commas."""
    depth, args, cur, i = 0, [], "", start
    while i < len(src):
        ch = src[i]
        if ch == '"':
            m = re.compile(r'"(?:[^"\\]|\\.)*"').match(src, i)
            cur += m.group(0)
            i = m.end()
            continue
        if ch == "(":
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(cur.strip())
                return args
        elif ch == "," and depth == 1:
            args.append(cur.strip())
            cur = ""
            i += 1
            continue
        cur += ch
        i += 1
    raise AssertionError("unbalanced call at %d" % start)


def c_string(arg):
    """The string literal(s) of ARG, joined as C joins adjacent ones;
    None when it holds none. '"a" "b"' and 'x ? y : "b"' work."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', arg)
    if not parts:
        return None
    return re.sub(r"\\(.)", r"\1", "".join(parts))


def hub_errors():
    """The error strings modules/hub/hub.c and api.c send: {string: set
    of whether "request" is set} for WebSocket errors, and the set of
    the publish API's (HTTP) error strings."""
    src = ""
    for name in ("hub.c", "api.c"):
        with open(os.path.join(SRCDIR, "modules", "hub", name)) as f:
            src += f.read()
    ws, api = {}, set()
    for m in re.finditer(r"\b(hub_error|hub_api_error|json_pack)\s*\(", src):
        args = c_args(src, m.end() - 1)
        if m.group(1) == "hub_error":
            error = c_string(args[1])
            if error is not None:       # not the definition
                ws.setdefault(error, set()).add(args[2] != "NULL")
        elif m.group(1) == "hub_api_error":
            error = c_string(args[2])
            if error is not None:
                api.add(error)
        else:
            # {"error": "..."} objects: a literal after the key "error"
            # (not the "type" "error" of a WebSocket error message).
            for k in range(1, len(args) - 1):
                if args[k] == '"error"' and c_string(args[k + 1]) not in (
                        None, "error") and args[k + 1].startswith('"'):
                    error = c_string(args[k + 1])
                    before = src[:m.start()]
                    stmt = before[max(before.rfind(";"),
                                      before.rfind("{")):]
                    if "hub_http_reply(" in stmt \
                            or "hub_http_reply_with(" in stmt:
                        api.add(error)
                    else:
                        ws.setdefault(error, set()).add('"request"' in args)
    return ws, api


def mdoc_text(src):
    """Roughly the words of an mdoc fragment: macro names dropped."""
    words = []
    for line in src.splitlines():
        if line.startswith("."):
            line = re.sub(r"(?:^\.|\s)[A-Z][a-z][a-z]?\b", " ", line)
        words.append(line)
    return " ".join(" ".join(words).split())


def html_sections(name):
    """{section name: its text} of man/NAME as mandoc renders it."""
    out, _ = mandoc(["-Thtml"], name)
    parts = re.split(r'(?s)<h1 class="Sh" id="[^"]*">(.*?)</h1>', out)
    sections = {}
    for title, body in zip(parts[1::2], parts[2::2]):
        title = " ".join(re.sub(r"<[^>]+>", "", title).split())
        body = re.sub(r"</?(?:p|div|dt|dd|li|td|tr|th|table|dl|ul|ol|pre|br)"
                      r"\b[^>]*>", " ", body)
        body = html.unescape(re.sub(r"<[^>]+>", "", body))
        sections[html.unescape(title)] = " ".join(body.split())
    return sections


class HubErrorsDocumentedTest(unittest.TestCase):
    """Every error string modules/hub/hub.c can send is in
    wshub-protocol(7): the WebSocket ones in the ERRORS table, with
    whether "request" is there, the publish API's among its answers."""

    def test_extraction(self):
        ws, api = hub_errors()
        for e in ("Invalid JSON", "Server error", "User not found",
                  "Not published: the engine is unavailable, retry"):
            self.assertIn(e, ws)
        self.assertEqual(ws["Invalid JSON"], {False})
        self.assertEqual(ws["Not in room"], {True})
        self.assertEqual(ws["Server error"], {False, True})
        for e in ("missing or wrong API key", "empty body", "User not found",
                  "give \"room\", \"to\" or \"broadcast\": true",
                  "not published: the engine is unavailable; retry (with "
                  "the same Idempotency-Key)"):
            self.assertIn(e, api)
        self.assertGreaterEqual(len(ws), 15, ws)
        self.assertGreaterEqual(len(api), 10, api)

    def table(self):
        """{error: text of its cause} of the ERRORS table."""
        text = section(man("wshub-protocol.7"), "ERRORS AND CLOSE CODES")
        body = re.search(r"(?ms)^\.Bl -column[^\n]*\n(.*?)^\.El", text)
        self.assertIsNotNone(body, "no ERRORS table in wshub-protocol(7)")
        rows = re.split(r"(?m)^\.It (.*?) Ta\n", body.group(1))
        return {k: mdoc_text(v) for k, v in zip(rows[1::2], rows[2::2])}

    def test_errors_table(self):
        ws, _ = hub_errors()
        table = self.table()
        self.assertEqual(sorted(set(ws) - set(table)), [],
                         "error strings of modules/hub/hub.c missing from "
                         "the ERRORS table of wshub-protocol(7)")
        self.assertEqual(sorted(set(table) - set(ws)), [],
                         "ERRORS of wshub-protocol(7) the hub never sends")

    def test_errors_table_says_where_request_is_absent(self):
        ws, _ = hub_errors()
        table = self.table()
        for error, request in sorted(ws.items()):
            cause = table.get(error, "")
            if request == {False}:
                self.assertIn("No request", cause, "%r is sent without "
                              "\"request\": the table must say so" % error)
            elif request == {False, True}:
                self.assertIn("absent", cause, "%r is sent with and without "
                              "\"request\": the table must say when" % error)
            else:
                self.assertNotIn("No request", cause, error)

    def test_api_errors_in_publishing_from_a_backend(self):
        _, api = hub_errors()
        text = html_sections("wshub-protocol.7")["PUBLISHING FROM A BACKEND"]
        self.assertEqual(sorted(e for e in api if e not in text), [],
                         "publish API errors of modules/hub/hub.c missing "
                         "from PUBLISHING FROM A BACKEND in "
                         "wshub-protocol(7)")


class ConfigPathDocumentedTest(unittest.TestCase):
    """The default configuration file the pages name is that of
    "wshubd -h"."""

    def default_path(self):
        """The path -h prints, as the pages name it: a build with another
        prefix (make distcheck's) prints its own, and the pages name the
        plain build's: the check is then about the part under the
        prefix."""
        m = re.search(r"-c file .*\(default: (\S+)\)", wshubd_output("-h"))
        self.assertIsNotNone(m, "no default file in wshubd -h")
        path = m.group(1)
        tail = "/etc/wshub/wshub.yaml"
        self.assertTrue(path.endswith(tail), path)
        if path not in ("/usr/local" + tail, tail):
            path = "/usr/local" + tail
        return path

    def test_wshub_yaml_5(self):
        path = self.default_path()
        page = man("wshub.yaml.5")
        for name in ("DESCRIPTION", "FILES"):
            self.assertIsNotNone(
                re.search(r"(?m)^\.(?:It )?Pa %s\b" % re.escape(path),
                          section(page, name)),
                "wshub.yaml(5) %s does not name %s, the default of "
                "wshubd -h" % (name, path))

    def test_wshubd_8(self):
        path = self.default_path()
        self.assertIsNotNone(
            re.search(r"(?m)^\.(?:It )?Pa %s\b" % re.escape(path),
                      section(man("wshubd.8"), "FILES")),
            "wshubd(8) FILES does not name %s, the default of wshubd -h"
            % path)


class ReadmeLayoutTest(unittest.TestCase):
    """README's Layout names every directory of src/ and modules/."""

    def test_layout(self):
        with open(os.path.join(SRCDIR, "README.md")) as f:
            readme = f.read()
        m = re.search(r"(?ms)^## Layout\n(.*?)(?=^## |\Z)", readme)
        self.assertIsNotNone(m, "no Layout section in README.md")
        missing = []
        for top in ("src", "modules"):
            for d in sorted(os.listdir(os.path.join(SRCDIR, top))):
                full = os.path.join(SRCDIR, top, d)
                if (os.path.isdir(full)
                        and any(n.endswith(".c") for n in os.listdir(full))
                        and not re.search(r"\b%s\b" % re.escape(d),
                                          m.group(1))):
                    missing.append("%s/%s" % (top, d))
        self.assertEqual(missing, [], "directories missing from README.md "
                         "Layout")


QUOTES = re.compile(r"^(\s*)(Qq|Dq|Sq|Ql|Qo|Do|So) \(block\)")


class MandocLintTest(unittest.TestCase):
    """Every page renders clean: no mandoc warning or error, and no
    quoting macro inside another (".Pq Qq a , Qq b" quotes the rest of the
    line: ("a, "b"")."""

    def test_lint(self):
        for name in PAGES:
            out, err = mandoc(["-Tlint"], name)      # messages on stdout
            bad = [line for line in (out + err).splitlines()
                   if "outdated mandoc.db" not in line
                   and re.search(r": (WARNING|ERROR|UNSUPP|BADARG): ", line)]
            self.assertEqual(bad, [], "mandoc -Tlint man/%s" % name)

    def test_quotes_balanced(self):
        for name in PAGES:
            out, _ = mandoc(["-Tutf8"], name)
            self.assertEqual(out.count("\u201c"), out.count("\u201d"), name)
            self.assertEqual(out.count("\u2018"), out.count("\u2019"), name)

    def test_no_quote_inside_a_quote(self):
        for name in PAGES:
            tree, _ = mandoc(["-Ttree"], name)
            open_, nested = [], []
            for line in tree.splitlines():
                indent = len(line) - len(line.lstrip())
                open_ = [q for q in open_ if q[0] < indent]
                m = QUOTES.match(line)
                if m:
                    if open_:
                        nested.append("%s in %s" % (line.strip(),
                                                    open_[-1][1]))
                    open_.append((indent, line.strip()))
            self.assertEqual(nested, [], "man/%s: a quoting macro inside "
                             "another (split the line)" % name)


def src_text(*path):
    with open(os.path.join(SRCDIR, *path)) as f:
        return f.read()


class BehaviourStatementsTest(unittest.TestCase):
    """Statements of the pages and README tied to one place in the code."""

    def test_winch_close_code(self):
        # master.c: SIGWINCH sends the old workers a command; worker.c
        # drains with the close code of that command.
        master = src_text("src", "process", "master.c")
        worker = src_text("src", "process", "worker.c")
        cmd = re.search(r"(?s)case SIGWINCH:.*?(WSH_CMD_\w+)",
                        master).group(1)
        name = re.search(r"(?s)case %s:\s*wsh_worker_drain\((\w+)\)" % cmd,
                         worker).group(1)
        code = re.search(r"#define %s\s+(\d+)" % name,
                         src_text("include", "wshub.h")).group(1)
        examples = section(man("wshubd.8"), "EXAMPLES")
        m = re.search(r"(?ms)^The third drains the old workers(.*?)^\.Bd",
                      examples)
        self.assertIsNotNone(m, "no SIGWINCH example in wshubd(8)")
        codes = set(re.findall(r"\b1\d\d\d\b", m.group(1)))
        self.assertEqual(codes, {code}, "wshubd(8) EXAMPLES: the clients of "
                         "workers drained by SIGWINCH get close %s" % code)

    def test_permessage_deflate_in_wshubd_8(self):
        self.assertIn('"compression"', src_text("src", "core", "conf.c"))
        text = " ".join(section(man("wshubd.8"),
                                "WEBSOCKET BEHAVIOUR").split())
        self.assertFalse("No extension" in text, "wshubd(8) WEBSOCKET "
                         "BEHAVIOUR: permessage-deflate is negotiated")
        for word in ("permessage-deflate", "compression.enabled"):
            self.assertTrue(word in text, "wshubd(8) WEBSOCKET BEHAVIOUR "
                            "does not name " + word)

    def test_publish_api_without_post(self):
        # modules/hub/api.c answers other methods than POST with 405 and
        # Allow: POST; a hub (WebSocket) endpoint takes no POST:
        # conn_http.c answers 426, the publish API is module hub_api.
        api = src_text("modules", "hub", "api.c")
        self.assertRegex(api, r'(?s)memcmp\(p, "POST", 4\) != 0\)\s*'
                         r'\{\s*hub_http_reply_with\(c, 405, "Allow: POST')
        self.assertNotIn(".http =", src_text("modules", "hub", "hub.c"))
        self.assertIn("conn_http_error(c, 426",
                      src_text("src", "net", "conn_http.c"))
        text = html_sections("wshub-protocol.7")["PUBLISHING FROM A BACKEND"]
        self.assertFalse("every request" in text, "wshub-protocol(7): "
                         "without hub.api_key only a POST gets 404")
        for status, what in (("405", "other methods"),
                             ("426", "a POST to a hub endpoint")):
            self.assertTrue(re.search(r"\b%s\b" % status, text),
                            "wshub-protocol(7) PUBLISHING FROM A BACKEND: "
                            "%s get %s" % (what, status))

    def test_readme_not_reading_client(self):
        # wshub.yaml(5) send_buffer: replies to a client's own requests
        # stop the reading, and write_wait closes it; 1008 is for what
        # is published to it.
        self.assertIn("write_wait", section(man("wshub.yaml.5"),
                                            "LIMITS"))
        readme = src_text("README.md")
        rows = [line for line in readme.splitlines()
                if line.startswith("|") and "not reading" in line]
        self.assertGreaterEqual(len(rows), 2, "README: a client not "
                                "reading published messages (1008) and "
                                "one not reading its replies (write_wait)")
        self.assertTrue(any("write_wait" in r for r in rows), rows)
        self.assertTrue(any("1008" in r and "publish" in r for r in rows),
                        rows)


if __name__ == "__main__":
    wshub_harness.main()
