"""A server in a fleet: publish its state, follow the operator, vote, fence.

Every ``POLL_EVERY`` the server reads the fleet's keys in one request
(:mod:`.view`), then, in this order:

1. keeps its lease (granted with ``lease_ttl``, renewed every third of it;
   a lapsed one is granted anew: a server rejoins without a restart);
2. follows orders it has not seen yet (``intent/ZONE``: force or release;
   ``accept/ZONE``) through the controller, as an operator's order on this
   server would, and once the workers serve the change reports it under
   ``orders`` in its member key;
3. gives every version its controller accepted a fleet-wide epoch
   (``epoch/ZONE``, ``version/ZONE/FP``, one compare-and-put);
4. publishes its report (``members/NAME``, under the lease) when it changed,
   and at least every ``PUBLISH_EVERY``; the report names the member's
   control channel (its socket, its signed TCP listener), where
   ``seawall failover drill --fleet`` starts a drill on it.

The controller asks two questions (its hooks): ``emergency_vote``, before
leaving last good data for emergency because of backend failures (quorum,
:func:`.view.vote`), and ``version_fence``, for every version the guard
accepts (older than the fleet's newest? :func:`.view.fence`).

Static stability (DESIGN principle 1): etcd is never on the answer path.
Every request has a deadline (``timeout``); when etcd is unreachable, slow
or split, nothing served changes because of it. Orders already followed
stay in force (the controller keeps them, across restarts too); for
``grace`` after the last contact the votes and the fence use the last
known view; after that both answer None and the server decides alone,
reporting the fleet as ``alone``. Back in contact it takes a new lease if
its own lapsed, publishes, and follows what it missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from typing import Any

import dns.exception
import dns.name

from .. import __version__
from ..backends.base import Version
from ..config import FleetConfig
from ..failover.controller import ControlError, Mode
from ..safefiles import write_atomic
from ..zones.model import Zone
from .etcd import EtcdClient, EtcdError
from .view import PREFIX, FleetView, failing_members, fence, fingerprint, key, vote

log = logging.getLogger("seawall.fleet")

POLL_EVERY = 0.25        # seconds between reads of the fleet's keys
PUBLISH_EVERY = 1.0      # the member key is written at least this often
LAST_EVERY = 5.0         # ... and last/NAME (no lease) this often
LOCAL_EVERY = 5.0        # state_dir/fleet.json (this server's view) this often
ACCEPT_WINDOW = 60.0     # an accept order older than this is not followed any more
ORDERS_KEPT = 20         # order outcomes kept in the member key
SETTLE_TIMEOUT = 10.0    # an order is reported failed when the workers do not serve it by then
FENCE_INLINE_RRSETS = 20_000   # larger versions are fenced by serial (fingerprint: ~1 s/100k)

STATES = ("joining", "joined", "unreachable", "alone")


class FleetService:
    """This server's membership of a fleet (one per process, in the supervisor)."""

    def __init__(self, app: Any, settings: FleetConfig) -> None:
        self.app = app
        self.settings = settings
        self.name = settings.name or socket.gethostname()
        self.client = EtcdClient(settings.etcd, float(settings.timeout))
        self.view = FleetView()
        self.state = "joining"
        self.error: str | None = None
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.since = self.started_wall          # wall time the state was entered
        self.contact: float | None = None       # monotonic time of the last good poll
        self.lease: int | None = None
        self.renewed = 0.0
        self.applied: set[str] = set()          # order ids followed (or refused) here
        self.orders: dict[str, dict[str, Any]] = {}
        self.votes: dict[str, str] = {}         # zone -> why emergency is held back now
        self.epochs_seen: dict[dns.name.Name, str] = {}   # origin -> fingerprint recorded
        self._fps: dict[int, tuple[Zone, str]] = {}       # id(zone) -> (zone, fingerprint)
        self._published: str | None = None
        self._published_at = 0.0
        self._last_at = 0.0
        self._local_at = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._pending: set[asyncio.Task] = set()

    @property
    def controller(self) -> Any:
        return self.app.failover.controller

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Install the hooks and start following the fleet; etcd need not answer."""
        self.controller.emergency_vote = self.emergency_vote
        self.controller.version_fence = self.version_fence
        self._task = asyncio.create_task(self._run())
        log.info("fleet: name=%s etcd=%s quorum=%s grace=%gs", self.name,
                 ",".join(self.settings.etcd), self.settings.quorum or "majority",
                 float(self.settings.grace))

    async def stop(self) -> None:
        self.controller.emergency_vote = None
        self.controller.version_fence = None
        tasks = [t for t in [self._task, *self._pending] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.state != "joined":
            return
        # Leave in good order: say so, and give the lease back (its key goes with it).
        report = self.report()
        report["stopped"] = True
        try:
            await self.client.put(key("last", self.name), _dump(report))
            if self.lease is not None:
                await self.client.revoke(self.lease)
        except EtcdError as exc:
            log.info("fleet: left without saying so: reason=%s", exc)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._round()
            except EtcdError as exc:
                self._lost(str(exc))
            except Exception:   # never let the fleet stop the server
                log.exception("fleet: round failed")
            self._write_local()
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_EVERY)
            except asyncio.TimeoutError:
                pass

    async def _round(self) -> None:
        kvs, revision = await self.client.get_prefix(PREFIX)
        before = self.view
        self.view = FleetView.parse(kvs, revision)
        self._reached()
        await self._keep_lease()
        self._follow()
        await self._record_epochs()
        await self._publish()
        if self._failing(before) != self._failing(self.view):
            self.controller.tick()   # a quorum may be reached now: decide at once

    # ------------------------------------------------------- reachability

    def _reached(self) -> None:
        self.contact = time.monotonic()
        self.error = None
        if self.state != "joined":
            log.info("fleet: %s: name=%s members=%d", "joined" if self.state == "joining"
                     else "in contact again", self.name, len(self.view.members))
            self._enter("joined")

    def _lost(self, error: str) -> None:
        self.error = error
        last = self.contact if self.contact is not None else self.started
        alone = time.monotonic() - last >= float(self.settings.grace)
        if alone and self.state != "alone":
            log.warning("fleet: etcd unreachable for %.0fs (grace=%gs): deciding alone; "
                        "reason=%s", time.monotonic() - last, float(self.settings.grace), error)
            self._enter("alone")
        elif not alone and self.state in ("joined", "joining"):
            log.warning("fleet: etcd unreachable: keeping the last known intent and view "
                        "for grace=%gs; reason=%s", float(self.settings.grace), error)
            self._enter("unreachable")

    def _enter(self, state: str) -> None:
        self.state = state
        self.since = time.time()
        self._local_at = 0.0

    def deciding(self) -> bool:
        """Does the fleet's view count? In contact, or out of it for less than grace."""
        if self.state == "joined":
            return True
        last = self.contact if self.contact is not None else self.started
        return time.monotonic() - last < float(self.settings.grace)

    async def _keep_lease(self) -> None:
        now = time.monotonic()
        ttl = float(self.settings.lease_ttl)
        if self.lease is not None and now - self.renewed < ttl / 3:
            return
        if self.lease is not None and await self.client.keepalive(self.lease) > 0:
            self.renewed = now
            return
        if self.lease is not None:
            log.warning("fleet: lease lapsed; joining again: name=%s", self.name)
        self.lease = await self.client.grant(ttl)
        self.renewed = now
        self._published = None   # the member key went with the old lease

    # -------------------------------------------------------------- hooks

    def emergency_vote(self, origin: dns.name.Name) -> str | None:
        """The controller's question before an automatic switch to emergency."""
        zone = origin.to_text()
        if not self.deciding():
            self.votes.pop(zone, None)
            return None
        st = self.controller.zones.get(origin)
        i_fail = st is not None and st.failures >= self.controller.settings.fail_after
        why = vote(self.view, origin, self.name, i_fail, self.settings.quorum)
        if why is None:
            self.votes.pop(zone, None)
        else:
            self.votes[zone] = why
        return why

    def version_fence(self, origin: dns.name.Name, version: Version) -> str | None:
        """The controller's question for every version the guard accepts.

        The content fingerprint is computed here, on the event loop, only for
        zones up to FENCE_INLINE_RRSETS (about 0.2 s at that size); a larger
        version is fenced by its serial, and fingerprinted off the loop once
        taken (the epoch it gets, and status, then show what it is).
        """
        zone = version.zone
        if zone is None or not self.deciding():
            return None
        cached = self._fps.get(id(zone))
        if cached is not None and cached[0] is zone:
            fp: str | None = cached[1]
        elif zone.rrset_count <= FENCE_INLINE_RRSETS:
            fp = self.fingerprint(zone)
        else:
            fp = None
        return fence(self.view, origin, fp, version.serial, version.serial_ordered)

    def fingerprint(self, zone: Zone) -> str:
        cached = self._fps.get(id(zone))
        if cached is not None and cached[0] is zone:
            return cached[1]
        fp = fingerprint(zone)
        self._fps[id(zone)] = (zone, fp)
        return fp

    async def _fingerprints(self) -> None:
        """Fingerprint, off the event loop, what is served and last good (new ones only)."""
        zones = []
        for st in self.controller.zones.values():
            for zone in (st.served, st.good.zone if st.good is not None else None):
                if zone is not None and self._fps.get(id(zone), (None,))[0] is not zone:
                    zones.append(zone)
        if zones:
            done = await asyncio.to_thread(lambda: [(z, fingerprint(z)) for z in zones])
            for zone, fp in done:
                self._fps[id(zone)] = (zone, fp)
        keep = set()
        for st in self.controller.zones.values():
            keep.update(id(z) for z in (st.served, st.emergency, st.good.zone
                                        if st.good is not None else None) if z is not None)
        for zid in [z for z in self._fps if z not in keep]:
            del self._fps[zid]

    # ------------------------------------------------------------- orders

    def _follow(self) -> None:
        """Carry out the orders not followed yet, grouped by order id."""
        groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for kind, orders in (("intent", self.view.intents), ("accept", self.view.accepts)):
            for zone, order in orders.items():
                oid = str(order.get("id") or "")
                if oid and oid not in self.applied:
                    groups.setdefault(oid, []).append((kind, zone, order))
        for oid, items in groups.items():
            self.applied.add(oid)
            done, notes, errors = [], [], []
            for kind, zone, order in items:
                try:
                    note = self._carry_out(kind, zone, order, oid)
                except (ControlError, ValueError, KeyError, dns.exception.DNSException) as exc:
                    errors.append(f"{zone}: {exc}")
                    continue
                (notes if note else done).append(note or zone)
            at = float(items[0][2].get("at") or time.time())
            task = asyncio.create_task(self._report_order(oid, at, done, notes, errors))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _carry_out(self, kind: str, zone: str, order: dict[str, Any], oid: str) -> str | None:
        """One zone of an order; a note when there was nothing to do here."""
        controller = self.controller
        origin = dns.name.from_text(zone)
        st = controller.zones.get(origin)
        if st is None:
            return f"{zone}: not served here"
        by = f"{order.get('by') or 'operator'} (fleet order {oid})"
        at = float(order.get("at") or 0)
        override = st.override
        if kind == "accept":
            if time.time() - at > ACCEPT_WINDOW:
                return f"{zone}: accept order older than {ACCEPT_WINDOW:g}s, not followed"
            if st.held is None:
                return f"{zone}: nothing held"
            serial = controller.accept(zone, by=by)
            log.info("fleet: accepted: zone=%s serial=%d order=%s", zone, serial, oid)
            return None
        action = order.get("action")
        if override is not None and override.by == by:
            return None                                   # followed before a restart
        if override is not None and override.at > at:
            return f"{zone}: a newer order given here stands ({override.by})"
        if action == "release":
            if override is None:
                return None
            controller.release([zone], by=by, reason=f"released by the fleet ({order.get('by')})")
            log.info("fleet: released: zone=%s order=%s", zone, oid)
            return None
        if action != "force":
            raise ValueError(f"unknown action {action!r}")
        until = order.get("until")
        if until is not None and float(until) <= time.time():
            return f"{zone}: the order expired"
        controller.force(str(order.get("mode")), [zone], str(order.get("reason") or "fleet"),
                         until=float(until) if until is not None else None, by=by)
        log.info("fleet: forced: zone=%s mode=%s order=%s", zone, order.get("mode"), oid)
        return None

    async def _report_order(self, oid: str, at: float, done: list[str], notes: list[str],
                            errors: list[str]) -> None:
        served = True
        if done and not errors:
            served = await self.app.settled(SETTLE_TIMEOUT)
            if not served:
                errors.append(f"the workers did not serve it within {SETTLE_TIMEOUT:g}s")
        now = time.time()
        self.orders[oid] = {"ok": not errors, "served_at": now if served else None,
                            "took": round(now - at, 3), "zones": done, "notes": notes,
                            "errors": errors}
        while len(self.orders) > ORDERS_KEPT:
            del self.orders[next(iter(self.orders))]
        self._wake.set()

    # ------------------------------------------------------------- epochs

    async def _record_epochs(self) -> None:
        """Give each version taken here its fleet-wide epoch, if nobody did yet."""
        await self._fingerprints()
        for origin, st in list(self.controller.zones.items()):
            good = st.good
            if good is None:
                continue
            fp = self.fingerprint(good.zone)
            if self.epochs_seen.get(origin) == fp:
                continue
            zone = origin.to_text()
            newest = self.view.epochs.get(zone)
            known = self.view.versions.get(zone, {}).get(fp)
            by_operator = (st.last_event or {}).get("cause") == "operator"
            if newest is not None and (newest.get("fingerprint") == fp
                                       or (known is not None and not by_operator)):
                # The newest already, or older content served here (taken alone, or
                # before the fleet knew better): not made the newest again.
                self.epochs_seen[origin] = fp
                continue
            epoch = int(newest.get("epoch", 0)) + 1 if newest is not None else 1
            record = {"epoch": epoch, "fingerprint": fp, "serial": good.zone.serial,
                      "by": self.name, "at": time.time()}
            epoch_key = key("epoch", zone)
            if await self.client.put_if([(epoch_key, _dump(record)),
                                         (key("version", zone, fp), _dump(record))],
                                        [(epoch_key, self.view.revisions.get(epoch_key, 0))]):
                self.view.epochs[zone] = record
                self.view.versions.setdefault(zone, {})[fp] = record
                self.epochs_seen[origin] = fp
                log.info("fleet: epoch: zone=%s epoch=%d serial=%d fingerprint=%s", zone,
                         epoch, good.zone.serial, fp[:12])
            # else another member wrote first: the next poll shows what it wrote

    # ------------------------------------------------------------ reports

    def report(self) -> dict[str, Any]:
        """This member as the fleet sees it (members/NAME)."""
        controller = self.controller
        fail_after = controller.settings.fail_after
        zones: dict[str, Any] = {}
        for origin, st in sorted(controller.zones.items()):
            zone = origin.to_text()
            good = st.good
            served = self._fps.get(id(st.served)) if st.served is not None else None
            good_fp = self._fps.get(id(good.zone)) if good is not None else None
            known = self.view.versions.get(zone, {}).get(good_fp[1]) if good_fp else None
            override = st.override
            zones[zone] = {
                "state": st.served_mode.value if st.served_mode else None,
                "auto": st.mode.value if st.mode else None,
                "forced": {"mode": override.mode.value, "by": override.by,
                           "reason": override.reason,
                           "until": controller.wall_of(override.until)
                           if override.until is not None else None}
                if override is not None else None,
                "serial": st.served.serial if st.served is not None else None,
                "fingerprint": served[1] if served and served[0] is st.served else None,
                "good_serial": good.zone.serial if good is not None else None,
                "good_fingerprint": good_fp[1] if good_fp else None,
                "epoch": known.get("epoch") if known else None,
                "backend": st.backend,
                "healthy": st.mode is not None and st.mode.healthy,
                "failures": st.failures,
                "failing": st.failures >= fail_after,
                "last_error": st.last_error,
                "held": {"serial": st.held.version.serial, "reason": st.held.reason}
                if st.held is not None else None,
                "vote": self.votes.get(zone) if st.mode is Mode.STALE else None,
                "why": (st.last_event or {}).get("reason"),
            }
        server = getattr(self.app, "server", None)
        listen = [f"{b.host}:{b.port}" for b in getattr(server, "bound", [])
                  if getattr(b, "transport", "udp") == "udp"]
        control = getattr(self.app, "control", None)   # reached by `failover drill --fleet`
        return {"name": self.name, "version": __version__, "pid": os.getpid(),
                "host": socket.gethostname(), "listen": listen,
                "control": control.addresses() if control is not None else None,
                "started": self.started_wall,
                "time": time.time(),
                "fleet": {"state": self.state, "since": self.since, "error": self.error},
                "zones": zones, "orders": self.orders}

    async def _publish(self) -> None:
        report = self.report()
        body = {k: v for k, v in report.items() if k not in ("time", "fleet")}
        text = json.dumps(body, sort_keys=True, default=str)
        now = time.monotonic()
        if text != self._published or now - self._published_at >= PUBLISH_EVERY:
            await self.client.put(key("members", self.name), _dump(report), lease=self.lease)
            self._published, self._published_at = text, now
        if now - self._last_at >= LAST_EVERY:
            await self.client.put(key("last", self.name), _dump(report))
            self._last_at = now

    def _failing(self, view: FleetView) -> dict[str, list[str]]:
        return {origin.to_text(): failing_members(view, origin.to_text(), self.name)
                for origin in self.controller.zones}

    def summary(self) -> dict[str, Any]:
        """This server's view of the fleet (state_dir/fleet.json, seawall fleet status)."""
        return {"name": self.name, "state": self.state, "since": self.since,
                "error": self.error, "deciding": "fleet" if self.deciding() else "alone",
                "last_contact": time.time() - (time.monotonic() - self.contact)
                if self.contact is not None else None,
                "grace": float(self.settings.grace), "quorum": self.settings.quorum,
                "members": sorted(self.view.members), "votes": dict(self.votes),
                "time": time.time()}

    def _write_local(self) -> None:
        """Write this server's view where `seawall fleet status` finds it without etcd."""
        now = time.monotonic()
        if now - self._local_at < LOCAL_EVERY:
            return
        self._local_at = now
        path = self.app.config.path(self.app.config.state_dir) / "fleet.json"
        try:
            write_atomic(path, json.dumps(self.summary(), sort_keys=True).encode())
        except OSError as exc:   # a full or read-only state directory never stops serving
            log.debug("fleet: fleet.json not written: reason=%s", exc)


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, default=str).encode()
