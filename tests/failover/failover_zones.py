"""Tiny zones built in memory for the controller and guard tests."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from seawall.zones.model import Zone, build_zone
from seawall.zones.problems import Location
from seawall.zones.reader import Record

HERE = Location("test", 0)


def records(origin: dns.name.Name, serial: int, hosts: int = 20,
            address: str = "192.0.2.80", ttl: int = 3600) -> list[Record]:
    def rr(name: str, rdtype: str, text: str, rr_ttl: int = ttl) -> Record:
        owner = dns.name.from_text(name, origin)
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text,
                                    origin=origin)
        return Record(owner, rr_ttl, rdata, HERE)

    out = [rr("@", "SOA", f"ns1 hostmaster {serial} 7200 3600 1209600 300"),
           rr("@", "NS", "ns1"), rr("ns1", "A", "192.0.2.53"), rr("www", "A", address)]
    out += [rr(f"h{i}", "A", f"198.51.100.{i % 250 + 1}") for i in range(hosts)]
    return out


def make_zone(origin: dns.name.Name, serial: int, hosts: int = 20,
              address: str = "192.0.2.80", ttl: int = 3600) -> Zone:
    return build_zone(origin, records(origin, serial, hosts, address, ttl), source="test")
