"""A restart does not parse zone files that did not change since their last good snapshot.

The files backend compares each zone file's signature, and those of the files
it includes, with the tag of the restored last good version; only when every
one matches does it report that version instead of reading the file. Any
change to any of them (the zone file, an included file) reads the file, and
a tag that names a path outside the zones directory is never followed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import dns.name

from conftest import SeawallProcess, ask, free_port, wait_for
from seawall.backends.files import FilesBackend
from seawall.failover.control_client import ControlClient

ZONE = dns.name.from_text("example.com.")
INCLUDED = "www IN A 192.0.2.10\n"


def write_zones(directory: Path) -> Path:
    directory.mkdir()
    (directory / "hosts.inc").write_text(INCLUDED)
    zone = directory / "example.com.zone"
    zone.write_text("$ORIGIN example.com.\n$TTL 300\n"
                    "@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
                    "@ IN NS ns1\nns1 IN A 192.0.2.1\n$INCLUDE hosts.inc\n")
    return zone


def first_look(backend: FilesBackend, force: bool = True):
    """A look at the directory; the first look at start-up reads every file (force)."""
    reports = asyncio.run(backend.check(force=force))
    return {r.origin: r for r in reports}


def restarted(directory: Path) -> tuple[FilesBackend, object]:
    """A backend that read the files once, then a new one given that version as restored."""
    before = FilesBackend(directory)
    version = first_look(before)[ZONE].version
    assert version is not None and version.zone is not None
    after = FilesBackend(directory)
    after.restored([(ZONE, version.zone, version.source, version.tag)])
    return after, version


def test_unchanged_files_report_the_restored_version_without_reading(tmp_path):
    directory = tmp_path / "zones"
    write_zones(directory)
    backend, version = restarted(directory)
    report = first_look(backend)[ZONE]
    assert report.ok and report.version is not None
    assert report.version.zone is version.zone          # the snapshot's zone, not a new read
    assert report.tag == version.tag
    assert "hosts.inc=" in version.tag and version.tag.startswith("example.com.zone=")
    # The next look sees the same files: nothing new.
    again = first_look(backend, force=False)[ZONE]
    assert again.version is None and again.tag == version.tag


def test_a_changed_included_file_is_read(tmp_path):
    directory = tmp_path / "zones"
    write_zones(directory)
    backend, version = restarted(directory)
    (directory / "hosts.inc").write_text("www IN A 192.0.2.99\n")
    report = first_look(backend)[ZONE]
    assert report.version is not None and report.version.zone is not version.zone
    www = report.version.zone.find_node(dns.name.from_text("www.example.com.")).get(1)
    assert [r.address for r in www] == ["192.0.2.99"]
    assert report.tag != version.tag


def test_a_rewritten_zone_file_with_the_same_bytes_is_read(tmp_path):
    directory = tmp_path / "zones"
    zone = write_zones(directory)
    backend, version = restarted(directory)
    data = zone.read_bytes()
    zone.unlink()
    zone.write_bytes(data)        # what a git checkout does: a new inode, a new ctime
    report = first_look(backend)[ZONE]
    assert report.version is not None and report.version.zone is not version.zone


def test_a_tag_naming_a_path_outside_the_directory_is_not_followed(tmp_path):
    directory = tmp_path / "zones"
    zone = write_zones(directory)
    outside = tmp_path / "outside.inc"
    outside.write_text(INCLUDED)
    st = os.stat(outside)
    signature = f"{st.st_mtime_ns}.{st.st_size}.{st.st_ino}.{st.st_ctime_ns}"
    backend, version = restarted(directory)
    main_part = version.tag.split(",")[0]
    for tag in (f"{main_part},../outside.inc={signature}",
                f"{main_part},{outside}={signature}", "a.b.c.d", ""):
        fresh = FilesBackend(directory)
        fresh.restored([(ZONE, version.zone, version.source, tag)])
        report = first_look(fresh)[ZONE]
        assert report.version is not None and report.version.zone is not version.zone, tag
    assert zone.exists()


def test_a_version_from_another_directory_is_not_taken(tmp_path):
    directory = tmp_path / "zones"
    write_zones(directory)
    other = tmp_path / "other"
    shutil.copytree(directory, other)
    _, version = restarted(other)
    backend = FilesBackend(directory)
    backend.restored([(ZONE, version.zone, version.source, version.tag)])
    report = first_look(backend)[ZONE]
    assert report.version is not None and report.version.zone is not version.zone


def status(tmp_path: Path) -> dict:
    zones = ControlClient(state_dir=tmp_path / "state").call("status")["status"]["zones"]
    return next(z for z in zones if z["zone"] == "example.com.")


def test_restart_after_an_include_changed_while_stopped_reads_it(tmp_path):
    """Changed without a new serial, the include is held at the restart's first
    look: proof that it was read, not taken for the snapshot."""
    zones = tmp_path / "zones"
    write_zones(zones)
    config = tmp_path / "seawall.yaml"
    config.write_text(f"listen: [\"127.0.0.1:{free_port()}\"]\nzones: zones\n"
                      "state_dir: state\nfailover:\n  require_emergency: false\n"
                      "  probe_interval: 60s\n")
    server = SeawallProcess(tmp_path, config=config).start()
    try:
        assert ask(server.addr, "www.example.com.").answer[0][0].address == "192.0.2.10"
        assert wait_for(lambda: (tmp_path / "state" / "snapshots" / "example.com.json").exists())
    finally:
        server.stop()
    (zones / "hosts.inc").write_text("www IN A 192.0.2.77\n")
    server = SeawallProcess(tmp_path, config=config).start()
    try:
        # The probe interval is a minute: only the start-up look can have read it.
        assert wait_for(lambda: status(tmp_path)["state"] == "held"), server.output()
        assert "bump the serial" in status(tmp_path)["held"]["reason"]
        assert ask(server.addr, "www.example.com.").answer[0][0].address == "192.0.2.10"
    finally:
        server.stop()
