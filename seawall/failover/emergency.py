"""Emergency zones: loaded at start-up and on reload, checked against live, kept built.

``emergency_dir/NAME.zone`` is the emergency version of zone ``NAME``. It is
the data of last resort, so it is checked on a calm day rather than trusted
blindly during the disaster (like NSD's and Knot's checks at load time),
and compared with the live zone it stands in for:

* the file loads and validates; signed, its signatures verify with its own
  keys and none has expired (or expires within ``signature_margin``);
* its apex NS RRset equals the live one (resolvers ask those servers);
* it is signed when the live zone is, and one of its KSKs matches the DS the
  parent holds for the live zone's KSKs (else validators see it as bogus);
* drift: the share of live RRsets missing or different in it, and the age
  of the file — reported, not refused: emergency data is older by design.

Any of the first three makes the zone *unprotected*: reported loudly (status,
metric, event, ``/readyz`` detail) while live data keeps serving, and never
a reason to stop the server. ``seawall check`` still fails on them.

The TTL policy lives here as well: in stale and emergency state the TTLs
served can be capped (``emergency_ttl_max``, ``stale_ttl_max``) so that
resolvers come back soon after recovery; the SOA MINIMUM follows the cap,
which bounds negative caching too (RFC 2308 §5).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.name
import dns.rdatatype

from ..errors import SeawallError
from ..zones.filesig import Signature, signature, source_signatures, unchanged
from ..zones.loader import LoadedZone, load_zone_file, zone_files
from ..zones.model import Zone, build_zone
from ..zones.problems import Location
from ..zones.reader import Record
from ..zones.signatures import check_dnssec, ds_digests, keeps_trust_chain
from .guard import rrsets_by_key
from .zonestate import EmergencyCheck

log = logging.getLogger("seawall.failover")
SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS


class EmergencyError(SeawallError):
    """An emergency zone is broken or missing; every reason is listed."""


@dataclass
class EmergencySet:
    """What the emergency directory holds: good zones, and why the others are not."""

    zones: dict[dns.name.Name, Zone] = field(default_factory=dict)
    broken: dict[dns.name.Name, str] = field(default_factory=dict)
    unnamed: list[str] = field(default_factory=list)    # files with no usable zone name
    mtimes: dict[dns.name.Name, float] = field(default_factory=dict)
    # file -> (its zone, the signatures of the files it was read from), good zones only
    files: dict[Path, tuple[dns.name.Name, dict[Path, Signature]]] = field(default_factory=dict)
    unchanged: int = 0   # zones taken from the previous set, their files not read again


def load_emergency(directory: Path, *, strict: bool = True,
                   previous: EmergencySet | None = None) -> EmergencySet:
    """Every emergency zone in ``directory``; a broken one is listed, never raised.

    A good zone of ``previous`` whose file and included files are unchanged
    (``zones/filesig.py``) is taken as it is, not read again: a reload
    (SIGHUP) reads the files that changed, and a big emergency file nobody
    touched costs no CPU next to the answers.
    """
    out = EmergencySet()
    if not directory.is_dir():
        return out
    for path in zone_files(directory):
        if previous is not None and path in previous.files:
            origin, signatures = previous.files[path]
            if origin in previous.zones and unchanged(signatures):
                out.zones[origin] = previous.zones[origin]
                out.mtimes[origin] = previous.mtimes.get(origin, 0.0)
                out.files[path] = (origin, signatures)
                out.unchanged += 1
                continue
        before = signature(path)
        loaded = load_zone_file(path, include_root=directory, display_root=directory.parent,
                                strict=strict)
        _take(out, loaded)
        if loaded.zone is not None and out.zones.get(loaded.origin) is loaded.zone:
            out.files[path] = (loaded.origin,
                               source_signatures(path, loaded, before, directory.parent))
    return out


def _take(out: EmergencySet, loaded: LoadedZone) -> None:
    """Add one loaded emergency file to ``out``: a good zone, or why it is not."""
    for problem in loaded.problems:
        if not problem.is_error:
            log.warning("emergency zone problem: %s", problem)
    errors = [str(p) for p in loaded.errors]
    if loaded.ok and loaded.zone is not None:
        # A signed emergency zone must validate: signatures that verify with
        # its own keys, none expired, chains whole (DNSSEC through failover).
        errors = [str(p) for p in check_dnssec(loaded.zone, loaded.records) if p.is_error]
    elif not errors:
        errors = [f"{loaded.path}: cannot be loaded"]
    if loaded.origin is None:
        out.unnamed += errors
        log.error("emergency file ignored: file=%s reason=%s", loaded.path, "; ".join(errors))
        return
    try:
        out.mtimes[loaded.origin] = os.stat(loaded.path).st_mtime
    except OSError:
        pass
    if errors:
        shown = "; ".join(errors[:3]) + (f" (and {len(errors) - 3} more)"
                                         if len(errors) > 3 else "")
        out.broken[loaded.origin] = f"broken emergency file: {shown}"
        log.error("emergency zone unusable: zone=%s reason=%s", loaded.origin, shown)
    else:
        assert loaded.zone is not None
        out.zones[loaded.origin] = loaded.zone
        log.info("emergency zone ready: zone=%s serial=%d rrsets=%d", loaded.origin,
                 loaded.zone.serial, loaded.zone.rrset_count)


def compare(emergency: Zone | None, live: Zone | None, *, mtime: float | None = None,
            margin: float = 3600.0, now: float | None = None,
            broken: str | None = None,
            parent_ds: set[tuple[int, int, bytes]] | None = None,
            signatures: bool = True) -> EmergencyCheck:
    """How far ``emergency`` can stand in for ``live`` (None: not known yet).

    ``signatures`` False leaves the expiry of its signatures to the caller
    (``seawall check`` reports it with its own horizon).
    """
    now = time.time() if now is None else now
    check = EmergencyCheck(age=now - mtime if mtime is not None else None)
    if broken is not None:
        check.problems.append(broken)
        return check
    if emergency is None:
        check.problems.append("no emergency version")
        return check
    check.signature_expiry = emergency.signature_expiry
    if signatures and emergency.is_signed and emergency.signature_expiry is not None \
            and emergency.signature_expiry - now < margin:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(emergency.signature_expiry))
        check.problems.append(f"its signatures expire at {when}")
    if parent_ds and emergency.is_signed and not parent_ds & ds_digests(emergency):
        check.problems.append("none of its KSKs matches the DS the parent publishes")
    if live is None:
        return check
    live_ns, emergency_ns = live.apex.get(NS), emergency.apex.get(NS)
    if live_ns is not None and (emergency_ns is None or set(live_ns) != set(emergency_ns)):
        check.problems.append("its apex NS RRset differs from the live zone's")
    if live.is_signed and not emergency.is_signed:
        check.problems.append("the live zone is signed, the emergency version is not")
    elif live.is_signed and ds_digests(live) and not keeps_trust_chain(live, emergency):
        check.problems.append("none of its KSKs matches the DS of the live zone's KSKs")
    check.drift = drift(live, emergency)
    return check


def drift(live: Zone, emergency: Zone) -> float | None:
    """The share of live RRsets missing from ``emergency`` or holding other data.

    TTLs are left out: emergency versions carry short ones on purpose.
    """
    before, after = rrsets_by_key(live), rrsets_by_key(emergency)
    if not before:
        return None
    differ = sum(1 for key, rrset in before.items()
                 if key not in after or set(after[key]) != set(rrset))
    return differ / len(before)


def cap_ttls(zone: Zone, cap: int | None) -> Zone:
    """A copy of ``zone`` whose TTLs, and SOA MINIMUM, are at most ``cap``."""
    if cap is None:
        return zone
    if all(rrset.ttl <= cap for rrset in zone.rrsets()) and zone.soa[0].minimum <= cap:
        return zone
    location = Location(zone.source, 0)
    records = []
    for rrset in zone.rrsets():
        ttl = min(rrset.ttl, cap)
        for rdata in rrset:
            if rdata.rdtype == SOA and not zone.is_signed:
                # A signed SOA cannot change without breaking its RRSIG; lower
                # TTLs are fine for validators (RFC 4035 §5.3.3).
                rdata = rdata.replace(minimum=min(rdata.minimum, cap))
            records.append(Record(rrset.name, ttl, rdata, location))
    return build_zone(zone.origin, records, source=zone.source)
