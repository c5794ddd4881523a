"""``seawall watch``: one round of the domain security watch, now, from here.

Asks the parent's servers (from the configuration's ``watch`` section, or
``--root-hint`` / ``--parent``), the nameservers they list and the peers
about every zone the running server serves, and compares what they say with
what the server answers (asked over DNS at its first listen address, or
``--server``)::

    seawall watch [--config seawall.yaml] [--zone example.com] [--json]
                  [--server HOST:PORT] [--root-hint HOST:PORT | --parent HOST:PORT]

Exit codes: 0 no finding; 1 findings (printed); 2 refused (no watch
configured and no hints given, server not reachable, bad arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from ..config import WatchConfig, load_config
from ..errors import SeawallError
from ..watch.ask import Server, Unanswered
from ..watch.findings import Finding
from ..watch.round import Watcher
from ..watch.served import served_from_server


def register(commands: argparse._SubParsersAction) -> None:
    from .failover import connection_options
    cmd = commands.add_parser("watch", parents=[connection_options()],
                              help="check delegation, DS, lame servers and peers now",
                              description="One round of the domain security watch against "
                                          "the running server's zones; prints the findings.")
    cmd.add_argument("--zone", action="append", help="a zone (repeatable; default: every "
                                                     "zone the server serves)")
    cmd.add_argument("--server", metavar="HOST:PORT",
                     help="ask this server what it serves (default: its first listen address)")
    cmd.add_argument("--root-hint", action="append", metavar="HOST:PORT",
                     help="a root server to start from (instead of watch.root_hints)")
    cmd.add_argument("--parent", action="append", metavar="HOST:PORT",
                     help="a parent server to ask directly (instead of watch.parents)")
    cmd.add_argument("--json", action="store_true", help="JSON for scripts")
    cmd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else load_config(None)
    settings = config.watch
    if args.root_hint or args.parent:
        settings = dataclasses.replace(settings, root_hints=tuple(args.root_hint or ()),
                                       parents=tuple(args.parent or ()))
    settings.validate()
    if not settings.enabled:
        raise SeawallError("nothing to watch: configure watch.root_hints, watch.parents or "
                           "watch.peers, or give --root-hint / --parent")
    zones = args.zone or _served_zones(args)
    server = Server.parse(args.server or config.listen[0])
    if server.host in ("0.0.0.0", ""):
        server = Server("127.0.0.1", server.port)
    findings, took = asyncio.run(_round(settings, server, zones))
    if args.json:
        print(json.dumps({"findings": [f.to_json() for f in findings], "took": took},
                         indent=1, sort_keys=True))
    else:
        for finding in findings:
            print(f"{finding.zone} {finding.severity} {finding.text()}")
        print(f"{len(findings)} finding(s) for {len(zones)} zone(s) in {took:.1f}s")
    return 1 if findings else 0


def _served_zones(args: argparse.Namespace) -> list[str]:
    from .failover import client_for
    answer = client_for(args).call("status")
    return [z["zone"] for z in answer["status"].get("zones", []) if z.get("state")]


async def _round(settings: WatchConfig, server: Server,
                 zones: list[str]) -> tuple[list[Finding], float]:
    started = time.monotonic()
    watcher = Watcher(settings)
    findings: list[Finding] = []
    for zone in zones:
        try:
            origin = dns.name.from_text(zone)
        except dns.exception.DNSException as exc:
            raise SeawallError(f"bad zone name {zone!r}: {exc}") from None
        try:
            served = await served_from_server(server, origin, float(settings.timeout))
        except Unanswered as exc:
            raise SeawallError(f"cannot ask the server what it serves: {exc}") from None
        findings += (await watcher.zone(served)).findings
    return findings, time.monotonic() - started


# ------------------------------------------------------------- formatting

def _in(seconds: float | None) -> str:
    from .failover import _age
    return _age(seconds)


def format_watch(watch: dict[str, Any]) -> str:
    """The watch's lines in ``seawall failover status``."""
    from .failover import _clock
    took = watch.get("last_round_took")
    lines = [f"Watch: {watch.get('rounds', 0)} round(s), every {_in(watch.get('interval'))}"
             + (f", last at {_clock(watch['last_round'])} ({took:.1f}s)"
                if watch.get("last_round") else ", none yet")]
    now = time.time()
    for zone, info in sorted((watch.get("zones") or {}).items()):
        sigs = info.get("signatures") or {}
        deadlines = ", ".join(f"{k.replace('_', ' ')} {_in(v - now)}"
                              for k, v in sigs.items() if v is not None)
        parent = info.get("parent") or "-"
        servers = len(info.get("parent_servers") or [])
        findings = info.get("findings") or []
        line = f"  {zone} parent {parent} ({servers} server(s)): "
        line += f"{len(findings)} finding(s)" if findings else "ok"
        if deadlines:
            line += f"; RRSIG expiry: {deadlines}"
        lines.append(line)
        for peer in info.get("peers") or []:
            lag = f", lagging {_in(peer['lag'])}" if peer.get("lag") else ""
            lines.append(f"    peer {peer['peer']}: serial {peer.get('serial')}{lag}")
        for f in findings:
            where = f" [{f['server']}]" if f.get("server") else ""
            said = f" (world: {f.get('world') or '-'}; Seawall: {f.get('served') or '-'})" \
                if f.get("world") or f.get("served") else ""
            lines.append(f"    {f['severity'].upper()} {f['kind']}{where} for "
                         f"{_in(f.get('for'))}: {f['detail']}{said}")
    return "\n".join(lines)
