"""A fleet of three servers on a real 3-member etcd cluster, with Knot as the hidden primary.

One fleet (module scope) goes through the cases in order; each case leaves
it as it found it (every zone live on every server), and a query loop per
server checks every answer meanwhile (none lost, none SERVFAIL, and the
address served is the one the state in force serves). Timings are printed
(``pytest -s``) for the record.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import wait_for
from failover.failover_peers import EMERGENCY_WWW, LIVE_WWW, Knot, zone_text
from fleet_peers import NAMES, NET, ORG, EtcdCluster, Fleet, org_text

from seawall.fleet.etcd import EtcdClient

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("fleet")
    etcd = EtcdCluster(work / "etcd")
    knot = Knot(work / "knot", {NET: zone_text(NET, 1, hosts=50)})
    servers = None
    try:
        etcd.start()
        knot.start()
        servers = Fleet(work, etcd, knot).start()
        assert wait_for(lambda: len(servers.view().members) == 3, 15), etcd.output()
        assert wait_for(lambda: all(s == "live" for s in servers.states(NET).values()), 10)
        yield servers
    finally:
        if servers is not None:
            servers.stop()
        knot.kill()
        etcd.stop()


def lost(loops) -> dict[str, dict[str, int]]:
    """Per server, every answer that was not an address (lost, SERVFAIL...)."""
    out = {}
    for name, loop in loops.items():
        bad = {k: v for k, v in loop.summary().items() if k not in (LIVE_WWW, EMERGENCY_WWW)}
        out[name] = bad
    return out


def first(loop, outcome: str, after: float) -> float | None:
    return loop.first(outcome, after)


def stop_loops(loops) -> None:
    for loop in loops.values():
        loop.stop()


def all_live(fleet: Fleet, zone: str = NET) -> bool:
    return all(s == "live" for s in fleet.states(zone).values())


# ------------------------------------------------------------------ status

def test_a_starting_member_never_publishes_a_zone_without_a_state(fleet: Fleet) -> None:
    """Every version of every member's report since it joined (etcd keeps them all)
    gives each zone a state: a member joins the fleet once its zones are decided, so
    a starting server never shows the others a zone it serves nothing for."""
    async def history() -> dict[str, list[dict]]:
        client = EtcdClient(fleet.etcd.endpoints, 2.0)
        members, _ = await client.get_prefix("/seawall/members/")
        out: dict[str, list[dict]] = {}
        for member in members:
            key = base64.b64encode(member.key.encode()).decode()
            for revision in range(member.create_revision, member.mod_revision + 1):
                answer = await client.call("/v3/kv/range", {"key": key, "revision": revision})
                for item in answer.get("kvs", []):
                    out.setdefault(member.key, []).append(
                        json.loads(base64.b64decode(item["value"])))
        return out

    reports = asyncio.run(history())
    assert sorted(k.rsplit("/", 1)[-1] for k in reports) == sorted(NAMES)
    for key, versions in reports.items():
        for report in versions:
            stateless = [z for z, info in report["zones"].items() if info["state"] is None]
            assert not stateless, (key, stateless, report)


def test_fleet_status_shows_every_server(fleet: Fleet) -> None:
    result = fleet.cli("fleet", "status", *fleet.etcd_args())
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in NAMES:
        assert f"  {name}: seawall" in result.stdout
    assert "DISAGREEMENT" not in result.stdout
    view = fleet.view()
    for name in NAMES:
        zones = view.members[name]["zones"]
        assert zones[f"{NET}."]["state"] == "live"
        assert zones[f"{ORG}."]["serial"] == 1
        assert view.members[name]["fleet"]["state"] == "joined"
    # each server's own status says it is in the fleet
    local = fleet.cli("failover", "status", "--state-dir", str(fleet.state_dir(NAMES[0])))
    assert local.returncode == 0, local.stderr
    assert f"Fleet: {NAMES[0]} is joined (deciding fleet)" in local.stdout, local.stdout
    # one epoch per zone, the same fingerprint everywhere
    assert view.epochs[f"{NET}."]["epoch"] == 1
    fps = {view.members[n]["zones"][f"{NET}."]["fingerprint"] for n in NAMES}
    assert fps == {view.epochs[f"{NET}."]["fingerprint"]}


# ------------------------------------------------------------- fleet orders

def test_fleet_force_reaches_every_server_within_a_second(fleet: Fleet) -> None:
    loops = fleet.loops()
    time.sleep(0.5)
    t0 = time.time()
    result = fleet.cli("failover", "force", "emergency", "--zone", NET, "--reason",
                       "provider outage", "--for", "10m", "--fleet", *fleet.etcd_args())
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    took = {}
    for name in NAMES:
        line = next(line for line in result.stdout.splitlines() if f"  {name}:" in line)
        assert "serves it" in line
        took[name] = float(line.split("(")[1].split("s after")[0])
    assert max(took.values()) < 1.0, took
    order_at = time.time()
    for name in NAMES:
        status = fleet.zone_status(name, NET)
        assert status["state"] == "emergency" and status["forced"]["mode"] == "emergency"
        assert "fleet order" in status["forced"]["by"]
    time.sleep(0.5)
    t1 = time.time()
    result = fleet.cli("failover", "release", "--zone", NET, "--fleet", *fleet.etcd_args())
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_for(lambda: all_live(fleet), 5)
    time.sleep(0.5)
    stop_loops(loops)
    switched = {n: first(loops[n], EMERGENCY_WWW, t0) for n in NAMES}
    back = {n: first(loops[n], LIVE_WWW, t1) for n in NAMES}
    print(f"force: order answered per server {took}; first emergency answer after the CLI "
          f"started: { {n: round(v - t0, 3) for n, v in switched.items()} }; release: first "
          f"live answer { {n: round(v - t1, 3) for n, v in back.items()} }; answers "
          f"{ {n: loops[n].summary() for n in NAMES} }")
    assert order_at - t0 < 5
    for name in NAMES:
        assert switched[name] is not None and back[name] is not None
    assert lost(loops) == {n: {} for n in NAMES}


# ------------------------------------------------------------------ quorum

def test_one_server_losing_the_backend_stays_on_last_good(fleet: Fleet) -> None:
    loops = fleet.loops()
    t0 = time.time()
    answer = fleet.control("edge-3").call("drill-start", scenario="backend-down",
                                          zones=[NET], duration=6)
    assert answer["ok"], answer
    assert wait_for(lambda: fleet.zone_status("edge-3", NET)["state"] == "stale", 5)
    detected = time.time() - t0
    states = []
    while time.time() - t0 < 6:
        states.append(fleet.states(NET))
        time.sleep(0.3)
    view = fleet.view()
    vote = view.members["edge-3"]["zones"][f"{NET}."]["vote"]
    status = fleet.cli("fleet", "status", *fleet.etcd_args()).stdout
    print(status)
    assert vote and "quorum not reached" in vote, view.members["edge-3"]
    assert "edge-3" in status and "quorum not reached" in status
    assert all(s["edge-3"] in ("live", "stale") for s in states), states
    assert all(s["edge-1"] == "live" and s["edge-2"] == "live" for s in states), states
    assert wait_for(lambda: all_live(fleet), 10)
    recovered = time.time() - t0
    stop_loops(loops)
    print(f"one backend cut: edge-3 stale after {detected:.2f}s, never emergency; live again "
          f"{recovered:.2f}s after the drill began; answers "
          f"{ {n: loops[n].summary() for n in NAMES} }")
    assert loops["edge-3"].summary().get(EMERGENCY_WWW) is None
    assert lost(loops) == {n: {} for n in NAMES}


def test_backend_down_for_all_switches_together_and_back(fleet: Fleet) -> None:
    loops = fleet.loops()
    time.sleep(0.5)
    t0 = time.time()
    fleet.knot.signal(signal.SIGSTOP)
    try:
        assert wait_for(lambda: all(s == "emergency" for s in fleet.states(NET).values()), 10)
    finally:
        time.sleep(1.0)
        t1 = time.time()
        fleet.knot.signal(signal.SIGCONT)
    assert wait_for(lambda: all_live(fleet), 15)
    time.sleep(0.5)
    stop_loops(loops)
    down = {n: first(loops[n], EMERGENCY_WWW, t0) for n in NAMES}
    up = {n: first(loops[n], LIVE_WWW, t1) for n in NAMES}
    print(f"backend down for all: emergency after { {n: round(v - t0, 3) for n, v in down.items()} }"
          f" s; live again after { {n: round(v - t1, 3) for n, v in up.items()} } s; answers "
          f"{ {n: loops[n].summary() for n in NAMES} }")
    assert max(down.values()) - min(down.values()) <= 1.0, down
    assert max(up.values()) - min(up.values()) <= 1.0, up
    assert lost(loops) == {n: {} for n in NAMES}


# ---------------------------------------------------------------- fencing

def test_an_older_version_offered_to_one_server_is_refused(fleet: Fleet) -> None:
    extra = "new A 192.0.2.7\n"
    for name in NAMES:
        (fleet.dirs[name] / "zones" / f"{ORG}.zone").write_text(org_text(2, extra))
    assert wait_for(lambda: all(fleet.zone_status(n, ORG)["serial"] == 2 for n in NAMES), 10)
    assert wait_for(lambda: fleet.view().epochs.get(f"{ORG}.", {}).get("serial") == 2, 5)
    # edge-3's source goes back to the content of serial 1, under a new serial: the
    # guard alone would take it (serial 3 is ahead, one RRset less is within the
    # ratios); the fleet knows that content as epoch 1 and refuses it.
    (fleet.dirs["edge-3"] / "zones" / f"{ORG}.zone").write_text(org_text(3))
    assert wait_for(lambda: fleet.zone_status("edge-3", ORG)["held"] is not None, 10)
    status = fleet.zone_status("edge-3", ORG)
    print(f"older version: edge-3 holds serial {status['held']['serial']}: "
          f"{status['held']['reason']}")
    assert status["serial"] == 2 and status["state"] == "held"
    assert "older than the fleet's newest" in status["held"]["reason"]
    assert all(fleet.zone_status(n, ORG)["serial"] == 2 for n in ("edge-1", "edge-2"))
    status = fleet.cli("fleet", "status", *fleet.etcd_args()).stdout
    print(status)
    assert "edge-3 example.org. held serial 3: older than the fleet's newest" in status
    # an operator's accept, given to the fleet, serves it on purpose: the newest now
    result = fleet.cli("failover", "accept", "--zone", ORG, "--fleet", *fleet.etcd_args())
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "edge-3: serves it" in result.stdout
    for name in ("edge-1", "edge-2"):                # they had nothing to accept
        assert f"{name}: nothing to do here" in result.stdout and "nothing held" in result.stdout
    assert fleet.zone_status("edge-3", ORG)["serial"] == 3
    assert wait_for(lambda: fleet.view().epochs[f"{ORG}."]["serial"] == 3, 5)
    assert fleet.view().epochs[f"{ORG}."]["epoch"] == 3
    # a new version for everyone: the fleet agrees again
    for name in NAMES:
        (fleet.dirs[name] / "zones" / f"{ORG}.zone").write_text(
            org_text(4, extra + "more A 192.0.2.8\n"))
    assert wait_for(lambda: all(fleet.zone_status(n, ORG)["serial"] == 4
                                and fleet.zone_status(n, ORG)["state"] == "live"
                                for n in NAMES), 10)


def test_a_server_that_does_not_follow_is_named_and_its_lease_lapses(fleet: Fleet) -> None:
    stopped = fleet.servers["edge-3"]
    stopped.signal(signal.SIGSTOP)
    try:
        result = fleet.cli("failover", "force", "emergency", "--zone", NET, "--reason",
                           "provider outage", "--fleet", "--wait", "2s", *fleet.etcd_args())
        print(result.stdout)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "edge-1: serves it" in result.stdout and "edge-2: serves it" in result.stdout
        line = next(line for line in result.stdout.splitlines() if "  edge-3:" in line)
        assert "did not follow within 2s" in line or "left the fleet" in line
        assert "not followed by 1 of 3: edge-3" in result.stdout
        assert wait_for(lambda: "edge-3" not in fleet.view().members, 6)
        status = fleet.cli("fleet", "status", *fleet.etcd_args())
        print(status.stdout)
        assert status.returncode == 1
        assert "edge-3: LAPSED (lease expired)" in status.stdout
    finally:
        stopped.signal(signal.SIGCONT)
    t0 = time.time()
    # back: a new lease, and the order it missed is followed
    assert wait_for(lambda: "edge-3" in fleet.view().members, 10)
    assert wait_for(lambda: fleet.zone_status("edge-3", NET)["state"] == "emergency", 5)
    print(f"edge-3 rejoined and followed the order it missed {time.time() - t0:.2f}s after "
          "it was resumed")
    result = fleet.cli("failover", "release", "--zone", NET, "--fleet", *fleet.etcd_args())
    assert result.returncode == 0, result.stdout + result.stderr
    assert wait_for(lambda: all_live(fleet), 5)


# -------------------------------------------------------- static stability

def test_one_etcd_member_killed_changes_nothing(fleet: Fleet) -> None:
    loops = fleet.loops()
    fleet.etcd.kill_member("e1")
    try:
        states = []
        t0 = time.time()
        while time.time() - t0 < 4:
            states.append(fleet.states(NET))
            time.sleep(0.3)
        view = fleet.view()
        result = fleet.cli("failover", "force", "emergency", "--zone", NET, "--reason", "x",
                           "--fleet", *fleet.etcd_args())
        print(result.stdout)
        assert result.returncode == 0, result.stdout + result.stderr
        result = fleet.cli("failover", "release", "--zone", NET, "--fleet", *fleet.etcd_args())
        assert result.returncode == 0, result.stdout + result.stderr
        assert wait_for(lambda: all_live(fleet), 5)
    finally:
        fleet.etcd.start()
    stop_loops(loops)
    print(f"one etcd member killed: states {states[-1]}, members {sorted(view.members)}, "
          f"answers { {n: loops[n].summary() for n in NAMES} }")
    assert all(s == {n: "live" for n in NAMES} for s in states), states
    assert sorted(view.members) == list(NAMES)
    assert all(view.members[n]["fleet"]["state"] == "joined" for n in NAMES)
    assert lost(loops) == {n: {} for n in NAMES}


def test_etcd_hanging_changes_nothing(fleet: Fleet) -> None:
    """Every etcd member stopped (SIGSTOP): requests time out instead of failing fast."""
    loops = fleet.loops()
    before = {z: fleet.states(z) for z in (NET, ORG)}
    t0 = time.time()
    fleet.etcd.signal_all(signal.SIGSTOP)
    try:
        states = []
        while time.time() - t0 < 5:
            states.append(fleet.states(NET))
            time.sleep(0.3)
        said = {n: fleet.local(n).get("state") for n in NAMES}
    finally:
        fleet.etcd.signal_all(signal.SIGCONT)
    t1 = time.time()
    rejoined = wait_for(lambda: all(fleet.local(n).get("state") == "joined" for n in NAMES)
                        and sorted(fleet.view().members) == list(NAMES), 20)
    t2 = time.time()
    time.sleep(0.5)
    stop_loops(loops)
    print(f"etcd hanging {t1 - t0:.1f}s: servers say {said}; in contact again {t2 - t1:.2f}s "
          f"after it resumed; answers { {n: loops[n].summary() for n in NAMES} }")
    assert all(s == before[NET] for s in states), states
    assert {z: fleet.states(z) for z in (NET, ORG)} == before
    assert all(state in ("unreachable", "alone") for state in said.values()), said
    assert rejoined
    assert lost(loops) == {n: {} for n in NAMES}


def test_etcd_stopped_servers_keep_answering_and_rejoin(fleet: Fleet) -> None:
    loops = fleet.loops()
    before = {z: fleet.states(z) for z in (NET, ORG)}
    t0 = time.time()
    fleet.etcd.stop()
    try:
        states = []
        while time.time() - t0 < 6:       # past the grace (4s): deciding alone
            states.append(fleet.states(NET))
            time.sleep(0.3)
        locals_ = {n: fleet.local(n) for n in NAMES}
        result = fleet.cli("fleet", "status", *fleet.etcd_args(), "--state-dir",
                           str(fleet.state_dir("edge-1")))
        print(result.stdout)
        assert result.returncode == 2
        assert "fleet unreachable" in result.stdout and "fleet alone" in result.stdout
        after = {z: fleet.states(z) for z in (NET, ORG)}
    finally:
        t1 = time.time()
        fleet.etcd.start()
    rejoined = wait_for(lambda: sorted(fleet.view().members) == list(NAMES)
                        and all(fleet.local(n).get("state") == "joined" for n in NAMES), 15)
    t2 = time.time()
    stop_loops(loops)
    print(f"etcd stopped {t1 - t0:.1f}s: states unchanged {after == before}, servers say "
          f"{ {n: locals_[n].get('state') for n in NAMES} }; rejoined {t2 - t1:.2f}s after "
          f"etcd was started again; answers { {n: loops[n].summary() for n in NAMES} }")
    assert all(s == before[NET] for s in states), states
    assert after == before
    assert all(locals_[n].get("state") == "alone" for n in NAMES), locals_
    assert rejoined
    assert lost(loops) == {n: {} for n in NAMES}
    for name in NAMES:
        assert loops[name].summary().get(EMERGENCY_WWW) is None
