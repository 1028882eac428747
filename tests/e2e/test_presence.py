"""PROTOCOL 3.1-3.3 and 4: presence updates, coalescing and the leading edge,
validation, names, hands, sync, idle/away, reconnect grace, dead sessions
and slow clients."""

import json
import threading
import time

import pytest

from conftest import OP_TEXT, Closed, ProtocolError, frame, now_ms, serving, unique_room
from test_rooms import (Peer, check_member, claims, close_all, deltas, joined, left, make_jwt,
                        settled_pair, shard_gauge, uid, updated, write_secret)


@pytest.fixture(scope="module")
def secret(workdir):
    return write_secret(workdir, "presence")


@pytest.fixture(scope="module")
def srv(binary, workdir, secret):
    with serving(binary, workdir, flags={"--leave-grace": 0, "--jwt-secret-file": secret[0]}) as s:
        yield s


def token(secret, sub, **extra):
    return make_jwt(claims(sub, **extra), secret[1])


def batch(*updates):
    """Several presence messages in one TCP write: one event-loop turn on the server."""
    return b"".join(frame(OP_TEXT, json.dumps({"type": "presence", **u})) for u in updates)


def own_updates(peer, user, start=0):
    return [(t, updated(m, user)) for t, m in peer.log[start:] if updated(m, user)]


# --------------------------------------------------------------------------
# what a delta carries


def test_update_carries_only_changed_fields(srv):
    a, b = settled_pair(srv.port)
    ua = a.user_id
    try:
        steps = [
            ({"x": 0.3}, {"x": 0.3}),
            ({"x": 0.3, "y": 0.6}, {"y": 0.6}),  # x unchanged: left out
            ({"emoji": "👍", "status": "busy"}, {"emoji": "👍", "status": "busy"}),
            ({"status_text": "back in 5", "emoji": "👍"}, {"status_text": "back in 5"}),
            ({"emoji": ""}, {"emoji": ""}),
            ({"status": "online", "name": "New Name"}, {"status": "online", "name": "New Name"}),
        ]
        for sent, want in steps:
            a.presence(**sent)
            d = b.until(lambda m: updated(m, ua), 3.0, f"update after {sent}")
            assert updated(d, ua) == {"user_id": ua, **want}, (sent, d)
            assert not d.get("joined") and not d.get("left"), d
        # Both sides hold the same model, and a fresh sync agrees with it.
        a.until_model(lambda ms: ms[ua]["name"] == "New Name", 3.0, "own rename")
        assert a.members == b.members
        assert {m["user_id"]: m for m in b.sync()["members"]} == b.members
        for m in b.members.values():
            check_member(m)
    finally:
        close_all(a, b)


@pytest.fixture(scope="module")
def tick200(binary, workdir):
    with serving(binary, workdir, flags={"--tick-ms": 200, "--leave-grace": 0}) as s:
        yield s


def test_coalescing_keeps_final_values_only(tick200):
    a, b = settled_pair(tick200.port)
    ua = a.user_id
    try:
        assert a.welcome["tick_ms"] == 200
        b.collect(0.45)  # the room is quiet: the next change goes out at once
        mark = len(b.log)
        a.ws.send(batch(*({"x": i / 100} for i in range(1, 11))))
        b.until_model(lambda ms: ms[ua]["x"] == 0.1, 2.0, "the final x")
        b.collect(0.25)
        ups = own_updates(b, ua, mark)
        assert 1 <= len(ups) <= 2, f"{len(ups)} deltas for 10 updates in one turn: {ups}"
        assert ups[-1][1] == {"user_id": ua, "x": 0.1}, ups

        # A change answered at once (leading edge), then, within the same tick,
        # fields that come back to their start value and a final x.
        b.collect(0.45)
        mark = len(b.log)
        a.presence(x=0.2)
        b.until(lambda m: updated(m, ua), 1.0, "leading-edge delta")
        a.ws.send(batch({"y": 0.3}, {"y": 0}, {"emoji": "x"}, {"emoji": ""}, {"x": 0.4}))
        b.until_model(lambda ms: ms[ua]["x"] == 0.4, 2.0, "x 0.4")
        b.collect(0.25)
        assert [u for _, u in own_updates(b, ua, mark)] == [{"user_id": ua, "x": 0.2}, {"user_id": ua, "x": 0.4}]

        # No net change within a turn: no delta at all.
        mark = len(b.log)
        a.ws.send(batch({"x": 0.9, "hand": True}, {"x": 0.4, "hand": False}))
        a.ping()
        b.collect(0.45)
        assert deltas(m for _, m in b.log[mark:]) == []
    finally:
        close_all(a, b)


def test_deltas_at_most_one_per_tick(tick200):
    a, b = settled_pair(tick200.port)
    ua = a.user_id
    try:
        b.collect(0.3)
        mark = len(b.log)
        n, period = 64, 0.025

        def send_updates():
            for i in range(1, n + 1):
                a.presence(x=i / 100)
                time.sleep(period)

        sender = threading.Thread(target=send_updates)
        started = time.monotonic()
        sender.start()
        while sender.is_alive():
            b.collect(0.1)
        sender.join()
        b.until_model(lambda ms: ms[ua]["x"] == n / 100, 2.0, "the final x")
        b.collect(0.3)
        ups = own_updates(b, ua, mark)
        assert ups[-1][1]["x"] == n / 100, ups[-1]
        elapsed = ups[-1][0] - started
        count = len(ups)
        assert 4 <= count <= elapsed / 0.2 + 2, f"{count} deltas for {n} updates in {elapsed:.2f}s at tick 200 ms"
        assert count < n / 4, f"{count} deltas for {n} updates: no coalescing"
        # After the leading-edge delta, deltas leave at tick ends only: k
        # deltas later is at least k ticks later (less 120 ms of jitter in
        # when this side reads them).
        times = [t for t, _ in ups[1:]]
        slack = min(times[j] - times[i] - 0.2 * (j - i) for i in range(len(times)) for j in range(i + 1, len(times)))
        gaps = [round(t2 - t1, 3) for t1, t2 in zip(times, times[1:])]
        assert slack >= -0.12, f"more than one delta per tick: gaps {gaps}"
        ticks = [m["tick"] for _, m in b.log[mark:] if m["type"] == "delta"]
        assert ticks == sorted(set(ticks)), ticks
    finally:
        close_all(a, b)


def test_leading_edge_then_tick_end_coalescing(start_server):
    server = start_server({"--tick-ms": 1000, "--leave-grace": 0})
    port = server.port
    a, b = settled_pair(port)
    ua = a.user_id
    try:
        b.collect(2.05)  # more than a whole quiet tick
        sent = time.monotonic()
        a.presence(x=0.5)
        b.until(lambda m: updated(m, ua), 1.5, "the first change")
        latency = b.log[-1][0] - sent
        assert latency < 0.3, f"first change of a quiet room took {latency * 1000:.0f} ms at tick 1000 ms"
        # The next change waits for the tick end (within one tick) ...
        a.presence(x=0.6)
        b.until(lambda m: (updated(m, ua) or {}).get("x") == 0.6, 1.5, "the second change")
        # ... which starts a new tick: what happens now goes out in one delta at its end.
        uc, ud = uid("c"), uid("d")
        c = Peer(port, a.room, user=uc)
        c.close()  # joined and left within the tick: appears nowhere
        d = Peer(port, a.room, user=ud, name="Dee")
        d.presence(x=0.3, emoji="🦆")  # joined within the tick: only in joined, final state
        a.presence(x=0.7)
        delta = b.until(lambda m: m["type"] == "delta", 1.5, "the tick-end delta")
        assert delta.get("updated") == [{"user_id": ua, "x": 0.7}], delta
        assert [(m["user_id"], m["x"], m["emoji"], m["name"]) for m in delta.get("joined", [])] == \
            [(ud, 0.3, "🦆", "Dee")], delta
        assert not delta.get("left"), delta
        b.collect(0.3)
        assert not any(uc in json.dumps(m) for m in b.msgs), "a user who joined and left in one tick was seen"
        d.close()
    finally:
        close_all(a, b)


# --------------------------------------------------------------------------
# validation


BAD_PRESENCE = [
    ("x-over-1", {"x": 1.5}),
    ("x-negative", {"x": -0.1}),
    ("x-string", {"x": "0.5"}),
    ("x-null", {"x": None}),
    ("x-bool", {"x": True}),
    ("x-infinite", '{"type":"presence","y":0.33,"x":1e999}'),
    ("y-over-1", {"y": 2}),
    ("y-tiny-negative", {"y": -1e-9}),
    ("y-array", {"y": [0.5]}),
    ("emoji-33-bytes", {"emoji": "😀" * 8 + "x"}),
    ("emoji-number", {"emoji": 5}),
    ("hand-number", {"hand": 1}),
    ("hand-string", {"hand": "true"}),
    ("status-idle", {"status": "idle"}),
    ("status-offline", {"status": "offline"}),
    ("status-case", {"status": "Online"}),
    ("status-empty", {"status": ""}),
    ("status-number", {"status": 1}),
    ("status-text-101-chars", {"status_text": "é" * 101}),
    ("status-text-object", {"status_text": {}}),
    ("name-empty", {"name": ""}),
    ("name-65-bytes", {"name": "n" * 65}),
    ("name-66-bytes-utf8", {"name": "é" * 33}),
    ("name-control", {"name": "a\u0007b"}),
    ("name-newline", {"name": "a\nb"}),
    ("name-number", {"name": 3}),
]


def test_bad_presence_rejected_whole_and_session_stays(srv):
    a, b = settled_pair(srv.port)
    ua = a.user_id
    try:
        before = dict(a.members[ua])
        mark = len(b.log)
        for label, bad in BAD_PRESENCE:
            if isinstance(bad, str):
                a.ws.send(frame(OP_TEXT, bad))
            else:
                good = {"y": 0.33} if "x" not in bad and "y" not in bad else {"emoji": "ok"}
                a.presence(**good, **bad, client_id=f"ref-{label}")
            err = a.expect_error("BAD_REQUEST")
            if not isinstance(bad, str):
                assert err.get("ref") == f"ref-{label}", (label, err)
            a.ping()
        b.collect(0.2)
        assert own_updates(b, ua, mark) == [], f"a rejected message changed the member: {own_updates(b, ua, mark)}"
        assert {m["user_id"]: m for m in a.sync()["members"]}[ua] == before
        # The limits themselves are accepted.
        edge = {"x": 1, "y": 1, "emoji": "😀" * 8, "status_text": "é" * 100, "name": "n" * 64, "status": "away"}
        a.presence(**edge)
        d = b.until(lambda m: updated(m, ua), 3.0, "the update at the limits")
        assert updated(d, ua) == {"user_id": ua, **edge}, d
        a.presence(x=0, y=0.0, status="busy", hand=False)
        d = b.until(lambda m: updated(m, ua), 3.0, "x=0 y=0")
        assert updated(d, ua) == {"user_id": ua, "x": 0, "y": 0, "status": "busy"}, d
    finally:
        close_all(a, b)


def test_rename_rules(srv, secret):
    room = unique_room("names")
    obs = Peer(srv.port, room, user=uid("obs"))
    anon = Peer(srv.port, room, user=uid("anon"), name="Anon")
    named_sub, plain_sub = uid("named"), uid("plain")
    named = Peer(srv.port, room, token=token(secret, named_sub, name="Dr Named"))
    plain = Peer(srv.port, room, token=token(secret, plain_sub))
    try:
        assert named.me()["name"] == "Dr Named" and plain.me()["name"] == plain_sub, (named.me(), plain.me())
        obs.until_model(lambda ms: {anon.user_id, named_sub, plain_sub} <= set(ms), 3.0, "everyone")
        anon.presence(name="Anon Renamed")
        obs.until(lambda m: updated(m, anon.user_id) == {"user_id": anon.user_id, "name": "Anon Renamed"}, 3.0,
                  "anonymous rename")
        plain.presence(name="Plain Renamed")
        obs.until(lambda m: updated(m, plain_sub) == {"user_id": plain_sub, "name": "Plain Renamed"}, 3.0,
                  "rename with a token without a name")
        named.presence(name="Someone Else", x=0.5)
        named.expect_error("BAD_REQUEST")
        named.ping()
        obs.collect(0.2)
        assert obs.members[named_sub]["name"] == "Dr Named" and obs.members[named_sub]["x"] == 0, \
            obs.members[named_sub]
    finally:
        close_all(obs, anon, named, plain)


# --------------------------------------------------------------------------
# hands


def test_hand_and_hand_at(srv):
    a, b = settled_pair(srv.port)
    ua, ub = a.user_id, b.user_id
    try:
        t0 = now_ms()
        a.presence(hand=True)
        d = b.until(lambda m: updated(m, ua), 3.0, "hand up")
        up = updated(d, ua)
        assert set(up) == {"user_id", "hand", "hand_at"} and up["hand"] is True, up
        assert t0 - 1000 <= up["hand_at"] <= now_ms() + 1000, (t0, up)
        time.sleep(0.02)
        b.presence(hand=True)
        b_at = updated(a.until(lambda m: updated(m, ub), 3.0, "b's hand"), ub)["hand_at"]
        assert b_at >= up["hand_at"], "a later hand has an earlier hand_at"
        # Raising a raised hand keeps hand_at: no net change at all.
        mark = len(b.log)
        a.presence(hand=True)
        a.ping()
        b.collect(0.3)
        assert own_updates(b, ua, mark) == []
        assert {m["user_id"]: m for m in b.sync()["members"]}[ua]["hand_at"] == up["hand_at"]
        # Lowering resets hand_at to 0; raising again gives a new time.
        a.presence(hand=False)
        down = updated(b.until(lambda m: updated(m, ua), 3.0, "hand down"), ua)
        assert down == {"user_id": ua, "hand": False, "hand_at": 0}, down
        time.sleep(0.01)
        a.presence(hand=True)
        again = updated(b.until(lambda m: updated(m, ua), 3.0, "hand up again"), ua)
        assert again["hand"] is True and again["hand_at"] > up["hand_at"], (up, again)
    finally:
        close_all(a, b)


def test_lower_hands_teacher_only(srv, secret):
    room = unique_room("hands")
    s1 = Peer(srv.port, room, user=uid("s1"))
    s2 = Peer(srv.port, room, user=uid("s2"))
    teacher = Peer(srv.port, room, token=token(secret, uid("prof"), role="teacher", name="Prof"))
    try:
        assert teacher.welcome["role"] == "teacher" and teacher.me()["role"] == "teacher"
        for p in (s1, s2, teacher):
            p.presence(hand=True)
        ids = {s1.user_id, s2.user_id, teacher.user_id}
        s1.until_model(lambda ms: all(ms.get(u, {}).get("hand") for u in ids), 3.0, "three hands up")
        s1.send({"type": "lower_hands", "client_id": "lh-1"})
        err = s1.expect_error("FORBIDDEN")
        assert err.get("ref") == "lh-1", err
        s1.ping()
        assert all(s1.members[u]["hand"] for u in ids), "a student's lower_hands took effect"
        teacher.send({"type": "lower_hands"})
        d = s2.until(lambda m: m["type"] == "delta" and any(e.get("hand") is False for e in m.get("updated", [])),
                     3.0, "hands down")
        downs = {e["user_id"]: e for e in d.get("updated", [])}
        assert set(downs) == ids, d
        assert all(e == {"user_id": u, "hand": False, "hand_at": 0} for u, e in downs.items()), d
        teacher.ping()
    finally:
        close_all(s1, s2, teacher)


# --------------------------------------------------------------------------
# sync


def test_sync_returns_whole_room_with_greater_tick(srv):
    a, b = settled_pair(srv.port)
    try:
        c = Peer(srv.port, a.room, user=uid("c"))
        a.presence(x=0.7, emoji="🎉")
        c.until_model(lambda ms: ms[a.user_id]["x"] == 0.7, 3.0, "a's x")
        b.until_model(lambda ms: c.user_id in ms and ms[a.user_id]["x"] == 0.7, 3.0, "c and a's x")
        last_tick = max(m["tick"] for m in b.msgs if m["type"] in ("delta", "welcome"))
        s = b.sync()
        assert set(s) == {"type", "tick", "members"}, s
        assert s["tick"] > last_tick, (last_tick, s["tick"])
        for m in s["members"]:
            check_member(m, "sync member")
        assert {m["user_id"]: m for m in s["members"]} == c.members
        assert sorted(m["user_id"] for m in s["members"]) == sorted([a.user_id, b.user_id, c.user_id])
        # The sync moved the room's tick: the next delta is later still.
        a.presence(y=0.1)
        d = b.until(lambda m: updated(m, a.user_id), 3.0, "next delta")
        assert d["tick"] > s["tick"], (s["tick"], d)
        c.close()
    finally:
        close_all(a, b)


# --------------------------------------------------------------------------
# idle and away


def test_idle_then_away_then_activity_restores(start_server):
    server = start_server({"--idle-after": 1, "--away-after": 2, "--leave-grace": 0})
    room = unique_room("idle")
    obs = Peer(server.port, room, user=uid("obs"))
    a = Peer(server.port, room, user=uid("a"))  # silent but for pings
    busy = Peer(server.port, room, user=uid("busy"))
    chatter = Peer(server.port, room, user=uid("chat"))
    ua = a.user_id
    try:
        busy.presence(status="busy")
        start = time.monotonic()
        seen = {}  # (user, status) -> seconds after start

        def record(msg):
            for e in msg.get("updated", []) if msg["type"] == "delta" else []:
                if "status" in e:
                    seen.setdefault((e["user_id"], e["status"]), time.monotonic() - start)

        while time.monotonic() - start < 4.5:
            if (ua, "away") in seen and (chatter.user_id, "away") in seen:
                break
            a.ping()  # pings are not activity
            for m in obs.collect(0.2):
                record(m)
        assert (ua, "idle") in seen and (ua, "away") in seen, seen
        assert 0.8 <= seen[(ua, "idle")] <= 2.6, seen
        assert 1.8 <= seen[(ua, "away")] <= 3.6 and seen[(ua, "away")] > seen[(ua, "idle")], seen
        assert not any(u == busy.user_id and s != "busy" for u, s in seen), f"a chosen busy changed: {seen}"
        assert obs.members[busy.user_id]["status"] == "busy"
        # A rejected message is no activity; an accepted presence restores online.
        a.presence(x=7)
        a.expect_error("BAD_REQUEST")
        a.presence(x=0.5)
        d = obs.until(lambda m: (updated(m, ua) or {}).get("x") == 0.5, 3.0, "activity")
        assert updated(d, ua) == {"user_id": ua, "x": 0.5, "status": "online"}, d
        # A chat message is activity too.
        chatter.chat("I am here")
        obs.until(lambda m: (updated(m, chatter.user_id) or {}).get("status") == "online", 3.0, "chat as activity")
        # A user who chose away stays away through inactivity and activity.
        busy.presence(status="away")
        obs.until(lambda m: (updated(m, busy.user_id) or {}).get("status") == "away", 3.0, "chosen away")
        busy.presence(x=0.25)
        d = obs.until(lambda m: updated(m, busy.user_id), 3.0, "busy's move")
        assert updated(d, busy.user_id) == {"user_id": busy.user_id, "x": 0.25}, d
    finally:
        close_all(obs, a, busy, chatter)


def test_timers_fall_due_within_a_tick(start_server):
    # Members whose timers fall due at different moments (0.23 s apart): each
    # goes idle, then away, and a dropped one leaves, about when its own time
    # is up (timer changes may wait for the tick end), not at some coarser
    # period the server happens to check at.
    server = start_server({"--idle-after": 1, "--away-after": 2, "--leave-grace": 1, "--tick-ms": 50})
    room = unique_room("timers")
    obs = Peer(server.port, room, user=uid("obs"))
    peers = [Peer(server.port, room, user=uid(f"t{i}")) for i in range(4)]
    gone = Peer(server.port, room, user=uid("gone"))
    try:
        last_activity = {}
        for i, p in enumerate(peers):
            p.presence(x=0.1 * (i + 1))
            last_activity[p.user_id] = time.monotonic()
            time.sleep(0.23)
        gone.drop()
        dropped = time.monotonic()
        mark = len(obs.log)
        while time.monotonic() - dropped < 3.0:
            obs.collect(0.2)
        seen = {}  # (user, status) -> when obs got it
        for t, m in obs.log[mark:]:
            for e in m.get("updated", []) if m["type"] == "delta" else []:
                if "status" in e:
                    seen.setdefault((e["user_id"], e["status"]), t)
        for u, at in last_activity.items():
            for status, after in (("idle", 1.0), ("away", 2.0)):
                assert (u, status) in seen, f"{u} never went {status}: {seen}"
                late = seen[(u, status)] - at - after
                assert -0.02 <= late <= 0.35, f"{u} went {status} {late:+.3f} s from its time"
        left_at = next((t for t, m in obs.log[mark:] if left(m, gone.user_id)), None)
        assert left_at is not None, "the dropped member never left"
        assert -0.02 <= left_at - dropped - 1.0 <= 0.35, f"left {left_at - dropped:.3f} s after the drop"
    finally:
        close_all(obs, gone, *peers)


# --------------------------------------------------------------------------
# reconnect grace and dead sessions


def test_reconnect_grace_and_dead_session(start_server):
    grace = 3
    server = start_server({"--leave-grace": grace, "--session-timeout": 3})
    port, room = server.port, unique_room("grace")
    silent = Peer(port, room, user=uid("silent"))  # never reads or answers a ping again
    silent_at = time.monotonic()
    obs = Peer(port, room, user=uid("obs"))
    x, y, z = (Peer(port, room, user=uid(p)) for p in ("x", "y", "z"))
    ux, uy, uz, us = x.user_id, y.user_id, z.user_id, silent.user_id
    peers = [obs, x, y, z, silent]
    try:
        x.presence(x=0.7, emoji="🛰")
        obs.until_model(lambda ms: {ux, uy, uz, us} <= set(ms) and ms[ux]["x"] == 0.7, 3.0, "everyone")
        mark = len(obs.log)
        dropped = time.monotonic()
        x.drop()
        y.drop()
        z.close()  # a close frame: left at once, grace or not
        obs.until(lambda m: left(m, uz), 1.0, "z left after its close frame")
        obs.until_model(lambda ms: all(ms[u]["connected"] is False and ms[u]["devices"] == 0 for u in (ux, uy)),
                        2.0, "x and y disconnected")
        ups = [updated(m, ux) for m in obs.msgs[mark:] if updated(m, ux)]
        assert ups[0] == {"user_id": ux, "devices": 0, "connected": False}, ups
        # x is back within the grace: same member, presence kept, no left/joined.
        time.sleep(0.8)
        x2 = Peer(port, room, user=ux)
        peers.append(x2)
        me = x2.me()
        assert me["connected"] is True and me["devices"] == 1 and me["x"] == 0.7 and me["emoji"] == "🛰", me
        assert x2.welcome["members"] and uy in x2.members and x2.members[uy]["connected"] is False
        obs.until(lambda m: updated(m, ux) == {"user_id": ux, "devices": 1, "connected": True}, 2.0, "x back")
        # y's grace runs out; the silent session is found dead and gets its own grace.
        while time.monotonic() - dropped < grace + 2.2:
            for p in (obs, x2):
                p.collect(0.1)
            if uy not in obs.members and us in obs.members and not obs.members[us]["connected"]:
                break
        left_y = next((t for t, m in obs.log[mark:] if left(m, uy)), None)
        assert left_y is not None, f"{uy} never left after its grace"
        assert grace - 0.5 <= left_y - dropped <= grace + 1.6, f"left {left_y - dropped:.2f}s after the drop"
        while time.monotonic() - silent_at < 3 + grace + 2.8 and us in obs.members:
            for p in (obs, x2):
                p.collect(0.1)
        gone = next((t for t, m in obs.log if updated(m, us) and updated(m, us).get("connected") is False), None)
        left_s = next((t for t, m in obs.log if left(m, us)), None)
        assert gone is not None and left_s is not None, "the silent session never timed out and left"
        assert 2.5 <= gone - silent_at <= 4.8, f"dead session noticed after {gone - silent_at:.2f}s"
        assert grace - 0.5 <= left_s - gone <= grace + 1.6, f"dead member left {left_s - gone:.2f}s after"
        code, _ = silent.ws.expect_close(2.0, reply=False)
        assert code == 1001, code
        # No flicker for x: never left, never joined again; y and z never came back.
        assert not any(left(m, ux) or joined(m, ux) for m in obs.msgs[mark:]), "x flickered"
        assert set(obs.members) == {obs.user_id, ux}, obs.members
        assert obs.members == {m["user_id"]: m for m in obs.sync()["members"]}
    finally:
        close_all(*peers)


def test_close_frame_then_gone_is_a_clean_leave(start_server):
    """A client that sends its close frame and drops the connection at once,
    with deltas it never read (so its side resets the connection), leaves at
    once, even when the server's next send to it fails before the close frame
    is read: here the delta of the member who left just before it."""
    server = start_server({"--leave-grace": 5})
    port, room = server.port, unique_room("bye")
    obs = Peer(port, room, user=uid("obs"))
    try:
        for round_ in range(4):
            first, second = Peer(port, room, user=uid(f"a{round_}")), Peer(port, room, user=uid(f"b{round_}"))
            second.presence(x=0.5)  # deltas the two never read
            obs.until_model(lambda ms: ms.get(second.user_id, {}).get("x") == 0.5, 3.0, "the move")
            mark = len(obs.log)
            first.close()
            second.close()
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and not any(left(m, second.user_id) for _, m in obs.log[mark:]):
                obs.collect(0.1)
            for u in (first.user_id, second.user_id):
                disconnected = [m for _, m in obs.log[mark:] if (updated(m, u) or {}).get("connected") is False]
                assert not disconnected, f"round {round_}: {u} was taken for a dropped connection"
                assert any(left(m, u) for _, m in obs.log[mark:]), f"round {round_}: {u} did not leave at once"
    finally:
        close_all(obs)


def test_member_in_grace_keeps_its_place(start_server):
    server = start_server({"--leave-grace": 1, "--room-capacity": 1})
    port, room = server.port, unique_room("place")
    a = Peer(port, room, user=uid("a"))
    ua = a.user_id
    a.presence(x=0.4)
    a.until(lambda m: (updated(m, ua) or joined(m, ua) or {}).get("x") == 0.4, 3.0, "own x")
    a.drop()
    waiting = Peer(port, room, user=uid("w"), welcome=False)
    peers = [waiting]
    try:
        first = waiting.next(3.0)
        assert first == {"type": "queued", "position": 1}, "a member in grace lost its place: " + repr(first)
        # Back within the grace: admitted at once, ahead of the queue, as it was.
        a2 = Peer(port, room, user=ua)
        peers.append(a2)
        assert a2.me()["x"] == 0.4 and a2.me()["connected"] is True, a2.me()
        a2.drop()
        dropped = time.monotonic()
        w = waiting.expect("welcome", 5.0)
        waited = time.monotonic() - dropped
        assert 0.7 <= waited <= 2.6, f"admitted {waited:.2f}s after the member's drop (grace 1 s)"
        assert [m["user_id"] for m in w["members"]] == [waiting.user_id], w
    finally:
        close_all(*peers)


# --------------------------------------------------------------------------
# slow clients (PROTOCOL 4)


def test_slow_client_gets_one_sync_and_others_are_served(start_server):
    server = start_server({"--slow-client-bytes": 4096, "--tick-ms": 10, "--leave-grace": 0})
    port, room = server.port, unique_room("slow")
    movers = [Peer(port, room, user=uid(f"m{i}")) for i in range(3)]
    obs = Peer(port, room, user=uid("obs"))
    # A small receive window and MSS, and no reading from now on.
    slow = Peer(port, room, user=uid("slow"), rcvbuf=4096, mss=536)
    peers = movers + [obs, slow]
    try:
        obs.until_model(lambda ms: slow.user_id in ms, 3.0, "the slow member")
        events = lambda: sum(shard_gauge(port, "rollcall_slow_client_events_total").values())  # noqa: E731
        assert events() == 0
        n, start = 0, time.monotonic()
        while time.monotonic() - start < 15:
            for i, m in enumerate(movers):
                m.ws.send(batch(*({"x": ((n + k) % 997) / 997, "status_text": chr(0x1F600 + (n + k + i) % 50) * 100,
                                   "emoji": chr(0x1F400 + (n + k) % 40) * 8} for k in range(4))))
            n += 4
            for p in movers + [obs]:
                p.collect(0.002)
            if n % 40 == 0 and events() > 0:
                break
        assert events() > 0, f"no session fell behind after {n} rounds of updates"
        for i in range(3):  # chat is never skipped, behind or not
            movers[0].chat(f"while slow {i}")
        # Others are served meanwhile.
        t0 = time.monotonic()
        obs.ping()
        assert time.monotonic() - t0 < 1.0, "the server stalled for everyone"
        final = {m.user_id: (0.123 + i / 10) for i, m in enumerate(movers)}
        for m in movers:
            m.presence(x=final[m.user_id], status_text="done", emoji="")
        obs.until_model(lambda ms: all(ms[u]["x"] == v for u, v in final.items()), 5.0, "final positions")
        assert not any(m["type"] == "sync" for m in obs.msgs), "a reading member got a sync"
        # The slow client reads again: one sync, then its model equals everyone's.
        s = slow.until(lambda m: m["type"] == "sync", 10.0, "sync after draining")
        before = [m for m in slow.msgs[: slow.msgs.index(s)] if m["type"] == "delta"]
        assert before and s["tick"] > before[-1]["tick"], "sync tick not after the deltas before it"
        slow.collect(0.3)
        assert sum(1 for m in slow.msgs if m["type"] == "sync") == 1, [m["type"] for m in slow.msgs][-10:]
        assert len(deltas(slow.msgs)) < len(deltas(obs.msgs)), "the slow client missed no delta"
        fresh = Peer(port, room, user=uid("fresh"))
        peers.append(fresh)
        for p in (slow, obs):
            p.until_model(lambda ms: fresh.user_id in ms, 3.0, "the fresh joiner")
        fresh.collect(0.2)
        assert slow.members == fresh.members == obs.members
        assert all(slow.members[u]["x"] == v and slow.members[u]["status_text"] == "done" for u, v in final.items())
        texts = [c["text"] for m in slow.msgs if m["type"] == "chat" for c in m["messages"]]
        assert texts == [f"while slow {i}" for i in range(3)], texts
    finally:
        close_all(*peers)


def chat_frame(text):
    return frame(OP_TEXT, json.dumps({"type": "chat", "text": text}, ensure_ascii=False))


class Drainer:
    """Reads a peer's messages on a thread (pings are not answered meanwhile),
    so that it keeps up while the test thread sends (on a dup of the socket:
    a socket object's timeout is shared by its threads)."""

    def __init__(self, peer):
        self.peer, self.error = peer, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            try:
                self.peer.next(0.05)
            except ProtocolError:
                pass
            except Exception as e:  # noqa: BLE001 - reported by __exit__
                self.error = e
                return

    def __enter__(self):
        self.peer.ws.auto_pong = False
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5.0)
        self.peer.ws.auto_pong = True
        assert self.error is None, f"{self.peer.user_id} stopped reading: {self.error!r}"


def test_slow_consumer_closed_1008_then_resumes_with_since(start_server):
    server = start_server({"--slow-client-bytes": 4096, "--max-outbound-bytes": 131072, "--chat-rate": 1000,
                           "--leave-grace": 0})
    port, room = server.port, unique_room("consumer")
    sender = Peer(port, room, user=uid("talker"))
    slow = Peer(port, room, user=uid("slow"), rcvbuf=4096, mss=536)
    try:
        sender.until_model(lambda ms: slow.user_id in ms, 3.0, "the slow member")
        total = 300
        back = lambda: sum(len(m["messages"]) for m in sender.msgs if m["type"] == "chat")  # noqa: E731
        out = sender.ws.sock.dup()  # its own timeout, apart from the reading thread's
        out.settimeout(5.0)
        with out, Drainer(sender):  # the sender keeps up; only `slow` falls behind
            for i in range(total):
                out.sendall(chat_frame(f"{i} " + "é" * 995))
                time.sleep(0.002)  # paced, so that each chat frame stays small
            deadline = time.monotonic() + 10.0
            while back() < total and time.monotonic() < deadline:
                time.sleep(0.02)
        assert back() == total, f"{back()} of {total} chat messages came back to their sender"
        assert sender.closed_code == "open"
        # The slow member reads again: chat in order, then close 1008.
        seqs, code = [], None
        while True:
            try:
                msg = slow.next(5.0)
            except Closed as e:
                code = e.code
                break
            if msg["type"] == "chat":
                seqs += [c["seq"] for c in msg["messages"]]
        assert code == 1008, f"closed with {code} after {len(seqs)} chat messages"
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < total, seqs[-3:]
        assert not any(m["type"] == "error" for m in slow.msgs), slow.msgs[-3:]
        # It resumes with since and gets exactly the rest.
        again = Peer(port, room, user=slow.user_id, since=seqs[-1] if seqs else 0)
        chat = again.welcome["chat"]
        assert [c["seq"] for c in chat["messages"]] == list(range(len(seqs) + 1, total + 1)), chat["last_seq"]
        assert chat["complete"] is True and chat["last_seq"] == total
        assert all(c["text"].startswith(f"{c['seq'] - 1} ") for c in chat["messages"])
        again.close()
    finally:
        close_all(sender)


def test_fast_reader_never_closed_as_slow_consumer(start_server):
    """Bursts of large chat land in big group commits; a member that reads
    everything at once is keeping up and must stay open."""
    server = start_server({"--max-outbound-bytes": 65536, "--slow-client-bytes": 4096, "--chat-rate": 1000,
                           "--leave-grace": 0})
    room = unique_room("fast")
    talker = Peer(server.port, room, user=uid("talker"))
    try:
        sent = 0
        for _ in range(4):
            talker.ws.send(b"".join(chat_frame(f"{sent + i} " + "é" * 1990) for i in range(20)))
            sent += 20
            try:
                talker.wait(lambda: any(m["type"] == "chat" and m["messages"][-1]["seq"] == sent
                                        for m in talker.msgs), 5.0, f"chat up to {sent}")
            except Closed as e:
                frames = [len(m["messages"]) for m in talker.msgs if m["type"] == "chat"]
                raise AssertionError(f"a member reading everything was closed with {e.code} "
                                     f"after chat frames of {frames} messages")
        talker.ping()
    finally:
        close_all(talker)
