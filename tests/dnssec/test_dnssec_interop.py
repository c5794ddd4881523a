"""Signed zones answered like Knot DNS and NSD answer them (RFC 4035 §3.1, RFC 5155 §7.2).

Zones are signed at test time with dnssec-signzone (NSEC; NSEC3; NSEC3 with
opt-out), served by Seawall, Knot and NSD side by side, and every question is
compared with the conformance harness's own normalisation: sections as sets
of RRsets with TTLs, flags, rcode. Cases where Knot and NSD disagree are
implementation-defined and must match one of them.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import CONFORMANCE, ROOT, SeawallProcess, free_port, require_tool
from dnssec_signing import sign_zone

pytestmark = pytest.mark.interop  # starts BIND/Knot/NSD/Unbound tools

ZONE = """\
$ORIGIN {origin}
$TTL 3600
@        SOA   ns1 hostmaster 2026112701 7200 3600 1209600 300
@        NS    ns1
@        NS    ns2
@        MX    10 mail
ns1      A     192.0.2.53
ns2      A     192.0.2.54
mail     A     192.0.2.25
mail     AAAA  2001:db8::25
www      A     192.0.2.80
www      AAAA  2001:db8::80
alias    CNAME www
a.b.ent  A     192.0.2.2
*.wild   A     192.0.2.100
*.wild   TXT   "wildcard"
sec      NS    ns.sec
sec      DS    12345 13 2 0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0
ns.sec   A     192.0.2.31
insec    NS    ns.insec
ns.insec A     192.0.2.32
"""

CASES = [
    ("www-a", "www", "A"), ("www-aaaa", "www", "AAAA"), ("www-mx-nodata", "www", "MX"),
    ("nx-a", "nx", "A"), ("deep-nx", "x.y.nx", "A"), ("ent-nodata", "b.ent", "A"),
    ("below-ent-nx", "q.b.ent", "A"), ("wild-a", "host.wild", "A"),
    ("wild-txt", "host.wild", "TXT"), ("wild-nodata", "host.wild", "MX"),
    ("cname", "alias", "A"), ("apex-soa", "@", "SOA"), ("apex-dnskey", "@", "DNSKEY"),
    ("apex-mx", "@", "MX"), ("apex-any", "@", "ANY"), ("apex-ds", "@", "DS"),
    ("secure-referral", "host.sec", "A"), ("insecure-referral", "host.insec", "A"),
    ("secure-ds", "sec", "DS"), ("insecure-ds", "insec", "DS"),
    ("nsec3param", "@", "NSEC3PARAM"), ("mail-mx-additional", "@", "MX"),
]


def _diffdns():
    spec = importlib.util.spec_from_file_location("diffdns", CONFORMANCE / "diffdns.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("diffdns", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def signed_zones(tmp_path_factory):
    require_tool("dnssec-signzone", "dnssec-keygen", "knotd", "nsd")
    base = tmp_path_factory.mktemp("signed")
    zones = base / "zones"
    zones.mkdir()
    variants = {"nsec.test.": {}, "nsec3.test.": {"nsec3": True},
                "optout.test.": {"nsec3": True, "opt_out": True}}
    for origin, options in variants.items():
        signed = sign_zone(ZONE.format(origin=origin), origin, base / origin.rstrip("."),
                           **options)
        (zones / f"{origin.rstrip('.')}.zone").write_text(signed.read_text())
    return base, zones


@pytest.fixture(scope="module")
def servers(signed_zones):
    base, zones = signed_zones
    diffdns = _diffdns()
    ports = {"knot": free_port(), "nsd": free_port()}
    diffdns.PEER_PORTS.update(ports)
    peers = []
    seawall = SeawallProcess(base, zones=zones, env={"PYTHONPATH": str(ROOT)})
    try:
        for kind in ("knot", "nsd"):
            peers.append(diffdns.Peer(kind, diffdns.zone_files(zones), base))
            peers[-1].start()
        seawall.start()
        yield diffdns, peers[0].addr, peers[1].addr, seawall.addr
    finally:
        seawall.stop()
        for peer in peers:
            peer.stop()


@pytest.mark.parametrize("origin", ["nsec.test.", "nsec3.test.", "optout.test."])
@pytest.mark.parametrize("dnssec_ok", [True, False], ids=["do", "nodo"])
def test_signed_answers_match_knot_and_nsd(servers, origin, dnssec_ok):
    diffdns, knot, nsd, seawall = servers
    failures = []
    for case_id, qname, qtype in CASES:
        case = {**diffdns.DEFAULTS, "id": case_id, "qtype": qtype, "do": dnssec_ok,
                "qname": diffdns.absolute(qname, origin)}
        ref, ref2, target = (diffdns.ask(case, knot), diffdns.ask(case, nsd),
                             diffdns.ask(case, seawall))
        if target == ref or (ref != ref2 and target == ref2):
            continue
        failures.append(f"{case_id} ({qname} {qtype}):\n    "
                        + "\n    ".join(diffdns.diff(ref, target)))
    assert not failures, "differs from Knot (- knot / + seawall):\n" + "\n".join(failures)


def test_the_comparison_sees_signed_data(servers):
    """Guard against a vacuous pass: all three must really serve the signed zones."""
    diffdns, knot, nsd, seawall = servers
    case = {**diffdns.DEFAULTS, "id": "guard", "qname": "www.nsec3.test.", "qtype": "A",
            "do": True}
    for server in (knot, nsd, seawall):
        view = diffdns.ask(case, server)
        assert view["rcode"] == "NOERROR" and "AA" in view["flags"]
        assert any(" RRSIG A " in line for line in view["answer"]), view
    case.update(qname="nx.optout.test.")
    view = diffdns.ask(case, seawall)
    assert view["rcode"] == "NXDOMAIN"
    assert sum(" NSEC3 " in line for line in view["authority"]) >= 2, view
