"""A reload reads again only the emergency files that changed.

An emergency file is the data of last resort and is often as big as the
live zone; re-reading every one on each SIGHUP took CPU from the answers
for as long as the parse lasted. Unchanged files (and their includes) keep
the zone loaded before; any change reads the file again.
"""

from __future__ import annotations

import shutil
import signal

import dns.name

from conftest import ROOT, SeawallProcess, ask, free_port, wait_for
from seawall.failover.emergency import load_emergency

ZONE = dns.name.from_text("example.com.")


def write(directory, address: str = "192.0.2.10", serial: int = 1):
    directory.mkdir(exist_ok=True)
    (directory / "hosts.inc").write_text(f"www IN A {address}\n")
    (directory / "example.com.zone").write_text(
        "$ORIGIN example.com.\n$TTL 300\n"
        f"@ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n"
        "@ IN NS ns1\nns1 IN A 192.0.2.1\n$INCLUDE hosts.inc\n")


def www(zone) -> list[str]:
    return [r.address for r in zone.find_node(dns.name.from_text("www.example.com.")).get(1)]


def test_unchanged_files_keep_the_zone_loaded_before(tmp_path):
    write(tmp_path / "emergency")
    first = load_emergency(tmp_path / "emergency")
    again = load_emergency(tmp_path / "emergency", previous=first)
    assert again.zones[ZONE] is first.zones[ZONE]
    assert again.mtimes[ZONE] == first.mtimes[ZONE]
    # And once more from the reused set: its file signatures came along.
    assert load_emergency(tmp_path / "emergency", previous=again).zones[ZONE] is first.zones[ZONE]


def test_a_changed_file_or_include_is_read_again(tmp_path):
    directory = tmp_path / "emergency"
    write(directory)
    first = load_emergency(directory)
    (directory / "hosts.inc").write_text("www IN A 192.0.2.99\n")
    second = load_emergency(directory, previous=first)
    assert second.zones[ZONE] is not first.zones[ZONE]
    assert www(second.zones[ZONE]) == ["192.0.2.99"]
    write(directory, address="192.0.2.55", serial=2)
    third = load_emergency(directory, previous=second)
    assert third.zones[ZONE].serial == 2 and www(third.zones[ZONE]) == ["192.0.2.55"]


def test_a_removed_file_is_gone_and_a_broken_one_is_reported(tmp_path):
    directory = tmp_path / "emergency"
    write(directory)
    first = load_emergency(directory)
    (directory / "example.com.zone").write_text("$ORIGIN example.com.\n@ IN A not-an-address\n")
    broken = load_emergency(directory, previous=first)
    assert ZONE not in broken.zones and ZONE in broken.broken
    (directory / "example.com.zone").unlink()
    assert ZONE not in load_emergency(directory, previous=first).zones


def test_sighup_reads_only_the_emergency_file_that_changed(tmp_path):
    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{free_port()}\"]\nzones: zones\n"
                      "emergency_dir: zones/emergency\nstate_dir: state\n"
                      "failover:\n  probe_interval: 1h\n")
    server = SeawallProcess(tmp_path, config=config).start()
    ready = "emergency zone ready: zone=example.com."
    try:
        assert server.output().count(ready) == 1
        server.signal(signal.SIGHUP)
        looked = "emergency files looked at again"
        assert wait_for(lambda: looked in server.output()), server.output()
        assert "unchanged=1 changed=0" in server.output()
        assert server.output().count(ready) == 1, server.output()
        emergency = zones / "emergency" / "example.com.zone"
        emergency.write_text(emergency.read_text() + "added-by-test IN A 192.0.2.250\n")
        server.signal(signal.SIGHUP)
        assert wait_for(lambda: server.output().count(looked) == 2), server.output()
        assert server.output().count(ready) == 2 and "unchanged=0 changed=1" in server.output()
        assert ask(server.addr, "www.example.com.").answer   # serving throughout
    finally:
        server.stop()
