"""Drills end to end: ``seawall failover drill`` against a real server process.

Every scenario runs for a couple of seconds with fast thresholds; the
report must pass, and its figures must agree with events.jsonl. The
server holds the deadline: a CLI killed with SIGKILL mid-drill leaves a
server that reverts by itself. Refusals (a second drill, a zone without an
emergency version, signatures expiring during the drill, a drill too short
to detect anything) are one line and exit 2; ``--dry-run`` changes nothing.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT, SeawallProcess, require_tool, wait_for

from seawall.failover.control_client import ControlClient

# stale_for: 0s: a failing backend goes straight to emergency, the path these drills rehearse.
THRESHOLDS = ("{probe_interval: 0.1s, probe_timeout: 0.1s, fail_after: 3, recover_after: 5, "
              "stale_for: 0s}")
HELD = ("backend-corrupt", "backend-wipe")     # bad data: held, never emergency


def setup(tmp_path: Path, extra_failover: str = "") -> Path:
    shutil.copytree(ROOT / "zones", tmp_path / "zones")
    config = tmp_path / "seawall.yaml"
    thresholds = THRESHOLDS if not extra_failover else THRESHOLDS[:-1] + ", " + \
        extra_failover + "}"
    config.write_text(f"listen: ['127.0.0.1:0']\nstate_dir: state\nfailover: {thresholds}\n")
    return config


def cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", "failover", *args,
                           "--state-dir", "state"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout, env={"PYTHONPATH": str(ROOT)})


def start_drill(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seawall", "failover", "drill", *args,
                             "--state-dir", "state"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)})


def status(tmp_path: Path) -> dict:
    result = cli(tmp_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def events(tmp_path: Path) -> list[dict]:
    path = tmp_path / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def server(tmp_path):
    with SeawallProcess(tmp_path, config=setup(tmp_path),
                        env={"PYTHONPATH": str(ROOT)}) as process:
        yield process


@pytest.mark.parametrize("scenario", ["backend-down", "backend-hang", "backend-corrupt",
                                      "backend-wipe", "flap"])
def test_every_scenario_end_to_end(tmp_path, server, scenario):
    result = cli(tmp_path, "drill", "--scenario", scenario, "--zone", "example.com",
                 "--duration", "2s", "--qps", "100", "--report", "drill.md")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "probes" in result.stderr          # live progress
    report = json.loads((tmp_path / "drill.json").read_text())
    assert report["verdict"] == "pass", result.stdout
    assert report["drill"]["scenario"] == scenario
    assert report["thresholds"]["fail_after"] == 3
    probes = report["probes"]
    assert probes["sent"] >= 150 and probes["lost"] == 0 and probes["wrong"] == 0
    assert probes["sent"] <= 100 * (report["drill"]["ended"] + 2)   # the rate is bounded
    assert probes["ok"] == probes["sent"]
    assert probes["by_source"]["live"] > 0
    if scenario in HELD:
        assert probes["by_source"]["held"] > 0 and probes["by_source"]["emergency"] == 0
    else:
        assert probes["by_source"]["emergency"] > 0
    assert sum(s["live"] + s["held"] + s["emergency"] for s in probes["series"]) == probes["ok"]
    names = [o["name"] for o in report["objectives"]]
    assert "no probe lost" in names and "example.com. detection" in names
    if scenario == "flap":
        assert "example.com. no flapping" in names

    # The report's figures agree with the event log.
    log = [e for e in events(tmp_path) if e["zone"] == "example.com."]
    injected = next(e for e in log if e["kind"] == "fault" and "injected" in e["reason"])
    removed = next(e for e in log if e["kind"] == "fault" and "removed" in e["reason"])
    assert removed["reason"] == f"fault removed at its deadline: {scenario}"
    away = next(e for e in log if e["kind"] == "transition" and e["from"] == "live")
    back = next(e for e in log if e["kind"] == "transition" and e["to"] == "live"
                and e["ts"] > removed["ts"])
    assert away["cause"] == "drill"
    assert away["to"] == ("held" if scenario in HELD else "emergency")
    assert report["expected_states"]["example.com."][-2] == away["to"]
    measured = report["measured"]
    assert measured["time_to_detect"] == pytest.approx(away["ts"] - injected["ts"], abs=0.02)
    assert measured["time_to_recover"] == pytest.approx(back["ts"] - removed["ts"], abs=1e-6)
    whats = [i["what"] for i in report["timeline"]]
    if scenario in HELD:
        assert any(e["kind"] == "rejected" for e in log)
        assert any(i["what"].startswith("guard rejected") for i in report["timeline"])
        assert any(w.startswith("switch to held") for w in whats)
        assert not any(e["to"] == "emergency" for e in log)
    else:
        assert 0 <= measured["time_to_switch"] < 0.5
        assert any(w.startswith("switch to emergency") for w in whats)
    assert whats[0] == "fault injected"
    assert any(w.startswith("fault removed (deadline") for w in whats)
    assert any(w.startswith("switch to live") for w in whats)
    times = [i["t"] for i in report["timeline"]]
    assert times == sorted(times)

    markdown = (tmp_path / "drill.md").read_text()
    assert markdown.startswith(f"# Drill {report['drill']['id']}: {scenario} — PASS")
    assert "time to detect" in markdown and "![probes per second" in markdown
    chart = ET.parse(tmp_path / "drill.svg").getroot()
    assert chart.tag.endswith("svg")
    assert len(chart.findall(".//{http://www.w3.org/2000/svg}rect")) > 5
    # Back to normal, no fault left behind.
    state = status(tmp_path)
    assert state["status"]["zones"][0]["state"] == "live"
    assert all(b["fault"] is None for b in state["status"]["backends"])
    assert state["drill"]["phase"] == "done"


def test_cli_killed_mid_drill_server_reverts_at_deadline(tmp_path, server):
    drill = start_drill(tmp_path, "--scenario", "backend-down", "--all", "--duration", "3s",
                        "--qps", "50")
    try:
        assert wait_for(lambda: (status(tmp_path)["status"]["zones"][0]["state"]
                                 == "emergency"), 10)
        drill.send_signal(signal.SIGKILL)
        drill.wait(timeout=10)
    finally:
        if drill.poll() is None:
            drill.kill()
        drill.communicate()
    info = status(tmp_path)
    fault_until = info["drill"]["fault_until"]
    assert info["status"]["zones"][0]["state"] == "emergency" and time.time() < fault_until
    assert wait_for(lambda: status(tmp_path)["status"]["zones"][0]["state"] == "live", 15)
    removed = [e for e in events(tmp_path) if e["kind"] == "fault" and "removed" in e["reason"]]
    assert removed[-1]["reason"] == "fault removed at its deadline: backend-down"
    assert fault_until <= removed[-1]["ts"] < fault_until + 1.0
    assert all(b["fault"] is None for b in status(tmp_path)["status"]["backends"])


def test_second_drill_refused_and_interrupt_stops_the_drill(tmp_path, server):
    first = start_drill(tmp_path, "--scenario", "backend-hang", "--all", "--duration", "20s",
                        "--qps", "50")
    try:
        assert wait_for(lambda: (status(tmp_path).get("drill") or {}).get("phase") == "fault",
                        10)
        line = refusal(cli(tmp_path, "drill", "--scenario", "backend-down", "--all",
                           "--duration", "2s"))
        assert line.startswith("seawall: a drill is already running: ")
        assert "backend-hang on example.com." in line
        assert wait_for(lambda: status(tmp_path)["status"]["zones"][0]["state"] == "emergency")
        first.send_signal(signal.SIGINT)       # Ctrl-C: the CLI asks the server to stop
        _, err = first.communicate(timeout=15)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 130, err
    assert "drill interrupted: the server removed the fault" in err
    info = status(tmp_path)
    assert info["drill"]["stopped_by"].startswith("user ")
    assert all(b["fault"] is None for b in info["status"]["backends"])
    assert time.time() < info["drill"]["fault_until"]
    removed = [e for e in events(tmp_path) if e["kind"] == "fault" and "removed" in e["reason"]]
    assert removed[-1]["reason"].startswith("fault removed: backend-hang (drill stopped by user")


def test_dry_run_changes_nothing(tmp_path, server):
    before = (tmp_path / "state" / "events.jsonl").read_bytes()
    state_before = status(tmp_path)["status"]["zones"]
    result = cli(tmp_path, "drill", "--scenario", "backend-wipe", "--zone", "example.com",
                 "--duration", "5s", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Drill plan: backend-wipe for 5s on example.com.")
    assert "example.com.: live -> held -> live" in out   # bad data is held
    assert "detection (leaving live) within" in out
    assert "www.example.com./A" in out
    assert out.rstrip().endswith("dry run: nothing was changed")
    assert (tmp_path / "state" / "events.jsonl").read_bytes() == before
    after = status(tmp_path)
    assert after["drill"] is None
    assert all(b["fault"] is None for b in after["status"]["backends"])
    assert [(z["state"], z["forced"]) for z in after["status"]["zones"]] == \
        [(z["state"], z["forced"]) for z in state_before]


def test_plan_with_probes_and_stale(tmp_path):
    config = setup(tmp_path, "stale_for: 1s")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        plan = cli(tmp_path, "drill", "--scenario", "backend-down", "--all", "--duration", "5s",
                   "--probe", "www.example.com/A", "--probe", "mail.example.com", "--dry-run")
        assert plan.returncode == 0, plan.stderr
        assert "example.com.: live -> stale -> emergency -> live" in plan.stdout
        probes = plan.stdout.split("Probes")[1].splitlines()[1:]
        assert [p.strip() for p in probes if p.strip() and not p.startswith("dry")] == [
            "www.example.com./A",
            "mail.example.com./A (live and emergency answers are the same)"]
        line = refusal(cli(tmp_path, "drill", "--scenario", "backend-down", "--all",
                           "--probe", "www.example.org/A", "--dry-run"))
        assert line == "seawall: probe 'www.example.org/A' is in none of the drilled zones"
        line = refusal(cli(tmp_path, "drill", "--scenario", "backend-down", "--all",
                           "--duration", "200ms"))
        assert line.startswith("seawall: preflight refused the drill: --duration 0.2s is "
                               "shorter than detection may take")
        result = cli(tmp_path, "drill", "--scenario", "backend-down", "--all", "--duration",
                     "3s", "--qps", "100", "--report", "stale.md")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads((tmp_path / "stale.json").read_text())
        assert report["measured"]["zones"]["example.com."]["reached"] == ["emergency", "stale"]
        assert report["probes"]["by_source"]["stale"] > 0
        assert report["probes"]["wrong"] == report["probes"]["lost"] == 0


def test_preflight_refuses_zone_without_emergency(tmp_path):
    config = setup(tmp_path, "require_emergency: false")
    (tmp_path / "zones" / "other.test.zone").write_text(
        "$ORIGIN other.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n"
        "@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.7\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        before = (tmp_path / "state" / "events.jsonl").read_bytes()
        line = refusal(cli(tmp_path, "drill", "--scenario", "backend-down", "--zone",
                           "other.test", "--duration", "5s"))
        assert line.startswith("seawall: preflight refused the drill: other.test.: no valid "
                               "emergency zone")
        line = refusal(cli(tmp_path, "drill", "--scenario", "backend-down", "--all",
                           "--dry-run"))
        assert "other.test.: no valid emergency zone" in line and "example.com." not in line
        forced = cli(tmp_path, "force", "emergency", "--zone", "example.com", "--reason", "x")
        assert forced.returncode == 0
        line = refusal(cli(tmp_path, "drill", "--scenario", "flap", "--zone", "example.com",
                           "--dry-run"))
        assert "example.com.: forced emergency by operator" in line and "release it first" in line
        assert (tmp_path / "state" / "events.jsonl").read_bytes().startswith(before)
        assert all(e["kind"] != "fault" for e in events(tmp_path))


def test_preflight_refuses_signatures_expiring_during_the_drill(tmp_path):
    require_tool("dnssec-signzone", "dnssec-keygen")
    sys.path.insert(0, str(ROOT / "tests" / "dnssec"))
    from dnssec_signing import make_keys, sign

    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    text = ("$ORIGIN signed.test.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
            "@ NS ns1\nns1 A 192.0.2.53\nwww A {www}\n")
    keys = tmp_path / "keys"
    make_keys("signed.test.", keys)
    sign(text.format(serial=2, www="192.0.2.80"), "signed.test.", keys,
         output=zones / "signed.test.zone")
    # valid for 30 more minutes (-P: signzone's own check dislikes so short a window)
    sign(text.format(serial=1, www="192.0.2.99"), "signed.test.", keys, start="-3600",
         end="now+1800", output=zones / "emergency" / "signed.test.zone")
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nstate_dir: state\nfailover: {THRESHOLDS}\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        table = cli(tmp_path, "status").stdout.splitlines()[1]
        assert ", RRSIG " in table      # the live version's signatures: ten years
        ok = cli(tmp_path, "drill", "--scenario", "backend-down", "--all", "--duration", "10m",
                 "--dry-run")
        assert ok.returncode == 0, ok.stderr
        line = refusal(cli(tmp_path, "drill", "--scenario", "backend-down", "--all",
                           "--duration", "1h", "--dry-run"))
        assert "signed.test.: the emergency zone's signatures expire at" in line
        assert "before the drill ends" in line


@pytest.mark.interop
@pytest.mark.parametrize("scenario", ["backend-down", "backend-hang", "backend-corrupt",
                                      "backend-wipe", "flap"])
def test_every_scenario_with_knot_as_hidden_primary(tmp_path, scenario):
    """The axfr backend's client takes the fault; Knot itself keeps running."""
    from failover_peers import Knot, emergency_text, zone_text

    knot = Knot(tmp_path / "knot", {"example.net": zone_text("example.net", 7, hosts=200)})
    knot.start()
    try:
        (tmp_path / "emergency").mkdir()
        (tmp_path / "emergency" / "example.net.zone").write_text(emergency_text("example.net"))
        config = tmp_path / "seawall.yaml"
        config.write_text(
            "listen: ['127.0.0.1:0']\nstate_dir: state\nemergency_dir: emergency\n"
            f"backends:\n  - type: axfr\n    primary: \"127.0.0.1:{knot.port}\"\n"
            "    zones: [example.net]\n"
            "failover: {probe_interval: 0.2s, probe_timeout: 0.2s, fail_after: 3, "
            "recover_after: 5, startup_wait: 3s, stale_for: 0s}\n")
        with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
            result = cli(tmp_path, "drill", "--scenario", scenario, "--all", "--duration",
                         "3s", "--qps", "100", "--report", "knot.md")
            assert result.returncode == 0, result.stdout + result.stderr
            report = json.loads((tmp_path / "knot.json").read_text())
            assert report["verdict"] == "pass"
            assert report["drill"]["backends"] == [f"axfr:127.0.0.1:{knot.port}"]
            assert report["probes"]["lost"] == report["probes"]["wrong"] == 0
            fallback = "held" if scenario in HELD else "emergency"
            assert report["probes"]["by_source"][fallback] > 0
            assert "www.example.net./A" in report["probes"]["qps_names"]
            log = [e for e in events(tmp_path) if e["kind"] == "transition"]
            assert [(e["from"], e["to"]) for e in log][-2:] == [("live", fallback),
                                                                (fallback, "live")]
    finally:
        knot.kill()


def test_missed_objective_exits_1(tmp_path):
    """An operator holds the zone live during the drill: it never switches; the drill fails."""
    config = setup(tmp_path)
    config.write_text(config.read_text().replace("probe_interval: 0.1s, probe_timeout: 0.1s",
                                                 "probe_interval: 0.5s, probe_timeout: 0.5s"))
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        drill = start_drill(tmp_path, "--scenario", "backend-down", "--all", "--duration", "3s",
                            "--qps", "50", "--report", "held.md")
        try:
            # Watched and forced from this process: a CLI process per poll takes about a
            # second to start under load, and the zone would switch (1.5 s) before the force.
            control = ControlClient(state_dir=tmp_path / "state")
            assert wait_for(lambda: (control.call("status").get("drill") or {}).get("phase")
                            == "fault", 10, step=0.02)
            control.call("force", mode="live", reason="not today", zones=None, all=True)
            out, err = drill.communicate(timeout=60)
        finally:
            if drill.poll() is None:
                drill.kill()
                drill.communicate()
        assert drill.returncode == 1, out + err
        report = json.loads((tmp_path / "held.json").read_text())
        assert report["verdict"] == "fail"
        failed = {o["name"]: o["measured"] for o in report["objectives"] if not o["passed"]}
        assert failed["example.com. detection"] == "-"
        assert failed["example.com. reaches emergency"] == "stayed live"
        assert "no probe lost" not in failed and "no wrong answer" not in failed
        assert "Verdict: **FAIL**" in (tmp_path / "held.md").read_text()
        cli(tmp_path, "release", "--all")


def test_new_live_data_during_the_drill_is_expected(tmp_path, server):
    """The zone file changes while the backend is down: after recovery the new data is right."""
    drill = start_drill(tmp_path, "--scenario", "backend-down", "--all", "--duration", "2s",
                        "--qps", "100", "--report", "update.md")
    try:
        assert wait_for(lambda: status(tmp_path)["status"]["zones"][0]["state"] == "emergency")
        zone_file = tmp_path / "zones" / "example.com.zone"
        text = zone_file.read_text().replace("2026112701", "2026112702")
        zone_file.write_text(text.replace("A     192.0.2.80", "A     192.0.2.81"))
        out, err = drill.communicate(timeout=60)
    finally:
        if drill.poll() is None:
            drill.kill()
            drill.communicate()
    assert drill.returncode == 0, out + err
    report = json.loads((tmp_path / "update.json").read_text())
    assert report["probes"]["wrong"] == 0 and report["probes"]["lost"] == 0
    updated = [e for e in events(tmp_path) if e["kind"] == "updated"]
    assert updated and updated[-1]["serial_to"] == 2026112702
    assert status(tmp_path)["status"]["zones"][0]["serial"] == 2026112702
    assert any(i["what"].startswith("new live data: serial 2026112702")
               for i in report["timeline"])
