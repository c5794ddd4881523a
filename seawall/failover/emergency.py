"""Emergency zones: loaded and checked at start-up, kept built, ready to swap in.

``emergency_dir/NAME.zone`` is the emergency version of zone ``NAME``. A
broken emergency file is a start-up error, found on a calm day rather than
during the disaster (like NSD's and Knot's checks at load time). A served
zone without an emergency file is an error too when ``require_emergency``
is on, else a warning.

The TTL policy lives here as well: in stale and emergency state the TTLs
served can be capped (``emergency_ttl_max``, ``stale_ttl_max``) so that
resolvers come back soon after recovery; the SOA MINIMUM follows the cap,
which bounds negative caching too (RFC 2308 §5).
"""

from __future__ import annotations

import logging
from pathlib import Path

import dns.name
import dns.rdatatype

from ..errors import SeawallError
from ..zones.loader import load_directory
from ..zones.model import Zone, build_zone
from ..zones.problems import Location
from ..zones.reader import Record
from ..zones.signatures import check_dnssec

log = logging.getLogger("seawall.failover")
SOA = dns.rdatatype.SOA


class EmergencyError(SeawallError):
    """An emergency zone is broken or missing; every reason is listed."""


def load_emergency(directory: Path, *, strict: bool = True) -> dict[dns.name.Name, Zone]:
    """Every emergency zone in ``directory``, built; EmergencyError if any is broken."""
    if not directory.is_dir():
        return {}
    zones: dict[dns.name.Name, Zone] = {}
    problems = []
    for loaded in load_directory(directory, strict=strict):
        for problem in loaded.problems:
            if not problem.is_error:
                log.warning("emergency zone problem: %s", problem)
        if loaded.ok and loaded.zone is not None:
            # A signed emergency zone must validate: signatures that verify with
            # its own keys, none expired, chains whole (DNSSEC through failover).
            signed = [p for p in check_dnssec(loaded.zone, loaded.records) if p.is_error]
            if signed:
                problems += [str(p) for p in signed[:5]]
            else:
                zones[loaded.zone.origin] = loaded.zone
        else:
            problems += [str(p) for p in loaded.errors] or [f"{loaded.path}: cannot be loaded"]
    if problems:
        raise EmergencyError("broken emergency zone(s):\n  " + "\n  ".join(problems))
    for origin, zone in zones.items():
        log.info("emergency zone ready: zone=%s serial=%d rrsets=%d",
                 origin, zone.serial, zone.rrset_count)
    return zones


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
