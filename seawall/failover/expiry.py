"""The EDNS EXPIRE value of each served zone, from its failover state (RFC 7314).

RFC 7314: a primary sends its SOA EXPIRE field; a secondary
sends the time left before its copy expires. What Seawall is for a zone
depends on where its data comes from and on the zone's state:

=========================  ===================================================
served                     EXPIRE sent
=========================  ===================================================
live or held, files        the served SOA EXPIRE: the files are the master
                           copy, Seawall is the primary
live or held, axfr         SOA EXPIRE − time since the hidden primary last
                           confirmed the data (a probe or a transfer): Seawall
                           is its secondary, and a probe is a refresh
stale (any backend)        the same countdown: the source is not answering, so
                           the copy ages until it is confirmed again
emergency                  the emergency version's own SOA EXPIRE: it is
                           Seawall's own data (kept in git), a copy of nothing
                           that could expire; sending a countdown, or 0, would
                           make downstream secondaries drop the zone in the very
                           disaster the emergency version is there for
=========================  ===================================================

The countdown never goes below 0 nor above the served SOA EXPIRE (a
secondary caps it there anyway). It runs on the controller's monotonic
clock from ``Good.confirmed_at``, which a restart restores from the last
good snapshot, so a restart does not reset it. The held state does not
confirm the data (the backend offers another version), so a held zone from
an axfr backend counts down too.

Example::

    expire_of = ExpireTimers(failover_service)   # responder.expire_of = expire_of
    expire_of(zone)                               # seconds for the zone as served
"""

from __future__ import annotations

import dns.name

from ..zones.model import Zone
from .zonestate import Mode, ZoneState


def expire_seconds(st: ZoneState | None, served: Zone, now: float, remote: bool) -> int:
    """The EXPIRE value for ``served``, the zone as served in state ``st`` (table above)."""
    ceiling = int(served.soa[0].expire)
    if st is None or st.good is None or st.served_mode is Mode.EMERGENCY:
        return ceiling
    if st.served_mode in (Mode.LIVE, Mode.HELD) and not remote:
        return ceiling
    good = st.good
    horizon = good.soa_expire if good.soa_expire is not None else ceiling
    left = horizon - (now - good.confirmed_at)
    return int(max(0, min(ceiling, left)))


class ExpireTimers:
    """The EXPIRE source of a running server: its controller and backends."""

    def __init__(self, service: object) -> None:
        self.service = service

    def __call__(self, zone: Zone) -> int:
        controller = self.service.controller          # type: ignore[attr-defined]
        origin: dns.name.Name = zone.origin
        backend = self.service.backend_for(origin)    # type: ignore[attr-defined]
        remote = bool(getattr(backend, "remote", False))
        return expire_seconds(controller.zones.get(origin), zone, controller.clock(), remote)


__all__ = ["ExpireTimers", "expire_seconds"]
