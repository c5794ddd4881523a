"""Random questions to signed zones, answered like Knot DNS and NSD answer them.

Knot, NSD and Seawall serve the same signed files (NSEC; NSEC3; NSEC3 with
opt-out: tests/dns/data/signed). Hypothesis draws names at and under each
zone (names that exist, names below them that do not, names below wildcards,
delegations and DNAMEs, random labels at the apex), a type and the DO bit;
every answer must equal Knot's in the conformance harness's normalised form
(sections as sets of RRsets with TTLs, flags, rcode), or NSD's where the two
disagree. The number of examples is bounded (SEAWALL_PROPERTY_EXAMPLES,
default 400 per run, a few seconds).

Left out on purpose: qtype RRSIG, where Knot and NSD differ from each other
and from us (tests/dns/test_engine.py pins our answer).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import dns.name
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CONFORMANCE, ROOT, SeawallProcess, free_port, require_tool, zone_from_text

pytestmark = pytest.mark.interop   # starts Knot and NSD

SIGNED = ROOT / "tests" / "dns" / "data" / "signed"
EXAMPLES = int(os.environ.get("SEAWALL_PROPERTY_EXAMPLES", "400"))
# The types the zones hold come first and twice: most draws ask for data that exists.
HELD = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "DNAME", "SRV", "DS", "ANY"]
TYPES = HELD * 2 + ["DNSKEY", "NSEC", "NSEC3", "NSEC3PARAM", "CDS", "CAA", "PTR", "HINFO",
                    "TYPE65000"]
LABELS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_*", min_size=1, max_size=12)


def _diffdns():
    spec = importlib.util.spec_from_file_location("diffdns", CONFORMANCE / "diffdns.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("diffdns", module)
    spec.loader.exec_module(module)
    return module


def _owners() -> dict[str, list[str]]:
    """Each zone's owner names (NSEC3 hashes and all) and the empty non-terminals
    above them, relative to its apex."""
    out = {}
    for path in sorted(SIGNED.glob("*.zone")):
        origin = path.name[:-len("zone")]
        zone = zone_from_text(origin, path.read_text())
        apex = dns.name.from_text(origin)
        names = set()
        for rrset in zone.rrsets():
            name = rrset.name
            while name != apex:
                names.add(name.relativize(apex).to_text())
                name = name.parent()
        out[origin] = sorted(names | {"@"})
    return out


OWNERS = _owners()


@st.composite
def questions(draw) -> tuple[str, str, str, bool]:
    origin = draw(st.sampled_from(sorted(OWNERS)))
    # NSEC3 owner names (hashes) would crowd out the rest: one draw in eight.
    hashed = [name for name in OWNERS[origin] if len(name) == 32 and "." not in name]
    plain = [name for name in OWNERS[origin] if name not in hashed]
    pick = st.sampled_from(hashed) if hashed and draw(st.integers(0, 7)) == 0 else None
    base = draw(pick if pick is not None else st.sampled_from(plain))
    if base.startswith("*.") and draw(st.booleans()):
        base = draw(LABELS).strip("-*") + base[1:] if base else base   # a wildcard match
        base = base.lstrip(".") or "@"
    extra = draw(st.lists(LABELS, max_size=2))
    labels = [label.strip("-") or "x" for label in extra]
    if base != "@":
        labels.append(base)
    qname = ".".join(labels + [origin]) if labels else origin
    return origin, qname, draw(st.sampled_from(TYPES)), draw(st.booleans())


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    require_tool("knotd", "nsd")
    diffdns = _diffdns()
    base = tmp_path_factory.mktemp("signed-property")
    zones = base / "zones"
    zones.mkdir()
    for path in SIGNED.glob("*.zone"):
        shutil.copy(path, zones / path.name)
    diffdns.PEER_PORTS.update(knot=free_port(), nsd=free_port())
    peers = [diffdns.Peer(kind, diffdns.zone_files(zones), base) for kind in ("knot", "nsd")]
    seawall = SeawallProcess(base, zones=zones, env={"PYTHONPATH": str(ROOT)})
    try:
        for peer in peers:
            peer.start()
        seawall.start()
        yield diffdns, peers[0].addr, peers[1].addr, seawall.addr
    finally:
        seawall.stop()
        for peer in peers:
            peer.stop()


def without_nsd_apex_ns_signature(view: dict, origin: str) -> dict:
    """NSD adds the apex NS RRset to positive answers, and with DO its RRSIG; the
    harness drops the NS RRset (drop_optional_ns), here its signature goes too."""
    if not view.get("authority") or any(" IN NS " in line for line in view["authority"]):
        return view
    apex_ns_sig = f"{origin} "
    kept = [line for line in view["authority"]
            if not (line.startswith(apex_ns_sig) and " IN RRSIG NS " in line)]
    return {**view, "authority": kept}


def test_the_questions_reach_every_zone_and_kind_of_name():
    """Guard against a vacuous run: the owners include the interesting names."""
    for origin, names in OWNERS.items():
        assert {"@", "www", "*.wild", "dn", "sec", "insec"} <= set(names), (origin, names)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(question=questions())
def test_random_signed_questions_match_knot_or_nsd(servers, question):
    diffdns, knot, nsd, seawall = servers
    origin, qname, qtype, dnssec_ok = question
    case = {**diffdns.DEFAULTS, "id": "property", "qname": qname, "qtype": qtype,
            "do": dnssec_ok}
    ref, ref2, ours = (diffdns.ask(case, knot), diffdns.ask(case, nsd),
                       diffdns.ask(case, seawall))
    ref2 = without_nsd_apex_ns_signature(ref2, origin)
    assert ref.get("answered") and ours.get("answered"), (ref, ours)
    if ours == ref or (ref != ref2 and ours == ref2):
        return
    pytest.fail(f"{qname} {qtype} {'+do' if dnssec_ok else ''} differs from Knot "
                "(- knot / + seawall):\n    " + "\n    ".join(diffdns.diff(ref, ours)))
