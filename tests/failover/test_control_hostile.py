"""The control channel under hostile clients (issue 14, finding 4).

Idle TCP connections must not lock the operator out of the Unix socket;
whatever bytes a client sends get an error answer or a close, never an
unhandled exception; a signed request captured before a restart cannot be
replayed after it. Property tests feed the request parser and the verifier
random bytes and random JSON.
"""

from __future__ import annotations

import json
import math
import socket
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, SeawallProcess, free_port
from seawall.failover.control import AUTH_DEADLINE, TCP_PENDING
from seawall.failover.control_client import ControlClient
from seawall.failover.control_wire import (MAX_DEPTH, MAX_LINE, RequestError, Verifier,
                                           parse_request, sign)

SECRET = b"0123456789abcdef0123456789abcdef"


def write_config(tmp_path: Path, port: int) -> Path:
    zones = ROOT / "zones"
    (tmp_path / "control.key").write_bytes(SECRET)
    config = tmp_path / "seawall.yaml"
    config.write_text("listen: ['127.0.0.1:0']\nstate_dir: state\nworkers: 1\n"
                      f"zones: {zones}\nemergency_dir: {zones / 'emergency'}\n"
                      f"control: {{listen: '127.0.0.1:{port}', secret_file: control.key}}\n")
    return config


@pytest.fixture
def signed(tmp_path):
    port = free_port()
    config = write_config(tmp_path, port)
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        yield server, port


def request(command: str, **fields) -> dict:
    return {"version": 1, "command": command, **fields}


def tcp_lines(port: int, payload: bytes, timeout: float = 5.0) -> list[dict]:
    """Send ``payload`` to the TCP listener; the answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def status_over_unix(tmp_path: Path) -> dict:
    return ControlClient(state_dir=tmp_path / "state", timeout=3).call("status")


def test_idle_tcp_connections_do_not_lock_out_the_unix_socket(tmp_path, signed):
    """Before: 32 idle TCP connections (the shared cap, taken before any check, for
    60 s) made `seawall failover status` fail on the Unix socket."""
    server, port = signed
    with ExitStack() as stack:
        for _ in range(48):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            sock.settimeout(5)
        time.sleep(0.3)
        assert status_over_unix(tmp_path)["ok"] is True
        # After the deadline the idle ones are gone and a signed client gets in.
        time.sleep(AUTH_DEADLINE + 0.5)
        answer, = tcp_lines(port, json.dumps(sign(SECRET, request("status"))).encode() + b"\n")
        assert answer["ok"] is True
    log = server.output()
    assert "connection refused: listener=control-tcp-pending" in log
    assert log.count("connection refused: listener=control-tcp-pending") == 1
    assert 48 - TCP_PENDING > 1   # the line above stood for all of them


HOSTILE = {
    "non-ascii mac": json.dumps({**sign(SECRET, request("status")), "mac": "é" * 64}).encode(),
    "non-json": b"\xff\xfe not json at all",
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "nested object": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "not an object": b"[1, 2, 3]",
    "nan ts": json.dumps({**request("status"), "ts": "NaN", "nonce": "a" * 32,
                          "mac": "0" * 64}).encode().replace(b'"NaN"', b"NaN"),
    "oversized": b'{"pad": "' + b"x" * (MAX_LINE + 10) + b'"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_requests_get_an_error_or_a_close(tmp_path, signed, name):
    """Before: a non-ASCII mac raised TypeError and deeply nested JSON RecursionError,
    unhandled, in the connection's task."""
    server, port = signed
    answers = tcp_lines(port, HOSTILE[name] + b"\n")
    assert len(answers) <= 1
    if answers:
        assert answers[0]["ok"] is False and answers[0]["error"], answers
    # Over the Unix socket too (no signature needed there).
    path = tmp_path / "state" / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        try:
            sock.sendall(HOSTILE[name] + b"\n")
            reply = sock.recv(65536)
        except OSError:
            reply = b""
    if reply:   # the Unix socket needs no signature: a request with a bad one is served
        assert json.loads(reply.splitlines()[0])["ok"] is (name == "non-ascii mac")
    assert status_over_unix(tmp_path)["ok"] is True
    log = server.output()
    assert "Traceback" not in log and "exception was never retrieved" not in log, log[-4000:]


def test_a_request_captured_before_a_restart_is_not_replayed_after_it(tmp_path):
    """Before: the replay cache lived in memory only; a restart forgot it."""
    port = free_port()
    config = write_config(tmp_path, port)
    captured = json.dumps(sign(SECRET, request("status"))).encode() + b"\n"
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        answer, = tcp_lines(port, captured)
        assert answer["ok"] is True
    nonces = tmp_path / "state" / "control-nonces.json"
    assert nonces.stat().st_mode & 0o077 == 0
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        answer, = tcp_lines(port, captured)
        assert answer == {"version": 1, "ok": False,
                          "error": "refused: replayed request (nonce already used)"}
        answer, = tcp_lines(port, json.dumps(sign(SECRET, request("status"))).encode() + b"\n")
        assert answer["ok"] is True


def test_unreadable_nonces_refuse_what_was_signed_before_the_start(tmp_path):
    (tmp_path / "control-nonces.json").write_text("{not json")
    now = time.time()
    verifier = Verifier(SECRET, 30, tmp_path, now=now)
    assert "signed before this server started" in verifier.check(
        sign(SECRET, request("status"), now=now - 5), now=now)
    assert verifier.check(sign(SECRET, request("status"), now=now + 1), now=now + 1) is None


def test_the_nonce_window_is_bounded(tmp_path, monkeypatch):
    import seawall.failover.control_wire as wire

    monkeypatch.setattr(wire, "MAX_NONCES", 5)
    verifier = Verifier(SECRET, 30, tmp_path)
    results = [verifier.check(sign(SECRET, request("status"))) for _ in range(6)]
    assert results[:5] == [None] * 5
    assert results[5].startswith("too many signed requests")
    assert len(json.loads((tmp_path / "control-nonces.json").read_text())["seen"]) == 5


# ---------------------------------------------------------------- properties

def _checked_parse(line: bytes) -> None:
    try:
        parsed = parse_request(line)
    except RequestError as exc:
        assert str(exc)
        return
    assert isinstance(parsed, dict)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_parser_takes_any_bytes(line):
    _checked_parse(line)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_parser_takes_any_json(value):
    _checked_parse(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=60))
def test_depth_is_refused_past_the_limit(depth):
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    line = ('{"a": ' + inner + "}" if depth > 1 else "{}").encode()   # ``depth`` levels
    if depth > MAX_DEPTH:
        with pytest.raises(RequestError, match="nested deeper"):
            parse_request(line)
    else:
        assert parse_request(line) == json.loads(line)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["mac", "ts", "nonce", "command", "version", "x"]),
                       JSON, max_size=6))
def test_verifier_answers_any_object(request_fields):
    why = Verifier(SECRET, 30).check(request_fields)
    assert why is None or isinstance(why, str)
    if why is None:   # only a genuinely signed request passes
        assert isinstance(request_fields.get("ts"), (int, float))
        assert math.isfinite(request_fields["ts"])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=70), st.one_of(st.floats(), st.integers(), st.booleans()))
def test_verifier_answers_any_mac_and_timestamp(mac, ts):
    message = {**sign(SECRET, request("status")), "mac": mac, "ts": ts}
    why = Verifier(SECRET, 30).check(message)
    assert isinstance(why, str)
