"""What a pre-signed zone needs at query time, computed once when it is built.

A signed zone carries its own proofs of non-existence: NSEC records in
canonical order (RFC 4034 §4, §6.1) or NSEC3 records ordered by hashed
owner name (RFC 5155 §3, §7.1). Answering with them means finding the
record that *matches* a name or the one that *covers* it; both are a
binary search over lists sorted here, at build time.
"""

from __future__ import annotations

import base64
import bisect
import hashlib

import dns.name
import dns.rdatatype
import dns.rrset

NSEC, NSEC3, NSEC3PARAM, DNSKEY = (dns.rdatatype.NSEC, dns.rdatatype.NSEC3,
                                   dns.rdatatype.NSEC3PARAM, dns.rdatatype.DNSKEY)
OPT_OUT = 0x01
_B32_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_HEX = b"0123456789abcdefghijklmnopqrstuv"
_TO_HEX = bytes.maketrans(_B32_STD, _B32_HEX)


class NsecChain:
    """NSEC owners in canonical order (RFC 4034 §6.1), for match and cover."""

    def __init__(self, nodes: list) -> None:
        nodes = sorted(nodes, key=lambda n: n.name)
        self.owners: list[dns.name.Name] = [n.name for n in nodes]
        self.nodes = nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def match(self, name: dns.name.Name):
        i = bisect.bisect_left(self.owners, name)
        if i < len(self.owners) and self.owners[i] == name:
            return self.nodes[i]
        return None

    def cover(self, name: dns.name.Name):
        """The node whose NSEC spans ``name``: the last owner before it (wrapping)."""
        i = bisect.bisect_left(self.owners, name) - 1
        return self.nodes[i]  # i == -1 wraps to the last NSEC, whose next is the apex


class Nsec3Chain:
    """NSEC3 records sorted by hashed owner (RFC 5155 §7.1), with the zone's parameters."""

    def __init__(self, origin: dns.name.Name, nodes: dict[bytes, object], algorithm: int,
                 iterations: int, salt: bytes) -> None:
        self.origin = origin
        self.algorithm = algorithm
        self.iterations = iterations
        self.salt = salt
        self.hashes = sorted(nodes)
        self.nodes = [nodes[h] for h in self.hashes]

    def __len__(self) -> int:
        return len(self.nodes)

    def hash(self, name: dns.name.Name) -> bytes:
        """The owner label of ``name``'s NSEC3: base32hex of the iterated SHA-1 (RFC 5155 §5)."""
        digest = hashlib.sha1(name.canonicalize().to_wire() + self.salt).digest()
        for _ in range(self.iterations):
            digest = hashlib.sha1(digest + self.salt).digest()
        return b32hex(digest)

    def match(self, name: dns.name.Name):
        label = self.hash(name)
        i = bisect.bisect_left(self.hashes, label)
        if i < len(self.hashes) and self.hashes[i] == label:
            return self.nodes[i]
        return None

    def cover(self, name: dns.name.Name):
        """The node whose NSEC3 hash interval contains ``name``'s hash (wrapping)."""
        label = self.hash(name)
        i = bisect.bisect_left(self.hashes, label) - 1
        return self.nodes[i]


def b32hex(raw: bytes) -> bytes:
    """Lowercase base32hex (RFC 4648 §7), the alphabet of NSEC3 owner labels."""
    return base64.b32encode(raw).translate(_TO_HEX)


def build_chains(origin: dns.name.Name, apex, tree_nodes, nsec3_nodes: dict[bytes, object]
                 ) -> tuple[NsecChain | None, Nsec3Chain | None]:
    """The NSEC and NSEC3 chains of a zone, None where a zone has none."""
    nsec_nodes = [n for n in tree_nodes if NSEC in n.rrsets]
    nsec = NsecChain(nsec_nodes) if nsec_nodes else None
    nsec3 = None
    if nsec3_nodes:
        params = apex.rrsets.get(NSEC3PARAM)
        if params is not None:
            first = params[0]
        else:
            first = next(iter(nsec3_nodes.values())).rrsets[NSEC3][0]
        nsec3 = Nsec3Chain(origin, nsec3_nodes, first.algorithm, first.iterations, first.salt)
    return nsec, nsec3
