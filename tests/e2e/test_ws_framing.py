"""PROTOCOL section 3, first paragraph: the WebSocket handshake and framing (RFC 6455)."""

import json
import os

import pytest

from conftest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWS, close_payload, frame,
                      http_exchange, mask_bytes, text_frame, unique_room, upgrade_request)


def session(server, room=None):
    return RawWS.connect(server.port, f"/ws/rooms/{room or unique_room('framing')}")


def assert_closed_with(ws, code, timeout=3.0):
    """The server sends close `code` (no error message first) and then ends TCP."""
    got, before = ws.expect_close(timeout)
    errors = [m for m in before if m.get("type") == "error"]
    assert got == code, f"expected close {code}, got {got} (messages before: {before!r})"
    assert not errors, f"unexpected error message before close {code}: {errors!r}"
    assert ws.expect_eof(3.0), "the server kept TCP open after the close handshake"


# ---- handshake


def test_handshake_accept_key_rfc_example(server):
    """RFC 6455 1.3's example key, and a random one (checked inside connect)."""
    with RawWS.connect(server.port, "/ws/rooms/hs", key="dGhlIHNhbXBsZSBub25jZQ==") as ws:
        assert ws.response.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert "upgrade" in ws.response.headers.get("connection", "").lower()
        ws.ping()
    with session(server) as ws:
        ws.ping()


@pytest.mark.parametrize("connection,upgrade", [("keep-alive, Upgrade", "websocket"), ("upgrade", "WebSocket"),
                                                ("Upgrade,keep-alive", "websocket")])
def test_handshake_header_variants_accepted(server, connection, upgrade):
    """Browsers send "Connection: keep-alive, Upgrade" (Firefox); tokens are case-insensitive."""
    raw = upgrade_request("/ws/rooms/hs").replace(b"Connection: Upgrade", f"Connection: {connection}".encode())
    raw = raw.replace(b"Upgrade: websocket", f"Upgrade: {upgrade}".encode())
    resp, _ = http_exchange(server.port, raw, timeout=2.0)
    assert resp.status == 101, f"Connection: {connection} / Upgrade: {upgrade}: {resp.describe()}"


@pytest.mark.parametrize("drop", ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Upgrade"])
def test_handshake_missing_header_rejected(server, drop):
    raw = upgrade_request("/ws/rooms/hs").replace(b"\r\n" + drop.encode() + b":", b"\r\nX-Dropped:")
    resp, _ = http_exchange(server.port, raw)
    assert resp.status in (400, 426), f"upgrade without {drop}: {resp.describe()}"


# ---- control frames


def test_ping_frame_answered_with_same_payload(server):
    with session(server) as ws:
        for payload in (b"", b"hello", os.urandom(125)):
            ws.send(frame(OP_PING, payload))
            fr = ws.recv_frame()
            while fr.opcode == OP_TEXT:  # the rooms layer's own messages
                fr = ws.recv_frame()
            assert fr.opcode == OP_PONG and fr.payload == payload, f"got opcode {fr.opcode} {fr.payload!r}"


def test_unsolicited_pong_ignored(server):
    with session(server) as ws:
        ws.send(frame(OP_PONG, b"unasked"))
        ws.ping()


def test_fragmented_text_three_fragments(server):
    data = json.dumps({"type": "ping", "pad": "x" * 30}).encode()
    with session(server) as ws:
        ws.send(frame(OP_TEXT, data[:10], fin=False) + frame(OP_CONT, data[10:20], fin=False)
                + frame(OP_CONT, data[20:], fin=True))
        assert ws.expect("pong")["type"] == "pong"


def test_ping_interleaved_in_fragmented_message(server):
    data = json.dumps({"type": "ping"}).encode()
    with session(server) as ws:
        ws.send(frame(OP_TEXT, data[:5], fin=False))
        ws.send(frame(OP_PING, b"mid-message"))
        ws.send(frame(OP_CONT, data[5:9], fin=False))
        ws.send(frame(OP_CONT, data[9:], fin=True))
        frames = []
        while not any(f.opcode == OP_TEXT and f.json().get("type") == "pong" for f in frames):
            frames.append(ws.recv_frame())
        pongs = [f for f in frames if f.opcode == OP_PONG]
        assert [p.payload for p in pongs] == [b"mid-message"], frames


def test_utf8_character_split_across_fragments(server):
    """Validation is per message: a code point may straddle fragments."""
    data = json.dumps({"type": "ping", "note": "\u00e9\U0001F44D"}, ensure_ascii=False).encode()
    cut = data.index(b"\xf0") + 2  # inside the 4-byte sequence
    with session(server) as ws:
        ws.send(frame(OP_TEXT, data[:cut], fin=False) + frame(OP_CONT, data[cut:]))
        ws.expect("pong")


def test_empty_fragments_around_message(server):
    data = json.dumps({"type": "ping"}).encode()
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, data, fin=False) + frame(OP_CONT, b""))
        ws.expect("pong")


# ---- fatal frames


def test_binary_frame_closes_1003(server):
    with session(server) as ws:
        ws.send(frame(OP_BINARY, b"\x00\x01"))
        assert_closed_with(ws, 1003)


def test_invalid_utf8_closes_1007(server):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b'{"type":"ping","x":"\xc3\x28"}'))
        assert_closed_with(ws, 1007)


def test_invalid_utf8_in_fragmented_message_closes_1007(server):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b'{"type":"ping","x":"', fin=False) + frame(OP_CONT, b'\xed\xa0\x80"}'))
        assert_closed_with(ws, 1007)


def test_unmasked_frame_closes_1002(server):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b'{"type":"ping"}', mask=False))
        assert_closed_with(ws, 1002)


@pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
def test_reserved_opcode_closes_1002(server, opcode):
    with session(server) as ws:
        ws.send(frame(opcode, b"x"))
        assert_closed_with(ws, 1002)


@pytest.mark.parametrize("rsv", [1, 2, 4])
def test_rsv_bit_closes_1002(server, rsv):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b'{"type":"ping"}', rsv=rsv))
        assert_closed_with(ws, 1002)


def test_continuation_without_start_closes_1002(server):
    with session(server) as ws:
        ws.send(frame(OP_CONT, b'{"type":"ping"}'))
        assert_closed_with(ws, 1002)


def test_new_message_inside_fragmented_one_closes_1002(server):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b'{"type":', fin=False) + frame(OP_TEXT, b'{"type":"ping"}'))
        assert_closed_with(ws, 1002)


def test_control_frame_with_126_byte_payload_closes_1002(server):
    with session(server) as ws:
        ws.send(frame(OP_PING, b"p" * 126))
        assert_closed_with(ws, 1002)


def test_fragmented_control_frame_closes_1002(server):
    with session(server) as ws:
        ws.send(frame(OP_PING, b"part", fin=False))
        assert_closed_with(ws, 1002)


def test_non_minimal_length_is_answered_or_1002(server):
    """RFC 6455 5.2 wants the minimal length encoding: a 16-bit length for a short
    payload may be refused with 1002 or accepted, but never misread."""
    data = b'{"type":"ping"}'
    key = os.urandom(4)
    raw = bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big") + key + mask_bytes(data, key)
    with session(server) as ws:
        ws.send(raw)
        fr = ws.recv_frame()
        while fr.opcode == OP_TEXT and fr.json().get("type") != "pong":
            fr = ws.recv_frame()
        assert fr.opcode == OP_TEXT or fr.close_code() == 1002, f"opcode {fr.opcode} {fr.payload!r}"


# ---- size limits


def big_message(size):
    """A ping message of exactly `size` bytes (unknown fields are ignored)."""
    base = len(json.dumps({"type": "ping", "pad": ""}))
    return json.dumps({"type": "ping", "pad": "x" * (size - base)}).encode()


def assert_too_large(ws):
    code, before = ws.expect_close(3.0)
    assert code == 1009, f"expected close 1009, got {code} (messages before: {before!r})"
    errors = [m for m in before if m.get("type") == "error"]
    assert errors and errors[-1].get("code") == "TOO_LARGE", f"no TOO_LARGE error before 1009: {before!r}"
    assert isinstance(errors[-1].get("message"), str)


def test_message_of_max_size_accepted(server):
    data = big_message(8192)
    assert len(data) == 8192
    with session(server) as ws:
        ws.send(frame(OP_TEXT, data))
        ws.expect("pong")


def test_single_frame_over_max_closes_1009(server):
    data = big_message(8193)
    with session(server) as ws:
        ws.send(frame(OP_TEXT, data))
        assert_too_large(ws)


def test_large_declared_length_closes_1009_early(server):
    """A frame announcing 1 MiB is refused from its header: no need to receive it all."""
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b"x" * 1000, length=1 << 20))
        assert_too_large(ws)


def test_64bit_length_with_top_bit_set_closes(server):
    """RFC 6455 5.2: the most significant bit of a 64-bit length must be 0."""
    head = bytes([0x81, 0x80 | 127]) + (1 << 63 | 20).to_bytes(8, "big") + os.urandom(4)
    with session(server) as ws:
        ws.send(head + b"x" * 20)
        code, _ = ws.expect_close(3.0)
        assert code in (1002, 1009), code


def test_fragmented_message_over_max_closes_1009(server):
    data = big_message(9000)
    with session(server) as ws:
        parts = [data[i:i + 3000] for i in range(0, len(data), 3000)]
        ws.send(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(parts) - 1)
                         for i, p in enumerate(parts)))
        assert_too_large(ws)


def test_max_message_bytes_flag(start_server):
    srv = start_server({"--max-message-bytes": 1024})
    with RawWS.connect(srv.port, "/ws/rooms/small") as ws:
        ws.send(frame(OP_TEXT, big_message(1024)))
        ws.expect("pong")
        ws.send(frame(OP_TEXT, big_message(2000)))
        assert_too_large(ws)


# ---- close handshake


def test_client_close_1000_echoed(server):
    with session(server) as ws:
        ws.ping()
        ws.send(frame(OP_CLOSE, close_payload(1000, "bye")))
        code, before = ws.expect_close(reply=False)
        assert code == 1000
        assert ws.expect_eof(3.0), "TCP still open after the close handshake"


@pytest.mark.parametrize("code", [1001, 3000, 4999])
def test_client_close_valid_code_echoed(server, code):
    with session(server) as ws:
        ws.send(frame(OP_CLOSE, close_payload(code)))
        got, _ = ws.expect_close(reply=False)
        assert got == code


def test_client_close_without_code_answered(server):
    with session(server) as ws:
        ws.send(frame(OP_CLOSE, b""))
        fr = ws.recv_frame()
        while fr.opcode == OP_TEXT:
            fr = ws.recv_frame()
        assert fr.opcode == OP_CLOSE and fr.close_code() in (None, 1000), fr
        assert ws.expect_eof(3.0)


@pytest.mark.parametrize("payload", [close_payload(1005), close_payload(999), close_payload(1006),
                                     close_payload(1015), close_payload(5000), b"\x03"],
                         ids=["1005", "999", "1006", "1015", "5000", "one-byte"])
def test_client_close_invalid_code_closes_1002(server, payload):
    with session(server) as ws:
        ws.send(frame(OP_CLOSE, payload))
        got, _ = ws.expect_close(reply=False)
        assert got == 1002


def test_client_close_reason_invalid_utf8_rejected(server):
    with session(server) as ws:
        ws.send(frame(OP_CLOSE, close_payload(1000) + b"\xff"))
        got, _ = ws.expect_close(reply=False)
        assert got in (1002, 1007)


def test_close_inside_fragmented_message_echoed(server):
    with session(server) as ws:
        ws.send(frame(OP_TEXT, b'{"type":', fin=False) + frame(OP_CLOSE, close_payload(1000)))
        got, before = ws.expect_close(reply=False)
        assert got == 1000, got
        assert not [m for m in before if m.get("type") in ("error", "pong")], before


def test_frames_after_close_are_ignored(server):
    with session(server) as ws:
        ws.send(frame(OP_CLOSE, close_payload(1000)) + text_frame({"type": "ping"}))
        got, before = ws.expect_close(reply=False)
        assert got == 1000
        assert not any(m.get("type") == "pong" for m in before)
