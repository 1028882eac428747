"""PROTOCOL section 7: operator flags, their environment variables and start-up failures."""

import re
import socket
import subprocess

import pytest

from conftest import HOST, RawWS, clean_env, free_port, http_get

PROTOCOL_FLAGS = [
    "--port", "--bind", "--threads", "--pin", "--tick-ms", "--data-dir", "--chat-key-file",
    "--jwt-secret-file", "--allow-anonymous", "--allowed-origins", "--room-capacity", "--queue-capacity",
    "--max-message-bytes", "--max-chat-chars", "--chat-rate", "--history-on-join", "--chat-retention",
    "--idle-after", "--away-after", "--session-timeout", "--slow-client-bytes", "--max-outbound-bytes",
    "--leave-grace", "--tls-cert", "--tls-key", "--shutdown-grace", "--log-level",
]


def run(binary, args, env=None, timeout=5.0):
    """Runs the binary to completion; a server that starts serving instead is a failure."""
    try:
        return subprocess.run([binary] + args, capture_output=True, text=True, timeout=timeout,
                              env=clean_env(env), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{args} did not exit within {timeout}s (it should have refused to start)")


def test_help_mentions_every_flag(binary):
    r = run(binary, ["--help"])
    assert r.returncode == 0, r.stderr
    for flag in PROTOCOL_FLAGS:
        assert re.search(re.escape(flag) + r"\b", r.stdout), f"--help does not mention {flag}"
    assert "ROLLCALL_" in r.stdout, "--help does not mention the environment variables"


@pytest.mark.parametrize("flag,value", [("--port", "0"), ("--port", "65536"), ("--threads", "0"),
                                        ("--tick-ms", "abc"), ("--tick-ms", "-5"),
                                        ("--max-message-bytes", "10"), ("--session-timeout", "x"),
                                        ("--log-level", "loud"), ("--chat-rate", "0")])
def test_bad_value_exits_2_naming_the_flag(binary, tmp_path, flag, value):
    args = ["--bind", HOST, "--port", str(free_port()), "--data-dir", str(tmp_path), "--allow-anonymous"]
    args += [flag, value]
    r = run(binary, args)
    assert r.returncode == 2, f"{flag} {value}: exit {r.returncode}; stderr {r.stderr!r}"
    assert flag in r.stderr, f"{flag} {value}: message does not name the flag: {r.stderr!r}"


def test_unknown_flag_exits_2(binary, tmp_path):
    r = run(binary, ["--data-dir", str(tmp_path), "--no-such-flag"])
    assert r.returncode == 2 and "--no-such-flag" in r.stderr, (r.returncode, r.stderr)


def test_bad_env_value_exits_2(binary, tmp_path):
    r = run(binary, ["--bind", HOST, "--port", str(free_port()), "--data-dir", str(tmp_path)],
            env={"ROLLCALL_TICK_MS": "abc"})
    assert r.returncode == 2, r.stderr
    assert "--tick-ms" in r.stderr or "ROLLCALL_TICK_MS" in r.stderr, r.stderr


def test_env_port_honoured(start_server):
    port = free_port()
    srv = start_server({"--port": None}, env={"ROLLCALL_PORT": str(port)}, port=port)
    assert srv.healthz()["status"] == "ok"


def test_flag_beats_env_port(start_server):
    env_port = free_port()
    srv = start_server(env={"ROLLCALL_PORT": str(env_port)})
    assert srv.port != env_port
    assert srv.healthz()["status"] == "ok"
    with pytest.raises(OSError):
        http_get(env_port, "/healthz", timeout=1.0)


def test_env_boolean_and_threads_honoured(start_server):
    srv = start_server({"--threads": None}, anonymous=False,
                       env={"ROLLCALL_ALLOW_ANONYMOUS": "yes", "ROLLCALL_THREADS": "3"})
    assert srv.healthz()["threads"] == 3
    with RawWS.connect(srv.port, "/ws/rooms/env") as ws:
        ws.ping()


def test_port_in_use_fails_clearly(start_server):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        srv = start_server(port=port, wait=False)
        status = srv.wait_exit(5.0)
        assert status is not None, "the server runs although its port is taken"
        srv.expect_exit = True
        assert status != 0
        log = srv.log_text()
        assert str(port) in log and re.search(r"in use", log, re.I), f"unclear message: {log!r}"


def test_port_taken_by_another_rollcall_fails(start_server):
    """A second server on the port of a running one must not start and share it."""
    first = start_server()
    second = start_server(port=first.port, wait=False)
    status = second.wait_exit(3.0)
    second.expect_exit = True
    assert status is not None and status != 0, \
        f"a second server started on port {first.port} already served by another (SO_REUSEPORT)"
    assert first.healthz()["status"] == "ok"
