"""Coverage-guided fuzzing of the query parser and the whole answer path (atheris).

Every input is handed to ``Responder.respond`` exactly as a datagram would
be, over UDP and TCP. The responder serves the project's example zones and
the signed test zones (NSEC, NSEC3, NSEC3 opt-out: tests/dns/data/signed),
so queries with the DO bit walk the signed answer paths and denial proofs. A crash is an exception escaping ``respond`` (it must
answer SERVFAIL and log instead), a response dnspython cannot parse, or a
response to something that is not a query (QR set, no full header).

    .venv/bin/pip install atheris
    .venv/bin/python bench/fuzz/fuzz_responder.py -max_total_time=60 bench/fuzz/corpus

Any crash it finds is written as ``crash-<sha1>`` by libFuzzer: turn it into
a regression test in ``tests/dns/test_fuzz_regressions.py`` (the input bytes,
and the property that failed).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import dns.exception
    import dns.message

    from seawall.dns.responder import Responder, ResponderSettings
    from seawall.zones.loader import load_directory, load_zone_file
    from seawall.zones.zoneset import ZoneSet

ROOT = Path(__file__).resolve().parents[2]
SIGNED = ROOT / "tests" / "dns" / "data" / "signed"
logging.disable(logging.CRITICAL)  # expected SERVFAIL logs would drown the fuzzer's output


def _responder() -> Responder:
    zones = [z.zone for z in load_directory(ROOT / "zones") if z.zone is not None]
    signed = [load_zone_file(path) for path in sorted(SIGNED.glob("*.zone"))]
    assert signed and all(z.zone is not None for z in signed), "a signed fixture did not load"
    zones += [z.zone for z in signed if z.zone is not None]
    return Responder(ZoneSet(zones), ResponderSettings())


RESPONDER = _responder()
RESPONDER.errors_logged = 10**9  # _internal_error logs nothing more; we check instead


def check(data: bytes) -> None:
    for transport in ("udp", "tcp"):
        response = RESPONDER.respond(data, transport, ("127.0.0.1", 5300))
        if response is None:
            continue
        if len(data) < 12 or data[2] & 0x80:
            raise AssertionError(f"answered a non-query: {data.hex()}")
        if response[3] & 0x0F == 2:  # SERVFAIL means the engine raised: our bug
            raise AssertionError(f"SERVFAIL (internal error) for {data.hex()}")
        if (response[2] >> 3) & 0x0F not in (0, 4):
            # UPDATE and other opcodes: dnspython reads their sections by other
            # rules (RFC 2136 zone section); the header is what we promise.
            if len(response) < 12:
                raise AssertionError(f"short response to {data.hex()}")
            continue
        try:
            dns.message.from_wire(response, ignore_trailing=True)
        except dns.exception.DNSException as exc:
            raise AssertionError(f"unparsable response {response.hex()} to {data.hex()}: {exc}")


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
