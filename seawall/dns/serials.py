"""Served serials: the SOA serial secondaries see, always moving forward.

A secondary follows its primary only when the primary's SOA serial is newer
than its own (RFC 1982 serial arithmetic, RFC 1034 §4.3.5). Seawall serves
different *versions* of a zone — live data, stale data with capped TTLs,
the emergency file — whose own serials are unrelated: an emergency file
written last year may carry a serial below today's live one, and going
back to live means going back to a lower serial. So when transfers are on,
the serial served is not always the zone's own:

* the **same content** as the last version served (a restart, a re-publish)
  keeps the serial it was served with;
* **other content** is served with its own serial when that is newer than
  every serial served so far, else with *highest served + 1*.

Thus a switch to emergency, and the return to live, each bump the served
serial, and the secondaries follow both. The rewritten SOA differs from the
zone's file only in the serial. The mapping (per zone: the serial served,
the highest serial ever served, the zone's own serial and a fingerprint of
its content) is kept in ``state_dir/served-serials.json``, replaced
atomically, so a restart neither rewinds the serial nor bumps it for
nothing.

**Signed zones** (DNSKEY at the apex) are served as they are: the SOA's
RRSIG covers the serial, so it cannot be rewritten without the zone's keys.
Their secondaries follow a switch only if the version switched to already
carries a higher serial; ``seawall check`` and the start-up checks warn
when a signed emergency zone's serial is not above the live one.
"""

from __future__ import annotations

import copy as _copy
import hashlib
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset

from ..safefiles import write_atomic
from ..zones.loader import LoadedZone
from ..zones.model import Node, Zone
from ..zones.problems import Location, Problem, Severity

log = logging.getLogger("seawall.transfers")

SOA = dns.rdatatype.SOA
SERIAL_MOD = 2 ** 32
HALF = 2 ** 31
FILE_NAME = "served-serials.json"


def serial_gt(a: int, b: int) -> bool:
    """RFC 1982 §3.2: is serial ``a`` newer than ``b``?"""
    return a != b and ((a - b) % SERIAL_MOD) < HALF


def serial_next(serial: int) -> int:
    """The next serial (RFC 1982 §3.1: addition modulo 2^32)."""
    return (serial + 1) % SERIAL_MOD


def fingerprint(zone: Zone) -> str:
    """A digest of a zone's content, its SOA serial left out, record order ignored.

    Each record is hashed on its own and the digests are added, so two builds
    of the same records in another order have the same fingerprint.
    """
    total = 0
    origin = zone.origin
    for rrset in zone.rrsets():
        head = rrset.name.to_digestable() + rrset.ttl.to_bytes(4, "big")
        for rdata in rrset:
            if rdata.rdtype == SOA:
                rdata = rdata.replace(serial=0)
            digest = hashlib.blake2b(head + rdata.rdtype.to_bytes(2, "big")
                                     + rdata.to_digestable(origin), digest_size=16).digest()
            total = (total + int.from_bytes(digest, "big")) % (1 << 128)
    return f"{total:032x}"


def _with_soa_serial(rrset: dns.rrset.RRset, serial: int) -> dns.rrset.RRset:
    out = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
    out.update_ttl(rrset.ttl)
    for rdata in rrset:
        out.add(rdata.replace(serial=serial))
    return out


def with_serial(zone: Zone, serial: int) -> Zone:
    """A copy of ``zone`` whose SOA carries ``serial``; everything else unchanged.

    Zones are immutable, so the copy shares every node with the original
    but a new apex whose SOA RRset is replaced: no rebuild of the tree.
    Only for unsigned zones (a signed SOA's RRSIG would no longer verify).
    """
    if zone.serial == serial:
        return zone
    assert not zone.is_signed, "the SOA of a signed zone cannot be rewritten"
    old = zone.apex
    apex = Node(old.name)
    apex.children = old.children
    apex.rrsets = dict(old.rrsets)
    apex.rrsets[SOA] = _with_soa_serial(zone.soa, serial)
    apex.rrsigs = old.rrsigs
    apex.is_apex, apex.is_delegation, apex.is_occluded = True, False, False
    copy = _copy.copy(zone)
    copy.apex = apex
    copy.soa = apex.rrsets[SOA]
    copy.serial = serial
    return copy


@dataclass
class Served:
    """What one zone was last served as."""

    serial: int          # the serial served
    high: int            # the highest serial ever served for the zone
    own: int             # the zone's own serial (its file's)
    fingerprint: str     # fingerprint() of that content


class ServedSerials:
    """The served-serial mapping of every zone, persisted in the state directory.

    Within one process a version is known by its Zone object (zones are
    immutable, and the controller hands over the same object each time it
    serves the same data); across a restart by its own serial and its
    fingerprint, which ``remember`` computes off the event loop after a swap.
    """

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / FILE_NAME if state_dir is not None else None
        self.zones: dict[dns.name.Name, Served] = {}
        self._objects: dict[dns.name.Name, Zone] = {}   # the zone last served, as handed in
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            for name, entry in data.get("zones", {}).items():
                self.zones[dns.name.from_text(name)] = Served(
                    int(entry["serial"]), int(entry["high"]), int(entry["own"]),
                    str(entry["fingerprint"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Losing the mapping costs at worst one transfer the secondaries skip
            # until the next change; it must not stop the server.
            log.error("served serials not read: path=%s reason=%s", self.path, exc)
            self.zones.clear()

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            data = {"version": 1,
                    "zones": {str(o): asdict(s) for o, s in sorted(self.zones.items())}}
            try:
                write_atomic(self.path, json.dumps(data, indent=1).encode())
            except OSError as exc:
                log.error("served serials not saved: path=%s reason=%s", self.path, exc)

    def serve(self, zone: Zone) -> Zone:
        """The version of ``zone`` to serve: its SOA serial moved on if it must be.

        Call ``save`` after a batch of zones, and ``remember`` (it may run in
        another thread) for each zone served.
        """
        origin = zone.origin
        own = zone.serial
        last = self.zones.get(origin)
        if last is None:
            serial = own
        elif self._objects.get(origin) is zone:
            serial = last.serial          # the same version again
        elif origin not in self._objects and own == last.own \
                and fingerprint(zone) == last.fingerprint:
            serial = last.serial          # the version served before a restart
        elif serial_gt(own, last.high):
            serial = own
        elif zone.is_signed:
            serial = own
            log.warning("serial not moved: zone=%s serial=%d highest_served=%d reason=the zone "
                        "is signed and its SOA cannot be rewritten; secondaries will keep "
                        "serial %d until the zone's own serial passes it",
                        origin, own, last.high, last.high)
        else:
            serial = serial_next(last.high)
        high = serial if last is None or serial_gt(serial, last.high) else last.high
        same = last is not None and serial == last.serial and own == last.own
        self.zones[origin] = Served(serial, high, own, last.fingerprint if same else "")
        self._objects[origin] = zone
        if serial != own and not zone.is_signed:
            log.info("serial mapped: zone=%s own=%d served=%d", origin, own, serial)
            return with_serial(zone, serial)
        return zone

    def forget(self, origin: dns.name.Name) -> None:
        """The zone is no longer served: drop its object, keep its serials (if it
        comes back, it comes back above them)."""
        self._objects.pop(origin, None)

    def remember(self, zone: Zone) -> None:
        """Store the fingerprint of ``zone`` if it is still the version served (slow)."""
        entry = self.zones.get(zone.origin)
        if entry is None or entry.fingerprint or self._objects.get(zone.origin) is not zone:
            return
        digest = fingerprint(zone)
        if self.zones.get(zone.origin) is entry and self._objects.get(zone.origin) is zone:
            entry.fingerprint = digest
            self.save()


def emergency_serial_warning(live: Zone, emergency: Zone) -> str | None:
    """Why secondaries would not follow a switch to this signed emergency zone, if so."""
    if not emergency.is_signed or serial_gt(emergency.serial, live.serial):
        return None
    return (f"signed emergency zone {emergency.origin} has serial {emergency.serial}, not above "
            f"the live zone's {live.serial}: secondaries would not follow a switch to emergency "
            f"(the SOA of a signed zone cannot be rewritten; re-sign it with a higher serial)")


def flag_emergency_serials(results: Iterable[LoadedZone]) -> None:
    """``seawall check``: warn on each signed ``emergency/NAME.zone`` whose serial is not
    above that of the live ``NAME.zone`` in the directory above it."""
    results = list(results)
    live: dict[tuple[Path, dns.name.Name], Zone] = {}
    for loaded in results:
        if loaded.zone is not None and loaded.path.parent.name != "emergency":
            live[(loaded.path.parent.resolve(), loaded.zone.origin)] = loaded.zone
    for loaded in results:
        emergency = loaded.zone
        if emergency is None or loaded.path.parent.name != "emergency":
            continue
        current = live.get((loaded.path.parent.parent.resolve(), emergency.origin))
        message = emergency_serial_warning(current, emergency) if current is not None else None
        if message is not None:
            line = next((r.location.line for r in loaded.records if r.rdata.rdtype == SOA), 1)
            loaded.problems.append(Problem(Location(emergency.source, line), message,
                                           Severity.WARNING))
