"""The operator's side of a fleet: orders for every server, and the fleet's status.

``seawall failover force|release|accept ... --fleet`` writes one order (an
id, the action, reason, expiry and who) to ``intent/ZONE`` or
``accept/ZONE`` for each zone, in one transaction, then waits until every
member that was live when it was given reports it served (``orders`` in its
member key), or says which did not follow within ``--wait``.
``seawall fleet status`` reads the same keys and shows every server side by
side (:func:`format_status`).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.name

from ..errors import SeawallError
from .etcd import EtcdClient, EtcdError
from .view import PREFIX, FleetView, key, zone_names

POLL_EVERY = 0.1       # seconds between looks at the members while waiting


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def read_view(client: EtcdClient) -> FleetView:
    kvs, revision = await client.get_prefix(PREFIX)
    return FleetView.parse(kvs, revision)


def normal_zones(zones: Sequence[str]) -> list[str]:
    out = []
    for zone in zones:
        try:
            out.append(dns.name.from_text(zone).to_text())
        except dns.exception.DNSException as exc:
            raise SeawallError(f"bad zone name {zone!r}: {exc}") from None
    return out


async def give_order(client: EtcdClient, kind: str, zones: Sequence[str] | None,
                     order: dict[str, Any]) -> tuple[str, list[str], list[str], FleetView]:
    """Write an order for ``zones`` (None: every zone a live member serves).

    Returns its id, the zones, the members live when it was given, and the view.
    """
    view = await read_view(client)
    names = normal_zones(zones) if zones is not None else zone_names(view.members)
    if not names:
        raise SeawallError("no live member of the fleet serves any zone")
    oid = f"{int(time.time())}-{secrets.token_hex(4)}"
    record = {**order, "id": oid, "by": order.get("by") or who(), "at": time.time()}
    data = json.dumps(record, sort_keys=True).encode()
    ok = await client.put_if([(key(kind, zone), data) for zone in names])
    if not ok:
        raise SeawallError("etcd did not take the order")
    return oid, names, sorted(view.members), view


async def wait_for(client: EtcdClient, oid: str, members: Sequence[str], timeout: float,
                   report: Callable[[str, dict[str, Any] | None, str], None]
                   ) -> dict[str, dict[str, Any] | None]:
    """Each member's outcome of order ``oid`` as it comes (None: did not follow in time)."""
    outcomes: dict[str, dict[str, Any] | None] = {}
    deadline = time.monotonic() + timeout
    last: dict[str, dict[str, Any]] = {}
    while len(outcomes) < len(members) and time.monotonic() < deadline:
        try:
            view = await read_view(client)
        except EtcdError:
            await asyncio.sleep(POLL_EVERY)
            continue
        for name in members:
            if name in outcomes:
                continue
            member = view.members.get(name)
            if member is None:
                outcomes[name] = None
                report(name, None, "left the fleet (its lease lapsed) before it followed")
                continue
            last[name] = member
            outcome = (member.get("orders") or {}).get(oid)
            if outcome is not None:
                outcomes[name] = outcome
                report(name, outcome, "")
        await asyncio.sleep(POLL_EVERY)
    for name in members:
        if name not in outcomes:
            outcomes[name] = None
            seen = last.get(name, {}).get("time")
            age = f" (last report {time.time() - seen:.1f}s ago)" if seen else ""
            report(name, None, f"did not follow within {timeout:g}s{age}")
    return outcomes


def run_order(endpoints: Sequence[str], kind: str, zones: Sequence[str] | None,
              order: dict[str, Any], wait: float, timeout: float = 1.0,
              out: Any = None) -> int:
    """Give an order to the fleet and wait for its members: exit 0, or 1 if one did not follow."""
    out = out or sys.stdout
    client = EtcdClient(endpoints, timeout)
    started = time.monotonic()

    def report(name: str, outcome: dict[str, Any] | None, why: str) -> None:
        if outcome is None:
            print(f"  {name}: {why}", file=out, flush=True)
            return
        took = outcome.get("took")
        notes = "; ".join(outcome.get("notes") or [])
        after = f" ({took:.2f}s after the order)" if took is not None else ""
        if outcome.get("ok") and not outcome.get("zones") and notes:
            text = f"nothing to do here{after}"
        elif outcome.get("ok"):
            text = f"serves it{after}"
        else:
            text = "FAILED: " + "; ".join(outcome.get("errors") or ["?"])
        print(f"  {name}: {text}" + (f" [{notes}]" if notes else ""), file=out, flush=True)

    async def run() -> int:
        try:
            oid, names, members, _ = await give_order(client, kind, zones, order)
        except EtcdError as exc:
            raise SeawallError(f"the order was not given: {exc}") from None
        what = order.get("action") if kind == "intent" else "accept"
        if order.get("mode"):
            what += f" {order['mode']}"
        print(f"order {oid}: {what} {', '.join(names)}: waiting for {len(members)} live "
              f"member(s): {', '.join(members) or 'none'}", file=out, flush=True)
        outcomes = await wait_for(client, oid, members, wait, report)
        bad = sorted(n for n, o in outcomes.items() if o is None or not o.get("ok"))
        elapsed = time.monotonic() - started
        if bad:
            print(f"not followed by {len(bad)} of {len(members)}: {', '.join(bad)} "
                  f"({elapsed:.2f}s)", file=out)
            return 1
        print(f"every live member serves it ({elapsed:.2f}s)", file=out)
        return 0

    return asyncio.run(run())


# ------------------------------------------------------------------ status

def fleet_status(view: FleetView) -> dict[str, Any]:
    """Members side by side, disagreements and lapsed leases, for display or JSON."""
    now = time.time()
    zones = zone_names(view.members)
    disagreements = []
    for zone in zones:
        data: dict[str, list[str]] = {}
        states: dict[str, list[str]] = {}
        for name, member in sorted(view.members.items()):
            entry = (member.get("zones") or {}).get(zone)
            if entry is None:
                continue
            fp = entry.get("fingerprint") or "-"
            data.setdefault(f"{fp[:12]} (serial {entry.get('serial')})", []).append(name)
            states.setdefault(str(entry.get("state")), []).append(name)
        if len(data) > 1:
            disagreements.append({"zone": zone, "kind": "data", "groups": data})
        elif len(states) > 1:
            disagreements.append({"zone": zone, "kind": "state", "groups": states})
    lapsed = []
    for name, last in sorted(view.last.items()):
        if name in view.members:
            continue
        lapsed.append({"name": name, "stopped": bool(last.get("stopped")),
                       "last_report": last.get("time"),
                       "age": now - last["time"] if last.get("time") else None})
    return {"time": now, "revision": view.revision, "zones": zones,
            "members": view.members, "lapsed": lapsed, "disagreements": disagreements,
            "epochs": view.epochs}


def format_status(status: dict[str, Any]) -> str:
    members = status["members"]
    names = sorted(members)
    lines = [f"Fleet: {len(names)} live member(s), {len(status['lapsed'])} gone "
             f"(etcd revision {status['revision']})", ""]
    header = ["ZONE"] + names + ["EPOCH"]
    rows = [header]
    for zone in status["zones"]:
        row = [zone]
        for name in names:
            entry = (members[name].get("zones") or {}).get(zone)
            if entry is None:
                row.append("-")
                continue
            cell = f"{entry.get('state') or '-'} {entry.get('serial')}"
            if entry.get("fingerprint"):
                cell += f" {entry['fingerprint'][:8]}"
            if entry.get("forced"):
                cell += " forced"
            if entry.get("failing"):
                cell += " backend-failing"
            elif entry.get("held"):
                cell += f" held:{entry['held'].get('serial')}"
            row.append(cell)
        newest = status["epochs"].get(zone) or {}
        row.append(f"{newest.get('epoch', '-')} (serial {newest.get('serial', '-')})"
                   if newest else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    if status["disagreements"]:
        lines += ["", "DISAGREEMENT:"]
        for item in status["disagreements"]:
            groups = "; ".join(f"{', '.join(who)}: {what}"
                               for what, who in sorted(item["groups"].items()))
            what = "different data" if item["kind"] == "data" else "different states"
            lines.append(f"  {item['zone']} {what}: {groups}")
    whys = []
    for name in names:
        for zone, entry in sorted((members[name].get("zones") or {}).items()):
            for label in ("vote", "forced", "held"):
                value = entry.get(label)
                if not value:
                    continue
                if label == "forced":
                    value = f"forced {value.get('mode')} by {value.get('by')}: {value.get('reason')}"
                elif label == "held":
                    value = f"held serial {value.get('serial')}: {value.get('reason')}"
                whys.append(f"  {name} {zone} {value}")
    if whys:
        lines += ["", "Why:"] + whys
    lines += ["", "Members:"]
    now = status["time"]
    for name in names:
        member = members[name]
        fleet = member.get("fleet") or {}
        age = now - member.get("time", now)
        lines.append(f"  {name}: seawall {member.get('version')} pid {member.get('pid')} on "
                     f"{member.get('host')} {' '.join(member.get('listen') or [])}; fleet "
                     f"{fleet.get('state')}; reported {age:.1f}s ago")
    for item in status["lapsed"]:
        age = f"{item['age']:.0f}s ago" if item.get("age") is not None else "at an unknown time"
        what = "stopped" if item["stopped"] else "LAPSED (lease expired)"
        lines.append(f"  {item['name']}: {what}; last report {age}")
    return "\n".join(lines)


def local_view(state_dir: Path) -> dict[str, Any] | None:
    """What a server last wrote of its view of the fleet (state_dir/fleet.json)."""
    try:
        return json.loads((state_dir / "fleet.json").read_text())
    except (OSError, ValueError):
        return None


def format_local(local: dict[str, Any]) -> str:
    since = time.strftime("%H:%M:%S", time.localtime(local.get("since") or 0))
    contact = local.get("last_contact")
    contact_text = (time.strftime("%H:%M:%S", time.localtime(contact)) if contact else "never")
    age = time.time() - (local.get("time") or time.time())
    return (f"this server ({local.get('name')}): fleet {local.get('state')} since {since}, "
            f"deciding {local.get('deciding')}, last contact with etcd {contact_text}, "
            f"members last seen: {', '.join(local.get('members') or []) or 'none'} "
            f"(written {age:.0f}s ago)")
