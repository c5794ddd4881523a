"""The declaration of health-checked RRsets: ``NAME.health.conf`` beside the zone file.

A side file keeps the zone file a plain RFC 1035 (or octoDNS) zone that every
other tool still reads; the loader skips ``.conf`` files, so the side file is
never taken for a zone. Its content is YAML, keyed by owner name relative to
the zone (``''`` is the apex) as octoDNS keys records, and each record follows
octoDNS's ``dynamic`` schema where it fits::

    www:                          # www.example.com
      type: A                     # A or AAAA (a list of mappings for both)
      dynamic:
        pools:
          main:
            values:
              - {value: 192.0.2.10, weight: 1}
              - {value: 192.0.2.11, status: obey}   # up | down | obey (the check)
            fallback: backup      # used when no value of main is up
          backup:
            values: [{value: 198.51.100.10}]
        rules:
          - pool: main            # the first rule without geos picks the pool
      healthcheck:                # as octoDNS's octodns.healthcheck (also accepted there)
        protocol: HTTP            # TCP, HTTP, HTTPS or DNS
        port: 80
        path: /health
        host: www.example.com     # Host header / TLS name (HTTP, HTTPS)
        expect: 200               # HTTP(S) status wanted (default: any 2xx or 3xx)
        body: ok                  # HTTP(S): the body must contain this (optional)
        query: www.example.com A  # DNS: the question asked of the target (default: the owner, SOA)
        interval: 1s              # defaults: the health section of the configuration
        timeout: 1s
        rise: 2
        fall: 3
        hold_down: 5s

The check runs against the very value it vouches for (the address that is
answered is the address that is checked). Weights are accepted, as octoDNS
has them, but every answer carries all healthy values of the pool in use:
the answers are prebuilt RRsets, and a per-query weighted choice would be
per-query logic.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import yaml

from ..config import Duration, HealthConfig
from ..errors import SeawallError
from ..zones.names import ZoneNameError, zone_name_from_stem

SUFFIX = ".health.conf"
PROTOCOLS = ("TCP", "HTTP", "HTTPS", "DNS")
DEFAULT_PORTS = {"TCP": 80, "HTTP": 80, "HTTPS": 443, "DNS": 53}
TYPES = {"A": dns.rdatatype.A, "AAAA": dns.rdatatype.AAAA}
STATUSES = ("obey", "up", "down")
_RECORD_KEYS = {"type", "dynamic", "healthcheck", "octodns", "ttl", "value", "values"}
_CHECK_KEYS = {"protocol", "port", "path", "host", "expect", "body", "query", "interval",
               "timeout", "rise", "fall", "hold_down"}


class HealthDeclarationError(SeawallError):
    """A health side file is invalid; ``problems`` lists every reason as file:line: message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Check:
    """How one target is checked; targets with equal checks share one state."""

    protocol: str
    port: int
    path: str = "/"
    host: str | None = None
    expect: int | None = None
    body: str | None = None
    query: tuple[str, str] | None = None
    interval: float = 10.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3
    hold_down: float = 0.0

    def describe(self) -> str:
        if self.protocol in ("HTTP", "HTTPS"):
            return f"{self.protocol} :{self.port}{self.path}"
        if self.protocol == "DNS":
            return f"DNS :{self.port} {' '.join(self.query or ())}".rstrip()
        return f"TCP :{self.port}"


@dataclass(frozen=True)
class Value:
    """One value of a pool: an address, its weight and octoDNS's status override."""

    address: str
    weight: int = 1
    status: str = "obey"


@dataclass(frozen=True)
class Pool:
    name: str
    values: tuple[Value, ...]
    fallback: str | None = None


@dataclass(frozen=True)
class HealthRRset:
    """One health-checked RRset: its owner and type, pools in order of use, the check."""

    name: dns.name.Name
    rdtype: int
    pools: tuple[Pool, ...]      # the rule's pool first, then its fallbacks in order
    check: Check
    location: str

    @property
    def key(self) -> tuple[dns.name.Name, int]:
        return (self.name, self.rdtype)

    def label(self) -> str:
        return f"{self.name} {dns.rdatatype.to_text(self.rdtype)}"

    def addresses(self) -> list[str]:
        seen: list[str] = []
        for pool in self.pools:
            for value in pool.values:
                if value.address not in seen:
                    seen.append(value.address)
        return seen


def side_files(directory: Path) -> list[Path]:
    """The health side files directly inside ``directory`` (``NAME.health.conf``)."""
    try:
        return sorted(p for p in directory.iterdir()
                      if p.name.lower().endswith(SUFFIX) and not p.name.startswith(".")
                      and p.is_file())
    except OSError:
        return []


def origin_of(path: Path) -> dns.name.Name:
    stem = path.name[:-len(SUFFIX)]
    try:
        return zone_name_from_stem(stem)
    except ZoneNameError as exc:
        raise HealthDeclarationError([f"{path}:1: {exc}"]) from None


def read_side_file(path: Path, defaults: HealthConfig) -> tuple[dns.name.Name,
                                                                list[HealthRRset]]:
    """The zone a side file is for and its health-checked RRsets; every problem raised."""
    origin = origin_of(path)
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise HealthDeclarationError([f"{path}:1: cannot read: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise HealthDeclarationError([f"{path}: {exc}"]) from None
    if node is None:
        return origin, []
    if not isinstance(node, yaml.MappingNode):
        raise HealthDeclarationError([f"{path}:{node.start_mark.line + 1}: expected a mapping "
                                      "of owner names"])
    problems: list[str] = []
    out: list[HealthRRset] = []
    seen: set[tuple[dns.name.Name, int]] = set()
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        where = f"{path}:{line}"
        relative = str(key_node.value if key_node.value is not None else "")
        try:
            name = (dns.name.from_text(relative, origin) if relative not in ("", "@")
                    else origin)
        except dns.exception.DNSException as exc:
            problems.append(f"{where}: bad owner name {relative!r}: {exc}")
            continue
        data = yaml.safe_load(yaml.serialize(value_node))
        items = data if isinstance(data, list) else [data]
        for item in items:
            try:
                rrset = _record(name, item, defaults, where)
            except ValueError as exc:
                problems.append(f"{where}: {relative or '@'}: {exc}")
                continue
            if rrset.key in seen:
                problems.append(f"{where}: {rrset.label()} is declared twice")
                continue
            seen.add(rrset.key)
            out.append(rrset)
    if problems:
        raise HealthDeclarationError(problems)
    return origin, out


def _record(name: dns.name.Name, item: Any, defaults: HealthConfig, where: str) -> HealthRRset:
    if not isinstance(item, dict):
        raise ValueError("expected a mapping with type, dynamic and healthcheck")
    unknown = sorted(set(item) - _RECORD_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(str, unknown))}")
    rdtype_text = str(item.get("type", "")).upper()
    if rdtype_text not in TYPES:
        raise ValueError(f"type {item.get('type')!r}: only A and AAAA can be health-checked")
    dynamic = item.get("dynamic")
    if not isinstance(dynamic, dict) or not isinstance(dynamic.get("pools"), dict) \
            or not dynamic["pools"]:
        raise ValueError("needs dynamic.pools (octoDNS's schema)")
    pools = {str(k): _pool(str(k), v, rdtype_text) for k, v in dynamic["pools"].items()}
    first = _rule_pool(dynamic.get("rules"), pools)
    chain: list[Pool] = []
    current: str | None = first
    while current is not None:
        if current not in pools:
            raise ValueError(f"pool {current!r} is not declared")
        if any(p.name == current for p in chain):
            raise ValueError(f"the fallbacks of pool {first!r} loop at {current!r}")
        chain.append(pools[current])
        current = pools[current].fallback
    check_data = item.get("healthcheck")
    octodns = item.get("octodns")
    if check_data is None and isinstance(octodns, dict):
        check_data = octodns.get("healthcheck")
    check = _check(check_data or {}, defaults, name)
    return HealthRRset(name, TYPES[rdtype_text], tuple(chain), check, where)


def _rule_pool(rules: Any, pools: dict[str, Pool]) -> str:
    if rules is None:
        return next(iter(pools))
    if not isinstance(rules, list) or not rules:
        raise ValueError("dynamic.rules must be a list of {pool: NAME}")
    for rule in rules:
        if not isinstance(rule, dict) or "pool" not in rule:
            raise ValueError("each rule needs a pool")
        if rule.get("geos"):
            continue
        return str(rule["pool"])
    raise ValueError("every rule has geos; geo rules are not served (add a rule without geos)")


def _pool(name: str, data: Any, rdtype_text: str) -> Pool:
    if not isinstance(data, dict) or not isinstance(data.get("values"), list) \
            or not data["values"]:
        raise ValueError(f"pool {name!r} needs a list of values")
    values = []
    for raw in data["values"]:
        if not isinstance(raw, dict):
            raw = {"value": raw}
        address = str(raw.get("value", ""))
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"pool {name!r}: {address!r} is not an address") from None
        if (ip.version == 4) != (rdtype_text == "A"):
            raise ValueError(f"pool {name!r}: {address} is not an {rdtype_text} address")
        weight = raw.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise ValueError(f"pool {name!r}: weight {weight!r} must be within 0..100")
        status = str(raw.get("status", "obey")).lower()
        if status not in STATUSES:
            raise ValueError(f"pool {name!r}: status {status!r} is not one of obey, up, down")
        values.append(Value(ip.compressed, weight, status))
    fallback = data.get("fallback")
    return Pool(name, tuple(values), str(fallback) if fallback is not None else None)


def _check(data: Any, defaults: HealthConfig, owner: dns.name.Name) -> Check:
    if not isinstance(data, dict):
        raise ValueError("healthcheck must be a mapping")
    unknown = sorted(set(data) - _CHECK_KEYS)
    if unknown:
        raise ValueError(f"unknown healthcheck key(s) {', '.join(map(str, unknown))}")
    protocol = str(data.get("protocol", "HTTP")).upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"healthcheck protocol {protocol!r} is not one of "
                         f"{', '.join(PROTOCOLS)}")
    port = data.get("port", DEFAULT_PORTS[protocol])
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"healthcheck port {port!r} is out of range")
    query = None
    if protocol == "DNS":
        parts = str(data.get("query") or f"{owner} SOA").split()
        if len(parts) != 2:
            raise ValueError("healthcheck query must be \"NAME TYPE\"")
        try:
            dns.rdatatype.from_text(parts[1])
        except dns.rdatatype.UnknownRdatatype:
            raise ValueError(f"healthcheck query type {parts[1]!r} is unknown") from None
        query = (parts[0], parts[1].upper())
    expect = data.get("expect")
    if expect is not None and (not isinstance(expect, int) or not 100 <= expect <= 599):
        raise ValueError(f"healthcheck expect {expect!r} is not an HTTP status")

    def duration(key: str, default: float) -> float:
        return float(Duration.parse(data[key])) if key in data else float(default)

    def count(key: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"healthcheck {key} must be a whole number of at least 1")
        return value

    check = Check(protocol=protocol, port=port, path=str(data.get("path", "/")),
                  host=str(data["host"]) if data.get("host") else None, expect=expect,
                  body=str(data["body"]) if data.get("body") is not None else None,
                  query=query, interval=duration("interval", defaults.interval),
                  timeout=duration("timeout", defaults.timeout),
                  rise=count("rise", defaults.rise), fall=count("fall", defaults.fall),
                  hold_down=duration("hold_down", defaults.hold_down))
    if check.interval <= 0 or check.timeout <= 0 or check.hold_down < 0:
        raise ValueError("healthcheck interval and timeout must be positive")
    if not check.path.startswith("/"):
        raise ValueError("healthcheck path must start with /")
    return check
