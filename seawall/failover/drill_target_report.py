"""The report of a target-down drill: when the target left the answers and came back.

Times are seconds relative to the moment the fault was injected (``t0``);
the return is also given relative to the fault's removal. For each RRset
that uses the target, two views of each moment:

* **server**: when the health service published the answer without the
  target (or with it again), from the drill's record (its listener on the
  health service, exact);
* **client**: when the first probe answer without the target (with it
  again) arrived, which includes the workers taking the new answers.

Every probe is judged on its own: an answer must be NOERROR with at least
one address of the probed type (never empty, never SERVFAIL: fail static);
it is counted as ``with`` or ``without`` the target. The objectives are the
plan's: nothing lost, nothing empty or SERVFAIL, the target gone within
``detect_within`` and back within ``recover_within`` (client times, or the
server's when no probe saw it).
"""

from __future__ import annotations

import time
from typing import Any

from .drill_report import _iso, _s, _series, markdown_tail

COLOURS = {"with": "#2e7d32", "without": "#f9a825", "wrong": "#6a1b9a", "lost": "#212121"}


def judge_target(probe: Any, spec: dict[str, Any]) -> None:
    """ok (``with`` or ``without`` the target), wrong (empty, SERVFAIL, ...), or lost."""
    if probe.received is None:
        probe.verdict, probe.source = "lost", None
        return
    parts = (probe.sig or "").split(" | ")
    if len(parts) < 2 or parts[0] != "NOERROR":
        probe.verdict, probe.source = "wrong", None
        return
    records = [line.split() for line in parts[1].split("; ") if line]
    values = [r[-1] for r in records if len(r) >= 3 and r[1] == spec["type"]]
    if not values:
        probe.verdict, probe.source = "wrong", None    # an empty answer
        return
    probe.verdict = "ok"
    probe.source = "with" if spec["target"] in values else "without"


def _first(probes: list[Any], index: int, source: str, after: float) -> float | None:
    for probe in probes:
        if probe.spec == index and probe.verdict == "ok" and probe.source == source \
                and probe.sent >= after and probe.received is not None:
            return float(probe.received)
    return None


def build_target_report(plan: dict[str, Any], record: dict[str, Any], probes: list[Any],
                        specs: list[dict[str, Any]], offset: float) -> dict[str, Any]:
    """Everything measured, judged against the plan's objectives (``offset``: server - local)."""
    t0 = float(record["started"])
    target = plan["target"]
    removed_at = record.get("fault_removed_at")
    changes = record.get("changes") or []
    timeline: list[dict[str, Any]] = [{"t": 0.0, "zone": None, "what": "fault injected: "
                                       f"target-down {target}", "source": "server"}]
    for change in changes:
        answers = "; ".join(f"{rrset} -> {' '.join(values)}"
                            for rrset, values in sorted(change["answers"].items()))
        state = "up" if change["up"] else "down"
        timeline.append({"t": change["ts"] - t0, "zone": None,
                         "what": f"{target} {state} ({change['why']}); answer {answers}",
                         "source": "server", "mark": True, "label": f"{target} {state}"})
    per_rrset: dict[str, dict[str, Any]] = {}
    for index, spec in enumerate(specs):
        rrset = spec["rrset"]
        left_server = next((c["ts"] - t0 for c in changes
                            if not c["up"] and target not in c["answers"].get(rrset, [target])),
                           None)
        back_server = next((c["ts"] - removed_at for c in changes
                            if c["up"] and removed_at is not None
                            and c["ts"] >= removed_at - 0.001
                            and target in c["answers"].get(rrset, [])), None)
        left_at = _first(probes, index, "without", t0 - offset)
        left_client = left_at + offset - t0 if left_at is not None else None
        back_client = None
        if removed_at is not None:
            back_at = _first(probes, index, "with", removed_at - offset)
            back_client = back_at + offset - removed_at if back_at is not None else None
            if back_at is not None and left_at is not None:
                timeline.append({"t": back_at + offset - t0, "zone": spec["zone"],
                                 "what": f"first probe of {rrset} answered with {target} again",
                                 "source": "client"})
        if left_at is not None:
            timeline.append({"t": left_client, "zone": spec["zone"],
                             "what": f"first probe of {rrset} answered without {target}",
                             "source": "client"})
        mine = [p for p in probes if p.spec == index]
        per_rrset[rrset] = {
            "zone": spec["zone"], "leaves": spec["distinct"], "holds": spec.get("holds", True),
            "left_server": left_server, "left_client": left_client,
            "back_server": back_server, "back_client": back_client,
            "answers": {"with": sum(1 for p in mine if p.source == "with"),
                        "without": sum(1 for p in mine if p.source == "without")}}
    if removed_at is not None:
        why = f" ({record['stopped_by']} stopped the drill)" if record.get("stopped_by") \
            else " (deadline, held by the server)"
        timeline.append({"t": removed_at - t0, "zone": None, "what": "fault removed" + why,
                         "source": "server"})
    timeline.sort(key=lambda item: item["t"])
    counts = {"sent": len(probes), "ok": 0, "wrong": 0, "lost": 0}
    by_source = {"with": 0, "without": 0}
    for probe in probes:
        counts[probe.verdict or "lost"] += 1
        if probe.verdict == "ok" and probe.source in by_source:
            by_source[probe.source] += 1
    wrong_examples = [{"t": p.sent + offset - t0, "probe": f"{specs[p.spec]['name']}/"
                       f"{specs[p.spec]['type']}", "got": p.sig}
                      for p in probes if p.verdict == "wrong"][:10]
    objectives = _objectives(plan, per_rrset, counts, removed_at)
    return {
        "version": 1,
        "drill": {"id": record["id"], "scenario": plan["scenario"], "target": target,
                  "zones": plan["zones"], "by": record.get("by"), "started": _iso(t0),
                  "duration": plan["duration"],
                  "fault_until": float(record["fault_until"]) - t0,
                  "fault_removed": removed_at - t0 if removed_at is not None else None,
                  "stopped_by": record.get("stopped_by"),
                  "ended": (record.get("ended_at") or time.time()) - t0, "backends": []},
        "thresholds": plan["thresholds"],
        "expected_states": plan["expected_states"],
        "timeline": timeline,
        "measured": {"rrsets": per_rrset,
                     "time_to_leave": _max(_either(m["left_client"], m["left_server"])
                                           for m in per_rrset.values() if m["leaves"]),
                     "time_to_return": _max(_either(m["back_client"], m["back_server"])
                                            for m in per_rrset.values() if m["leaves"])},
        "probes": {**counts, "by_source": by_source,
                   "qps_names": [f"{s['name']}/{s['type']}" for s in specs],
                   "wrong_examples": wrong_examples, "series": _series(probes, offset - t0, COLOURS, "with")},
        "colours": COLOURS,
        "objectives": objectives,
        "verdict": "pass" if all(o["passed"] for o in objectives) else "fail",
    }


def _either(first: float | None, second: float | None) -> float | None:
    return first if first is not None else second


def _max(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _objectives(plan: dict[str, Any], per_rrset: dict[str, Any], counts: dict[str, int],
                removed_at: float | None) -> list[dict[str, Any]]:
    target = plan["target"]
    out = [{"name": "no probe lost", "target": "0", "measured": str(counts["lost"]),
            "passed": counts["lost"] == 0 and counts["sent"] > 0},
           {"name": "no empty answer, no SERVFAIL", "target": "0",
            "measured": str(counts["wrong"]), "passed": counts["wrong"] == 0}]
    for rrset, m in per_rrset.items():
        if not m["leaves"]:      # the answer must not change (fail static, or never in it)
            kept, other = ("with", "without") if m["holds"] else ("without", "with")
            out.append({"name": f"{rrset} keeps its answer", "target": f"always {kept} "
                        f"{target}", "measured": f"{m['answers'][other]} answers {other} it",
                        "passed": m["answers"][other] == 0})
            continue
        left = _either(m["left_client"], m["left_server"])
        out.append({"name": f"{target} leaves {rrset}",
                    "target": f"<= {plan['detect_within']:.2f}s", "measured": _s(left),
                    "passed": left is not None and left <= plan["detect_within"]})
        back = _either(m["back_client"], m["back_server"])
        out.append({"name": f"{target} back in {rrset}",
                    "target": f"<= {plan['recover_within']:.2f}s",
                    "measured": _s(back) if removed_at is not None else "fault not removed",
                    "passed": back is not None and back <= plan["recover_within"]})
    return out


def markdown_target(report: dict[str, Any], svg_name: str | None) -> str:
    drill, measured, probes = report["drill"], report["measured"], report["probes"]
    verdict = report["verdict"].upper()
    target = drill["target"]
    lines = [f"# Drill {drill['id']}: target-down {target} — {verdict}", "",
             f"Target {target} marked down for {drill['duration']:g}s from {drill['started']} "
             f"(by {drill['by']}); zones {', '.join(drill['zones'])}.", "",
             "Checks in force: " + "; ".join(
                 f"`{check}` " + ", ".join(f"{k}={v:g}" for k, v in values.items())
                 for check, values in report["thresholds"].items()), "",
             "## Measured", "",
             "| RRset | left the answers (server / client) | back after the fault "
             "(server / client) |", "| --- | --- | --- |"]
    for rrset, m in measured["rrsets"].items():
        if m["leaves"]:
            lines.append(f"| {rrset} | {_s(m['left_server'])} / {_s(m['left_client'])} | "
                         f"{_s(m['back_server'])} / {_s(m['back_client'])} |")
        else:
            lines.append(f"| {rrset} | kept ({'fail static' if m['holds'] else 'not in it'}) "
                         "| - |")
    lines += ["", f"Probes: {probes['sent']} sent, {probes['ok']} answered with addresses, "
                  f"{probes['wrong']} empty or SERVFAIL, {probes['lost']} lost (with {target} "
                  f"{probes['by_source']['with']}, without {probes['by_source']['without']}); "
                  f"names: {', '.join(probes['qps_names'])}.", ""]
    if svg_name:
        lines += [f"![probes per second with and without the target]({svg_name})", ""]
    lines += markdown_tail(report, verdict, "Empty or failed answers (first ones)")
    return "\n".join(lines)
