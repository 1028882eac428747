"""PROTOCOL 3.1, 3.2, 4 and 5: chat broadcast and seq, trimming and limits,
the rate limit, history paging, chat in the welcome, since=S resume, and
chat never stored in plain text."""

import json
import os
import time

import pytest

from conftest import OP_TEXT, frame, now_ms, serving, unique_room
from test_rooms import Peer, close_all, is_int, uid

CHAT_FIELDS = {"seq", "user_id", "name", "text", "ts"}


@pytest.fixture(scope="module")
def srv(binary, workdir):
    with serving(binary, workdir, flags={"--max-chat-chars": 10, "--chat-rate": 100, "--history-on-join": 5,
                                         "--leave-grace": 0}) as s:
        yield s


def check_chat(m):
    assert CHAT_FIELDS <= set(m) <= CHAT_FIELDS | {"client_id"}, m
    assert is_int(m["seq"]) and m["seq"] >= 1, m
    assert is_int(m["ts"]) and abs(m["ts"] - now_ms()) < 60000, m
    assert all(isinstance(m[k], str) for k in ("user_id", "name", "text")), m
    return m


def chats(peer, start=0):
    """The chat messages inside every `chat` server message since log index start."""
    out = []
    for _, msg in peer.log[start:]:
        if msg["type"] == "chat":
            assert set(msg) == {"type", "messages"} and msg["messages"], msg
            out += [check_chat(m) for m in msg["messages"]]
    return out


def wait_chats(peer, count, start=0, timeout=5.0):
    peer.wait(lambda: len(chats(peer, start)) >= count, timeout, f"{count} chat messages")
    got = chats(peer, start)
    assert len(got) == count, got
    return got


def history(peer, **request):
    peer.send({"type": "history", **request})
    msg = peer.until(lambda m: m["type"] in ("history", "error"), 3.0, f"history {request}")
    assert msg["type"] == "history" and set(msg) == {"type", "messages", "complete"}, msg
    assert isinstance(msg["complete"], bool), msg
    seqs = [check_chat(m)["seq"] for m in msg["messages"]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else seqs == [], seqs
    return msg


def fill(port, room, n, tag):
    """n committed messages in a fresh room; returns them as a member received them."""
    p = Peer(port, room, user=uid("filler"), name="Filler")
    try:
        p.ws.send(b"".join(frame(OP_TEXT, json.dumps({"type": "chat", "text": f"{tag}{i}", "client_id": f"c{i}"}))
                           for i in range(1, n + 1)))
        got = wait_chats(p, n)
        assert [m["seq"] for m in got] == list(range(1, n + 1)), got
        return got
    finally:
        p.close()


# --------------------------------------------------------------------------
# broadcast


def test_broadcast_to_all_with_consecutive_seq(srv):
    room = unique_room("chat")
    a = Peer(srv.port, room, user=uid("a"), name="Ada")
    b = Peer(srv.port, room, user=uid("b"), name="Bo")
    try:
        t0 = now_ms()
        a.chat("  hi there \t\n", client_id="c-1")
        a.chat("\u20ac" * 10)  # 10 characters, 30 bytes: within --max-chat-chars 10
        wait_chats(b, 2)
        b.chat("\r\n\v\fyo\f", client_id="c" * 64)
        got_a = wait_chats(a, 3)
        got_b = wait_chats(b, 3)
        assert got_a == got_b, (got_a, got_b)
        assert [m["seq"] for m in got_a] == [1, 2, 3], got_a
        first, second, third = got_a
        assert (first["text"], first["client_id"], first["user_id"], first["name"]) == \
            ("hi there", "c-1", a.user_id, "Ada"), first
        assert second["text"] == "\u20ac" * 10 and "client_id" not in second, second
        assert (third["text"], third["client_id"], third["user_id"], third["name"]) == \
            ("yo", "c" * 64, b.user_id, "Bo"), third
        assert t0 - 1000 <= first["ts"] <= second["ts"] <= third["ts"] <= now_ms() + 1000, got_a
        # A renamed member writes under its new name.
        a.presence(name="Ada L")
        a.chat("renamed", client_id="c-4")
        m = wait_chats(b, 4)[-1]
        assert (m["seq"], m["name"], m["text"]) == (4, "Ada L", "renamed"), m
        assert b.welcome["chat"]["last_seq"] == 0
        c = Peer(srv.port, room, user=uid("c"))
        assert c.welcome["chat"]["last_seq"] == 4 and c.welcome["chat"]["messages"][-1] == m, c.welcome["chat"]
        c.close()
    finally:
        close_all(a, b)


def test_bad_chat_rejected_without_using_a_seq(srv):
    room = unique_room("badchat")
    a = Peer(srv.port, room, user=uid("a"))
    try:
        a.chat("one")
        wait_chats(a, 1)
        bad = [
            {"text": ""},
            {"text": " \t\n\r\v\f "},
            {"text": "a" * 11},
            {"text": "\u20ac" * 11},
            {"text": 5},
            {"text": None},
            {"text": "ok", "client_id": "c" * 65},
            {"text": "ok", "client_id": 7},
            {},
        ]
        for i, fields in enumerate(bad):
            ref = f"bad-{i}"
            body = {"type": "chat", **fields}
            if "client_id" not in fields:
                body["client_id"] = ref
            a.send(body)
            err = a.expect_error("BAD_REQUEST")
            if "client_id" not in fields:
                assert err.get("ref") == ref, err
        a.ping()
        a.chat("  " + "b" * 10 + "  ", client_id="edge")  # 10 characters once trimmed
        got = wait_chats(a, 2)
        assert (got[1]["seq"], got[1]["text"]) == (2, "b" * 10), got
    finally:
        close_all(a)


# --------------------------------------------------------------------------
# history, welcome and resume


def test_history_paging(srv):
    room = unique_room("paging")
    sent = fill(srv.port, room, 12, "p")
    a = Peer(srv.port, room, user=uid("reader"))
    try:
        page = history(a, limit=5)
        assert [m["seq"] for m in page["messages"]] == [8, 9, 10, 11, 12] and page["complete"] is False, page
        assert page["messages"] == sent[7:]
        page = history(a, before=8, limit=5)
        assert [m["seq"] for m in page["messages"]] == [3, 4, 5, 6, 7] and page["complete"] is False, page
        page = history(a, before=3, limit=5)
        assert [m["seq"] for m in page["messages"]] == [1, 2] and page["complete"] is True, page
        page = history(a)  # default limit 50, newest
        assert page["messages"] == sent and page["complete"] is True, page
        page = history(a, before=1)
        assert page == {"type": "history", "messages": [], "complete": True}, page
        page = history(a, before=1000, limit=200)
        assert page["messages"] == sent and page["complete"] is True
        page = history(a, before=13, limit=12)
        assert page["messages"] == sent and page["complete"] is True
    finally:
        close_all(a)


def test_welcome_carries_last_messages(srv):
    room = unique_room("wchat")
    sent = fill(srv.port, room, 8, "w")
    a = Peer(srv.port, room, user=uid("late"))
    try:
        chat = a.welcome["chat"]
        assert chat == {"messages": sent[3:], "last_seq": 8, "complete": False}, chat
        small = unique_room("wchat-small")
        few = fill(srv.port, small, 3, "s")
        b = Peer(srv.port, small, user=uid("late"))
        assert b.welcome["chat"] == {"messages": few, "last_seq": 3, "complete": True}, b.welcome["chat"]
        b.close()
    finally:
        close_all(a)


def test_since_resume(srv):
    room = unique_room("since")
    sent = fill(srv.port, room, 12, "r")
    for since in (9, 2, 0, 12, 500):  # within the welcome window, beyond it (from the log), ...
        p = Peer(srv.port, room, user=uid("resume"), since=since)
        try:
            chat = p.welcome["chat"]
            want = [m for m in sent if m["seq"] > since]
            assert chat == {"messages": want, "last_seq": len(sent), "complete": True}, (since, chat)
            if since == 2:
                # Live chat continues after the resumed part.
                p.chat("live")
                m = wait_chats(p, 1, start=1)[0]
                assert m["seq"] == 13 and m["text"] == "live", m
                sent.append(m)
        finally:
            p.close()


def test_resume_window_is_the_newest_1000(start_server):
    server = start_server({"--chat-rate": 100000, "--leave-grace": 0})
    room = unique_room("thousand")
    total = 1005
    writer = Peer(server.port, room, user=uid("w"))
    try:
        for start in range(0, total, 201):
            writer.ws.send(b"".join(frame(OP_TEXT, json.dumps({"type": "chat", "text": f"n{i}"}))
                                    for i in range(start + 1, min(total, start + 201) + 1)))
        writer.wait(lambda: len(chats(writer)) >= total, 10.0, "every message")
        assert [m["seq"] for m in chats(writer)] == list(range(1, total + 1))
    finally:
        writer.close()
    # (since, first seq expected, complete): beyond the memory of the newest
    # 200 (--history-on-join default) the messages come from the log.
    for since, first, complete in ((2, total - 999, False), (4, total - 999, False), (5, 6, True),
                                   (800, 801, True), (900, 901, True), (None, total - 199, False)):
        query = {} if since is None else {"since": since}
        p = Peer(server.port, room, user=uid("r"), **query)
        try:
            chat = p.welcome["chat"]
            seqs = [m["seq"] for m in chat["messages"]]
            assert seqs == list(range(first, total + 1)), (since, seqs[:2], seqs[-1:], len(seqs))
            assert chat["complete"] is complete and chat["last_seq"] == total, (since, chat["complete"])
            assert all(m["text"] == f"n{m['seq']}" for m in chat["messages"])
        finally:
            p.close()


def test_retention_keeps_the_newest_messages_in_log_and_memory(start_server):
    flags = {"--chat-retention": 5, "--history-on-join": 50, "--chat-rate": 100, "--leave-grace": 0}
    first = start_server(flags)
    room = unique_room("retain")
    sent = fill(first.port, room, 12, "k")
    newest = sent[7:]  # seqs 8..12
    late = Peer(first.port, room, user=uid("late"))
    try:
        # The room's memory never holds more than the log keeps, and what is
        # beyond retention is not "left out": the welcome is complete.
        chat = late.welcome["chat"]
        assert chat["messages"] == newest and chat["last_seq"] == 12 and chat["complete"] is True, chat
        # The persistence thread prunes the log on its next turns.
        deadline = time.monotonic() + 5.0
        while True:
            page = history(late, limit=200)
            if page["messages"] == newest and page["complete"] is True:
                break
            assert time.monotonic() < deadline, f"the log still holds {[m['seq'] for m in page['messages']]}"
            time.sleep(0.1)
        assert history(late, before=8) == {"type": "history", "messages": [], "complete": True}
        resumed = Peer(first.port, room, user=uid("resume"), since=2)
        assert [m["seq"] for m in resumed.welcome["chat"]["messages"]] == [8, 9, 10, 11, 12], resumed.welcome
        resumed.close()
    finally:
        close_all(late)
    first.stop()
    # After a restart the room is read back from the log: the same five, and seq goes on.
    second = start_server({**flags, "--data-dir": first.data_dir})
    again = Peer(second.port, room, user=uid("again"))
    try:
        chat = again.welcome["chat"]
        assert chat["messages"] == newest and chat["last_seq"] == 12 and chat["complete"] is True, chat
        again.chat("on")
        assert wait_chats(again, 1)[0]["seq"] == 13
    finally:
        close_all(again)


def test_welcome_shorter_than_retention_is_not_complete(start_server):
    flags = {"--chat-retention": 5, "--history-on-join": 3, "--chat-rate": 100, "--leave-grace": 0}
    server = start_server(flags)
    room = unique_room("short")
    fill(server.port, room, 12, "s")
    late = Peer(server.port, room, user=uid("late"))
    try:
        chat = late.welcome["chat"]
        assert [m["seq"] for m in chat["messages"]] == [10, 11, 12] and chat["complete"] is False, chat
        page = history(late, before=10)
        assert [m["seq"] for m in page["messages"]] == [8, 9] and page["complete"] is True, page
    finally:
        close_all(late)


# --------------------------------------------------------------------------
# the rate limit


def test_rate_limit_burst_then_refill(start_server):
    server = start_server({"--chat-rate": 5, "--leave-grace": 0})
    room = unique_room("rate")
    a = Peer(server.port, room, user=uid("a"))
    a2 = Peer(server.port, room, user=a.user_id)  # the same user, another device
    b = Peer(server.port, room, user=uid("b"))
    try:
        a.ws.send(b"".join(frame(OP_TEXT, json.dumps({"type": "chat", "text": f"m{i}", "client_id": f"q{i}"}))
                           for i in range(15)))
        rejected = lambda: [m for m in a.msgs if m["type"] == "error"]  # noqa: E731
        a.wait(lambda: len(rejected()) >= 4, 3.0, "RATE_LIMITED errors")
        # The bucket is per user and room: the other device shares it (tokens
        # come back at 5 per second: well under one since the burst).
        a2.chat("from device 2", client_id="d2")
        a2.expect_error("RATE_LIMITED")
        a.wait(lambda: len(chats(a)) + len(rejected()) >= 15, 5.0, "15 answers")
        a.collect(0.2)
        ok, errors = chats(a), rejected()
        assert all(e["code"] == "RATE_LIMITED" for e in errors), errors
        assert len(ok) + len(errors) == 15, (ok, errors)
        assert 10 <= len(ok) <= 11, f"{len(ok)} of 15 quick messages accepted with rate 5 (burst 10)"
        assert [m["text"] for m in ok] == [f"m{i}" for i in range(len(ok))], ok
        assert sorted(e["ref"] for e in errors) == sorted(f"q{i}" for i in range(len(ok), 15)), errors
        # Another user, or the same user in another room, has a bucket of its own.
        b.chat("b is fine")
        assert wait_chats(b, len(ok) + 1)[-1]["text"] == "b is fine"
        other = Peer(server.port, unique_room("rate-other"), user=a.user_id)
        other.chat("other room")
        assert wait_chats(other, 1)[0]["text"] == "other room"
        other.close()
        # Tokens come back at 5 per second.
        time.sleep(0.5)
        a.chat("after the pause", client_id="late")
        mine = lambda m: m["type"] == "chat" and m["messages"][0]["user_id"] == a.user_id  # noqa: E731
        last = a.until(lambda m: m["type"] == "error" or mine(m), 3.0, "an answer")
        assert last["type"] == "chat" and last["messages"][0]["text"] == "after the pause", last
    finally:
        close_all(a, a2, b)


def burst(peer, n, tag):
    """n chat messages in one write; returns (accepted texts, RATE_LIMITED refs)."""
    peer.ws.send(b"".join(frame(OP_TEXT, json.dumps({"type": "chat", "text": f"{tag}{i}", "client_id": f"{tag}{i}"}))
                          for i in range(n)))
    deadline = time.monotonic() + 3.0
    ok, limited = [], []
    while len(ok) + len(limited) < n and time.monotonic() < deadline:
        for m in peer.collect(0.1):
            if m["type"] == "chat":
                ok += [c["text"] for c in m["messages"] if c["text"].startswith(tag)]
            elif m["type"] == "error" and m["code"] == "RATE_LIMITED":
                limited.append(m["ref"])
    return ok, limited


def test_rate_limit_survives_leaving_and_coming_back(start_server):
    """The bucket is per user and room: a user alone in a room who spends it,
    leaves (the room goes away) and comes back at once finds it still spent."""
    server = start_server({"--chat-rate": 5, "--leave-grace": 0})
    room, user = unique_room("rate-back"), uid("back")
    first = Peer(server.port, room, user=user)
    ok, limited = burst(first, 12, "x")
    assert 10 <= len(ok) <= 11 and len(ok) + len(limited) == 12, (ok, limited)
    first.close()
    time.sleep(0.1)
    second = Peer(server.port, room, user=user)
    try:
        ok, limited = burst(second, 6, "y")
        assert len(ok) <= 2 and len(ok) + len(limited) == 6, f"a fresh burst after coming back: {ok}"
        time.sleep(2.1)  # full again by now
        ok, limited = burst(second, 10, "z")
        assert len(ok) == 10, (ok, limited)
    finally:
        close_all(second)


# --------------------------------------------------------------------------
# at rest


def test_chat_never_in_plain_bytes_on_disk(srv):
    marker = os.urandom(4).hex()
    text, name, client_id = f"T{marker}"[:10], f"N{marker}name", f"C{marker}cid"
    room = unique_room("secret")
    a = Peer(srv.port, room, user=uid("w"), name=name)
    try:
        a.chat(f"  {text} ", client_id=client_id)
        m = wait_chats(a, 1)[0]
        assert m["text"] == text and m["name"] == name
        a.send({"type": "history"})
        assert a.expect("history")["messages"] == [m]
    finally:
        close_all(a)
    found = []
    for root, _, files in os.walk(srv.data_dir):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                data = fh.read()
            for label, needle in (("text", text), ("name", name), ("client_id", client_id)):
                for enc in (needle.encode(), needle.encode("utf-16-le")):
                    if enc in data:
                        found.append((label, path))
    assert not found, f"chat body stored in plain bytes: {found}"
