"""Response rate limiting: per network, per kind, slip, exemptions, bounded table."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset

from seawall.dns.rrl import RateLimiter, RrlSettings, truncated


class Clock:
    """Seconds chosen by the test, so windows are exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def response(rcode: int = dns.rcode.NOERROR) -> bytes:
    query = dns.message.make_query("www.example.com.", "A")
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    reply.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.1"))
    return reply.to_wire()


def limiter(**overrides) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    settings = RrlSettings(**{"answers_per_second": 5, "nxdomains_per_second": 2,
                              "errors_per_second": 1, "slip": 2, "exempt": (), **overrides})
    return RateLimiter(settings, clock), clock


def outcomes(rrl, client, wire, count):
    sent = slipped = dropped = 0
    for _ in range(count):
        out = rrl.filter(client, wire)
        if out is None:
            dropped += 1
        elif out == wire:
            sent += 1
        else:
            slipped += 1
    return sent, slipped, dropped


def test_answers_over_the_limit_are_dropped_or_slipped():
    rrl, _ = limiter()
    sent, slipped, dropped = outcomes(rrl, ("198.51.100.7", 5300), response(), 15)
    assert (sent, slipped, dropped) == (5, 5, 5)
    assert rrl.counters.dropped[0] == 5 and rrl.counters.slipped[0] == 5


def test_the_window_resets_each_second():
    rrl, clock = limiter()
    wire = response()
    assert outcomes(rrl, ("198.51.100.7", 1), wire, 5)[0] == 5
    assert rrl.filter(("198.51.100.7", 1), wire) != wire
    clock.now += 1
    assert outcomes(rrl, ("198.51.100.7", 1), wire, 5)[0] == 5


def test_one_ipv4_24_shares_a_bucket_and_another_does_not():
    rrl, _ = limiter()
    wire = response()
    outcomes(rrl, ("198.51.100.7", 1), wire, 5)
    assert rrl.filter(("198.51.100.200", 1), wire) != wire      # same /24: limited
    assert rrl.filter(("198.51.101.7", 1), wire) == wire        # next /24: fresh


def test_ipv6_56_prefix():
    rrl, _ = limiter()
    wire = response()
    outcomes(rrl, ("2001:db8:0:100::1", 1), wire, 5)
    assert rrl.filter(("2001:db8:0:1ff::2", 1), wire) != wire   # same /56
    assert rrl.filter(("2001:db8:0:200::1", 1), wire) == wire   # another /56


def test_kinds_are_counted_apart():
    rrl, _ = limiter()
    client = ("198.51.100.7", 1)
    outcomes(rrl, client, response(), 5)
    nxdomain = response(dns.rcode.NXDOMAIN)
    assert rrl.filter(client, nxdomain) == nxdomain
    assert outcomes(rrl, client, response(dns.rcode.REFUSED), 3)[0] == 1


def test_exempt_networks_are_never_limited():
    rrl, _ = limiter(exempt=("127.0.0.0/8",))
    assert outcomes(rrl, ("127.0.0.1", 1), response(), 50)[0] == 50


def test_truncated_keeps_the_question_and_sets_tc():
    wire = response()
    short = dns.message.from_wire(truncated(wire))
    assert short.flags & dns.flags.TC
    assert short.question[0].name == dns.name.from_text("www.example.com.")
    assert not short.answer and not short.authority and not short.additional


def test_the_table_is_bounded():
    rrl, _ = limiter(table_size=100)
    wire = response()
    for i in range(1000):
        rrl.filter((f"10.{i // 256}.{i % 256}.1", 1), wire)
    assert len(rrl.table) <= 100
