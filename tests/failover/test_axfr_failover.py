"""End to end: Knot as the hidden primary, Seawall as its secondary, a client asking.

Each scenario runs real processes on loopback: knotd on a free port with its
own config, ``seawall serve`` with an axfr backend pointing at it, and a
query loop of 200 queries/s checking every answer. The tests print the
measured time from the fault to the switch and the number of lost answers
(which must be zero).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import dns.name
import pytest

from conftest import SeawallProcess, ask, free_port, wait_for
from seawall.app import App
from seawall.config import load_config
from failover_peers import (EMERGENCY_WWW, LIVE_WWW, Knot, QueryLoop, emergency_text, events,
                            start_seawall, transitions, zone_text)

pytestmark = pytest.mark.interop
ZONE = "example.net"
INTERVAL = 0.5


def setup(tmp_path: Path, *, stale_for: str = "0s", fail_after: int = 3, recover_after: int = 5,
          notify: bool = False, tsig=None, seawall_tsig=None, journal: bool = False,
          extra_backend: str = "", probe_interval: float = INTERVAL,
          hosts: int = 2000) -> tuple[Knot, Path, int]:
    port = free_port()
    knot = Knot(tmp_path / "knot", {ZONE: zone_text(ZONE, 1, hosts=hosts)},
                notify_port=port if notify else None, tsig=tsig, journal=journal)
    knot.start()
    (tmp_path / "emergency").mkdir()
    (tmp_path / "emergency" / f"{ZONE}.zone").write_text(emergency_text(ZONE))
    key = seawall_tsig or tsig
    tsig_line = (f"    tsig: {{name: {key[0]}, algorithm: {key[1]}, secret: \"{key[2]}\"}}\n"
                 if key else "")
    config = tmp_path / "seawall.yaml"
    config.write_text(
        f"listen: [\"127.0.0.1:{port}\"]\n"
        f"state_dir: state\nemergency_dir: emergency\n"
        f"backends:\n  - type: axfr\n    primary: \"127.0.0.1:{knot.port}\"\n"
        f"    zones: [{ZONE}]\n{tsig_line}{extra_backend}"
        f"failover:\n  probe_interval: {probe_interval}s\n  probe_timeout: {INTERVAL}s\n"
        f"  fail_after: {fail_after}\n  recover_after: {recover_after}\n"
        f"  stale_for: {stale_for}\n  startup_wait: 3s\n")
    return knot, config, port


# The loss-free switches hold in every way the server can run: one process
# (``workers: 1``, the server answers itself), several workers (the default:
# one per core; a switch forks a new generation), and each pinned to one core,
# where the hand-off between generations and the GIL compete for that core.
MODES = {
    "one-process": (["--workers", "1"], None),
    "workers": ([], None),
    "one-process-one-core": (["--workers", "1"], {0}),
    "workers-one-core": (["--workers", "2"], {0}),
}


@pytest.fixture(params=list(MODES))
def mode(request) -> tuple[list[str], set[int] | None]:
    return MODES[request.param]


def start_in_mode(tmp_path: Path, config: Path, mode) -> SeawallProcess:
    args, cpus = mode
    return SeawallProcess(tmp_path, *args, config=config, cpus=cpus).start()


def report(name: str, fault_at: float, switched_at: float | None, loop: QueryLoop) -> None:
    took = f"{switched_at - fault_at:.2f}s" if switched_at else "never"
    print(f"\n[{name}] fault -> switch: {took}; answers: {loop.summary()}")


def assert_nothing_lost(loop: QueryLoop) -> None:
    summary = loop.summary()
    bad = {k: v for k, v in summary.items() if k not in (LIVE_WWW, EMERGENCY_WWW)}
    assert not bad, f"lost or wrong answers: {summary}"
    assert sum(summary.values()) > 100


def switch_time(state: Path, to: str, after: float) -> float | None:
    for event in events(state):
        if event["kind"] == "transition" and event["to"] == to and event["ts"] >= after:
            return event["ts"]
    return None


def test_primary_killed_then_restarted(tmp_path, mode):
    knot, config, _ = setup(tmp_path, stale_for="5s")
    state = tmp_path / "state"
    seawall = start_in_mode(tmp_path, config, mode)
    try:
        assert ask(seawall.addr, f"www.{ZONE}.").answer[0][0].address == LIVE_WWW
        loop = QueryLoop(seawall.addr).start()
        time.sleep(1)
        killed = time.time()
        knot.kill()
        assert wait_for(lambda: switch_time(state, "emergency", killed), 15)
        stale = switch_time(state, "stale", killed)
        emergency = switch_time(state, "emergency", killed)
        time.sleep(1)
        restarted = time.time()
        knot.start()
        assert wait_for(lambda: switch_time(state, "live", restarted), 15)
        live = switch_time(state, "live", restarted)
        time.sleep(1)
        loop.stop()
    finally:
        seawall.stop()
        knot.kill()
    report("SIGKILL: stale", killed, stale, loop)
    report("SIGKILL: emergency", killed, emergency, loop)
    report("restart: live", restarted, live, loop)
    assert_nothing_lost(loop)
    moves = transitions(state, f"{ZONE}.")
    assert moves == [(None, "live", "startup"), ("live", "stale", "probe"),
                     ("stale", "emergency", "probe"), ("emergency", "live", "probe")]
    # detection within fail_after probes (+ one probe timeout and a margin)
    assert stale - killed < 3 * INTERVAL + INTERVAL + 1.5
    assert emergency - killed >= 4.5               # stale_for: 5s of last good data
    assert live - restarted >= 4 * INTERVAL         # recover_after=5 successes
    # every answer is the data the controller's state says at that moment
    # (0.1 s margin: an answer computed just before a swap may arrive just after it)
    assert_answers_follow(loop, [(0.0, LIVE_WWW), (emergency, EMERGENCY_WWW),
                                 (live, LIVE_WWW)], delay=switch_delay(mode))


def assert_answers_follow(loop: QueryLoop, timeline: list[tuple[float, str]],
                          margin: float = 0.1, delay: float = 0.1) -> None:
    """``timeline``: (from when, expected answer) in order: the answers change
    exactly at those switches, once each, and never go back (a client that saw
    the new data never gets the old again). A change may show from ``margin``
    before the switch (an answer computed just before it arrives just after)
    to ``delay`` after it: at once with one process; with workers, once the
    generation forked for the new data serves."""
    runs: list[tuple[float, str]] = []        # (first answer, value) of each run
    for answer in loop.answers:
        if not runs or runs[-1][1] != answer.outcome:
            runs.append((answer.t, answer.outcome))
    assert [value for _, value in runs] == [value for _, value in timeline], runs
    for (since, value), (first, _) in zip(timeline[1:], runs[1:]):
        assert since - margin <= first <= since + delay, (value, first - since)


def switch_delay(mode) -> float:
    """How long after a decision the answers may change: one process swaps one
    reference; workers fork a generation with the new data first."""
    args, cpus = mode
    return 0.1 if "1" in args else 1.0


def test_primary_hung_then_continued(tmp_path, mode):
    knot, config, _ = setup(tmp_path)
    state = tmp_path / "state"
    seawall = start_in_mode(tmp_path, config, mode)
    try:
        loop = QueryLoop(seawall.addr).start()
        time.sleep(1)
        stopped = time.time()
        knot.signal(signal.SIGSTOP)
        assert wait_for(lambda: switch_time(state, "emergency", stopped), 15)
        emergency = switch_time(state, "emergency", stopped)
        time.sleep(1)
        continued = time.time()
        knot.signal(signal.SIGCONT)
        assert wait_for(lambda: switch_time(state, "live", continued), 15)
        live = switch_time(state, "live", continued)
        time.sleep(0.5)
        loop.stop()
    finally:
        seawall.stop()
        knot.kill()
    report("SIGSTOP: emergency", stopped, emergency, loop)
    report("SIGCONT: live", continued, live, loop)
    assert_nothing_lost(loop)
    assert_answers_follow(loop, [(0.0, LIVE_WWW), (emergency, EMERGENCY_WWW),
                                 (live, LIVE_WWW)], delay=switch_delay(mode))
    reasons = [e["reason"] for e in events(state) if e["kind"] == "transition"]
    assert any("timed out" in r for r in reasons), reasons
    assert emergency - stopped < 3 * INTERVAL + 2 * INTERVAL + 1.5


def test_wipe_rejected_by_guard_then_accepted(tmp_path):
    """In-process server (so the test can call the controller's accept, as the CLI will)."""
    knot, config, port = setup(tmp_path, stale_for="10m", notify=True)
    state = tmp_path / "state"
    ready = tmp_path / "ready.json"

    async def scenario() -> tuple[QueryLoop, list]:
        app = App(load_config(config, workers=1))  # in this process: no forks
        server = asyncio.create_task(app.run(ready))
        try:
            while not ready.exists():
                await asyncio.sleep(0.05)
            addr = ("127.0.0.1", port)
            loop = QueryLoop(addr, qname=f"h1500.{ZONE}.").start()
            await asyncio.sleep(0.5)
            pushed = time.time()
            await asyncio.to_thread(knot.publish, ZONE, zone_text(ZONE, 2, hosts=200), 2)
            for _ in range(200):
                if switch_time(state, "held", pushed):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(2 * 3 * INTERVAL)   # twice fail_after probes: still held
            assert app.zoneset.get(dns.name.from_text(ZONE)).serial == 1
            status = {z["zone"]: z for z in app.controller.status()["zones"]}
            assert status[f"{ZONE}."]["held"]["serial"] == 2
            assert status[f"{ZONE}."]["state"] == "held"
            assert status[f"{ZONE}."]["failures"] == 0
            accepted_at = time.time()
            assert app.controller.accept(ZONE) == 2
            await asyncio.sleep(0.5)
            assert app.zoneset.get(dns.name.from_text(ZONE)).serial == 2
            await asyncio.sleep(2)   # probes see serial 2 again: no new rejection
            assert app.controller.status()["zones"][0]["state"] == "live"
            loop.stop()
            return loop, [pushed, accepted_at]
        finally:
            app.stop()
            await server

    try:
        loop, (pushed, accepted_at) = asyncio.run(scenario())
    finally:
        knot.kill()
    rejected = [e for e in events(state) if e["kind"] == "rejected"]
    assert len(rejected) == 1
    assert "would delete 1800 of 2006 RRsets (90% > 30%)" in rejected[0]["reason"]
    assert rejected[0]["serial_to"] == 2
    accepted = [e for e in events(state) if e["cause"] == "operator"]
    assert accepted and accepted[0]["serial_to"] == 2
    report("wipe: rejected, held with old data", pushed, switch_time(state, "held", pushed),
           loop)
    assert not [e for e in events(state) if e["to"] in ("stale", "emergency")]
    # before the accept the old data answered; after it, h1500 is gone (NXDOMAIN)
    before = {a.outcome for a in loop.answers if a.t < accepted_at}
    after = {a.outcome for a in loop.answers if a.t > accepted_at + 0.2}
    assert before == {"198.51.106.1"}, loop.summary()
    assert after == {"NXDOMAIN"}, loop.summary()
    # Nothing lost, even with the server sharing this process (and its GIL).
    assert set(loop.summary()) <= {"198.51.106.1", "NXDOMAIN"}, loop.summary()


def test_serial_backwards_is_rejected(tmp_path):
    knot, config, _ = setup(tmp_path, notify=True, hosts=50)
    knot.zones[ZONE] = zone_text(ZONE, 5, hosts=50)
    state = tmp_path / "state"
    knot.publish(ZONE, zone_text(ZONE, 5, hosts=50), 5)
    seawall = start_seawall(tmp_path, config)
    try:
        assert ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 5
        knot.publish(ZONE, zone_text(ZONE, 4, hosts=51), 4)
        rejected = wait_for(lambda: [e for e in events(state) if e["kind"] == "rejected"], 10)
        assert rejected, seawall.output()
        assert "serial 4 is older than the served serial 5" in rejected[0]["reason"]
        assert ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 5
    finally:
        seawall.stop()
        knot.kill()


def test_restart_while_primary_is_down_serves_last_good(tmp_path):
    knot, config, _ = setup(tmp_path, stale_for="10m", notify=True)
    state = tmp_path / "state"
    seawall = start_seawall(tmp_path, config)
    try:
        knot.publish(ZONE, zone_text(ZONE, 2, www="192.0.2.81"), 2)
        assert wait_for(lambda: ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 2,
                        5)
    finally:
        seawall.stop()
    knot.kill()
    started = time.monotonic()
    seawall = start_seawall(tmp_path, config)
    took = time.monotonic() - started
    try:
        print(f"\n[cold start, primary down] serving after {took:.2f}s")
        assert took < 3 + 2.0      # startup_wait (3s) plus process start-up
        assert ask(seawall.addr, f"www.{ZONE}.").answer[0][0].address == "192.0.2.81"
        assert ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 2
        assert transitions(state, f"{ZONE}.")[-1] == (None, "stale", "startup")
    finally:
        seawall.stop()
    # too old for stale_for: emergency instead
    config.write_text(config.read_text().replace("stale_for: 10m", "stale_for: 1s"))
    time.sleep(1.1)
    seawall = start_seawall(tmp_path, config)
    try:
        assert ask(seawall.addr, f"www.{ZONE}.").answer[0][0].address == EMERGENCY_WWW
        assert transitions(state, f"{ZONE}.")[-1] == (None, "emergency", "startup")
    finally:
        seawall.stop()


def test_primary_down_at_first_start_serves_emergency(tmp_path):
    knot, config, _ = setup(tmp_path)
    knot.kill()
    seawall = start_seawall(tmp_path, config)
    try:
        assert ask(seawall.addr, f"www.{ZONE}.").answer[0][0].address == EMERGENCY_WWW
        knot.start()
        assert wait_for(lambda: ask(seawall.addr, f"www.{ZONE}.").answer[0][0].address
                        == LIVE_WWW, 10), seawall.output()
    finally:
        seawall.stop()
        knot.kill()


@pytest.mark.parametrize("down, up, cycles, expected", [
    (1.0, 1.0, 10, []),                                   # never 3 failures in a row
    (2.5, 1.5, 5, [("live", "emergency", "probe")]),      # fails, never 5 successes in a row
])
def test_flapping_primary_does_not_flap_the_zone(tmp_path, down, up, cycles, expected):
    """A primary going up and down (SIGSTOP/SIGCONT) for ~20 s: no zone flapping."""
    knot, config, _ = setup(tmp_path, fail_after=3, recover_after=5)
    state = tmp_path / "state"
    seawall = start_seawall(tmp_path, config)
    try:
        loop = QueryLoop(seawall.addr).start()
        for _ in range(cycles):
            knot.signal(signal.SIGSTOP)
            time.sleep(down)
            knot.signal(signal.SIGCONT)
            time.sleep(up)
        loop.stop()
    finally:
        seawall.stop()
        knot.kill()
    moves = [m for m in transitions(state, f"{ZONE}.") if m[2] != "startup"]
    print(f"\n[flap down {down}s/up {up}s x{cycles}] transitions: {moves}; "
          f"answers: {loop.summary()}")
    assert moves == expected
    assert_nothing_lost(loop)


def test_transfer_slower_than_startup_wait_is_not_lost(tmp_path):
    """Start-up gives up on the primary after 10 ms; the transfer it started is used later."""
    knot, config, _ = setup(tmp_path)
    config.write_text(config.read_text().replace("startup_wait: 3s", "startup_wait: 10ms"))
    state = tmp_path / "state"
    seawall = start_seawall(tmp_path, config)
    try:
        assert transitions(state, f"{ZONE}.")[0] == (None, "emergency", "startup")
        assert wait_for(lambda: ask(seawall.addr, f"www.{ZONE}.").answer[0][0].address
                        == LIVE_WWW, 10), seawall.output()
        assert ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 1
    finally:
        seawall.stop()
        knot.kill()


def test_wipe_accepted_with_the_cli(tmp_path):
    """Scenario 3 through the operator's path: `seawall failover accept --zone`."""
    import subprocess
    import sys

    knot, config, _ = setup(tmp_path, stale_for="10m", notify=True)
    state = tmp_path / "state"
    seawall = start_seawall(tmp_path, config)
    try:
        knot.publish(ZONE, zone_text(ZONE, 2, hosts=200), 2)
        assert wait_for(lambda: [e for e in events(state) if e["kind"] == "rejected"], 10)
        assert ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 1
        result = subprocess.run([sys.executable, "-m", "seawall", "failover", "accept",
                                 "--zone", ZONE, "--config", str(config)],
                                capture_output=True, text=True, timeout=30, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert wait_for(lambda: ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 2,
                        5)
        time.sleep(1.5)   # later probes see serial 2, which is now the good one
        assert ask(seawall.addr, f"{ZONE}.", "SOA").answer[0][0].serial == 2
        assert transitions(state, f"{ZONE}.")[-1][1] == "live"
    finally:
        seawall.stop()
        knot.kill()
