"""One round of the watch for one zone: the parent's delegation, lame servers, peers.

Shared by the server's loop (:mod:`.service`) and ``seawall watch``: both
hand it a :class:`~.served.Served` view and get back a :class:`ZoneRound`
with the findings and what the parent said.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import dns.name

from ..config import WatchConfig
from .ask import Server, Unanswered
from .findings import PARENT_UNREACHABLE, Finding
from .lame import lame_check
from .parent import Delegation, Walker, compare, delegations, ds_tuples
from .peers import PeerWatch
from .served import DsTuple, Served


@dataclass
class ZoneRound:
    """What one round found out about one zone."""

    zone: str
    findings: list[Finding] = field(default_factory=list)
    parent: str | None = None                   # the parent zone's name, when walked
    parent_servers: list[str] = field(default_factory=list)
    seen: list[Delegation] = field(default_factory=list)
    ds: set[DsTuple] | None = None              # the parent's DS now (None: nobody answered)
    ds_ttl: int = 0
    took: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"parent": self.parent, "parent_servers": self.parent_servers,
                "delegation": {str(d.server): d.summary() for d in self.seen},
                "took": round(self.took, 3)}


class Watcher:
    """The checks of one round, without a loop or a server around them."""

    def __init__(self, settings: WatchConfig) -> None:
        self.settings = settings
        self.timeout = float(settings.timeout)
        self.roots = [Server.parse(a) for a in settings.root_hints]
        self.parents = [Server.parse(a) for a in settings.parents]
        self.walker = Walker(self.roots, settings.port, self.timeout)
        self.peers = PeerWatch(settings.peers, self.timeout, float(settings.drift_after))

    @property
    def watches_parent(self) -> bool:
        return bool(self.roots or self.parents)

    async def zone(self, served: Served) -> ZoneRound:
        started = time.monotonic()
        out = ZoneRound(served.origin.to_text())
        if self.watches_parent:
            await self._parent(served, out)
        out.findings += await self.peers.check(served)
        out.took = time.monotonic() - started
        return out

    async def _parent(self, served: Served, out: ZoneRound) -> None:
        origin = served.origin
        if self.parents:
            servers = self.parents
        else:
            try:
                cut, servers = await self.walker.parent_servers(origin)
                out.parent = cut.to_text()
            except Unanswered as exc:
                out.findings.append(Finding(out.zone, PARENT_UNREACHABLE, "",
                                            f"the parent's servers cannot be found from the "
                                            f"root hints: {exc}"))
                return
        out.parent_servers = [str(s) for s in servers]
        out.seen = await delegations(servers, origin, self.timeout)
        out.findings += compare(served, out.seen)
        answered = [d for d in out.seen if d.error is None]
        if answered:
            out.ds = set()
            for d in answered:
                out.ds |= ds_tuples(served, d.ds)
                out.ds_ttl = max(out.ds_ttl, d.ds_ttl)
        if self.settings.lame:
            out.findings += await lame_check(origin, await self._nameservers(served, answered),
                                             self.settings.port, self.timeout)

    async def _nameservers(self, served: Served,
                           answered: list[Delegation]) -> dict[dns.name.Name, frozenset[str]]:
        """Every nameserver the parent or Seawall lists, with every address known for it."""
        found: dict[dns.name.Name, set[str]] = {}
        for name in served.ns:
            found.setdefault(name, set()).update(served.addresses(name))
        for d in answered:
            for name in d.ns:
                found.setdefault(name, set()).update(d.glue.get(name, frozenset()))
        for name, addresses in found.items():
            if not addresses and not name.is_subdomain(served.origin):
                addresses.update(await self.walker.addresses(name))
        return {n: frozenset(a) for n, a in found.items() if a}
