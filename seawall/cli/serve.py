"""``seawall serve``: answer queries for the zones in a directory."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from ..app import App
from ..config import FailoverConfig, load_config
from ..logs import setup_logging


def register(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("serve", help="serve zones over UDP and TCP",
                              description="Serve the zones of a directory over UDP and TCP.")
    cmd.add_argument("--config", type=Path, help="YAML configuration file (seawall.yaml)")
    cmd.add_argument("--zones", help="zones directory (default: zones)")
    cmd.add_argument("--listen", action="append",
                     help="HOST:PORT or [IPv6]:PORT to listen on, UDP and TCP; repeatable "
                          "(default: 127.0.0.1:5353)")
    cmd.add_argument("--lenient", action="store_true",
                     help="serve zones that lack apex NS records (like Knot's "
                          "semantic-checks: off)")
    cmd.add_argument("--state-dir", type=Path,
                     help="state directory: last good snapshots, events, control socket "
                          "(default: state_dir of the configuration, else .seawall)")
    cmd.add_argument("--ready-file", type=Path,
                     help="write the bound addresses as JSON here once serving")
    cmd.add_argument("--workers", type=int,
                     help="processes answering queries (default: one per CPU core; "
                          "1: this process alone)")
    cmd.add_argument("--log-level", help="debug, info, warning or error")
    cmd.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    shorthand = {}
    if args.zones and args.config is None:
        # `--zones DIR` alone: a files backend on DIR, its emergency/ beside, nothing required.
        shorthand = {"emergency_dir": str(Path(args.zones) / "emergency"),
                     "failover": FailoverConfig(require_emergency=False)}
    config = load_config(args.config, zones=args.zones, **shorthand,
                         listen=tuple(args.listen) if args.listen else None,
                         semantic_checks=False if args.lenient else None,
                         log_level=args.log_level, workers=args.workers,
                         # Absolute: a relative path in a configuration is read from the
                         # file's directory, one on the command line from here.
                         state_dir=str(args.state_dir.absolute()) if args.state_dir else None)
    setup_logging(config.log_level, config.log_format)
    app = App(config)
    try:
        import uvloop  # the faster event loop, when installed (the "speed" extra)
    except ImportError:
        asyncio.run(app.run(args.ready_file))
    else:
        uvloop.run(app.run(args.ready_file))
    logging.getLogger("seawall.app").info("stopped")
    return 0
