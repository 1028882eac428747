"""PROTOCOL section 1 (HTTP surface) and section 2's pre-upgrade checks."""

import os
import re
import socket
import time

import pytest

from conftest import (HOST, RawWS, check_error, http_exchange, http_get, read_response, request, room_path,
                      serving, upgrade_request)


def upgrade(port, path, headers=()):
    """(response, closed) for an upgrade request on path."""
    return http_exchange(port, upgrade_request(path, headers))


def test_healthz_shape(server):
    resp = http_get(server.port, "/healthz")
    assert resp.status == 200, resp.describe()
    assert resp.headers.get("content-type", "").startswith("application/json")
    body = resp.json()
    assert set(body) == {"status", "threads", "connections", "rooms"}, body
    assert body["status"] == "ok"
    for key in ("threads", "connections", "rooms"):
        assert isinstance(body[key], int) and not isinstance(body[key], bool) and body[key] >= 0, body
    assert body["threads"] == 2  # the fixture runs --threads 2


def test_healthz_threads_follow_flag(start_server):
    srv = start_server({"--threads": 3})
    assert srv.healthz()["threads"] == 3


def test_healthz_counts_open_sessions(server):
    # Sessions of earlier tests may still be closing.
    assert _eventually(lambda: server.healthz()["connections"] == 0), server.healthz()
    with RawWS.connect(server.port, "/ws/rooms/count-a"), RawWS.connect(server.port, "/ws/rooms/count-b"):
        assert server.healthz()["connections"] == 2
    assert _eventually(lambda: server.healthz()["connections"] == 0), server.healthz()


def _eventually(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                       r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (\S+)$')


def metric_family(name, families):
    """The family a sample belongs to (histogram and summary samples carry a suffix)."""
    if name in families:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base, {}).get("type") in ("histogram", "summary"):
            return base
    raise AssertionError(f"sample {name} without a TYPE line")


def parse_metrics(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}}; asserts the 0.0.4 syntax."""
    families = {}
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert help_text, f"HELP without text: {line!r}"
            families.setdefault(name, {"samples": []})["help"] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            fam = families.setdefault(name, {"samples": []})
            assert not fam["samples"] and "type" not in fam, f"misplaced TYPE line for {name}"
            fam["type"] = kind
        else:
            m = SAMPLE_RE.match(line)
            assert m, f"not a metrics sample line: {line!r}"
            fam = families[metric_family(m.group(1), families)]
            fam["samples"].append((m.group(1), m.group(2) or "", float(m.group(4))))
    return families


def check_histogram(name, fam):
    """Buckets are cumulative per label set and the +Inf bucket equals _count."""
    series = {}
    for sample, labels, value in fam["samples"]:
        key = re.sub(r',?le="[^"]*"', "", labels).replace("{,", "{")
        key = "" if key == "{}" else key
        entry = series.setdefault(key, {"buckets": [], "count": None})
        if sample == name + "_bucket":
            le = re.search(r'le="([^"]*)"', labels)
            assert le, f"{sample} without le: {labels}"
            entry["buckets"].append((float(le.group(1)), value))
        elif sample == name + "_count":
            entry["count"] = value
    for key, entry in series.items():
        bounds = [b for b, _ in entry["buckets"]]
        counts = [c for _, c in entry["buckets"]]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf"), f"{name}{key}: bounds {bounds}"
        assert counts == sorted(counts), f"{name}{key}: buckets not cumulative {counts}"
        assert counts[-1] == entry["count"], f"{name}{key}: +Inf bucket {counts[-1]} != count {entry['count']}"


def test_metrics_prometheus_text(server):
    with RawWS.connect(server.port, "/ws/rooms/metrics-room"):
        resp = http_get(server.port, "/metrics")
    assert resp.status == 200, resp.describe()
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp.headers
    assert "version=0.0.4" in resp.headers["content-type"], resp.headers
    text = resp.body.decode("utf-8")
    assert text.endswith("\n"), "exposition text must end with a newline"
    families = parse_metrics(text)
    for name in ("rollcall_connections", "rollcall_sessions", "rollcall_accepted_total"):
        assert name in families, f"{name} missing from /metrics"
        assert "help" in families[name] and families[name]["samples"], families[name]
    assert families["rollcall_connections"]["type"] == "gauge"
    assert families["rollcall_accepted_total"]["type"] == "counter"
    for name, fam in families.items():
        assert "help" in fam, f"{name} has no HELP line"
        if fam["type"] == "counter":
            assert all(v >= 0 for _, _, v in fam["samples"]), name
        if fam["type"] == "histogram":
            check_histogram(name, fam)
    # The session held open above and this request's own connection.
    assert sum(v for _, _, v in families["rollcall_sessions"]["samples"]) >= 1
    assert sum(v for _, _, v in families["rollcall_connections"]["samples"]) >= 2


def _gauges(port, *names):
    families = parse_metrics(http_get(port, "/metrics").body.decode("utf-8"))
    return tuple(sum(v for _, _, v in families[n]["samples"]) for n in names)


def test_room_gauges_follow_within_a_tick(start_server):
    """members, queued and rooms follow joins, queueing, a grace expiry and the
    last leave within about a tick, not at the next once-a-second sweep."""
    from test_rooms import Peer, uid  # noqa: PLC0415 (the room test helpers)
    srv = start_server({"--leave-grace": 1, "--room-capacity": 2})
    room = f"gauges-{os.getpid()}"
    names = ("rollcall_members", "rollcall_queued_sessions", "rollcall_rooms")
    a, b = Peer(srv.port, room, user=uid("a")), Peer(srv.port, room, user=uid("b"))
    c = Peer(srv.port, room, user=uid("c"), welcome=False)
    c.next(3.0)  # queued
    time.sleep(0.15)
    assert _gauges(srv.port, *names) == (2, 1, 1)
    b.drop()  # b in grace, holding its place
    time.sleep(0.15)
    assert _gauges(srv.port, *names) == (2, 1, 1)
    a.until(lambda m: b.user_id in m.get("left", []), 3.0, "b's grace expiry")
    time.sleep(0.15)  # c was admitted in b's place
    assert _gauges(srv.port, *names) == (2, 0, 1)
    a.close()
    c.close()
    time.sleep(0.15)
    assert _gauges(srv.port, *names) == (0, 0, 0)


@pytest.mark.parametrize("path", ["/nope", "/healthz/x", "/api", "/api/nothing", "/ws", "/ws/rooms",
                                  "/ws/other/r1", "/metricsz"])
def test_unknown_path_404(server, path):
    resp, closed = http_exchange(server.port, request("GET", path))
    check_error(resp, 404, closed)


@pytest.mark.parametrize("method,path,allowed", [("POST", "/healthz", "GET"),
                                                 ("DELETE", "/metrics", "GET"),
                                                 ("POST", "/ws/rooms/r1", "GET"),
                                                 ("GET", "/api/tickets", "POST")])
def test_wrong_method_405_with_allow(server, method, path, allowed):
    resp, closed = http_exchange(server.port, request(method, path, [("Content-Length", "0")]))
    check_error(resp, 405, closed)
    methods = [m.strip() for m in resp.headers.get("allow", "").split(",")]
    assert allowed in methods, f"Allow: {resp.headers.get('allow')!r}"


def test_room_without_upgrade_426(server):
    resp, closed = http_exchange(server.port, request("GET", "/ws/rooms/r1"))
    check_error(resp, 426, closed)


@pytest.mark.parametrize("room", ["a.b", "a%20b", "x" * 65, "", "a%2Fb", "caf\u00e9"])
def test_bad_room_id_400(server, room):
    resp, closed = upgrade(server.port, "/ws/rooms/" + room)
    check_error(resp, 400, closed)


def test_longest_room_id_accepted(server):
    with RawWS.connect(server.port, "/ws/rooms/" + "Az09_-" * 10 + "abcd") as ws:
        ws.ping()


@pytest.mark.parametrize("path", ["/healthz?verbose=1", "/metrics?name=x"])
def test_query_string_ignored_on_known_paths(server, path):
    assert http_get(server.port, path).status == 200


def test_request_head_just_under_8k_accepted(server):
    raw = request("GET", "/healthz", [("X-Padding", "p" * 7900)])
    assert len(raw) < 8192
    resp, _ = http_exchange(server.port, raw)
    assert resp.status == 200, resp.describe()


def test_request_head_over_8k_431(server):
    raw = request("GET", "/healthz", [("X-Padding", "p" * 9 * 1024)])
    resp, closed = http_exchange(server.port, raw)
    check_error(resp, 431, closed)


def test_request_head_over_8k_without_end_431(server):
    """A head that never ends is cut at 8 KiB too, not waited for."""
    raw = b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"p" * 9 * 1024
    resp, closed = http_exchange(server.port, raw)
    check_error(resp, 431, closed)


@pytest.mark.parametrize("raw", [b"NONSENSE\r\n\r\n", b"GET\r\n\r\n", b"GET /healthz HTTX/1.1\r\n\r\n",
                                 b"GET  /healthz HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n"],
                         ids=["word", "method-only", "bad-version", "double-space", "binary"])
def test_malformed_request_line_400(server, raw):
    resp, closed = http_exchange(server.port, raw)
    check_error(resp, 400, closed)


def test_header_without_colon_400(server):
    raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"
    resp, closed = http_exchange(server.port, raw)
    check_error(resp, 400, closed)


def test_keep_alive_two_requests_one_connection(server):
    deadline = time.monotonic() + 5
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        buf = bytearray()
        for _ in range(2):
            sock.sendall(request("GET", "/healthz", close=False))
            resp = read_response(sock, buf, deadline)
            assert resp.status == 200, resp.describe()
            assert resp.json()["status"] == "ok"
            assert resp.headers.get("connection", "").lower() != "close"


def test_keep_alive_pipelined_requests(server):
    """Two requests in one write are answered in order on the same connection."""
    deadline = time.monotonic() + 2
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(request("GET", "/healthz", close=False) + request("GET", "/metrics", close=True))
        buf = bytearray()
        first = read_response(sock, buf, deadline)
        second = read_response(sock, buf, deadline)
        assert first.status == 200 and first.json()["status"] == "ok", first.describe()
        assert second.status == 200 and b"rollcall_connections" in second.body, second.describe()


def _read_all(sock, timeout=3.0):
    sock.settimeout(timeout)
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/"])
def test_head_has_the_get_head_and_no_body(server, path):
    """HEAD then GET on one connection: the HEAD answer is a head alone (its
    Content-Length that of the GET body), so the next answer starts right after it."""
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(request("HEAD", path, close=False) + request("GET", "/healthz", close=True))
        data = _read_all(sock)
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200 "), data[:200]
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert length and int(length.group(1)) > 0, head
    assert rest.startswith(b"HTTP/1.1 200 "), f"bytes after the HEAD answer: {rest[:80]!r}"
    assert rest.endswith(b"}") and b'"status":"ok"' in rest, rest[-200:]


def test_head_error_answer_has_no_body(server):
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(request("HEAD", "/api/tickets", close=False))
        data = _read_all(sock)
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 405 "), data[:200]
    assert rest == b"", f"a body after a HEAD answer: {rest[:80]!r}"


def test_error_after_keep_alive_closes(server):
    """An error answer on a kept-alive connection closes it, whatever came before."""
    deadline = time.monotonic() + 5
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        buf = bytearray()
        sock.sendall(request("GET", "/healthz", close=False))
        assert read_response(sock, buf, deadline).status == 200
        sock.sendall(request("GET", "/missing", close=False))
        resp = read_response(sock, buf, deadline)
        check_error(resp, 404)
        sock.settimeout(2)
        assert sock.recv(100) == b"", "connection still open after an error answer"


def test_tickets_without_jwt_401(server):
    raw = request("POST", "/api/tickets", [("Authorization", "Bearer x.y.z"), ("Content-Length", "0")])
    resp, closed = http_exchange(server.port, raw)
    check_error(resp, 401, closed)


# ---- checks in order: Origin (403), credentials (401), query options (400)

ORIGINS = "http://a.example, https://b.example:8443"


@pytest.fixture(scope="module")
def origin_server(binary, workdir):
    with serving(binary, workdir, flags={"--allowed-origins": ORIGINS}) as srv:
        yield srv


@pytest.mark.parametrize("origin", ["http://evil.example", "http://a.example.evil",
                                    "https://b.example", "null"])
def test_origin_not_listed_403(origin_server, origin):
    resp, closed = upgrade(origin_server.port, "/ws/rooms/r1", [("Origin", origin)])
    check_error(resp, 403, closed)


@pytest.mark.parametrize("origin", ["http://a.example", "https://b.example:8443", None])
def test_origin_listed_or_absent_allowed(origin_server, origin):
    headers = [("Origin", origin)] if origin else []
    with RawWS.connect(origin_server.port, "/ws/rooms/r1", headers) as ws:
        ws.ping()


def test_origin_checked_before_query(origin_server):
    resp, closed = upgrade(origin_server.port, room_path("r1", since="abc"), [("Origin", "http://evil")])
    check_error(resp, 403, closed)


def test_upgrade_checked_before_origin_and_query(origin_server):
    raw = request("GET", room_path("r1", since="abc"), [("Origin", "http://evil")])
    resp, closed = http_exchange(origin_server.port, raw)
    check_error(resp, 426, closed)


def test_without_allow_anonymous_401(start_server):
    srv = start_server(anonymous=False)
    resp, closed = upgrade(srv.port, room_path("r1", user_id="u1", name="Ada"))
    check_error(resp, 401, closed)
    resp, closed = upgrade(srv.port, "/ws/rooms/r1")
    check_error(resp, 401, closed)
    # Credentials come before query options.
    resp, closed = upgrade(srv.port, room_path("r1", since="-1"))
    check_error(resp, 401, closed)


@pytest.mark.parametrize("query", [{"user_id": "bad id"}, {"user_id": "u/1"}, {"user_id": "x" * 65},
                                   {"user_id": ""}, {"user_id": "caf\u00e9"}, {"name": "a\x01b"},
                                   {"name": "line\nbreak"}, {"name": "del\x7f"}, {"name": ""},
                                   {"name": "n" * 65}, {"since": "-1"}, {"since": "abc"},
                                   {"since": ""}, {"since": "1.5"}],
                         ids=lambda q: repr(q)[:40])
def test_bad_query_option_400(server, query):
    resp, closed = upgrade(server.port, room_path("r1", **query))
    check_error(resp, 400, closed)


def test_bad_percent_escape_400(server):
    resp, closed = upgrade(server.port, "/ws/rooms/r1?user_id=%zz")
    check_error(resp, 400, closed)


def test_invalid_utf8_name_400(server):
    resp, closed = upgrade(server.port, "/ws/rooms/r1?name=%C3%28")
    check_error(resp, 400, closed)


@pytest.mark.parametrize("query", ["user_id=u.1-_X&name=Ada+Lovelace", "name=%F0%9F%91%8D", "since=0",
                                   "since=123456789&user_id=" + "u" * 64, "unknown=1"])
def test_good_query_options_upgrade(server, query):
    with RawWS.connect(server.port, "/ws/rooms/r1?" + query) as ws:
        ws.ping()
