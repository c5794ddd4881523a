"""Secondaries and other providers: do they serve what Seawall serves?

Each configured peer is asked for the zone's SOA (with authority). A serial
other than the served one is drift, reported once it has lasted
``drift_after``, with how long it has lagged. With the same serial, the
data itself is compared by digest: the whole zone by AXFR where the peer
allows it, else the RRsets listed in ``names``. Digests of a serial are
computed once per (peer, serial), not every round.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import dns.flags
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsigkeyring
import dns.xfr
import dns.zone

from ..config import WatchPeer
from .ask import Server, Unanswered, ask
from .findings import DRIFT, PEER_DIFFERS, PEER_UNREACHABLE, Finding
from .served import Served, record_lines, rrset_records, zone_digest, zone_rrset

SOA = dns.rdatatype.SOA


@dataclass
class PeerState:
    """What the watch remembers of one (peer, zone)."""

    serial: int | None = None
    behind_since: float | None = None          # wall clock: first seen on another serial
    digests: dict[int, bytes | None] = field(default_factory=dict)   # serial -> peer digest
    how: str = ""                               # axfr, names or soa
    checked_at: float | None = None


class PeerWatch:
    """Asks the configured peers about the served zones; keeps lag times between rounds."""

    def __init__(self, peers: tuple[WatchPeer, ...], timeout: float, drift_after: float,
                 wall=time.time) -> None:
        self.peers = peers
        self.timeout = timeout
        self.drift_after = drift_after
        self.wall = wall
        self.state: dict[tuple[str, dns.name.Name], PeerState] = {}
        self._own: dict[tuple[dns.name.Name, int, str], bytes] = {}   # our digests

    def peers_of(self, origin: dns.name.Name) -> list[WatchPeer]:
        return [p for p in self.peers
                if not p.zones or any(dns.name.from_text(z) == origin for z in p.zones)]

    async def check(self, served: Served) -> list[Finding]:
        peers = self.peers_of(served.origin)
        results = await asyncio.gather(*(self._check(p, served) for p in peers))
        return [f for found in results for f in found]

    async def _check(self, peer: WatchPeer, served: Served) -> list[Finding]:
        zone, label = served.origin.to_text(), peer.label
        server = Server.parse(peer.address)
        st = self.state.setdefault((label, served.origin), PeerState())
        now = self.wall()
        st.checked_at = now
        try:
            reply = await ask(server, served.origin, SOA, self.timeout)
        except Unanswered as exc:
            return [Finding(zone, PEER_UNREACHABLE, label, f"peer {label} gave no answer: {exc}")]
        soa = [r for r in reply.answer if r.rdtype == SOA and r.name == served.origin]
        if reply.rcode() != dns.rcode.NOERROR or not soa or not reply.flags & dns.flags.AA:
            why = dns.rcode.to_text(reply.rcode()) if reply.rcode() else "no SOA with authority"
            return [Finding(zone, PEER_UNREACHABLE, label,
                            f"peer {label} does not serve the zone ({why})")]
        serial = soa[0][0].serial
        st.serial = serial
        if served.serial is None or serial == served.serial:
            st.behind_since = None
            return await self._compare_data(peer, server, served, st)
        if st.behind_since is None:
            st.behind_since = now
        lag = now - st.behind_since
        if lag < self.drift_after:
            return []
        way = "behind" if _older(serial, served.serial) else "ahead of Seawall"
        return [Finding(zone, DRIFT, label, f"peer {label} serves serial {serial}, {way}, "
                        f"for {lag:.0f}s", f"serial {serial}", f"serial {served.serial}")]

    async def _compare_data(self, peer: WatchPeer, server: Server, served: Served,
                            st: PeerState) -> list[Finding]:
        if peer.digest == "soa" or served.zone is None or served.serial is None:
            st.how = "soa"
            return []
        serial = served.serial
        if serial not in st.digests:
            st.digests = {serial: await self._peer_digest(peer, server, served, st)}
        theirs = st.digests[serial]
        if theirs is None:
            return []
        ours = self._own_digest(served, st.how, peer)
        if theirs == ours:
            return []
        return [Finding(served.origin.to_text(), PEER_DIFFERS, peer.label,
                        f"peer {peer.label} serves other data under the same serial {serial} "
                        f"(compared by {st.how})", f"digest {theirs.hex()[:16]}",
                        f"digest {ours.hex()[:16]}")]

    async def _peer_digest(self, peer: WatchPeer, server: Server, served: Served,
                           st: PeerState) -> bytes | None:
        if peer.digest == "axfr":
            try:
                digest = await asyncio.to_thread(self._axfr_digest, peer, server, served.origin)
                st.how = "axfr"
                return digest
            except Exception:   # refused, not allowed, timed out: compare names instead
                pass
        if not peer.names:
            st.how = "soa"
            return None
        records = []
        for item in peer.names:
            name, rdtype = _name_type(item)
            try:
                reply = await ask(server, name, rdtype, self.timeout, dnssec=True)
            except Unanswered:
                return None
            for rrset in reply.answer:
                if rrset.name == name and rrset.rdtype == rdtype:
                    records += rrset_records(rrset)
        st.how = "names"
        return record_lines(served.origin, records)

    def _axfr_digest(self, peer: WatchPeer, server: Server, origin: dns.name.Name) -> bytes:
        keyring = keyname = None
        if peer.tsig is not None:
            keyring = dns.tsigkeyring.from_text({peer.tsig.name: (peer.tsig.algorithm,
                                                                  peer.tsig.secret)})
            keyname = peer.tsig.name
        copy = dns.zone.Zone(origin, relativize=False)
        query, _ = dns.xfr.make_query(copy)
        if keyring is not None:
            query.use_tsig(keyring, keyname)
        dns.query.inbound_xfr(server.host, copy, query, port=server.port, timeout=self.timeout,
                              lifetime=self.timeout * 5)
        return record_lines(origin, ((name, rdataset.ttl, rd)
                                     for name, rdataset in copy.iterate_rdatasets()
                                     for rd in rdataset))

    def _own_digest(self, served: Served, how: str, peer: WatchPeer) -> bytes:
        assert served.zone is not None and served.serial is not None
        key = (served.origin, served.serial, how if how == "axfr" else "names:" + ",".join(
            peer.names))
        if key not in self._own:
            if len(self._own) > 256:
                self._own.clear()
            if how == "axfr":
                self._own[key] = zone_digest(served.zone)
            else:
                records = []
                for item in peer.names:
                    name, rdtype = _name_type(item)
                    records += rrset_records(zone_rrset(served.zone, name, rdtype))
                self._own[key] = record_lines(served.origin, records)
        return self._own[key]

    def status(self, origin: dns.name.Name) -> list[dict]:
        now = self.wall()
        out = []
        for peer in self.peers_of(origin):
            st = self.state.get((peer.label, origin))
            if st is None:
                continue
            out.append({"peer": peer.label, "serial": st.serial, "compared_by": st.how,
                        "lag": now - st.behind_since if st.behind_since is not None else 0.0})
        return out


def _older(a: int, b: int) -> bool:
    """RFC 1982 serial arithmetic: is ``a`` before ``b``?"""
    return a != b and ((b - a) % 2**32) < 2**31


def _name_type(item: str) -> tuple[dns.name.Name, int]:
    name, rdtype = item.split()
    return dns.name.from_text(name), dns.rdatatype.from_text(rdtype)
