"""Write a zone back out: as an RFC 1035 master file, or as octoDNS YAML.

Used to move a zone between the two formats Seawall reads (a team switching
to zones as code, or back), and by the tests that check a round trip gives
identical answers. Both writers are exact or fail: the octoDNS writer reads
its own output back and raises :class:`ExportError`, listing every record it
cannot express, rather than write a file that would serve different answers
(a TXT record split into strings otherwise than octoDNS's 255-character
chunks, a type octoDNS has no field names for, such as RRSIG).

Example::

    loaded = load_zone_file(Path("zones/example.com.zone"))
    Path("example.com.yaml").write_text(to_octodns_yaml(loaded.zone))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset
import yaml

from .model import Zone
from .octodns import OctodnsReader, natural_key

SOA = dns.rdatatype.SOA


class ExportError(ValueError):
    """Some records of the zone cannot be written exactly in the target format.

    A ValueError, not a ``SeawallError``: the zones package imports nothing
    else from Seawall (``seawall convert`` reports it).
    """

    def __init__(self, message: str, reasons: list[str]) -> None:
        super().__init__(message + ":\n  " + "\n  ".join(reasons))
        self.reasons = reasons


def zone_rrsets(zone: Zone) -> list[dns.rrset.RRset]:
    """Every RRset of a zone (signatures and NSEC3 included), SOA first, then in
    canonical order (RFC 4034 §6.1) and by type."""
    nodes = list(zone.nodes()) + list(getattr(zone, "nsec3_nodes", {}).values())
    rrsets: list[dns.rrset.RRset] = []
    for node in nodes:
        rrsets += node.rrsets.values()
        rrsets += node.rrsigs.values()
    return sorted(rrsets, key=lambda r: (r.rdtype != SOA, r.name, r.rdtype, r.covers))


# ------------------------------------------------------------ RFC 1035

def to_master_file(zone: Zone) -> str:
    """The zone as an RFC 1035 §5 master file, names relative to ``$ORIGIN``."""
    origin = zone.origin
    lines = [f"; {origin} exported by Seawall", f"$ORIGIN {origin}"]
    for rrset in zone_rrsets(zone):
        owner = rrset.name.relativize(origin).to_text()
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        for rdata in sorted(rrset, key=lambda r: r.to_digestable(origin)):
            lines.append(f"{owner} {rrset.ttl} IN {rdtype} "
                         f"{rdata.to_text(origin=origin, relativize=True)}")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------- octoDNS

def to_octodns_yaml(zone: Zone, *, include_soa: bool = True) -> str:
    """The zone as an octoDNS YAML zone file, keys in octoDNS's natural order.

    The SOA is written as an apex ``type: SOA`` record (which Seawall reads) so
    the round trip is exact; ``include_soa=False`` leaves it out, for octoDNS
    versions that have no SOA type (Seawall then synthesizes one on reading).
    """
    origin = zone.origin
    names: dict[str, list[dict[str, Any]]] = {}
    reasons: list[str] = []
    for rrset in zone_rrsets(zone):
        if rrset.rdtype == SOA and not include_soa:
            continue
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        write = _OCTODNS_VALUES.get(rdtype)
        if write is None or rrset.rdtype == dns.rdatatype.RRSIG:
            reasons.append(f"{rrset.name} {rdtype}: octoDNS has no {rdtype} record type")
            continue
        try:
            values = [write(rdata) for rdata in sorted(rrset, key=lambda r: r.to_digestable())]
        except (UnicodeDecodeError, ValueError) as exc:
            reasons.append(f"{rrset.name} {rdtype}: {exc}")
            continue
        record: dict[str, Any] = {"ttl": rrset.ttl, "type": rdtype}
        if len(values) == 1 or rdtype in ("CNAME", "DNAME", "SOA"):
            record["value"] = values[0]
        else:
            record["values"] = values
        key = "" if rrset.name == origin else rrset.name.relativize(origin).to_text()
        names.setdefault(key, []).append(record)
    if reasons:
        raise ExportError(f"zone {origin} cannot be written as octoDNS YAML", reasons)
    document = {key: (records[0] if len(records) == 1
                      else sorted(records, key=lambda r: r["type"]))
                for key, records in sorted(names.items(), key=lambda kv: natural_key(kv[0]))}
    text = yaml.dump(_natural(document), Dumper=_Dumper, explicit_start=True,
                     default_flow_style=False, sort_keys=False, indent=2, width=1000)
    _verify(zone, text, include_soa)
    return text


def _verify(zone: Zone, text: str, include_soa: bool) -> None:
    """Read ``text`` back; every RRset must come back as it was."""
    reader = OctodnsReader(Path(f"{zone.origin.to_text().rstrip('.')}.yaml"), zone.origin)
    records, problems = reader.read(text)
    errors = [f"as written: {p}" for p in problems if p.is_error]
    if errors:
        raise ExportError(f"zone {zone.origin} cannot be written as octoDNS YAML", errors)
    want = {_rr_key(r.name, r.ttl, rdata) for r in zone_rrsets(zone)
            if include_soa or r.rdtype != SOA for rdata in r}
    got = {_rr_key(r.name, r.ttl, r.rdata) for r in records
           if include_soa or r.rdata.rdtype != SOA}
    lost = [f"{name} {ttl} {dns.rdatatype.to_text(rdtype)} {text}: read back otherwise"
            for name, ttl, rdtype, _, text in sorted(want - got)]
    if lost:
        raise ExportError(f"zone {zone.origin} cannot be written exactly as octoDNS YAML", lost)


def _rr_key(name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> tuple:
    return (name.canonicalize(), ttl, rdata.rdtype, rdata.to_digestable(), rdata.to_text())


def _target(rdata: Any) -> str:
    return rdata.target.to_text()


def _txt(rdata: Any) -> str:
    """The strings joined, escaped as octoDNS wants: ``\\;``, ``\\\\``, ``\\DDD``."""
    out = []
    for byte in b"".join(rdata.strings):
        char = chr(byte)
        if char in "\\;":
            out.append("\\" + char)
        elif byte < 0x20 or byte > 0x7E:
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    text = "".join(out)
    if text.startswith('"'):
        text = "\\034" + text[1:]  # a leading quote would read as octoDNS's pre-quoted form
    return text


_OCTODNS_VALUES: dict[str, Callable[[Any], Any]] = {
    "A": lambda r: r.address,
    "AAAA": lambda r: r.address,
    "CAA": lambda r: {"flags": r.flags, "tag": r.tag.decode("ascii"),
                      "value": r.value.decode("utf-8")},
    "CNAME": _target, "DNAME": _target, "NS": _target, "PTR": _target,
    "DS": lambda r: {"algorithm": r.algorithm, "digest": r.digest.hex(),
                     "digest_type": r.digest_type, "key_tag": r.key_tag},
    "MX": lambda r: {"exchange": r.exchange.to_text(), "preference": r.preference},
    "NAPTR": lambda r: {"flags": r.flags.decode("ascii"), "order": r.order,
                        "preference": r.preference, "regexp": r.regexp.decode("utf-8"),
                        "replacement": r.replacement.to_text(),
                        "service": r.service.decode("utf-8")},
    "SOA": lambda r: {"expire": r.expire, "minimum": r.minimum, "mname": r.mname.to_text(),
                      "refresh": r.refresh, "retry": r.retry, "rname": r.rname.to_text(),
                      "serial": r.serial},
    "SPF": _txt, "TXT": _txt,
    "SRV": lambda r: {"port": r.port, "priority": r.priority, "target": r.target.to_text(),
                      "weight": r.weight},
    "SSHFP": lambda r: {"algorithm": r.algorithm, "fingerprint": r.fingerprint.hex(),
                        "fingerprint_type": r.fp_type},
    "TLSA": lambda r: {"certificate_association_data": r.cert.hex(),
                       "certificate_usage": r.usage, "matching_type": r.mtype,
                       "selector": r.selector},
}


def _natural(value: Any) -> Any:
    """Mappings with their keys in natural order, all the way down."""
    if isinstance(value, dict):
        return {k: _natural(value[k]) for k in sorted(value, key=lambda k: natural_key(str(k)))}
    if isinstance(value, list):
        return [_natural(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key as octoDNS's own dumps are."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def check_simple_key(self) -> bool:
        """The apex key ``''`` as ``'':``, not PyYAML's complex-key ``? ''``."""
        simple = super().check_simple_key()
        if isinstance(self.event, yaml.ScalarEvent) and self.event.value == "":
            return True
        return simple

