"""The guard at its edges: the exact limits, the words and numbers of each reason.

An operator decides whether to ``accept`` a held version from these reasons,
so each names its numbers; a limit is a limit (exactly 30% is allowed).
"""

from __future__ import annotations

import time

import dns.name
import dns.rdata
import dns.rdatatype
import pytest

from seawall.backends.base import Version
from seawall.failover.guard import Diff, Limits, Verdict, diff, judge, rrsets_by_key
from seawall.zones.model import build_zone
from seawall.zones.problems import Location, Problem, Severity
from seawall.zones.reader import Record

from failover_zones import HERE, make_zone, records

ORIGIN = dns.name.from_text("example.org.")
LIMITS = Limits(max_delete_ratio=0.3, max_change_ratio=0.5)
KSK_A = "257 3 13 " + "A" * 86 + "=="
KSK_B = "257 3 13 " + "B" * 86 + "=="
SIG = "A" * 86 + "=="


def version(zone, serial_ordered: bool = True) -> Version:
    return Version(ORIGIN, zone, [], "tag", "test", serial_ordered=serial_ordered)


def rr(name: str, rdtype: str, text: str, ttl: int = 3600) -> Record:
    return Record(dns.name.from_text(name, ORIGIN), ttl,
                  dns.rdata.from_text(1, dns.rdatatype.from_text(rdtype), text, origin=ORIGIN,
                                      relativize=False),
                  HERE)


def zone_of(serial: int, extra: list[Record] = (), hosts: int = 7, drop: tuple = (),
            soa: str | None = None):
    """make_zone's records (10 data RRsets with hosts=7), plus ``extra``, minus ``drop``."""
    out = [r for r in records(ORIGIN, serial, hosts=hosts)
           if (r.name.relativize(ORIGIN).to_text(), dns.rdatatype.to_text(r.rdata.rdtype))
           not in drop]
    if soa is not None:
        out = [r for r in out if r.rdata.rdtype != dns.rdatatype.SOA] + [rr("@", "SOA", soa)]
    return build_zone(ORIGIN, list(out) + list(extra), source="test")


def signed(serial: int, expires: float, key: str = KSK_A, nsec_next: str = "www"):
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(expires))
    extra = [rr("@", "DNSKEY", key),
             rr("@", "RRSIG", f"SOA 13 2 3600 {stamp} 20200101000000 1038 example.org. {SIG}"),
             rr("@", "NSEC", f"{nsec_next} SOA NS RRSIG NSEC DNSKEY")]
    return zone_of(serial, extra)


# ------------------------------------------------------------- ratios


@pytest.mark.parametrize("deleted, accepted", [(3, True), (4, False)])
def test_the_delete_ratio_is_a_limit_not_a_threshold(deleted, accepted):
    old = zone_of(1)                                   # 10 data RRsets
    drop = tuple((f"h{i}", "A") for i in range(deleted))
    verdict = judge(old, version(zone_of(2, drop=drop)), LIMITS)
    assert verdict.accepted is accepted
    assert verdict.diff.deleted == deleted and verdict.diff.before == 10
    if not accepted:
        assert verdict.reasons == ["would delete 4 of 10 RRsets (40% > 30%)"]


@pytest.mark.parametrize("modified, accepted", [(5, True), (6, False)])
def test_the_change_ratio_is_a_limit_not_a_threshold(modified, accepted):
    old = zone_of(1)
    new = [r if not (r.name.to_text().startswith("h") and int(r.name.labels[0][1:]) < modified)
           else rr(r.name.labels[0].decode(), "A", "203.0.113.1")
           for r in records(ORIGIN, 2, hosts=7)]
    verdict = judge(old, version(build_zone(ORIGIN, new, source="t")), LIMITS)
    assert verdict.accepted is accepted
    assert (verdict.diff.modified, verdict.diff.deleted, verdict.diff.added) == (modified, 0, 0)
    if not accepted:
        assert verdict.reasons == ["would change 6 of 10 RRsets (-0 ~6: 60% > 50%)"]


def test_deletions_count_as_changes_too():
    old = zone_of(1)
    drop = (("h0", "A"), ("h1", "A"))
    new = [r if r.name != dns.name.from_text("h2", ORIGIN) and
           r.name != dns.name.from_text("h3", ORIGIN) and
           r.name != dns.name.from_text("h4", ORIGIN)
           else rr(r.name.labels[0].decode(), "A", "203.0.113.1")
           for r in records(ORIGIN, 2, hosts=7)
           if (r.name.relativize(ORIGIN).to_text(), "A") not in drop]
    verdict = judge(old, version(build_zone(ORIGIN, new, source="t")),
                    Limits(max_delete_ratio=0.3, max_change_ratio=0.4))
    assert verdict.diff.changed == 5
    assert verdict.reasons == ["would change 5 of 10 RRsets (-2 ~3: 50% > 40%)"]


def test_both_ratios_are_reported_together():
    old = zone_of(1)
    drop = tuple((f"h{i}", "A") for i in range(6))
    verdict = judge(old, version(zone_of(2, drop=drop)), LIMITS)
    assert verdict.reason == ("would delete 6 of 10 RRsets (60% > 30%); "
                              "would change 6 of 10 RRsets (-6 ~0: 60% > 50%)")


def test_a_zone_with_no_data_rrsets_has_no_ratios():
    bare = build_zone(ORIGIN, [rr("@", "SOA", "ns1 hostmaster 1 7200 3600 1209600 300")],
                      source="t")
    verdict = judge(bare, version(zone_of(2)), LIMITS)
    assert verdict.accepted and verdict.diff.before == 0 and verdict.diff.added == 10


def test_limits_of_configuration_values():
    limits = Limits.of(0.1, 0.2, [("www.example.org.", "A"), ("example.org.", "MX")])
    assert limits.max_delete_ratio == 0.1 and limits.max_change_ratio == 0.2
    assert limits.protect == frozenset({(dns.name.from_text("www.example.org."), 1),
                                        (ORIGIN, dns.rdatatype.MX)})
    assert Limits.of(0.3, 0.5).protect == frozenset()


# ------------------------------------------------------------- diff


def test_diff_tells_ttl_rdata_and_size_changes_apart_from_additions():
    old = zone_of(1, extra=[rr("mx", "MX", "10 a.example.org."), rr("txt", "TXT", '"x"')])
    new = zone_of(2, extra=[rr("mx", "MX", "10 a.example.org.", ttl=60),            # TTL only
                            rr("txt", "TXT", '"y"'),                    # same size, new data
                            rr("txt", "TXT", '"z"'),                    # ... and a second one
                            rr("a.b.c", "A", "192.0.2.1")])             # a deep addition
    change = diff(old, new)
    assert (change.before, change.after) == (12, 13)
    assert (change.added, change.deleted, change.modified) == (1, 0, 2)
    assert change.changed == 2 and change.any


def test_diff_of_the_same_rdata_in_another_rrset_of_the_same_size():
    old = zone_of(1, extra=[rr("two", "A", "192.0.2.1"), rr("two", "A", "192.0.2.2")])
    new = zone_of(2, extra=[rr("two", "A", "192.0.2.1"), rr("two", "A", "192.0.2.3")])
    assert diff(old, new).modified == 1
    shrunk = zone_of(2, extra=[rr("two", "A", "192.0.2.1")])
    assert diff(old, shrunk).modified == 1


def test_diff_of_equal_zones_is_nothing():
    change = diff(zone_of(1), zone_of(2))
    assert not change.any and change.changed == 0
    assert Diff(added=1).any and Diff(deleted=1).any and Diff(modified=1).any
    assert Diff(deleted=2, modified=3).changed == 5


def test_dnssec_records_and_the_soa_are_not_counted():
    far = time.time() + 86400 * 30
    a = signed(1, far, nsec_next="www")
    b = signed(2, far + 3600, nsec_next="h0")      # re-signed, another NSEC chain
    keys = rrsets_by_key(a)
    types = {rdtype for _, rdtype in keys}
    assert dns.rdatatype.SOA not in types and dns.rdatatype.NSEC not in types
    assert dns.rdatatype.RRSIG not in types and dns.rdatatype.DNSKEY in types
    assert not diff(a, b).any


def test_rrsets_are_keyed_by_owner_and_type_at_every_depth():
    zone = zone_of(1, extra=[rr("a.b", "A", "192.0.2.1"), rr("a.b", "TXT", '"t"'),
                             rr("b", "TXT", '"u"'), rr("x.a.b", "A", "192.0.2.2")])
    keys = rrsets_by_key(zone)
    assert ((b"b", b"a"), dns.rdatatype.A) in keys
    assert ((b"b", b"a"), dns.rdatatype.TXT) in keys
    assert ((b"b",), dns.rdatatype.TXT) in keys
    assert ((b"b", b"a", b"x"), dns.rdatatype.A) in keys
    assert ((), dns.rdatatype.NS) in keys
    assert len(keys) == 14


# ------------------------------------------------------------- validation


def problem(message: str, line: int, severity: Severity = Severity.ERROR) -> Problem:
    return Problem(Location("zones/example.org.zone", line), message, severity)


def test_invalid_data_names_three_errors_and_counts_the_rest():
    errors = [problem(f"error {i}", i) for i in range(1, 6)]
    warning = problem("a warning", 9, Severity.WARNING)
    bad = Version(ORIGIN, None, [warning] + errors, "t", "test")
    verdict = judge(make_zone(ORIGIN, 1), bad, LIMITS)
    assert not verdict.accepted and verdict.diff is None
    assert verdict.reasons == [
        "fails validation with 5 error(s): zones/example.org.zone:1: error 1; "
        "zones/example.org.zone:2: error 2; zones/example.org.zone:3: error 3 (and 2 more)"]


def test_invalid_data_with_four_errors_counts_one_more():
    bad = Version(ORIGIN, None, [problem(f"e{i}", i) for i in range(4)], "t", "test")
    assert judge(None, bad, LIMITS).reason.endswith("zones/example.org.zone:2: e2 (and 1 more)")
    assert judge(None, bad, LIMITS).accepted is False


def test_invalid_data_with_exactly_three_errors_lists_them_all():
    bad = Version(ORIGIN, None, [problem(f"e{i}", i) for i in range(3)], "t", "test")
    assert judge(None, bad, LIMITS).reason == (
        "fails validation with 3 error(s): zones/example.org.zone:0: e0; "
        "zones/example.org.zone:1: e1; zones/example.org.zone:2: e2")


def test_a_zone_that_did_not_load_with_only_warnings_shows_them():
    bad = Version(ORIGIN, None, [problem("stopped reading", 4, Severity.WARNING)], "t", "test")
    assert judge(None, bad, LIMITS).reason == (
        "fails validation with 1 error(s): zones/example.org.zone:4: warning: stopped reading")


# ------------------------------------------------------------- apex, protect


def test_removing_the_apex_ns_is_refused():
    verdict = judge(zone_of(1), version(zone_of(2, drop=(("@", "NS"),))), LIMITS)
    assert not verdict.accepted
    assert verdict.reasons == [
        "it has no NS RRset at the apex (apex SOA and NS can never be removed)"]


def test_a_zone_served_without_apex_ns_may_go_on_without_it():
    """Only a removal counts: a lenient zone that never had apex NS is still taken."""
    assert judge(None, version(zone_of(1, drop=(("@", "NS"),))), LIMITS).accepted
    without_ns = zone_of(1, drop=(("@", "NS"),))
    verdict = judge(without_ns, version(zone_of(2, drop=(("@", "NS"),))), LIMITS)
    assert verdict.accepted and verdict.reasons == []
    same = judge(without_ns, version(zone_of(1, drop=(("@", "NS"),))), LIMITS)
    assert same.accepted and same.unchanged


def test_protected_rrsets_listed_with_what_is_served_now():
    limits = Limits.of(0.9, 0.9, [("www.example.org.", "A"), ("two.example.org.", "A"),
                                  ("www.example.com.", "A"), ("mx.example.org.", "MX")])
    old = zone_of(1, extra=[rr("two", "A", "192.0.2.1"), rr("two", "A", "192.0.2.2")])
    new = zone_of(2, drop=(("www", "A"),))
    verdict = judge(old, version(new), limits)
    assert verdict.reasons == [
        "it removes the protected RRset two.example.org. A (2 record(s) served now)",
        "it removes the protected RRset www.example.org. A (1 record(s) served now)"]


def test_a_protected_rrset_may_change_and_may_arrive():
    limits = Limits.of(0.9, 0.9, [("www.example.org.", "A"), ("new.example.org.", "A"),
                                  ("ns1.example.org.", "AAAA")])
    old = zone_of(1)
    new = [r for r in records(ORIGIN, 2, hosts=7, address="192.0.2.81")] + \
        [rr("new", "A", "192.0.2.5")]
    verdict = judge(old, version(build_zone(ORIGIN, new, source="t")), limits)
    assert verdict.accepted, verdict.reason


# ------------------------------------------------------------- serials


def test_an_soa_change_alone_under_the_same_serial_must_bump_it():
    old = zone_of(5)
    new = zone_of(5, soa="ns1 hostmaster 5 7200 3600 1209600 600")
    verdict = judge(old, version(new), LIMITS)
    assert not verdict.accepted and not verdict.unchanged
    assert verdict.reasons == ["the content changed (+0 -0 ~0 RRsets) but the serial 5 did "
                               "not: bump the serial"]


def test_the_bump_message_counts_what_changed():
    old = zone_of(5)
    new = [r for r in records(ORIGIN, 5, hosts=8, address="192.0.2.81")
           if r.name != dns.name.from_text("h0", ORIGIN)]
    verdict = judge(old, version(build_zone(ORIGIN, new, source="t")), LIMITS)
    assert verdict.reasons == ["the content changed (+1 -1 ~1 RRsets) but the serial 5 did "
                               "not: bump the serial"]


def test_unchanged_is_accepted_and_carries_its_diff():
    verdict = judge(zone_of(5), version(zone_of(5)), LIMITS)
    assert verdict.accepted and verdict.unchanged and not verdict.older
    assert verdict.reasons == [] and verdict.diff.before == 10


def test_content_hash_serials_are_neither_bumped_nor_older():
    old = zone_of(5)
    same_serial = judge(old, version(zone_of(5, hosts=8), serial_ordered=False), LIMITS)
    assert same_serial.accepted and not same_serial.unchanged
    lower = judge(old, version(zone_of(4, hosts=8), serial_ordered=False), LIMITS)
    assert lower.accepted and not lower.older


def test_an_older_serial_is_marked_older_and_a_newer_one_is_not():
    old = zone_of(5)
    newer = judge(old, version(zone_of(6)), LIMITS)
    assert newer.accepted and not newer.older and not newer.unchanged
    wrapped = judge(zone_of(2**32 - 1), version(zone_of(3)), LIMITS)
    assert wrapped.accepted
    older = judge(zone_of(3), version(zone_of(2**32 - 1)), LIMITS)
    assert older.older and older.reasons == [
        f"serial {2**32 - 1} is older than the served serial 3 (RFC 1982)"]


# ------------------------------------------------------------- DNSSEC


def test_expired_signatures_are_refused_while_the_served_ones_are_valid():
    now = time.time()
    expired = int(now) - 7200
    verdict = judge(signed(1, now + 86400), version(signed(2, expired)), LIMITS)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expired))
    assert verdict.reasons == [f"signatures expired at {stamp} (the served ones are still valid)"]


def test_expired_signatures_replacing_unsigned_data_are_refused():
    verdict = judge(zone_of(1), version(signed(2, time.time() - 60)), LIMITS)
    assert not verdict.accepted
    assert verdict.reason.startswith("signatures expired at ")


def test_expired_signatures_are_better_than_nothing_or_than_expired_ones():
    gone = time.time() - 60
    first = judge(None, version(signed(1, gone)), LIMITS)
    assert first.accepted
    after_expired = judge(signed(1, gone - 3600), version(signed(2, gone)), LIMITS)
    assert after_expired.accepted


def test_valid_signatures_pass_and_dropping_the_keys_does_not():
    now = time.time()
    assert judge(signed(1, now + 86400), version(signed(2, now + 2 * 86400)), LIMITS).accepted
    assert judge(signed(1, now + 86400), version(zone_of(2)), LIMITS).reasons == [
        "its DNSKEY set no longer matches the DS of the served version's KSKs"]


def test_a_key_change_the_served_ds_does_not_lead_to_is_refused():
    far = time.time() + 86400 * 30
    verdict = judge(signed(1, far, key=KSK_A), version(signed(2, far, key=KSK_B)), LIMITS)
    assert verdict.reasons == [
        "its DNSKEY set no longer matches the DS of the served version's KSKs"]
    assert judge(zone_of(1), version(signed(2, far, key=KSK_B)), LIMITS).accepted


def test_verdict_reason_joins_every_reason():
    assert Verdict(False, ["a", "b"]).reason == "a; b"
    assert Verdict(True).reason == ""
