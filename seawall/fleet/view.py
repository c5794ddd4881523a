"""What a server knows of its fleet: the keys in etcd, read into one view.

Keys, all under ``/seawall/`` (values are JSON)::

    members/NAME        a live member's report, under its lease (gone when the lease lapses)
    last/NAME           the same report without a lease: what a lapsed member said last
    intent/ZONE         the operator's order for a zone: force (mode, reason, until, by) or release
    accept/ZONE         an order to serve the version the guard held back
    epoch/ZONE          the fleet's newest version of the zone: epoch, fingerprint, serial
    version/ZONE/FP     the epoch each version (content fingerprint) of the zone was given

The view is read whole every poll (a few keys per zone and member); the
decisions made from it are pure functions here, so they can be tested
without etcd: the quorum vote (:func:`vote`) and the fence (:func:`fence`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdatatype
import dns.serial

from ..zones.model import Zone
from .etcd import KeyValue

PREFIX = "/seawall/"
SOA = dns.rdatatype.SOA


@dataclass
class FleetView:
    """The fleet as one poll of etcd saw it."""

    members: dict[str, dict[str, Any]] = field(default_factory=dict)   # live: lease held
    last: dict[str, dict[str, Any]] = field(default_factory=dict)      # everyone ever seen
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)   # zone -> order
    accepts: dict[str, dict[str, Any]] = field(default_factory=dict)   # zone -> order
    epochs: dict[str, dict[str, Any]] = field(default_factory=dict)    # zone -> newest
    versions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)            # key -> mod revision
    revision: int = 0

    @classmethod
    def parse(cls, kvs: Iterable[KeyValue], revision: int = 0) -> FleetView:
        view = cls(revision=revision)
        for kv in kvs:
            view.revisions[kv.key] = kv.mod_revision
            if not kv.key.startswith(PREFIX):
                continue
            kind, _, rest = kv.key[len(PREFIX):].partition("/")
            try:
                value = json.loads(kv.value)
            except ValueError:
                continue
            if not isinstance(value, dict) or not rest:
                continue
            if kind == "members":
                view.members[rest] = value
            elif kind == "last":
                view.last[rest] = value
            elif kind == "intent":
                view.intents[rest] = value
            elif kind == "accept":
                view.accepts[rest] = value
            elif kind == "epoch":
                view.epochs[rest] = value
            elif kind == "version":
                zone, _, fp = rest.rpartition("/")
                if zone:
                    view.versions.setdefault(zone, {})[fp] = value
        return view


def key(kind: str, *parts: str) -> str:
    return PREFIX + "/".join((kind,) + parts)


# ------------------------------------------------------------- fingerprints

def fingerprint(zone: Zone) -> str:
    """A digest of a zone's content without its SOA serial (hex, 16 bytes).

    Two versions with the same records are the same data, whatever serial
    each carries: an older plan re-published under a new serial is still
    the older plan. The apex SOA counts with its serial set to 0. Each
    RRset is hashed alone and the digests are summed (mod 2^128), so the
    order the zone holds them in does not matter and nothing is sorted:
    about 1 s for 100k RRsets, which is why large zones are fingerprinted
    off the event loop (see FleetService.version_fence).
    """
    total = 0
    origin = zone.origin
    for rrset in zone.rrsets():
        digest = hashlib.blake2b(rrset.name.to_digestable(), digest_size=16)
        digest.update(b"%d %d %d" % (rrset.rdtype, rrset.covers, rrset.ttl))
        items = []
        for rdata in rrset:
            if rrset.rdtype == SOA and rrset.name == origin:
                rdata = rdata.replace(serial=0)
            items.append(rdata.to_digestable(origin))
        for item in sorted(items):
            digest.update(len(item).to_bytes(2, "big") + item)
        total = (total + int.from_bytes(digest.digest(), "big")) % (1 << 128)
    return f"{total:032x}"


# -------------------------------------------------------------------- quorum

def failing_members(view: FleetView, zone: str, me: str) -> list[str]:
    """The other live members that report the zone's backend failing."""
    out = []
    for name, member in view.members.items():
        if name == me:
            continue
        entry = (member.get("zones") or {}).get(zone)
        if entry and entry.get("failing"):
            out.append(name)
    return sorted(out)


def vote(view: FleetView, origin: dns.name.Name, me: str, i_fail: bool, quorum: int
         ) -> str | None:
    """May this member leave the zone's last good data for emergency? None: yes.

    Yes once ``quorum`` live members (this one counted) see the zone's
    backend failing; 0 means a majority of the live members. The quorum is
    never more than the live members: a member alone in the fleet decides
    alone.
    """
    zone = origin.to_text()
    live = set(view.members) | {me}
    others = failing_members(view, zone, me)
    seen = len(others) + (1 if i_fail else 0)
    needed = min(quorum, len(live)) if quorum > 0 else len(live) // 2 + 1
    if seen >= needed:
        return None
    who = ", ".join(([me] if i_fail else []) + others) or "none"
    return (f"fleet quorum not reached: {seen} of {len(live)} live members see the backend "
            f"of {zone} failing ({who}; quorum {needed}); serving the last good data")


# ---------------------------------------------------------------------- fence

def fence(view: FleetView, origin: dns.name.Name, fp: str | None, serial: int | None,
          serial_ordered: bool) -> str | None:
    """Is this version older than the fleet's newest of the zone? None: no.

    Older is: content the fleet gave an earlier epoch (whatever its serial
    now), or, for a version not seen before with a serial that orders, a
    serial behind the newest one's (RFC 1982). Without a fingerprint
    (``fp`` None: not computed yet) only the serial counts.
    """
    zone = origin.to_text()
    newest = view.epochs.get(zone)
    if not newest:
        return None
    epoch = int(newest.get("epoch", 0))
    if fp == newest.get("fingerprint"):
        return None
    known = view.versions.get(zone, {}).get(fp) if fp is not None else None
    where = (f"the fleet's newest is epoch {epoch} (serial {newest.get('serial')}, first "
             f"taken by {newest.get('by', '?')})")
    if known is not None and int(known.get("epoch", 0)) < epoch:
        return (f"older than the fleet's newest: this content is epoch {known.get('epoch')} "
                f"(serial {known.get('serial')}); {where}")
    newest_serial = newest.get("serial")
    if known is None and serial_ordered and serial is not None \
            and isinstance(newest_serial, int) \
            and dns.serial.Serial(serial) < dns.serial.Serial(newest_serial):
        return f"older than the fleet's newest: serial {serial} is behind; {where}"
    return None


def zone_names(members: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every zone some member serves, in name order."""
    names: set[str] = set()
    for member in members.values():
        names.update((member.get("zones") or {}).keys())
    return sorted(names, key=lambda z: dns.name.from_text(z))
