"""Regenerate the signed fixtures and the answers Knot and NSD give for them.

    .venv/bin/python tests/dns/data/signed/generate.py

Signs ZONE three ways with dnssec-signzone (NSEC; NSEC3; NSEC3 with opt-out),
valid for ten years, writes ``<origin>zone`` here, serves them with Knot and
NSD on free loopback ports, and records both servers' answers to every case
(with and without DO) in ``expected.json`` in the conformance harness's
normalised form. tests/dns/test_engine.py answers the same questions from the
same files and must match Knot, or NSD where the two disagree.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parents[2]
sys.path[:0] = [str(TESTS), str(TESTS / "dnssec")]

from conftest import CONFORMANCE, free_port  # noqa: E402
from dnssec_signing import sign_zone  # noqa: E402

ZONE = """\
$ORIGIN {origin}
$TTL 3600
@        SOA   ns1 hostmaster 2026120201 7200 3600 1209600 300
@        NS    ns1
@        NS    ns2
@        MX    10 mail
@        TXT   "apex"
ns1      A     192.0.2.53
ns2      A     192.0.2.54
mail     A     192.0.2.25
mail     AAAA  2001:db8::25
www      A     192.0.2.80
www      AAAA  2001:db8::80
alias    CNAME www
chain    CNAME alias
tonx     CNAME nothing
towild   CNAME host.wild
a.b.ent  A     192.0.2.2
*.wild   A     192.0.2.100
*.wild   TXT   "wildcard"
sub.wild A     192.0.2.101
*.wc     CNAME www
dn       DNAME target.example.
_sip._udp SRV  10 60 5060 sip
sip      A     192.0.2.60
mxmix    MX    10 elsewhere.example.
mxmix    MX    20 mail
mxmix    MX    30 www
mxdup    MX    10 mail
mxdup    MX    20 mail
mxwild   MX    10 host.wild
srvwild  SRV   0 0 80 a.b.wild
v6only   AAAA  2001:db8::6
mxv6     MX    10 v6only
a        A     192.0.2.3
mix      NS    a
mix      NS    ns.mix
ns.mix   A     192.0.2.33
sec      NS    ns.sec
sec      DS    12345 13 2 0F1E2D3C4B5A69788796A5B4C3D2E1F00F1E2D3C4B5A69788796A5B4C3D2E1F0
ns.sec   A     192.0.2.31
insec    NS    ns.insec
insec    NS    ns1
ns.insec A     192.0.2.32
"""

ORIGINS = {"nsec.test.": {}, "nsec3.test.": {"nsec3": True},
           "optout.test.": {"nsec3": True, "opt_out": True}}

CASES = [
    ("www", "A"), ("www", "AAAA"), ("www", "MX"), ("www", "RRSIG"), ("www", "NSEC"),
    ("nx", "A"), ("x.y.nx", "A"), ("b.ent", "A"), ("q.b.ent", "A"), ("ent", "TXT"),
    ("host.wild", "A"), ("host.wild", "TXT"), ("host.wild", "MX"), ("a.b.wild", "A"),
    ("host.wild", "ANY"), ("host.wild", "RRSIG"), ("*.wild", "A"), ("wild", "A"),
    ("sub.wild", "TXT"), ("x.sub.wild", "A"),
    ("alias", "A"), ("alias", "MX"), ("alias", "CNAME"), ("chain", "AAAA"), ("tonx", "A"),
    ("towild", "A"), ("towild", "MX"), ("x.wc", "A"), ("x.wc", "MX"),
    ("x.dn", "A"), ("a.b.dn", "TXT"), ("dn", "DNAME"), ("dn", "A"),
    ("@", "SOA"), ("@", "DNSKEY"), ("@", "MX"), ("@", "ANY"), ("@", "DS"), ("@", "NS"),
    ("@", "NSEC3PARAM"), ("@", "TXT"), ("@", "RRSIG"), ("@", "NSEC"), ("@", "CDS"),
    ("_sip._udp", "SRV"), ("_udp", "SRV"), ("mail", "ANY"), ("b.ent", "ANY"), ("ent", "ANY"),
    ("mxmix", "MX"), ("mxdup", "MX"), ("mxwild", "MX"), ("srvwild", "SRV"), ("nx", "ANY"),
    ("mxv6", "MX"), ("host.mix", "A"), ("mix", "NS"),
    ("host.sec", "A"), ("sec", "NS"), ("ns.sec", "A"), ("sec", "DS"), ("sec", "A"),
    ("host.insec", "A"), ("insec", "DS"), ("insec", "NS"), ("ns.insec", "AAAA"),
]


def load_diffdns():
    import importlib.util

    spec = importlib.util.spec_from_file_location("diffdns", CONFORMANCE / "diffdns.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("diffdns", module)
    spec.loader.exec_module(module)
    return module


def case_key(origin: str, qname: str, qtype: str, dnssec_ok: bool) -> str:
    return f"{origin} {qname} {qtype} {'do' if dnssec_ok else 'nodo'}"


def main() -> None:
    diffdns = load_diffdns()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        zones = base / "zones"
        zones.mkdir()
        for origin, options in ORIGINS.items():
            signed = sign_zone(ZONE.format(origin=origin), origin, base / origin.rstrip("."),
                               **options)
            text = signed.read_text()
            (HERE / f"{origin}zone").write_text(text)
            (zones / f"{origin}zone").write_text(text)
        diffdns.PEER_PORTS.update(knot=free_port(), nsd=free_port())
        peers = {kind: diffdns.Peer(kind, diffdns.zone_files(zones), base)
                 for kind in ("knot", "nsd")}
        expected = {}
        try:
            for peer in peers.values():
                peer.start()
            for origin in ORIGINS:
                for qname, qtype in CASES:
                    for dnssec_ok in (True, False):
                        case = {**diffdns.DEFAULTS, "id": "x", "qtype": qtype, "do": dnssec_ok,
                                "qname": diffdns.absolute(qname, origin)}
                        knot = diffdns.ask(case, peers["knot"].addr)
                        nsd = diffdns.ask(case, peers["nsd"].addr)
                        views = {"knot": knot} if knot == nsd else {"knot": knot, "nsd": nsd}
                        expected[case_key(origin, qname, qtype, dnssec_ok)] = views
        finally:
            for peer in peers.values():
                peer.stop()
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"{len(expected)} cases, {sum(len(v) > 1 for v in expected.values())} where "
          "Knot and NSD differ")


if __name__ == "__main__":
    main()
