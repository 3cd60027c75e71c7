#!/usr/bin/python3
"""TLS to Redis (engine.redis.tls): two wshubd nodes meet through a
redis-server that speaks only TLS, started here with certificates from a
throw-away CA.

TLS to Redis needs hiredis >= 1.0 with hiredis_ssl. Debian 12 has hiredis
0.14, so in the default build only ConfigTest runs, and checks that
`wshubd -t` refuses the key and says why; tests/compat/hiredis1.sh builds
against hiredis 1.2 with hiredis_ssl and runs the whole file:

    tests/compat/hiredis1.sh tests/integration/test_redis_tls.py

There the rooms, private messages and broadcasts of test_redis.py cross
the nodes over TLS, with and without client certificates, and a server
whose certificate is not from the configured CA, or does not name the
address connected to, is never used: the engine stays down and the log
says why.
"""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import CertAuthority  # noqa: E402
from test_redis import (REDIS_CLI, Redis, RedisConfigTestCase,  # noqa: E402
                        RedisTestCase, meet)
from test_redis_faults import health  # noqa: E402

WSHUBD = wshub_harness.WSHUBD


def redis_tls_built():
    out = subprocess.run([WSHUBD, "-V"], capture_output=True, text=True,
                         timeout=10).stdout
    return "TLS to Redis: yes" in out


class TlsRedis(Redis):
    """A redis-server listening with TLS only, its certificate issued by
    CA for 127.0.0.1; clients must show a certificate of CA when
    AUTH_CLIENTS."""

    def __init__(self, ca, auth_clients=False):
        super().__init__()
        self.ca = ca
        # "--port 0" after Redis.start's "--port PORT": the later wins
        server = ca.issue("redis-%d" % self.port, self.port)
        self.args = ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", server["certificate"],
                     "--tls-key-file", server["certificate_key"],
                     "--tls-ca-cert-file", ca.cert,
                     "--tls-auth-clients", "yes" if auth_clients else "no"]
        # redis-cli's own certificate, for a server that asks for one
        self.client = ca.issue("cli-%d" % self.port, self.port + 100000,
                               client=True)

    def cli(self, *args):
        try:
            out = subprocess.run(
                [REDIS_CLI, "--tls", "--cacert", self.ca.cert,
                 "--cert", self.client["certificate"],
                 "--key", self.client["certificate_key"],
                 "-p", str(self.port)] + list(args),
                capture_output=True, timeout=5, text=True)
        except subprocess.TimeoutExpired:
            return None
        return out.stdout.strip()


def tls_yaml(**keys):
    return "    tls:\n" + "".join("      %s: %s\n" % kv
                                  for kv in keys.items())


@unittest.skipUnless(redis_tls_built(), "wshubd is built without TLS to "
                     "Redis (hiredis 0.14): tests/compat/hiredis1.sh runs "
                     "this file")
class TlsAcrossNodesTest(RedisTestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="wshub-redis-tls-")
        self.addCleanup(self.tmp.cleanup)
        self.ca = CertAuthority(self.tmp.name)
        self.nodes = []

    def use(self, redis):
        self.redis = redis
        self.addCleanup(redis.cleanup)
        redis.start()

    def tls_node(self, **keys):
        return self.start_node(more_yaml=tls_yaml(**keys))

    def check_rooms(self):
        async def body(pa, pb):
            a1, b1 = await meet(self.redis, pa, pb, "lobby")
            await b1.send({"type": "private_message", "to": "alice",
                           "text": "psst"})
            m = await a1.expect("private_message", text="psst")
            assert m["from"] == "bob", m
            await a1.send({"type": "broadcast", "text": "all"})
            await b1.expect("broadcast", text="all", **{"from": "alice"})
        self.run_pools(body)

    def test_rooms_over_tls(self):
        self.use(TlsRedis(self.ca))
        self.tls_node(ca_file=self.ca.cert)
        self.tls_node(ca_file=self.ca.cert)
        self.check_rooms()

    def test_client_certificate(self):
        self.use(TlsRedis(self.ca, auth_clients=True))
        mine = self.ca.issue("wshub", 7, client=True)
        for _ in range(2):
            self.tls_node(ca_file=self.ca.cert,
                          cert_file=mine["certificate"],
                          key_file=mine["certificate_key"])
        self.check_rooms()

    def refused(self, want, good=None, **keys):
        """A node with KEYS never uses the server: its workers log WANT
        and /health says the engine is down, as it is up for a node with
        the right keys, GOOD (the CA's file by default)."""
        eps = [{"path": "/ws", "module": "hub"},
               {"path": "/health", "module": "health"}]
        good = self.start_node(endpoints=eps, more_yaml=tls_yaml(
            **(good or {"ca_file": self.ca.cert})))
        wshub_harness.wait_for(
            lambda: health(good.port)[1]["checks"]["engine"] == "ok", 15,
            "the engine up with the right keys")
        srv = self.start_node(endpoints=eps, more_yaml=tls_yaml(**keys))
        srv.wait_log(want, timeout=15)
        for _ in range(2):      # each worker answers in turn
            self.assertEqual(health(srv.port)[1]["checks"]["engine"],
                             "down", srv.log())

    def test_another_ca_is_refused(self):
        self.use(TlsRedis(self.ca))
        other = CertAuthority(tempfile.mkdtemp(dir=self.tmp.name))
        # "unable to get local issuer certificate", or "self-signed
        # certificate in certificate chain" when the server sends its CA
        self.refused("TLS: certificate verify failed: ", ca_file=other.cert)

    def test_another_name_is_refused(self):
        self.use(TlsRedis(self.ca))
        self.refused("TLS: certificate verify failed: hostname mismatch",
                     ca_file=self.ca.cert, server_name="redis.example")

    def test_no_certificate_is_refused_when_asked(self):
        self.use(TlsRedis(self.ca, auth_clients=True))
        mine = self.ca.issue("wshub", 7, client=True)
        self.refused("TLS: the server refused the handshake: certificate "
                     "required", good={"ca_file": self.ca.cert,
                                       "cert_file": mine["certificate"],
                                       "key_file": mine["certificate_key"]},
                     ca_file=self.ca.cert)

    def test_plain_port_is_refused(self):
        self.use(Redis())
        srv = self.start_node(more_yaml=tls_yaml(ca_file=self.ca.cert))
        srv.wait_log("TLS: no answer to the handshake: is the server's "
                     "port a TLS one?", timeout=15)


class ConfigTest(RedisConfigTestCase):

    @unittest.skipIf(redis_tls_built(), "built with TLS to Redis")
    def test_refused_without_hiredis_ssl(self):
        self.check("    tls: {}\n", "4:10", "engine.redis.tls",
                   "built without TLS to Redis", "hiredis_ssl")
        self.check("    port: 6380\n    tls:\n      ca_file: /x\n", "6:7",
                   "built without TLS to Redis")

    @unittest.skipUnless(redis_tls_built(), "built without TLS to Redis")
    def test_keys(self):
        with tempfile.TemporaryDirectory(prefix="wshub-ca-") as d:
            ca = CertAuthority(d)
            mine = ca.issue("wshub", 3)
            cert, key = mine["certificate"], mine["certificate_key"]
            self.check("    tls: {}\n", None)
            self.check("    tls:\n      ca_file: %s\n      cert_file: %s\n"
                       "      key_file: %s\n      server_name: r.example\n"
                       % (ca.cert, cert, key), None)
            self.check("    tls:\n      ca_file: %s/none.pem\n" % d, "5:16",
                       "engine.redis.tls.ca_file", "cannot read")
            self.check("    tls:\n      ca_file: %s\n" % key, "5:16",
                       "no usable PEM CA certificate")
            self.check("    tls:\n      cert_file: %s\n" % cert, "5:18",
                       "engine.redis.tls.cert_file", "needs both")
            self.check("    tls:\n      cert_file: %s\n      key_file: %s\n"
                       % (cert, ca.cert), "6:17",
                       "engine.redis.tls.key_file", "no usable PEM private "
                       "key")
            self.check("    unix_socket: /run/r.sock\n    tls: {}\n", "5:10",
                       "not over a UNIX socket")


if __name__ == "__main__":
    wshub_harness.main()
