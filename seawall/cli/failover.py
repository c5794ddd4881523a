"""``seawall failover``: drive a running server's failover, and rehearse disasters.

Every command talks to the server over its control channel (the Unix socket
``control.sock`` in the state directory, found from ``--state-dir`` or
``--config``, default ``.seawall``; or a signed TCP listener with
``--connect`` and ``--secret-file``)::

    seawall failover status [--json]
    seawall failover force emergency|live (--zone Z | --all) --reason TEXT [--for 30m]
    seawall failover release (--zone Z | --all)
    seawall failover accept --zone Z
    seawall failover force|release|accept ... --fleet [--etcd HOST:PORT] [--wait 10s]
    seawall failover remove --zone Z
    seawall failover history [--since 1h] [--zone Z] [--json]
    seawall failover drill --scenario backend-down [--zone Z | --all] [--duration 30s]
                           [--qps 200] [--report drill.md] [--dry-run] [--probe NAME/TYPE]
    seawall failover drill --scenario target-down --target ADDR [--duration 30s] ...
    seawall failover drill --scenario ... --fleet [--etcd HOST:PORT] [--secret-file F]

With ``--fleet`` the order goes to every server of the fleet through etcd
(seawall/fleet/orders.py) and the command waits for each live member; a
drill with ``--fleet`` runs on every live member at once, each started over
the control channel the member publishes in etcd (seawall/fleet/drill.py).

``--target`` names the target a ``target-down`` drill marks down (one of
the health-checked answers' addresses); it is required for that scenario
and refused for the others.

Exit codes: 0 done; 1 a drill missed an objective, or a fleet member did not follow; 2 refused (no server
running, bad arguments, the server said no), always as one line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from ..config import Duration, load_config
from ..errors import SeawallError
from ..failover.control_client import ControlClient

SCENARIOS = ("backend-down", "backend-hang", "backend-corrupt", "backend-wipe", "flap",
             "target-down")
TARGETED = ("target-down",)     # the scenarios that take --target


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line naming the problem, exit 2 (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def duration(text: str) -> float:
    try:
        value = float(Duration.parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def connection_options() -> argparse.ArgumentParser:
    """The options every command that talks to a server takes."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("which server")
    group.add_argument("--state-dir", type=Path,
                       help="the server's state directory (default: from --config, else .seawall)")
    group.add_argument("--config", type=Path, help="the server's configuration file")
    group.add_argument("--connect", metavar="HOST:PORT",
                       help="a signed TCP control listener instead of the Unix socket")
    group.add_argument("--secret-file", type=Path,
                       help="the shared secret for --connect (default: control.secret_file "
                            "of --config)")
    return parent


def register(commands: argparse._SubParsersAction) -> None:
    parent = connection_options()
    cmd = commands.add_parser("failover", help="status, force, release, accept, history, drill",
                              description="Drive the failover of a running server over its "
                                          "control channel, and rehearse disasters.")
    sub = cmd.add_subparsers(dest="action", metavar="ACTION", required=True,
                             parser_class=OneLineParser)

    status = sub.add_parser("status", parents=[parent], help="every zone's state and why")
    status.add_argument("--json", action="store_true", help="JSON for scripts")
    status.add_argument("--watch-now", action="store_true",
                        help="run a round of the domain security watch first (parent, "
                             "lame servers, peers, signatures), then show the status")
    status.set_defaults(run=run_status)

    force = sub.add_parser("force", parents=[parent],
                           help="force zones to emergency or live until released")
    force.add_argument("mode", choices=("emergency", "live"))
    _zone_choice(force)
    force.add_argument("--reason", required=True, help="why (kept in the event log)")
    force.add_argument("--for", dest="for_", type=duration, metavar="DURATION",
                       help="release by itself after this long (e.g. 30m)")
    _fleet_options(force)
    force.set_defaults(run=run_force)

    release = sub.add_parser("release", parents=[parent], help="back to automatic")
    _zone_choice(release)
    _fleet_options(release)
    release.set_defaults(run=run_release)

    accept = sub.add_parser("accept", parents=[parent],
                            help="serve the version the guard held back")
    accept.add_argument("--zone", required=True)
    _fleet_options(accept)
    accept.set_defaults(run=run_accept)

    remove = sub.add_parser("remove", parents=[parent],
                            help="drop a zone whose backend no longer has it, now")
    remove.add_argument("--zone", required=True)
    remove.set_defaults(run=run_remove)

    history = sub.add_parser("history", parents=[parent], help="failover events")
    history.add_argument("--since", type=duration, metavar="DURATION",
                         help="only events of the last DURATION (e.g. 1h)")
    history.add_argument("--zone")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.set_defaults(run=run_history)

    drill = sub.add_parser("drill", parents=[parent],
                           help="inject a backend fault, probe, measure, report")
    drill.add_argument("--scenario", required=True, choices=SCENARIOS)
    drill.add_argument("--target", metavar="ADDR",
                       help="target-down: the health-checked target to mark down")
    zones = drill.add_mutually_exclusive_group()
    zones.add_argument("--zone", action="append", help="a zone to drill (repeatable)")
    zones.add_argument("--all", action="store_true", help="every served zone (the default)")
    drill.add_argument("--duration", type=duration, default=30.0,
                       help="how long the fault lasts (default 30s)")
    drill.add_argument("--qps", type=positive_int, default=200,
                       help="probe queries per second, all probes together (default 200)")
    drill.add_argument("--report", type=Path,
                       help="write the report here (Markdown) and beside it .json and .svg")
    drill.add_argument("--dry-run", action="store_true",
                       help="print the plan, change nothing")
    drill.add_argument("--probe", action="append", metavar="NAME/TYPE",
                       help="probe this name (default: a few names of each zone)")
    drill.add_argument("--quiet", action="store_true", help="no live progress")
    fleet = drill.add_argument_group("the whole fleet (etcd)")
    fleet.add_argument("--fleet", action="store_true",
                       help="run the drill on every live member of the fleet at once")
    fleet.add_argument("--etcd", action="append", metavar="HOST:PORT",
                       help="an etcd member (repeatable; default: fleet.etcd of --config)")
    drill.set_defaults(run=run_drill, parser=drill)


def _zone_choice(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--zone", action="append", help="a zone (repeatable)")
    group.add_argument("--all", action="store_true", help="every zone")


def _fleet_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the whole fleet (etcd)")
    group.add_argument("--fleet", action="store_true",
                       help="give the order to every server of the fleet through etcd")
    group.add_argument("--etcd", action="append", metavar="HOST:PORT",
                       help="an etcd member (repeatable; default: fleet.etcd of --config)")
    group.add_argument("--wait", type=duration, default=10.0,
                       help="wait this long for every live member to serve it (default 10s)")


def _fleet_order(args: argparse.Namespace, kind: str, order: dict[str, Any]) -> int:
    """The order for every live member of the fleet; exit 1 when one did not follow."""
    from ..fleet.orders import run_order
    from .fleet import endpoints
    etcd, timeout = endpoints(args)
    zones = None if getattr(args, "all", False) else \
        (args.zone if isinstance(args.zone, list) else [args.zone])
    return run_order(etcd, kind, zones, order, args.wait, timeout)


# ------------------------------------------------------------- connecting

WATCH_NOW_WAIT = 60.0   # seconds the CLI waits for ``status --watch-now`` (the server gives up at 50)


def secret_for(args: argparse.Namespace) -> bytes | None:
    """The control channel's shared secret: --secret-file, else control.secret_file of
    --config; None when neither names one."""
    config = load_config(args.config) if getattr(args, "config", None) else None
    secret_path = args.secret_file
    if secret_path is None and config is not None and config.control.secret_file:
        secret_path = config.path(config.control.secret_file)
    if secret_path is None:
        return None
    try:
        return Path(secret_path).read_bytes().strip()
    except OSError as exc:
        raise SeawallError(f"cannot read the secret file {secret_path}: "
                           f"{exc.strerror}") from None


def client_for(args: argparse.Namespace, timeout: float = 10.0) -> ControlClient:
    config = load_config(args.config) if getattr(args, "config", None) else None
    if args.connect:
        secret = secret_for(args)
        if secret is None:
            raise SeawallError("--connect needs --secret-file (or --config with "
                               "control.secret_file)")
        return ControlClient(tcp=args.connect, secret=secret, timeout=timeout)
    if args.state_dir is not None:
        state_dir = args.state_dir
    elif config is not None:
        state_dir = config.path(config.state_dir)
    else:
        state_dir = Path(".seawall")
    return ControlClient(state_dir=state_dir, timeout=timeout)


def _zones(args: argparse.Namespace) -> dict[str, Any]:
    return {"zones": None, "all": True} if args.all else {"zones": args.zone}


# --------------------------------------------------------------- commands

def run_status(args: argparse.Namespace) -> int:
    if args.watch_now:
        # The server runs the round and answers when it has ended (at most 50 s).
        client = client_for(args, timeout=WATCH_NOW_WAIT)
        answer = client.call("status", watch_now=True)
    else:
        answer = client_for(args).call("status")
    if args.json:
        print(json.dumps({"status": answer["status"], "listen": answer.get("listen"),
                          "drill": answer.get("drill")}, indent=1, sort_keys=True))
        return 0
    print(format_status(answer["status"], answer.get("drill")))
    return 0


def run_force(args: argparse.Namespace) -> int:
    if args.fleet:
        until = time.time() + args.for_ if args.for_ else None
        return _fleet_order(args, "intent", {"action": "force", "mode": args.mode,
                                             "reason": args.reason, "until": until})
    answer = client_for(args).call("force", mode=args.mode, reason=args.reason,
                                   **{"for": args.for_}, **_zones(args))
    until = f" until {_clock(answer['until'])}" if answer.get("until") else " until released"
    print(f"forced {args.mode}{until}: {', '.join(answer['zones'])}")
    return 0


def run_release(args: argparse.Namespace) -> int:
    if args.fleet:
        return _fleet_order(args, "intent", {"action": "release"})
    answer = client_for(args).call("release", **_zones(args))
    zones = answer["zones"]
    print(f"released to automatic: {', '.join(zones)}" if zones else "nothing was forced")
    return 0


def run_accept(args: argparse.Namespace) -> int:
    if args.fleet:
        return _fleet_order(args, "accept", {})
    answer = client_for(args).call("accept", zone=args.zone)
    print(f"accepted: {answer['zone']} serial {answer['serial']} is served")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    answer = client_for(args).call("remove", zone=args.zone)
    print(f"removed: {answer['zone']} (its last good data is dropped)")
    return 0


def run_history(args: argparse.Namespace) -> int:
    since = time.time() - args.since if args.since else None
    answer = client_for(args).call("history", since=since, zone=args.zone)
    events = answer["events"]
    if args.json:
        for event in events:
            print(json.dumps(event, sort_keys=True))
        return 0
    if not events:
        print("no events")
    for event in events:
        print(format_event(event))
    return 0


def run_drill(args: argparse.Namespace) -> int:
    from ..failover.drill_client import run_drill_cli
    if args.scenario in TARGETED and not args.target:
        args.parser.error(f"--scenario {args.scenario} needs --target ADDR")
    if args.target and args.scenario not in TARGETED:
        args.parser.error(f"--target is only for --scenario {' or '.join(TARGETED)}, "
                          f"not {args.scenario}")
    if args.etcd and not args.fleet:
        args.parser.error("--etcd goes with --fleet")
    if args.fleet and args.connect:
        args.parser.error("--fleet finds every member's control channel in etcd; drop "
                          "--connect")
    if args.report is not None and not args.report.parent.is_dir():
        raise SeawallError(f"--report: no directory {args.report.parent}")
    if args.fleet:
        from ..fleet.drill import run_fleet_drill
        from .fleet import endpoints
        etcd, timeout = endpoints(args)
        return run_fleet_drill(etcd, timeout, args, secret_for(args))
    return asyncio.run(run_drill_cli(client_for(args), args))


# ------------------------------------------------------------- formatting

def _clock(ts: float | None) -> str:
    """Local time of day, with the date when it is not within the next or last 12 hours."""
    if ts is None:
        return "-"
    if abs(ts - time.time()) < 43200:
        return time.strftime("%H:%M:%S", time.localtime(ts))
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{sign}{seconds:.1f}s" if seconds < 10 else f"{sign}{seconds:.0f}s"
    if seconds < 7200:
        return f"{sign}{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{sign}{seconds / 3600:.0f}h"
    return f"{sign}{seconds / 86400:.0f}d"


def format_status(status: dict[str, Any], drill: dict[str, Any] | None = None) -> str:
    """The readable table of ``seawall failover status``."""
    header = ["ZONE", "STATE", "HOW", "SERIAL", "LAST GOOD", "EXPIRES IN", "BACKEND"]
    rows = [header]
    whys = []
    for zone in status.get("zones", []):
        forced = zone.get("forced")
        if forced:
            how = f"forced until {_clock(forced['until'])}" if forced.get("until") \
                else "forced"
        else:
            how = "auto"
        if zone.get("expired"):
            expires = "EXPIRED"
        else:
            expires = _age(zone.get("expire_in"))
        if zone.get("signature_expiry"):   # a signed zone: its first RRSIG to expire
            expires += f", RRSIG {_age(zone['signature_expiry'] - time.time())}"
        if zone.get("failures"):
            health = f"failing ({zone['failures']} in a row)"
        elif zone.get("last_report_age") is not None:
            health = "ok"
        else:
            health = "no report"
        if zone.get("last_report_age") is not None:
            health += f", probed {_age(zone['last_report_age'])} ago"
        rows.append([zone["zone"], zone.get("state") or "-", how,
                     str(zone.get("serial") if zone.get("serial") is not None else "-"),
                     _age(zone.get("good_age")) + (" ago" if zone.get("good_age") is not None
                                                   else ""),
                     expires, health])
        why = zone.get("why") or {}
        text = why.get("reason") or "-"
        if why:
            text = f"{why.get('time', '')} {why.get('kind')} ({why.get('cause')}): {text}"
        if zone.get("last_error") and zone["last_error"] not in text:
            text += f"; last error: {zone['last_error']}"
        held = zone.get("held")
        if held:
            reason = "" if held["reason"] in text else f": {held['reason']}"
            text += (f"; held serial {held['serial']} for {_age(held.get('for'))}{reason} "
                     f"(seawall failover accept --zone {zone['zone']} serves it)")
        if zone.get("unprotected"):
            text += f"; UNPROTECTED: {zone['unprotected']}"
        damping = zone.get("damping") or {}
        if damping.get("factor", 1) > 1:
            text += (f"; flap damping: recovery needs {zone.get('recover_needed')} good "
                     f"probes ({damping.get('episodes')} bounces)")
        whys.append(f"  {zone['zone']} {text}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    if whys:
        lines += ["", "Why:"] + whys
    thresholds = status.get("thresholds") or {}
    if thresholds:
        lines += ["", "Thresholds: " + ", ".join(f"{k}={v:g}" if isinstance(v, float)
                                                  else f"{k}={v}"
                                                  for k, v in thresholds.items())]
    if drill and drill.get("phase") != "done":
        lines += [f"Drill {drill['id']} ({drill['scenario']}) {drill['phase']}: fault until "
                  f"{_clock(drill['fault_until'])}"]
    if status.get("watch") is not None:
        from .watch import format_watch
        lines += ["", format_watch(status["watch"])]
    health = status.get("health")
    if health and (health.get("targets") or health.get("errors")):
        lines += ["", format_health(health)]
    fleet = status.get("fleet")
    if fleet:
        members = ", ".join(fleet.get("members") or []) or "none seen"
        lines += ["", f"Fleet: {fleet.get('name')} is {fleet.get('state')} (deciding "
                      f"{fleet.get('deciding')}); members: {members}"
                  + (f"; error: {fleet['error']}" if fleet.get("error") else "")]
    return "\n".join(lines)


def format_health(health: dict[str, Any]) -> str:
    """Health-checked answers: each RRset's answer, each target's state."""
    lines = ["Health-checked answers" + (" (CHECKER STALLED: answers frozen on the last view, "
                                         f"for {_age(health.get('stalled_for'))})"
                                         if health.get("stalled") else "") + ":"]
    for rrset in health.get("rrsets", []):
        note = ""
        if rrset.get("refused"):
            note = f"  REFUSED: {rrset['refused']}"
        elif rrset.get("missing"):
            note = "  (not in the zone: not served)"
        elif rrset.get("fail_static"):
            note = "  (every target down: the last healthy answer, fail static)"
        else:
            note = f"  (pool {rrset.get('pool')})"
        lines.append(f"  {rrset['name']} {rrset['type']} -> {' '.join(rrset['answer'])}{note}")
    for target in health.get("targets", []):
        state = "up" if target["up"] else "DOWN"
        extra = " STALLED" if target.get("stalled") else ""
        if target.get("pending"):
            extra += f" ({target['pending']} after hold-down)"
        lines.append(f"  {target['address']:<15} {target['check']:<22} {state} for "
                     f"{_age(target.get('for'))}{extra}: {target.get('why')}")
    for path, problems in (health.get("errors") or {}).items():
        lines += [f"  ERROR {problem}" for problem in problems]
    if health.get("fault"):
        lines.append(f"  drill fault: {health['fault']}")
    return "\n".join(lines)


def format_event(event: dict[str, Any]) -> str:
    change = ""
    if event.get("kind") in ("transition", "override") or event.get("from") != event.get("to"):
        change = f" {event.get('from') or '-'} -> {event.get('to') or '-'}"
    serial = ""
    if event.get("serial_to") is not None and event.get("serial_from") is not None \
            and event["serial_to"] != event["serial_from"]:
        serial = f" serial {event['serial_from']} -> {event['serial_to']}"
    return (f"{event.get('time', '')} {event.get('zone', '')} {event.get('kind', '')}"
            f"{change} ({event.get('cause', '')}){serial}: {event.get('reason', '')}")

