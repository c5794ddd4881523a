"""Response rate limiting for UDP, in the manner of BIND, Knot and NSD RRL.

An authoritative server on the internet is a reflector: a forged source
address turns every small query into a larger answer sent to a victim. RRL
bounds the responses each client network gets per second, per kind of
response (answer, NXDOMAIN, error). Over the limit a response is dropped,
except every ``slip``-th one, which goes out truncated (TC=1, no records)
so that a real client behind the forged address retries over TCP, where
spoofing is impossible. TCP is never limited.

Counting is a fixed one-second window per (network, kind) key. The
limits are per *server*, not per process: the table lives in shared
memory (an anonymous ``MAP_SHARED`` mapping) that the supervisor creates
before it forks its workers (seawall/workers.py), and every UDP thread of
every worker counts in it. A slot is two 64-bit words, the key's hash and
``second << 32 | count``; a key probes ``PROBES`` slots from its hash,
takes the first that holds it or has gone stale, else evicts the first.
There is no lock: two processes that count the same key in the same
instant may lose one increment, so a flood gets at most a few responses
more than the limit, never a multiple of it (measured: 5/s with 2 workers
answers 5-6 a second). Dividing the limits by the number of workers would
have been exact only when a flood spreads evenly over the workers, which
the kernel does not promise for a socket they share.

Which clients are never limited is an explicit list, ``exempt`` (default
loopback, so local health checks, drills and benchmarks are not limited).
Behind a local proxy or load balancer every client seems to come from
loopback: clear the list (``exempt: []``) or RRL would be off for all.

Messages only the supervisor answers (NOTIFY, AXFR, IXFR over UDP) are
counted *before* they are handed over or handled (``verdict``), against
``errors_per_second``: a flood of them is limited like any other, and a
legitimate primary sends a few NOTIFYs a minute.

Example configuration::

    rrl:
      answers_per_second: 1000
      nxdomains_per_second: 200
      errors_per_second: 100
      slip: 2
      exempt: ["127.0.0.0/8", "::1/128"]   # [] behind a local proxy
"""

from __future__ import annotations

import ipaddress
import mmap
import time
from dataclasses import dataclass, field

ANSWER, NXDOMAIN, ERROR = 0, 1, 2
KIND_NAMES = ("answer", "nxdomain", "error")
TC = 0x02  # in the third header octet
PASS, SLIP, DROP = 0, 1, 2
PROBES = 4   # slots a key may occupy, from its hash on


@dataclass(frozen=True)
class RrlSettings:
    """Limits per client network and second; 0 disables a limit."""

    enabled: bool = True                    # false: never limit
    answers_per_second: int = 1000          # positive answers per client network and second
    nxdomains_per_second: int = 200         # NXDOMAIN answers per client network and second
    errors_per_second: int = 100            # REFUSED, FORMERR, ... per client network and second
    slip: int = 2                           # every Nth response over the limit goes out truncated; 0: drop all
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56
    exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128") # networks never limited; [] behind a local proxy
    table_size: int = 100_000               # client networks tracked at once, shared by all workers (16 bytes each)


@dataclass
class RrlCounters:
    dropped: list[int] = field(default_factory=lambda: [0, 0, 0])
    slipped: list[int] = field(default_factory=lambda: [0, 0, 0])


class SharedTable:
    """The per-(network, kind) counters, in memory shared by the processes forked
    after it was made (see the module docstring)."""

    def __init__(self, slots: int) -> None:
        self.slots = max(PROBES, slots)
        self._map = mmap.mmap(-1, self.slots * 16)   # anonymous, MAP_SHARED
        self.words = memoryview(self._map).cast("Q")

    def count(self, key: int, second: int) -> int:
        """Add one to ``key``'s count in ``second``; the count so far."""
        words, slots = self.words, self.slots
        start = key % slots
        chosen = -1
        for probe in range(PROBES):
            index = 2 * ((start + probe) % slots)
            held = words[index]
            if held == key:
                chosen = index
                break
            if chosen < 0 and (held == 0 or (words[index + 1] >> 32) + 1 < second):
                chosen = index   # free, or stale: take it unless the key is further on
        if chosen < 0:
            chosen = 2 * start   # every slot busy this second: evict the first
        if words[chosen] != key:
            words[chosen] = key
            words[chosen + 1] = 0
        stamp = words[chosen + 1]
        count = (stamp & 0xFFFFFFFF) + 1 if stamp >> 32 == second else 1
        words[chosen + 1] = (second << 32) | (count & 0xFFFFFFFF)
        return count

    def __len__(self) -> int:
        """Slots in use (at most ``slots``)."""
        return sum(1 for i in range(0, 2 * self.slots, 2) if self.words[i])


class RateLimiter:
    """Decides, per UDP response, whether it goes out, truncated, or not at all.

    ``table``: the shared counters of the server (made here when not given; a
    worker's UDP threads are given the supervisor's).
    """

    def __init__(self, settings: RrlSettings, clock=time.monotonic,
                 table: SharedTable | None = None) -> None:
        self.settings = settings
        self.limits = (settings.answers_per_second, settings.nxdomains_per_second,
                       settings.errors_per_second)
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in settings.exempt]
        self.clock = clock
        self.table = table if table is not None else SharedTable(settings.table_size)
        self.counters = RrlCounters()
        self._v4_mask = (0xFFFFFFFF << (32 - settings.ipv4_prefix)) & 0xFFFFFFFF
        self._v6_shift = 128 - settings.ipv6_prefix
        self._exempt_cache: dict[str, bool] = {}

    def filter(self, client: tuple, response: bytes) -> bytes | None:
        """The response to send to ``client``: as is, truncated, or None (dropped)."""
        rcode = response[3] & 0x0F
        kind = ANSWER if rcode == 0 else NXDOMAIN if rcode == 3 else ERROR
        verdict = self.verdict(client, kind)
        if verdict == PASS:
            return response
        return truncated(response) if verdict == SLIP else None

    def verdict(self, client: tuple, kind: int) -> int:
        """Count one response of ``kind`` to ``client``: PASS, SLIP or DROP."""
        host = client[0]
        exempt = self._exempt_cache.get(host)
        if exempt is None:
            exempt = self._is_exempt(host)
            if len(self._exempt_cache) < 4096:
                self._exempt_cache[host] = exempt
        if exempt:
            return PASS
        limit = self.limits[kind]
        if limit <= 0:
            return PASS
        key = hash((self._network(host), kind)) & 0xFFFFFFFFFFFFFFFF or 1
        over = self.table.count(key, int(self.clock())) - limit
        if over <= 0:
            return PASS
        slip = self.settings.slip
        if slip and over % slip == 0:
            self.counters.slipped[kind] += 1
            return SLIP
        self.counters.dropped[kind] += 1
        return DROP

    def _network(self, host: str) -> int:
        address = ipaddress.ip_address(host.split("%", 1)[0])
        if address.version == 4:
            return int(address) & self._v4_mask
        return (int(address) >> self._v6_shift) | (1 << 130)

    def _is_exempt(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return True
        return any(address in network for network in self.exempt)


def truncated(response: bytes) -> bytes:
    """The header and question of ``response`` with TC set and no records (RFC 1035 §4.1.1).
    Given a query, a truncated response to it (QR is set too)."""
    offset = 12
    if int.from_bytes(response[4:6], "big") == 1:
        while offset < len(response) and response[offset] != 0:
            offset += response[offset] + 1
        offset += 5
    header = bytearray(response[:12])
    header[2] |= TC | 0x80
    header[6:12] = b"\x00" * 6
    return bytes(header) + response[12:offset]

