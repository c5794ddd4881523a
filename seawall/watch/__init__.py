"""The domain security watch: the zone the way the world sees it.

The parent's delegation (NS, glue, DS) asked of every parent server,
nameservers that do not answer with authority, secondaries and other
providers serving another serial or other data, signatures as deadlines.
Findings are events, metrics and status lines (DESIGN.md, "The watch").

* :mod:`.ask` — one question to one server,
* :mod:`.served` — what Seawall serves, in the terms compared,
* :mod:`.parent` — finding the parent's servers, asking them, comparing,
* :mod:`.lame` — nameservers that do not answer with authority,
* :mod:`.peers` — secondaries and other providers (SOA, digest, lag),
* :mod:`.trust` — the parent's DS kept within its TTL, for the guard,
* :mod:`.deadlines` — RRSIG expiry of live, last good and emergency data,
* :mod:`.findings` — the finding model and the standing findings,
* :mod:`.round` — one round for one zone,
* :mod:`.service` — the loop run by the server.
"""

from .findings import KINDS, Finding
from .service import WatchService

__all__ = ["KINDS", "Finding", "WatchService"]
