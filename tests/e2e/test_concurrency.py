"""Many clients at once, odd byte boundaries, and garbage: one client never holds up another."""

import asyncio
import base64
import os
import random
import socket
import threading
import time

import pytest

from conftest import (HOST, OP_BINARY, OP_TEXT, Closed, ProtocolError, RawWS, accept_key, frame, http_get,
                      read_response, upgrade_request, wait_until, ws_connect, ws_ping)

ROOMS = 40


def test_many_sessions_across_40_rooms(server):
    """Two sessions in each of 40 rooms: with 2 shards, about half the upgrades are handed
    to the shard that owns the room. Every session answers, and healthz counts them."""

    async def run():
        opened = await asyncio.gather(*[
            ws_connect(server.port, f"/ws/rooms/many-{i}?user_id=u{i}-{d}")
            for i in range(ROOMS) for d in range(2)])
        try:
            pongs = await asyncio.gather(*[ws_ping(ws, timeout=5.0) for ws in opened])
            assert len(pongs) == 2 * ROOMS
            health = await asyncio.to_thread(server.healthz)
            assert health["connections"] >= 2 * ROOMS, health
            # A second round on the same sessions, all in flight at once.
            await asyncio.gather(*[ws_ping(ws, timeout=5.0) for ws in opened])
        finally:
            await asyncio.gather(*[ws.close() for ws in opened], return_exceptions=True)
        assert all(ws.close_code == 1000 for ws in opened), [ws.close_code for ws in opened]

    asyncio.run(run())
    assert wait_until(lambda: server.healthz()["connections"] == 0, 3.0), server.healthz()


def pipelined_upgrade(port, room, extra=()):
    """Upgrade request, a ping and a presence message in ONE write (to a room
    nobody is in yet: its chat state is still being read when they come).
    The welcome comes first, then the messages are handled in order."""
    key = base64.b64encode(os.urandom(16)).decode()
    raw = (upgrade_request(f"/ws/rooms/{room}?user_id=u-{room}", key=key)
           + frame(OP_TEXT, b'{"type":"ping"}')
           + frame(OP_TEXT, b'{"type":"presence","x":0.25,"client_id":"p1"}')
           + b"".join(extra))
    deadline = time.monotonic() + 3
    with socket.create_connection((HOST, port), timeout=3) as sock:
        sock.sendall(raw)
        buf = bytearray()
        resp = read_response(sock, buf, deadline)
        assert resp.status == 101, resp.describe()
        assert resp.headers.get("sec-websocket-accept") == accept_key(key)
        ws = RawWS(sock, buf, resp)
        msgs = []
        while not any(m["type"] == "delta" and any(e.get("x") == 0.25 for k in ("joined", "updated")
                                                   for e in m.get(k, [])) for m in msgs):
            msgs.append(ws.recv_json(max(0.1, deadline - time.monotonic())))
        assert msgs[0]["type"] == "welcome", f"first message: {msgs[0]}"
        assert [m["type"] for m in msgs if m["type"] in ("pong", "error")][:1] == ["pong"], msgs
        return msgs


@pytest.mark.parametrize("threads", [1, 2])
def test_pipelined_upgrade_and_frame_one_write(start_server, threads):
    """The bytes after the head follow the connection, whether it stays on the
    accepting shard (always with one thread) or is handed to the room's owner."""
    srv = start_server({"--threads": threads})
    failures = []

    def one(room):
        try:
            pipelined_upgrade(srv.port, room)
        except (AssertionError, OSError, ProtocolError, Closed) as e:
            failures.append(f"{room}: {e.__class__.__name__}: {e}")

    clients = [threading.Thread(target=one, args=(f"pipelined-{i}",)) for i in range(8)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(10)
    assert not failures, sorted(failures)


def test_messages_before_the_welcome_are_held_within_a_bound(start_server):
    """While a new room opens, at most 64 messages are held for after the
    welcome; one RATE_LIMITED after them says how many more were dropped."""
    srv = start_server()
    pings = [frame(OP_TEXT, b'{"type":"ping"}') for _ in range(70)]
    with socket.create_connection((HOST, srv.port), timeout=3) as sock:
        sock.sendall(upgrade_request("/ws/rooms/held-bound") + b"".join(pings))
        buf = bytearray()
        resp = read_response(sock, buf, time.monotonic() + 3)
        assert resp.status == 101, resp.describe()
        ws = RawWS(sock, buf, resp)
        msgs = [ws.recv_json(3.0) for _ in range(66)]
    assert msgs[0]["type"] == "welcome", msgs[0]
    assert [m["type"] for m in msgs[1:65]] == ["pong"] * 64, msgs
    assert msgs[65]["type"] == "error" and msgs[65]["code"] == "RATE_LIMITED", msgs[65]
    assert msgs[65]["message"].startswith("6 messages"), msgs[65]


def test_slow_client_byte_by_byte_does_not_block_others(server):
    data = frame(OP_TEXT, b'{"type":"ping","pad":"' + b"s" * 40 + b'"}')
    result = {}

    def slow():
        try:
            with RawWS.connect(server.port, "/ws/rooms/slow") as ws:
                for b in data:
                    ws.send(bytes([b]))
                    time.sleep(0.02)
                result["pong"] = ws.expect("pong")
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            result["error"] = e

    t = threading.Thread(target=slow)
    t.start()
    try:
        with RawWS.connect(server.port, "/ws/rooms/slow") as fast, \
                RawWS.connect(server.port, "/ws/rooms/fast-elsewhere") as other:
            rounds = 0
            while t.is_alive() and rounds < 100:
                for ws in (fast, other):
                    start = time.monotonic()
                    ws.ping(timeout=1.0)
                    assert time.monotonic() - start < 1.0
                assert http_get(server.port, "/healthz", timeout=1.0).status == 200
                rounds += 1
                time.sleep(0.05)
            assert rounds >= 5, "the slow client finished too fast to prove anything"
    finally:
        t.join(10)
    assert "error" not in result, result.get("error")
    assert result.get("pong", {}).get("type") == "pong"


def test_upgrade_head_in_small_pieces(server):
    """A request head split at every awkward place (inside CRLF CRLF too) still upgrades."""
    key = base64.b64encode(os.urandom(16)).decode()
    raw = upgrade_request("/ws/rooms/pieces", key=key)
    deadline = time.monotonic() + 5
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(raw), 7):
            sock.sendall(raw[i:i + 7])
            time.sleep(0.003)
        buf = bytearray()
        resp = read_response(sock, buf, deadline)
        assert resp.status == 101, resp.describe()
        RawWS(sock, buf, resp).ping()


def test_half_request_head_then_silence(server):
    stalled = []
    try:
        for i in range(5):
            s = socket.create_connection((HOST, server.port), timeout=5)
            s.sendall(b"GET /ws/rooms/stall HTTP/1.1\r\nHost: x\r\nUpgr" if i % 2 else b"GE")
            stalled.append(s)
        for _ in range(5):
            assert http_get(server.port, "/healthz", timeout=1.0).status == 200
            with RawWS.connect(server.port, "/ws/rooms/stall", timeout=1.0) as ws:
                ws.ping(timeout=1.0)
    finally:
        for s in stalled:
            s.close()


def garbage_client(port, rng, kind):
    """One connection that sends junk and goes away (never waits for an answer long)."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as sock:
            if kind == 0:  # raw junk instead of HTTP
                sock.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000))))
            elif kind == 1:  # a request head cut short
                head = upgrade_request(f"/ws/rooms/junk-{rng.randint(0, 9)}")
                sock.sendall(head[:rng.randint(1, len(head) - 1)])
            else:  # a real session, then junk frames (masked or not) and an abrupt end
                sock.sendall(upgrade_request(f"/ws/rooms/junk-{rng.randint(0, 9)}"))
                buf = bytearray()
                read_response(sock, buf, time.monotonic() + 2)
                junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600)))
                if rng.random() < 0.5:
                    junk = frame(rng.choice([0, 1, 2, 8, 9, 10]), junk[:rng.randint(0, 200)],
                                 fin=rng.random() < 0.7) + junk
                sock.sendall(junk)
            if rng.random() < 0.5:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except (OSError, ConnectionError):
        pass  # the server may close first: that is fine


def test_garbage_connections_leave_server_healthy(server):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    plans = [(random.Random(rng.getrandbits(32)), i % 3) for i in range(200)]
    threads = [threading.Thread(target=garbage_client, args=(server.port, r, k)) for r, k in plans]
    for batch in range(0, len(threads), 25):
        for t in threads[batch:batch + 25]:
            t.start()
        for t in threads[batch:batch + 25]:
            t.join(10)
    assert server.alive(), f"server died under garbage (seed {seed}); log: {server.log_tail()}"
    assert http_get(server.port, "/healthz").status == 200, f"seed {seed}"
    settled = wait_until(lambda: server.healthz()["connections"] == 0, 5.0)
    assert settled, f"healthz still counts sessions after garbage (seed {seed}): {server.healthz()}"
    with RawWS.connect(server.port, "/ws/rooms/after-garbage") as ws:
        ws.ping()


def test_bytes_after_close_frame_and_eof_do_not_leak(server):
    """Sessions that vanish mid-frame are forgotten."""
    for i in range(20):
        ws = RawWS.connect(server.port, f"/ws/rooms/vanish-{i % 4}")
        ws.send(frame(OP_TEXT, b'{"type":"ping"}')[:5])
        ws.close(polite=False)
    assert wait_until(lambda: server.healthz()["connections"] == 0, 5.0), server.healthz()



def churn(port, worker, cycles, failures):
    """Sessions that end at once, half by the client's close frame, half by a
    close the server starts (a binary frame -> 1003)."""
    for i in range(cycles):
        try:
            ws = RawWS.connect(port, f"/ws/rooms/churn-{worker}-{i}", timeout=2.0)
            ws.ping(timeout=2.0)
            if i % 2:
                ws.send(frame(OP_BINARY, b"x"))
                code, _ = ws.expect_close(2.0)
                assert code == 1003, f"close {code} instead of 1003"
        except (AssertionError, OSError, ProtocolError, Closed) as e:
            failures.append(f"worker {worker} cycle {i}: {e.__class__.__name__}: {e}")
            continue
        ws.close()  # close frame 1000 (unless one was sent), then shutdown


def test_new_connections_survive_closing_ones(start_server):
    """Sessions closing (close frame then FIN, as browsers do, or a close the
    server starts) while others connect: every session gets its 101, its
    answers and its close frame, and the server survives."""
    srv = start_server()
    failures = []
    workers = [threading.Thread(target=churn, args=(srv.port, w, 300, failures)) for w in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    srv.check()
    assert not failures, f"{len(failures)} of 2400 cycles failed: {failures[:3]}"
