"""PROTOCOL sections 3 and 3.2: what a session answers, message by message."""

import asyncio
import json
import os
import time

import pytest

from conftest import OP_TEXT, RawWS, frame, now_ms, unique_room, ws_connect, ws_expect, ws_ping


def session(server, room=None):
    return RawWS.connect(server.port, f"/ws/rooms/{room or unique_room('messages')}")


def test_app_ping_pong_ts_is_now(server):
    with session(server) as ws:
        before = now_ms()
        pong = ws.ping()
        after = now_ms()
        assert set(pong) == {"type", "ts"}, pong
        assert before - 1000 <= pong["ts"] <= after + 1000, (before, pong, after)


def test_app_ping_with_library_client(server):
    async def run():
        ws = await ws_connect(server.port, "/ws/rooms/library?user_id=lib-1&name=Lib")
        try:
            for _ in range(3):
                pong = await ws_ping(ws)
                assert abs(pong["ts"] - now_ms()) < 2000, pong
        finally:
            await ws.close()
        assert ws.close_code == 1000

    asyncio.run(run())


MALFORMED = [
    ("not-json", "hello"),
    ("truncated", '{"type":"ping"'),
    ("array", '[{"type":"ping"}]'),
    ("string", '"ping"'),
    ("number", "42"),
    ("null", "null"),
    ("empty", ""),
    ("missing-type", '{"x":1}'),
    ("type-not-string", '{"type":5}'),
    ("type-null", '{"type":null}'),
    ("unknown-type", '{"type":"dance"}'),
    ("type-wrong-case", '{"type":"PING"}'),
    ("x-too-big", '{"type":"presence","x":1.5}'),
    ("x-negative", '{"type":"presence","x":-0.1}'),
    ("x-string", '{"type":"presence","x":"0.5"}'),
    ("y-too-big", '{"type":"presence","y":2}'),
    ("x-huge", '{"type":"presence","x":1e999}'),
    ("hand-not-bool", '{"type":"presence","hand":1}'),
    ("status-idle", '{"type":"presence","status":"idle"}'),
    ("status-unknown", '{"type":"presence","status":"asleep"}'),
    ("emoji-too-long", json.dumps({"type": "presence", "emoji": "x" * 33})),
    ("status-text-too-long", json.dumps({"type": "presence", "status_text": "\u00e9" * 101})),
    ("name-empty", '{"type":"presence","name":""}'),
    ("name-control", '{"type":"presence","name":"a\\u0007b"}'),
    ("chat-no-text", '{"type":"chat"}'),
    ("chat-text-number", '{"type":"chat","text":5}'),
    ("chat-blank", '{"type":"chat","text":" \\t\\n "}'),
    ("chat-too-long", json.dumps({"type": "chat", "text": "w" * 2001})),
    ("chat-client-id-long", json.dumps({"type": "chat", "text": "hi", "client_id": "c" * 65})),
    ("history-limit-0", '{"type":"history","limit":0}'),
    ("history-limit-201", '{"type":"history","limit":201}'),
    ("history-before-0", '{"type":"history","before":0}'),
    ("history-before-string", '{"type":"history","before":"1"}'),
    ("history-limit-fraction", '{"type":"history","limit":1.5}'),
]


@pytest.mark.parametrize("text", [t for _, t in MALFORMED], ids=[n for n, _ in MALFORMED])
def test_malformed_message_bad_request_session_stays(server, text):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, text.encode()))
        err = ws.expect("error")
        assert err.get("code") == "BAD_REQUEST", err
        assert isinstance(err.get("message"), str) and err["message"], err
        ws.ping()  # the session is still open
        ws.send(frame(OP_TEXT, text.encode()))  # and still rejects the same way
        assert ws.expect("error").get("code") == "BAD_REQUEST"


def test_unknown_fields_ignored(server):
    with session(server) as ws:
        ws.send_json({"type": "ping", "extra": {"nested": [1, 2, {"a": None}]}, "n": 1.5})
        ws.expect("pong")
        # Any JSON number, even one no machine type holds (Python writes big integers).
        for n in ("1e999", "123456789012345678901234567890", "-1E+400"):
            ws.send(frame(OP_TEXT, ('{"type":"ping","n":%s,"a":[%s]}' % (n, n)).encode()))
            ws.expect("pong")
        ws.send(frame(OP_TEXT, b'{"type":"ping","n":01}'))
        assert ws.expect("error").get("code") == "BAD_REQUEST"


def test_error_ref_found_after_an_out_of_range_number(server):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b'{"type":"presence","x":1e999,"client_id":"c-79"}'))
        err = ws.expect("error")
        assert err.get("code") == "BAD_REQUEST" and err.get("ref") == "c-79", err


def test_error_ref_echoes_client_id(server):
    with session(server) as ws:
        ws.send_json({"type": "chat", "text": 5, "client_id": "c-77"})
        err = ws.expect("error")
        assert err.get("code") == "BAD_REQUEST" and err.get("ref") == "c-77", err
        ws.send_json({"type": "chat", "text": "   ", "client_id": "c-78"})
        err = ws.expect("error")
        assert err.get("code") == "BAD_REQUEST" and err.get("ref") == "c-78", err


def test_error_without_client_id_has_no_ref(server):
    with session(server) as ws:
        ws.send_json({"type": "chat", "text": 5})
        err = ws.expect("error")
        assert err.get("code") == "BAD_REQUEST"
        assert err.get("ref") in (None, ""), err


def test_many_messages_in_one_write(server):
    """Fifty pings in one TCP write: fifty pongs, in order with rising ts."""
    with session(server) as ws:
        ws.send(b"".join(frame(OP_TEXT, b'{"type":"ping"}') for _ in range(50)))
        stamps = [ws.expect("pong")["ts"] for _ in range(50)]
        assert stamps == sorted(stamps)


def shows(msg, uid, **fields):
    """True when a delta (joined/updated) or sync shows uid with these field values."""
    if msg.get("type") == "delta":
        entries = (msg.get("joined") or []) + (msg.get("updated") or [])
    elif msg.get("type") in ("sync", "welcome"):
        entries = msg.get("members") or []
    else:
        return False
    return any(e.get("user_id") == uid and all(e.get(k) == v for k, v in fields.items()) for e in entries)


def next_matching(ws, pred, what, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = ws.recv_json(max(0.05, deadline - time.monotonic()))
        if pred(msg):
            return msg
    raise AssertionError(f"no {what} within {timeout}s")


def test_room_messages_served(server):
    """Each client message type of PROTOCOL 3.2 on a real room (this replaced the
    "rooms are not served yet" stand-in): welcome first, presence -> delta,
    chat -> chat (trimmed, client_id echoed), history, sync, lower_hands for a
    student -> FORBIDDEN, ping -> pong."""
    room, uid = unique_room("served"), "smoke-" + os.urandom(3).hex()
    with RawWS.connect(server.port, f"/ws/rooms/{room}?user_id={uid}&name=Smoke") as ws:
        welcome = ws.recv_json()
        assert welcome.get("type") == "welcome", f"first message is not a welcome: {welcome!r}"
        assert welcome["room"] == room and welcome["user_id"] == uid and welcome["role"] == "student", welcome
        assert shows(welcome, uid, name="Smoke", connected=True, devices=1), welcome

        ws.send_json({"type": "presence", "x": 0.5, "y": 0.25, "hand": True})
        delta = next_matching(ws, lambda m: shows(m, uid, x=0.5, y=0.25, hand=True), "delta with the presence")
        assert delta["type"] == "delta" and isinstance(delta.get("tick"), int), delta

        ws.send_json({"type": "chat", "text": "  hello  ", "client_id": "c-1"})
        chat = ws.expect("chat")
        [line] = chat["messages"]
        assert (line["text"], line["client_id"], line["user_id"], line["name"]) == ("hello", "c-1", uid, "Smoke")
        assert isinstance(line["seq"], int) and line["seq"] >= 1, line

        ws.send_json({"type": "history", "limit": 10})
        history = ws.expect("history")
        assert [m["seq"] for m in history["messages"]][-1:] == [line["seq"]], history
        assert isinstance(history.get("complete"), bool), history

        ws.send_json({"type": "sync"})
        sync = ws.expect("sync")
        assert shows(sync, uid, x=0.5, hand=True), sync

        ws.send_json({"type": "lower_hands", "client_id": "c-2"})
        err = ws.expect("error")
        assert err.get("code") == "FORBIDDEN" and err.get("ref") == "c-2", err
        ws.ping()


def test_library_client_sees_bad_request_and_stays(server):
    async def run():
        ws = await ws_connect(server.port, "/ws/rooms/library-bad")
        try:
            await ws.send('{"type":"presence","x":7}')
            err = await ws_expect(ws, "error")
            assert err["code"] == "BAD_REQUEST", err
            await ws_ping(ws)
        finally:
            await ws.close()

    asyncio.run(run())
