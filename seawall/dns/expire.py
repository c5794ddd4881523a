"""EDNS EXPIRE (RFC 7314): how long a copy of a zone taken from here stays good.

A secondary that refreshes or transfers from another secondary would
otherwise restart the zone's SOA EXPIRE timer from that moment, however
long ago the data left the primary. With the option, each hop passes on
the time that is really left:

* **Query** (RFC 7314): an EXPIRE option (code 9) in the OPT record,
  empty. ``query.parse_query`` notes it as ``Query.expire``.
* **Response**: the same option with 4 octets, the seconds left.
  A primary sends its SOA EXPIRE field; a secondary sends the time
  left before its copy expires. Which one Seawall is for a zone,
  and what a stale or emergency zone sends, is decided with the failover
  state (:mod:`seawall.failover.expiry`); without it (a bare responder)
  Seawall is the primary of what it serves.
* **Which answers** (the option is only sent when asked for; a
  secondary reads it from its refresh query and its transfers): the
  answer to an SOA query for the apex of a served zone (the refresh query
  of RFC 1034 §4.3.5) when it is authoritative (AA, NOERROR), and every
  message of an AXFR or IXFR response that carries an OPT record (the
  first one is what counts; Knot DNS sends it in each, and so do we). No
  other answer gets it, so every other answer is the same whatever
  options the query carries. BIND 9 (by the RFC's author) answers the
  same way as a primary; Knot DNS also adds it to every other answer
  from the zone (NXDOMAIN, A...), which no secondary reads.

The option is added to the rendered response, after the answer tables and
the fast path have taken what they keep (they never hold a response with
an option, and a query with one never matches what they hold: the answer
cache is keyed by the query's bytes, OPT included, and the answer tables
serve only queries whose OPT has no options). If the 8 more octets would
not fit the client's size limit, the option is left out (as Knot DNS does)
rather than truncating an answer that fits.

Example::

    >>> option(3600).hex()
    '0009000400000e10'
"""

from __future__ import annotations

from collections.abc import Callable

from ..zones.model import Zone

OPTION_CODE = 9
MAX_SECONDS = 0xFFFFFFFF          # the field is 32 bits, unsigned
OPT_TYPE = b"\x00\x29"

ExpireSource = Callable[[Zone], int]
"""The seconds to send for a served zone (see :mod:`seawall.failover.expiry`)."""


def soa_expire(zone: Zone) -> int:
    """What a primary sends (RFC 7314): the SOA EXPIRE field of the served zone."""
    return int(zone.soa[0].expire)


def option(seconds: int) -> bytes:
    """The option as it goes in a response's OPT rdata: code, length 4, seconds."""
    value = min(max(int(seconds), 0), MAX_SECONDS)
    return b"\x00\x09\x00\x04" + value.to_bytes(4, "big")


def add_to_response(response: bytes, seconds: int, limit: int) -> bytes:
    """``response`` with the option in its OPT record, or unchanged if it does not fit.

    The responder's OPT is the last record of its responses and carries no
    option (``render.add_opt``): its RDLENGTH is the last two octets. A
    response without one (the query had no EDNS) is returned as it is.
    """
    if len(response) < 23 or response[-11:-8] != b"\x00" + OPT_TYPE \
            or response[-2:] != b"\x00\x00":
        return response
    extra = option(seconds)
    if len(response) + len(extra) > limit:
        return response
    return response[:-2] + len(extra).to_bytes(2, "big") + extra


__all__ = ["ExpireSource", "OPTION_CODE", "add_to_response", "option", "soa_expire"]
