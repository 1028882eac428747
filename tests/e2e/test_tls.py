"""PROTOCOL 1, 2, 3 and 7 over TLS (docs/TLS.md): the real binary with
--tls-cert/--tls-key, https and wss clients verifying a self-signed
certificate from scripts/make-cert.sh, sessions handed between shards with
their TLS state, tickets, plaintext and broken handshakes on the TLS port,
the HTTP head timeout for a silent TLS client, and shutdown over TLS."""

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import time
import warnings

import pytest
import websockets.exceptions

from conftest import (HOST, LOG_ALARMS, OP_CLOSE, OP_PING, OP_PONG, Closed, ProtocolError, check_error,
                      close_payload, frame, https_exchange, https_get, make_tls_cert, read_response, request,
                      room_path, sigterm_expect_1001, tls_client_context, tls_connect, tls_flags, tls_raw_ws,
                      tls_serving, unique_room, upgrade_request, wait_healthy_tls, wait_until, ws_next,
                      wss_connect)
from test_rooms import bearer, uid, write_secret

MAX_MESSAGE_BYTES = 65536  # the module server's --max-message-bytes: room for a ~60 KB frame
MAX_CHAT_CHARS = 60000
SUITES = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"}
CLOSED_WITHIN_S = 3.0  # a refused connection must be closed at least this fast
HEAD_TIMEOUT_S = 10.0  # rooms/app.h kHttpHeadTimeoutMs


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_tls_cert(str(tmp_path_factory.mktemp("tls-cert")))


@pytest.fixture(scope="module")
def ctx(cert):
    return tls_client_context(cert[0])


@pytest.fixture(scope="module")
def secret(workdir):
    return write_secret(workdir, "tls")


@pytest.fixture(scope="module")
def srv(binary, workdir, cert, ctx, secret):
    flags = {"--jwt-secret-file": secret[0], "--max-message-bytes": MAX_MESSAGE_BYTES,
             "--max-chat-chars": MAX_CHAT_CHARS, "--leave-grace": 0}
    with tls_serving(binary, workdir, cert, ctx, flags) as s:
        yield s


def start_tls(start_server, cert, ctx, flags=None):
    """A TLS server for one test (stopped and checked by the start_server fixture)."""
    return wait_healthy_tls(start_server(tls_flags(cert, flags), wait=False), ctx)


def healthz(port, ctx):
    resp = https_get(port, ctx, "/healthz")
    assert resp.status == 200, resp.describe()
    return resp.json()


def metric_sum(port, ctx, name):
    """The sum over shards of a per-shard counter, read from /metrics over https."""
    resp = https_get(port, ctx, "/metrics")
    assert resp.status == 200, resp.describe()
    values = [int(line.rsplit(" ", 1)[1]) for line in resp.body.decode().splitlines()
              if line.startswith(name + "{")]
    assert values, f"no {name} in /metrics"
    return sum(values)


def client_hello(min_version=None, max_version=None):
    """The bytes of a real ClientHello from Python's ssl (OpenSSL), made over memory."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated in Python's ssl
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            c.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses to offer TLS < 1.2 otherwise
            c.minimum_version = min_version
        if max_version is not None:
            c.maximum_version = max_version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = c.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[0] == 0x16 and hello[5] == 0x01, f"not a ClientHello: {hello[:8].hex()}"
    return hello


def legacy_context(version):
    """A client context limited to one old TLS version."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c.minimum_version = c.maximum_version = version
    return c


def read_until_eof(sock, timeout=CLOSED_WITHIN_S):
    """(bytes received, seconds) until the server closes (EOF or reset); fails on timeout."""
    t0 = time.monotonic()
    got = b""
    while True:
        remaining = timeout - (time.monotonic() - t0)
        assert remaining > 0, f"the server did not close the connection within {timeout:.1f}s (got {got[:40]!r})"
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            data = b""
        if not data:
            return got, time.monotonic() - t0
        got += data


def raw_send(port, data):
    """A plain TCP socket that has sent data."""
    sock = socket.create_connection((HOST, port), timeout=5.0)
    sock.sendall(data)
    return sock


def reset(sock):
    """Closes with RST instead of FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def tls_version(ws):
    return ws.transport.get_extra_info("ssl_object").version()


async def wss_until(ws, pred, timeout=3.0, what="a message"):
    """The next message satisfying pred (others are skipped)."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        msg = await ws_next(ws, deadline)
        if msg is None:
            raise AssertionError(f"no {what} within {timeout:.1f}s; last: {seen[-4:]!r}")
        seen.append(msg)
        if pred(msg):
            return msg


@contextlib.asynccontextmanager
async def wss_clients(port, ctx, room, *queries):
    """One wss session in room per query dict (room_path's query, e.g. user_id and name),
    all closed on leaving the block."""
    sessions = []
    try:
        for query in queries:
            sessions.append(await wss_connect(port, ctx, room_path(room, **query)))
        yield sessions
    finally:
        await asyncio.gather(*[ws.close() for ws in sessions])


def run_with_wss(srv, ctx, prefix, body, *queries):
    """Runs `await body(room, *sessions)` in a new room named after prefix, with the wss
    sessions of wss_clients(queries) open."""
    room = unique_room(prefix)

    async def run():
        async with wss_clients(srv.port, ctx, room, *queries) as sessions:
            await body(room, *sessions)

    asyncio.run(run())


async def wss_kind(ws, kind, timeout=3.0):
    return await wss_until(ws, lambda m: m.get("type") == kind, timeout, f"{kind!r} message")


async def wss_ping(ws, timeout=3.0):
    await ws.send(json.dumps({"type": "ping"}))
    pong = await wss_kind(ws, "pong", timeout)
    assert isinstance(pong.get("ts"), int), pong
    return pong


def sees(member_of, msg):
    """True when a welcome/sync/delta lists user `member_of` as present."""
    if msg.get("type") in ("welcome", "sync"):
        return any(m["user_id"] == member_of for m in msg.get("members", []))
    return msg.get("type") == "delta" and any(m["user_id"] == member_of for m in msg.get("joined", []))


def chat_with(client_id):
    """Predicate: a chat message carrying `client_id`."""
    return lambda m: m.get("type") == "chat" and any(c.get("client_id") == client_id for c in m["messages"])


def the_chat(msg, client_id):
    return next(c for c in msg["messages"] if c.get("client_id") == client_id)


# --------------------------------------------------------------------------
# https


def test_https_healthz_and_metrics_verified(srv, ctx):
    health = healthz(srv.port, ctx)
    assert health["status"] == "ok" and health["threads"] == 2, health
    metrics = https_get(srv.port, ctx, "/metrics")
    assert metrics.status == 200, metrics.describe()
    assert metrics.headers.get("content-type", "").startswith("text/plain"), metrics.headers
    assert b"rollcall_handoffs_total{shard=\"1\"}" in metrics.body, metrics.body[:300]
    # The handshake: TLS 1.2, one of the ECDSA suites.
    with tls_connect(srv.port, ctx) as sock:
        assert sock.version() == "TLSv1.2", sock.version()
        assert sock.cipher()[0] in SUITES, sock.cipher()
        # Keep-alive: two requests on one TLS connection, each answered whole.
        for _ in range(2):
            sock.sendall(request("GET", "/healthz", close=False))
            resp = read_response(sock, bytearray(), time.monotonic() + 3)
            assert resp.status == 200 and resp.json()["status"] == "ok", resp.describe()


def test_https_alpn_http11_even_when_h2_offered(srv, cert):
    c = tls_client_context(cert[0])
    c.set_alpn_protocols(["h2", "http/1.1"])
    with tls_connect(srv.port, c) as sock:
        assert sock.selected_alpn_protocol() == "http/1.1"


@pytest.mark.parametrize("raw,status", [
    (request("GET", "/no-such-path"), 404),
    (request("POST", "/healthz", [("Content-Length", "0")]), 405),
    (request("GET", "/ws/rooms/plain-get"), 426),
    (upgrade_request("/ws/rooms/bad%21room"), 400),
    (request("GET", "/healthz", [("X-Big", "a" * 9000)]), 431),
    (b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
], ids=["404", "405", "426", "400-room", "431", "400-request-line"])
def test_https_error_answers_intact(srv, ctx, raw, status):
    resp, closed = https_exchange(srv.port, ctx, raw)
    check_error(resp, status, closed=True)
    if status == 405:
        assert "GET" in resp.headers.get("allow", ""), resp.headers


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["tls1.0", "tls1.1"])
def test_old_tls_versions_refused(srv, ctx, version):
    # The client really offers the old version (OpenSSL 3 would refuse to at
    # its default security level, which would prove nothing).
    hello = client_hello(min_version=version, max_version=version)
    offered = (hello[9], hello[10])
    assert offered == (3, 1 if version == ssl.TLSVersion.TLSv1 else 2), hello[:12].hex()
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        with tls_connect(srv.port, legacy_context(version)) as sock:
            pytest.fail(f"the server accepted {sock.version()}")
    # Over a plain socket: no ServerHello comes back, the connection is closed.
    sock = raw_send(srv.port, hello)
    try:
        got, _ = read_until_eof(sock)
    finally:
        sock.close()
    assert not got.startswith(b"\x16"), f"the server answered with a handshake: {got[:16].hex()}"
    assert healthz(srv.port, ctx)["status"] == "ok"


def test_old_tls_version_gets_protocol_version_alert(srv):
    sock = raw_send(srv.port, client_hello(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1))
    try:
        got, _ = read_until_eof(sock)
    finally:
        sock.close()
    # An alert record: type 21, level fatal (2), description protocol_version (70).
    assert len(got) >= 7 and got[0] == 0x15 and got[5:7] == b"\x02\x46", got[:16].hex()


def memory_tls_client(port, ctx):
    """A TLS client over memory on a plain socket (so the test sees every byte
    the server sends): (socket, SSLObject, incoming BIO, outgoing BIO)."""
    sock = socket.create_connection((HOST, port), timeout=3.0)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    for _ in range(8):
        try:
            obj.do_handshake()
            sock.sendall(outgoing.read())
            return sock, obj, incoming, outgoing
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            data = sock.recv(65536)
            assert data, "the server closed the connection during the handshake"
            incoming.write(data)
    raise AssertionError("the handshake did not finish")


def test_client_close_notify_answered_with_close_notify(srv, ctx):
    sock, obj, incoming, outgoing = memory_tls_client(srv.port, ctx)
    try:
        with pytest.raises(ssl.SSLWantReadError):
            obj.unwrap()  # sends our close_notify, then waits for the server's
        sock.sendall(outgoing.read())
        got, _ = read_until_eof(sock)
    finally:
        sock.close()
    assert got[:1] == b"\x15", f"no alert record before the TCP close: {got[:16].hex()}"
    incoming.write(got)
    obj.unwrap()  # the server's close_notify completes the shutdown


# --------------------------------------------------------------------------
# wss


def test_wss_anonymous_welcome(srv, ctx):
    room = unique_room("tls-welcome")

    async def run():
        ws = await wss_connect(srv.port, ctx, room_path(room, user_id="ada", name="Ada L"))
        try:
            assert tls_version(ws) == "TLSv1.2"
            welcome = await wss_kind(ws, "welcome")
            assert welcome["room"] == room and welcome["user_id"] == "ada", welcome
            me = next(m for m in welcome["members"] if m["user_id"] == "ada")
            assert me["name"] == "Ada L" and me["connected"] is True, me
        finally:
            await ws.close()

    asyncio.run(run())


def test_wss_presence_delta_between_two_clients(srv, ctx):
    async def body(room, a, b):
        await wss_kind(a, "welcome")
        assert sees("pa", await wss_kind(b, "welcome"))
        await wss_until(a, lambda m: sees("pb", m), what="B joining")
        await b.send(json.dumps({"type": "presence", "x": 0.25, "y": 0.75, "hand": True, "emoji": "👋"}))
        upd = await wss_until(a, lambda m: m.get("type") == "delta" and any(
            u["user_id"] == "pb" and u.get("x") == 0.25 for u in m.get("updated", [])), what="B's update")
        u = next(u for u in upd["updated"] if u["user_id"] == "pb")
        assert (u["y"], u["hand"], u["emoji"]) == (0.75, True, "👋"), u

    run_with_wss(srv, ctx, "tls-presence", body, {"user_id": "pa", "name": "A"}, {"user_id": "pb", "name": "B"})


def test_wss_chat_durable_broadcast_reaches_both(srv, ctx):
    async def body(room, a, b):
        await asyncio.gather(wss_kind(a, "welcome"), wss_kind(b, "welcome"))
        await a.send(json.dumps({"type": "chat", "text": "  hello over TLS  ", "client_id": "t-1"}))
        got = await asyncio.gather(*[wss_until(ws, chat_with("t-1"), what="the chat") for ws in (a, b)])
        ma, mb = (the_chat(m, "t-1") for m in got)
        assert ma == mb, (ma, mb)
        assert (ma["text"], ma["user_id"], ma["name"]) == ("hello over TLS", "ca", "A"), ma
        assert isinstance(ma["seq"], int) and ma["seq"] >= 1, ma
        # Durable: a later joiner finds it in the welcome's history.
        c = await wss_connect(srv.port, ctx, room_path(room, user_id="cc"))
        try:
            welcome = await wss_kind(c, "welcome")
            assert ma in welcome["chat"]["messages"], welcome["chat"]
        finally:
            await c.close()

    run_with_wss(srv, ctx, "tls-chat", body, {"user_id": "ca", "name": "A"}, {"user_id": "cb", "name": "B"})


def test_wss_large_messages_cross_records(srv, ctx):
    """A 2000-character chat and a ~60 KB frame each way (several TLS records),
    intact; a message over --max-message-bytes still gets TOO_LARGE + 1009."""
    text_2000 = ("é漢🙂a" * 500)[:2000]
    text_60k = "".join(chr(0x21 + i % 90) for i in range(MAX_CHAT_CHARS))

    async def body(room, a, b):
        await asyncio.gather(wss_kind(a, "welcome"), wss_kind(b, "welcome"))
        for i, text in enumerate((text_2000, text_60k)):
            cid = f"big-{i}"
            raw = json.dumps({"type": "chat", "text": text, "client_id": cid}, ensure_ascii=False)
            assert len(raw.encode()) <= MAX_MESSAGE_BYTES
            await a.send(raw)
            got = await asyncio.gather(*[wss_until(ws, chat_with(cid), 5.0, "the big chat") for ws in (a, b)])
            for m in got:
                assert the_chat(m, cid)["text"] == text, f"{cid}: text changed on the way"
        # Client to server: a ping of exactly --max-message-bytes (unknown
        # fields are ignored) is answered; one byte more gets TOO_LARGE + 1009.
        empty = len(json.dumps({"type": "ping", "pad": ""}))
        at_limit = json.dumps({"type": "ping", "pad": "p" * (MAX_MESSAGE_BYTES - empty)})
        assert len(at_limit) == MAX_MESSAGE_BYTES
        await b.send(at_limit)
        await wss_kind(b, "pong")
        await b.send(json.dumps({"type": "ping", "pad": "x" * (MAX_MESSAGE_BYTES - empty + 1)}))
        err = await wss_kind(b, "error")
        assert err["code"] == "TOO_LARGE", err
        await asyncio.wait_for(b.wait_closed(), 3.0)
        assert b.close_code == 1009, b.close_code
        await wss_ping(a)  # the other session is unaffected

    run_with_wss(srv, ctx, "tls-large", body, {"user_id": "la"}, {"user_id": "lb"})


def test_wss_ping_pong_and_close_handshake(srv, ctx):
    room = unique_room("tls-ping")

    async def run():
        ws = await wss_connect(srv.port, ctx, room_path(room))
        await wss_kind(ws, "welcome")
        await wss_ping(ws)
        await asyncio.wait_for(await ws.ping(b"tls-ping"), 3.0)  # a WebSocket ping frame
        await ws.close()
        assert ws.close_code == 1000, ws.close_code

    asyncio.run(run())
    # The same over a raw TLS socket: the close frame is echoed, then TCP closes.
    ws = tls_raw_ws(srv.port, ctx, room_path(room))
    try:
        ws.expect("welcome")
        ws.send(frame(OP_PING, b"raw"))
        pong = ws.recv_frame()
        while pong.opcode != OP_PONG:
            pong = ws.recv_frame()
        assert pong.payload == b"raw"
        ws.send(frame(OP_CLOSE, close_payload(1000)))
        code, _ = ws.expect_close(reply=False)
        assert code == 1000
        assert ws.expect_eof(2.0), "TCP still open after the close handshake"
    finally:
        ws.close(polite=False)
    assert wait_until(lambda: healthz(srv.port, ctx)["connections"] == 0, 3.0), healthz(srv.port, ctx)


def test_wss_sessions_handed_between_shards(srv, ctx):
    """20 rooms x 2 clients on 2 shards: a session whose room lives on the other
    shard is handed over with its TLS session and works both ways."""
    rooms = [unique_room(f"tls-shard{i}") for i in range(20)]
    handoffs_before = metric_sum(srv.port, ctx, "rollcall_handoffs_total")

    async def pair(room, i):
        async with wss_clients(srv.port, ctx, room, {"user_id": f"sa{i}"}, {"user_id": f"sb{i}"}) as (a, b):
            await wss_kind(a, "welcome", 5.0)
            assert sees(f"sa{i}", await wss_kind(b, "welcome", 5.0))
            await wss_until(a, lambda m: sees(f"sb{i}", m), 5.0, f"sb{i} joining")
            # Both ways: each sees the other's presence change.
            x_a, x_b = round(0.01 * (i + 1), 2), round(0.5 + 0.01 * i, 2)
            await a.send(json.dumps({"type": "presence", "x": x_a}))
            await b.send(json.dumps({"type": "presence", "x": x_b}))
            for ws, other, x in ((b, f"sa{i}", x_a), (a, f"sb{i}", x_b)):
                await wss_until(ws, lambda m: m.get("type") == "delta" and any(
                    u["user_id"] == other and u.get("x") == x for u in m.get("updated", [])), 5.0,
                    f"{other}'s x in {room}")
            await asyncio.gather(wss_ping(a, 5.0), wss_ping(b, 5.0))
        return a.close_code, b.close_code

    async def run():
        return await asyncio.gather(*[pair(room, i) for i, room in enumerate(rooms)])

    codes = asyncio.run(run())
    assert all(c == (1000, 1000) for c in codes), codes
    handed = metric_sum(srv.port, ctx, "rollcall_handoffs_total") - handoffs_before
    assert handed > 0, "no session was handed to the other shard (the test proved nothing)"


# --------------------------------------------------------------------------
# tickets


def test_ticket_over_https_then_wss_single_use(srv, ctx, secret, binary):
    tool = os.path.join(os.path.dirname(binary), "rollcall-token")
    if not os.access(tool, os.X_OK):
        pytest.skip(f"{tool} not built")
    room = unique_room("tls-ticket")
    user = uid("tk")
    out = subprocess.run([tool, "--secret-file", secret[0], "--sub", user, "--name", "Tick Et",
                          "--rooms", room, "--ttl", "60"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    post = request("POST", "/api/tickets", bearer(token) + [("Content-Length", "0")])
    resp, _ = https_exchange(srv.port, ctx, post)
    assert resp.status == 201, resp.describe()
    ticket = resp.json()["ticket"]
    assert resp.json()["expires_in"] == 30, resp.json()
    check_error(https_exchange(srv.port, ctx, request("POST", "/api/tickets", [("Content-Length", "0")]))[0], 401)

    async def run():
        ws = await wss_connect(srv.port, ctx, room_path(room, ticket=ticket))
        try:
            welcome = await wss_kind(ws, "welcome")
            me = next(m for m in welcome["members"] if m["user_id"] == user)
            assert welcome["user_id"] == user and me["name"] == "Tick Et", welcome
        finally:
            await ws.close()
        # Single use: the same ticket again is refused.
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
            await wss_connect(srv.port, ctx, room_path(room, ticket=ticket))
        assert refused.value.status_code == 401, refused.value

    asyncio.run(run())


# --------------------------------------------------------------------------
# what is not TLS, or not a good handshake


def test_plaintext_on_tls_port_closed(srv, ctx):
    room = unique_room("tls-plain")
    ws = tls_raw_ws(srv.port, ctx, room_path(room))
    try:
        ws.expect("welcome")
        for raw in (request("GET", "/healthz"), upgrade_request(room_path(room))):
            sock = raw_send(srv.port, raw)
            try:
                got, took = read_until_eof(sock)
            finally:
                sock.close()
            assert got == b"", f"the server answered plaintext with {got[:60]!r}"
            assert took < CLOSED_WITHIN_S
            ws.ping()  # the wss session is unharmed
        assert healthz(srv.port, ctx)["status"] == "ok"
    finally:
        ws.close()


# A whole ClientHello record whose body is nonsense (version 0xffff, lengths
# that do not add up): it reaches mbedTLS, which must refuse it.
BAD_CLIENT_HELLO = b"\x16\x03\x01\x00\x40" + b"\x01\x00\x00\x3c" + b"\xff" * 60


def test_bad_handshakes_closed_others_unharmed(start_server, cert, ctx):
    """Garbage, a malformed ClientHello, no shared cipher suite, a ClientHello
    then a reset, and a client that rejects the certificate: each ends only
    that connection; the concurrent wss session keeps working; the server
    exits 0 on SIGTERM without alarms."""
    server = start_tls(start_server, cert, ctx)
    port = server.port
    hello = client_hello()
    ws = tls_raw_ws(port, ctx, room_path(unique_room("tls-bad")))
    try:
        ws.expect("welcome")
        for data in (b"\x00" + os.urandom(300), BAD_CLIENT_HELLO):
            sock = raw_send(port, data)
            try:
                read_until_eof(sock)
            finally:
                sock.close()
            ws.ping()
        # A real client with no suite in common (RSA key exchange only).
        rsa_only = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        rsa_only.check_hostname, rsa_only.verify_mode = False, ssl.CERT_NONE
        rsa_only.maximum_version = ssl.TLSVersion.TLSv1_2
        rsa_only.set_ciphers("AES128-GCM-SHA256")
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            tls_connect(port, rsa_only).close()
        ws.ping()
        # A ClientHello, the server's flight read, then a reset instead of the rest.
        sock = raw_send(port, hello)
        sock.settimeout(3.0)
        assert sock.recv(5)[:1] == b"\x16", "no ServerHello for a real ClientHello"
        reset(sock)
        ws.ping()
        # A client that does not trust the certificate aborts the handshake itself.
        untrusted = ssl.create_default_context()  # the system's CAs only
        with pytest.raises(ssl.SSLCertVerificationError):
            tls_connect(port, untrusted).close()
        ws.ping()
        assert wait_until(lambda: healthz(port, ctx)["connections"] == 1, 3.0), healthz(port, ctx)
    finally:
        ws.close()
    server.expect_exit = True
    server.signal(signal.SIGTERM)
    assert server.wait_exit(7.0) == 0, f"exit status after SIGTERM; log: {server.log_tail()}"
    log = server.log_text()
    assert not [a for a in LOG_ALARMS if a in log], log[-2000:]


def test_silent_and_truncated_clients_closed_by_head_timeout(srv, ctx):
    """A TLS client that connects and sends nothing, and one that stops in the
    middle of its ClientHello, hold a connection only until the HTTP head
    timeout (10 s); a wss session meanwhile keeps working."""
    ws = tls_raw_ws(srv.port, ctx, room_path(unique_room("tls-silent")))
    silent = socket.create_connection((HOST, srv.port), timeout=5.0)
    truncated = raw_send(srv.port, client_hello()[:40])
    t0 = time.monotonic()
    open_socks = {silent: "silent", truncated: "truncated ClientHello"}
    closed_at = {}
    try:
        ws.expect("welcome")
        while open_socks and time.monotonic() - t0 < HEAD_TIMEOUT_S + 2.5:
            ready, _, _ = select.select(list(open_socks), [], [], 1.0)
            for sock in ready:
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                assert data == b"", f"{open_socks[sock]}: the server sent {data[:40]!r}"
                closed_at[open_socks.pop(sock)] = time.monotonic() - t0
            ws.ping()
        assert not open_socks, f"still open after {HEAD_TIMEOUT_S + 2.5:.1f}s: {list(open_socks.values())}"
        for what, at in closed_at.items():
            assert at >= HEAD_TIMEOUT_S - 1.0, f"{what} closed after {at:.1f}s, before the head timeout"
    finally:
        silent.close()
        truncated.close()
        ws.close()


# --------------------------------------------------------------------------
# shutdown


def test_sigterm_closes_wss_sessions_1001(start_server, cert, ctx):
    grace = 5
    server = start_tls(start_server, cert, ctx, {"--shutdown-grace": grace})
    raws = [tls_raw_ws(server.port, ctx, room_path(f"tls-shut-{i}")) for i in range(3)]

    async def open_libs():
        libs = await asyncio.gather(*[wss_connect(server.port, ctx, room_path(f"tls-shut-lib-{i}"))
                                      for i in range(3)])
        await asyncio.gather(*[wss_ping(ws) for ws in libs])
        return libs

    async def closed(libs):
        await asyncio.wait_for(asyncio.gather(*[ws.wait_closed() for ws in libs]), 3.0)
        return [ws.close_code for ws in libs]

    loop = asyncio.new_event_loop()
    try:
        libs = loop.run_until_complete(open_libs())
        t0 = sigterm_expect_1001(server, raws, reply=True)
        for ws in raws:
            assert ws.expect_eof(2.0), "TCP still open after the close handshake"
            ws.close(polite=False)  # as a client does once the server has closed TCP
        assert loop.run_until_complete(closed(libs)) == [1001] * 3
        t_closed = time.monotonic()
        status = server.wait_exit(grace + 1 - (t_closed - t0))
        assert status == 0, f"exit status {status!r} (None: still running after grace + 1 s)"
        # Every session answered, so the process need not wait for the grace.
        assert time.monotonic() - t_closed < 2.0, "exit waited for the grace though every session had closed"
    finally:
        for ws in raws:
            ws.close(polite=False)
        loop.close()
    with pytest.raises((ConnectionRefusedError, ConnectionResetError, ssl.SSLError, ProtocolError, Closed)):
        healthz(server.port, ctx)
