"""A restart answers from its last good data before the backends are asked.

The controller side (``Controller.serve_restored``): what is served before
the first report, and that the states are decided exactly as before. The
process side: a server whose backend hangs answers with its snapshot long
before ``startup_wait`` is over, then settles in stale as it always did.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype

from seawall.backends.base import Report
from seawall.failover.controller import Mode
from seawall.failover.store import StateStore
from seawall.zones.loader import load_zone_file

from conftest import free_port
from failover_peers import LIVE_WWW, emergency_text, events, zone_text
from failover_zones import make_zone
from test_controller import ORIGIN, Harness


def restarted(tmp_path, after: float, **settings) -> tuple[Harness, Harness]:
    """A controller that took a version, and a new one ``after`` seconds later."""
    first = Harness(tmp_path, **settings)
    first.new()
    again = Harness(tmp_path, **settings)
    again.clock.now = first.clock.now + after
    again.clock.start_wall = first.clock.start_wall
    again.ctl.restore(again.store.load_snapshots(), again.store.load_overrides())
    return first, again


def test_a_fresh_snapshot_is_served_before_the_first_report(tmp_path):
    first, h = restarted(tmp_path, 100, stale_for=600)
    assert h.ctl.serve_restored()
    assert h.published and h.published[-1][ORIGIN].serial == first.st.served.serial
    assert h.st.mode is None and h.mode is None      # not decided: no state yet
    assert h.st.last_event is None                   # nothing judged, nothing logged
    # The backend answers with that same content (a zone of its own, read anew):
    # live, and no second swap.
    published = len(h.published)
    again = h.store.load_snapshots()[ORIGIN].zone
    version = h.version(zone=again, serial=first.serial)
    h.ctl.apply([Report(ORIGIN, True, version=version, tag=version.tag)])
    assert h.mode == "live" and len(h.published) == published


def test_the_backend_down_after_an_early_start_is_stale_with_no_swap(tmp_path):
    _, h = restarted(tmp_path, 100, stale_for=600)
    assert h.ctl.serve_restored()
    published = len(h.published)
    h.fail("connection refused")
    h.ctl.finish_startup("no answer")
    assert h.mode == "stale" and len(h.published) == published
    assert h.st.last_event["cause"] == "startup"


def test_an_old_snapshot_is_not_served_early_and_goes_to_emergency(tmp_path):
    _, h = restarted(tmp_path, 1000, stale_for=600)
    assert not h.ctl.serve_restored()
    assert h.published == []                         # emergency only once decided
    h.ctl.finish_startup("no answer")
    assert h.mode == "emergency"


def test_a_zone_with_nothing_restored_keeps_every_zone_waiting(tmp_path):
    _, h = restarted(tmp_path, 100, stale_for=600)
    other = make_zone(dns.name.from_text("other.test."), 1, hosts=2)
    h.ctl.add_emergency({other.origin: other})       # known, but no last good data
    assert not h.ctl.serve_restored()
    assert h.published == []


def test_a_forced_emergency_is_served_at_once(tmp_path):
    first = Harness(tmp_path, stale_for=600)
    first.new()
    first.ctl.force(Mode.EMERGENCY, None, "maintenance")
    h = Harness(tmp_path, stale_for=600)
    h.ctl.restore(h.store.load_snapshots(), h.store.load_overrides())
    assert h.ctl.serve_restored()
    assert h.published[-1][ORIGIN].serial == h.emergency.serial


# ------------------------------------------------------------------ a process

ZONE = "early.test"


def _blackhole() -> tuple[socket.socket, socket.socket, int]:
    """A primary that takes connections and datagrams and never answers."""
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    return tcp, udp, port


def _www(port: int) -> str | None:
    query = dns.message.make_query(f"www.{ZONE}.", dns.rdatatype.A)
    try:
        response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
    except (dns.exception.Timeout, OSError):
        return None
    for rrset in response.answer:
        return rrset[0].address
    return None


def test_a_restart_answers_from_its_snapshot_before_the_hung_backend(tmp_path):
    source = tmp_path / "source.zone"
    source.write_text(zone_text(ZONE, 7))
    loaded = load_zone_file(source, dns.name.from_text(f"{ZONE}."))
    store = StateStore(tmp_path / "state")
    store.prepare()
    now = time.time()
    store.save_snapshot(loaded.zone, fetched_at=now, confirmed_at=now, source="test", tag="t")
    (tmp_path / "emergency").mkdir()
    (tmp_path / "emergency" / f"{ZONE}.zone").write_text(emergency_text(ZONE))
    tcp, udp, primary = _blackhole()
    port = free_port()
    config = tmp_path / "seawall.yaml"
    config.write_text(
        f"listen: [\"127.0.0.1:{port}\"]\nstate_dir: state\nemergency_dir: emergency\n"
        f"workers: 1\nbackends:\n  - type: axfr\n    primary: \"127.0.0.1:{primary}\"\n"
        f"    zones: [{ZONE}]\nfailover:\n  stale_for: 3600s\n  startup_wait: 8s\n"
        # The first look hangs this long: long enough to see who answers first.
        f"  probe_timeout: 6s\n")
    ready = tmp_path / "ready.json"
    log = open(tmp_path / "seawall.log", "wb")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "seawall", "serve", "--config", str(config),
                             "--ready-file", str(ready)], cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        answered = None
        while time.monotonic() - started < 15 and proc.poll() is None:
            if _www(port) == LIVE_WWW:
                answered = time.monotonic() - started
                break
            time.sleep(0.05)
        assert answered is not None, (tmp_path / "seawall.log").read_text()
        # Long before startup_wait gave up on the backend (the ready file says so).
        assert answered < 6 and not ready.exists()
        while not ready.exists() and time.monotonic() - started < 30:
            time.sleep(0.1)
        assert ready.exists()
        assert _www(port) == LIVE_WWW
        moves = [(e["from"], e["to"], e["cause"]) for e in events(tmp_path / "state")
                 if e["zone"] == f"{ZONE}." and e["kind"] == "transition"]
        assert moves == [(None, "stale", "startup")]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        tcp.close()
        udp.close()
