"""PROTOCOL sections 3 and 3.2: what a session answers, message by message."""

import asyncio
import json

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


def test_room_messages_pending_rooms_layer(server):
    """Today's stand-in for the rooms layer (replace this test when rooms land):
    no welcome after the upgrade, and every well-formed room message answers
    BAD_REQUEST "<type>: rooms are not served yet", echoing client_id as ref."""
    with session(server, "pending-rooms") as ws:
        # Nothing arrives on its own: the first message is the answer to our ping.
        ws.send_json({"type": "ping"})
        first = ws.recv_json()
        assert first.get("type") == "pong", f"expected no welcome before the pong, got {first!r}"
        cases = [({"type": "presence", "x": 0.5, "y": 0.25, "hand": True}, "presence"),
                 ({"type": "chat", "text": "hello", "client_id": "c-1"}, "chat"),
                 ({"type": "history", "before": 18, "limit": 50}, "history"),
                 ({"type": "sync"}, "sync"),
                 ({"type": "lower_hands"}, "lower_hands")]
        for msg, kind in cases:
            ws.send_json(msg)
            err = ws.recv_json()
            assert err.get("type") == "error" and err.get("code") == "BAD_REQUEST", err
            assert err.get("message") == f"{kind}: rooms are not served yet", err
            if "client_id" in msg:
                assert err.get("ref") == msg["client_id"], err
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
