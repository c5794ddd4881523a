"""Response rate limiting for UDP, in the manner of BIND, Knot and NSD RRL.

An authoritative server on the internet is a reflector: a forged source
address turns every small query into a larger answer sent to a victim. RRL
bounds the responses each client network gets per second, per kind of
response (answer, NXDOMAIN, error). Over the limit a response is dropped,
except every ``slip``-th one, which goes out truncated (TC=1, no records)
so that a real client behind the forged address retries over TCP, where
spoofing is impossible. TCP is never limited.

Counting is a fixed one-second window per (network, kind) key: one dict
lookup and an integer add per response. The table is bounded; the oldest
keys are evicted first.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

ANSWER, NXDOMAIN, ERROR = 0, 1, 2
KIND_NAMES = ("answer", "nxdomain", "error")
TC = 0x02  # in the third header octet


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
    exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128") # networks never limited
    table_size: int = 100_000               # client networks tracked at once (oldest evicted)


@dataclass
class RrlCounters:
    dropped: list[int] = field(default_factory=lambda: [0, 0, 0])
    slipped: list[int] = field(default_factory=lambda: [0, 0, 0])


class RateLimiter:
    """Decides, per UDP response, whether it goes out, truncated, or not at all."""

    def __init__(self, settings: RrlSettings, clock=time.monotonic) -> None:
        self.settings = settings
        self.limits = (settings.answers_per_second, settings.nxdomains_per_second,
                       settings.errors_per_second)
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in settings.exempt]
        self.clock = clock
        self.table: dict[tuple, list[int]] = {}
        self.counters = RrlCounters()
        self._v4_mask = (0xFFFFFFFF << (32 - settings.ipv4_prefix)) & 0xFFFFFFFF
        self._v6_shift = 128 - settings.ipv6_prefix
        self._exempt_cache: dict[str, bool] = {}

    def filter(self, client: tuple, response: bytes) -> bytes | None:
        """The response to send to ``client``: as is, truncated, or None (dropped)."""
        host = client[0]
        exempt = self._exempt_cache.get(host)
        if exempt is None:
            exempt = self._is_exempt(host)
            if len(self._exempt_cache) < 4096:
                self._exempt_cache[host] = exempt
        if exempt:
            return response
        rcode = response[3] & 0x0F
        kind = ANSWER if rcode == 0 else NXDOMAIN if rcode == 3 else ERROR
        limit = self.limits[kind]
        if limit <= 0:
            return response
        key = (self._network(host), kind)
        second = int(self.clock())
        entry = self.table.get(key)
        if entry is None:
            if len(self.table) >= self.settings.table_size:
                del self.table[next(iter(self.table))]
            entry = self.table[key] = [second, 0]
        if entry[0] != second:
            entry[0], entry[1] = second, 0
        entry[1] += 1
        over = entry[1] - limit
        if over <= 0:
            return response
        slip = self.settings.slip
        if slip and over % slip == 0:
            self.counters.slipped[kind] += 1
            return truncated(response)
        self.counters.dropped[kind] += 1
        return None

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
    """The header and question of ``response`` with TC set and no records (RFC 1035 §4.1.1)."""
    offset = 12
    if int.from_bytes(response[4:6], "big") == 1:
        while offset < len(response) and response[offset] != 0:
            offset += response[offset] + 1
        offset += 5
    header = bytearray(response[:12])
    header[2] |= TC
    header[6:12] = b"\x00" * 6
    return bytes(header) + response[12:offset]

