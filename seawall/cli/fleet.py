"""``seawall fleet status``: every server of a fleet side by side, from etcd.

::

    seawall fleet status [--etcd HOST:PORT ... | --config FILE] [--state-dir DIR] [--json]

Shows each zone's state, served serial and data fingerprint on every live
member, the fleet's newest epoch, disagreements (different data for the
same zone), members whose lease lapsed, and why a member holds back from
emergency or holds a version. Orders for the whole fleet are given with
``seawall failover force|release|accept ... --fleet``.

Exit codes: 0 the fleet agrees; 1 disagreement or a lapsed member; 2 etcd
unreachable (then, with ``--state-dir`` or ``--config``, the server's own
last view of the fleet is shown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from ..config import load_config
from ..errors import SeawallError
from ..fleet.etcd import EtcdClient, EtcdError
from ..fleet.orders import fleet_status, format_local, format_status, local_view, read_view


def register(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("fleet", help="the servers of a fleet (etcd), side by side",
                              description="Look at a fleet of servers coordinated through etcd.")
    sub = cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = sub.add_parser("status", help="every member's zones, disagreement, lapsed leases")
    etcd_options(status)
    status.add_argument("--state-dir", type=Path,
                        help="a server's state directory: its own view when etcd is unreachable")
    status.add_argument("--json", action="store_true", help="JSON for scripts")
    status.set_defaults(run=run_status)


def etcd_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--etcd", action="append", metavar="HOST:PORT",
                        help="an etcd member's client address (repeatable; default: "
                             "fleet.etcd of --config)")
    if not any(a.dest == "config" for a in parser._actions):
        parser.add_argument("--config", type=Path, help="a server's configuration file")


def endpoints(args: argparse.Namespace) -> tuple[list[str], float]:
    """The etcd endpoints and request timeout from --etcd, else from --config's fleet."""
    if args.etcd:
        return [e for item in args.etcd for e in item.split(",") if e], 1.0
    if getattr(args, "config", None):
        fleet = load_config(args.config).fleet
        if fleet.etcd:
            return list(fleet.etcd), float(fleet.timeout)
    raise SeawallError("name the fleet: --etcd HOST:PORT, or --config with a fleet section")


def run_status(args: argparse.Namespace) -> int:
    etcd, timeout = endpoints(args)
    try:
        view = asyncio.run(read_view(EtcdClient(etcd, timeout)))
    except EtcdError as exc:
        state_dir = args.state_dir
        if state_dir is None and getattr(args, "config", None):
            config = load_config(args.config)
            state_dir = config.path(config.state_dir)
        local = local_view(state_dir) if state_dir is not None else None
        if args.json:
            print(json.dumps({"error": str(exc), "local": local}, indent=1, sort_keys=True))
        else:
            print(f"fleet unreachable: {exc}")
            if local is not None:
                print(format_local(local))
        return 2
    status = fleet_status(view)
    if args.json:
        print(json.dumps(status, indent=1, sort_keys=True, default=str))
    else:
        print(format_status(status))
    return 1 if status["disagreements"] and any(d["kind"] == "data"
                                                for d in status["disagreements"]) \
        or any(not item["stopped"] for item in status["lapsed"]) else 0
