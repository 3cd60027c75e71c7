#!/usr/bin/python3
"""test_auth.py -- JWT authentication (auth: jwt) and room permissions.

Tokens are made here, at test time, with real keys: HS256/HS384 with the
standard library's hmac, RS256 and ES256 with the openssl command line
(ES256 signatures converted from DER to the raw r||s of RFC 7518). Each
refused token must get 401 with WWW-Authenticate before the upgrade and
an info line with the reason (never the token) in the error log; a good
one gets 101, and the hub's id is its sub. The rooms claim is enforced on
join_room and room_message with an "error" reply. Bad auth configuration
fails "wshubd -t" with FILE:LINE:COL and the file at fault.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import (Server, arun, connect, http,  # noqa: E402
                           upgrade_request, wait_for)
import test_valgrind  # noqa: E402

SECRET = "s3cret-" + "k" * 40           # 47 bytes: enough for HS256
ENDPOINTS = [{"path": "/ws", "module": "hub", "auth": "jwt"},
             {"path": "/open", "module": "hub"},
             {"path": "/api/publish", "module": "hub_api"}]
API_KEY = "test-api-key-0123456789abcdef"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_input(claims, alg, header=None):
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    return "%s.%s" % (b64url(json.dumps(head).encode()),
                      b64url(json.dumps(claims).encode()))


def hs_token(claims, secret=SECRET, alg="HS256", header=None):
    si = signing_input(claims, alg, header)
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
              "HS512": hashlib.sha512}[alg]
    key = secret if isinstance(secret, bytes) else secret.encode()
    return si + "." + b64url(hmac.new(key, si.encode(), digest).digest())


def der_to_raw(der, size=32):
    """An ECDSA-Sig-Value (SEQUENCE of INTEGER r, s) as r||s."""
    assert der[0] == 0x30
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    out = b""
    for _ in range(2):
        assert der[pos] == 0x02
        n = der[pos + 1]
        out += der[pos + 2:pos + 2 + n].lstrip(b"\0").rjust(size, b"\0")
        pos += 2 + n
    return out


def pk_token(claims, key_file, alg, header=None):
    si = signing_input(claims, alg, header)
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file],
                         input=si.encode(), capture_output=True,
                         check=True, timeout=30).stdout
    if alg == "ES256":
        sig = der_to_raw(sig)
    return si + "." + b64url(sig)


def future(s=3600):
    return int(time.time()) + s


def auth_yaml(**keys):
    keys.setdefault("algorithm", "HS256")
    if keys["algorithm"].startswith("HS") and "secret_file" not in keys:
        keys.setdefault("secret", SECRET)
    return "auth_jwt:\n" + "".join(
        "  %s: %s\n" % (k, wshub_harness.yaml_value(v))
        for k, v in keys.items())


def auth_server(workers=1, **keys):
    return Server(workers=workers, endpoints=ENDPOINTS,
                  raw_yaml=auth_yaml(**keys))


def upgrade(srv, token=None, query="", path="/ws"):
    """(status, headers) of an upgrade with TOKEN as Bearer (if any)."""
    extra = "Authorization: Bearer %s\r\n" % token if token else ""
    status, headers, _ = http(srv.port, upgrade_request(
        srv.port, path=path + query, extra=extra))
    return status, headers


async def welcome_id(url, token=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    async with connect(url, extra_headers=headers) as ws:
        return json.loads(await ws.recv())["id"]


async def hub_session(url, token, requests):
    """Send each request, return the first reply to each."""
    replies = []
    async with connect(url, extra_headers={
            "Authorization": "Bearer " + token}) as ws:
        json.loads(await ws.recv())                     # welcome
        for req in requests:
            await ws.send(json.dumps(req))
            replies.append(json.loads(await ws.recv()))
    return replies


def config_test(conf_text):
    """(exit status, stderr) of wshubd -t on a file of CONF_TEXT."""
    with tempfile.TemporaryDirectory(prefix="wshub-test-") as d:
        path = os.path.join(d, "wshub.yaml")
        with open(path, "w") as f:
            f.write(conf_text)
        p = subprocess.run([wshub_harness.WSHUBD, "-t", "-c", path],
                           capture_output=True, text=True, timeout=10)
        return p.returncode, p.stderr, path


class AuthTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="wshub-keys-")
        d = cls.tmp.name
        cls.rsa = os.path.join(d, "rsa.pem")
        cls.rsa_pub = os.path.join(d, "rsa.pub.pem")
        cls.ec = os.path.join(d, "ec.pem")
        cls.ec_pub = os.path.join(d, "ec.pub.pem")
        run = lambda *a: subprocess.run(a, check=True, capture_output=True,
                                        timeout=60)
        run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
            "rsa_keygen_bits:2048", "-out", cls.rsa)
        run("openssl", "pkey", "-in", cls.rsa, "-pubout", "-out",
            cls.rsa_pub)
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-out", cls.ec)
        run("openssl", "pkey", "-in", cls.ec, "-pubout", "-out", cls.ec_pub)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assert_refused(self, srv, token, reason, query=""):
        status, headers = upgrade(srv, token, query)
        self.assertEqual(status, 401, reason)
        self.assertEqual(headers.get("www-authenticate"),
                         'Bearer error="invalid_token"')
        srv.wait_log(reason)

    def test_hs256_header_and_query(self):
        with auth_server(workers=2) as srv:
            tok = hs_token({"sub": "alice", "exp": future()})
            self.assertEqual(upgrade(srv, tok)[0], 101)
            self.assertEqual(upgrade(srv, query="?token=" + tok)[0], 101)
            # sub is the hub id, whatever ?id= says.
            self.assertEqual(arun(welcome_id(srv.url("/ws?id=mallory"),
                                             tok)), "alice")
            self.assertEqual(arun(welcome_id(
                srv.url("/ws?id=mallory&token=" + tok))), "alice")
            # An endpoint without auth is unchanged.
            self.assertEqual(arun(welcome_id(srv.url("/open?id=bob"))),
                             "bob")
            expired = hs_token({"sub": "alice", "exp": 1000})
            self.assert_refused(srv, None, "token expired",
                                query="?token=" + expired)
            self.assertNotIn(tok, srv.log())
            srv.wait_log('"GET /ws" 401', access=True)
            for t in (tok, expired):
                self.assertNotIn(t, srv.access_log())

    def test_refused_tokens(self):
        with auth_server(leeway="0s") as srv:
            good = {"sub": "alice", "exp": future()}
            self.assert_refused(srv, None, "no token")
            self.assert_refused(srv, hs_token({"sub": "a", "exp": 1000}),
                                "token expired (exp)")
            self.assert_refused(srv, hs_token(dict(good, nbf=future())),
                                "token not valid yet (nbf)")
            self.assert_refused(srv, hs_token(good, secret="x" * 40),
                                "signature does not verify")
            tok = hs_token(good)
            self.assert_refused(srv, tok[:-4] + "AAAA",
                                "signature does not verify")
            self.assert_refused(srv, "not.a.jwt", "malformed")
            none = signing_input(good, "none") + "."
            self.assert_refused(srv, none, "signature does not verify")
            self.assert_refused(srv, hs_token(good, alg="HS384"),
                                "signed with HS384, only HS256 is accepted")
            self.assert_refused(srv, hs_token({"exp": future()}),
                                "sub is missing")
            self.assert_refused(srv, hs_token({"sub": "a b", "exp": future()}),
                                "sub is missing or not a client id")
            self.assert_refused(srv, hs_token(dict(good, exp="never")),
                                "exp is not a number")
            # A bad token in the header is not rescued by a good query.
            self.assert_refused(srv, "bad", "malformed",
                                query="?token=" + tok)
            self.assertNotIn(tok, srv.log())

    def test_require_exp(self):
        """Issue 19: a token without exp was valid forever. Refused by
        default (auth_jwt.require_exp: on); require_exp: off lets it in
        and still refuses an expired one."""
        no_exp = {"sub": "alice", "rooms": ["*"]}
        with auth_server(workers=2) as srv:
            self.assert_refused(srv, hs_token(no_exp),
                                "no expiry (exp), one is required")
            self.assert_refused(srv, None, "no expiry (exp)",
                                query="?token=" + hs_token(no_exp))
            self.assertEqual(upgrade(srv, hs_token(
                dict(no_exp, exp=future())))[0], 101)
            srv.wait_log('"GET /ws" 401', access=True)
        with auth_server(require_exp=False) as srv:
            self.assertEqual(arun(welcome_id(srv.url("/ws"),
                                             hs_token(no_exp))), "alice")
            self.assert_refused(srv, hs_token(dict(no_exp, exp=1000)),
                                "token expired (exp)")

    def test_crit_header(self):
        """Issue 19: RFC 7515 section 4.1.11 says a token whose crit
        names an extension the server does not understand must be
        refused; wshubd understands none, so any crit is refused."""
        good = {"sub": "alice", "exp": future()}
        with auth_server() as srv:
            self.assertEqual(upgrade(srv, hs_token(good))[0], 101)
            for crit in ({"crit": ["exp"], "exp": future()},
                         {"crit": ["b64"], "b64": False},
                         {"crit": []}, {"crit": "x"}):
                with self.subTest(header=crit):
                    tok = hs_token(good, header=crit)
                    self.assert_refused(srv, tok, "crit header: no "
                                        "extension is understood")
                    self.assert_refused(srv, None, "crit header",
                                        query="?token=" + tok)

    def test_leeway(self):
        with auth_server(leeway="120s") as srv:
            self.assertEqual(upgrade(srv, hs_token(
                {"sub": "a", "exp": int(time.time()) - 30}))[0], 101)
            self.assertEqual(upgrade(srv, hs_token(
                {"sub": "a", "nbf": int(time.time()) + 30,
                 "exp": future()}))[0], 101)
            self.assert_refused(srv, hs_token(
                {"sub": "a", "exp": int(time.time()) - 600}),
                "token expired (exp)")
            self.assert_refused(srv, hs_token(
                {"sub": "a", "nbf": int(time.time()) + 600,
                 "exp": future()}),
                "token not valid yet (nbf)")

    def test_audience_and_issuer(self):
        with auth_server(audience="chat", issuer="https://idp") as srv:
            ok = {"sub": "a", "aud": "chat", "iss": "https://idp",
                  "exp": future()}
            self.assertEqual(upgrade(srv, hs_token(ok))[0], 101)
            self.assertEqual(upgrade(srv, hs_token(
                dict(ok, aud=["other", "chat"])))[0], 101)
            self.assert_refused(srv, hs_token(dict(ok, aud="other")),
                                "wrong audience (aud)")
            self.assert_refused(srv, hs_token(dict(ok, aud=["x", "y"])),
                                "wrong audience (aud)")
            no_aud = dict(ok)
            del no_aud["aud"]
            self.assert_refused(srv, hs_token(no_aud),
                                "no audience (aud), one is required")
            self.assert_refused(srv, hs_token(dict(ok, iss="https://evil")),
                                "wrong or no issuer (iss)")
        with auth_server() as srv:
            # RFC 7519 4.1.3: a token for some audience is not for us.
            self.assert_refused(srv, hs_token({"sub": "a", "aud": "x",
                                                  "exp": future()}),
                                "token for an audience (aud)")

    def test_hs512_secret_file(self):
        secret = os.urandom(40).hex()           # 80 bytes, newline added
        path = os.path.join(self.tmp.name, "secret")
        with open(path, "w") as f:
            f.write(secret + "\n")
        with Server(workers=1, endpoints=ENDPOINTS, raw_yaml=auth_yaml(
                algorithm="HS512", secret_file=path)) as srv:
            self.assertEqual(upgrade(srv, hs_token(
                {"sub": "a", "exp": future()}, secret=secret,
                alg="HS512"))[0], 101)
            self.assert_refused(srv, hs_token({"sub": "a", "exp": future()},
                                              secret=secret, alg="HS256"),
                                "signed with HS256, only HS512")

    def test_rs256(self):
        with auth_server(algorithm="RS256", public_key_file=self.rsa_pub) \
                as srv:
            tok = pk_token({"sub": "rsa-user", "exp": future()}, self.rsa,
                           "RS256")
            self.assertEqual(arun(welcome_id(srv.url("/ws"), tok)),
                             "rsa-user")
            # HS/RS confusion: HMAC keyed with the public key's PEM text.
            with open(self.rsa_pub, "rb") as f:
                pem = f.read()
            forged = hs_token({"sub": "rsa-user", "exp": future()},
                              secret=pem)
            self.assert_refused(srv, forged,
                                "signed with HS256, only RS256 is accepted")
            other = pk_token({"sub": "a", "exp": future()}, self.ec, "ES256")
            self.assert_refused(srv, other, "signature does not verify")

    def test_es256(self):
        with auth_server(algorithm="ES256", public_key_file=self.ec_pub) \
                as srv:
            tok = pk_token({"sub": "ec-user", "exp": future()}, self.ec,
                           "ES256")
            self.assertEqual(arun(welcome_id(srv.url("/ws"), tok)),
                             "ec-user")
            self.assert_refused(srv, tok[:-6] + "AAAAAA",
                                "signature does not verify")

    def test_rooms_claim(self):
        with auth_server(workers=2, rooms_claim="perm") as srv:
            tok = hs_token({"sub": "alice", "perm": ["chat:*", "lobby"],
                            "exp": future()})
            replies = arun(hub_session(srv.url("/ws"), tok, [
                {"type": "join_room", "room": "chat:general"},
                {"type": "join_room", "room": "lobby"},
                {"type": "join_room", "room": "admin"},
                {"type": "join_room", "room": "lobby2"},
                {"type": "room_message", "room": "admin", "text": "hi"},
                {"type": "join_room", "room": "chat"},
            ]))
            self.assertEqual([r["type"] for r in replies[:2]],
                             ["room_joined", "room_joined"])
            for r in replies[2:]:
                self.assertEqual(r["type"], "error")
                self.assertEqual(r["error"], "Not allowed")
            self.assertEqual([r["request"] for r in replies[2:]],
                             ["join_room", "join_room", "room_message",
                              "join_room"])
            # An empty list allows no room; no claim allows every room.
            replies = arun(hub_session(srv.url("/ws"), hs_token(
                {"sub": "b", "perm": [], "exp": future()}), [
                    {"type": "join_room", "room": "lobby"}]))
            self.assertEqual(replies[0]["error"], "Not allowed")
            replies = arun(hub_session(srv.url("/ws"), hs_token(
                {"sub": "c", "exp": future()}), [
                    {"type": "join_room", "room": "admin"}]))
            self.assertEqual(replies[0]["type"], "room_joined")
            self.assert_refused(srv, hs_token({"sub": "d", "perm": "x",
                                               "exp": future()}),
                                "rooms claim is not an array")
            self.assert_refused(srv, hs_token({"sub": "d",
                                               "perm": ["a*b"],
                                               "exp": future()}),
                                "rooms claim holds something")

    def test_rooms_claim_required(self):
        with auth_server(rooms_claim_required=True) as srv:
            self.assert_refused(srv, hs_token({"sub": "a", "exp": future()}),
                                "no rooms claim, one is required")
            self.assertEqual(upgrade(srv, hs_token(
                {"sub": "a", "rooms": ["*"], "exp": future()}))[0], 101)

    def test_publish_api_unaffected(self):
        """The publish API needs no token; with two realms (/ws, /open)
        it is told which one, else 400."""
        raw = auth_yaml() + "hub:\n  api_key: %s\n" % API_KEY
        with Server(workers=1, endpoints=ENDPOINTS, raw_yaml=raw) as srv:
            for extra, want in (({"realm": "/ws"}, 202),
                                ({"realm": "/open"}, 202),
                                ({}, 400), ({"realm": "/nowhere"}, 404)):
                body = json.dumps(dict({"broadcast": True,
                                        "data": {"x": 1}}, **extra))
                req = ("POST /api/publish HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: apikey %s\r\nContent-Type: "
                       "application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (API_KEY, len(body), body)).encode()
                self.assertEqual(http(srv.port, req)[0], want, extra)

    def test_query_param_name_and_off(self):
        tok = hs_token({"sub": "a", "exp": future()})
        with auth_server(query_param="access_token") as srv:
            self.assertEqual(upgrade(srv, query="?access_token=" + tok)[0],
                             101)
            self.assert_refused(srv, None, "no token", query="?token=" + tok)
        with auth_server(query_param="off") as srv:
            self.assert_refused(srv, None, "no token", query="?token=" + tok)
            self.assertEqual(upgrade(srv, tok)[0], 101)

    def test_reload_reads_the_new_secret(self):
        other = "another-secret-" + "z" * 40
        old_tok = hs_token({"sub": "a", "exp": future()})
        new_tok = hs_token({"sub": "a", "exp": future()}, secret=other)
        with auth_server() as srv:
            self.assertEqual(upgrade(srv, old_tok)[0], 101)
            self.assertEqual(upgrade(srv, new_tok)[0], 401)
            old = set(srv.workers())
            srv.raw_yaml = auth_yaml(secret=other)
            srv.write_conf()
            srv.signal(signal.SIGHUP)
            # The old generation may take a connection until it is gone.
            wait_for(lambda: not old & set(srv.workers()), 20,
                     "the old workers to exit", srv.log)
            srv.wait_workers(1)
            self.assertEqual(upgrade(srv, new_tok)[0], 101)
            self.assertEqual(upgrade(srv, old_tok)[0], 401)

    def test_config_errors(self):
        base = "endpoints:\n  - path: /ws\n    module: hub\n    auth: jwt\n"
        short = os.path.join(self.tmp.name, "short")
        with open(short, "w") as f:
            f.write("tooshort\n")
        for conf, where, what in (
                (base, ":4:11:", "needs an auth_jwt: section"),
                (base + "auth_jwt:\n  algorithm: none\n  secret: x\n",
                 ":6:14:", 'unknown algorithm "none"'),
                (base + "auth_jwt:\n  algorithm: RS384\n",
                 ":6:14:", 'unknown algorithm "RS384"'),
                (base + "auth_jwt:\n  algorithm: HS256\n  secret: short\n",
                 ":7:11:", "HS256 needs at least 32"),
                (base + "auth_jwt:\n  algorithm: HS256\n  secret_file: %s\n"
                 % short, ":7:16:", short + ": the secret has 8 bytes"),
                (base + "auth_jwt:\n  algorithm: HS256\n  secret_file: "
                 "/nonexistent/key\n", ":7:16:",
                 "/nonexistent/key: No such file"),
                (base + "auth_jwt:\n  algorithm: RS256\n  public_key_file: "
                 "%s\n" % self.rsa, ":7:20:", self.rsa + ": not a PEM public"),
                (base + "auth_jwt:\n  algorithm: RS256\n  public_key_file: "
                 "%s\n" % self.ec_pub, ":7:20:",
                 self.ec_pub + ": RS256 needs an RSA key"),
                (base + "auth_jwt:\n  algorithm: ES256\n  public_key_file: "
                 "%s\n" % self.rsa_pub, ":7:20:",
                 self.rsa_pub + ": ES256 needs an EC key"),
                (base + "auth_jwt:\n  algorithm: ES256\n  secret: %s\n"
                 % SECRET, ":7:11:", "ES256 verifies with a public key"),
                (base + "auth_jwt:\n  algorithm: RS256\n", ":6:3:",
                 "RS256 needs public_key_file"),
                (base + "auth_jwt:\n  secret: %s\n" % SECRET, ":6:3:",
                 "algorithm is required"),
                (base + "auth_jwt:\n  algorithm: HS256\n  secret: %s\n"
                 "  leeway: soon\n" % SECRET, ":8:11:", "invalid duration"),
                (base + "auth_jwt:\n  algorithm: HS256\n  secret: %s\n"
                 "  require_exp: later\n" % SECRET, ":8:16:",
                 '"later" is not on or off'),
                (base.replace("auth: jwt", "auth: basic"), ":4:11:",
                 'unknown authentication "basic"'),
                ("endpoints:\n  - path: /ws\n    module: auth_jwt\n",
                 ":3:13:", '"auth_jwt" authenticates')):
            with self.subTest(what=what):
                rc, err, path = config_test(conf)
                self.assertEqual(rc, 1, err)
                self.assertIn(path + where, err)
                self.assertIn(what, err)
        rc, err, _ = config_test(base + "auth_jwt:\n  algorithm: ES256\n"
                                 "  public_key_file: %s\n" % self.ec_pub)
        self.assertEqual(rc, 0, err)

    @unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
    @unittest.skipIf(os.environ.get("WSHUB_SANITIZERS") == "yes",
                     "a sanitizer build cannot run under valgrind")
    def test_valgrind_session(self):
        """Token parsing is input parsing: good and refused tokens, the
        rooms claim and a graceful stop under valgrind, RS256 (OpenSSL
        key paths) on one worker."""
        vg = test_valgrind.ValgrindTest
        srv = vg.valgrind_server(self, workers=1, endpoints=ENDPOINTS,
                                 raw_yaml=auth_yaml(
                                     algorithm="RS256", audience="chat",
                                     public_key_file=self.rsa_pub))
        good = {"sub": "vg", "aud": "chat", "rooms": ["chat:*"],
                "exp": future()}
        with open(self.rsa_pub, "rb") as f:
            pem = f.read()
        with srv:
            for tok in (None, "x", "a.b.c", signing_input(good, "none") + ".",
                        hs_token(good, secret=pem),
                        pk_token(dict(good, exp=1000), self.rsa, "RS256"),
                        pk_token(dict(good, aud=["x"]), self.rsa, "RS256"),
                        pk_token(dict(good, rooms=[1]), self.rsa, "RS256"),
                        pk_token(good, self.rsa, "RS256",
                                 header={"crit": ["b64"], "b64": False}),
                        pk_token(good, self.rsa, "RS256")[:-8] + "AAAAAAAA"):
                self.assertEqual(upgrade(srv, tok)[0], 401)
            replies = arun(hub_session(
                srv.url("/ws"), pk_token(good, self.rsa, "RS256"), [
                    {"type": "join_room", "room": "chat:a"},
                    {"type": "join_room", "room": "other"}]), 120)
            self.assertEqual([r["type"] for r in replies],
                             ["room_joined", "error"])
            srv.signal(signal.SIGQUIT)
            vg.finish(self, srv, 2)


if __name__ == "__main__":
    wshub_harness.main()
