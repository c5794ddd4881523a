"""The transfers: section of the configuration: what it accepts, what it refuses."""

from __future__ import annotations

import pytest

from seawall.config import load_config
from seawall.errors import ConfigError
from transfer_setup import SECRET

KEY = f"  keys: [{{name: xfr-key, algorithm: hmac-sha256, secret: \"{SECRET}\"}}]\n"


def load(tmp_path, text: str):
    path = tmp_path / "seawall.yaml"
    path.write_text("transfers:\n" + text)
    return load_config(path)


def test_a_full_section_loads(tmp_path):
    config = load(tmp_path, KEY + "  allow:\n    - {address: [\"192.0.2.0/24\", \"::1\"]}\n"
                            "    - {key: xfr-key}\n    - {address: 127.0.0.1, key: xfr-key}\n"
                            "  notify: [\"127.0.0.1:5301\"]\n  notify_key: xfr-key\n"
                            "  ixfr_history: 5\n")
    transfers = config.transfers
    assert transfers.enabled
    assert [r.address for r in transfers.allow] == [("192.0.2.0/24", "::1"), (), ("127.0.0.1",)]
    assert transfers.allow[1].key == "xfr-key"
    assert transfers.notify == ("127.0.0.1:5301",) and transfers.ixfr_history == 5


def test_off_by_default(tmp_path):
    assert not load_config(None).transfers.enabled


@pytest.mark.parametrize("text, message", [
    ("  allow: [{}]\n", "a rule needs an address, a key or both"),
    ("  allow: [{address: [\"not-an-ip\"]}]\n", "'not-an-ip' is not an address or prefix"),
    ("  allow: [{key: other}]\n", "key 'other' is not in transfers.keys"),
    ("  allow: [{adress: [\"127.0.0.1\"]}]\n", "unknown key 'adress'"),
    ("  notify: [\"127.0.0.1\"]\n", "is not HOST:PORT"),
    ("  notify: [\"127.0.0.1:53\"]\n  notify_key: other\n", "notify_key 'other' is not in"),
    ("  keys: [{name: k, secret: \"not base64!\"}]\n", "the secret is not base64"),
    ("  keys: [{name: k, algorithm: hmac-sha999, secret: \"" + SECRET + "\"}]\n",
     "algorithm 'hmac-sha999' is not one of"),
    ("  ixfr_history: -1\n", "must not be negative"),
])
def test_bad_sections_are_refused_with_a_reason(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert message in str(info.value)
