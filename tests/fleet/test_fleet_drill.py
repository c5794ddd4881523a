"""``seawall failover drill --fleet``: one drill on every live member, one report.

A real 3-member etcd cluster, Knot as the hidden primary of example.net and
three Seawall servers (edge-2 also with a signed TCP control listener). The
CLI finds every member's control channel in etcd, starts the drill on each
(edge-2 over TCP with the shared secret, the others over their sockets),
and writes one report with every server's timeline. A member that cannot be
reached, or refuses, is named in the report and makes the exit code 1.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from conftest import free_port, wait_for
from failover.failover_peers import Knot, zone_text
from fleet_peers import NAMES, NET, ORG, EtcdCluster, Fleet
from seawall.fleet.etcd import EtcdClient
from seawall.fleet.view import key

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("fleet-drill")
    etcd = EtcdCluster(work / "etcd")
    knot = Knot(work / "knot", {NET: zone_text(NET, 1, hosts=50)})
    servers = None
    try:
        etcd.start()
        knot.start()
        servers = Fleet(work, etcd, knot, tcp_control=("edge-2",)).start()
        assert wait_for(lambda: len(servers.view().members) == 3, 15), etcd.output()
        assert wait_for(lambda: all(s == "live" for s in servers.states(NET).values()), 10)
        yield servers
    finally:
        if servers is not None:
            servers.stop()
        knot.kill()
        etcd.stop()


def all_live(fleet: Fleet, zone: str) -> bool:
    return all(s == "live" for s in fleet.states(zone).values())


def fleet_drill(fleet: Fleet, report: Path, *extra: str):
    return fleet.cli("failover", "drill", "--scenario", "backend-down", "--zone", NET,
                     "--duration", "4s", "--qps", "60", "--fleet", *fleet.etcd_args(),
                     "--secret-file", str(fleet.secret), "--report", str(report), *extra,
                     timeout=90)


def test_members_publish_their_control_channel(fleet: Fleet) -> None:
    # The control channel opens after the fleet is joined: the next report names it.
    assert wait_for(lambda: all((m.get("control") or {}).get("socket")
                                for m in fleet.view().members.values()), 5)
    members = fleet.view().members
    for name in NAMES:
        control = members[name]["control"]
        assert control["socket"] == str((fleet.state_dir(name) / "control.sock").resolve())
        assert (control["tcp"] is not None) == (name == "edge-2"), control
    assert members["edge-2"]["control"]["tcp"].startswith("127.0.0.1:")


def test_fleet_drill_every_server_timeline(fleet: Fleet, tmp_path: Path) -> None:
    result = fleet_drill(fleet, tmp_path / "fleet.md")
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "fleet.json").read_text())
    assert report["verdict"] == "pass" and report["not_passed"] == []
    assert sorted(report["members"]) == sorted(NAMES)
    switched = {}
    for name in NAMES:
        member = report["members"][name]
        assert member["status"] == "ran" and member["verdict"] == "pass", member
        assert member["via"].startswith("tcp 127.0.0.1:" if name == "edge-2" else "socket ")
        assert member["probes"]["lost"] == 0 and member["probes"]["wrong"] == 0
        assert member["probes"]["sent"] > 100
        path = member["states"][f"{NET}."]
        states = [s["state"] for s in path]
        # stale_for 0s: through stale (the quorum's vote) to emergency, then back to live.
        assert states in (["live", "emergency", "live"],
                          ["live", "stale", "emergency", "live"]), path
        times = [s["t"] for s in path[1:]]
        assert times == sorted(times)
        switched[name] = path[states.index("emergency")]["t"]
        whats = [i["what"] for i in member["timeline"]]
        assert whats[0] == "fault injected"
        assert any(w.startswith("switch to emergency") for w in whats)
        assert any(w.startswith("fault removed (deadline") for w in whats)
    # One clock for the fleet: seconds since the first member's fault.
    starts = {name: report["members"][name]["started_after"] for name in NAMES}
    assert min(starts.values()) == 0 and 0 < max(starts.values()) < 2.0, starts
    for name in NAMES:
        assert report["members"][name]["timeline"][0]["t"] == pytest.approx(starts[name])
    spread = max(switched.values()) - min(switched.values())
    print(f"FIGURE fleet drill: switched to emergency at {switched} (fleet seconds), "
          f"spread {spread:.2f}s")
    assert spread <= 1.0        # the fleet switched together (issue 17: within 1 s)
    text = (tmp_path / "fleet.md").read_text()
    assert text.startswith("# Fleet drill: backend-down on 3 member(s) — PASS")
    for name in NAMES:
        assert f"## {name}" in text
    assert f"{NET}. live → " in text and " → emergency +" in text
    assert wait_for(lambda: all_live(fleet, NET), 15)


def test_unreachable_and_refusing_members_are_named(fleet: Fleet, tmp_path: Path) -> None:
    """A member whose control channel does not answer (a live key in etcd, nothing
    behind it) and one that refuses (a drill of its own is running) fail the run."""
    client = EtcdClient(fleet.etcd.endpoints, 1.0)

    async def ghost() -> int:
        lease = await client.grant(60)
        body = {"name": "ghost", "host": socket.gethostname(), "zones": {},
                "control": {"socket": str(tmp_path / "nothing" / "control.sock"),
                            "tcp": None}}
        await client.put(key("members", "ghost"), json.dumps(body).encode(), lease=lease)
        return lease

    lease = asyncio.run(ghost())
    busy = fleet.control("edge-3")
    own = busy.call("drill-start", scenario="backend-down", zones=[ORG], duration=60.0)
    try:
        result = fleet_drill(fleet, tmp_path / "fleet.md")
        print(result.stdout, result.stderr)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        report = json.loads((tmp_path / "fleet.json").read_text())
        members = report["members"]
        assert report["verdict"] == "fail"
        assert report["not_passed"] == ["edge-3", "ghost"]
        assert members["ghost"]["status"] == "unreachable"
        assert "no Seawall server is running" in members["ghost"]["error"]
        assert members["edge-3"]["status"] == "refused"
        assert "a drill is already running" in members["edge-3"]["error"]
        for name in ("edge-1", "edge-2"):
            assert members[name]["verdict"] == "pass", members[name]
        text = (tmp_path / "fleet.md").read_text()
        assert "| ghost | **UNREACHABLE**" in text and "| edge-3 | **REFUSED**" in text
        assert "not passed: edge-3, ghost" in text
    finally:
        busy.call("drill-stop", id=own["drill"]["id"])
        asyncio.run(client.revoke(lease))
    assert wait_for(lambda: all_live(fleet, NET) and all_live(fleet, ORG), 20)


def test_fleet_drill_without_members_or_etcd(fleet: Fleet, tmp_path: Path) -> None:
    result = fleet.cli("failover", "drill", "--scenario", "backend-down", "--fleet",
                       "--etcd", f"127.0.0.1:{free_port()}", timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the fleet is unreachable" in lines[0], result.stderr
