"""The drill report: measured times, probes, the verdict, as JSON, Markdown and an SVG chart.

Times are seconds relative to the moment the fault was injected (``t0``).
Server-side moments come from the drill's events (events.jsonl); the first
failed look at the backend is sampled by the server every 50 ms (exact when
the controller still counted one failure); client-side moments are when the
probes' answers arrived.

* **time to detect**: fault injected → the zone leaves live (the
  controller's decision after ``fail_after`` failures).
* **time to switch**: that decision → the first probe answered with the new
  state's data (the emergency data; stale data looks like live data, so a
  switch to stale only is not visible in answers).
* **time to recover**: fault removed → the zone is live again; and the
  first probe answered with live data after that.

The verdict is pass when every objective of the plan is met; the CLI exits
1 otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

COLOURS = {"live": "#2e7d32", "held": "#1565c0", "stale": "#f9a825", "emergency": "#c62828",
           "wrong": "#6a1b9a", "lost": "#212121"}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def build_report(plan: dict[str, Any], record: dict[str, Any], probes: list[Any],
                 specs: list[dict[str, Any]], offset: float) -> dict[str, Any]:
    """Everything measured, judged against the plan's objectives."""
    t0 = float(record["started"])
    zones = plan["zones"]
    events = record.get("events", [])
    removed_at = record.get("fault_removed_at")
    timeline: list[dict[str, Any]] = [{"t": 0.0, "zone": None, "what": "fault injected",
                                       "source": "server"}]
    per_zone: dict[str, dict[str, Any]] = {}
    for zone in zones:
        mine = [e for e in events if e.get("zone") == zone]
        first_fail = record.get("first_failure", {}).get(zone)
        if first_fail is not None:
            exact = record.get("first_failure_exact", {}).get(zone, False)
            timeline.append({"t": first_fail - t0, "zone": zone,
                             "what": "first failed backend probe" + ("" if exact
                                                                     else " (sampled)"),
                             "source": "server"})
        rejected = [e for e in mine if e.get("kind") == "rejected"]
        if rejected:
            timeline.append({"t": rejected[0]["ts"] - t0, "zone": zone,
                             "what": f"guard {rejected[0]['reason']}",
                             "source": "server"})
        for event in (e for e in mine if e.get("kind") == "updated"):
            timeline.append({"t": event["ts"] - t0, "zone": zone,
                             "what": f"new live data: serial {event.get('serial_to')} "
                                     f"({event.get('reason')})", "source": "server"})
        switches = [e for e in mine if e.get("kind") in ("transition", "override")
                    and e.get("from") != e.get("to")]
        for event in switches:
            timeline.append({"t": event["ts"] - t0, "zone": zone,
                             "what": f"switch to {event.get('to')} ({event.get('cause')}): "
                                     f"{event.get('reason')}", "source": "server",
                             "to": event.get("to")})
        away = [e for e in switches if e.get("from") == "live" and e.get("to") != "live"]
        detect = away[0]["ts"] - t0 if away else None
        states = ["live"] + [e.get("to") for e in switches]
        # the switch as clients see it: first answer with the data of the new state
        into = [e for e in switches if e.get("to") == "emergency"]
        distinct = [i for i, s in enumerate(specs) if s["zone"] == zone and s["distinct"]]
        first_new = _first(probes, distinct, "emergency", after=None)
        switch = None
        if into and first_new is not None:
            switch = first_new - (into[0]["ts"] - offset)
            timeline.append({"t": first_new + offset - t0, "zone": zone,
                             "what": "first probe answered with emergency data",
                             "source": "client"})
        recover = first_live = None
        back = [e for e in switches if e.get("to") == "live"
                and (removed_at is None or e["ts"] >= removed_at - 0.001)]
        before = [e for e in switches if removed_at is not None and e["ts"] < removed_at]
        if removed_at is not None and (before[-1].get("to") if before else "live") == "live":
            recover = 0.0   # live already when the fault ended (a flap's up phase)
        elif back and removed_at is not None:
            recover = back[0]["ts"] - removed_at
            live_again = _first(probes, distinct, "live", after=back[0]["ts"] - offset - 0.5)
            if live_again is not None and into:
                first_live = live_again + offset - removed_at
                timeline.append({"t": live_again + offset - t0, "zone": zone,
                                 "what": "first probe answered with live data again",
                                 "source": "client"})
        per_zone[zone] = {"states": states, "detect": detect, "switch": switch,
                          "recover": recover, "first_live_answer": first_live,
                          "first_failure": first_fail - t0 if first_fail else None,
                          "switches_away": len(away),
                          "reached": sorted({e.get("to") for e in switches
                                             if removed_at is None or e["ts"] <= removed_at})}
    if removed_at is not None:
        why = f" ({record['stopped_by']} stopped the drill)" if record.get("stopped_by") \
            else " (deadline, held by the server)"
        timeline.append({"t": removed_at - t0, "zone": None, "what": "fault removed" + why,
                         "source": "server"})
    timeline.sort(key=lambda item: item["t"])
    counts = {"sent": len(probes), "ok": 0, "wrong": 0, "lost": 0}
    by_source = {"live": 0, "held": 0, "stale": 0, "emergency": 0}
    for probe in probes:
        counts[probe.verdict or "lost"] += 1
        if probe.verdict == "ok" and probe.source in by_source:
            by_source[probe.source] += 1
    wrong_examples = [{"t": p.sent + offset - t0, "probe": f"{specs[p.spec]['name']}/"
                       f"{specs[p.spec]['type']}", "got": p.sig}
                      for p in probes if p.verdict == "wrong"][:10]
    objectives = _objectives(plan, per_zone, counts, removed_at)
    duration_end = (record.get("ended_at") or time.time()) - t0
    return {
        "version": 1,
        "drill": {"id": record["id"], "scenario": plan["scenario"], "zones": zones,
                  "by": record.get("by"), "started": _iso(t0), "duration": plan["duration"],
                  "fault_until": float(record["fault_until"]) - t0,
                  "fault_removed": removed_at - t0 if removed_at is not None else None,
                  "stopped_by": record.get("stopped_by"), "ended": duration_end,
                  "backends": plan.get("backends", [])},
        "thresholds": plan["thresholds"],
        "expected_states": plan["expected_states"],
        "timeline": timeline,
        "measured": {"zones": per_zone,
                     "time_to_detect": _max(z["detect"] for z in per_zone.values()),
                     "time_to_switch": _max(z["switch"] for z in per_zone.values()),
                     "time_to_recover": _max(z["recover"] for z in per_zone.values())},
        "probes": {**counts, "by_source": by_source, "qps_names": [
            f"{s['name']}/{s['type']}" for s in specs], "wrong_examples": wrong_examples,
            "series": _series(probes, offset - t0)},
        "objectives": objectives,
        "verdict": "pass" if all(o["passed"] for o in objectives) else "fail",
    }


def _first(probes: list[Any], specs: list[int], source: str, after: float | None) -> float | None:
    wanted = set(specs)
    for probe in probes:
        if probe.spec in wanted and probe.verdict == "ok" and probe.source == source \
                and probe.received is not None and (after is None or probe.sent >= after):
            return float(probe.received)
    return None


def _max(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def _objectives(plan: dict[str, Any], per_zone: dict[str, Any], counts: dict[str, int],
                removed_at: float | None) -> list[dict[str, Any]]:
    detect_within, recover_within = plan["detect_within"], plan["recover_within"]
    out = [{"name": "no probe lost", "target": "0", "measured": str(counts["lost"]),
            "passed": counts["lost"] == 0 and counts["sent"] > 0},
           {"name": "no wrong answer", "target": "0", "measured": str(counts["wrong"]),
            "passed": counts["wrong"] == 0}]
    for zone, measured in per_zone.items():
        detect = measured["detect"]
        out.append({"name": f"{zone} detection", "target": f"<= {detect_within:.2f}s",
                    "measured": _s(detect),
                    "passed": detect is not None and detect <= detect_within})
        goal = plan["expected_states"][zone][-2]
        out.append({"name": f"{zone} reaches {goal}", "target": goal,
                    "measured": ", ".join(measured["reached"]) or "stayed live",
                    "passed": goal in measured["reached"]})
        recover = measured["recover"]
        out.append({"name": f"{zone} recovery", "target": f"<= {recover_within:.2f}s",
                    "measured": _s(recover) if removed_at is not None else "fault not removed",
                    "passed": recover is not None and recover <= recover_within})
        if plan.get("flap_holds"):
            out.append({"name": f"{zone} no flapping", "target": "<= 1 switch away from live",
                        "measured": str(measured["switches_away"]),
                        "passed": measured["switches_away"] <= 1})
    return out


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _series(probes: list[Any], shift: float, kinds: dict[str, str] = COLOURS,
            default: str = "live") -> list[dict[str, Any]]:
    """Probes by ``kinds`` (a probe's source, else ``default``; or wrong, lost) per
    time bucket of ``width`` seconds.

    Buckets are a quarter of a second for drills up to 15 s, else one second.
    """
    span = (probes[-1].sent - probes[0].sent) if probes else 0.0
    width = 0.25 if span <= 15 else 1.0
    buckets: dict[int, dict[str, int]] = {}
    for probe in probes:
        slot = int((probe.sent + shift) // width)
        bucket = buckets.setdefault(slot, {k: 0 for k in kinds})
        key = probe.verdict if probe.verdict in ("wrong", "lost") else (probe.source or default)
        bucket[key] += 1
    return [{"t": round(slot * width, 3), "width": width, **buckets[slot]}
            for slot in sorted(buckets)]


# ---------------------------------------------------------------- rendering

def format_plan(plan: dict[str, Any]) -> str:
    lines = [f"Drill plan: {plan['scenario']} for {plan['duration']:g}s on "
             f"{', '.join(plan['zones'])}", ""]
    lines.append("Thresholds: " + ", ".join(f"{k}={v}" for k, v in plan["thresholds"].items()))
    if plan.get("flap_period"):
        lines.append(f"Flap: {plan['flap_period']:g}s down, then as long up; "
                     + ("the zone should hold its state through it" if plan["flap_holds"]
                        else "recover_after is short enough that the zone may flap"))
    lines += ["", "Expected states:"]
    for zone, states in plan["expected_states"].items():
        lines.append(f"  {zone}: {' -> '.join(states)}")
    lines += ["", "Objectives:"] + [f"  - {o}" for o in plan["objectives"]]
    lines += ["", "Probes (answers expected per state):"]
    for spec in plan["probes"]:
        note = "" if spec["distinct"] else " (live and emergency answers are the same)"
        lines.append(f"  {spec['name']}/{spec['type']}{note}")
    return "\n".join(lines)


def markdown(report: dict[str, Any], svg_name: str | None) -> str:
    drill, measured, probes = report["drill"], report["measured"], report["probes"]
    verdict = report["verdict"].upper()
    lines = [f"# Drill {drill['id']}: {drill['scenario']} — {verdict}", "",
             f"Zones {', '.join(drill['zones'])}; fault for {drill['duration']:g}s from "
             f"{drill['started']} (by {drill['by']}); backends {', '.join(drill['backends'])}.",
             "", "Thresholds in force: " + ", ".join(f"`{k}={v}`" for k, v in
                                                      report["thresholds"].items()), "",
             "## Measured", "",
             "| | seconds |", "| --- | --- |",
             f"| time to detect | {_s(measured['time_to_detect'])} |",
             f"| time to switch | {_s(measured['time_to_switch'])} |",
             f"| time to recover | {_s(measured['time_to_recover'])} |", "",
             f"Probes: {probes['sent']} sent, {probes['ok']} answered correctly, "
             f"{probes['wrong']} wrong, {probes['lost']} lost "
             f"(live {probes['by_source']['live']}, held {probes['by_source']['held']}, "
             f"stale {probes['by_source']['stale']}, "
             f"emergency {probes['by_source']['emergency']}); names: "
             f"{', '.join(probes['qps_names'])}.", ""]
    if svg_name:
        lines += [f"![probes per second by data source]({svg_name})", ""]
    lines += markdown_tail(report, verdict, "Wrong answers (first ones)")
    return "\n".join(lines)


def markdown_tail(report: dict[str, Any], verdict: str, wrong_title: str) -> list[str]:
    """The end every drill report shares: timeline, objectives, the first wrong
    answers (under ``wrong_title``) and the verdict."""
    lines = ["## Timeline", "", "| t (s) | zone | what | seen by |", "| ---: | --- | --- | --- |"]
    for item in report["timeline"]:
        what = str(item["what"]).replace("|", "\\|")
        lines.append(f"| {item['t']:+.3f} | {item['zone'] or ''} | {what} | "
                     f"{item['source']} |")
    lines += ["", "## Objectives", "", "| objective | target | measured | |",
              "| --- | --- | --- | --- |"]
    for o in report["objectives"]:
        lines.append(f"| {o['name']} | {o['target']} | {o['measured']} | "
                     f"{'pass' if o['passed'] else '**FAIL**'} |")
    wrong = report["probes"]["wrong_examples"]
    if wrong:
        lines += ["", f"## {wrong_title}", ""]
        lines += [f"- t={w['t']:+.3f}s {w['probe']}: `{w['got']}`" for w in wrong]
    return lines + ["", f"Verdict: **{verdict}**", ""]


def svg(report: dict[str, Any]) -> str:
    """Probes per second by data source, stacked, with the state changes marked."""
    series = report["probes"]["series"]
    colours = report.get("colours") or COLOURS     # a target-down report has its own kinds
    width, height, left, right, top, bottom = 860, 320, 50, 20, 30, 60
    t_min = min([0] + [s["t"] for s in series])
    t_max = max([report["drill"]["ended"]] + [s["t"] + s["width"] for s in series] + [1.0])
    peak = max([1] + [round(sum(s[k] for k in colours) / s["width"]) for s in series])
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + (t - t_min) / (t_max - t_min) * plot_w

    def y(v: float) -> float:
        return top + plot_h - v / peak * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<title>Drill {escape(report["drill"]["id"])}: probes per second by data source'
           f'</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
           f'stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>',
           f'<text x="{left - 6}" y="{y(peak) + 4:.1f}" text-anchor="end">{peak}</text>',
           f'<text x="{left - 6}" y="{top + plot_h + 4}" text-anchor="end">0</text>',
           f'<text x="12" y="{top + plot_h / 2:.1f}" transform="rotate(-90 12 '
           f'{top + plot_h / 2:.1f})" text-anchor="middle">probes/s</text>']
    for s in series:
        bar = max(1.0, s["width"] * plot_w / (t_max - t_min) - 1)
        base = 0.0
        for key, colour in colours.items():
            if s[key]:
                rate = s[key] / s["width"]
                out.append(f'<rect x="{x(s["t"]):.1f}" y="{y(base + rate):.1f}" '
                           f'width="{bar:.1f}" height="{y(base) - y(base + rate):.1f}" '
                           f'fill="{colour}"><title>t={s["t"]}s {key}: {s[key]} probes '
                           f'({rate:.0f}/s)</title></rect>')
                base += rate
    step = max(1, int((t_max - t_min) / 12) or 1)
    t = int(t_min)
    while t <= t_max:
        out.append(f'<text x="{x(t):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{t}s'
                   f'</text>')
        t += step
    for n, item in enumerate(i for i in report["timeline"] if i["source"] == "server"
                             and (i.get("mark") or "switch" in i["what"]
                                  or "fault" in i["what"])):
        label = item.get("label") or item["what"].split(":")[0]
        if item["zone"]:
            label = f"{item['zone']} {label}"
        xpos = x(item["t"])
        out.append(f'<line x1="{xpos:.1f}" y1="{top}" x2="{xpos:.1f}" y2="{top + plot_h}" '
                   f'stroke="#1565c0" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{xpos + 3:.1f}" y="{top + 10 + 12 * (n % 4)}" fill="#1565c0">'
                   f'{escape(label)}</text>')
    legend_x = left
    for key, colour in colours.items():
        out.append(f'<rect x="{legend_x}" y="{height - 22}" width="10" height="10" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{legend_x + 14}" y="{height - 13}">{key}</text>')
        legend_x += 90
    out.append(f'<text x="{left + plot_w}" y="{height - 13}" text-anchor="end">seconds since '
               f'the fault; dashed: state changes</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_report(report: dict[str, Any], path: Path | None,
                 render: Callable[[dict[str, Any], str | None], str] | None = None) -> str:
    """Write drill.md, drill.json and drill.svg (when ``path``); the readable text.

    ``render`` makes the Markdown (default :func:`markdown`; a target-down
    drill has its own).
    """
    render = render or markdown
    if path is None:
        return render(report, None)
    md_path = path if path.suffix != ".json" else path.with_suffix(".md")
    svg_path = md_path.with_suffix(".svg")
    text = render(report, svg_path.name)
    md_path.write_text(text, encoding="utf-8")
    md_path.with_suffix(".json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n",
                                            encoding="utf-8")
    svg_path.write_text(svg(report), encoding="utf-8")
    return text
