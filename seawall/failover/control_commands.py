"""The control channel's commands: what each request does to the running server.

:class:`Commands` answers one parsed, verified request (``control.py`` reads,
bounds and authenticates it): ``status`` (with ``watch_now``: a round of the
domain security watch first), ``force``, ``release``, ``accept``,
``remove``, ``history``, ``reload`` and the drills. Answers are the JSON
objects of the wire protocol (``control_wire.py``); a request that cannot
be carried out raises :class:`~seawall.failover.controller.ControlError`,
which the channel turns into an error answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import dns.exception
import dns.name

from .control_wire import PROTOCOL
from .controller import ControlError

log = logging.getLogger("seawall.control")

HISTORY_LIMIT = 10_000     # events returned by one history request at most
SWITCHING = ("force", "release", "accept", "remove")   # commands that change what is served
SETTLE_TIMEOUT = 10.0      # seconds a switching command waits for the workers to serve it
WATCH_NOW_TIMEOUT = 50.0   # seconds ``status --watch-now`` waits for its round (the client waits 60)


class Commands:
    """The commands of one running server: ``app`` is its :class:`seawall.app.App`,
    ``drills`` its drill manager, ``listen_addresses`` where it answers DNS."""

    def __init__(self, app: Any, drills: Any,
                 listen_addresses: Callable[[], list[dict[str, Any]]]) -> None:
        self.app = app
        self.drills = drills
        self.listen_addresses = listen_addresses

    async def handle(self, command: str, request: dict[str, Any], who: str) -> dict[str, Any]:
        service = self.app.failover
        controller = service.controller
        if command == "status":
            watch = getattr(self.app, "watch", None)   # the domain security watch, if on
            if request.get("watch_now"):
                if watch is None:
                    raise ControlError("this server runs no watch: configure watch.root_hints, "
                                       "watch.parents or watch.peers")
                try:
                    await watch.round_now(WATCH_NOW_TIMEOUT)
                except TimeoutError:
                    raise ControlError(f"the watch round did not end within "
                                       f"{WATCH_NOW_TIMEOUT:g}s") from None
            status = service.status()
            if watch is not None:
                status["watch"] = watch.status()
            health = getattr(self.app, "health", None)   # health-checked answers
            if health is not None:
                status["health"] = health.status()
            fleet = getattr(self.app, "fleet", None)     # the fleet on etcd, if joined
            if fleet is not None:
                status["fleet"] = fleet.summary()
            return ok_answer(status=status, listen=self.listen_addresses(),
                       drill=self.drills.summary())
        if command == "force":
            reason = str(request.get("reason") or "").strip()
            if not reason:
                raise ControlError("force needs a reason")
            duration = request.get("for")
            until = time.time() + float(duration) if duration else None
            zones = controller.force(str(request.get("mode")), zones_of(request), reason,
                                     until=until, by=f"operator {who}")
            log.info("forced: mode=%s zones=%s by=%s until=%s reason=%s", request.get("mode"),
                     ",".join(zones), who, until, reason)
            return ok_answer(zones=zones, until=until)
        if command == "release":
            zones = controller.release(zones_of(request), by=f"operator {who}")
            return ok_answer(zones=zones)
        if command == "accept":
            zone = request.get("zone")
            if not zone:
                raise ControlError("accept needs a zone")
            serial = controller.accept(str(zone), by=f"operator {who}")
            return ok_answer(zone=normal_zone(str(zone)), serial=serial)
        if command == "remove":
            zone = request.get("zone")
            if not zone:
                raise ControlError("remove needs a zone")
            removed = service.remove_zone(str(zone), by=f"operator {who}")
            return ok_answer(zone=removed)
        if command == "history":
            since = request.get("since")
            zone = request.get("zone")
            events = await asyncio.to_thread(
                service.store.read_events, since=float(since) if since is not None else None,
                zone=normal_zone(str(zone)) if zone else None)
            limit = min(int(request.get("limit") or HISTORY_LIMIT), HISTORY_LIMIT)
            return ok_answer(events=events[-limit:], total=len(events))
        if command == "reload":
            self.app.reload()
            log.info("reload requested: by=%s", who)
            return ok_answer()
        if command == "drill-start":
            return ok_answer(**self.drills.start(request, who))
        if command == "drill-status":
            return ok_answer(drill=self.drills.status(request.get("id"),
                                                 int(request.get("events_from") or 0)))
        if command == "drill-stop":
            return ok_answer(drill=await self.drills.stop_drill(request.get("id"), who))
        raise ControlError(f"unknown command {command!r}")


SWITCHING = ("force", "release", "accept", "remove")   # commands that change what is served
SETTLE_TIMEOUT = 10.0   # seconds a switching command waits for the workers to serve it
WATCH_NOW_TIMEOUT = 50.0   # seconds ``status --watch-now`` waits for its round (the client waits 60)


def ok_answer(**fields: Any) -> dict[str, Any]:
    return {"version": PROTOCOL, "ok": True, **fields}


def error_answer(message: str) -> dict[str, Any]:
    return {"version": PROTOCOL, "ok": False, "error": message}


def normal_zone(zone: str) -> str:
    try:
        return dns.name.from_text(zone).to_text()
    except dns.exception.DNSException as exc:
        raise ControlError(f"bad zone name {zone!r}: {exc}") from None


def zones_of(request: dict[str, Any]) -> list[str] | None:
    """The request's zones; None (every zone) only when ``all`` is said explicitly."""
    zones = request.get("zones")
    if zones is None:
        if request.get("all"):
            return None
        raise ControlError("name the zones, or say all")
    if not isinstance(zones, list) or not zones:
        raise ControlError("zones must be a non-empty list")
    return [str(z) for z in zones]
