"""The failover: section and the backends: list of the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from seawall.config import load_config
from seawall.errors import ConfigError


def load(tmp_path: Path, text: str):
    path = tmp_path / "seawall.yaml"
    path.write_text(text)
    return load_config(path)


def test_defaults(tmp_path):
    config = load(tmp_path, "")
    assert config.failover.fail_after == 3 and config.failover.recover_after == 5
    assert config.failover.probe_interval == 1.0 and config.failover.stale_for.is_expire
    assert config.failover.signature_margin == 3600 and config.failover.remove_after == 3600
    assert config.failover.max_delete_ratio == 0.3 and config.failover.emergency_ttl_max == 300
    (backend,) = config.backend_configs()
    assert (backend.type, backend.path) == ("files", "zones")


def test_full_example(tmp_path):
    config = load(tmp_path, """
backends:
  - type: files
  - type: axfr
    primary: "127.0.0.1:5300"
    zones: [example.net, example.org]
    tsig: {name: xfr-key, algorithm: hmac-sha256, secret: "c2VjcmV0"}
    refresh: 30s
failover:
  probe_interval: 500ms
  stale_for: 10m
  max_change_ratio: 1
  stale_ttl_max: 60
  emergency_ttl_max: null
""")
    files, axfr = config.backend_configs()
    assert files.path == "zones"
    assert axfr.zones == ("example.net", "example.org") and axfr.refresh == 30
    assert axfr.tsig.name == "xfr-key"
    assert config.failover.probe_interval == 0.5 and config.failover.stale_for == 600
    assert config.failover.max_change_ratio == 1.0
    assert config.failover.emergency_ttl_max is None


@pytest.mark.parametrize("text, message", [
    ("failover:\n  fail_afterr: 3\n", "seawall.yaml:2: unknown key 'fail_afterr'"),
    ("backends:\n  - type: files\n    primary: x\n", "a files backend takes `path` only"),
    ("backends:\n  - type: axfr\n    zones: [a]\n", "needs `primary: HOST:PORT`"),
    ("backends:\n  - type: axfr\n    primary: '127.0.0.1:53'\n", "lists no `zones`"),
    ("backends:\n  - type: ldap\n", "backend type 'ldap' is not one of files, axfr"),
    ("backends:\n  - type: axfr\n    primary: '1.2.3.4:53'\n    zones: [a]\n    bogus: 1\n",
     "seawall.yaml:5: unknown key 'bogus'"),
    ("failover:\n  max_delete_ratio: 2\n", "max_delete_ratio 2.0 must be within 0..1"),
    ("failover:\n  fail_after: 0\n", "must be at least 1"),
    ("failover:\n  stale_for: soon\n", "seawall.yaml:2: stale_for: not a duration"),
    ("failover:\n  protect: [www.example.com]\n", "is not \"NAME TYPE\""),
    ("failover:\n  fail_after: three\n", "seawall.yaml:2: fail_after: expected an integer"),
    ("backends: files\n", "seawall.yaml:1: backends: expected a list"),
])
def test_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("`", "`").replace(".", r"\.")):
        load(tmp_path, text)


@pytest.mark.parametrize("tsig, message", [
    ("{name: k, secret: 'not base64!'}", "the secret is not base64"),
    ("{name: k, algorithm: hmac-sha999, secret: c2VjcmV0}", "tsig algorithm 'hmac-sha999'"),
    ("{name: k}", "needs a name and a secret"),
])
def test_tsig_errors(tmp_path, tsig, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"backends:\n  - type: axfr\n    primary: '127.0.0.1:53'\n"
                       f"    zones: [a]\n    tsig: {tsig}\n")


def test_stale_for_takes_expire_or_a_duration(tmp_path):
    assert load(tmp_path, "failover: {stale_for: expire}\n").failover.stale_for.is_expire
    config = load(tmp_path, "failover: {stale_for: 10m, protect: ['www.example.com. A']}\n")
    assert config.failover.stale_for == 600 and not config.failover.stale_for.is_expire
    assert config.failover.protect == ("www.example.com. A",)
