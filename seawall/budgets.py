"""Budgets for what a client can make the server hold open, and logs a flood cannot fill.

Every listener that accepts connections (DNS over TCP, metrics, the control
channel) counts what it holds in a :class:`ConnectionBudget`: per source
*prefix* (an IPv6 client owns at least a /64, so counting exact addresses
would give it 2^64 budgets), per listener and in total. A connection over
any of them is closed at once, before it costs more than the accept (RFC
7766 §6.2.2 lets a server refuse connections to protect its resources).

The total is also bounded by the process's descriptor limit
(``RLIMIT_NOFILE``): a budget larger than what the process may open would
let clients take the descriptors the server needs for its own files, and
a failing ``listdir`` of the zones directory looks like a failing backend.

A budget that is hit says so in the log, at most once per ``interval`` per
kind (:class:`LogLimiter`), with the number of lines held back since, so a
flood of connections or datagrams costs the log a line every few seconds.

Example configuration (top level; see docs/configuration.md)::

    tcp_max_connections: 1000     # all TCP clients together
    tcp_max_per_client: 64        # one client prefix
    tcp_client_ipv4_prefix: 32
    tcp_client_ipv6_prefix: 64
"""

from __future__ import annotations

import ipaddress
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

RESERVED_DESCRIPTORS = 128
"""Descriptors kept for the server's own work (zone files, snapshots, the event log,
sockets of its backends) whatever the budgets say."""


class LogLimiter:
    """At most ``burst`` log lines per ``interval`` seconds and key; what is held
    back is counted and reported with the next line (``suppressed=N``)."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, burst: int = 1) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.burst = burst
        self._last: dict[str, tuple[float, int]] = {}
        self._written: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` at WARNING unless ``key`` was logged recently;
        True when it was written."""
        return self.log(logging.WARNING, key, message, *args)

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        now = self.clock()
        last, held = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            written = self._written.get(key, 1)
            if written >= self.burst:
                self._last[key] = (last, held + 1)
                return False
            self._written[key] = written + 1
            self._last[key] = (last, 0)
        else:
            if len(self._last) >= 1024 and key not in self._last:
                self._last.clear()   # keys are few (one per kind); a bound all the same
                self._written.clear()
            self._last[key] = (now, 0)
            self._written[key] = 1
        self.logger.log(level, message + " suppressed=%d", *args, held)
        return True


def descriptor_room() -> int:
    """How many descriptors clients may hold in this process: the soft
    ``RLIMIT_NOFILE`` less :data:`RESERVED_DESCRIPTORS` (at least 16)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 1 << 20
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(16, soft - RESERVED_DESCRIPTORS)


@dataclass(frozen=True)
class Refusal:
    """Which budget a connection went over, for the log line and the counters."""

    budget: str     # "total", "listener" or "prefix"
    limit: int
    prefix: str


class ConnectionBudget:
    """Open connections per source prefix, per listener and in total.

    ``take`` admits a connection (None) or says which budget it is over;
    ``give_back`` returns what ``take`` admitted. Listeners are any hashable
    names (a socket's index, ``"handed"`` for connections another process
    passed over).
    """

    def __init__(self, name: str, *, total: int, per_prefix: int, per_listener: int = 0,
                 ipv4_prefix: int = 32, ipv6_prefix: int = 64,
                 logger: logging.Logger | None = None, bound_by_descriptors: bool = True
                 ) -> None:
        self.name = name
        self.total = min(total, descriptor_room()) if bound_by_descriptors else total
        self.per_prefix = per_prefix
        self.per_listener = per_listener or self.total
        self.ipv4_prefix = ipv4_prefix
        self.ipv6_prefix = ipv6_prefix
        self.open = 0
        self.refused = 0
        self.by_prefix: dict[str, int] = {}
        self.by_listener: dict[object, int] = {}
        self.log = LogLimiter(logger or logging.getLogger("seawall.budgets"))
        if self.total < total and logger is not None:
            logger.warning("budget lowered: listener=%s total=%d configured=%d reason=the "
                           "descriptor limit (ulimit -n) leaves room for %d connections",
                           name, self.total, total, self.total)

    def prefix_of(self, host: str | None) -> str:
        """The client network a connection counts against (``host/len``)."""
        if not host:
            return "-"
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return host   # a Unix socket peer or the like: counted as itself
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        length = self.ipv4_prefix if address.version == 4 else self.ipv6_prefix
        network = ipaddress.ip_network(f"{address}/{length}", strict=False)
        return str(network)

    def take(self, host: str | None, listener: object = 0) -> Refusal | None:
        """Count a new connection from ``host`` on ``listener`` in, or say which
        budget it is over (then it is not counted, and a line is logged)."""
        prefix = self.prefix_of(host)
        refusal = None
        if self.open >= self.total:
            refusal = Refusal("total", self.total, prefix)
        elif self.by_listener.get(listener, 0) >= self.per_listener:
            refusal = Refusal("listener", self.per_listener, prefix)
        elif self.per_prefix and self.by_prefix.get(prefix, 0) >= self.per_prefix:
            refusal = Refusal("prefix", self.per_prefix, prefix)
        if refusal is not None:
            self.refused += 1
            self.log.warning(f"{self.name}:{refusal.budget}",
                             "connection refused: listener=%s budget=%s limit=%d client=%s "
                             "open=%d", self.name, refusal.budget, refusal.limit, prefix,
                             self.open)
            return refusal
        self.open += 1
        self.by_prefix[prefix] = self.by_prefix.get(prefix, 0) + 1
        self.by_listener[listener] = self.by_listener.get(listener, 0) + 1
        return None

    def give_back(self, host: str | None, listener: object = 0) -> None:
        prefix = self.prefix_of(host)
        self.open = max(0, self.open - 1)
        _decrement(self.by_prefix, prefix)
        _decrement(self.by_listener, listener)


def _decrement(table: dict, key: object) -> None:
    left = table.get(key, 1) - 1
    if left > 0:
        table[key] = left
    else:
        table.pop(key, None)
