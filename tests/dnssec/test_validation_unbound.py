"""A validating resolver (Unbound) accepts Seawall's signed answers (RFC 4035 §5).

Unbound gets the zone's DS as its trust anchor and Seawall as the stub for
the zone; every answer it passes on with AD=1 has had its RRSIGs and its
NSEC/NSEC3 proofs checked. A broken signature must turn into SERVFAIL.
"""

from __future__ import annotations

import re
import subprocess
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from conftest import ROOT, SeawallProcess, free_port, require_tool
from dnssec_signing import sign_zone

pytestmark = pytest.mark.interop  # starts BIND/Knot/NSD/Unbound tools

ZONE = """\
$ORIGIN {origin}
$TTL 300
@        SOA   ns1 hostmaster 1 7200 3600 1209600 300
@        NS    ns1
ns1      A     192.0.2.53
www      A     192.0.2.80
a.b.ent  A     192.0.2.2
*.wild   A     192.0.2.100
alias    CNAME www
forged   A     192.0.2.77
sub      NS    ns1.sub
ns1.sub  A     192.0.2.61
insec    NS    ns1.insec
ns1.insec A    192.0.2.62
"""

CHILD = """\
$ORIGIN {origin}
$TTL 300
@        SOA   ns1 hostmaster 1 7200 3600 1209600 300
@        NS    ns1
ns1      A     {address}
host     A     192.0.2.{last}
"""


def _unbound(tmp_path, port, anchors, stub_port):
    conf = tmp_path / "unbound.conf"
    lines = ["server:", f"  interface: 127.0.0.1@{port}", f"  port: {port}",
             "  chroot: \"\"", "  username: \"\"", f"  directory: \"{tmp_path}\"",
             "  pidfile: \"\"", "  do-not-query-localhost: no", "  use-syslog: no",
             "  verbosity: 1", "  module-config: \"validator iterator\"",
             "  val-log-level: 2", "  harden-dnssec-stripped: yes",
             "  local-zone: \"test.\" nodefault", "  domain-insecure: \"\""]
    lines += [f"  trust-anchor: \"{a}\"" for a in anchors]
    for zone in ("nsec.test.", "nsec3.test."):
        lines += ["stub-zone:", f"  name: \"{zone}\"", f"  stub-addr: 127.0.0.1@{stub_port}"]
    conf.write_text("\n".join(lines) + "\n")
    with open(tmp_path / "unbound.log", "wb") as log:
        proc = subprocess.Popen(["unbound", "-d", "-c", str(conf)], stdout=log,
                                stderr=subprocess.STDOUT)
    probe = dns.message.make_query("nsec.test.", "SOA")
    for _ in range(100):
        try:
            dns.query.udp(probe, "127.0.0.1", port=port, timeout=0.3)
            return proc
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    pytest.fail("unbound did not start: " + (tmp_path / "unbound.log").read_text()[-2000:])


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    require_tool("unbound", "dnssec-signzone", "dnssec-keygen")
    base = tmp_path_factory.mktemp("validate")
    zones = base / "zones"
    zones.mkdir()
    anchors = []
    for origin, options in (("nsec.test.", {}), ("nsec3.test.", {"nsec3": True})):
        keys = base / origin.rstrip(".")
        # A signed child (its DS goes into the parent) and an unsigned one, both
        # served here too: validation must follow the DS across the cut.
        child = f"sub.{origin}"
        signed_child = sign_zone(CHILD.format(origin=child, address="192.0.2.61", last=71),
                                 child, base / child.rstrip("."))
        (zones / f"{child.rstrip('.')}.zone").write_text(signed_child.read_text())
        ds = (base / child.rstrip(".") / f"dsset-{child}").read_text()
        (zones / f"insec.{origin.rstrip('.')}.zone").write_text(
            CHILD.format(origin=f"insec.{origin}", address="192.0.2.62", last=72))
        signed = sign_zone(ZONE.format(origin=origin) + ds, origin, keys, **options)
        (zones / f"{origin.rstrip('.')}.zone").write_text(signed.read_text())
        dsset = (keys / f"dsset-{origin}").read_text().split("\n")
        anchors += [" ".join(line.split()) for line in dsset if " DS " in line]
    seawall = SeawallProcess(base, zones=zones, env={"PYTHONPATH": str(ROOT)}).start()
    port = free_port()
    proc = _unbound(base, port, anchors, seawall.addr[1])
    yield ("127.0.0.1", port), zones, seawall
    proc.terminate()
    proc.wait(timeout=10)
    seawall.stop()


def resolve(addr, name, rdtype):
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    return dns.query.udp(query, addr[0], port=addr[1], timeout=5)


@pytest.mark.parametrize("zone", ["nsec.test.", "nsec3.test."])
@pytest.mark.parametrize("name,rdtype,rcode", [
    ("www", "A", dns.rcode.NOERROR),          # signed positive answer
    ("www", "MX", dns.rcode.NOERROR),         # NODATA proof
    ("nope", "A", dns.rcode.NXDOMAIN),        # NXDOMAIN proof with wildcard denial
    ("b.ent", "A", dns.rcode.NOERROR),        # empty non-terminal
    ("x.wild", "A", dns.rcode.NOERROR),       # wildcard expansion proof
    ("x.wild", "TXT", dns.rcode.NOERROR),     # wildcard NODATA
    ("alias", "A", dns.rcode.NOERROR),        # CNAME and its target
])
def test_validating_resolver_marks_answers_authentic(resolver, zone, name, rdtype, rcode):
    addr, _, _ = resolver
    response = resolve(addr, f"{name}.{zone}", rdtype)
    assert response.rcode() == rcode, response.to_text()
    assert response.flags & dns.flags.AD, response.to_text()


@pytest.mark.parametrize("zone", ["nsec.test.", "nsec3.test."])
def test_the_chain_follows_the_ds_into_a_signed_child(resolver, zone):
    addr, _, _ = resolver
    response = resolve(addr, f"host.sub.{zone}", "A")
    assert response.rcode() == dns.rcode.NOERROR, response.to_text()
    assert response.flags & dns.flags.AD, response.to_text()
    assert "192.0.2.71" in response.to_text()
    ds = resolve(addr, f"sub.{zone}", "DS")           # answered by the parent
    assert ds.flags & dns.flags.AD and ds.answer, ds.to_text()


@pytest.mark.parametrize("zone", ["nsec.test.", "nsec3.test."])
def test_an_unsigned_child_is_provably_insecure(resolver, zone):
    """The parent proves there is no DS: answers come back, not SERVFAIL, without AD."""
    addr, _, _ = resolver
    response = resolve(addr, f"host.insec.{zone}", "A")
    assert response.rcode() == dns.rcode.NOERROR, response.to_text()
    assert not response.flags & dns.flags.AD
    assert "192.0.2.72" in response.to_text()
    no_ds = resolve(addr, f"insec.{zone}", "DS")      # NSEC/NSEC3 proof, validated
    assert no_ds.rcode() == dns.rcode.NOERROR and not no_ds.answer
    assert no_ds.flags & dns.flags.AD, no_ds.to_text()


def test_a_forged_answer_is_bogus(resolver, tmp_path):
    """Change a record without re-signing: the resolver must refuse it (SERVFAIL)."""
    addr, zones, seawall = resolver
    path = zones / "nsec.test.zone"
    text = path.read_text()
    assert "192.0.2.77" in text  # a name no earlier test asked, so nothing is cached
    forged = text.replace("192.0.2.77", "192.0.2.99")
    # Bump the serial as a careless edit would, so the reload takes the new version.
    forged, bumped = re.subn(r"(\s)1(\s+; serial)", r"\g<1>2\2", forged, count=1)
    assert bumped == 1
    path.write_text(forged)
    seawall.signal(1)  # SIGHUP: reload now
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        query = dns.message.make_query("forged.nsec.test.", "A")
        direct = dns.query.udp(query, seawall.addr[0], port=seawall.addr[1], timeout=2)
        if "192.0.2.99" in direct.to_text():
            break
        time.sleep(0.1)
    response = resolve(addr, "forged.nsec.test.", "A")
    assert response.rcode() == dns.rcode.SERVFAIL, response.to_text()
