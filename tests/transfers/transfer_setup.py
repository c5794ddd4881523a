"""Shared set-up of the transfer tests: a Seawall primary with a transfers: section."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.tsigkeyring
import dns.xfr
import dns.zone

from conftest import ROOT, SeawallProcess, free_port

ZONE = "example.com."
SECRET = "c2Vhd2FsbC10cmFuc2Zlci10ZXN0LWtleQ=="
KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
WRONG_KEYRING = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", "d3Jvbmcgc2VjcmV0")})


def primary_config(tmp_path: Path, transfers: str, *, failover: str = "",
                   port: int | None = None) -> Path:
    """A config serving a copy of zones/ with ``transfers`` (YAML lines, indented 2)."""
    zones = tmp_path / "zones"
    if not zones.exists():
        shutil.copytree(ROOT / "zones", zones)
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{port or free_port()}\"]\nzones: zones\n"
                      "emergency_dir: zones/emergency\nstate_dir: state\n"
                      "transfers:\n" + transfers + (f"failover:\n{failover}" if failover else ""))
    return config


def start_primary(tmp_path: Path, transfers: str, **kw) -> SeawallProcess:
    return SeawallProcess(tmp_path, config=primary_config(tmp_path, transfers, **kw)).start()


def axfr(addr: tuple[str, int], zone: str = ZONE, *, keyring=None, source: str | None = None,
         serial: int | None = None) -> dns.zone.Zone:
    """Transfer ``zone`` with dnspython (IXFR from ``serial`` if given); raises on refusal."""
    target = dns.zone.Zone(dns.name.from_text(zone), relativize=False)
    query, _ = dns.xfr.make_query(target, serial=serial, keyring=keyring)
    dns.query.inbound_xfr(addr[0], target, query, port=addr[1], timeout=5, lifetime=20,
                          source=source)
    return target


def xfr_messages(addr: tuple[str, int], zone: str = ZONE, rdtype: str = "AXFR", *,
                 keyring=None, serial: int = 0, source: str | None = None
                 ) -> list[dns.message.Message]:
    """The raw response messages of a transfer (dns.query.xfr)."""
    kind = dns.rdatatype.from_text(rdtype)
    return list(dns.query.xfr(addr[0], zone, rdtype=kind, port=addr[1], timeout=5, lifetime=20,
                              keyring=keyring, keyname="xfr-key." if keyring else None,
                              serial=serial, relativize=False, source=source))


def events(state: Path) -> list[dict]:
    path = state / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


