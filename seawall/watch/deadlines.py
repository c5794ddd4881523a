"""Signatures as a deadline: the first RRSIG expiry of live, last good and emergency data.

Each is the moment that data would start being served bogus (RFC 4034
§3.1.5); the margin is how long is left. *live* is the backend's newest
version (the held one when the guard holds it), *last_good* what failover
falls back to, *emergency* the static file.
"""

from __future__ import annotations

import time
from typing import Any

from .findings import SIGNATURES, Finding

DATA = ("live", "last_good", "emergency")


def expiries(st: Any) -> dict[str, int | None]:
    """First RRSIG expiry (epoch seconds) of each kind of data of one ZoneState."""
    good = st.good.zone if st.good is not None else None
    held = st.held.version.zone if st.held is not None else None
    live = held if held is not None else good
    emergency = st.emergency
    return {"live": live.signature_expiry if live is not None else None,
            "last_good": good.signature_expiry if good is not None else None,
            "emergency": emergency.signature_expiry if emergency is not None else None}


def signature_findings(zone: str, st: Any, warning: float,
                       now: float | None = None) -> list[Finding]:
    now = time.time() if now is None else now
    out = []
    for data, expiry in expiries(st).items():
        if expiry is not None and expiry - now < warning:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
            out.append(Finding(zone, SIGNATURES, data,
                               f"the first RRSIG of the {data.replace('_', ' ')} data expires "
                               f"at {when} (in {expiry - now:.0f}s): re-sign it",
                               served=f"expiry {when}"))
    return out
