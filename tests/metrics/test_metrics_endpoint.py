"""The metrics endpoint: counters move as queries are sent; health and readiness answer."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

from conftest import ROOT, SeawallProcess, ask, free_port
from seawall.failover.control_client import ControlClient


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_counters_move_with_queries(tmp_path, zones_dir):
    port = free_port()
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\n"
                      f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        assert json.loads(server.ready.read_text())["metrics_port"] == port
        assert scrape(port, "/healthz") == (200, "ok\n")
        assert scrape(port, "/readyz")[0] == 200
        before = scrape(port)[1]
        for _ in range(3):
            ask(server.addr, "www.example.com.", "A")
        ask(server.addr, "nope.example.com.", "A", tcp=True)
        after = scrape(port)[1]
        assert (value(after, "seawall_responses_total", transport="udp", qtype="A",
                      rcode="NOERROR")
                - value(before, "seawall_responses_total", transport="udp", qtype="A",
                        rcode="NOERROR")) == 3
        assert value(after, "seawall_responses_total", transport="tcp", qtype="A",
                     rcode="NXDOMAIN") == 1
        assert value(after, "seawall_zone_state", zone="example.com.", state="live") == 1
        assert (value(after, "seawall_answers_total", zone="example.com.", source="live",
                      rcode="NOERROR")
                - value(before, "seawall_answers_total", zone="example.com.", source="live",
                        rcode="NOERROR")) == 3
        assert value(after, "seawall_answers_total", zone="example.com.", source="live",
                     rcode="NXDOMAIN") == 1
        assert value(after, "seawall_zone_serial", zone="example.com.") == 2026112701
        assert value(after, "seawall_zones") == 1
        assert scrape(port, "/nope")[0] == 404
        # Answers from emergency data are counted under their source.
        ControlClient(state_dir=tmp_path / ".seawall").call(
            "force", mode="emergency", zones=["example.com."], reason="metrics test")
        ask(server.addr, "www.example.com.", "A")
        forced = scrape(port)[1]
        assert value(forced, "seawall_answers_total", zone="example.com.", source="emergency",
                     rcode="NOERROR") == 1
        assert value(forced, "seawall_zone_forced", zone="example.com.") == 1


def test_sampled_query_log(tmp_path, zones_dir):
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones_dir}\n"
                      f"emergency_dir: {zones_dir / 'emergency'}\nquery_log_sample: 2\n"
                      # each worker samples its own share: one process for exact counts
                      "log_format: json\nworkers: 1\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        for _ in range(6):
            ask(server.addr, "www.example.com.", "AAAA")
        server.stop()
        lines = [json.loads(line) for line in server.output().splitlines()
                 if line.startswith("{")]
        logged = [e for e in lines if e["component"] == "seawall.querylog"]
        assert len(logged) == 3, lines
        assert "qname=www.example.com. qtype=AAAA rcode=NOERROR" in logged[0]["message"]
        assert "client=127.0.0.1 transport=udp" in logged[0]["message"]


def test_readyz_is_503_naming_a_zone_with_nothing_to_serve(tmp_path):
    """No live data (the primary is unreachable) and no usable emergency file:
    alive (/healthz 200) but not ready (/readyz 503, naming the zone)."""
    port = free_port()
    (tmp_path / "emergency").mkdir()
    (tmp_path / "emergency" / "example.net.zone").write_text("not a zone file\n")
    dead = free_port()   # nothing listens there
    config = tmp_path / "seawall.yaml"
    config.write_text("listen: ['127.0.0.1:0']\nstate_dir: state\nemergency_dir: emergency\n"
                      f"backends:\n  - type: axfr\n    primary: '127.0.0.1:{dead}'\n"
                      "    zones: [example.net]\n"
                      "failover: {probe_interval: 0.5s, probe_timeout: 0.2s, startup_wait: 1s}\n"
                      f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}):
        assert scrape(port, "/healthz") == (200, "ok\n")
        status, body = scrape(port, "/readyz")
        assert status == 503, body
        assert "example.net." in body


def test_metric_families_are_present_and_move(tmp_path):
    """RRL, TCP, failover events, backend health, last-good age and signature
    expiry: each family is exported and follows what happens."""
    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    for name in ("example.com.zone",):
        text = (ROOT / "zones" / name).read_text()
        (zones / name).write_text(text)
        (zones / "emergency" / name).write_text((ROOT / "zones" / "emergency" / name).read_text())
    signed = (ROOT / "tests" / "dns" / "data" / "signed" / "nsec.test.zone").read_text()
    (zones / "nsec.test.zone").write_text(signed)
    (zones / "emergency" / "nsec.test.zone").write_text(signed)
    port = free_port()
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nzones: {zones}\nworkers: 1\n"
                      f"emergency_dir: {zones / 'emergency'}\n"
                      "rrl: {enabled: true, answers_per_second: 5, slip: 2, exempt: []}\n"
                      "tcp_max_per_client: 1\n"
                      f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
    with SeawallProcess(tmp_path, config=config, env={"PYTHONPATH": str(ROOT)}) as server:
        first = scrape(port)[1]
        assert value(first, "seawall_backend_healthy", zone="example.com.") == 1
        assert value(first, "seawall_tcp_connections") == 0
        # Signed for ten years (tests/dns/data/signed): expiry is years away.
        expiry = value(first, "seawall_zone_signature_expiry_seconds", zone="nsec.test.")
        assert 5 * 365 * 86400 < expiry < 11 * 365 * 86400, expiry
        assert value(first, "seawall_signature_expiry_timestamp_seconds", zone="nsec.test.",
                     data="live") > 0
        age = value(first, "seawall_zone_last_good_age_seconds", zone="example.com.")

        # RRL: a burst over 5 answers/s from one address is dropped or slipped.
        import socket
        import time

        import dns.message
        query = dns.message.make_query("www.example.com.", "A").to_wire()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(60):
                sock.sendto(query, server.addr)
        # TCP: one connection held open; the second from the same client is refused.
        held = socket.create_connection(server.addr, timeout=3)
        extra = socket.create_connection(server.addr, timeout=3)
        time.sleep(1.2)
        # An operator's switch: a failover event and a zone switch.
        ControlClient(state_dir=tmp_path / ".seawall").call(
            "force", mode="emergency", zones=["example.com."], reason="metrics test")
        after = scrape(port)[1]
        held.close()
        extra.close()
    rrl = sum(value(after, name, kind=kind) for name in ("seawall_rrl_dropped_total",
                                                         "seawall_rrl_slipped_total")
              for kind in ("answer", "nxdomain", "error"))
    assert rrl >= 40, after
    assert value(after, "seawall_tcp_connections") == 1
    assert value(after, "seawall_tcp_refused_total") >= 1
    assert value(after, "seawall_failover_events_total", kind="override",
                 cause="operator") == 1
    assert value(after, "seawall_failover_events_total", kind="transition",
                 cause="startup") == 2
    assert value(after, "seawall_zone_switches_total", zone="example.com.") >= 1
    assert value(after, "seawall_zone_last_good_age_seconds", zone="example.com.") > age
