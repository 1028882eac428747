"""PROTOCOL section 6: SIGTERM/SIGINT close every session with 1001 and the process exits 0."""

import asyncio
import os
import signal
import socket
import time

from conftest import (HOST, OP_CLOSE, Closed, ProtocolError, RawWS, close_payload, frame, http_exchange,
                      room_path, sigterm_expect_1001, unique_room, upgrade_request, ws_connect, ws_ping)
from conftest import request as http_request


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
        t0 = sigterm_expect_1001(srv, raws, reply=False)
        # The sessions have not answered yet, so the process is still there.
        assert srv.alive(), "the process exited before the sessions answered the close"
        # The process is alive (checked above), so the listener must answer 503.
        assert refused_or_503(srv.port, http_request("GET", "/healthz")) == "503"
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


def test_request_racing_the_signal_is_answered(start_server):
    """Connections accepted before the signal whose requests come after it (here:
    once a session got its 1001) get their 503, not a closed connection; one
    that never sends a request is closed about a second after the signal, and
    the process exits."""
    srv = start_server({"--shutdown-grace": 5})
    session = RawWS.connect(srv.port, "/ws/rooms/racing")
    early = [socket.create_connection((HOST, srv.port), timeout=3) for _ in range(4)]
    silent = socket.create_connection((HOST, srv.port), timeout=3)
    try:
        srv.healthz()  # every connection above has been accepted by now
        srv.expect_exit = True
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        code, _ = session.expect_close(3.0)
        assert code == 1001, code
        session.close(polite=False)
        for i, sock in enumerate(early):
            time.sleep(0.005 * i)
            sock.sendall(http_request("GET", "/healthz") if i % 2 == 0 else upgrade_request("/ws/rooms/late"))
        for sock in early:
            sock.settimeout(3)
            data = bytearray()
            while chunk := sock.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 503 "), f"answer to a request sent after the signal: {bytes(data)!r}"
            assert b'"error":"SHUTTING_DOWN"' in data, bytes(data)
        silent.settimeout(3)
        assert silent.recv(10) == b"", "the connection without a request was not closed"
        closed_after = time.monotonic() - t0
        assert closed_after < 2.5, f"the connection without a request closed {closed_after:.1f}s after the signal"
        status = srv.wait_exit(3.0)
        assert status == 0, f"exit status {status!r} {time.monotonic() - t0:.1f}s after SIGTERM"
    finally:
        session.close(polite=False)
        for sock in early + [silent]:
            sock.close()


def test_sigint_idle_server_exits_promptly(start_server):
    srv = start_server()  # default grace 5 s
    srv.expect_exit = True
    t0 = time.monotonic()
    srv.signal(signal.SIGINT)
    status = srv.wait_exit(2.0)
    assert status == 0, f"exit status {status!r} {time.monotonic() - t0:.1f}s after SIGINT"


def shutdown_signals_blocked(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigBlk:"))
    return all(mask & (1 << (sig - 1)) for sig in (signal.SIGINT, signal.SIGTERM))


def test_only_the_main_thread_takes_shutdown_signals(start_server):
    """Every thread but main (which waits for them in sigwait) blocks SIGINT and SIGTERM:
    a thread that did not would take the signal itself and die of it or drop it."""
    srv = start_server({"--threads": 2})
    pid = srv.proc.pid
    others = [tid for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
    assert len(others) >= 4, f"threads: {others}"  # logger, chat log, two shards
    unblocked = [tid for tid in others if not shutdown_signals_blocked(pid, tid)]
    assert not unblocked, f"threads with SIGINT/SIGTERM unblocked: {unblocked}"


def test_sigint_works_when_started_with_sigint_ignored(start_server):
    """Shells start background jobs with SIGINT ignored; an explicit SIGINT still shuts down."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the child across exec
    try:
        srv = start_server()
    finally:
        signal.signal(signal.SIGINT, old)
    srv.expect_exit = True
    srv.signal(signal.SIGINT)
    status = srv.wait_exit(2.0)
    assert status == 0, f"exit status {status!r} 2 s after SIGINT"


def drain(ws, quiet=0.3):
    """Reads (and drops) messages until the session has been quiet for `quiet` s."""
    while True:
        try:
            ws.recv_json(quiet)
        except ProtocolError:
            return


def test_nothing_after_shutdown_close(start_server):
    """Once the 1001 close is sent, the session gets nothing more (RFC 6455 5.5.1),
    even while the room changes: here another member's session ends first."""
    srv = start_server({"--shutdown-grace": 3})
    room = unique_room("closing")
    with RawWS.connect(srv.port, room_path(room, user_id="stays")) as a, \
            RawWS.connect(srv.port, room_path(room, user_id="leaves")) as b:
        drain(a)
        drain(b)
        srv.expect_exit = True
        srv.signal(signal.SIGTERM)
        code, _ = a.expect_close(3.0, reply=False)
        assert code == 1001
        code, _ = b.expect_close(3.0, reply=True)  # b's session ends: the room changes
        assert code == 1001
        late = []
        try:
            while True:
                late.append(a.recv_frame(1.0))
        except (Closed, ProtocolError, OSError):  # silence (or EOF) ends the read
            pass
        assert not late, f"frames after the close frame: {[(f.opcode, f.payload[:100]) for f in late]}"
        a.send(frame(OP_CLOSE, close_payload(1001)))
        assert a.expect_eof(3.0)
    assert srv.wait_exit(4.0) == 0


def test_queued_sessions_are_not_admitted_while_shutting_down(start_server):
    """The members' 1001 closes free places, but the queue does not move any more:
    a queued session gets its 1001 without a welcome first."""
    srv = start_server({"--room-capacity": 1, "--leave-grace": 0, "--shutdown-grace": 3})
    room = unique_room("queue-shut")
    with RawWS.connect(srv.port, room_path(room, user_id="in")) as member, \
            RawWS.connect(srv.port, room_path(room, user_id="waits")) as waiting:
        drain(member)
        assert waiting.recv_json(3.0)["type"] == "queued"
        srv.expect_exit = True
        srv.signal(signal.SIGTERM)
        assert member.expect_close(3.0)[0] == 1001
        code, before = waiting.expect_close(3.0)
        assert code == 1001
        assert not [m for m in before if m.get("type") == "welcome"], f"welcome while shutting down: {before}"
    assert srv.wait_exit(4.0) == 0


def test_sigterm_while_rooms_open_exits_cleanly(start_server):
    """SIGTERM right after sessions entered fresh rooms, while their chat state is
    still being read from the log: exit 0, nothing leaked or reported (four
    rounds, because the window is a race)."""
    for _ in range(4):
        srv = start_server()
        sessions = [RawWS.connect(srv.port, f"/ws/rooms/{unique_room('opening')}") for _ in range(8)]
        srv.expect_exit = True
        srv.signal(signal.SIGTERM)
        for ws in sessions:
            ws.close()
        status = srv.wait_exit(6.0)
        srv.check()
        assert status == 0, f"exit status {status!r} (None: still running)"
