"""The axfr backend: zones pulled from a hidden primary (BIND, Knot, NSD, PowerDNS).

Seawall acts as a secondary (RFC 5936) that never stops answering:

* **Health probes**: every ``probe_interval`` an SOA query per zone (UDP,
  ``probe_timeout``, all zones at once on one socket: :mod:`.soaprobe`) tells
  whether the primary answers authoritatively; a dead or hung primary is
  noticed in seconds, not at the next refresh, however many zones it has. A
  probe that sees a serial different from ours starts a transfer at once, so
  a lost NOTIFY costs one probe interval.
* **Refresh**: the zone's SOA REFRESH timer (RETRY after a failure, or the
  ``refresh`` option for both) runs an SOA check and transfer on its own.
* **Transfers**: IXFR (RFC 1995) from the serial we hold, with a fallback to
  AXFR when the primary refuses IXFR or has no history; AXFR when we hold
  nothing or the serial went backwards (the guard then judges that).
* **NOTIFY** (RFC 1996): from the primary's address (or ``notify_from``) it
  triggers an immediate check; from anyone else it is REFUSED.
* **TSIG** (RFC 8945): with ``tsig`` configured, probes, transfers and NOTIFY
  are signed and checked; a bad signature is a failure (NOTIFY: NOTAUTH, with
  the TSIG error BADKEY, BADSIG or BADTIME, RFC 8945 §5.2).

Example::

    backends:
      - type: axfr
        primary: "127.0.0.1:5300"
        zones: [example.net]
        tsig: {name: xfr-key, algorithm: hmac-sha256, secret: "c2VjcmV0..."}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.xfr
import dns.zone

from ..config import BackendConfig, FailoverConfig, parse_listen
from ..dns.xfrwire import TSIG_ERRORS, check_tsig, tsig_error_response
from ..zones.model import build_zone
from ..zones.problems import Location
from ..zones.reader import Record
from ..zones.validate import check_records, check_zone
from .base import Backend, BackendFailure, Report, Version
from .soaprobe import ProbeError, probe_serials

log = logging.getLogger("seawall.backends.axfr")

SOA = dns.rdatatype.SOA
DEFAULT_REFRESH = 3600.0
MAX_READ_TIMEOUT = 5.0


class AxfrBackend(Backend):
    """The zones of one hidden primary."""

    kind = "axfr"
    remote = True

    def __init__(self, spec: BackendConfig, settings: FailoverConfig, *,
                 strict: bool = True) -> None:
        assert spec.primary is not None
        super().__init__(spec.primary)
        self.spec = spec
        self.strict = strict
        self.host, self.port = parse_listen(spec.primary)
        self.probe_timeout = float(settings.probe_timeout)
        self.transfer_timeout = float(spec.transfer_timeout)
        self.origins = [dns.name.from_text(z) for z in spec.zones]
        self.key: dns.tsig.Key | None = None
        if spec.tsig is not None:
            self.key = dns.tsig.Key(spec.tsig.name, spec.tsig.secret, spec.tsig.algorithm)
        self.notify_from = {self.host, *spec.notify_from}
        self.copies: dict[dns.name.Name, dns.zone.Zone] = {}   # our mirror of the primary
        self._locks = {origin: asyncio.Lock() for origin in self.origins}
        self._timers: list[asyncio.Task] = []
        self._kick: dict[dns.name.Name, asyncio.Event] = {}
        self.transfers: list[tuple[str, str, int]] = []   # (zone, "ixfr"|"axfr", serial)

    def declared_zones(self) -> Iterable[dns.name.Name]:
        return list(self.origins)

    # ------------------------------------------------------------ checks

    async def check(self, force: bool = False) -> list[Report]:
        """One probe round: every zone's SOA at once (one socket), then the transfers due."""
        serials = await probe_serials(self.origins, self.host, self.port, self.probe_timeout,
                                      self.key)
        return list(await asyncio.gather(*(self.look(o, force=force, probed=serials[o])
                                           for o in self.origins)))

    async def look(self, origin: dns.name.Name, *, force: bool = False,
                   kind: str = "probe", probed: int | ProbeError | None = None) -> Report:
        """An SOA query (or its ``probed`` outcome), and a transfer when the serial moved."""
        try:
            await self.faults.before_call(self.probe_timeout, origin)
            if isinstance(probed, ProbeError):
                raise BackendFailure(f"SOA query to {self.name}: {probed}")
            serial = probed if probed is not None else await self._soa(origin)
        except BackendFailure as exc:
            return Report(origin, False, error=str(exc), kind=kind, drill=exc.drill)
        version = None
        async with self._locks[origin]:
            copy = self.copies.get(origin)
            if force or copy is None or _serial_of(copy) != serial:
                try:
                    version = await self._transfer(origin, serial)
                except BackendFailure as exc:
                    return Report(origin, False, error=str(exc), kind="transfer")
                serial = version.serial if version.serial is not None else serial
            fault = self.faults.current
            if fault is not None and fault.kind in ("backend-corrupt", "backend-wipe"):
                mangled = self.faults.mangle(version or self._version(origin))
            else:
                mangled = None
        if mangled is not None:
            return Report(origin, True, tag=mangled.tag, version=mangled, kind=kind, drill=True)
        return Report(origin, True, tag=str(serial), version=version, kind=kind)

    async def _soa(self, origin: dns.name.Name) -> int:
        query = dns.message.make_query(origin, SOA)
        if self.key is not None:
            query.use_tsig(self.key)
        try:
            response = await asyncio.to_thread(dns.query.udp, query, self.host, self.probe_timeout,
                                               self.port)
        except dns.exception.Timeout:
            raise BackendFailure(f"SOA query to {self.name} timed out after "
                                 f"{self.probe_timeout:g}s") from None
        except (OSError, dns.exception.DNSException) as exc:
            raise BackendFailure(f"SOA query to {self.name} failed: {_describe(exc)}") from None
        if response.rcode() != dns.rcode.NOERROR:
            raise BackendFailure(f"SOA query to {self.name}: {dns.rcode.to_text(response.rcode())}")
        if not response.flags & dns.flags.AA:
            raise BackendFailure(f"SOA query to {self.name}: answer is not authoritative")
        for rrset in response.answer:
            if rrset.rdtype == SOA and rrset.name == origin:
                return int(rrset[0].serial)
        raise BackendFailure(f"SOA query to {self.name}: no SOA for {origin} in the answer")

    async def _transfer(self, origin: dns.name.Name, serial: int) -> Version:
        copy = self.copies.get(origin)
        try:
            return await asyncio.to_thread(self._transfer_sync, origin, copy, serial)
        except BackendFailure:
            raise
        except Exception as exc:  # dnspython raises assorted errors on a bad transfer
            raise BackendFailure(f"transfer of {origin} from {self.name} failed: "
                                 f"{_describe(exc)}") from None

    def _transfer_sync(self, origin: dns.name.Name, copy: dns.zone.Zone | None,
                       serial: int) -> Version:
        """IXFR from our serial when it is behind, else (or when that fails) AXFR."""
        started = time.monotonic()
        ours = _serial_of(copy) if copy is not None else None
        if copy is not None and ours is not None and self.spec.ixfr and _serial_gt(serial, ours):
            work = _clone(copy)
            try:
                self._inbound(work, ours)
                how = "ixfr"
            except (dns.xfr.TransferError, dns.exception.FormError, dns.xfr.UseTCP) as exc:
                log.info("ixfr refused, falling back to axfr: zone=%s primary=%s reason=%s",
                         origin, self.name, _describe(exc))
                work, how = self._axfr(origin), "axfr"
            else:
                if _serial_of(work) == ours:
                    # Nothing came: an up-to-date answer to a serial we believed newer.
                    work, how = self._axfr(origin), "axfr"
        else:
            work, how = self._axfr(origin), "axfr"
        got = _serial_of(work)
        self.copies[origin] = work
        self.transfers.append((str(origin), how, got or 0))
        log.info("transferred: zone=%s how=%s serial=%s primary=%s seconds=%.3f",
                 origin, how, got, self.name, time.monotonic() - started)
        version = self._version(origin, how)
        assert version is not None
        return version

    def _axfr(self, origin: dns.name.Name) -> dns.zone.Zone:
        work = dns.zone.Zone(origin, relativize=False)
        self._inbound(work, None)
        return work

    def _inbound(self, work: dns.zone.Zone, serial: int | None) -> None:
        query, _ = dns.xfr.make_query(work, serial=serial, keyring=self.key)
        try:
            dns.query.inbound_xfr(self.host, work, query, port=self.port,
                                  timeout=min(self.transfer_timeout, MAX_READ_TIMEOUT),
                                  lifetime=self.transfer_timeout)
        except dns.exception.Timeout:
            raise BackendFailure(f"transfer of {work.origin} from {self.name} timed out") from None

    def _version(self, origin: dns.name.Name, how: str = "") -> Version | None:
        """The copy we hold, checked like a zone file and built."""
        copy = self.copies.get(origin)
        if copy is None:
            return None
        source = f"axfr:{self.name}" + (f" ({how})" if how else "")
        location = Location(source, 0)
        records = [Record(name, ttl, rdata, location)
                   for name, ttl, rdata in copy.iterate_rdatas()]
        problems = check_records(origin, records, source, strict=self.strict)
        zone = None
        if not any(p.is_error for p in problems):
            zone = build_zone(origin, records, source=source)
            problems += check_zone(zone, records)
            if any(p.is_error for p in problems):
                zone = None
        serial = _serial_of(copy)
        return Version(origin, zone, problems, str(serial), source,
                       soa_expire=zone.soa[0].expire if zone is not None else None)

    def forget(self, origin: dns.name.Name) -> None:
        """Transfer the zone in full at the next look."""
        self.copies.pop(origin, None)

    # ----------------------------------------------------- timers, NOTIFY

    async def start(self, sink) -> None:
        await super().start(sink)
        for origin in self.origins:
            self._kick[origin] = asyncio.Event()
            self._timers.append(asyncio.create_task(self._refresh_loop(origin)))

    async def stop(self) -> None:
        for task in self._timers:
            task.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        self._timers.clear()
        await super().stop()

    async def _refresh_loop(self, origin: dns.name.Name) -> None:
        """SOA REFRESH / RETRY (RFC 1035 §4.3.5), or at once on NOTIFY."""
        kick = self._kick[origin]
        failed = False
        while True:
            delay = self._timer(origin, retry=failed)
            try:
                await asyncio.wait_for(kick.wait(), timeout=delay)
                kind = "notify"
            except asyncio.TimeoutError:
                kind = "refresh"
            kick.clear()
            try:
                report = await self.look(origin, kind=kind)
            except Exception:
                log.exception("refresh crashed: zone=%s", origin)
                continue
            failed = not report.ok
            if self.sink is not None:
                await self.sink(report)

    def _timer(self, origin: dns.name.Name, *, retry: bool) -> float:
        if self.spec.refresh is not None:
            return float(self.spec.refresh)
        copy = self.copies.get(origin)
        soa = _soa_of(copy) if copy is not None else None
        if soa is None:
            return DEFAULT_REFRESH
        return float(soa.retry if retry else soa.refresh)

    def on_notify(self, query, client: object, wire: bytes | None) -> int | bytes:
        """RFC 1996 §3.7-3.11: acknowledge a NOTIFY from the primary and check at once."""
        origin = query.qname
        host = client[0] if isinstance(client, tuple) and client else None
        if host not in self.notify_from:
            log.warning("notify refused: zone=%s client=%s reason=not the primary", origin, client)
            return dns.rcode.REFUSED
        response: bytes | None = None
        if self.key is not None:
            # RFC 8945 §5.2: a TSIG that does not verify gets NOTAUTH with the TSIG
            # error (BADKEY, BADSIG, BADTIME), as transfers and signed queries do.
            keyring = {self.key.name: self.key}
            check = check_tsig(wire or b"", keyring)
            if check.request is None:
                log.warning("notify refused: zone=%s client=%s reason=tsig %s: %s", origin,
                            client, TSIG_ERRORS.get(check.error or 0, "FORMERR"), check.reason)
                if check.error is None or not wire:
                    return dns.rcode.NOTAUTH
                return tsig_error_response(wire, query.question_end, check, keyring)
            message = check.request
            if not message.had_tsig:
                log.warning("notify refused: zone=%s client=%s reason=not signed", origin, client)
                return dns.rcode.NOTAUTH
            reply = dns.message.make_response(message)
            reply.flags |= dns.flags.AA
            response = reply.to_wire()
        kick = self._kick.get(origin)
        log.info("notify: zone=%s client=%s", origin, client)
        if kick is not None:
            kick.set()
        return response if response is not None else dns.rcode.NOERROR


def _soa_of(zone: dns.zone.Zone):
    assert zone.origin is not None
    rdataset = zone.get_rdataset(zone.origin, SOA)
    return rdataset[0] if rdataset else None


def _serial_of(zone: dns.zone.Zone) -> int | None:
    soa = _soa_of(zone)
    return int(soa.serial) if soa is not None else None


def _serial_gt(a: int, b: int) -> bool:
    return a != b and ((a - b) % 2**32) < 2**31


def _clone(zone: dns.zone.Zone) -> dns.zone.Zone:
    """A copy to apply an IXFR to, so a failed one leaves ours untouched."""
    work = dns.zone.Zone(zone.origin, relativize=False)
    with work.writer() as txn:
        for name, ttl, rdata in zone.iterate_rdatas():
            txn.add(name, ttl, rdata)
    return work


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
