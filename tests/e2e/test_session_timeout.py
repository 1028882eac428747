"""PROTOCOL 3.3: a session with no frame for --session-timeout is closed 1001;
the server pings every min(30 s, timeout/3), so a live client stays."""

import asyncio
import threading
import time

import pytest

from conftest import OP_PING, OP_PONG, OP_TEXT, ProtocolError, RawWS, frame, serving, ws_connect, ws_ping

TIMEOUT_S = 3
WATCH_S = 5.5


@pytest.fixture(scope="module")
def timeout_server(binary, workdir):
    with serving(binary, workdir, flags={"--session-timeout": TIMEOUT_S}) as srv:
        yield srv


def silent_client(port, out):
    """Never sends a byte after the upgrade, never answers pings."""
    try:
        with RawWS.connect(port, "/ws/rooms/timeout-silent") as ws:
            t0 = time.monotonic()
            code, _ = ws.expect_close(WATCH_S + 1, reply=False)
            out["code"], out["after"] = code, time.monotonic() - t0
            out["pings"] = sum(1 for f in ws.frames if f.opcode == OP_PING)
    except Exception as e:  # noqa: BLE001 - reported by the test
        out["error"] = e


def answering_client(port, out):
    """Answers every ping frame and otherwise says nothing."""
    try:
        with RawWS.connect(port, "/ws/rooms/timeout-alive") as ws:
            deadline = time.monotonic() + WATCH_S
            pings = 0
            while time.monotonic() < deadline:
                try:
                    fr = ws.recv_frame(max(0.05, deadline - time.monotonic()))
                except ProtocolError:
                    break
                if fr.opcode == OP_PING:
                    pings += 1
                    ws.send(frame(OP_PONG, fr.payload))
                assert fr.opcode in (OP_PING, OP_TEXT), f"unexpected opcode {fr.opcode} {fr.payload!r}"
            out["pings"] = pings
            out["pong"] = ws.ping()
    except Exception as e:  # noqa: BLE001 - reported by the test
        out["error"] = e


def chatty_client(port, out):
    """Ignores ping frames but sends an app-level ping every second: frames are frames."""
    try:
        with RawWS.connect(port, "/ws/rooms/timeout-chatty") as ws:
            ws.auto_pong = False
            deadline = time.monotonic() + WATCH_S
            while time.monotonic() < deadline:
                ws.ping()
                time.sleep(1.0)
            out["pong"] = ws.ping()
    except Exception as e:  # noqa: BLE001 - reported by the test
        out["error"] = e


async def library_client(port):
    """websockets answers ping frames by itself."""
    ws = await ws_connect(port, "/ws/rooms/timeout-lib")
    try:
        await asyncio.sleep(WATCH_S)
        return await ws_ping(ws)
    finally:
        await ws.close()


def test_silent_session_closed_and_live_ones_kept(timeout_server):
    port = timeout_server.port
    results = {name: {} for name in ("silent", "answering", "chatty")}
    threads = [threading.Thread(target=fn, args=(port, results[name]))
               for name, fn in (("silent", silent_client), ("answering", answering_client),
                                ("chatty", chatty_client))]
    for t in threads:
        t.start()
    lib_pong = asyncio.run(library_client(port))
    for t in threads:
        t.join(WATCH_S + 5)

    silent = results["silent"]
    assert "error" not in silent, silent["error"]
    assert silent["code"] == 1001, silent
    assert TIMEOUT_S - 1 <= silent["after"] <= TIMEOUT_S + 2.5, f"closed after {silent['after']:.1f}s"
    assert silent["pings"] >= 1, "the server never pinged the silent session before closing it"

    answering = results["answering"]
    assert "error" not in answering, answering["error"]
    # A ping after each timeout/3 = 1 s of silence (checked once a second).
    assert answering["pings"] >= 2, f"only {answering['pings']} pings in {WATCH_S}s"
    assert answering["pong"]["type"] == "pong"

    chatty = results["chatty"]
    assert "error" not in chatty, chatty["error"]
    assert chatty["pong"]["type"] == "pong"
    assert lib_pong["type"] == "pong"
