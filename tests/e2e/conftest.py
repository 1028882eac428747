"""End-to-end harness for rollcall: the real binary, driven over loopback.

What lives here (test modules import the helpers with `from conftest import ...`):
  options/fixtures  --binary, `server` (one per module), `start_server` (per test)
  Server            starts, watches and stops one server process (by its PID only)
  frames            hand-built WebSocket frames and a parser for server frames
  HTTP              raw requests over a plain socket, including malformed ones
  RawWS             a WebSocket session on a plain socket that can send anything
  ws_connect        a well-behaved session on websockets' legacy client

Every wait is bounded (socket timeouts, loop deadlines), so a hung server turns
into a failure, never into a hung suite. Messages the rooms layer will add
(welcome, delta, sync, chat, queued) are skipped where a test waits for
something else, so the tests stay valid once rooms are served.
"""

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest
import websockets.exceptions
import websockets.legacy.client

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 10.0  # the server must answer /healthz 200 within this
STOP_GRACE_S = 7.0  # SIGTERM, then SIGKILL after this
LOG_ALARMS = ("assertion failed", "AddressSanitizer", "runtime error", "LeakSanitizer")

# --------------------------------------------------------------------------
# options and fixtures


def pytest_addoption(parser):
    parser.addoption("--binary", default="build/rollcall",
                     help="the rollcall server binary under test (default: build/rollcall)")


@pytest.fixture(scope="session")
def binary(request):
    path = os.path.abspath(request.config.getoption("--binary"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"--binary {path} is not an executable file (build it first)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("rollcall-e2e"))


@contextlib.contextmanager
def serving(binary, workdir, flags=None, anonymous=True, ctx=None):
    """A started server for a `with` block (module fixtures); stopped at the end,
    which fails if the server died, logged an alarm or did not exit 0 on SIGTERM.
    With ctx it is a TLS server (flags name its certificate), probed over https."""
    srv = Server(binary, workdir, flags=flags, anonymous=anonymous)
    srv.start(wait=False)
    try:
        srv.wait_healthy(ctx=ctx)
        yield srv
    finally:
        srv.stop()
    problem = srv.problem()
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="module")
def server(binary, workdir):
    """The module's server with the default flags (anonymous, 2 threads)."""
    with serving(binary, workdir) as srv:
        yield srv


@pytest.fixture
def start_server(binary, workdir):
    """A factory for servers with other flags; each is stopped after the test."""
    started = []

    def start(flags=None, anonymous=True, env=None, wait=True, port=None):
        srv = Server(binary, workdir, flags=flags, anonymous=anonymous, env=env, port=port)
        started.append(srv)
        srv.start(wait=wait)
        return srv

    yield start
    for srv in started:
        srv.stop()
    problems = [p for p in (srv.problem() for srv in started) if p]
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _watch_servers():
    """After every test: no server died unexpectedly or logged a sanitizer or
    assertion report, so a failure is pinned on the test that caused it."""
    yield
    problems = []
    for srv in list(Server.live):
        problem = srv.problem()
        if problem:
            problems.append(problem)
            srv.reported = True  # one report per server
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# the server process


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def clean_env(extra=None):
    """The test runner's environment without ROLLCALL_* variables, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLCALL_")}
    env.update(extra or {})
    return env


class Server:
    """One server process, killed by its own PID only."""

    live = set()  # servers started and not yet stopped

    def __init__(self, binary, workdir, flags=None, anonymous=True, env=None, port=None):
        self.binary = binary
        self.port = port or free_port()
        self.data_dir = tempfile.mkdtemp(prefix="data-", dir=workdir)
        self.log_path = os.path.join(self.data_dir, "server.log")
        merged = {"--port": str(self.port), "--bind": HOST, "--threads": "2",
                  "--data-dir": self.data_dir}
        for key, value in (flags or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = str(value)
        self.args = [binary]
        for key, value in merged.items():
            self.args += [key] if value == "" else [key, value]
        if anonymous:
            self.args.append("--allow-anonymous")
        self.env = clean_env(env)
        self.proc = None
        self.expect_exit = False  # set by tests that end the process themselves
        self.stop_problem = ""
        self.reported = False

    def start(self, wait=True):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env,
                                         cwd=self.data_dir, start_new_session=True)
        Server.live.add(self)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=STARTUP_TIMEOUT_S, ctx=None):
        """Until /healthz answers 200 (over https, verified with ctx, for a TLS server); returns
        self. Fails the test if the process exits first or the timeout passes."""
        import ssl
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{'TLS ' if ctx else ''}server exited with status {self.proc.returncode} "
                            f"before /healthz answered 200; log: {self.log_tail()}", pytrace=False)
            try:
                if ctx is None:
                    resp = http_get(self.port, "/healthz", timeout=1.0)
                else:
                    resp = https_get(self.port, ctx, "/healthz", timeout=1.0)
                if resp.status == 200:
                    return self
                last = f"HTTP {resp.status}"
            except (OSError, ssl.SSLError, ProtocolError) as e:
                last = f"{e.__class__.__name__}: {e}"
            time.sleep(0.05)
        pytest.fail(f"/healthz{' over TLS' if ctx else ''} did not answer 200 within {timeout:.0f}s "
                    f"(last: {last}); log: {self.log_tail()}", pytrace=False)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """The exit status, or None if the process still runs after timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then SIGKILL if the process has not ended within STOP_GRACE_S."""
        if self.proc is None:
            return
        if self.alive():
            self.expect_exit = True
            self.signal(signal.SIGTERM)
            status = self.wait_exit(STOP_GRACE_S)
            if status is None:
                self.stop_problem = f"did not exit within {STOP_GRACE_S:.0f}s of SIGTERM (killed)"
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait_exit(5.0)
            elif status != 0:
                self.stop_problem = f"exited with status {status} after SIGTERM"
        Server.live.discard(self)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=8):
        tail = [line for line in self.log_text().splitlines() if line.strip()][-lines:]
        return " | ".join(tail) if tail else "(empty log)"

    def problem(self):
        """Why this server's run is a failure, or "" (each server is reported once)."""
        if self.reported or self.proc is None:
            return ""
        text = self.log_text()
        for alarm in LOG_ALARMS:
            if alarm in text:
                at = text.index(alarm)
                return f"server on port {self.port} logged {alarm!r}: {text[max(0, at - 200):at + 600]!r}"
        if not self.expect_exit and self.proc.poll() is not None:
            return (f"server on port {self.port} died unexpectedly (status {self.proc.returncode}); "
                    f"log: {self.log_tail()}")
        if self.stop_problem:
            return f"server on port {self.port} {self.stop_problem}; log: {self.log_tail()}"
        return ""

    def check(self):
        """Fails the calling test (not its teardown) if the server died or logged an alarm."""
        problem = self.problem()
        self.reported = True
        assert not problem, problem

    def healthz(self):
        resp = http_get(self.port, "/healthz")
        assert resp.status == 200, f"/healthz: {resp.describe()}"
        return resp.json()


# --------------------------------------------------------------------------
# WebSocket frames (RFC 6455 section 5)

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(client_key):
    digest = hashlib.sha1((client_key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def mask_bytes(payload, key):
    n = len(payload)
    if n == 0:
        return b""
    stream = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", *, fin=True, mask=True, rsv=0, length=None):
    """One frame exactly as asked; `length` overrides the declared payload length."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    first = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", first, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_bytes(payload, key)


def text_frame(obj, **kw):
    data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    return frame(OP_TEXT, data, **kw)


def close_payload(code, reason=""):
    return struct.pack("!H", code) + reason.encode("utf-8")


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes
    masked: bool
    rsv: int

    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def json(self):
        return json.loads(self.payload.decode("utf-8"))


def parse_frame(buf):
    """(Frame, bytes used) for the first complete frame in buf, or None."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n, pos = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack_from("!H", buf, 2)[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
    masked = bool(b1 & 0x80)
    key = None
    if masked:
        if len(buf) < pos + 4:
            return None
        key, pos = bytes(buf[pos:pos + 4]), pos + 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos:pos + n])
    if masked:
        payload = mask_bytes(payload, key)
    return Frame(bool(b0 & 0x80), b0 & 0x0F, payload, masked, (b0 >> 4) & 0x7), pos + n


# --------------------------------------------------------------------------
# raw HTTP


class ProtocolError(Exception):
    """The server's bytes did not arrive as expected (closed early, timed out, malformed)."""


@dataclass
class Response:
    status: int
    headers: dict  # lower-case name -> value
    body: bytes

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise AssertionError(f"HTTP {self.status} body is not JSON: {self.body[:200]!r}")

    def describe(self):
        return f"HTTP {self.status} {self.body[:200]!r}"


def recv_some(sock, deadline, size=65536):
    """Bytes from sock before the deadline; b"" at EOF (or reset); ProtocolError on timeout."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ProtocolError("timed out")
    sock.settimeout(remaining)
    try:
        return sock.recv(size)
    except socket.timeout:
        raise ProtocolError("timed out")
    except ConnectionResetError:
        return b""


def read_response(sock, buf, deadline):
    """One HTTP response from sock; buf holds bytes already read and keeps the
    ones after the response (a bytearray, modified in place)."""
    while b"\r\n\r\n" not in buf:
        data = recv_some(sock, deadline)
        if not data:
            raise ProtocolError(f"connection closed before a complete response head: {bytes(buf)[:200]!r}")
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    m = re.match(r"^HTTP/1\.1 (\d{3}) .*$", lines[0])
    if not m:
        raise ProtocolError(f"bad status line {lines[0]!r}")
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"response header without colon: {line!r}")
        headers[name.strip().lower()] = value.strip()
    body = bytearray(rest)
    if status == 101:
        length = 0
    elif "content-length" in headers:
        length = int(headers["content-length"])
        while len(body) < length:
            data = recv_some(sock, deadline)
            if not data:
                raise ProtocolError(f"body shorter than Content-Length {length}: {bytes(body)!r}")
            body += data
    else:
        raise ProtocolError(f"HTTP {status} without Content-Length")
    buf[:] = body[length:]
    return Response(status, headers, bytes(body[:length]))


def http_exchange(port, raw, timeout=5.0):
    """Send raw bytes (send errors ignored: the server may answer early), return
    (response, whether the server then closed the connection)."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_answer(sock, deadline)


def read_answer(sock, deadline):
    """The next response on sock and whether the server then closed the connection (looked
    for, up to 2 s, only when the response says Connection: close)."""
    buf = bytearray()
    resp = read_response(sock, buf, deadline)
    closed = False
    if resp.headers.get("connection", "").lower() == "close":
        closed = wait_eof(sock, min(deadline, time.monotonic() + 2.0))
    return resp, closed


def wait_eof(sock, deadline):
    """True when the peer closes the connection before the deadline."""
    try:
        while True:
            if not recv_some(sock, deadline):
                return True
    except ProtocolError:
        return False


def request(method, path, headers=(), version="HTTP/1.1", close=True):
    lines = [f"{method} {path} {version}", f"Host: {HOST}"]
    if close:
        lines.append("Connection: close")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def http_get(port, path, headers=(), timeout=5.0):
    return http_exchange(port, request("GET", path, headers), timeout)[0]


def upgrade_headers(key=None):
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key or base64.b64encode(os.urandom(16)).decode("ascii")),
            ("Sec-WebSocket-Version", "13")]


def upgrade_request(path, headers=(), key=None):
    return request("GET", path, list(upgrade_headers(key)) + list(headers), close=False)


_room_counter = itertools.count(1)


def unique_room(prefix="room"):
    """A room name no other test uses (rooms keep state between tests once served)."""
    return f"{prefix}-{next(_room_counter)}-{os.urandom(3).hex()}"


def room_path(room, **query):
    from urllib.parse import urlencode
    return f"/ws/rooms/{room}" + ("?" + urlencode(query) if query else "")


def check_error(resp, status, closed=None):
    """PROTOCOL 1: an error answer has a JSON body {"error","message"} and Connection: close."""
    assert resp.status == status, f"expected HTTP {status}, got {resp.describe()}"
    body = resp.json()
    assert isinstance(body, dict), f"error body is not an object: {body!r}"
    assert isinstance(body.get("error"), str) and body["error"], f"no string 'error': {body!r}"
    assert isinstance(body.get("message"), str) and body["message"], f"no string 'message': {body!r}"
    assert resp.headers.get("connection", "").lower() == "close", \
        f"HTTP {status} without 'Connection: close': {resp.headers!r}"
    assert resp.headers.get("content-type", "").startswith("application/json"), \
        f"HTTP {status} body not declared JSON: {resp.headers.get('content-type')!r}"
    if closed is not None:
        assert closed, f"HTTP {status}: the server did not close the connection after the answer"
    return body


# --------------------------------------------------------------------------
# RawWS: a WebSocket session on a plain socket

# Server messages the rooms layer sends on its own; skipped while waiting for others.
UNSOLICITED = ("welcome", "delta", "sync", "chat", "queued")


class Closed(Exception):
    """The server sent a close frame (code set) or dropped TCP (code None)."""

    def __init__(self, code, how):
        super().__init__(f"closed by the server ({how}, code {code})")
        self.code = code


class RawWS:
    def __init__(self, sock, leftover, response):
        self.sock = sock
        self.buf = bytearray(leftover)
        self.response = response
        self.auto_pong = True
        self.close_sent = False
        self.frames = []  # every frame received, in order

    @classmethod
    def connect(cls, port, path="/ws/rooms/lobby", headers=(), timeout=5.0, key=None, extra=b""):
        """Upgrade (with `extra` bytes sent in the same write as the request head)."""
        key = key or base64.b64encode(os.urandom(16)).decode("ascii")
        deadline = time.monotonic() + timeout
        sock = socket.create_connection((HOST, port), timeout=timeout)
        try:
            sock.sendall(upgrade_request(path, headers, key) + extra)
            buf = bytearray()
            resp = read_response(sock, buf, deadline)
            assert resp.status == 101, f"upgrade of {path} refused: {resp.describe()}"
            assert resp.headers.get("sec-websocket-accept") == accept_key(key), \
                f"bad Sec-WebSocket-Accept {resp.headers.get('sec-websocket-accept')!r} for key {key!r}"
            assert resp.headers.get("upgrade", "").lower() == "websocket", f"101 without Upgrade: {resp.headers}"
            return cls(sock, buf, resp)
        except BaseException:
            sock.close()
            raise

    def close(self, polite=True):
        """Ends the session; polite sends a close frame first (unless one was
        sent already), so the rooms layer sees a client close, not a drop."""
        if polite and not self.close_sent:
            try:
                self.sock.settimeout(0.5)
                self.sock.sendall(frame(OP_CLOSE, close_payload(1000)))
            except OSError:
                pass
        self.close_sent = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.settimeout(5.0)
        self.sock.sendall(data)
        if parse_frame(data) and data[0] & 0x0F == OP_CLOSE:
            self.close_sent = True

    def send_json(self, obj):
        self.send(text_frame(obj))

    def recv_frame(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            parsed = parse_frame(self.buf)
            if parsed:
                fr, used = parsed
                del self.buf[:used]
                assert not fr.masked, "the server sent a masked frame"
                assert fr.rsv == 0, f"the server sent RSV bits {fr.rsv}"
                self.frames.append(fr)
                return fr
            try:
                data = recv_some(self.sock, deadline)
            except ProtocolError:
                raise ProtocolError(f"no frame from the server within {timeout:.1f}s")
            if not data:
                raise Closed(None, "TCP closed without a close frame")
            self.buf += data

    def recv_json(self, timeout=3.0):
        """The next data message as a dict (control frames handled, pings answered)."""
        deadline = time.monotonic() + timeout
        while True:
            fr = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if fr.opcode == OP_PING:
                if self.auto_pong:
                    self.send(frame(OP_PONG, fr.payload))
                continue
            if fr.opcode == OP_PONG:
                continue
            if fr.opcode == OP_CLOSE:
                raise Closed(fr.close_code(), "close frame")
            assert fr.opcode == OP_TEXT and fr.fin, f"server sent opcode {fr.opcode} fin {fr.fin}"
            msg = fr.json()
            assert isinstance(msg, dict) and isinstance(msg.get("type"), str), f"bad message {msg!r}"
            return msg

    def expect(self, kind, timeout=3.0, skip=UNSOLICITED):
        """The next message of type `kind`, skipping the rooms layer's own messages."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProtocolError(f"no {kind!r} message within {timeout:.1f}s")
            msg = self.recv_json(remaining)
            if msg["type"] == kind:
                return msg
            assert msg["type"] in skip, f"expected a {kind!r} message, got {msg!r}"

    def ping(self, timeout=3.0):
        """App-level ping -> pong: proves the session is open and answering."""
        self.send_json({"type": "ping"})
        pong = self.expect("pong", timeout)
        assert isinstance(pong.get("ts"), int) and not isinstance(pong["ts"], bool), f"bad pong {pong!r}"
        return pong

    def expect_close(self, timeout=3.0, reply=True):
        """Read until the server's close frame; returns (code, data messages before it).
        The close is echoed (reply) and then the server must close TCP."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            try:
                fr = self.recv_frame(max(0.0, deadline - time.monotonic()))
            except Closed:
                raise AssertionError(f"the server dropped TCP without a close frame (after {before!r})")
            except ProtocolError:
                raise AssertionError(f"no close frame within {timeout:.1f}s (got {before!r})")
            if fr.opcode == OP_TEXT:
                before.append(fr.json())
            elif fr.opcode == OP_CLOSE:
                break
        code = fr.close_code()
        if reply:
            try:
                self.send(frame(OP_CLOSE, close_payload(code) if code else b""))
            except OSError:
                pass
        self.close_sent = True  # no close frame after the server's one unless asked
        return code, before

    def expect_eof(self, timeout=3.0):
        """True when the server closes TCP within timeout (frames are skipped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.recv_frame(max(0.01, deadline - time.monotonic()))
            except Closed:
                return True
            except (ProtocolError, OSError):
                return False
        return False


# --------------------------------------------------------------------------
# well-behaved sessions on websockets' legacy client (use inside asyncio.run)


async def ws_connect(port, path="/ws/rooms/lobby", **kw):
    kw.setdefault("ping_interval", None)
    return await asyncio.wait_for(
        websockets.legacy.client.connect(f"ws://{HOST}:{port}{path}", open_timeout=5, close_timeout=2,
                                         max_size=None, compression=None, **kw),
        6.0)


async def ws_next(ws, deadline):
    """The next JSON message on a library session (ws or wss), or None once the deadline
    (time.monotonic()) has passed without one."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    try:
        text = await asyncio.wait_for(ws.recv(), remaining)
    except asyncio.TimeoutError:
        return None
    assert isinstance(text, str), "the server sent a binary message"
    return json.loads(text)


async def ws_expect(ws, kind, timeout=3.0, skip=UNSOLICITED):
    """The next message of type `kind` on a library session."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws_next(ws, deadline)
        if msg is None:
            raise ProtocolError(f"no {kind!r} message within {timeout:.1f}s")
        if msg.get("type") == kind:
            return msg
        assert msg.get("type") in skip, f"expected a {kind!r} message, got {msg!r}"


async def ws_ping(ws, timeout=3.0):
    await ws.send(json.dumps({"type": "ping"}))
    return await ws_expect(ws, "pong", timeout)


def now_ms():
    return int(time.time() * 1000)


def sigterm_expect_1001(srv, raws, reply):
    """Pings every raw session, sends the server SIGTERM (its exit is expected from then on)
    and checks that each raw session gets close 1001 with no error before it, answering the
    close when reply is true. Returns the monotonic time of the signal."""
    for ws in raws:
        ws.ping()
    srv.expect_exit = True
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    for ws in raws:
        code, before = ws.expect_close(3.0, reply=reply)
        assert code == 1001, f"expected close 1001, got {code}"
        assert not [m for m in before if m.get("type") == "error"], f"error before 1001: {before!r}"
    return t0


def wait_until(pred, timeout, interval=0.05):
    """Polls pred() until it is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# TLS (https/wss): a server started with --tls-cert/--tls-key speaks only TLS
# on its port, so it is started with wait=False and probed with
# wait_healthy_tls instead of the plaintext /healthz of Server.start.

TLS_HOSTNAME = "localhost"  # the name scripts/make-cert.sh puts in the certificate


def make_tls_cert(out_dir):
    """(cert path, key path): a fresh self-signed EC P-256 certificate for
    localhost made by scripts/make-cert.sh."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "make-cert.sh")
    out = subprocess.run(["bash", script, "-o", out_dir, "-f"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"make-cert.sh failed: {out.stdout} {out.stderr}"
    return os.path.join(out_dir, "cert.pem"), os.path.join(out_dir, "key.pem")


def tls_client_context(cafile):
    """A client context that trusts only `cafile` and checks the host name."""
    import ssl
    return ssl.create_default_context(cafile=cafile)


def tls_flags(cert, flags=None):
    """Server flags that turn TLS on with `cert` = (cert path, key path)."""
    return {"--tls-cert": cert[0], "--tls-key": cert[1], **(flags or {})}


def tls_connect(port, ctx, timeout=5.0):
    """A TLS socket to the server with the handshake done (verified as localhost)."""
    raw = socket.create_connection((HOST, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=TLS_HOSTNAME)
    except BaseException:
        raw.close()
        raise


def https_exchange(port, ctx, raw, timeout=5.0):
    """http_exchange over TLS: (response, whether the server then closed the connection)."""
    deadline = time.monotonic() + timeout
    with tls_connect(port, ctx, timeout) as sock:
        sock.sendall(raw)
        return read_answer(sock, deadline)


def https_get(port, ctx, path, headers=(), timeout=5.0):
    return https_exchange(port, ctx, request("GET", path, headers), timeout)[0]


def wait_healthy_tls(srv, ctx, timeout=STARTUP_TIMEOUT_S):
    """Server.wait_healthy for a TLS server: /healthz 200 over https. Returns srv."""
    return srv.wait_healthy(timeout, ctx=ctx)


def tls_serving(binary, workdir, cert, ctx, flags=None, anonymous=True):
    """serving() for a TLS server (module fixtures)."""
    return serving(binary, workdir, tls_flags(cert, flags), anonymous, ctx)


def tls_raw_ws(port, ctx, path="/ws/rooms/lobby", headers=(), timeout=5.0):
    """RawWS.connect over TLS: a WebSocket session on a TLS socket that can send any bytes."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    deadline = time.monotonic() + timeout
    sock = tls_connect(port, ctx, timeout)
    try:
        sock.sendall(upgrade_request(path, headers, key))
        buf = bytearray()
        resp = read_response(sock, buf, deadline)
        assert resp.status == 101, f"upgrade of {path} over TLS refused: {resp.describe()}"
        assert resp.headers.get("sec-websocket-accept") == accept_key(key), resp.headers
        return RawWS(sock, buf, resp)
    except BaseException:
        sock.close()
        raise


async def wss_connect(port, ctx, path="/ws/rooms/lobby", **kw):
    """ws_connect over TLS (wss://localhost, verified with ctx, connected to HOST)."""
    kw.setdefault("ping_interval", None)
    return await asyncio.wait_for(
        websockets.legacy.client.connect(f"wss://{TLS_HOSTNAME}:{port}{path}", ssl=ctx, host=HOST,
                                         server_hostname=TLS_HOSTNAME, open_timeout=5, close_timeout=2,
                                         max_size=None, compression=None, **kw),
        6.0)
