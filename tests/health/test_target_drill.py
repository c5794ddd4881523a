"""``seawall failover drill --scenario target-down``: a real server process (2 workers),
real HTTP targets on 127.0.0.2-4, the drill run by the server over its control channel.

The drill marks a target down through the failed-check path (the target's
listener stays up all along), the report times the target leaving the
answers and coming back, and every probe answer holds addresses. The server
ends the drill at its deadline by itself, and at once when stopped;
refusals and bad arguments are one line, exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, wait_for
from harness import MAIN, Site, bad
from seawall.failover.control_client import ControlClient

pytestmark = pytest.mark.timeout(120)

INTERVAL, TIMEOUT, RISE, FALL = 0.3, 0.25, 2, 2


def drill(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", "failover", "drill", *args,
                           "--state-dir", "state"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout, env={"PYTHONPATH": str(ROOT)})


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def events(site: Site) -> list[dict]:
    return [json.loads(line) for line in (site.state / "events.jsonl").read_text().splitlines()]


def site(tmp_path: Path) -> Site:
    return Site(tmp_path, interval=INTERVAL, timeout=TIMEOUT, rise=RISE, fall=FALL)


def test_target_down_drill_end_to_end(tmp_path):
    with site(tmp_path) as s:
        assert s.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        served_before = s.targets["127.0.0.2"].served
        result = drill(tmp_path, "--scenario", "target-down", "--target", "127.0.0.2",
                       "--duration", "3s", "--qps", "100", "--report", "drill.md")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and "probes" in result.stderr
        report = json.loads((tmp_path / "drill.json").read_text())
        assert report["verdict"] == "pass", result.stdout
        assert report["drill"]["scenario"] == "target-down"
        assert report["drill"]["target"] == "127.0.0.2"
        probes = report["probes"]
        assert probes["sent"] >= 300 and probes["lost"] == 0 and probes["wrong"] == 0
        assert probes["by_source"]["with"] > 0 and probes["by_source"]["without"] > 0
        m = report["measured"]["rrsets"]["www.hc.example. A"]
        assert m["leaves"] is True
        # It leaves within fall x interval + 1 s, as the server published it and as clients saw it.
        for left in (m["left_server"], m["left_client"]):
            assert left is not None and left <= FALL * INTERVAL + 1.0, m
        assert m["left_server"] <= m["left_client"] + 0.05
        # Back after rise good checks (not before rise - 1 intervals), as published and seen.
        for back in (m["back_server"], m["back_client"]):
            assert back is not None and (RISE - 1) * INTERVAL - 0.1 <= back \
                <= RISE * INTERVAL + TIMEOUT + 1.0, m
        print(f"FIGURE target-down: left {m['left_server']:.2f}s (server) "
              f"{m['left_client']:.2f}s (client); back {m['back_server']:.2f}s / "
              f"{m['back_client']:.2f}s after the fault; {probes['sent']} probes, 0 empty, "
              "0 SERVFAIL, 0 lost")
        whats = [i["what"] for i in report["timeline"]]
        assert whats[0] == "fault injected: target-down 127.0.0.2"
        assert any(w.startswith("127.0.0.2 down (2 failed checks in a row (fall=2): "
                                "drill: target-down); answer www.hc.example. A -> 127.0.0.3")
                   for w in whats), whats
        assert any(w.startswith("127.0.0.2 up (2 good checks in a row") for w in whats)
        assert "fault removed (deadline, held by the server)" in whats
        assert any("answered without 127.0.0.2" in w for w in whats)
        assert any("answered with 127.0.0.2 again" in w for w in whats)
        markdown = (tmp_path / "drill.md").read_text()
        assert markdown.startswith(f"# Drill {report['drill']['id']}: target-down 127.0.0.2 "
                                   "— PASS")
        assert "left the answers" in markdown and "![probes per second" in markdown
        assert (tmp_path / "drill.svg").read_text().startswith("<svg")
        # The same path as a real failure: the target's checks failed, its listener never did.
        log = [e for e in events(s) if e["zone"] == "hc.example."]
        reasons = [e["reason"] for e in log if e["kind"] in ("fault", "health")]
        assert any(r.startswith("fault injected: target-down 127.0.0.2 (drill ") for r in reasons)
        assert "fault removed at its deadline: target-down 127.0.0.2" in reasons
        assert any("drill: target-down" in r and "127.0.0.2" in r for r in reasons)
        assert s.targets["127.0.0.2"].served > served_before   # it was up and checked meanwhile
        status = s.status()
        assert status["health"]["fault"] is None
        assert s.target_status("127.0.0.2")["up"] is True
        assert s.answer() == ("NOERROR", frozenset(MAIN))


def test_server_ends_the_drill_at_its_deadline_and_when_stopped(tmp_path):
    """No CLI at all: the server holds the deadline; drill-stop restores the target at once."""
    with site(tmp_path) as s:
        assert s.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        control = ControlClient(state_dir=s.state)
        started = control.call("drill-start", scenario="target-down", target="127.0.0.3",
                               duration=2.0, zones=None, all=True)
        drill_id = started["drill"]["id"]
        left, seen = s.watch(lambda a: a == {"127.0.0.2"}, limit=FALL * INTERVAL + 2)
        assert left is not None and not bad(seen)
        back, seen = s.watch(lambda a: a == frozenset(MAIN), limit=2 + RISE * INTERVAL + 3)
        assert back is not None and not bad(seen)
        assert wait_for(lambda: control.call("drill-status", id=drill_id)["drill"]["phase"]
                        == "done", timeout=5)
        record = control.call("drill-status", id=drill_id)["drill"]
        assert record["stopped_by"] is None
        assert [c["up"] for c in record["changes"]] == [False, True]

        # Stopped: the fault goes at once, long before its deadline of 60 s.
        started = control.call("drill-start", scenario="target-down", target="127.0.0.3",
                               duration=60.0, zones=None, all=True)
        assert s.watch(lambda a: a == {"127.0.0.2"}, limit=FALL * INTERVAL + 2)[0] is not None
        stop_at = time.monotonic()
        stopped = control.call("drill-stop", id=started["drill"]["id"])["drill"]
        assert stopped["stopped_by"]
        assert s.health()["fault"] is None           # removed at once, not at the deadline
        back, seen = s.watch(lambda a: a == frozenset(MAIN), limit=RISE * INTERVAL + 3)
        assert back is not None and not bad(seen)
        assert time.monotonic() - stop_at < RISE * INTERVAL + TIMEOUT + 1.5
        reasons = [e["reason"] for e in events(s) if e["kind"] == "fault"]
        assert any(r.startswith("fault removed: target-down 127.0.0.3 (drill stopped by ")
                   for r in reasons), reasons
        assert s.health()["fault"] is None


def test_preflight_refusals(tmp_path):
    with site(tmp_path) as s:
        assert s.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        line = one_line(drill(tmp_path, "--scenario", "target-down", "--target", "127.0.0.9"))
        assert "no health-checked RRset uses target 127.0.0.9" in line
        assert "127.0.0.2, 127.0.0.3, 127.0.0.4" in line
        line = one_line(drill(tmp_path, "--scenario", "target-down", "--target", "127.0.0.2",
                              "--duration", "0.5s"))
        assert "shorter than the target needs to leave the answers" in line
        s.targets["127.0.0.3"].kill()
        assert wait_for(lambda: not s.target_status("127.0.0.3")["up"], timeout=5)
        line = one_line(drill(tmp_path, "--scenario", "target-down", "--target", "127.0.0.3"))
        assert "is down already" in line
        s.fault("hang")
        assert wait_for(lambda: s.health()["fault"] is not None, timeout=5)
        line = one_line(drill(tmp_path, "--scenario", "target-down", "--target", "127.0.0.2"))
        assert "health-fault file" in line
        s.fault(None)
        assert s.answer()[0] == "NOERROR"


def test_last_target_up_stays_in_the_answer(tmp_path):
    """127.0.0.3 and the backup really dead: drilling 127.0.0.2 down leaves it (fail static)."""
    with site(tmp_path) as s:
        assert s.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        for address in ("127.0.0.3", "127.0.0.4"):
            s.targets[address].kill()
        assert wait_for(lambda: not s.target_status("127.0.0.3")["up"]
                        and not s.target_status("127.0.0.4")["up"], timeout=5)
        result = drill(tmp_path, "--scenario", "target-down", "--target", "127.0.0.2",
                       "--duration", "2s", "--qps", "100", "--report", "drill.md")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads((tmp_path / "drill.json").read_text())
        probes = report["probes"]
        assert probes["wrong"] == 0 and probes["lost"] == 0 and probes["by_source"]["without"] == 0
        assert [o["name"] for o in report["objectives"]][-1] == "www.hc.example. A keeps its answer"


@pytest.mark.parametrize("args, message", [
    (["--scenario", "target-down"], "--scenario target-down needs --target ADDR"),
    (["--scenario", "backend-down", "--target", "127.0.0.2"],
     "--target is only for --scenario target-down, not backend-down"),
    (["--scenario", "backend-down", "--etcd", "127.0.0.1:2379"], "--etcd goes with --fleet"),
    (["--scenario", "target-down", "--target", "127.0.0.2", "--duration", "0s"],
     "is not a positive duration"),
])
def test_bad_arguments_one_line(tmp_path, args, message):
    line = one_line(drill(tmp_path, *args))
    assert message in line and line.startswith("seawall failover drill: "), line


def test_not_an_address_refused_by_the_server(tmp_path):
    with site(tmp_path) as s:
        assert s.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        line = one_line(drill(tmp_path, "--scenario", "target-down", "--target", "www"))
        assert "--target 'www' is not an IP address" in line


@pytest.mark.parametrize("sig, verdict, source", [
    ("NOERROR | www.hc.example. A 127.0.0.2; www.hc.example. A 127.0.0.3 | ", "ok", "with"),
    ("NOERROR | www.hc.example. A 127.0.0.3 | ", "ok", "without"),
    ("NOERROR |  | hc.example. SOA ns1.hc.example. hostmaster.hc.example. 1 2 3 4 5",
     "wrong", None),                                                  # empty: NODATA
    ("SERVFAIL |  | ", "wrong", None),
    ("NXDOMAIN |  | ", "wrong", None),
    ("unparsable", "wrong", None),
    (None, "lost", None),
])
def test_every_probe_answer_must_hold_addresses(sig, verdict, source):
    from seawall.failover.drill_client import Probe
    from seawall.failover.drill_target_report import judge_target
    probe = Probe(0, 0.0, received=None if sig is None else 0.01, sig=sig)
    judge_target(probe, {"type": "A", "target": "127.0.0.2"})
    assert (probe.verdict, probe.source) == (verdict, source)
