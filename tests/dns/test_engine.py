"""The answer engine, RFC 1034 §4.3.2 step by step, as tables.

Each row: query name and type, then the expected rcode, AA flag and the
answer, authority and additional sections (``None`` = not checked). The row
id names the RFC section the row checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from conftest import CONFORMANCE, zone_from_text
from seawall.dns.engine import MAX_CHAIN, Outcome, resolve
from seawall.dns.responder import UDP, Responder
from seawall.zones.zoneset import ZoneSet

# SOA TTL 3600, MINIMUM 300: negative answers carry the SOA with TTL 300 (RFC 2308 §3).
EXAMPLE = """$TTL 3600
@          SOA   ns1 hostmaster 1 7200 3600 1209600 300
@          NS    ns1
@          NS    ns2.example.net.
@          MX    10 mail
@          MX    20 mail.example.net.
@          TXT   "apex"
@          A     192.0.2.1
ns1        A     192.0.2.53
ns1        AAAA  2001:db8::53
mail       A     192.0.2.25
www        A     192.0.2.80
www        AAAA  2001:db8::80
www        TXT   "www"
alias      CNAME www
alias2     CNAME alias
out        CNAME www.example.net.
loop1      CNAME loop2
loop2      CNAME loop1
self       CNAME self
nxalias    CNAME nothing
tochild    CNAME host.child
_sip._udp  SRV   10 60 5060 sip
sip        A     192.0.2.60
*.wild     A     192.0.2.100
*.wild     MX    10 mail
sub.wild   A     192.0.2.101
x.ent.wild A     192.0.2.102
mxwild     MX    10 host.wild
deleg      NS    ns1.deleg
deleg      NS    ns.example.net.
deleg      DS    12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns1.deleg  A     192.0.2.201
ns1.deleg  AAAA  2001:db8::201
dn     900 DNAME target.example.net.
*.wc       CNAME www
deleg2     NS    ns1
child      NS    ns1.child
ns1.child  A     192.0.2.210
inz        DNAME example.test.
long       DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.example.net.
"""
# SOA TTL 60 below MINIMUM 600: the SOA TTL wins (RFC 2308 §3).
CHILD = """$TTL 600
@    60 SOA ns1 hostmaster 7 7200 3600 1209600 600
@    NS  ns1
ns1  A   192.0.2.210
host A   192.0.2.211
"""
LONG = "a" * 63 + "." + "b" * 63

SOA = "example.test. 300 SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300"
CHILD_SOA = ("child.example.test. 60 SOA ns1.child.example.test. "
             "hostmaster.child.example.test. 7 7200 3600 1209600 600")
NOERROR, NXDOMAIN, YXDOMAIN, REFUSED = (dns.rcode.NOERROR, dns.rcode.NXDOMAIN,
                                        dns.rcode.YXDOMAIN, dns.rcode.REFUSED)


@pytest.fixture(scope="module")
def zoneset() -> ZoneSet:
    return ZoneSet([zone_from_text("example.test.", EXAMPLE),
                    zone_from_text("child.example.test.", CHILD)])


def texts(rrsets) -> set[str]:
    return {f"{r.name.to_text().lower()} {r.ttl} {dns.rdatatype.to_text(r.rdtype)} {rd}"
            for r in rrsets for rd in r}


def row(qname, qtype, rcode, aa, answer, authority=(), additional=(), *, id):
    return pytest.param(qname, qtype, rcode, aa, answer, authority, additional, id=id)


def fq(owner: str) -> str:
    return f"{owner}.example.test." if owner else "example.test."


ADDR_NS1 = {"ns1.example.test. 3600 A 192.0.2.53", "ns1.example.test. 3600 AAAA 2001:db8::53"}

TABLE = [
    # --- RFC 1034 §4.3.2 step 3a: authoritative data, AA=1 (RFC 1035 §4.1.1).
    row("www", "A", NOERROR, True, {"www.example.test. 3600 A 192.0.2.80"},
        id="RFC1034-4.3.2-3a-answer-AA"),
    row("WWW", "AAAA", NOERROR, True, {"www.example.test. 3600 AAAA 2001:db8::80"},
        id="RFC4343-case-insensitive-match"),
    row("", "SOA", NOERROR, True,
        {"example.test. 3600 SOA ns1.example.test. hostmaster.example.test. "
         "1 7200 3600 1209600 300"}, id="RFC1034-4.3.2-3a-apex-SOA"),
    # --- RFC 2308 §2.2 NODATA and §2.1 NXDOMAIN, SOA TTL = min(TTL, MINIMUM) (§3).
    row("www", "MX", NOERROR, True, set(), {SOA}, id="RFC2308-2.2-nodata-SOA-min-ttl"),
    row("nope", "A", NXDOMAIN, True, set(), {SOA}, id="RFC2308-2.1-nxdomain-SOA-min-ttl"),
    row("a.b.nope", "A", NXDOMAIN, True, set(), {SOA}, id="RFC2308-2.1-nxdomain-deep"),
    row("nothing.child", "A", NXDOMAIN, True, set(), {CHILD_SOA},
        id="RFC2308-3-soa-ttl-below-minimum"),
    row("ent.wild", "A", NOERROR, True, set(), {SOA}, id="RFC4592-2.2.2-ent-is-nodata"),
    # --- RFC 1034 §4.3.2 step 3b: referral, NS in authority, glue in additional, AA=0.
    row("deleg", "A", NOERROR, False, set(),
        {"deleg.example.test. 3600 NS ns1.deleg.example.test.",
         "deleg.example.test. 3600 NS ns.example.net."},
        {"ns1.deleg.example.test. 3600 A 192.0.2.201",
         "ns1.deleg.example.test. 3600 AAAA 2001:db8::201"}, id="RFC1034-4.3.2-3b-referral-glue"),
    row("a.b.deleg", "TXT", NOERROR, False, set(),
        {"deleg.example.test. 3600 NS ns1.deleg.example.test.",
         "deleg.example.test. 3600 NS ns.example.net."}, None,
        id="RFC1034-4.3.2-3b-referral-below-cut"),
    row("deleg", "NS", NOERROR, False, set(), None, None,
        id="RFC1034-4.3.2-3b-NS-at-cut-is-referral"),
    row("ns1.deleg", "A", NOERROR, False, set(), None, None,
        id="RFC1034-4.2.1-glue-is-not-authoritative"),
    row("deleg", "DS", NOERROR, True,
        {"deleg.example.test. 3600 DS 12345 13 2 "
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        id="RFC4035-3.1.4.1-DS-at-cut-from-parent"),
    row("deleg2", "DS", NOERROR, True, set(), {SOA}, id="RFC4035-3.1.4.1-no-DS-at-cut-nodata"),
    row("x.deleg", "DS", NOERROR, False, set(), None, None,
        id="RFC4035-3.1.4.1-DS-below-cut-is-referral"),
    row("deleg2", "A", NOERROR, False, set(), {"deleg2.example.test. 3600 NS ns1.example.test."},
        {"ns1.example.test. 3600 A 192.0.2.53", "ns1.example.test. 3600 AAAA 2001:db8::53"},
        id="RFC1034-4.3.2-3b-referral-sibling-glue"),
    row("host.child", "DS", NOERROR, True, set(), {CHILD_SOA},
        id="RFC4035-3.1.4.1-DS-inside-child-zone"),
    row("child", "DS", NOERROR, True, set(), {SOA}, id="RFC4035-3.1.4.1-DS-of-child-apex"),
    # --- RFC 1034 §4.3.2 step 3a / §3.6.2: CNAME chasing; loops stop.
    row("alias", "A", NOERROR, True,
        {"alias.example.test. 3600 CNAME www.example.test.",
         "www.example.test. 3600 A 192.0.2.80"}, id="RFC1034-3.6.2-cname-chased"),
    row("alias2", "AAAA", NOERROR, True,
        {"alias2.example.test. 3600 CNAME alias.example.test.",
         "alias.example.test. 3600 CNAME www.example.test.",
         "www.example.test. 3600 AAAA 2001:db8::80"}, id="RFC1034-4.3.2-3a-cname-chain"),
    row("alias", "CNAME", NOERROR, True, {"alias.example.test. 3600 CNAME www.example.test."},
        id="RFC1034-4.3.2-cname-query-not-chased"),
    row("alias", "MX", NOERROR, True, {"alias.example.test. 3600 CNAME www.example.test."},
        {SOA}, id="RFC2308-2.2-nodata-after-cname"),
    row("out", "A", NOERROR, True, {"out.example.test. 3600 CNAME www.example.net."},
        id="RFC1034-4.3.2-cname-leaving-our-data"),
    row("loop1", "A", NOERROR, True,
        {"loop1.example.test. 3600 CNAME loop2.example.test.",
         "loop2.example.test. 3600 CNAME loop1.example.test."}, id="RFC1034-3.6.2-cname-loop"),
    row("self", "A", NOERROR, True, {"self.example.test. 3600 CNAME self.example.test."},
        id="RFC1034-3.6.2-cname-to-itself"),
    row("nxalias", "A", NXDOMAIN, True,
        {"nxalias.example.test. 3600 CNAME nothing.example.test."}, {SOA},
        id="RFC6604-2-nxdomain-at-chain-end"),
    row("tochild", "A", NOERROR, True,
        {"tochild.example.test. 3600 CNAME host.child.example.test.",
         "host.child.example.test. 600 A 192.0.2.211"}, id="RFC1034-4.3.2-cname-into-other-zone"),
    # --- RFC 6672 DNAME.
    row("x.dn", "A", NOERROR, True,
        {"dn.example.test. 900 DNAME target.example.net.",
         "x.dn.example.test. 900 CNAME x.target.example.net."},
        id="RFC6672-3.3-dname-synthesized-cname"),
    row("x.dn", "DNAME", NOERROR, True,
        {"dn.example.test. 900 DNAME target.example.net.",
         "x.dn.example.test. 900 CNAME x.target.example.net."},
        id="RFC6672-3.3-dname-type-below-owner"),
    row("dn", "A", NOERROR, True, set(), {SOA}, id="RFC6672-2.3-owner-not-redirected"),
    row("dn", "DNAME", NOERROR, True, {"dn.example.test. 900 DNAME target.example.net."},
        id="RFC6672-dname-query"),
    row("www.inz", "A", NOERROR, True,
        {"inz.example.test. 3600 DNAME example.test.",
         "www.inz.example.test. 3600 CNAME www.example.test.",
         "www.example.test. 3600 A 192.0.2.80"}, id="RFC6672-3.3-dname-then-chase"),
    row(f"{LONG}.long", "A", YXDOMAIN, True,
        {"long.example.test. 3600 DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
         "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.example.net."},
        id="RFC6672-2.2-yxdomain-name-too-long"),
    # --- RFC 4592 wildcards.
    row("host.wild", "A", NOERROR, True, {"host.wild.example.test. 3600 A 192.0.2.100"},
        id="RFC4592-3.3.1-wildcard-synthesis"),
    row("a.b.wild", "A", NOERROR, True, {"a.b.wild.example.test. 3600 A 192.0.2.100"},
        id="RFC4592-3.3.1-wildcard-multi-label"),
    row("host.wild", "TXT", NOERROR, True, set(), {SOA}, id="RFC4592-4.1-wildcard-nodata"),
    row("sub.wild", "MX", NOERROR, True, set(), {SOA},
        id="RFC4592-3.3.1-no-synthesis-for-existing-name"),
    row("y.sub.wild", "A", NXDOMAIN, True, set(), {SOA},
        id="RFC4592-3.3.1-closest-encloser-has-no-wildcard"),
    row("y.ent.wild", "A", NXDOMAIN, True, set(), {SOA},
        id="RFC4592-2.2.2-no-synthesis-across-ent"),
    row("host.wc", "A", NOERROR, True,
        {"host.wc.example.test. 3600 CNAME www.example.test.",
         "www.example.test. 3600 A 192.0.2.80"}, id="RFC4592-3.3.1-wildcard-cname-chased"),
    row("*.wild", "A", NOERROR, True, {"*.wild.example.test. 3600 A 192.0.2.100"},
        id="RFC4592-2.1.1-wildcard-name-itself"),
    row("host.wild", "MX", NOERROR, True, {"host.wild.example.test. 3600 MX 10 mail.example.test."},
        None, {"mail.example.test. 3600 A 192.0.2.25"},
        id="RFC4592-3.3.1-wildcard-mx-additional"),
    # --- RFC 1034 §3.6 / RFC 2782: additional addresses for NS, MX, SRV targets.
    row("", "NS", NOERROR, True,
        {"example.test. 3600 NS ns1.example.test.", "example.test. 3600 NS ns2.example.net."},
        set(), ADDR_NS1, id="RFC1034-3.6-ns-additional"),
    row("", "MX", NOERROR, True,
        {"example.test. 3600 MX 10 mail.example.test.",
         "example.test. 3600 MX 20 mail.example.net."},
        set(), {"mail.example.test. 3600 A 192.0.2.25"}, id="RFC1034-3.6-mx-additional"),
    row("_sip._udp", "SRV", NOERROR, True,
        {"_sip._udp.example.test. 3600 SRV 10 60 5060 sip.example.test."},
        set(), {"sip.example.test. 3600 A 192.0.2.60"}, id="RFC2782-srv-additional"),
    row("mxwild", "MX", NOERROR, True, {"mxwild.example.test. 3600 MX 10 host.wild.example.test."},
        set(), {"host.wild.example.test. 3600 A 192.0.2.100"},
        id="RFC4592-3.3.1-additional-from-wildcard"),
    # --- RFC 8482 §4.1 ANY: one RRset, the lowest type at the name (as Knot).
    row("www", "ANY", NOERROR, True, {"www.example.test. 3600 A 192.0.2.80"},
        id="RFC8482-4.1-any-lowest-type"),
    row("", "ANY", NOERROR, True, {"example.test. 3600 A 192.0.2.1"},
        id="RFC8482-4.1-any-at-apex"),
    row("_sip._udp", "ANY", NOERROR, True,
        {"_sip._udp.example.test. 3600 SRV 10 60 5060 sip.example.test."},
        set(), {"sip.example.test. 3600 A 192.0.2.60"}, id="RFC8482-4.1-any-additional"),
    row("ent.wild", "ANY", NOERROR, True, set(), {SOA}, id="RFC8482-any-at-ent-nodata"),
    row("nope", "ANY", NXDOMAIN, True, set(), {SOA}, id="RFC8482-any-nxdomain"),
    # --- RFC 1034 §4.3.2 step 2: not our zone.
    row("www.example.org.", "A", REFUSED, False, set(), set(), set(),
        id="RFC1034-4.3.2-2-not-authoritative-refused"),
]


@pytest.mark.parametrize("qname, qtype, rcode, aa, answer, authority, additional", TABLE)
def test_answers(zoneset, qname, qtype, rcode, aa, answer, authority, additional):
    owner = qname if qname.endswith(".") else fq(qname)
    result = resolve(zoneset, dns.name.from_text(owner), dns.rdatatype.from_text(qtype))
    assert dns.rcode.to_text(result.rcode) == dns.rcode.to_text(rcode)
    assert result.aa == aa
    if answer is not None:
        assert texts(result.answer) == answer
    if authority is not None:
        assert texts(result.authority) == set(authority)
    if additional is not None:
        assert texts(result.additional) == set(additional)


@pytest.mark.parametrize("qname, qtype, outcome", [
    ("www", "A", Outcome.ANSWER),
    ("www", "MX", Outcome.NODATA),
    ("nope", "A", Outcome.NXDOMAIN),
    ("host.deleg", "A", Outcome.DELEGATION),
    ("alias", "MX", Outcome.ANSWER),
    ("www.example.org.", "A", Outcome.REFUSED),
])
def test_outcome_names_what_the_first_lookup_found(zoneset, qname, qtype, outcome):
    """STYLE: lookups end in an enum; RFC 2308 §1 names the negative kinds."""
    owner = qname if qname.endswith(".") else fq(qname)
    assert resolve(zoneset, dns.name.from_text(owner),
                   dns.rdatatype.from_text(qtype)).outcome is outcome


def test_referral_glue_is_required_for_in_bailiwick_servers(zoneset):
    """RFC 9471 §3: in-bailiwick glue must fit, or the renderer sets TC."""
    result = resolve(zoneset, dns.name.from_text("deleg.example.test."), dns.rdatatype.A)
    assert result.required_additional == 2


def test_answers_never_mutate_zone_data(zoneset):
    """STYLE: building a response never mutates zone data (synthesis makes copies)."""
    zone = zoneset.get(dns.name.from_text("example.test."))
    before = sorted(texts(zone.rrsets()))
    for qname, qtype in [("host.wild", "A"), ("www", "MX"), ("x.dn", "A"), ("nope", "A"),
                         ("mxwild", "MX"), ("host.wild", "MX")]:
        resolve(zoneset, dns.name.from_text(fq(qname)), dns.rdatatype.from_text(qtype))
    assert sorted(texts(zone.rrsets())) == before
    assert zone.soa.ttl == 3600


# ------------------------------------------------------------ signed zones
# RFC 4035 §3.1 (RRSIGs, NSEC denial), RFC 5155 §7.2 (NSEC3, opt-out): the
# same questions asked of Knot and NSD serving the same signed files
# (tests/dns/data/signed/generate.py wrote their answers); ours must match
# Knot's answer, or NSD's where the two disagree.

SIGNED = Path(__file__).resolve().parent / "data" / "signed"


def _diffdns():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("diffdns", CONFORMANCE / "diffdns.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("diffdns", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def signed_responder() -> Responder:
    zones = [zone_from_text(path.name[:-len("zone")], path.read_text())
             for path in sorted(SIGNED.glob("*.zone"))]
    return Responder(ZoneSet(zones))


SIGNED_CASES = json.loads((SIGNED / "expected.json").read_text())


@pytest.mark.parametrize("key", sorted(SIGNED_CASES))
def test_signed_answers_match_knot_or_nsd(signed_responder, key):
    diffdns = _diffdns()
    origin, qname, qtype, do = key.split()
    case = {**diffdns.DEFAULTS, "id": key, "qtype": qtype, "do": do == "do",
            "qname": diffdns.absolute(qname, origin)}
    ours = diffdns.normalize(signed_responder.respond(diffdns.build_query(case), UDP))
    views = SIGNED_CASES[key]
    if qtype == "RRSIG":
        # Asked for RRSIG itself, Knot returns one of the name's RRSIG sets and
        # NSD all of them (plus, with DO, its apex NS signature in authority).
        # With DO we answer all of them as NSD does; without DO, NODATA (the
        # signatures are DNSSEC data the client did not ask for), as neither does.
        if do == "do":
            assert ours["rcode"] == "NOERROR" and ours["answer"] == views["nsd"]["answer"]
        else:
            assert (ours["rcode"], ours["answer"]) == ("NOERROR", []), ours
            assert [line.split()[3] for line in ours["authority"]] == ["SOA"], ours
        return
    if ours not in views.values():
        pytest.fail("differs from Knot (- knot / + seawall):\n    "
                    + "\n    ".join(diffdns.diff(views["knot"], ours)))


def test_dnssec_records_only_when_asked(signed_responder):
    """RFC 3225 §3 / RFC 4035 §3.2.1: without DO, no RRSIG or NSEC(3) in any section;
    ``resolve`` defaults to a query without DO."""
    zoneset = signed_responder.zoneset
    for qname, qtype in [("www.nsec.test.", "A"), ("nx.nsec3.test.", "A"),
                         ("host.wild.optout.test.", "A"), ("host.sec.nsec.test.", "A")]:
        plain = resolve(zoneset, dns.name.from_text(qname), dns.rdatatype.from_text(qtype))
        signed = resolve(zoneset, dns.name.from_text(qname), dns.rdatatype.from_text(qtype),
                         dnssec=True)
        dnssec_types = {dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3}
        for section in (plain.answer, plain.authority, plain.additional):
            assert not {r.rdtype for r in section} & dnssec_types, (qname, section)
        assert any(r.rdtype in dnssec_types
                   for r in signed.answer + signed.authority), qname


def chain_zone(links: int):
    text = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    text += "".join(f"c{i} CNAME c{i + 1}\n" for i in range(links))
    text += f"c{links} A 192.0.2.99\n"
    return ZoneSet([zone_from_text("chain.test.", text)])


@pytest.mark.parametrize("links, cnames, address", [
    (MAX_CHAIN - 1, MAX_CHAIN - 1, True),     # the address at the end of the chain
    (MAX_CHAIN, MAX_CHAIN, False),            # MAX_CHAIN CNAMEs, the last one not followed
    (MAX_CHAIN + 5, MAX_CHAIN, False),
])
def test_cname_chain_stops_at_max_chain_cnames(links, cnames, address):
    """RFC 1034 §3.6.2: chase CNAMEs, but a chain is cut after MAX_CHAIN CNAME
    records (as NSD does), answering with what was found so far."""
    result = resolve(chain_zone(links), dns.name.from_text("c0.chain.test."), dns.rdatatype.A)
    types = [r.rdtype for r in result.answer]
    assert types.count(dns.rdatatype.CNAME) == cnames
    assert (dns.rdatatype.A in types) is address
    assert result.rcode == dns.rcode.NOERROR


def test_referral_requires_only_the_glue_below_the_cut(signed_responder):
    """RFC 9471 §3: the glue below the cut must fit (or TC); the address of an NS
    elsewhere in the zone (``a``, listed first) follows and may be dropped."""
    result = resolve(signed_responder.zoneset, dns.name.from_text("host.mix.nsec.test."),
                     dns.rdatatype.A, dnssec=True)
    assert result.outcome is Outcome.DELEGATION
    assert result.required_additional == 1
    assert result.additional[0].name == dns.name.from_text("ns.mix.nsec.test.")
    assert {r.name.to_text() for r in result.additional} >= {"ns.mix.nsec.test.",
                                                             "a.nsec.test."}
