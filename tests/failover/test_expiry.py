"""The EDNS EXPIRE value of a zone from its failover state (seawall/failover/expiry.py)."""

from __future__ import annotations

import dns.name
import pytest

from conftest import zone_from_text
from seawall.failover.expiry import ExpireTimers, expire_seconds
from seawall.failover.zonestate import Good, Mode, ZoneState

LIVE = zone_from_text("x.test.", "$ORIGIN x.test.\n$TTL 300\n"
                      "@ SOA ns h 5 3600 600 1000 60\n@ NS ns\nns A 192.0.2.1\n")
EMERGENCY = zone_from_text("x.test.", "$ORIGIN x.test.\n$TTL 300\n"
                           "@ SOA ns h 1 300 60 7000 60\n@ NS ns\nns A 192.0.2.2\n")
CONFIRMED = 100.0


def state(mode: Mode | None, *, good: bool = True) -> ZoneState:
    st = ZoneState(dns.name.from_text("x.test."), mode=mode, emergency=EMERGENCY)
    if good:
        st.good = Good(LIVE, "t", "backend", 0.0, CONFIRMED, soa_expire=1000)
    st.served_mode = mode
    return st


@pytest.mark.parametrize("mode, remote, served, now, expected", [
    # Files: Seawall is the primary while the backend answers (RFC 7314).
    (Mode.LIVE, False, LIVE, CONFIRMED + 500, 1000),
    (Mode.HELD, False, LIVE, CONFIRMED + 500, 1000),
    # Axfr: a secondary, counting from the primary's last confirmation.
    (Mode.LIVE, True, LIVE, CONFIRMED + 0.4, 999),
    (Mode.LIVE, True, LIVE, CONFIRMED + 300, 700),
    (Mode.HELD, True, LIVE, CONFIRMED + 300, 700),
    # Stale counts down whatever the backend, and stops at 0.
    (Mode.STALE, False, LIVE, CONFIRMED + 999, 1),
    (Mode.STALE, True, LIVE, CONFIRMED + 5000, 0),
    # Emergency: the emergency version's own SOA EXPIRE, not a countdown.
    (Mode.EMERGENCY, True, EMERGENCY, CONFIRMED + 5000, 7000),
    (Mode.EMERGENCY, False, EMERGENCY, CONFIRMED + 5000, 7000),
])
def test_expire_by_state(mode: Mode, remote: bool, served, now: float, expected: int) -> None:
    assert expire_seconds(state(mode), served, now, remote) == expected


def test_never_above_the_served_soa_expire() -> None:
    st = state(Mode.LIVE)
    assert st.good is not None
    st.good.soa_expire = 50_000       # e.g. a horizon from before the SOA changed
    assert expire_seconds(st, LIVE, CONFIRMED, True) == 1000


def test_unknown_zone_or_no_good_data_is_its_own_primary() -> None:
    assert expire_seconds(None, LIVE, 1e9, True) == 1000
    assert expire_seconds(state(Mode.EMERGENCY, good=False), EMERGENCY, 1e9, True) == 7000


def test_timers_read_the_service() -> None:
    class Backend:
        remote = True

    class Controller:
        zones = {LIVE.origin: state(Mode.STALE)}

        @staticmethod
        def clock() -> float:
            return CONFIRMED + 250

    class Service:
        controller = Controller()

        @staticmethod
        def backend_for(origin):
            return Backend()

    assert ExpireTimers(Service())(LIVE) == 750
