"""PROTOCOL 3.1 and 3.3: welcome, joins and leaves, devices, rooms on
different shards, room capacity and its queue.

This file also holds the helpers shared by test_presence, test_chat,
test_durability and test_auth (`from test_rooms import ...`): a member's
session (`Peer`) that rebuilds the room model from welcome/delta/sync, JWTs
built with hmac/hashlib, and per-shard metrics.
"""

import base64
import hashlib
import hmac
import itertools
import json
import math
import os
import re
import socket
import time

import pytest

from conftest import (HOST, Closed, ProtocolError, RawWS, accept_key, http_get, read_response,
                      room_path, serving, unique_room, upgrade_request)

# --------------------------------------------------------------------------
# helpers shared by the H12 files

ROLES = ("student", "teacher")
STATUSES = ("online", "idle", "away", "busy")
MEMBER_FIELDS = {"user_id", "name", "role", "x", "y", "emoji", "hand", "hand_at", "status",
                 "status_text", "devices", "connected"}
_uid_counter = itertools.count(1)


def uid(prefix="u"):
    """A user id no other test uses."""
    return f"{prefix}{next(_uid_counter)}-{os.urandom(2).hex()}"


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_member(m, where="member"):
    """Every field of a member (PROTOCOL 3.1) with its type and range."""
    assert isinstance(m, dict) and set(m) == MEMBER_FIELDS, f"{where}: fields {sorted(m)}: {m!r}"
    for key in ("user_id", "name", "emoji", "status_text"):
        assert isinstance(m[key], str), f"{where}.{key}: {m!r}"
    for key in ("x", "y"):
        assert isinstance(m[key], (int, float)) and not isinstance(m[key], bool), f"{where}.{key}: {m!r}"
        assert math.isfinite(m[key]) and 0 <= m[key] <= 1, f"{where}.{key}: {m!r}"
    assert isinstance(m["hand"], bool) and isinstance(m["connected"], bool), m
    assert is_int(m["hand_at"]) and (m["hand_at"] > 0) == m["hand"], f"{where}: hand/hand_at {m!r}"
    assert is_int(m["devices"]) and m["devices"] >= (1 if m["connected"] else 0), f"{where}: {m!r}"
    assert m["role"] in ROLES and m["status"] in STATUSES, f"{where}: {m!r}"
    return m


# ---- JWT (HS256 by hand)

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims, secret, alg="HS256"):
    dump = lambda obj: json.dumps(obj, separators=(",", ":")).encode("utf-8")  # noqa: E731
    signing_input = b64url(dump({"alg": alg, "typ": "JWT"})) + "." + b64url(dump(claims))
    sig = b"" if alg == "none" else hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def claims(sub, rooms=("*",), exp_in=3600, **extra):
    out = {"sub": sub, "exp": int(time.time()) + exp_in, "rooms": list(rooms)}
    out.update(extra)
    return out


def write_secret(workdir, name="jwt.secret"):
    """A fresh JWT secret file (with a trailing newline the server strips); returns (path, bytes)."""
    secret = ("h12-" + os.urandom(12).hex()).encode("ascii")
    path = os.path.join(workdir, f"{name}-{os.urandom(3).hex()}")
    with open(path, "wb") as f:
        f.write(secret + b"\n")
    return path, secret


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


# ---- metrics

def shard_gauge(port, name):
    """{shard index: value} of a per-shard metric family."""
    resp = http_get(port, "/metrics")
    assert resp.status == 200, resp.describe()
    out = {}
    for line in resp.body.decode("utf-8").splitlines():
        m = re.match(rf'^{name}\{{shard="(\d+)"\}} (\d+)$', line)
        if m:
            out[int(m.group(1))] = int(m.group(2))
    assert out, f"no {name} in /metrics"
    return out


# ---- sessions

class Rejected(AssertionError):
    """The upgrade was answered with something else than 101."""

    def __init__(self, resp):
        super().__init__(f"upgrade refused: {resp.describe()}")
        self.resp = resp


def raw_connect(port, path, headers=(), rcvbuf=None, mss=None, timeout=5.0):
    """Like RawWS.connect, with an optional SO_RCVBUF and TCP_MAXSEG set before
    connecting (a small MSS keeps the server's send buffer small: the kernel
    sizes it from the MSS, up to megabytes on loopback otherwise)."""
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        sock.settimeout(timeout)
        sock.connect((HOST, port))
        sock.sendall(upgrade_request(path, headers, key))
        buf = bytearray()
        resp = read_response(sock, buf, deadline)
        if resp.status != 101:
            raise Rejected(resp)
        assert resp.headers.get("sec-websocket-accept") == accept_key(key), resp.headers
        return RawWS(sock, buf, resp)
    except BaseException:
        sock.close()
        raise


def upgrade_status(port, path, headers=()):
    """The HTTP status an upgrade gets (101 sessions are closed politely at once)."""
    try:
        ws = raw_connect(port, path, headers)
    except Rejected as e:
        body = e.resp.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
        return e.resp.status
    ws.close()
    return 101


class Peer:
    """One session of a member: sends client messages, reads server messages
    (answering pings) and keeps the room model it rebuilds from welcome,
    delta and sync. Every message is kept with its arrival time."""

    def __init__(self, port, room, user=None, name=None, token=None, headers=(), welcome=True,
                 rcvbuf=None, mss=None, **query):
        if user is not None:
            query["user_id"] = user
        if name is not None:
            query["name"] = name
        hdrs = list(headers) + (bearer(token) if token else [])
        self.room = room
        self.ws = raw_connect(port, room_path(room, **query), hdrs, rcvbuf, mss)
        self.log = []  # (monotonic time, message)
        self.members = {}
        self.welcome = None
        self.closed_code = "open"
        if welcome:
            first = self.next(5.0)
            assert first["type"] == "welcome", f"first message is not a welcome: {first!r}"

    @property
    def user_id(self):
        return self.welcome["user_id"]

    @property
    def msgs(self):
        return [m for _, m in self.log]

    def me(self):
        return self.members.get(self.user_id)

    # ---- receiving

    def apply(self, msg):
        kind = msg["type"]
        if kind in ("welcome", "sync"):
            assert isinstance(msg.get("members"), list), msg
            self.members = {m["user_id"]: dict(m) for m in msg["members"]}
            if kind == "welcome" and self.welcome is None:
                self.welcome = msg
        elif kind == "delta":
            for m in msg.get("joined", []):
                self.members[m["user_id"]] = dict(m)
            for u in msg.get("updated", []):
                assert u["user_id"] in self.members, f"update for an unknown member: {msg!r}"
                self.members[u["user_id"]].update(u)
            for gone in msg.get("left", []):
                self.members.pop(gone, None)

    def next(self, timeout=3.0):
        """The next data message (raises ProtocolError on timeout, Closed on close)."""
        try:
            msg = self.ws.recv_json(timeout)
        except Closed as e:
            self.closed_code = e.code
            raise
        self.log.append((time.monotonic(), msg))
        self.apply(msg)
        return msg

    def until(self, pred, timeout=3.0, what="a message"):
        """Reads until a message satisfies pred; returns it."""
        deadline = time.monotonic() + timeout
        start = len(self.log)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [m for _, m in self.log[start:]][-6:]
                raise AssertionError(f"{self.room}: no {what} within {timeout:.1f}s; last: {seen!r}")
            try:
                msg = self.next(remaining)
            except ProtocolError:
                continue
            if pred(msg):
                return msg

    def wait(self, cond, timeout=3.0, what="a state"):
        """Reads until cond() holds (checked before reading too, so messages
        already received count)."""
        deadline = time.monotonic() + timeout
        while not cond():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self.room}: no {what} within {timeout:.1f}s; last: {self.msgs[-4:]!r}"
            try:
                self.next(remaining)
            except ProtocolError:
                pass

    def until_model(self, pred, timeout=3.0, what="a state"):
        """Reads until pred(self.members) holds (checked before reading too)."""
        self.wait(lambda: pred(self.members), timeout, what)

    def collect(self, duration):
        """Every message arriving within `duration` seconds."""
        out = []
        deadline = time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self.next(remaining))
            except ProtocolError:
                return out

    def expect(self, kind, timeout=3.0):
        return self.until(lambda m: m["type"] == kind, timeout, f"{kind!r} message")

    def expect_error(self, code, timeout=3.0):
        err = self.until(lambda m: m["type"] == "error", timeout, f"error {code}")
        assert err.get("code") == code, f"expected error {code}, got {err!r}"
        assert isinstance(err.get("message"), str) and err["message"], err
        return err

    # ---- sending

    def send(self, obj):
        self.ws.send_json(obj)

    def presence(self, **fields):
        self.send({"type": "presence", **fields})

    def chat(self, text, client_id=None):
        msg = {"type": "chat", "text": text}
        if client_id is not None:
            msg["client_id"] = client_id
        self.send(msg)

    def ping(self, timeout=3.0):
        """JSON ping -> pong (other messages on the way are kept): the session is alive."""
        self.send({"type": "ping"})
        pong = self.expect("pong", timeout)
        assert is_int(pong.get("ts")), pong
        return pong

    def sync(self, timeout=3.0):
        self.send({"type": "sync"})
        return self.expect("sync", timeout)

    def close(self):
        """A client close frame first: the member leaves at once."""
        self.ws.close(polite=True)

    def drop(self):
        """TCP gone without a close frame (reset): a network drop for the server."""
        try:
            self.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.ws.close(polite=False)


def joined(msg, user):
    if msg.get("type") != "delta":
        return None
    return next((m for m in msg.get("joined", []) if m["user_id"] == user), None)


def updated(msg, user):
    if msg.get("type") != "delta":
        return None
    return next((m for m in msg.get("updated", []) if m["user_id"] == user), None)


def left(msg, user):
    return msg.get("type") == "delta" and user in msg.get("left", [])


def deltas(msgs):
    return [m for m in msgs if m["type"] == "delta"]


def close_all(*peers):
    for p in peers:
        try:
            p.close()
        except OSError:
            pass


def settled_pair(port, room=None, **kw):
    """A and B in a fresh room, with B's join seen by A (later changes are in later deltas)."""
    room = room or unique_room("pair")
    a = Peer(port, room, user=uid("a"), **kw)
    b = Peer(port, room, user=uid("b"), **kw)
    a.until(lambda m: joined(m, b.user_id), 3.0, f"{b.user_id} joined")
    b.until_model(lambda ms: a.user_id in ms and b.user_id in ms, 3.0, "both members")
    return a, b


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def secret(workdir):
    return write_secret(workdir, "rooms")


@pytest.fixture(scope="module")
def srv(binary, workdir, secret):
    """Anonymous and JWT, 2 shards, no reconnect grace (a closed member leaves)."""
    with serving(binary, workdir, flags={"--leave-grace": 0, "--jwt-secret-file": secret[0]}) as s:
        yield s


# --------------------------------------------------------------------------
# welcome, join, leave, devices


def test_welcome_shape(srv):
    room = unique_room("welcome")
    ua, ub = uid("ada"), uid("bo")
    a = Peer(srv.port, room, user=ua, name="Ada")
    b = Peer(srv.port, room, user=ub, name="Bo Ö")
    try:
        w = b.welcome
        assert set(w) == {"type", "room", "user_id", "session_id", "role", "tick_ms", "tick", "members", "chat"}, w
        assert w["room"] == room and w["user_id"] == ub and w["role"] == "student", w
        assert isinstance(w["session_id"], str) and w["session_id"], w
        assert w["session_id"] != a.welcome["session_id"], "two sessions share a session_id"
        assert w["tick_ms"] == 50, w  # the default --tick-ms
        assert is_int(w["tick"]) and w["tick"] >= 0, w
        for i, m in enumerate(w["members"]):
            check_member(m, f"welcome.members[{i}]")
        by_id = {m["user_id"]: m for m in w["members"]}
        assert sorted(by_id) == sorted([ua, ub]) and len(w["members"]) == 2, w["members"]
        me = by_id[ub]
        assert (me["name"], me["role"], me["x"], me["y"], me["emoji"], me["hand"], me["hand_at"], me["status"],
                me["status_text"], me["devices"], me["connected"]) == \
            ("Bo Ö", "student", 0, 0, "", False, 0, "online", "", 1, True), me
        assert by_id[ua]["name"] == "Ada", by_id[ua]
        chat = w["chat"]
        assert chat == {"messages": [], "last_seq": 0, "complete": True}, chat
        # The joiner itself is in the welcome of the first member too.
        assert [m["user_id"] for m in a.welcome["members"]] == [ua], a.welcome
        # Every later delta has a greater tick than the welcome (the joiner may
        # find itself in `joined` of the first one, with its final state).
        b.presence(x=0.5)
        d = b.until(lambda m: (updated(m, ub) or joined(m, ub) or {}).get("x") == 0.5, 3.0, "own update")
        assert d["tick"] > w["tick"], (w["tick"], d)
    finally:
        close_all(a, b)


def test_join_delta_carries_full_member_and_leave_is_left(srv):
    room = unique_room("join")
    a = Peer(srv.port, room, user=uid("a"))
    ub = uid("b")
    b = Peer(srv.port, room, user=ub, name="Bee")
    try:
        d = a.until(lambda m: joined(m, ub), 3.0, f"{ub} joined")
        entry = check_member(joined(d, ub), "joined entry")
        assert (entry["name"], entry["status"], entry["devices"], entry["connected"], entry["role"]) == \
            ("Bee", "online", 1, True, "student"), entry
        assert updated(d, ub) is None and not left(d, ub), d
        assert is_int(d["tick"]) and d["tick"] > a.welcome["tick"], d
        b.presence(x=0.25, emoji="🙂")
        a.until(lambda m: updated(m, ub), 3.0, "b's update")
        b.close()
        d = a.until(lambda m: left(m, ub), 3.0, f"{ub} left")
        assert joined(d, ub) is None and updated(d, ub) is None, d
        assert set(a.members) == {a.user_id}, a.members
        # A newcomer sees only a, and b can come back as a fresh member.
        b2 = Peer(srv.port, room, user=ub)
        assert sorted(m["user_id"] for m in b2.welcome["members"]) == sorted([a.user_id, ub])
        d = a.until(lambda m: joined(m, ub), 3.0, f"{ub} joined again")
        assert joined(d, ub)["x"] == 0 and joined(d, ub)["emoji"] == "", d
        b2.close()
    finally:
        close_all(a)


def test_second_device_changes_devices_only(srv):
    room = unique_room("devices")
    obs = Peer(srv.port, room, user=uid("obs"))
    u = uid("dev")
    d1 = Peer(srv.port, room, user=u, name="Dev")
    try:
        obs.until(lambda m: joined(m, u), 3.0, "first device joined")
        d1.presence(x=0.75, status="busy")
        obs.until(lambda m: updated(m, u), 3.0, "presence of the first device")
        mark = len(obs.log)
        d2 = Peer(srv.port, room, user=u, name="Other name")
        me = d2.me()
        assert me["devices"] == 2 and me["x"] == 0.75 and me["status"] == "busy" and me["name"] == "Dev", me
        assert d2.welcome["session_id"] != d1.welcome["session_id"]
        d = obs.until(lambda m: updated(m, u), 3.0, "devices update")
        assert updated(d, u) == {"user_id": u, "devices": 2}, d
        # Presence is shared: the second device moves the member.
        d2.presence(y=0.5)
        obs.until(lambda m: updated(m, u) == {"user_id": u, "y": 0.5}, 3.0, "y from the second device")
        d1.close()
        d = obs.until(lambda m: updated(m, u), 3.0, "devices back to 1")
        assert updated(d, u) == {"user_id": u, "devices": 1}, d
        assert not any(joined(m, u) or left(m, u) for m in obs.msgs[mark:]), obs.msgs[mark:]
        assert obs.members[u]["connected"] is True and obs.members[u]["devices"] == 1
        d2.close()
        obs.until(lambda m: left(m, u), 3.0, "left after the last device")
    finally:
        close_all(obs)


def test_sender_sees_its_own_change(srv):
    a, b = settled_pair(srv.port)
    try:
        a.presence(x=0.125)
        a.until(lambda m: updated(m, a.user_id) == {"user_id": a.user_id, "x": 0.125}, 3.0, "own change")
        b.until_model(lambda ms: ms[a.user_id]["x"] == 0.125, 3.0, "a's x")
        assert a.members == b.members, (a.members, b.members)
    finally:
        close_all(a, b)


# --------------------------------------------------------------------------
# shards


def test_rooms_on_different_shards_do_not_see_each_other(start_server):
    server = start_server({"--threads": 2, "--leave-grace": 0})
    by_shard = {0: [], 1: []}
    peers = []
    try:
        # Find two rooms on each shard: the per-shard room gauge shows where a room lives.
        for attempt in range(40):
            if all(len(v) >= 2 for v in by_shard.values()):
                break
            room = f"shard-probe-{attempt}-{os.urandom(2).hex()}"
            before = shard_gauge(server.port, "rollcall_rooms")
            p = Peer(server.port, room, user=uid("p"))
            peers.append(p)
            after = shard_gauge(server.port, "rollcall_rooms")
            grew = [s for s in after if after[s] == before.get(s, 0) + 1]
            assert len(grew) == 1, (before, after)
            by_shard[grew[0]].append(p)
        assert all(len(v) >= 2 for v in by_shard.values()), f"no two rooms per shard in 40 names: {by_shard}"
        chosen = by_shard[0][:2] + by_shard[1][:2]
        seconds = [Peer(server.port, p.room, user=uid("q")) for p in chosen]
        peers += seconds
        for i, (p, q) in enumerate(zip(chosen, seconds)):
            p.until(lambda m: joined(m, q.user_id), 3.0, "second member")
            p.presence(x=(i + 1) / 10)
            p.chat(f"only in {p.room}", client_id=f"c{i}")
        for i, (p, q) in enumerate(zip(chosen, seconds)):
            q.until_model(lambda ms: ms.get(p.user_id, {}).get("x") == (i + 1) / 10, 3.0, "x of the first member")
            if not any(m["type"] == "chat" for m in q.msgs):
                q.expect("chat")
            chat = next(m for m in q.msgs if m["type"] == "chat")
            assert [(c["seq"], c["text"]) for c in chat["messages"]] == [(1, f"only in {p.room}")], chat
        for p in chosen + seconds:
            p.collect(0.2)
            own = {x.user_id for x in chosen + seconds if x.room == p.room}
            assert set(p.members) == own, (p.room, p.members)
            for m in p.msgs:
                mentioned = {e["user_id"] for key in ("joined", "updated", "members") for e in m.get(key, [])}
                mentioned |= set(m.get("left", []))
                mentioned |= {c["user_id"] for c in m.get("messages", [])}
                assert mentioned <= own, f"{p.room} saw another room's users: {m!r}"
    finally:
        close_all(*peers)


# --------------------------------------------------------------------------
# capacity and the queue


def queued(peer, timeout=3.0):
    msg = peer.next(timeout)
    assert msg["type"] == "queued", f"expected a queued message, got {msg!r}"
    assert set(msg) == {"type", "position"}, msg
    return msg["position"]


def test_queued_devices_of_an_admitted_user_are_admitted_with_it(start_server):
    """A further device of a member never queues: when a user's first queued
    session is admitted, its other queued sessions come in with it, ahead of
    the rest of the queue."""
    server = start_server({"--room-capacity": 1, "--queue-capacity": 5, "--leave-grace": 0})
    port, room = server.port, unique_room("devq")
    a = Peer(port, room, user=uid("a"))
    ux, uy = uid("x"), uid("y")
    x1 = Peer(port, room, user=ux, welcome=False)
    assert queued(x1) == 1
    y = Peer(port, room, user=uy, welcome=False)
    assert queued(y) == 2
    x2 = Peer(port, room, user=ux, welcome=False)
    assert queued(x2) == 3
    peers = [x1, y, x2]
    try:
        a.close()
        w1 = x1.expect("welcome", 3.0)
        w2 = x2.expect("welcome", 3.0)
        assert w1["user_id"] == w2["user_id"] == ux
        x1.until_model(lambda ms: ux in ms and ms[ux]["devices"] == 2, 3.0, "x's second device")
        assert queued(y) == 1
        assert [m for m in y.collect(0.3) if m["type"] == "welcome"] == []
    finally:
        close_all(*peers)


def test_capacity_queue_positions_and_admission(start_server, workdir):
    path, secret = write_secret(workdir, "cap")
    server = start_server({"--room-capacity": 2, "--queue-capacity": 3, "--leave-grace": 0,
                           "--jwt-secret-file": path})
    port, room = server.port, unique_room("cap")
    u1, u2 = Peer(port, room, user=uid("m1")), Peer(port, room, user=uid("m2"))
    id3, id4, id5 = uid("w3"), uid("w4"), uid("w5")
    w3 = Peer(port, room, user=id3, welcome=False)
    w4 = Peer(port, room, user=id4, welcome=False)
    peers = [u1, u2, w3, w4]
    try:
        assert queued(w3) == 1
        assert queued(w4) == 2
        # While queued: ping answered, malformed -> BAD_REQUEST, anything else FORBIDDEN.
        w3.ping()
        w3.send({"type": "presence", "x": 3})
        w3.expect_error("BAD_REQUEST")
        for msg in ({"type": "presence", "x": 0.5}, {"type": "chat", "text": "let me in"}, {"type": "sync"}):
            w3.send(msg)
            w3.expect_error("FORBIDDEN")
        # A second device of a member never queues, even with a queue.
        u2b = Peer(port, room, user=u2.welcome["user_id"])
        peers.append(u2b)
        assert u2b.me()["devices"] == 2
        # A teacher is admitted past capacity, ahead of the queue.
        teacher = Peer(port, room, token=make_jwt(claims(uid("prof"), role="teacher"), secret))
        peers.append(teacher)
        assert teacher.welcome["role"] == "teacher" and len(teacher.welcome["members"]) == 3
        # Nobody was admitted meanwhile: w3 and w4 heard nothing new.
        assert [m["type"] for m in w3.collect(0.3)] == [] and w4.collect(0.05) == []
        # A member leaves: the first in line gets its welcome, the other moves up.
        # (The teacher counts too: 3 members for 2 places, so one leave frees nothing.)
        teacher.close()
        u1.close()
        w = w3.expect("welcome", 3.0)
        assert w["user_id"] == id3, w
        ids = sorted(m["user_id"] for m in w["members"])
        assert ids == sorted([u2.user_id, id3]), ids
        assert queued(w4) == 1
        w3.presence(x=0.5)
        u2.until_model(lambda ms: ms.get(id3, {}).get("x") == 0.5, 3.0, "the admitted member moves")
        # A newcomer queues behind w4.
        w5 = Peer(port, room, user=id5, welcome=False)
        peers.append(w5)
        assert queued(w5) == 2
        # A queued session that goes away moves the one behind it up.
        w4.close()
        assert queued(w5) == 1
        u2.close()
        u2b.close()
        w = w5.expect("welcome")
        assert w["user_id"] == id5 and sorted(m["user_id"] for m in w["members"]) == sorted([id3, id5]), w
    finally:
        close_all(*peers)


def test_queue_overflow_room_full_1013(start_server):
    server = start_server({"--room-capacity": 1, "--queue-capacity": 1, "--leave-grace": 0})
    port, room = server.port, unique_room("full")
    a = Peer(port, room, user=uid("a"))
    w = Peer(port, room, user=uid("w"), welcome=False)
    try:
        assert queued(w) == 1
        over = Peer(port, room, user=uid("over"), welcome=False)
        code, before = over.ws.expect_close(3.0)
        assert code == 1013, (code, before)
        assert len(before) == 1 and before[0].get("type") == "error" and before[0].get("code") == "ROOM_FULL", before
        assert over.ws.expect_eof(3.0), "TCP stays open after the 1013 close"
        # The queue and the room are unchanged.
        w.ping()
        a.ping()
        assert [m["user_id"] for m in a.sync()["members"]] == [a.user_id]
        assert server.healthz()["connections"] == 2
    finally:
        close_all(a, w)


def test_no_queue_at_all(start_server):
    """--queue-capacity 0: a full room refuses at once."""
    server = start_server({"--room-capacity": 1, "--queue-capacity": 0})
    room = unique_room("noqueue")
    a = Peer(server.port, room, user=uid("a"))
    try:
        over = Peer(server.port, room, user=uid("b"), welcome=False)
        code, before = over.ws.expect_close(3.0)
        assert code == 1013 and [m.get("code") for m in before] == ["ROOM_FULL"], (code, before)
        # Another device of the member still gets in.
        again = Peer(server.port, room, user=a.user_id)
        assert again.me()["devices"] == 2
        again.close()
    finally:
        close_all(a)
