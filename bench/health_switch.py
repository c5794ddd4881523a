"""What a change of the health view costs on a big zone, in process and in a real server.

A zone of ``--records`` records (bench/zonegen.py) gets one health-checked
RRset, ``www A`` with the targets 127.0.0.2 to 127.0.0.5 (TCP checks; the
targets are the test listeners of tests/health/targets.py). Two parts:

* ``inproc``: the answer filter (``AnswerFilter``, what ``refilter`` runs
  on the supervisor's event loop) for each view, and the answer tables of
  the new ZoneSet after it (``TableStore.prepare``, what a worker generation
  waits for), with how many questions were built and how many reused.
* ``server``: ``seawall serve --workers 2`` on the zone; once it serves warm,
  one target is killed and revived ``--rounds`` times, another target each
  round, so that each kill makes a view not served before. A thread asks the
  control channel for ``status`` every 20 ms (it is served on the event
  loop, so its latency shows the loop stalling), another asks ``www A``
  every 10 ms. Per change: from the server's "target down/up" log line to
  the zone swap and to the workers serving it (log times), from the kill or
  revival to the first answer with the new set (client clock), and the
  slowest control and DNS answer in that window.

Example::

    .venv/bin/python bench/health_switch.py                    # both parts, 100k records
    .venv/bin/python bench/health_switch.py --part inproc --records 20000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "health"))

import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.query  # noqa: E402

from targets import Target, free_port_on  # noqa: E402
from zonegen import ORIGIN, write_zone  # noqa: E402

TARGETS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
SIDE = """www:
  type: A
  dynamic:
    pools:
      main:
        values: [{{value: 127.0.0.2}}, {{value: 127.0.0.3}}, {{value: 127.0.0.4}},
                 {{value: 127.0.0.5}}]
    rules: [{{pool: main}}]
  healthcheck: {{protocol: TCP, port: {port}, interval: 0.5s, timeout: 0.4s, rise: 1,
                fall: 1, hold_down: 0s}}
"""


def make_zones(directory: Path, records: int, port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    zone = directory / f"{ORIGIN}zone"
    write_zone(zone, records)
    with open(zone, "a", encoding="ascii") as out:
        out.write("".join(f"www IN A {a}\n" for a in TARGETS))
    (directory / f"{ORIGIN}health.conf").write_text(SIDE.format(port=port))
    return zone


# ------------------------------------------------------------------ in process

def run_inproc(records: int) -> dict:
    from seawall.config import HealthConfig
    from seawall.dns.answers import TableStore
    from seawall.health.answers import AnswerFilter
    from seawall.health.declaration import read_side_file
    from seawall.zones.loader import load_zone_file
    from seawall.zones.zoneset import ZoneSet

    work = Path(tempfile.mkdtemp(prefix="seawall-health-"))
    zone_path = make_zones(work, records, 80)
    origin = dns.name.from_text(ORIGIN)
    zone = load_zone_file(zone_path).zone
    _, rrsets = read_side_file(work / f"{ORIGIN}health.conf", HealthConfig())
    flt = AnswerFilter()
    flt.set_declarations({origin: rrsets})
    key = (origin, rrsets[0].key)
    tables = TableStore(limit=4 * records)
    zoneset = ZoneSet([flt(origin, zone)])
    started = time.perf_counter()
    for _ in tables.prepare(zoneset):
        pass
    out: dict = {"records": records, "first_tables_s": time.perf_counter() - started,
                 "changes": []}
    views = [tuple(a for a in TARGETS if a != down) for down in TARGETS] + [tuple(TARGETS)]
    for answer in views:
        flt.answers[key] = answer
        flt._cache.clear()   # a view not seen before (the cache holds the last few)
        started = time.perf_counter()
        derived = flt(origin, zone)
        filtered = time.perf_counter() - started
        new = zoneset.replace({origin: derived})
        built, reused = tables.built, tables.reused
        started = time.perf_counter()
        for _ in tables.prepare(new):
            pass
        prepared = time.perf_counter() - started
        out["changes"].append({"answer": answer, "filter_s": filtered, "tables_s": prepared,
                               "built": tables.built - built,
                               "reused": tables.reused - reused})
        tables.retain(new)
        zoneset = new
    return out


# ------------------------------------------------------------------ real server

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_time(line: str) -> float | None:
    found = LOG_TIME.match(line)
    if found is None:
        return None
    moment = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return moment.timestamp()


def control_status(sock_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(sock_path))
        sock.sendall(json.dumps({"version": 1, "command": "status"}).encode() + b"\n")
        sock.makefile("rb").readline()


class Prober(threading.Thread):
    """Calls ``fn`` every ``every`` seconds; keeps (wall time sent, latency, result)."""

    def __init__(self, fn, every: float) -> None:
        super().__init__(daemon=True)
        self.fn, self.every = fn, every
        self.seen: list[tuple[float, float, object]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            sent = time.time()
            try:
                result = self.fn()
            except Exception as exc:   # noqa: BLE001 - a failed probe is a data point
                result = exc
            self.seen.append((sent, time.time() - sent, result))
            self.stopping.wait(self.every)


def run_server(records: int, rounds: int, workers: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="seawall-health-"))
    port = free_port_on(TARGETS)
    targets = {a: Target(a, port, "tcp").start() for a in TARGETS}
    make_zones(work / "zones", records, port)
    config = work / "seawall.yaml"
    config.write_text(f"listen: ['127.0.0.1:0']\nstate_dir: state\nworkers: {workers}\n"
                      "zones: zones\nfailover: {require_emergency: false}\n")
    ready = work / "ready.json"
    log_path = work / "seawall.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "seawall", "serve", "--config", str(config),
                             "--ready-file", str(ready)], cwd=work, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text())
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        addr = (info["listen"][0]["host"], info["listen"][0]["port"])
        while "warm)" not in log_path.read_text():   # the first warm generation
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text())
            time.sleep(0.2)
        time.sleep(2)

        def www() -> frozenset:
            query = dns.message.make_query(f"www.{ORIGIN}", "A")
            response = dns.query.udp(query, addr[0], port=addr[1], timeout=2)
            return frozenset(r.to_text() for rrset in response.answer for r in rrset)

        control = Prober(lambda: control_status(work / "state" / "control.sock"), 0.02)
        dns_probe = Prober(www, 0.01)
        control.start()
        dns_probe.start()
        changes = []
        for round_ in range(rounds):
            victim = TARGETS[round_ % len(TARGETS)]
            for action, want in (("kill", frozenset(TARGETS) - {victim}),
                                 ("revive", frozenset(TARGETS))):
                lines_before = len(log_path.read_text().splitlines())
                began = time.time()
                getattr(targets[victim], action)()
                while time.time() - began < 30:
                    hits = [s for s in dns_probe.seen if s[0] >= began and s[2] == want]
                    if hits:
                        break
                    time.sleep(0.01)
                answered = hits[0][0] + hits[0][1] if hits else None
                time.sleep(1.5)
                lines = log_path.read_text().splitlines()[lines_before:]
                changes.append(summarize(action, began, answered, lines, control, dns_probe))
                print(json.dumps(changes[-1]), flush=True)
        control.stopping.set()
        dns_probe.stopping.set()
        return {"records": records, "workers": workers, "changes": changes}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for target in targets.values():
            target.kill()


def summarize(action: str, began: float, answered: float | None, lines: list[str],
              control: Prober, dns_probe: Prober) -> dict:
    def first(pattern: str) -> float | None:
        for line in lines:
            if re.search(pattern, line):
                return log_time(line)
        return None

    seen_change = first(r"target (down|up): ")
    swapped = first(r"zones swapped: ")
    serving = first(r"workers: generation=\d+ serving")
    end = (answered or began) + 1.0
    window = [s for s in control.seen if began <= s[0] <= end]
    dns_window = [s for s in dns_probe.seen if began <= s[0] <= end]
    rel = (lambda t: round(t - seen_change, 3) if t is not None and seen_change else None)
    return {"action": action,
            "client_s": round(answered - began, 3) if answered is not None else None,
            "swap_after_change_s": rel(swapped), "serving_after_change_s": rel(serving),
            "answered_after_change_s": rel(answered),
            "control_max_s": round(max((s[1] for s in window), default=0), 3),
            "dns_max_s": round(max((s[1] for s in dns_window), default=0), 3),
            "cold": any("cold" in line and "serving pids" in line for line in lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--part", choices=("inproc", "server", "both"), default="both")
    args = parser.parse_args()
    result: dict = {}
    if args.part in ("inproc", "both"):
        result["inproc"] = run_inproc(args.records)
        print(json.dumps(result["inproc"], indent=1), flush=True)
    if args.part in ("server", "both"):
        result["server"] = run_server(args.records, args.rounds, args.workers)
        changes = result["server"]["changes"]
        for key in ("swap_after_change_s", "serving_after_change_s", "answered_after_change_s",
                    "control_max_s", "dns_max_s"):
            values = [c[key] for c in changes if c[key] is not None]
            if values:
                print(f"{key}: median {statistics.median(values):.3f} max {max(values):.3f}")
    out = ROOT / "bench" / "results" / f"health-switch-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
