"""BIND and Knot as secondaries of Seawall: transfer, NOTIFY, IXFR, failover and back.

The zone's SOA REFRESH is two hours, so a secondary that picks up a change
within seconds did so because of Seawall's NOTIFY. The failover switch is
forced by breaking the live zone file (``fail_after: 3`` at
``probe_interval: 0.2s``, ``stale_for: 0s``: emergency in about a second)
and undone by fixing it; the secondaries must follow both ways, which they
do only because the served serial moves forward each time (seawall/dns/serials.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SeawallProcess, ask, free_port, wait_for
from secondaries import Bind, Knot
from transfer_setup import SECRET, ZONE, events, primary_config

FAILOVER = "  probe_interval: 0.2s\n  fail_after: 3\n  recover_after: 3\n  stale_for: 0s\n"
KEY = ("xfr-key", "hmac-sha256", SECRET)
KEYS = f"  keys: [{{name: xfr-key, algorithm: hmac-sha256, secret: \"{SECRET}\"}}]\n"
SECONDARIES = {"bind": Bind, "knot": Knot}


def served_serial(server: SeawallProcess) -> int:
    return ask(server.addr, ZONE, "SOA").answer[0][0].serial


def ixfr_seen(secondary, text: str) -> bool:
    if isinstance(secondary, Bind):
        # named -d 3: "transfer of 'example.com/IN' from ...: got incremental response"
        return bool(re.search(r"'example\.com/IN' from .*: got incremental response", text))
    return bool(re.search(r"example\.com\.\] IXFR, incoming", text))


@pytest.mark.interop
@pytest.mark.parametrize("kind", sorted(SECONDARIES))
def test_secondary_follows_notify_ixfr_and_a_failover_switch_and_back(tmp_path: Path, kind):
    port = free_port()
    secondary = SECONDARIES[kind](tmp_path / kind, ("127.0.0.1", port), [ZONE])
    config = primary_config(tmp_path, "  allow: [{address: [\"127.0.0.0/8\"]}]\n"
                            f"  notify: [\"127.0.0.1:{secondary.port}\"]\n",
                            failover=FAILOVER, port=port)
    server = SeawallProcess(tmp_path, config=config).start()
    path = tmp_path / "zones" / "example.com.zone"
    good = path.read_text()
    try:
        with secondary:
            # 1. the first transfer
            assert wait_for(lambda: secondary.serial(ZONE) == 2026112701), \
                secondary.output() + server.output()
            assert secondary.address(f"www.{ZONE}") == "192.0.2.80"
            # 2. a change, followed at once thanks to NOTIFY, by IXFR
            changed = good.replace("2026112701", "2026112702").replace(
                "www         A     192.0.2.80", "www         A     192.0.2.81")
            path.write_text(changed)
            assert wait_for(lambda: secondary.address(f"www.{ZONE}") == "192.0.2.81"), \
                secondary.output() + server.output()
            assert secondary.serial(ZONE) == 2026112702
            assert wait_for(lambda: "notify acknowledged: zone=example.com. serial=2026112702"
                            in server.output(), 5), server.output()   # acked after the transfer
            assert wait_for(lambda: ixfr_seen(secondary, secondary.output()), 5), \
                secondary.output()
            assert "how=ixfr " in server.output()
            # 3. the backend fails (the file is gone; stale_for: 0s): emergency, served
            #    above the live serial (a broken file would be held, not switched from)
            path.unlink()
            assert wait_for(lambda: secondary.address(f"www.{ZONE}") == "192.0.2.99"), \
                secondary.output() + server.output()
            assert served_serial(server) == 2026112703    # the emergency file says 2026112701
            assert secondary.serial(ZONE) == 2026112703
            assert [e for e in events(tmp_path / "state") if e["to"] == "emergency"]
            # 4. fixed: back to live, one serial higher again
            path.write_text(changed)
            assert wait_for(lambda: secondary.address(f"www.{ZONE}") == "192.0.2.81"), \
                secondary.output() + server.output()
            assert served_serial(server) == 2026112704    # the live file still says ...02
            assert secondary.serial(ZONE) == 2026112704
    finally:
        server.stop()


@pytest.mark.interop
@pytest.mark.parametrize("kind", sorted(SECONDARIES))
def test_tsig_signed_transfers_and_notify(tmp_path: Path, kind):
    port = free_port()
    secondary = SECONDARIES[kind](tmp_path / kind, ("127.0.0.1", port), [ZONE], key=KEY)
    config = primary_config(tmp_path, KEYS + "  allow: [{key: xfr-key}]\n"
                            f"  notify: [\"127.0.0.1:{secondary.port}\"]\n"
                            "  notify_key: xfr-key\n", failover=FAILOVER, port=port)
    server = SeawallProcess(tmp_path, config=config).start()
    path = tmp_path / "zones" / "example.com.zone"
    try:
        with secondary:
            assert wait_for(lambda: secondary.serial(ZONE) == 2026112701), \
                secondary.output() + server.output()
            assert "key=xfr-key." in server.output()
            path.write_text(path.read_text().replace("2026112701", "2026112702")
                            .replace("www         A     192.0.2.80", "www         A     192.0.2.81"))
            assert wait_for(lambda: secondary.address(f"www.{ZONE}") == "192.0.2.81"), \
                secondary.output() + server.output()
            assert wait_for(lambda: "notify acknowledged: zone=example.com. serial=2026112702"
                            in server.output(), 5), server.output()   # acked after the transfer
    finally:
        server.stop()


@pytest.mark.interop
@pytest.mark.parametrize("kind", sorted(SECONDARIES))
def test_secondary_without_the_key_is_refused(tmp_path: Path, kind):
    port = free_port()
    secondary = SECONDARIES[kind](tmp_path / kind, ("127.0.0.1", port), [ZONE])
    config = primary_config(tmp_path, KEYS + "  allow: [{key: xfr-key}]\n", port=port)
    server = SeawallProcess(tmp_path, config=config).start()
    try:
        with secondary:
            assert wait_for(lambda: "transfer refused: zone=example.com." in server.output(), 10), \
                secondary.output() + server.output()
            assert "reason=not allowed by transfers.allow" in server.output()
            assert secondary.serial(ZONE) is None
    finally:
        server.stop()


@pytest.mark.interop
@pytest.mark.parametrize("kind", sorted(SECONDARIES))
def test_signed_transfer_of_a_zone_bigger_than_one_message(tmp_path: Path, kind):
    from test_transfer_out import big_zone

    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.com.zone").write_text(big_zone(4000))
    port = free_port()
    secondary = SECONDARIES[kind](tmp_path / kind, ("127.0.0.1", port), [ZONE], key=KEY)
    config = primary_config(tmp_path, KEYS + "  allow: [{key: xfr-key}]\n",
                            failover="  require_emergency: false\n", port=port)
    server = SeawallProcess(tmp_path, config=config).start()
    try:
        with secondary:
            assert wait_for(lambda: secondary.address(f"host3999.{ZONE}") == "10.0.15.159"), \
                secondary.output()[-3000:] + server.output()
            sent = re.search(r"transfer out: zone=example.com. how=axfr .* key=xfr-key. "
                             r"messages=(\d+)", server.output())
            assert sent and int(sent[1]) > 2, server.output()
            if isinstance(secondary, Bind):
                # named may answer from the new zone a moment before it logs the transfer
                done = wait_for(lambda: re.search(r"Transfer completed: (\d+) messages, "
                                                  r"8007 records", secondary.output()), 5)
                assert done and int(done[1]) == int(sent[1]), secondary.output()[-3000:]
    finally:
        server.stop()
