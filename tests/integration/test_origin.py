"""test_origin.py -- allowed_origins refuses cross-site WebSockets.

With allowed_origins set, a browser upgrade whose Origin is not listed
gets 403 before the upgrade (and a log line); listed origins, subdomains
of a "*." entry and clients that send no Origin (not browsers) pass.
Without the key every origin passes.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wshub_harness  # noqa: E402
from wshub_harness import Server, http, upgrade_request  # noqa: E402


def upgrade(srv, origin):
    extra = "Origin: %s\r\n" % origin if origin is not None else ""
    return http(srv.port, upgrade_request(srv.port, extra=extra))[0]


class OriginTest(unittest.TestCase):

    def test_allowed_origins(self):
        with Server(workers=1, allowed_origins=[
                "https://app.example.com", "https://*.example.org",
                "http://localhost:8000"]) as srv:
            for origin, want in (
                    ("https://app.example.com", 101),
                    ("HTTPS://APP.EXAMPLE.COM", 101),
                    ("https://app.example.com:443", 101),
                    ("https://a.example.org", 101),
                    ("https://x.y.example.org", 101),
                    ("http://localhost:8000", 101),
                    (None, 101),
                    ("https://example.org", 403),
                    ("https://evil.com", 403),
                    ("https://app.example.com.evil.com", 403),
                    ("https://evilexample.org", 403),
                    ("http://app.example.com", 403),
                    ("https://app.example.com:8443", 403),
                    ("http://localhost:8001", 403),
                    ("null", 403),
                    ("", 403)):
                with self.subTest(origin=origin):
                    self.assertEqual(upgrade(srv, origin), want)
            srv.wait_log('origin "https://evil.com" not in allowed_origins')

    def test_any_origin_without_the_key(self):
        with Server(workers=1) as srv:
            self.assertEqual(upgrade(srv, "https://anything.example"), 101)

    def test_bad_entry_is_a_config_error(self):
        srv = Server(workers=1, allowed_origins=["example.com"])
        try:
            p = wshub_harness.subprocess.run(
                [wshub_harness.WSHUBD, "-t", "-c", srv.conf_file],
                capture_output=True, text=True, timeout=10)
        finally:
            srv.tmp.cleanup()
        self.assertEqual(p.returncode, 1)
        self.assertIn("allowed_origins[0]", p.stderr)
        self.assertIn("is not an origin", p.stderr)


if __name__ == "__main__":
    wshub_harness.main()
