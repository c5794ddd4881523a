"""The Prometheus alerting rules in contrib/ pass ``promtool test rules`` and name
only metrics Seawall exports; the Grafana dashboard is JSON over the same metrics."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from conftest import ROOT, require_tool

pytestmark = pytest.mark.interop   # promtool (Debian package prometheus)

RULES = ROOT / "contrib" / "prometheus" / "seawall-alerts.yml"
RULE_TESTS = ROOT / "contrib" / "prometheus" / "seawall-alerts.test.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "seawall-dashboard.json"
METRICS = (ROOT / "seawall" / "metrics.py").read_text()


def exported(name: str) -> bool:
    base = re.sub(r"_(total|created)$", "", name)
    return f'"{base}"' in METRICS


def test_promtool_checks_and_tests_the_rules():
    require_tool("promtool")
    for argv in (["promtool", "check", "rules", str(RULES)],
                 ["promtool", "test", "rules", str(RULE_TESTS)]):
        run = subprocess.run(argv, capture_output=True, text=True, cwd=RULES.parent)
        assert run.returncode == 0, run.stdout + run.stderr


def test_the_rules_cover_what_is_worth_waking_someone_for():
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    for name in ("SeawallZoneEmergency", "SeawallZoneHeld", "SeawallZoneUnprotected",
                 "SeawallDelegationProblem", "SeawallDsMismatch", "SeawallDrift",
                 "SeawallSignaturesExpiring"):
        assert name in alerts
    for expr in alerts.values():
        for metric in re.findall(r"\bseawall_[a-z_]+", expr):
            assert exported(metric), f"{metric} is not exported by seawall/metrics.py"


def test_the_dashboard_uses_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    for expr in exprs:
        for metric in re.findall(r"\bseawall_[a-z_]+", expr):
            assert exported(metric), f"{metric} is not exported by seawall/metrics.py"
