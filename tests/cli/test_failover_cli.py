"""``seawall failover`` and ``seawall reload`` against a real server process.

Round trips of status, force, release, accept, history and reload over the
control socket, the answers checked over UDP; the refusals (no server,
bad arguments, the server says no) are one line and exit 2, never a
traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SeawallProcess, ask

LIVE_WWW, EMERGENCY_WWW = "192.0.2.80", "192.0.2.99"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    zones = tmp_path / "zones"
    if not zones.exists():
        shutil.copytree(ROOT / "zones", zones)
    config = tmp_path / "seawall.yaml"
    config.write_text("listen: ['127.0.0.1:0']\nstate_dir: state\n"
                      "failover: {probe_interval: 0.1s, probe_timeout: 0.1s, fail_after: 3, "
                      "recover_after: 3}\n" + extra)
    return config


def seawall_cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def www(server: SeawallProcess) -> str:
    return ask(server.addr, "www.example.com.", "A").answer[0][0].address


def one_line_refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def server(tmp_path):
    config = write_config(tmp_path)
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as process:
        yield process


def test_status_table_and_json(tmp_path, server):
    table = seawall_cli(tmp_path, "failover", "status", "--config", "seawall.yaml")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:4] == ["ZONE", "STATE", "HOW", "SERIAL"]
    assert row.split()[:4] == ["example.com.", "live", "auto", "2026112701"]
    assert "Why:" in table.stdout and "the backend answered" in table.stdout
    assert "EXPIRES" in header and "14d" in row     # SOA EXPIRE 1209600 s from the last good
    as_json = seawall_cli(tmp_path, "failover", "status", "--json", "--state-dir", "state")
    data = json.loads(as_json.stdout)
    zone = data["status"]["zones"][0]
    assert data["status"]["version"] == 1
    assert (zone["zone"], zone["state"], zone["forced"]) == ("example.com.", "live", None)
    assert zone["backend"].startswith("files:") and zone["failures"] == 0
    assert zone["why"]["kind"] == "transition"
    assert {"transport": "udp", "host": "127.0.0.1", "port": server.addr[1]} in data["listen"]


def test_force_release_history_round_trip(tmp_path, server):
    assert www(server) == LIVE_WWW
    forced = seawall_cli(tmp_path, "failover", "force", "emergency", "--zone", "example.com",
                         "--reason", "provider outage", "--for", "10m", "--state-dir", "state")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith("forced emergency until ")
    assert www(server) == EMERGENCY_WWW
    status = json.loads(seawall_cli(tmp_path, "failover", "status", "--json",
                                    "--state-dir", "state").stdout)["status"]["zones"][0]
    assert status["state"] == "emergency" and status["forced"]["mode"] == "emergency"
    assert status["forced"]["until"] is not None and status["forced"]["by"].startswith("operator")
    table = seawall_cli(tmp_path, "failover", "status", "--state-dir", "state").stdout
    assert "forced until" in table and "provider outage" in table
    # the override survives in the state directory
    assert "emergency" in (tmp_path / "state" / "overrides.json").read_text()

    released = seawall_cli(tmp_path, "failover", "release", "--all", "--state-dir", "state")
    assert released.returncode == 0 and "example.com." in released.stdout
    assert www(server) == LIVE_WWW
    again = seawall_cli(tmp_path, "failover", "release", "--all", "--state-dir", "state")
    assert again.stdout.strip() == "nothing was forced"

    history = seawall_cli(tmp_path, "failover", "history", "--since", "1h", "--zone",
                          "example.com", "--state-dir", "state")
    lines = history.stdout.splitlines()
    assert any("override live -> emergency (operator)" in l and "provider outage" in l
               for l in lines), lines
    assert any("override emergency -> live (operator)" in l for l in lines), lines
    as_json = seawall_cli(tmp_path, "failover", "history", "--json", "--state-dir", "state")
    events = [json.loads(l) for l in as_json.stdout.splitlines()]
    assert [e["kind"] for e in events].count("override") == 2
    file_events = [json.loads(l) for l in
                   (tmp_path / "state" / "events.jsonl").read_text().splitlines()]
    assert events == file_events
    none = seawall_cli(tmp_path, "failover", "history", "--zone", "other.example",
                       "--state-dir", "state")
    assert none.stdout.strip() == "no events"


def test_force_live_and_expiry(tmp_path, server):
    forced = seawall_cli(tmp_path, "failover", "force", "emergency", "--all", "--reason",
                         "short", "--for", "1s", "--state-dir", "state")
    assert forced.returncode == 0, forced.stderr
    assert www(server) == EMERGENCY_WWW
    import time
    deadline = time.monotonic() + 10
    while www(server) != LIVE_WWW and time.monotonic() < deadline:
        time.sleep(0.1)
    assert www(server) == LIVE_WWW      # the override expired by itself
    live = seawall_cli(tmp_path, "failover", "force", "live", "--zone", "example.com",
                       "--reason", "hold", "--state-dir", "state")
    assert live.returncode == 0 and www(server) == LIVE_WWW
    seawall_cli(tmp_path, "failover", "release", "--zone", "example.com", "--state-dir", "state")


def test_accept_reload_and_server_refusals(tmp_path, server):
    line = one_line_refusal(seawall_cli(tmp_path, "failover", "accept", "--zone",
                                        "example.com", "--state-dir", "state"))
    assert line == "seawall: zone example.com. has no held version to accept"
    line = one_line_refusal(seawall_cli(tmp_path, "failover", "force", "emergency", "--zone",
                                        "nope.test", "--reason", "x", "--state-dir", "state"))
    assert line == "seawall: zone nope.test. is not served"
    reload = seawall_cli(tmp_path, "reload", "--state-dir", "state")
    assert reload.returncode == 0 and reload.stdout.startswith("reload requested")


def test_accept_serves_a_rejected_version(tmp_path, server):
    zone_file = tmp_path / "zones" / "example.com.zone"
    lines = zone_file.read_text().splitlines()
    kept = [l for l in lines if not l.startswith(("www", "mail", "sip", "_sip", "ns1.lab",
                                                   "ns2.lab", "lab", "*.apps", "api"))]
    zone_file.write_text("\n".join(kept).replace("2026112701", "2026112702") + "\n")
    seawall_cli(tmp_path, "reload", "--state-dir", "state")
    import time
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        zone = json.loads(seawall_cli(tmp_path, "failover", "status", "--json", "--state-dir",
                                      "state").stdout)["status"]["zones"][0]
        if zone["rejected"]:
            break
        time.sleep(0.1)
    assert zone["rejected"]["serial"] == 2026112702, zone
    table = seawall_cli(tmp_path, "failover", "status", "--state-dir", "state").stdout
    assert "seawall failover accept --zone example.com." in table
    accepted = seawall_cli(tmp_path, "failover", "accept", "--zone", "example.com",
                           "--state-dir", "state")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == "accepted: example.com. serial 2026112702 is served"
    soa = ask(server.addr, "example.com.", "SOA").answer[0][0]
    assert soa.serial == 2026112702


@pytest.mark.parametrize("argv", [
    ["failover", "status"],
    ["failover", "force", "emergency", "--all", "--reason", "x"],
    ["failover", "release", "--all"],
    ["failover", "history"],
    ["failover", "drill", "--scenario", "backend-down"],
    ["reload"],
])
def test_no_server_running_is_one_line_and_exit_2(tmp_path, argv):
    result = seawall_cli(tmp_path, *argv, "--state-dir", "nowhere")
    line = one_line_refusal(result)
    assert line.startswith("seawall: no Seawall server is running for state directory nowhere")


def test_stale_socket_of_a_killed_server(tmp_path):
    config = write_config(tmp_path)
    first = SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}).start()
    first.proc.kill()
    first.proc.wait()
    first.log.close()
    assert (tmp_path / "state" / "control.sock").exists()
    line = one_line_refusal(seawall_cli(tmp_path, "failover", "status", "--state-dir", "state"))
    assert "no Seawall server is running" in line
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        assert seawall_cli(tmp_path, "failover", "status", "--state-dir",
                           "state").returncode == 0


@pytest.mark.parametrize("argv, message", [
    (["failover", "force", "emergency", "--zone", "example.com"],
     "the following arguments are required: --reason"),
    (["failover", "force", "stale", "--all", "--reason", "x"], "invalid choice: 'stale'"),
    (["failover", "force", "emergency", "--reason", "x"],
     "one of the arguments --zone --all is required"),
    (["failover", "force", "emergency", "--all", "--zone", "a", "--reason", "x"],
     "not allowed with argument"),
    (["failover", "force", "emergency", "--all", "--reason", "x", "--for", "soon"],
     "not a duration: 'soon'"),
    (["failover", "history", "--since", "-5m"], "--since"),
    (["failover", "drill", "--scenario", "meteor"], "invalid choice: 'meteor'"),
    (["failover", "drill", "--scenario", "flap", "--qps", "0"], "must be at least 1"),
    (["failover", "accept"], "the following arguments are required: --zone"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, argv, message):
    line = one_line_refusal(seawall_cli(tmp_path, *argv))
    assert message in line, line


def test_serve_state_dir_keeps_two_servers_in_one_directory_apart(tmp_path):
    """`serve --state-dir`: two servers started from one directory each have their own
    state (without it the second is refused: the first holds the lock on .seawall)."""
    shutil.copytree(ROOT / "zones", tmp_path / "zones")
    first = SeawallProcess(tmp_path, "--state-dir", "one", "--workers", "1",
                           zones=tmp_path / "zones", env={"PYTHONPATH": str(ROOT)})
    second = SeawallProcess(tmp_path, "--state-dir", "two", "--workers", "1",
                            zones=tmp_path / "zones", env={"PYTHONPATH": str(ROOT)})
    with first, second:
        for name, process in (("one", first), ("two", second)):
            done = subprocess.run([sys.executable, "-m", "seawall", "failover", "status",
                                   "--json", "--state-dir", name], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["listen"][0]["port"] == process.addr[1]
            assert (tmp_path / name / "events.jsonl").exists()
        assert not (tmp_path / ".seawall").exists()
