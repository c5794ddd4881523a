"""The watch's pieces without a network: DS memory, standing findings, comparisons, config."""

from __future__ import annotations

from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from seawall.config import load_config
from seawall.errors import ConfigError
from seawall.watch.ask import Server
from seawall.watch.findings import Book, Finding
from seawall.watch.parent import Delegation, compare
from seawall.watch.peers import _older
from seawall.watch.served import Served
from seawall.watch.trust import DsMemory

ORIGIN = dns.name.from_text("example.test.")
NS1, NS2 = dns.name.from_text("ns1.example.test."), dns.name.from_text("ns2.example.test.")
P1, P2 = Server("192.0.2.1", 53), Server("192.0.2.2", 53)


def ds(tag: int, digest: str, digest_type: int = 2):
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS,
                               f"{tag} 13 {digest_type} {digest}")


def served(**kw) -> Served:
    base = dict(origin=ORIGIN, serial=1, ns=frozenset({NS1}),
                glue={NS1: frozenset({"192.0.2.53"})}, ksk_ds={(1, 13, b"\xaa" * 32)},
                signed=True)
    base.update(kw)
    return Served(**base)


def delegation(server=P1, **kw) -> Delegation:
    base = dict(ns=frozenset({NS1}), glue={NS1: frozenset({"192.0.2.53"})},
                ds=[ds(1, "aa" * 32)], ds_ttl=3600)
    base.update(kw)
    return Delegation(server, **base)


def kinds(findings):
    return sorted((f.kind, f.server) for f in findings)


def test_a_delegation_like_the_served_zone_is_no_finding():
    assert compare(served(), [delegation(P1), delegation(P2)]) == []


@pytest.mark.parametrize("change, expected", [
    (dict(missing="NXDOMAIN"), "delegation-missing"),
    (dict(ns=frozenset({NS1, NS2})), "ns-mismatch"),
    (dict(glue={NS1: frozenset({"192.0.2.99"})}), "glue-mismatch"),
    (dict(glue={}), "glue-mismatch"),
    (dict(ds=[ds(7, "bb" * 32)]), "ds-mismatch"),
    (dict(ds=[]), "ds-missing"),
])
def test_each_difference_is_its_finding(change, expected):
    found = compare(served(), [delegation(P1, **change)])
    assert [f.kind for f in found] == [expected]
    assert found[0].server == str(P1)


def test_one_parent_server_against_the_others():
    found = compare(served(), [delegation(P1), delegation(P2, ds=[ds(7, "bb" * 32)]),
                               delegation(Server("192.0.2.3"))])
    assert kinds(found) == [("ds-mismatch", "192.0.2.2:53"), ("parent-disagree", "192.0.2.2:53")]


def test_a_parent_server_without_an_answer():
    found = compare(served(), [delegation(P1), Delegation(P2, error="timeout")])
    assert kinds(found) == [("parent-unreachable", "192.0.2.2:53")]


def test_an_unsigned_zone_with_a_ds_at_the_parent_is_bogus():
    found = compare(served(signed=False, ksk_ds=set()), [delegation(P1)])
    assert [f.kind for f in found] == ["ds-mismatch"]
    assert "unsigned" in found[0].detail and found[0].served == "unsigned"


def test_ds_memory_keeps_a_replaced_ds_for_its_ttl():
    now = [1000.0]
    memory = DsMemory(lambda: now[0])
    old, new = (1, 13, b"a"), (2, 13, b"b")
    assert memory.current(ORIGIN) is None          # the parent was never seen
    memory.saw(ORIGIN, {old}, 60)
    now[0] += 30
    memory.saw(ORIGIN, {new}, 60)                 # a KSK roll at the parent
    assert memory.current(ORIGIN) == {old, new}
    now[0] += 31                                   # old seen last 61 s ago, TTL 60
    assert memory.current(ORIGIN) == {new}
    memory.saw(ORIGIN, set(), 0)                   # no DS any more: new still cached
    assert memory.current(ORIGIN) == {new}
    now[0] += 61
    assert memory.current(ORIGIN) == set()


def test_book_reports_new_and_cleared_findings_once():
    book = Book()
    a = Finding("example.test.", "lame", "ns1 192.0.2.1:53", "x")
    b = Finding("example.org.", "drift", "peer", "y")
    assert book.update([a, b], now=1.0) == ([a, b], [])
    assert book.update([a, b], now=2.0) == ([], [])
    assert book.standing[a.key][1] == 1.0          # first seen, not last seen
    assert book.update([], zones=["example.test."], now=3.0) == ([], [a])
    assert list(book.standing) == [b.key]           # zones not looked at keep theirs
    assert book.counts() == {("example.org.", "drift"): 1}


def test_serial_arithmetic():
    assert _older(1, 2) and not _older(2, 1)
    assert _older(2**32 - 1, 3)                      # RFC 1982 wrap
    assert not _older(5, 5)


def test_the_watch_section(tmp_path: Path):
    path = tmp_path / "seawall.yaml"
    path.write_text("watch:\n  interval: 30s\n  parents: [\"192.0.2.1:53\"]\n"
                    "  peers:\n    - {address: \"192.0.2.54:53\", digest: names,"
                    " names: [\"www.example.test A\"]}\n")
    watch = load_config(path).watch
    assert watch.interval == 30 and watch.parents == ("192.0.2.1:53",)
    assert watch.peers[0].label == "192.0.2.54:53"
    assert not load_config(None).watch.enabled   # nothing to ask: off
    for bad in ("watch: {interval: 0s}", "watch: {peers: [{name: x}]}",
                "watch: {peers: [{address: \"1.2.3.4:53\", digest: names}]}",
                "watch: {root_hints: [\"nowhere\"]}", "watch: {frequency: 1m}"):
        path.write_text(bad + "\n")
        with pytest.raises(ConfigError):
            load_config(path)
