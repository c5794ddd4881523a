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
