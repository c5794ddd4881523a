"""The files backend under the controller, end to end with a real server process.

A zone file that breaks is held: the last good zone keeps answering and an
event says why; fixing it brings the new data; a wiped zone is held by the
guard; an emergency file that does not load makes its zone unprotected, it
does not stop the start.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dns.name
import pytest

from conftest import ROOT, SeawallProcess, ask, free_port, require_tool, wait_for
from seawall.backends.files import FilesBackend

ZONE = "example.com."


def events(state: Path) -> list[dict]:
    path = state / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def serve(tmp_path: Path, **failover) -> tuple[SeawallProcess, Path, Path]:
    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    settings = {"probe_interval": "0.2s", "fail_after": 3, "recover_after": 3, **failover}
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{free_port()}\"]\nzones: zones\n"
                      "emergency_dir: zones/emergency\nstate_dir: state\nfailover:\n"
                      + "".join(f"  {k}: {v}\n" for k, v in settings.items()))
    return SeawallProcess(tmp_path, config=config).start(), zones, tmp_path / "state"


def www(server: SeawallProcess) -> str:
    return ask(server.addr, f"www.{ZONE}").answer[0][0].address


def soa_serial(server: SeawallProcess) -> int:
    return ask(server.addr, ZONE, "SOA").answer[0][0].serial


def bump(text: str, serial: int) -> str:
    return text.replace("2026112701", str(serial))


def test_broken_file_keeps_last_good_then_fix_brings_new_data(tmp_path):
    server, zones, state = serve(tmp_path, stale_for="10m")
    try:
        path = zones / "example.com.zone"
        good = path.read_text()
        path.write_text(bump(good, 2026112702) + "www CNAME elsewhere.example.\n")
        rejected = wait_for(lambda: [e for e in events(state) if e["kind"] == "rejected"])
        assert rejected, server.output()
        assert "CNAME at www.example.com. beside other data" in rejected[0]["reason"]
        assert "zones/example.com.zone:" in rejected[0]["reason"]
        assert www(server) == "192.0.2.80" and soa_serial(server) == 2026112701
        # the file stays broken: the zone is held, same answers, and never more than held
        assert wait_for(lambda: [e for e in events(state) if e["to"] == "held"])
        time.sleep(1.5)   # well over fail_after × probe_interval
        assert www(server) == "192.0.2.80"
        path.write_text(bump(good, 2026112703).replace("192.0.2.80", "192.0.2.81"))
        assert wait_for(lambda: www(server) == "192.0.2.81"), server.output()
        assert soa_serial(server) == 2026112703
        assert wait_for(lambda: [e for e in events(state) if e["to"] == "live"
                                 and e["from"] == "held"])
        moves = [(e["from"], e["to"]) for e in events(state) if e["kind"] == "transition"]
        assert moves == [(None, "live"), ("live", "held"), ("held", "live")]
    finally:
        server.stop()


def test_broken_file_is_held_even_when_stale_for_is_zero(tmp_path):
    """Bad data is no backend failure: it never leads to emergency by itself."""
    server, zones, state = serve(tmp_path, stale_for="0s")
    try:
        path = zones / "example.com.zone"
        good = path.read_text()
        path.write_text(good + "this is not a record\n")
        assert wait_for(lambda: [e for e in events(state) if e["to"] == "held"]), \
            server.output()
        answers = set()
        for _ in range(20):      # 2 s: ten probes, over three times fail_after
            answers.add(www(server))
            time.sleep(0.1)
        assert answers == {"192.0.2.80"}
        assert not [e for e in events(state) if e["to"] == "emergency"]
        # the backend really failing is what leads to emergency (stale_for: 0s)
        path.unlink()
        assert wait_for(lambda: www(server) == "192.0.2.99"), server.output()
        switch = [e for e in events(state) if e["to"] == "emergency"][0]
        assert "3 consecutive failures" in switch["reason"]
        assert "zone file is missing" in switch["reason"]
        # emergency TTLs are capped (emergency_ttl_max: 300)
        assert ask(server.addr, f"www.{ZONE}").answer[0].ttl <= 300
        require_tool("dig")
        dig = subprocess.run(["dig", "+short", "@127.0.0.1", "-p", str(server.addr[1]),
                              f"www.{ZONE}"], capture_output=True, text=True, timeout=10)
        assert dig.stdout.split() == ["192.0.2.99"]
    finally:
        server.stop()


def test_wiped_zone_is_rejected_by_the_guard(tmp_path):
    server, zones, state = serve(tmp_path, stale_for="10m")
    try:
        path = zones / "example.com.zone"
        lines = path.read_text().splitlines()
        kept = [line for line in lines if " SOA " in line or " NS " in line
                or line.startswith(("$", ";", "ns1 ", "ns2 "))]
        path.write_text(bump("\n".join(kept), 2026112702) + "\n")
        rejected = wait_for(lambda: [e for e in events(state) if e["kind"] == "rejected"])
        assert rejected, server.output()
        assert re.search(r"would delete \d+ of \d+ RRsets \(\d+% > 30%\)",
                         rejected[0]["reason"]), rejected
        assert www(server) == "192.0.2.80"
        assert soa_serial(server) == 2026112701
    finally:
        server.stop()


def test_vanished_directory_is_a_failure_not_an_empty_server(tmp_path):
    """The default stale_for (the SOA EXPIRE): a vanished checkout serves the last good data."""
    server, zones, state = serve(tmp_path)
    try:
        moved = tmp_path / "moved"
        zones.rename(moved)
        stale = wait_for(lambda: [e for e in events(state) if e["to"] == "stale"])
        assert stale, server.output()
        assert "cannot list" in stale[0]["reason"]
        assert www(server) == "192.0.2.80"
        assert not [e for e in events(state) if e["to"] == "emergency"]
        moved.rename(zones)
        assert wait_for(lambda: [e for e in events(state) if e["from"] == "stale"
                                 and e["to"] == "live"]), server.output()
        assert www(server) == "192.0.2.80"
    finally:
        server.stop()


def test_vanished_directory_with_stale_for_zero_is_emergency(tmp_path):
    server, zones, state = serve(tmp_path, stale_for="0s")
    try:
        moved = tmp_path / "moved"
        zones.rename(moved)
        assert wait_for(lambda: www(server) == "192.0.2.99"), server.output()
        reason = [e for e in events(state) if e["to"] == "emergency"][0]["reason"]
        assert "cannot list" in reason
        moved.rename(zones)
        assert wait_for(lambda: www(server) == "192.0.2.80"), server.output()
    finally:
        server.stop()


def test_sighup_reloads_at_once(tmp_path):
    server, zones, _ = serve(tmp_path, probe_interval="1h")
    try:
        path = zones / "example.com.zone"
        path.write_text(bump(path.read_text(), 2026112702).replace("192.0.2.80", "192.0.2.82"))
        server.signal(1)
        assert wait_for(lambda: www(server) == "192.0.2.82", 5), server.output()
    finally:
        server.stop()


def test_cold_start_while_directory_is_gone_serves_last_good(tmp_path):
    server, zones, state = serve(tmp_path, stale_for="10m")
    path = zones / "example.com.zone"
    path.write_text(bump(path.read_text(), 2026112702).replace("192.0.2.80", "192.0.2.83"))
    assert wait_for(lambda: www(server) == "192.0.2.83")
    server.stop()
    shutil.rmtree(zones / "emergency")
    for child in zones.iterdir():
        child.unlink()
    zones.rmdir()
    restarted = SeawallProcess(tmp_path, config=tmp_path / "seawall.yaml")
    (tmp_path / "zones").mkdir()   # an empty checkout
    shutil.copytree(ROOT / "zones" / "emergency", tmp_path / "zones" / "emergency")
    with restarted:
        assert www(restarted) == "192.0.2.83"
        assert soa_serial(restarted) == 2026112702
        last = [e for e in events(state) if e["kind"] == "transition"][-1]
        assert (last["from"], last["to"], last["cause"]) == (None, "stale", "startup")


def run_check_start(tmp_path: Path, config_text: str) -> subprocess.CompletedProcess:
    config = tmp_path / "seawall.yaml"
    config.write_text(config_text)
    return subprocess.run([sys.executable, "-m", "seawall", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)


def test_broken_emergency_zone_leaves_the_zone_unprotected_not_the_server_down(tmp_path):
    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    (zones / "emergency" / "example.com.zone").write_text("$ORIGIN example.com.\n@ A 1.2.3.4\n")
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{free_port()}\"]\nstate_dir: state\n")
    with SeawallProcess(tmp_path, config=config) as server:
        assert www(server) == "192.0.2.80"
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "seawall", "failover", "status", "--json",
             "--state-dir", str(tmp_path / "state")], capture_output=True, text=True,
            timeout=30).stdout)
        zone = [z for z in status["status"]["zones"] if z["zone"] == ZONE][0]
        assert zone["protected"] is False
        assert "emergency/example.com.zone:1: zone example.com. has no SOA record" \
            in zone["unprotected"]
        unprotected = [e for e in events(tmp_path / "state") if e["kind"] == "unprotected"]
        assert unprotected and unprotected[0]["zone"] == ZONE
    # CI still catches it: seawall check fails on the broken emergency file
    check = subprocess.run([sys.executable, "-m", "seawall", "check", str(zones)],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert check.returncode == 1
    assert "emergency/example.com.zone:1:" in check.stdout + check.stderr


def test_missing_emergency_zone_is_an_error_unless_allowed(tmp_path):
    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    shutil.copy(zones / "example.com.zone", zones / "example.org.zone")
    (zones / "example.org.zone").write_text(
        (zones / "example.com.zone").read_text().replace("example.com.", "example.org."))
    result = run_check_start(tmp_path, f"listen: [\"127.0.0.1:{free_port()}\"]\n")
    assert result.returncode == 2
    assert "no emergency zone in zones/emergency for: example.org." in result.stderr
    config = (f"listen: [\"127.0.0.1:{free_port()}\"]\n"
              "failover: {require_emergency: false}\n")
    (tmp_path / "seawall.yaml").write_text(config)
    with SeawallProcess(tmp_path, config=tmp_path / "seawall.yaml") as server:
        assert ask(server.addr, "www.example.org.").answer[0][0].address == "192.0.2.80"
        assert "no emergency zone: zone=example.org." in server.output()


def test_fault_injection_drives_the_real_path(tmp_path):
    """A drill's faults, injected in the backend client, take the zone through the states."""
    from seawall.backends.base import Fault
    from seawall.config import FailoverConfig
    from seawall.failover.controller import Controller
    from seawall.failover.emergency import load_emergency

    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    backend = FilesBackend(zones, probe_timeout=0.05)
    published: list = []
    ctl = Controller(FailoverConfig(fail_after=2, recover_after=2, probe_timeout=0.05,
                                    stale_for=0), published.append)
    ctl.add_emergency(load_emergency(zones / "emergency").zones)
    origin = dns.name.from_text(ZONE)

    def look() -> str:
        ctl.apply(asyncio.run(backend.check()))
        return ctl.zones[origin].served_mode.value

    assert look() == "live"
    for kind in ("backend-corrupt", "backend-wipe"):   # bad data: held at once, no emergency
        backend.faults.inject(Fault(kind))
        assert [look(), look(), look()] == ["held", "held", "held"], kind
        backend.faults.clear()
        assert look() == "live", kind
    # failures: emergency (stale_for: 0); the second bounce in a row is damped (× 2)
    for kind, back in (("backend-down", 2), ("backend-hang", 4)):
        backend.faults.inject(Fault(kind))
        assert [look(), look()] == ["live", "emergency"], kind
        backend.faults.clear()
        assert [look() for _ in range(back)] == ["emergency"] * (back - 1) + ["live"], kind
    last = ctl.zones[origin].last_event   # the way back is explained by the recovery probes
    assert (last["kind"], last["from"], last["to"]) == ("transition", "emergency", "live"), last
    assert "recover_after=2 × flap damping 2" in last["reason"], last
    assert backend.faults.injected == 10


def git(zones: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                   cwd=zones, check=True, capture_output=True, timeout=30)


def test_git_commit_that_breaks_a_zone_then_one_that_fixes_it(tmp_path):
    """Scenario 8: the deploy job checks out commits; a broken one is not served."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    server, zones, state = serve(tmp_path, stale_for="10m")
    try:
        git(zones, "init", "-q")
        git(zones, "add", ".")
        git(zones, "commit", "-qm", "good")
        path = zones / "example.com.zone"
        good = path.read_text()
        path.write_text(bump(good, 2026112702).replace("www         A", "www  BOGUS"))
        git(zones, "commit", "-qam", "broken")
        broke = time.time()
        rejected = wait_for(lambda: [e for e in events(state) if e["kind"] == "rejected"])
        assert rejected, server.output()
        print(f"\n[git: broken commit] rejected after {rejected[0]['ts'] - broke:.2f}s: "
              f"{rejected[0]['reason']}")
        assert "example.com.zone:" in rejected[0]["reason"]
        assert www(server) == "192.0.2.80"
        path.write_text(bump(good, 2026112703).replace("192.0.2.80", "192.0.2.84"))
        git(zones, "commit", "-qam", "fixed")
        assert wait_for(lambda: www(server) == "192.0.2.84"), server.output()
        assert soa_serial(server) == 2026112703
    finally:
        server.stop()


def test_big_zone_update_loses_no_query(tmp_path):
    """A 30,000-record zone is re-read, judged and swapped while a client asks 200 q/s."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "failover"))
    from failover_peers import QueryLoop, zone_text

    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    (zones / "example.net.zone").write_text(zone_text("example.net", 1, hosts=30000))
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{free_port()}\"]\nstate_dir: state\n"
                      "failover: {probe_interval: 0.2s, require_emergency: false}\n")
    with SeawallProcess(tmp_path, config=config) as server:
        loop = QueryLoop(server.addr, qname="www.example.net.", timeout=1.0).start()
        time.sleep(0.5)
        started = time.monotonic()
        (zones / "example.net.zone").write_text(
            zone_text("example.net", 2, hosts=30001, www="192.0.2.81"))
        assert wait_for(lambda: ask(server.addr, "www.example.net.").answer[0][0].address
                        == "192.0.2.81", 60), server.output()
        took = time.monotonic() - started
        time.sleep(0.5)
        loop.stop()
    summary = loop.summary()
    print(f"\n[30k-record zone] new version served after {took:.2f}s; answers: {summary}")
    assert set(summary) == {"192.0.2.80", "192.0.2.81"}, summary


def test_snapshot_of_a_zone_whose_file_was_removed_is_not_served_after_restart(tmp_path):
    server, zones, state = serve(tmp_path)
    extra = zones / "gone.example.zone"
    extra.write_text("$ORIGIN gone.example.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n"
                     "ns1 A 192.0.2.1\n")
    (zones / "emergency" / "gone.example.zone").write_text(extra.read_text())
    try:
        server.signal(1)
        assert wait_for(lambda: ask(server.addr, "ns1.gone.example.").answer), server.output()
    finally:
        server.stop()
    assert (state / "snapshots" / "gone.example.zone").exists()
    extra.unlink()
    (zones / "emergency" / "gone.example.zone").unlink()
    server = SeawallProcess(tmp_path, config=tmp_path / "seawall.yaml").start()
    try:
        assert ask(server.addr, "ns1.gone.example.").rcode() == 5  # REFUSED: not ours any more
        assert www(server) == "192.0.2.80"
        removed = [e for e in events(state) if e["kind"] == "removed"]
        assert removed and removed[-1]["zone"] == "gone.example."
        assert not (state / "snapshots" / "gone.example.zone").exists()
    finally:
        server.stop()
