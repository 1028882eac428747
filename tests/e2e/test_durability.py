"""PROTOCOL 5: every chat message a client received survives kill -9 (with the
same seq, ts, author and text, no duplicate, no gap, seq continuing), on a
restart with another --threads; the chat key file: created 0600 when absent,
both formats accepted, a wrong key stops the server with status 2."""

import os
import re
import signal
import stat
import time

from conftest import Closed, ProtocolError, unique_room
from test_rooms import Peer, close_all, uid

FIELDS = ("seq", "user_id", "name", "text", "ts", "client_id")


def received_chats(peers):
    """seq -> message, over every chat message any of the peers received;
    the same seq must always carry the same message."""
    out = {}
    for p in peers:
        for _, msg in p.log:
            if msg["type"] != "chat":
                continue
            for m in msg["messages"]:
                if m["seq"] in out:
                    assert out[m["seq"]] == m, f"seq {m['seq']} broadcast twice, differently: {out[m['seq']]} / {m}"
                out[m["seq"]] = m
    return out


def read_to_end(peer, timeout=3.0):
    """Reads whatever the dead server left in the socket, until EOF."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            peer.next(max(0.05, deadline - time.monotonic()))
        except (Closed, ProtocolError, OSError):
            return


def full_history(peer):
    peer.send({"type": "history", "limit": 200})
    msg = peer.expect("history")
    return msg["messages"], msg["complete"]


def kill9(server):
    server.expect_exit = True
    server.signal(signal.SIGKILL)
    assert server.wait_exit(5.0) is not None, "server survived kill -9"


def test_kill_9_mid_traffic_loses_no_received_message(start_server):
    first = start_server({"--threads": 2, "--leave-grace": 0})
    rooms = [unique_room("durable"), unique_room("durable")]
    senders = {room: [Peer(first.port, room, user=uid("snd"), name=f"Sender {i}") for i in range(3)]
               for room in rooms}
    observers = {room: Peer(first.port, room, user=uid("obs")) for room in rooms}
    everyone = [p for room in rooms for p in senders[room] + [observers[room]]]
    try:
        # Each sender stays under --chat-rate 5: four messages a second.
        count = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.6:
            for room in rooms:
                for i, s in enumerate(senders[room]):
                    count += 1
                    s.chat(f"msg {count} from {s.user_id} ✓", client_id=f"c{count}")
            for p in everyone:
                p.collect(0.25 / len(everyone))
        # More in flight, then kill -9 without waiting for them.
        for room in rooms:
            for s in senders[room]:
                count += 1
                s.chat(f"last {count}", client_id=f"c{count}")
        kill9(first)
        for p in everyone:
            read_to_end(p)
        got = {room: received_chats(senders[room] + [observers[room]]) for room in rooms}
        assert all(len(got[room]) >= 10 for room in rooms), {r: len(g) for r, g in got.items()}
        for room in rooms:
            assert any(m["text"].startswith("msg") for m in got[room].values())
    finally:
        close_all(*everyone)

    second = start_server({"--threads": 1, "--data-dir": first.data_dir, "--leave-grace": 0})
    for room in rooms:
        reader = Peer(second.port, room, user=uid("reader"))
        try:
            history, complete = full_history(reader)
            seqs = [m["seq"] for m in history]
            assert seqs == list(range(1, len(seqs) + 1)), f"gap or duplicate after restart: {seqs}"
            assert complete is True and reader.welcome["chat"]["last_seq"] == len(seqs)
            assert reader.welcome["chat"]["messages"] == history  # the default window holds them all
            stored = {m["seq"]: m for m in history}
            for seq, m in got[room].items():
                assert seq in stored, f"seq {seq} was received but is gone after kill -9: {m}"
                assert {k: stored[seq].get(k) for k in FIELDS} == {k: m.get(k) for k in FIELDS}, (m, stored[seq])
            assert len({m["client_id"] for m in history}) == len(history), "a message stored twice"
            reader.chat("after the restart", client_id="after")
            nxt = reader.until(lambda m: m["type"] == "chat", 3.0, "the first chat after the restart")
            assert nxt["messages"][0]["seq"] == len(seqs) + 1, nxt
        finally:
            close_all(reader)


def write_key(workdir, data, name):
    path = os.path.join(workdir, f"{name}-{os.urandom(3).hex()}.key")
    with open(path, "wb") as f:
        f.write(data)
    return path


def chat_once(port, room, text):
    p = Peer(port, room, user=uid("w"))
    try:
        p.chat(text, client_id="k")
        return p.until(lambda m: m["type"] == "chat", 3.0, "the chat")["messages"][0]
    finally:
        p.close()


def test_key_formats_and_wrong_key_exits_2(start_server, workdir):
    key = os.urandom(32)
    raw_path = write_key(workdir, key, "raw")
    hex_path = write_key(workdir, key.hex().upper().encode() + b" \n\t\n", "hex")
    other_path = write_key(workdir, os.urandom(32).hex().encode() + b"\n", "other")
    room = unique_room("keyed")

    first = start_server({"--chat-key-file": raw_path})
    sent = chat_once(first.port, room, "sealed")
    first.stop()
    assert not os.path.exists(os.path.join(first.data_dir, "chat.key")), "a key file was created beside --chat-key-file"

    # The same key, written as hex with trailing whitespace, opens the log.
    second = start_server({"--chat-key-file": hex_path, "--data-dir": first.data_dir})
    reader = Peer(second.port, room, user=uid("r"))
    assert reader.welcome["chat"]["messages"] == [sent]
    reader.close()
    second.stop()

    # Another key: status 2 and a clear message, before serving anything.
    wrong = start_server({"--chat-key-file": other_path, "--data-dir": first.data_dir}, wait=False)
    wrong.expect_exit = True
    status = wrong.wait_exit(10.0)
    assert status == 2, f"exit status {status} with a wrong chat key; log: {wrong.log_tail()}"
    assert re.search(r"key", wrong.log_text(), re.I), f"no clear message: {wrong.log_tail()}"
    assert "sealed" not in wrong.log_text()

    # No key file at all: a fresh random key cannot open the log either.
    fresh = start_server({"--chat-key-file": None, "--data-dir": first.data_dir}, wait=False)
    fresh.expect_exit = True
    status = fresh.wait_exit(10.0)
    assert status == 2, f"exit status {status} with a new key on an existing log; log: {fresh.log_tail()}"


def test_chat_key_created_0600_and_reused(start_server):
    server = start_server({"--chat-key-file": None})
    path = os.path.join(server.data_dir, "chat.key")
    assert os.path.isfile(path), f"no {path}"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, f"chat.key mode {oct(mode)}"
    with open(path, "rb") as f:
        content = f.read()
    assert re.fullmatch(rb"[0-9a-fA-F]{64}\n", content), content
    assert "chat.key" in server.log_text(), f"the log does not say a key was created: {server.log_tail()}"
    room = unique_room("autokey")
    sent = chat_once(server.port, room, "kept")
    server.stop()

    again = start_server({"--data-dir": server.data_dir})
    with open(path, "rb") as f:
        assert f.read() == content, "chat.key rewritten on restart"
    reader = Peer(again.port, room, user=uid("r"))
    assert reader.welcome["chat"]["messages"] == [sent]
    reader.close()
