#!/usr/bin/python3
"""Room rules (hub.rooms, issue 21 item 1): presence full|count|off and
presence_limit, announce, max_members ("Room full"), client_publish and
history, each as wshub-protocol(7) and wshub.yaml(5) say; a room that
matches no rule behaves as v1; the old hub.history still works. Past
presence_limit a joiner gets a count and nobody hears of joins (item
2); presence on demand: room_members pages, room_count and POST
/api/presence, complete and without duplicates across workers (item
3)."""
import asyncio
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wshub_harness import (Server, arun, connect, http,  # noqa: E402
                           quiet, recv_json)
from test_auth import config_test  # noqa: E402

API_KEY = "rooms-test-key-0123456789"
RULES = """hub:
  api_key: %s
  rooms:
    - match: "count:*"
      presence: count
    - match: "limit:*"
      presence_limit: 2
    - match: "quiet:*"
      announce: off
    - match: "hidden:*"
      presence: "off"
    - match: "full:*"
      max_members: 2
    - match: "news"
      client_publish: off
    - match: "log:*"
      history:
        size: 10
""" % API_KEY




async def join(ws, room):
    await ws.send(json.dumps({"type": "join_room", "room": room}))
    return await recv_json(ws)


class RoomRulesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(workers=2, endpoints=[
            {"path": "/ws", "module": "hub"},
            {"path": "/api/publish", "module": "hub_api"},
            {"path": "/api/presence", "module": "hub_presence"}],
            raw_yaml=RULES)
        cls.srv.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def clients(self, n):
        return [connect(self.srv.url("/ws") + "?id=c%d" % i)
                for i in range(n)]

    def run_with(self, n, body):
        async def main():
            conns = [await c.__aenter__() for c in self.clients(n)]
            try:
                for ws in conns:
                    await recv_json(ws)             # welcome
                await body(conns)
            finally:
                for ws in conns:
                    await ws.close()
        arun(main(), 60)

    def test_no_rule_is_v1(self):
        async def body(ws):
            self.assertEqual((await join(ws[0], "plain"))["members"],
                             ["c0"])
            joined = await join(ws[1], "plain")
            self.assertEqual(sorted(joined["members"]), ["c0", "c1"])
            self.assertNotIn("member_count", joined)
            self.assertEqual((await recv_json(ws[0]))["type"],
                             "user_joined_room")
        self.run_with(2, body)

    def test_presence_count(self):
        async def body(ws):
            await join(ws[0], "count:a")
            joined = await join(ws[1], "count:a")
            self.assertEqual(joined["member_count"], 2)
            self.assertNotIn("members", joined)
        self.run_with(2, body)

    def test_presence_limit(self):
        async def body(ws):
            self.assertEqual((await join(ws[0], "limit:a"))["members"],
                             ["c0"])
            self.assertEqual(len((await join(ws[1], "limit:a"))["members"]),
                             2)
            third = await join(ws[2], "limit:a")
            self.assertEqual(third["member_count"], 3)
            self.assertNotIn("members", third)
            # c1's join (2 members, within the limit) was announced to
            # c0; c2's (3) to nobody, and neither is its leave.
            await ws[2].send(json.dumps({"type": "leave_room",
                                         "room": "limit:a"}))
            self.assertEqual((await recv_json(ws[2]))["type"], "room_left")
            got = await quiet(ws[0], 0.5)
            self.assertEqual([(m["type"], m["userId"]) for m in got],
                             [("user_joined_room", "c1")])
            self.assertEqual(await quiet(ws[1], 0.2), [])
        self.run_with(3, body)

    def presence_api(self, body, key=API_KEY, method="POST"):
        data = json.dumps(body)
        return http(self.srv.port, (
            "%s /api/presence HTTP/1.1\r\nHost: x\r\nAuthorization: "
            "apikey %s\r\nContent-Length: %d\r\n\r\n%s"
            % (method, key, len(data), data)).encode())

    def test_members_paged(self):
        """25 members over 2 workers, pages of 7 from clients and from
        the API: every id exactly once, the count on every page."""
        n = 25

        async def pages(ws, ask):
            ids, cursor = [], None
            for _ in range(20):
                req = {"type": "room_members", "room": "limit:p",
                       "limit": 7, "id": len(ids)}
                if cursor is not None:
                    req["cursor"] = cursor
                await ws.send(json.dumps(req))
                page = await recv_json(ws)
                ask.assertEqual((page["type"], page["member_count"],
                                 page["id"], page["room"]),
                                ("room_members", n, len(ids), "limit:p"))
                ask.assertLessEqual(len(page["members"]), 7 + 4)
                ids += page["members"]
                cursor = page.get("cursor")
                if cursor is None:
                    return ids
            ask.fail("no last page after 20")

        async def body(ws):
            for c in ws:
                await join(c, "limit:p")
            await quiet(ws[0], 0.3)
            ids = await pages(ws[0], self)
            self.assertEqual(sorted(ids), sorted("c%d" % i for i in range(n)))
            await ws[3].send(json.dumps({"type": "room_count",
                                         "room": "limit:p"}))
            self.assertEqual(await recv_json(ws[3]),
                             {"type": "room_count", "room": "limit:p",
                              "member_count": n})
            got, cursor = [], None
            for _ in range(20):
                req = {"room": "limit:p", "limit": 7}
                if cursor:
                    req["cursor"] = cursor
                status, _, page = await asyncio.to_thread(self.presence_api,
                                                          req)
                self.assertEqual(status, 200)
                page = json.loads(page)
                self.assertEqual(page["member_count"], n)
                got += page["members"]
                cursor = page.get("cursor")
                if cursor is None:
                    break
            self.assertEqual(sorted(got), sorted(ids))
            status, _, page = await asyncio.to_thread(
                self.presence_api, {"room": "limit:p", "limit": 0})
            self.assertEqual((status, json.loads(page)["member_count"]),
                             (200, n))
        self.run_with(n, body)

    def test_presence_requests_refused(self):
        async def body(ws):
            async def ask(req):
                await ws[0].send(json.dumps(req))
                return (await recv_json(ws[0])).get("error")
            self.assertEqual(await ask({"type": "room_members",
                                        "room": "limit:x"}), "Not in room")
            await join(ws[0], "limit:x")
            await join(ws[0], "count:x")
            await join(ws[0], "hidden:x")
            for cursor in ("", "abc", "1" * 19, 5, "-1"):
                self.assertEqual(await ask({"type": "room_members",
                                            "room": "limit:x",
                                            "cursor": cursor}),
                                 "Invalid cursor")
            for limit in (0, 1001, "10", 2.5):
                self.assertEqual(await ask({"type": "room_members",
                                            "room": "limit:x",
                                            "limit": limit}),
                                 "Invalid limit")
            self.assertEqual(await ask({"type": "room_members",
                                        "room": "count:x"}),
                             "Member lists are off in this room")
            self.assertEqual(await ask({"type": "room_members",
                                        "room": "hidden:x"}),
                             "Presence is off in this room")
            self.assertEqual(await ask({"type": "room_count",
                                        "room": "hidden:x"}),
                             "Presence is off in this room")
            await ws[0].send(json.dumps({"type": "room_count",
                                         "room": "count:x"}))
            self.assertEqual((await recv_json(ws[0]))["member_count"], 1)
            # The API: its key, POST, and its own checks.
            status, headers, _ = await asyncio.to_thread(
                self.presence_api, {"room": "limit:x"}, key="wrong")
            self.assertEqual((status, headers.get("www-authenticate")),
                             (401, "apikey"))
            status, headers, _ = await asyncio.to_thread(
                self.presence_api, {"room": "limit:x"}, method="PUT")
            self.assertEqual((status, headers.get("allow")), (405, "POST"))
            for bad, why in (({"room": "a b"}, "Invalid room name"),
                             ({"room": "x", "cursor": "z"}, "Invalid cursor"),
                             ({"room": "x", "limit": 5000},
                              '"limit": 0 to 1000')):
                status, _, text = await asyncio.to_thread(self.presence_api,
                                                          bad)
                self.assertEqual((status, json.loads(text)["error"]),
                                 (400, why))
            status, _, text = await asyncio.to_thread(
                self.presence_api, {"room": "nobody-here"})
            self.assertEqual((status, json.loads(text)),
                             (200, {"room": "nobody-here", "member_count": 0,
                                    "members": []}))
        self.run_with(1, body)

    def test_announce_off_and_presence_off(self):
        async def body(ws):
            await join(ws[0], "quiet:a")
            self.assertEqual(len((await join(ws[1], "quiet:a"))["members"]),
                             2)
            self.assertEqual(await quiet(ws[0], 0.4), [])
            await join(ws[0], "hidden:a")
            hidden = await join(ws[1], "hidden:a")
            self.assertNotIn("members", hidden)
            self.assertNotIn("member_count", hidden)
            self.assertEqual(await quiet(ws[0], 0.4), [])
            # Messages still flow.
            await ws[1].send(json.dumps({"type": "room_message",
                                         "room": "hidden:a", "text": "x"}))
            self.assertEqual((await recv_json(ws[0]))["text"], "x")
        self.run_with(2, body)

    def test_room_full(self):
        async def body(ws):
            await join(ws[0], "full:a")
            await join(ws[1], "full:a")
            refused = await join(ws[2], "full:a")
            self.assertEqual((refused["type"], refused["error"],
                              refused["room"]),
                             ("error", "Room full", "full:a"))
            await ws[2].send(json.dumps({"type": "room_message",
                                         "room": "full:a", "text": "x"}))
            err = await recv_json(ws[2])
            self.assertEqual(err["error"], "Not in room")
            # The refused joiner was in the room for a moment: members
            # saw it come and go (documented).
            seen = [m["type"] for m in await quiet(ws[1], 0.4)]
            self.assertEqual(seen, ["user_joined_room", "user_left_room"])
            # Once one leaves, there is room again.
            await ws[1].send(json.dumps({"type": "leave_room",
                                         "room": "full:a"}))
            self.assertEqual((await recv_json(ws[1]))["type"], "room_left")
            await quiet(ws[2], 0.4)
            self.assertEqual((await join(ws[2], "full:a"))["type"],
                             "room_joined")
        self.run_with(3, body)

    def test_client_publish_off(self):
        async def body(ws):
            await join(ws[0], "news")
            await ws[0].send(json.dumps({"type": "room_message",
                                         "room": "news", "text": "x"}))
            self.assertEqual((await recv_json(ws[0]))["error"],
                             "Not allowed")
            data = json.dumps({"room": "news", "data": {"text": "ok"}})
            status, _, _ = await asyncio.to_thread(http, self.srv.port, (
                "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: "
                "apikey %s\r\nContent-Length: %d\r\n\r\n%s"
                % (API_KEY, len(data), data)).encode())
            self.assertEqual(status, 202)
            got = await recv_json(ws[0])
            self.assertEqual((got["text"], got["from"]), ("ok", "server"))
        self.run_with(1, body)

    def test_history_in_a_rule(self):
        async def body(ws):
            joined = await join(ws[0], "log:a")
            self.assertIn("epoch", joined)
            self.assertEqual(joined["offset"], 0)
            self.assertNotIn("epoch", await join(ws[0], "plain2"))
        self.run_with(1, body)


class RoomRulesConfigTest(unittest.TestCase):

    def test_errors(self):
        for body, where, what in (
                ('    - match: "a*b"\n', ":3:14: hub.rooms[0].match",
                 "is not a room name"),
                ("    - presence: full\n", ":3:7: hub.rooms[0]",
                 'missing required key "match"'),
                ("    - match: x\n      presence: some\n",
                 ":4:17: hub.rooms[0].presence",
                 '"some" is not one of: full, count, off'),
                ("    - match: x\n      history:\n        size: 0\n",
                 ":5:15: hub.rooms[0].history.size", "from 1 to 1000000"),
                ("    - match: x\n      histroy: {}\n", ":4:7:",
                 'did you mean "history"')):
            status, err, _ = config_test("hub:\n  rooms:\n" + body)
            self.assertEqual(status, 1, body)
            self.assertIn(where, err, body)
            self.assertIn(what, err, body)

    def test_old_history_still_read(self):
        with Server(workers=1, endpoints=[{"path": "/ws", "module": "hub"}],
                    raw_yaml="hub:\n  history:\n    - rooms: \"h:*\"\n") \
                as srv:
            async def main():
                async with connect(srv.url("/ws")) as ws:
                    await recv_json(ws)
                    self.assertIn("epoch", await join(ws, "h:1"))
            arun(main())
            self.assertIn("hub.history is now the history of hub.rooms",
                          srv.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
