"""AXFR and IXFR out of a real Seawall process: the ACL, TSIG, big zones, IXFR history.

The client is dnspython (and dig for what it reports); BIND and Knot as
secondaries are in test_secondaries.py.
"""

from __future__ import annotations

import subprocess

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.xfr
import pytest

from conftest import ask, exchange_raw, require_tool, wait_for
from transfer_setup import (KEYRING, SECRET, WRONG_KEYRING, ZONE, axfr, start_primary,
                            xfr_messages)

pytestmark = pytest.mark.interop  # starts BIND/Knot/NSD/Unbound tools

OPEN = "  allow: [{address: [\"127.0.0.0/8\"]}]\n"
KEYS = f"  keys: [{{name: xfr-key, algorithm: hmac-sha256, secret: \"{SECRET}\"}}]\n"


def names(zone) -> set[str]:
    return {str(name) for name in zone.nodes}


def test_axfr_gives_the_served_zone(tmp_path):
    server = start_primary(tmp_path, OPEN)
    try:
        zone = axfr(server.addr)
        assert zone.get_rdataset(ZONE, "SOA")[0].serial == 2026112701
        assert "www.example.com." in names(zone)
        assert zone.get_rdataset("www.example.com.", "A")[0].address == "192.0.2.80"
        # glue below the delegation travels too (RFC 5936 §3.1: all records of the zone)
        assert zone.get_rdataset("ns1.lab.example.com.", "A")[0].address == "192.0.2.201"
        messages = xfr_messages(server.addr)
        first, last = messages[0].answer[0], messages[-1].answer[-1]
        assert first.rdtype == last.rdtype == dns.rdatatype.SOA
        assert messages[0].flags & 0x0400   # AA
    finally:
        server.stop()


def test_transfers_are_refused_without_an_allow_section(tmp_path):
    server = start_primary(tmp_path, "  notify: []\n")
    try:
        with pytest.raises(dns.xfr.TransferError) as info:
            axfr(server.addr)
        assert info.value.rcode == dns.rcode.REFUSED
    finally:
        server.stop()


def test_address_not_in_the_acl_is_refused(tmp_path):
    server = start_primary(tmp_path, "  allow: [{address: [\"127.0.0.2/32\"]}]\n")
    try:
        with pytest.raises(dns.xfr.TransferError) as info:
            axfr(server.addr, source="127.0.0.1")
        assert info.value.rcode == dns.rcode.REFUSED
        assert "transfer refused" in server.output() and "client=127.0.0.1" in server.output()
        zone = axfr(server.addr, source="127.0.0.2")   # the allowed address gets it
        assert "www.example.com." in names(zone)
    finally:
        server.stop()


def test_tsig_required_refuses_unsigned_and_wrong_keys(tmp_path):
    server = start_primary(tmp_path, KEYS + "  allow: [{key: xfr-key}]\n")
    try:
        with pytest.raises(dns.xfr.TransferError) as info:
            axfr(server.addr)
        assert info.value.rcode == dns.rcode.REFUSED
        with pytest.raises(dns.exception.DNSException):
            axfr(server.addr, keyring=WRONG_KEYRING)
        assert "rcode=NOTAUTH" in server.output()
        zone = axfr(server.addr, keyring=KEYRING)
        assert zone.get_rdataset(ZONE, "SOA")[0].serial == 2026112701
        # every message of a signed transfer is signed (dnspython checks each MAC)
        messages = xfr_messages(server.addr, keyring=KEYRING)
        assert all(m.had_tsig for m in messages)
    finally:
        server.stop()


def test_address_and_key_together(tmp_path):
    rules = KEYS + "  allow: [{address: [\"127.0.0.2\"], key: xfr-key}]\n"
    server = start_primary(tmp_path, rules)
    try:
        with pytest.raises(dns.xfr.TransferError):
            axfr(server.addr, keyring=KEYRING, source="127.0.0.1")
        with pytest.raises(dns.xfr.TransferError):
            axfr(server.addr, source="127.0.0.2")
        assert "www.example.com." in names(axfr(server.addr, keyring=KEYRING, source="127.0.0.2"))
    finally:
        server.stop()


def test_not_a_served_zone_is_notauth(tmp_path):
    server = start_primary(tmp_path, OPEN)
    try:
        for zone in ("example.org.", "www.example.com."):
            with pytest.raises(dns.xfr.TransferError) as info:
                axfr(server.addr, zone)
            assert info.value.rcode == dns.rcode.NOTAUTH
    finally:
        server.stop()


def test_axfr_over_udp_is_not_served(tmp_path):
    server = start_primary(tmp_path, OPEN)
    try:
        response = ask(server.addr, ZONE, "AXFR")
        assert response.rcode() == dns.rcode.NOTIMP   # README: AXFR over UDP is NOTIMP
        assert not response.answer
    finally:
        server.stop()


def big_zone(count: int) -> str:
    lines = ["$ORIGIN example.com.", "$TTL 3600",
             "@ SOA ns1 hostmaster 2026112701 7200 3600 1209600 300",
             "@ NS ns1", "@ NS ns2", "ns1 A 192.0.2.53", "ns2 A 192.0.2.54",
             "www A 192.0.2.80"]
    lines += [f"host{i} A 10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(count)]
    lines += [f"host{i} TXT \"record {i} of a zone bigger than one DNS message\""
              for i in range(count)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("keyring", [None, KEYRING], ids=["unsigned", "tsig"])
def test_zone_bigger_than_one_message_goes_in_several(tmp_path, keyring):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.com.zone").write_text(big_zone(4000))
    server = start_primary(tmp_path, KEYS + OPEN, failover="  require_emergency: false\n")
    try:
        messages = xfr_messages(server.addr, keyring=keyring)
        assert len(messages) > 2
        assert all(len(m.to_wire()) <= 65535 for m in messages)
        assert messages[0].question and messages[0].answer[0].rdtype == dns.rdatatype.SOA
        zone = axfr(server.addr, keyring=keyring)
        assert len(list(zone.iterate_rdatas())) == 4000 * 2 + 6
        assert zone.get_rdataset("host3999.example.com.", "A")[0].address == "10.0.15.159"
    finally:
        server.stop()


def test_dig_reports_several_messages(tmp_path):
    require_tool("dig")
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.com.zone").write_text(big_zone(4000))
    server = start_primary(tmp_path, OPEN, failover="  require_emergency: false\n")
    try:
        out = subprocess.run(["dig", f"@{server.addr[0]}", "-p", str(server.addr[1]), ZONE,
                              "AXFR"], capture_output=True, text=True, timeout=30).stdout
        size = [line for line in out.splitlines() if "XFR size" in line]
        assert size, out[-2000:]
        records, messages = int(size[0].split()[3]), int(size[0].split()[6].rstrip(","))
        assert records == 4000 * 2 + 6 + 1   # the SOA twice
        assert messages > 2
    finally:
        server.stop()


def test_ixfr_sends_the_difference_then_falls_back_to_axfr(tmp_path):
    server = start_primary(tmp_path, OPEN + "  ixfr_history: 2\n",
                           failover="  probe_interval: 0.2s\n")
    try:
        path = tmp_path / "zones" / "example.com.zone"
        text = path.read_text()
        for serial in (2026112702, 2026112703, 2026112704):
            # each version moves www one address on: 192.0.2.81, .82, .83
            old_www = f"www         A     192.0.2.{80 + serial - 2026112702}"
            text = text.replace(str(serial - 1), str(serial)).replace(
                old_www, f"www         A     192.0.2.{81 + serial - 2026112702}")
            path.write_text(text)
            assert wait_for(lambda: ask(server.addr, ZONE, "SOA").answer[0][0].serial == serial,
                            10), server.output()
        # from 2026112702: two kept differences, incremental
        messages = xfr_messages(server.addr, rdtype="IXFR", serial=2026112702)
        records = [(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rdata.to_text())
                   for m in messages for rrset in m.answer for rdata in rrset]
        soas = [r for r in records if r[1] == "SOA"]
        assert [int(s[2].split()[2]) for s in soas] == [2026112704, 2026112702, 2026112703,
                                                        2026112703, 2026112704, 2026112704]
        assert ("www.example.com.", "A", "192.0.2.81") in records   # deleted
        assert ("www.example.com.", "A", "192.0.2.83") in records   # added
        assert "how=ixfr " in server.output()
        # applied by dnspython's IXFR reader onto the old version, the result is the new zone
        old = axfr(server.addr)
        assert old.get_rdataset("www.example.com.", "A")[0].address == "192.0.2.83"
        # from 2026112701: the difference is no longer kept (depth 2): the whole zone
        messages = xfr_messages(server.addr, rdtype="IXFR", serial=2026112701)
        assert sum(len(r) for m in messages for r in m.answer) == 23
        assert "how=ixfr-as-axfr" in server.output()
        # up to date: the SOA alone
        messages = xfr_messages(server.addr, rdtype="IXFR", serial=2026112704)
        assert [r.rdtype for m in messages for r in m.answer] == [dns.rdatatype.SOA]
    finally:
        server.stop()


def test_the_rendered_axfr_is_reused_with_the_clients_id_case_edns_and_tsig(tmp_path):
    """Unit level: one rendering per served version, finished per request."""
    from conftest import zone_from_text
    from seawall.dns.query import parse_query
    from seawall.dns.transfer import Acl, History, Rule, TransferServer
    from seawall.zones.zoneset import ZoneSet

    zone = zone_from_text(ZONE, big_zone(3000))
    zones = ZoneSet([zone])
    server = TransferServer(Acl((Rule(),)), dict(KEYRING), lambda: zones, History(0))
    for qname, edns, keyring in (("example.com.", -1, None), ("ExAmPlE.CoM.", 0, None),
                                 ("EXAMPLE.com.", 0, KEYRING), ("example.COM.", -1, KEYRING)):
        request = dns.message.make_query(qname, "AXFR", use_edns=edns)
        if keyring is not None:
            request.use_tsig(keyring)
        wire = request.to_wire()
        messages = server.handle(parse_query(wire), ("127.0.0.1", 5), wire)
        assert len(messages) > 1
        ctx = None
        count = 0
        for index, raw in enumerate(messages):
            # as dns.query.xfr reads a transfer: each MAC chained to the previous one
            message = dns.message.from_wire(raw, keyring=keyring,
                                            request_mac=request.mac if keyring else b"",
                                            xfr=True, tsig_ctx=ctx, multi=True)
            ctx = message.tsig_ctx
            assert message.id == request.id
            assert (message.edns >= 0) == (edns >= 0)
            assert message.had_tsig == (keyring is not None)
            count += sum(len(rrset) for rrset in message.answer)
            if index == 0:
                assert message.question[0].name.to_text() == qname   # the client's spelling
        assert count == 3000 * 2 + 6 + 1
    assert len(server._rendered) == 1      # rendered once, for the one served version


def test_a_signed_zone_transfers_whole_and_still_verifies(tmp_path):
    """RRSIGs, NSEC3 records and the DNSKEYs travel; dnssec-verify accepts the copy."""
    require_tool("dnssec-signzone", "dnssec-keygen", "dnssec-verify")
    import shutil
    import sys

    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "tests" / "dnssec"))
    try:
        from dnssec_signing import sign_zone
    finally:
        sys.path.pop(0)
    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    live = (zones / "example.com.zone").read_text()
    signed = sign_zone(live, ZONE, tmp_path / "keys", nsec3=True)
    (zones / "example.com.zone").write_text(signed.read_text())
    server = start_primary(tmp_path, OPEN)
    try:
        zone = axfr(server.addr)
        types = {dns.rdatatype.to_text(rdata.rdtype) for _, _, rdata in zone.iterate_rdatas()}
        assert {"RRSIG", "NSEC3", "NSEC3PARAM", "DNSKEY"} <= types
        copy = tmp_path / "copy.zone"
        zone.to_file(str(copy), relativize=False)
        result = subprocess.run(["dnssec-verify", "-o", "example.com", str(copy)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        # a signed zone's SOA is never rewritten: its own serial is served
        assert zone.get_rdataset(ZONE, "SOA")[0].serial == 2026112701
    finally:
        server.stop()


def test_a_signed_query_gets_a_signed_answer_and_a_bad_signature_notauth(tmp_path):
    """RFC 8945 §5.3: a secondary's signed SOA check (BIND signs it) is answered signed."""
    server = start_primary(tmp_path, KEYS + "  allow: [{key: xfr-key}]\n")
    try:
        for tcp in (False, True):
            query = dns.message.make_query(ZONE, "SOA")
            query.use_tsig(KEYRING)
            send = dns.query.tcp if tcp else dns.query.udp
            response = send(query, server.addr[0], timeout=3, port=server.addr[1])
            assert response.had_tsig      # dnspython verified the MAC against the query's
            assert response.answer[0][0].serial == 2026112701
            bad = dns.message.make_query(ZONE, "SOA")
            bad.use_tsig(WRONG_KEYRING)
            raw = exchange_raw(server.addr, bad.to_wire(), tcp=tcp)
            assert raw is not None
            reply = dns.message.from_wire(raw, keyring=False)   # its TSIG says BADSIG
            assert reply.rcode() == dns.rcode.NOTAUTH and not reply.answer
            assert reply.question[0].name == dns.name.from_text(ZONE)
    finally:
        server.stop()
