"""PROTOCOL section 6: SIGTERM/SIGINT close every session with 1001 and the process exits 0."""

import asyncio
import signal
import socket
import time

from conftest import (HOST, OP_CLOSE, OP_TEXT, Closed, ProtocolError, RawWS, close_payload, frame, http_exchange,
                      request, upgrade_request, ws_connect, ws_ping)


def refused_or_503(port, raw):
    """After the signal: a 503 JSON error, or no listener at all (the process is gone)."""
    try:
        resp, closed = http_exchange(port, raw, timeout=2.0)
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, ProtocolError) as e:
        # A reset or EOF without an answer is acceptable only once the process exited.
        return f"no answer ({e})"
    assert resp.status == 503, f"after SIGTERM: {resp.describe()}"
    body = resp.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    assert resp.headers.get("connection", "").lower() == "close" and closed
    return "503"


def test_sigterm_closes_sessions_1001_and_exits_0(start_server):
    grace = 5
    srv = start_server({"--shutdown-grace": grace})
    raws = [RawWS.connect(srv.port, f"/ws/rooms/shut-{i}") for i in range(6)]

    async def library_session():
        ws = await ws_connect(srv.port, "/ws/rooms/shut-lib")
        await ws_ping(ws)
        return ws

    loop = asyncio.new_event_loop()
    try:
        lib = loop.run_until_complete(library_session())
        for ws in raws:
            ws.ping()
        srv.expect_exit = True
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        for ws in raws:
            code, before = ws.expect_close(3.0, reply=False)
            assert code == 1001, f"expected close 1001, got {code}"
            assert not [m for m in before if m.get("type") == "error"], f"error before 1001: {before!r}"
        # The sessions have not answered yet, so the process is still there.
        assert srv.alive(), "the process exited before the sessions answered the close"
        # The process is alive (checked above), so the listener must answer 503.
        assert refused_or_503(srv.port, request("GET", "/healthz")) == "503"
        assert refused_or_503(srv.port, upgrade_request("/ws/rooms/late")) == "503"
        loop.run_until_complete(asyncio.wait_for(lib.wait_closed(), 3.0))
        assert lib.close_code == 1001, lib.close_code
        t_reply = time.monotonic()
        for ws in raws:
            ws.send(frame(OP_CLOSE, close_payload(1001)))
            assert ws.expect_eof(2.0), "TCP still open after the close handshake"
            ws.close()  # as a client does once the server has closed TCP
        status = srv.wait_exit(grace + 1 - (time.monotonic() - t0))
        assert status == 0, f"exit status {status!r} (None: still running after grace + 1 s)"
        # Every session answered, so the process need not wait for the grace.
        assert time.monotonic() - t_reply < 2.0, "exit waited for the grace though every session had closed"
    finally:
        for ws in raws:
            ws.close()
        loop.close()


def test_sigterm_with_unresponsive_client_exits_within_grace(start_server):
    grace = 2
    srv = start_server({"--shutdown-grace": grace})
    silent = RawWS.connect(srv.port, "/ws/rooms/deaf")
    silent.ping()
    # It stops reading too: its receive window may fill with whatever comes.
    silent.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    half = socket.create_connection((HOST, srv.port), timeout=2)
    half.sendall(b"GET /ws/rooms/deaf HTTP/1.1\r\nHost: x\r\n")
    try:
        srv.expect_exit = True
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        status = srv.wait_exit(grace + 1)
        elapsed = time.monotonic() - t0
        assert status == 0, f"exit status {status!r} after {elapsed:.1f}s (None: still running)"
    finally:
        silent.close()
        half.close()


def test_sigint_idle_server_exits_promptly(start_server):
    srv = start_server()  # default grace 5 s
    srv.expect_exit = True
    t0 = time.monotonic()
    srv.signal(signal.SIGINT)
    status = srv.wait_exit(2.0)
    assert status == 0, f"exit status {status!r} {time.monotonic() - t0:.1f}s after SIGINT"


def test_no_message_after_shutdown_close(start_server):
    """Once the 1001 close is sent, the session answers nothing more."""
    srv = start_server({"--shutdown-grace": 3})
    ws = RawWS.connect(srv.port, "/ws/rooms/after")
    try:
        ws.ping()
        srv.expect_exit = True
        srv.signal(signal.SIGTERM)
        code, _ = ws.expect_close(3.0, reply=False)
        assert code == 1001
        ws.send(frame(OP_TEXT, b'{"type":"ping"}') + frame(OP_CLOSE, close_payload(1001)))
        frames = []
        while True:
            try:
                frames.append(ws.recv_frame(2.0))
            except (Closed, ProtocolError, OSError):  # EOF or silence ends the read
                break
        assert not [f for f in frames if f.opcode == OP_TEXT], [f.payload for f in frames]
        ws.close()
        assert srv.wait_exit(4.0) == 0
    finally:
        ws.close()
