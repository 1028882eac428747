"""PROTOCOL 2: JWT (HS256, claims, skew), no anonymous without the flag,
tickets (issue, single use, rooms, any shard, expiry with the token) and the
Origin allow-list, against a server without --allow-anonymous."""

import os
import subprocess
import time

import pytest

from conftest import check_error, http_exchange, request, room_path, serving, unique_room
from test_rooms import Peer, bearer, claims, close_all, make_jwt, upgrade_status, write_secret


@pytest.fixture(scope="module")
def secret(workdir):
    return write_secret(workdir, "auth")


@pytest.fixture(scope="module")
def srv(binary, workdir, secret):
    with serving(binary, workdir, flags={"--jwt-secret-file": secret[0], "--leave-grace": 0},
                 anonymous=False) as s:
        yield s


def tok(secret, sub, **kw):
    return make_jwt(claims(sub, **kw), secret[1])


def sub(prefix="jwt"):
    return f"{prefix}.{os.urandom(3).hex()}"


def post_ticket(port, headers=()):
    """POST /api/tickets; returns the response."""
    raw = request("POST", "/api/tickets", list(headers) + [("Content-Length", "0")])
    return http_exchange(port, raw)[0]


def ticket_for(port, token, expires_in=(30, 30)):
    resp = post_ticket(port, bearer(token))
    assert resp.status == 201, resp.describe()
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"ticket", "expires_in"}, body
    assert expires_in[0] <= body["expires_in"] <= expires_in[1], body
    assert isinstance(body["ticket"], str) and body["ticket"], body
    return body["ticket"]


# --------------------------------------------------------------------------
# JWT


def test_valid_token_identity(srv, secret):
    room = unique_room("jwt")
    teacher_id, student_id = sub("prof"), sub("kid")
    t = Peer(srv.port, room, token=tok(secret, teacher_id, rooms=[room], role="teacher", name="Prof Ng"))
    s = Peer(srv.port, room, token=tok(secret, student_id, rooms=["elsewhere", room], nbf=int(time.time()) - 5))
    try:
        assert t.welcome["user_id"] == teacher_id and t.welcome["role"] == "teacher", t.welcome
        assert t.me()["name"] == "Prof Ng" and t.me()["role"] == "teacher", t.me()
        assert s.welcome["user_id"] == student_id and s.welcome["role"] == "student", s.welcome
        assert s.me()["name"] == student_id, "without a name claim the name is the user id"
        assert s.members[teacher_id]["role"] == "teacher"
        # The room comes from the path only; a query cannot change it or the identity.
        q = Peer(srv.port, room, token=tok(secret, sub("q"), rooms=[room]), room_id="other", user_id="spoof")
        assert q.welcome["room"] == room and q.welcome["user_id"] != "spoof", q.welcome
        q.close()
    finally:
        close_all(t, s)


def test_star_covers_every_room(srv, secret):
    token = tok(secret, sub("star"), rooms=["a-room", "*"])
    for _ in range(3):
        p = Peer(srv.port, unique_room("star"), token=token)
        p.close()


def test_clock_skew_30s(srv, secret):
    room = unique_room("skew")
    now = int(time.time())
    for fields in ({"exp_in": -10}, {"nbf": now + 10}):
        assert upgrade_status(srv.port, room_path(room), bearer(tok(secret, sub(), **fields))) == 101, fields


REJECTED = [
    ("expired", 401, lambda s, room: tok(s, sub(), rooms=[room], exp_in=-120)),
    ("nbf-in-the-future", 401, lambda s, room: tok(s, sub(), rooms=[room], nbf=int(time.time()) + 300)),
    ("wrong-secret", 401, lambda s, room: tok((s[0], s[1] + b"x"), sub(), rooms=[room])),
    ("alg-none", 401, lambda s, room: make_jwt(claims(sub(), rooms=[room]), s[1], alg="none")),
    ("alg-none-no-dot", 401, lambda s, room: make_jwt(claims(sub(), rooms=[room]), s[1], alg="none")[:-1]),
    ("alg-hs512-header", 401, lambda s, room: make_jwt(claims(sub(), rooms=[room]), s[1], alg="HS512")),
    ("missing-rooms", 401, lambda s, room: make_jwt({"sub": sub(), "exp": int(time.time()) + 60}, s[1])),
    ("missing-sub", 401, lambda s, room: make_jwt({"rooms": [room], "exp": int(time.time()) + 60}, s[1])),
    ("missing-exp", 401, lambda s, room: make_jwt({"sub": sub(), "rooms": [room]}, s[1])),
    ("rooms-not-array", 401, lambda s, room: make_jwt({"sub": sub(), "exp": int(time.time()) + 60, "rooms": room},
                                                      s[1])),
    ("sub-bad-chars", 401, lambda s, room: tok(s, "a b", rooms=[room])),
    ("name-control-char", 401, lambda s, room: tok(s, sub(), rooms=[room], name="a\u0001b")),
    ("role-unknown", 401, lambda s, room: tok(s, sub(), rooms=[room], role="admin")),
    ("garbage", 401, lambda s, room: "not.a.jwt"),
    ("room-not-covered", 403, lambda s, room: tok(s, sub(), rooms=["another-room"])),
]


@pytest.mark.parametrize("make,status", [(m, st) for _, st, m in REJECTED], ids=[n for n, _, _ in REJECTED])
def test_bad_token_refused(srv, secret, make, status):
    room = unique_room("bad")
    token = make(secret, room)
    resp, closed = http_exchange(srv.port, request("GET", room_path(room), [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"), ("Authorization", f"Bearer {token}")], close=False))
    body = check_error(resp, status, closed=True)
    assert token not in body["message"], "the error echoes the credential"


def test_no_credentials_without_allow_anonymous_401(srv):
    room = unique_room("anon")
    for path in (room_path(room), room_path(room, user_id="u1", name="U")):
        assert upgrade_status(srv.port, path) == 401, path


def test_rollcall_token_tool(srv, secret, binary):
    tool = os.path.join(os.path.dirname(binary), "rollcall-token")
    if not os.access(tool, os.X_OK):
        pytest.skip(f"{tool} not built")
    room = unique_room("tool")
    out = subprocess.run([tool, "--secret-file", secret[0], "--sub", "tool.user", "--name", "Tool User",
                          "--role", "teacher", "--rooms", f"x,{room}", "--ttl", "60"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    p = Peer(srv.port, room, token=out.stdout.strip())
    try:
        assert (p.welcome["user_id"], p.welcome["role"], p.me()["name"]) == ("tool.user", "teacher", "Tool User")
    finally:
        p.close()
    # A room the tool's token does not list is refused.
    assert upgrade_status(srv.port, room_path(unique_room("tool")), bearer(out.stdout.strip())) == 403


# --------------------------------------------------------------------------
# tickets


def test_ticket_request_needs_a_good_token(srv, secret):
    check_error(post_ticket(srv.port), 401)
    check_error(post_ticket(srv.port, [("Authorization", "Basic dTpw")]), 401)
    check_error(post_ticket(srv.port, bearer(tok((None, b"wrong"), sub()))), 401)
    check_error(post_ticket(srv.port, bearer(tok(secret, sub(), exp_in=-120))), 401)
    ticket_for(srv.port, tok(secret, sub()))


def test_ticket_single_use_carries_identity(srv, secret):
    room = unique_room("ticket")
    who = sub("tk")
    ticket = ticket_for(srv.port, tok(secret, who, rooms=[room], role="teacher", name="Tee"))
    p = Peer(srv.port, room, ticket=ticket)
    try:
        assert (p.welcome["user_id"], p.welcome["role"], p.me()["name"]) == (who, "teacher", "Tee"), p.welcome
        p.presence(name="Not Tee")  # the name came with the token
        p.expect_error("BAD_REQUEST")
        assert upgrade_status(srv.port, room_path(room, ticket=ticket)) == 401, "a ticket worked twice"
    finally:
        p.close()
    assert upgrade_status(srv.port, room_path(room, ticket="A" + "b" * 30)) == 401
    assert upgrade_status(srv.port, room_path(room, ticket="")) == 401


def test_ticket_with_since_resumes_chat(srv, secret):
    room = unique_room("tsince")
    writer = Peer(srv.port, room, token=tok(secret, sub("w"), rooms=[room]))
    try:
        for i in range(3):
            writer.chat(f"line {i}")
        writer.until(lambda m: m["type"] == "chat" and m["messages"][-1]["seq"] == 3, 3.0, "three lines")
    finally:
        writer.close()
    ticket = ticket_for(srv.port, tok(secret, sub("r"), rooms=[room]))
    reader = Peer(srv.port, room, ticket=ticket, since=1)
    try:
        chat = reader.welcome["chat"]
        assert [(m["seq"], m["text"]) for m in chat["messages"]] == [(2, "line 1"), (3, "line 2")], chat
        assert chat["last_seq"] == 3 and chat["complete"] is True
    finally:
        reader.close()
    # since is checked after the credentials: a bad one is a 400.
    ticket = ticket_for(srv.port, tok(secret, sub("r"), rooms=[room]))
    assert upgrade_status(srv.port, room_path(room, ticket=ticket, since="x")) == 400


def test_ticket_for_a_room_its_token_does_not_cover_403(srv, secret):
    ticket = ticket_for(srv.port, tok(secret, sub(), rooms=["only-this-room"]))
    assert upgrade_status(srv.port, room_path(unique_room("other"), ticket=ticket)) == 403


def test_tickets_work_on_any_shard(srv, secret):
    token = tok(secret, sub("many"))
    tickets = [ticket_for(srv.port, token) for _ in range(20)]
    assert len(set(tickets)) == 20
    rooms = [unique_room("shard") for _ in tickets]
    for ticket, room in zip(tickets, rooms):
        assert upgrade_status(srv.port, room_path(room, ticket=ticket)) == 101, ticket
    for ticket, room in zip(tickets, rooms):
        assert upgrade_status(srv.port, room_path(room, ticket=ticket)) == 401, ticket


def test_ticket_expires_with_its_token(srv, secret):
    exp = int(time.time()) + 2
    token = make_jwt({"sub": sub("short"), "exp": exp, "rooms": ["*"]}, secret[1])
    ticket = ticket_for(srv.port, token, expires_in=(1, 2))  # what it really has
    time.sleep(max(0.0, exp + 0.4 - time.time()))
    assert upgrade_status(srv.port, room_path(unique_room("late"), ticket=ticket)) == 401


def test_no_ticket_from_a_token_past_its_exp(srv, secret):
    """Within the clock skew a token past its exp is still accepted, but a ticket
    traded for it would be dead on arrival: none is issued."""
    token = make_jwt({"sub": sub("skew"), "exp": int(time.time()) - 10, "rooms": ["*"]}, secret[1])
    resp = post_ticket(srv.port, bearer(token))
    assert resp.status == 401 and resp.json()["error"] == "UNAUTHORIZED", resp.describe()
    assert upgrade_status(srv.port, room_path(unique_room("skew")), bearer(token)) == 101
    ten = make_jwt({"sub": sub("ten"), "exp": int(time.time()) + 10, "rooms": ["*"]}, secret[1])
    ticket_for(srv.port, ten, expires_in=(8, 10))


# --------------------------------------------------------------------------
# Origin


def test_allowed_origins(binary, workdir, secret):
    listed = "https://school.example"
    flags = {"--jwt-secret-file": secret[0], "--allowed-origins": f"{listed},http://x.test"}
    with serving(binary, workdir, flags=flags, anonymous=False) as s:
        room = unique_room("origin")
        token = tok(secret, sub("o"))
        assert upgrade_status(s.port, room_path(room), bearer(token) + [("Origin", "https://evil.example")]) == 403
        assert upgrade_status(s.port, room_path(room), bearer(token) + [("Origin", listed)]) == 101
        assert upgrade_status(s.port, room_path(room), bearer(token)) == 101  # not a browser
        # The Origin is checked before the credentials: a refused ticket is not used up.
        ticket = ticket_for(s.port, token)
        assert upgrade_status(s.port, room_path(room, ticket=ticket), [("Origin", "https://evil.example")]) == 403
        assert upgrade_status(s.port, room_path(room, ticket=ticket), [("Origin", listed)]) == 101
