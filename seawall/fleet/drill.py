"""``seawall failover drill ... --fleet``: one drill on every live member, one report.

The live members and their control channels come from etcd (each member
publishes ``control``: its socket's path and its signed TCP listener, see
seawall/fleet/service.py). Each member is reached over its signed TCP
listener when the operator has the shared secret (``--secret-file``), else
over its Unix socket when it runs on this host. The drill is started on
every member at once (the same request a single-server drill sends, so each
server runs it, holds its deadline and ends it by itself), then each is
probed and watched as a single drill is (seawall/failover/drill_client.py),
all concurrently. The report has every server's timeline (its states per
zone with their times, its probes lost and wrong) and an overall verdict:
pass only when every member ran the drill and met every objective. A member
that cannot be reached or refuses is named with why, and fails the verdict.

Exit codes: 0 pass; 1 a member missed an objective, could not be reached
or refused; 2 the fleet itself is not usable (etcd unreachable, no live
member).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..errors import SeawallError
from ..failover.control_client import ControlClient, ControlRefused
from ..failover.drill_client import Progress, drill_request, drive
from ..failover.drill_report import format_plan
from .etcd import EtcdClient, EtcdError
from .orders import read_view

START_TIMEOUT = 5.0      # seconds a member has to answer drill-start


def member_client(name: str, member: dict[str, Any], secret: bytes | None
                  ) -> tuple[ControlClient | None, str]:
    """How to reach a member's control channel, or why it cannot be reached from here."""
    control = member.get("control") or {}
    tcp, path = control.get("tcp"), control.get("socket")
    if tcp and secret:
        return ControlClient(tcp=tcp, secret=secret, timeout=START_TIMEOUT), f"tcp {tcp}"
    if path and member.get("host") == socket.gethostname():
        return ControlClient(state_dir=Path(path).parent, timeout=START_TIMEOUT), \
            f"socket {path}"
    if tcp:
        return None, f"its control listener {tcp} needs the shared secret (--secret-file)"
    if path:
        return None, (f"its control socket is on {member.get('host')}, not this host, and it "
                      "publishes no TCP control listener")
    return None, "it publishes no control channel"


async def _start(name: str, client: ControlClient, request: dict[str, Any]
                 ) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(client.request("drill-start", **request),
                                      START_TIMEOUT + 1)
    except asyncio.TimeoutError:
        raise SeawallError(f"no answer to drill-start within {START_TIMEOUT:g}s") from None


async def run_members(view_members: dict[str, dict[str, Any]], args: Any,
                      secret: bytes | None) -> dict[str, dict[str, Any]]:
    """Start the drill on every member, drive each; each member's outcome."""
    request = drill_request(args)
    outcomes: dict[str, dict[str, Any]] = {}
    clients: dict[str, ControlClient] = {}
    for name, member in sorted(view_members.items()):
        client, how = member_client(name, member, secret)
        if client is None:
            outcomes[name] = {"status": "unreachable", "error": how}
        else:
            clients[name] = client
            outcomes[name] = {"status": "starting", "via": how}
    names = list(clients)
    started = await asyncio.gather(*(_start(n, clients[n], request) for n in names),
                                   return_exceptions=True)
    answers = {}
    for name, answer in zip(names, started):
        if isinstance(answer, BaseException):
            # The server said no (ControlRefused), or it could not be asked at all.
            status = "refused" if isinstance(answer, ControlRefused) else "unreachable"
            outcomes[name].update(status=status, error=str(answer) or type(answer).__name__)
            await clients[name].close()
            continue
        answers[name] = answer
        outcomes[name].update(status="started", t0=float(answer.get("drill", {}).get(
            "started") or time.time()))
        print(f"  {name}: drill {answer.get('drill', {}).get('id', '-')} started "
              f"({outcomes[name]['via']})", file=sys.stderr, flush=True)
    if args.dry_run:
        for name, answer in answers.items():
            outcomes[name].update(status="planned", plan=answer["plan"])
            await clients[name].close()
        return outcomes
    quiet = SimpleNamespace(quiet=True)

    async def one(name: str) -> dict[str, Any]:
        try:
            return await drive(clients[name], args, answers[name],
                               Progress(quiet, answers[name]["plan"]))
        finally:
            await clients[name].close()

    reports = await asyncio.gather(*(one(n) for n in answers), return_exceptions=True)
    for name, report in zip(answers, reports):
        if isinstance(report, BaseException):
            outcomes[name].update(status="failed", error=str(report) or type(report).__name__)
        else:
            outcomes[name].update(status="ran", report=report)
            print(f"  {name}: drill ended: {report['verdict']}", file=sys.stderr, flush=True)
    return outcomes


def fleet_report(args: Any, members: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One report: every member's timeline on the fleet's clock, and the overall verdict."""
    t0 = min((o["t0"] for o in members.values() if "report" in o), default=time.time())
    out: dict[str, Any] = {}
    for name, outcome in members.items():
        entry = {k: v for k, v in outcome.items() if k not in ("report", "plan", "t0")}
        report = outcome.get("report")
        if report is not None:
            shift = outcome["t0"] - t0
            entry.update({
                "verdict": report["verdict"], "drill": report["drill"],
                "started_after": shift,
                "states": _states(report, shift),
                "timeline": [{**item, "t": item["t"] + shift} for item in report["timeline"]],
                "probes": {k: report["probes"][k] for k in ("sent", "ok", "wrong", "lost")},
                "measured": report["measured"],
                "objectives": report["objectives"]})
        out[name] = entry
    bad = sorted(n for n, e in out.items() if e.get("verdict") != "pass")
    return {"version": 1, "fleet": True, "scenario": args.scenario,
            "target": getattr(args, "target", None), "zones": args.zone or "all",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
            "members": out, "not_passed": bad, "verdict": "fail" if bad or not out else "pass"}


def _states(report: dict[str, Any], shift: float) -> dict[str, list[dict[str, Any]]]:
    """Per zone (or RRset), the states it went through with when (fleet seconds)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for zone in report["drill"]["zones"]:
        out[zone] = [{"t": None, "state": "live"}]
    for item in report["timeline"]:
        if item.get("source") == "server" and item.get("to") and item.get("zone"):
            out.setdefault(item["zone"], [{"t": None, "state": "live"}]).append(
                {"t": round(item["t"] + shift, 3), "state": item["to"]})
        elif item.get("mark") and item.get("label"):
            out.setdefault(item["label"].split()[0], []).append(
                {"t": round(item["t"] + shift, 3), "state": item["label"].split()[-1]})
    return out


def markdown(report: dict[str, Any]) -> str:
    verdict = report["verdict"].upper()
    what = report["scenario"] + (f" {report['target']}" if report.get("target") else "")
    lines = [f"# Fleet drill: {what} on {len(report['members'])} member(s) — {verdict}", "",
             f"Started {report['started']}; zones {report['zones']}. Times are seconds since "
             "the first member's fault.", "",
             "| member | outcome | states (s) | probes sent | lost | wrong |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for name, entry in report["members"].items():
        if "verdict" not in entry:
            lines.append(f"| {name} | **{entry['status'].upper()}**: "
                         f"{str(entry.get('error', '')).replace('|', '/')} | - | - | - | - |")
            continue
        states = "; ".join(f"{zone} " + " → ".join(
            s["state"] + (f" {s['t']:+.2f}" if s["t"] is not None else "") for s in path)
            for zone, path in entry["states"].items())
        probes = entry["probes"]
        outcome = "pass" if entry["verdict"] == "pass" else "**FAIL**"
        lines.append(f"| {name} | {outcome} | {states} | {probes['sent']} | {probes['lost']} "
                     f"| {probes['wrong']} |")
    for name, entry in report["members"].items():
        lines += ["", f"## {name}", ""]
        if "verdict" not in entry:
            lines.append(f"{entry['status']}: {entry.get('error')}")
            continue
        lines += ["| t (s) | zone | what | seen by |", "| ---: | --- | --- | --- |"]
        for item in entry["timeline"]:
            text = str(item["what"]).replace("|", "\\|")
            lines.append(f"| {item['t']:+.3f} | {item.get('zone') or ''} | {text} | "
                         f"{item['source']} |")
        missed = [o for o in entry["objectives"] if not o["passed"]]
        lines += ["", "Objectives: " + ("all met" if not missed else "MISSED " + "; ".join(
            f"{o['name']} (target {o['target']}, measured {o['measured']})" for o in missed))]
    lines += ["", f"Verdict: **{verdict}**" + (f" (not passed: {', '.join(report['not_passed'])})"
                                              if report["not_passed"] else ""), ""]
    return "\n".join(lines)


def run_fleet_drill(etcd: list[str], timeout: float, args: Any, secret: bytes | None) -> int:
    """The command: exit 0 when every live member ran the drill and passed, else 1."""
    async def run() -> dict[str, dict[str, Any]]:
        try:
            view = await read_view(EtcdClient(etcd, timeout))
        except EtcdError as exc:
            raise SeawallError(f"the fleet is unreachable: {exc}") from None
        if not view.members:
            raise SeawallError("no live member in the fleet (etcd has no member key)")
        print(f"fleet drill: {args.scenario} on {len(view.members)} live member(s): "
              f"{', '.join(sorted(view.members))}", file=sys.stderr, flush=True)
        return await run_members(view.members, args, secret)

    members = asyncio.run(run())
    if args.dry_run:
        for name, outcome in members.items():
            print(f"## {name}")
            print(format_plan(outcome["plan"]) if "plan" in outcome
                  else f"{outcome['status']}: {outcome.get('error')}")
        print("dry run: nothing was changed")
        return 0 if all("plan" in o for o in members.values()) else 1
    report = fleet_report(args, members)
    text = markdown(report)
    if args.report is not None:
        md_path = args.report if args.report.suffix != ".json" else args.report.with_suffix(".md")
        md_path.write_text(text, encoding="utf-8")
        md_path.with_suffix(".json").write_text(json.dumps(report, indent=1, sort_keys=True)
                                                + "\n", encoding="utf-8")
        print(f"report written: {md_path}", file=sys.stderr)
    print(text)
    return 0 if report["verdict"] == "pass" else 1
