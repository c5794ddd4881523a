"""The control channel itself: the Unix socket's mode, the protocol, the signed TCP listener.

Real server processes; requests written by hand on raw sockets, so the
protocol is checked as a client in another language would see it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SeawallProcess, free_port
from seawall.config import load_config
from seawall.errors import ConfigError
from seawall.failover.control import Verifier, sign

SECRET = b"0123456789abcdef0123456789abcdef"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    import shutil
    shutil.copytree(ROOT / "zones", tmp_path / "zones")
    config = tmp_path / "seawall.yaml"
    config.write_text("listen: ['127.0.0.1:0']\nstate_dir: state\n"
                      "failover: {probe_interval: 0.1s, probe_timeout: 0.1s}\n" + extra)
    return config


def unix_request(path: Path, *lines: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        return _exchange(sock, lines)


def tcp_request(port: int, *lines: bytes) -> list[dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        return _exchange(sock, lines)


def _exchange(sock: socket.socket, lines: tuple[bytes, ...]) -> list[dict]:
    answers = []
    reader = sock.makefile("rb")
    for line in lines:
        try:
            sock.sendall(line + b"\n")
            answer = reader.readline()
        except ConnectionError:   # the server closed the connection (after a refusal)
            break
        if not answer:
            break
        answers.append(json.loads(answer))
    return answers


def request(command: str, **fields) -> dict:
    return {"version": 1, "command": command, **fields}


def line(message: dict) -> bytes:
    return json.dumps(message).encode()


def test_unix_socket_is_owner_only_and_speaks_versioned_json(tmp_path):
    config = write_config(tmp_path)
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        path = tmp_path / "state" / "control.sock"
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        assert not [p for p in (tmp_path / "state").iterdir() if p.name.startswith(".control")]
        status, bad_version, unknown, not_json = unix_request(
            path, line(request("status")), line({"version": 99, "command": "status"}),
            line(request("launch")), b"{not json")
        assert status["version"] == 1 and status["ok"] is True
        assert status["status"]["zones"][0]["zone"] == "example.com."
        assert status["drill"] is None
        assert bad_version == {"version": 1, "ok": False,
                               "error": "unsupported protocol version 99 (this server speaks 1)"}
        assert unknown["error"] == "unknown command 'launch'"
        assert not_json["ok"] is False and not_json["error"].startswith("not a JSON object")
        # zones must be named or "all" said: no accidental force of every zone
        answer, = unix_request(path, line(request("force", mode="emergency", reason="x")))
        assert answer["error"] == "name the zones, or say all"
        answer, = unix_request(path, line(request("force", mode="emergency", zones=["example.com"],
                                                  reason="")))
        assert answer["error"] == "force needs a reason"
    assert not path.exists()    # removed at shutdown


def test_long_state_dir_path(tmp_path):
    """sun_path holds 107 bytes; a deeper state directory still gets its socket."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    config = write_config(tmp_path, "")
    config.write_text(config.read_text().replace("state_dir: state", f"state_dir: {deep}"))
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        result = subprocess.run([sys.executable, "-m", "seawall", "failover", "status",
                                 "--state-dir", str(deep)], capture_output=True, text=True,
                                timeout=30, env={"PYTHONPATH": str(ROOT)})
        assert result.returncode == 0, result.stderr
        assert "example.com." in result.stdout
        assert stat.S_IMODE(os.stat(deep / "control.sock").st_mode) == 0o600


@pytest.fixture
def signed_server(tmp_path):
    port = free_port()
    (tmp_path / "control.key").write_bytes(SECRET + b"\n")
    config = write_config(tmp_path, f"control: {{listen: '127.0.0.1:{port}', "
                                    "secret_file: control.key, max_skew: 5s}\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        yield server, port


def test_tcp_accepts_signed_and_refuses_the_rest(tmp_path, signed_server):
    server, port = signed_server
    good = sign(SECRET, request("status"))
    answer, = tcp_request(port, line(good))
    assert answer["ok"] is True and answer["status"]["zones"][0]["state"] == "live"
    # the answer is signed too, bound to the request's nonce
    assert answer["nonce"] == good["nonce"]
    assert Verifier(SECRET, 5).check(answer) is None

    refusals = {
        "unsigned": request("status"),
        "replayed": good,
        "stale": sign(SECRET, request("status"), now=time.time() - 60),
        "future": sign(SECRET, request("status"), now=time.time() + 60),
        "bad key": sign(b"another secret of enough length", request("status")),
        "tampered": {**sign(SECRET, request("release", all=True)), "command": "status"},
    }
    reasons = {}
    for name, message in refusals.items():
        answer, = tcp_request(port, line(message))
        assert answer["ok"] is False and "mac" not in answer, (name, answer)
        reasons[name] = answer["error"]
    assert reasons["unsigned"] == "refused: unsigned request (mac, ts and nonce are required)"
    assert reasons["replayed"] == "refused: replayed request (nonce already used)"
    assert reasons["stale"].startswith("refused: stale request: timestamp +60s off")
    assert reasons["future"].startswith("refused: stale request: timestamp -60s off")
    assert reasons["bad key"] == reasons["tampered"] == "refused: bad signature"
    # a refusal closes the connection: the next line is not read
    answers = tcp_request(port, line(request("status")), line(sign(SECRET, request("status"))))
    assert len(answers) == 1
    log = server.output()
    assert log.count("control request refused") == len(refusals) + 1
    assert "reason=bad signature" in log and "reason=replayed request" in log


def test_cli_over_signed_tcp(tmp_path, signed_server):
    _, port = signed_server

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "seawall", "failover", *args,
                               "--connect", f"127.0.0.1:{port}"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=30,
                              env={"PYTHONPATH": str(ROOT)})

    ok = cli("force", "emergency", "--all", "--reason", "from afar", "--secret-file",
             "control.key")
    assert ok.returncode == 0, ok.stderr
    status = cli("status", "--json", "--config", "seawall.yaml")   # secret from the config
    zone = json.loads(status.stdout)["status"]["zones"][0]
    assert zone["state"] == "emergency"
    assert zone["forced"]["by"].startswith("operator tcp 127.0.0.1:")
    (tmp_path / "wrong.key").write_bytes(b"not the secret, but long enough")
    refused = cli("release", "--all", "--secret-file", "wrong.key")
    assert refused.returncode == 2 and refused.stderr.strip() == \
        "seawall: refused: bad signature"
    missing = cli("status")
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("seawall: --connect needs --secret-file (or --config "
                                      "with control.secret_file)")


@pytest.mark.parametrize("section, message", [
    ("control: {listen: '192.0.2.1:5380', secret_file: k}", "is not a loopback address"),
    ("control: {listen: '127.0.0.1:5380'}", "control.listen needs control.secret_file"),
    ("control: {socket: true}", "unknown key 'socket'"),
])
def test_control_config_errors(tmp_path, section, message):
    config = tmp_path / "seawall.yaml"
    config.write_text(section + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(config)


def test_unreadable_secret_stops_the_start(tmp_path):
    config = write_config(tmp_path, "control: {listen: '127.0.0.1:0', secret_file: none.key}\n")
    process = SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)})
    with pytest.raises(RuntimeError, match="control.secret_file .*none.key: cannot read"):
        try:
            process.start()
        finally:
            process.log.close()
