"""SOA probes for many zones at once: one socket, one timeout, answers matched to questions."""

from __future__ import annotations

import asyncio
import socket
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from seawall.backends.axfr import AxfrBackend
from seawall.backends.soaprobe import ProbeError, probe_serials
from seawall.config import BackendConfig, FailoverConfig

ORIGINS = [dns.name.from_text(f"z{i}.test.") for i in range(1000)]


def test_a_round_of_1000_zones_on_a_silent_primary_ends_within_the_timeout():
    """Before: one thread per SOA query, ~170 s for 1,000 zones at a 1 s timeout."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))          # takes the queries, never answers
    try:
        port = silent.getsockname()[1]
        spec = BackendConfig(type="axfr", primary=f"127.0.0.1:{port}",
                             zones=tuple(o.to_text() for o in ORIGINS))
        backend = AxfrBackend(spec, FailoverConfig(probe_interval=1, probe_timeout=1))
        started = time.monotonic()
        reports = asyncio.run(backend.check())
        took = time.monotonic() - started
        assert len(reports) == 1000 and not any(r.ok for r in reports)
        assert all("timed out after 1s" in r.error for r in reports)
        # probe_interval + probe_timeout, with room for a busy machine
        assert took < 2 * (1 + 1), took
    finally:
        silent.close()


def test_answers_are_matched_by_id_and_question_whatever_their_order():
    """A primary answering in reverse order, with one wrong question and one REFUSED."""
    primary = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    primary.bind(("127.0.0.1", 0))
    primary.settimeout(5)
    origins = ORIGINS[:20]

    async def run() -> dict:
        return await probe_serials(origins, "127.0.0.1", primary.getsockname()[1], 2.0)

    import threading

    def answer_all() -> None:
        queries = []
        for _ in origins:
            wire, client = primary.recvfrom(4096)
            queries.append((dns.message.from_wire(wire), client))
        for n, (query, client) in enumerate(reversed(queries)):
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            name = query.question[0].name
            if name == origins[0]:
                response.set_rcode(dns.rcode.REFUSED)
            else:
                serial = int(name.labels[0][1:])
                response.answer.append(dns.rrset.from_text(
                    name, 60, "IN", "SOA", f"ns1. h. {serial + 100} 1 1 1 1"))
            if name == origins[1]:   # first a stray answer to another question, same ID
                stray = dns.message.make_response(query)
                stray.question[0] = dns.rrset.RRset(origins[2], 1, dns.rdatatype.SOA)
                primary.sendto(stray.to_wire(), client)
            primary.sendto(response.to_wire(), client)

    thread = threading.Thread(target=answer_all)
    thread.start()
    try:
        results = asyncio.run(run())
    finally:
        thread.join(10)
        primary.close()
    assert isinstance(results[origins[0]], ProbeError) and "REFUSED" in str(results[origins[0]])
    for i, origin in enumerate(origins[1:], start=1):
        assert results[origin] == i + 100, (origin, results[origin])
