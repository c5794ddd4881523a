"""Health-checked answers end to end: real targets on 127.0.0.2-4, one Seawall process
with ``--workers 2``, every answer checked.

The figures of the issue, each measured by a client asking every 20 ms:
a dead target leaves the answers within fall x interval + 1 s, it returns
after rise x interval, 0 empty answers and 0 SERVFAIL across 200 flaps, at
most one change per hold-down window under a 1 s up / 1 s down flap, every
target down gives the last healthy answer, a stalled checker freezes the
answers and status says so.
"""

from __future__ import annotations

import threading
import time

import pytest

from harness import BACKUP, MAIN, Site, bad
from conftest import wait_for

pytestmark = pytest.mark.timeout(120)

FIGURES: dict[str, str] = {}


def report(name: str, text: str) -> None:
    FIGURES[name] = text
    print(f"FIGURE {name}: {text}")


@pytest.mark.parametrize("protocol", ["HTTP", "TCP"])
def test_dead_target_leaves_and_returns(tmp_path, protocol):
    interval, fall, rise = 0.5, 2, 2
    with Site(tmp_path, protocol=protocol, interval=interval, fall=fall, rise=rise) as site:
        took, seen = site.watch(lambda a: a == frozenset(MAIN), limit=10)
        assert took is not None, seen[-3:]
        wait_for(lambda: site.target_status("127.0.0.3")["checked"], timeout=5)
        site.targets["127.0.0.3"].kill()
        left, seen = site.watch(lambda a: a == {"127.0.0.2"}, limit=fall * interval + 3)
        assert left is not None and left <= fall * interval + 1.0, (left, seen[-5:])
        assert not bad(seen)
        # It stays gone: nothing but 127.0.0.2 for a while.
        _, after = site.watch(lambda a: False, limit=1.0)
        assert {s[2] for s in after} == {frozenset({"127.0.0.2"})}
        status = site.target_status("127.0.0.3")
        assert status["up"] is False and "failed checks in a row" in status["why"]
        site.targets["127.0.0.3"].revive()
        back, seen = site.watch(lambda a: a == frozenset(MAIN), limit=rise * interval + 3)
        assert back is not None and back <= rise * interval + 1.0, (back, seen[-5:])
        # Not before rise - 1 intervals: one good check is not enough.
        assert back >= (rise - 1) * interval - 0.1, back
        assert not bad(seen)
        report(f"{protocol} leave", f"{left:.2f}s (bound {fall * interval + 1:.1f}s)")
        report(f"{protocol} return", f"{back:.2f}s (rise x interval {rise * interval:.1f}s)")
        health = site.health()
        events = (site.state / "events.jsonl").read_text()
        assert '"kind": "health"' in events and "127.0.0.3" in events
        assert health["stalled"] is False and health["view"] == "live"


def test_hung_target_is_down_after_its_timeouts(tmp_path):
    with Site(tmp_path, interval=0.5, timeout=0.3, fall=2) as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        site.targets["127.0.0.2"].hang()
        left, seen = site.watch(lambda a: a == {"127.0.0.3"}, limit=6)
        assert left is not None and left <= 2 * 0.5 + 0.3 + 1.0, (left, seen[-5:])
        assert not bad(seen)
        assert "timeout" in site.target_status("127.0.0.2")["last_error"]


def test_1000_flaps_never_empty_never_servfail(tmp_path):
    """Every target flaps, each on its own rhythm, so at times all are down together.

    A target keeps each state for at least two flaps (30 ms apart), longer
    than one check interval (50 ms), so its checker sees most states: the
    targets' own change counts prove the flapping reached the answers.
    """
    flaps, gap = 1000, 0.03
    with Site(tmp_path, interval=0.05, timeout=0.04, rise=1, fall=1) as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        stop = threading.Event()
        seen: list = []

        def client() -> None:
            deadline = time.monotonic() + 100
            while not stop.is_set() and time.monotonic() < deadline:
                seen.append(site.answer())
                time.sleep(0.005)

        asker = threading.Thread(target=client)
        asker.start()
        started = time.monotonic()
        try:
            order = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2", "127.0.0.4"]
            for i in range(flaps):
                target = site.targets[order[i % len(order)]]
                target.kill() if target.mode == "up" else target.revive()
                time.sleep(gap)
        finally:
            stop.set()
            asker.join(timeout=10)
        took = time.monotonic() - started
        changes = sum(t["changes"] for t in site.health()["targets"])
        distinct = {a for _, a in seen}
        empty = sum(1 for _, a in seen if not a)
        servfail = sum(1 for r, _ in seen if r == "SERVFAIL")
        other = sum(1 for r, _ in seen if r not in ("NOERROR", "SERVFAIL"))
        report("flaps", f"{flaps} flaps in {took:.0f}s, {len(seen)} answers, {changes} target "
                        f"changes, {len(distinct)} distinct answers, {empty} empty, "
                        f"{servfail} SERVFAIL")
        assert empty == 0 and servfail == 0 and other == 0
        # Most flaps became a change of a target's state (each one a new answer view).
        assert changes >= flaps // 2, "the targets hardly changed: the test did not flap"
        assert len(distinct) >= 3


def test_hold_down_one_change_per_window(tmp_path):
    hold_down = 3.0
    with Site(tmp_path, interval=0.2, timeout=0.15, rise=1, fall=1,
              hold_down=hold_down) as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        target = site.targets["127.0.0.3"]
        stop = threading.Event()

        def flap() -> None:
            deadline = time.monotonic() + 14
            while not stop.is_set() and time.monotonic() < deadline:
                target.kill()
                stop.wait(1.0)
                target.revive()
                stop.wait(1.0)

        flapper = threading.Thread(target=flap)
        flapper.start()
        try:
            _, seen = site.watch(lambda a: False, limit=14, every=0.02)
        finally:
            stop.set()
            flapper.join(timeout=5)
        assert not bad(seen)
        changes = [seen[i + 1][0] for i in range(len(seen) - 1) if seen[i][2] != seen[i + 1][2]]
        gaps = [b - a for a, b in zip(changes, changes[1:])]
        report("hold-down", f"{len(changes)} changes in 14 s of 1 s up / 1 s down, "
                            f"shortest gap {min(gaps) if gaps else float('nan'):.2f}s "
                            f"(hold_down {hold_down:g}s)")
        assert len(changes) >= 2, "the flap changed nothing"
        # At most one change per window (a publish may land up to ~0.25 s late).
        assert all(gap >= hold_down - 0.3 for gap in gaps), gaps
        assert len(changes) <= 14 / hold_down + 1


def test_every_target_down_serves_the_last_healthy_answer(tmp_path):
    with Site(tmp_path, interval=0.3, timeout=0.25, rise=1, fall=1) as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        for address in MAIN:
            site.targets[address].kill()
        took, seen = site.watch(lambda a: a == set(BACKUP), limit=5)
        assert took is not None, seen[-5:]          # the backup pool takes over
        assert not bad(seen)
        site.targets[BACKUP[0]].kill()
        wait_for(lambda: not site.target_status(BACKUP[0])["up"], timeout=5)
        _, seen = site.watch(lambda a: False, limit=2.0)
        assert not bad(seen)
        assert {s[2] for s in seen} == {frozenset(BACKUP)}   # fail static: the last answer
        rrset = site.health()["rrsets"][0]
        assert rrset["fail_static"] is True and rrset["answer"] == BACKUP
        report("all down", f"answer {sorted(seen[-1][2])} (the last healthy set), "
                           f"{len(seen)} answers, 0 empty")
        site.targets["127.0.0.2"].revive()
        back, seen = site.watch(lambda a: a == {"127.0.0.2"}, limit=5)
        assert back is not None and not bad(seen)


def test_stalled_checker_freezes_the_answers(tmp_path):
    interval, fall = 0.3, 2
    with Site(tmp_path, interval=interval, timeout=0.25, rise=1, fall=fall,
              extra="health: {stall_after: 1s}\n") as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        site.fault("hang")
        stalled = wait_for(lambda: site.health()["stalled"], timeout=8)
        assert stalled, site.health()
        site.targets["127.0.0.3"].kill()
        _, seen = site.watch(lambda a: False, limit=fall * interval + 2.0)
        assert not bad(seen)
        assert {s[2] for s in seen} == {frozenset(MAIN)}    # frozen: still both
        health = site.health()
        assert health["stalled"] is True and health["view"].startswith("frozen")
        assert all(t["stalled"] for t in health["targets"])
        assert site.target_status("127.0.0.3")["up"] is True
        report("stalled", f"answers frozen on {sorted(MAIN)} for {seen[-1][0]:.1f}s "
                          "after 127.0.0.3 died; status stalled=true")
        site.fault(None)
        left, seen = site.watch(lambda a: a == {"127.0.0.2"}, limit=fall * interval + 4)
        assert left is not None and not bad(seen)
        assert wait_for(lambda: not site.health()["stalled"], timeout=5)


def test_drill_target_down_takes_the_failed_check_path(tmp_path):
    with Site(tmp_path, interval=0.3, timeout=0.25, rise=1, fall=2) as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        site.fault("down 127.0.0.2")
        left, seen = site.watch(lambda a: a == {"127.0.0.3"}, limit=5)
        assert left is not None and not bad(seen)
        assert site.target_status("127.0.0.2")["last_error"] == "drill: target-down"
        site.fault(None)
        assert site.watch(lambda a: a == frozenset(MAIN), limit=5)[0] is not None


def test_plain_name_untouched_and_one_process(tmp_path):
    """workers: 1 serves the same answers; a plain name is never rebuilt away."""
    with Site(tmp_path, interval=0.3, timeout=0.25, rise=1, fall=1, workers=1) as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        site.targets["127.0.0.2"].kill()
        assert site.watch(lambda a: a == {"127.0.0.3"}, limit=5)[0] is not None
        assert site.answer("plain.hc.example") == ("NOERROR", frozenset({"192.0.2.80"}))


def test_status_metrics_and_cli_show_targets(tmp_path):
    import subprocess
    import sys
    import urllib.request

    from conftest import free_port
    port = free_port()
    with Site(tmp_path, interval=0.3, timeout=0.25, rise=1, fall=1,
              extra=f"metrics: {{listen: '127.0.0.1:{port}'}}\n") as site:
        site.targets["127.0.0.3"].kill()
        assert site.watch(lambda a: a == {"127.0.0.2"}, limit=5)[0] is not None
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        text = text.decode()
        assert 'seawall_health_target_up{check="HTTP :%d/health",target="127.0.0.3"} 0.0' \
            % site.port in text
        assert 'seawall_health_target_up{check="HTTP :%d/health",target="127.0.0.2"} 1.0' \
            % site.port in text
        assert "seawall_health_target_since_timestamp_seconds" in text
        out = subprocess.run([sys.executable, "-m", "seawall", "failover", "status", "--config",
                              str(site.config)], capture_output=True, text=True, timeout=20,
                             cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "Health-checked answers:" in out.stdout
        assert "www.hc.example. A -> 127.0.0.2  (pool main)" in out.stdout
        assert "127.0.0.3" in out.stdout and "DOWN" in out.stdout


def test_checked_once_not_per_worker(tmp_path):
    """Two workers, one supervisor: each target sees one check per interval."""
    interval = 0.25
    with Site(tmp_path, interval=interval, timeout=0.2, workers=2) as site:
        assert site.watch(lambda a: a == frozenset(MAIN), limit=10)[0] is not None
        before = {a: t.served for a, t in site.targets.items()}
        time.sleep(3.0)
        counts = {a: t.served - before[a] for a, t in site.targets.items()}
        report("checks", f"{counts} checks per target in 3 s at interval {interval:g}s "
                         "with 2 workers")
        assert all(3.0 / interval - 2 <= n <= 3.0 / interval + 2 for n in counts.values()), counts
