"""Zone files written by someone hostile: names, links and directives that reach too far.

* A zone name comes from a file name only when it is a plain host name
  (``seawall.zones.names``): ``\\047tmp\\047x\\047pwned.zone`` once became the
  zone ``/tmp/x/pwned.``, and its snapshot an absolute path.
* A zone file that links outside the zones directory is not read
  (``seawall.zones.confine``), as ``$INCLUDE`` outside it is not.
* ``$GENERATE`` and ``$INCLUDE`` stay within the budget of one zone load
  (``seawall.zones.budget``): widths, generated records and bytes, include
  reads, time. Past a limit that zone alone fails, with ``file:line``.

``seawall check`` on the same attacks is tested in ``tests/cli/test_check.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.name
import dns.rcode
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ROOT, SeawallProcess, ask
from seawall.zones import budget as budget_module
from seawall.zones.budget import LoadBudget
from seawall.zones.loader import load_directory, load_zone_file, origin_for
from seawall.zones.names import ZoneNameError
from seawall.zones.problems import Location, Problem

ZONE_TEXT = ("$TTL 300\n@ SOA ns1.example.net. hostmaster.example.net. 1 7200 3600 1209600 300\n"
             "@ NS ns1.example.net.\nwww A 192.0.2.1\n")
PLAIN = re.compile(r"[A-Za-z0-9_.-]+")
SOA_NS = "$TTL 300\n@ SOA ns1.example.net. h.example.net. 1 2 3 4 5\n@ NS ns1.example.net.\n"


def escaped(path: Path) -> str:
    """A file name that dnspython's from_text would read as the absolute path ``path``."""
    return str(path).replace("/", "\\047")


def only_problem(loaded) -> str:
    assert loaded.zone is None
    assert [p.is_error for p in loaded.problems] == [True], loaded.problems
    return str(loaded.problems[0])


# ------------------------------------------------------------ finding 1: zone names

@pytest.mark.parametrize("filename, reason", [
    ("\\047tmp\\047x\\047pwned.zone", "the character '\\' is not a letter"),
    ("a\\.b.test.zone", "the character '\\' is not"),
    ("sp ace.test.zone", "the character ' ' is not"),
    ("a..b.test.zone", "empty label"),
    (".a.b.zone", "empty label"),
    ("exämple.test.zone", "the character 'ä' is not"),
    ("tab\there.test.zone", "the character '\\t' is not"),
    ("new\nline.test.zone", "the character '\\n' is not"),
    ("semi;colon.test", "the character ';' is not"),
    ("at@.test.zone", "the character '@' is not"),
    ("star*.test.zone", "the character '*' is not"),
    ("x" * 64 + ".test.zone", "longer than 63 characters"),
    (".".join(["a" * 63] * 4) + ".zone", "longer than 253 characters"),
    ("2.0.192.in-addr.arpa\\.x.yaml", "the character '\\' is not"),
])
def test_file_names_that_are_not_plain_host_names_are_refused(tmp_path, filename, reason):
    path = tmp_path / filename
    with pytest.raises(ZoneNameError, match=re.escape(reason)):
        origin_for(path)
    if len(os.fsencode(filename)) > 255:
        return   # too long for a file system: only the name is checked
    path.write_text(ZONE_TEXT)
    loaded = load_zone_file(path)
    assert loaded.origin is None
    message = only_problem(loaded)
    assert "the file name gives no zone name" in message and reason in message
    assert "\n" not in message   # one line, whatever the file is called


@pytest.mark.parametrize("filename, zone", [
    ("example.com.zone", "example.com."),
    ("example.com", "example.com."),
    ("Example.COM.zone", "Example.COM."),
    ("_dmarc.example.com.zone", "_dmarc.example.com."),
    ("x-1.test.", "x-1.test."),
    ("2.0.192.in-addr.arpa.yml", "2.0.192.in-addr.arpa."),
    ("root.zone", "."),
    ("a" * 63 + ".test.zone", "a" * 63 + ".test."),
    (".".join(["a" * 63] * 3 + ["b" * 61]) + ".zone", ".".join(["a" * 63] * 3 + ["b" * 61]) + "."),
])
def test_plain_host_names_are_zone_names(filename, zone):
    assert origin_for(Path(filename)) == dns.name.from_text(zone)
    assert origin_for(Path(filename)).to_text() == zone


@settings(max_examples=500, deadline=None)
@given(stem=st.text(min_size=0, max_size=300))
@example(stem="\\047tmp\\047x\\047pwned")
@example(stem="\\.")
@example(stem="..")
@example(stem="a\udc80b")
@example(stem="root.")
@example(stem="a.b\n")
def test_any_file_name_gives_a_plain_zone_name_or_is_refused(stem):
    """Property: an accepted file name names a zone whose text is only [A-Za-z0-9_.-]."""
    for suffix in (".zone", ".yaml", ""):
        try:
            origin = origin_for(Path(stem + suffix))
        except ZoneNameError as exc:
            assert str(exc)
            continue
        text = origin.to_text()
        assert PLAIN.fullmatch(text), text
        assert len(origin.to_wire()) <= 255
        assert all(1 <= len(label) <= 63 for label in origin.labels[:-1])


labels = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=63)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(labels, min_size=1, max_size=6), dot=st.booleans())
def test_plain_names_round_trip(parts, dot):
    stem = ".".join(parts) + ("." if dot else "")
    if len(".".join(parts)) > 253:
        with pytest.raises(ZoneNameError):
            origin_for(Path(stem + ".zone"))
    else:
        assert origin_for(Path(stem + ".zone")).to_text() == ".".join(parts) + "."


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(names=st.lists(st.text(st.characters(blacklist_characters="/\x00"), min_size=1,
                              max_size=80), min_size=1, max_size=4, unique=True))
def test_files_of_any_name_in_a_directory_load_or_are_refused(names):
    """Property, on disk: every file is loaded under a plain name or refused with an error."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        written = []
        for name in names:
            if name in (".", ".."):
                continue
            try:
                (directory / name).write_text(ZONE_TEXT)
            except (OSError, UnicodeEncodeError):
                continue   # too long for the file system, or not a file name at all
            written.append(name)
        for loaded in load_directory(directory):
            if loaded.origin is None:
                assert loaded.zone is None and loaded.errors
                assert "the file name gives no zone name" in loaded.errors[0].message
                str(loaded.errors[0]).encode("utf-8")   # printable, whatever the name
            else:
                assert PLAIN.fullmatch(loaded.origin.to_text())


def test_problem_lines_show_unprintable_characters_escaped():
    problem = Problem(Location("zones/a\nzones/b.zone:1: fine\x1b[2J\udc80.zone", 0), "bad")
    text = str(problem)
    assert "\n" not in text and "\x1b" not in text
    assert text == "zones/a\\nzones/b.zone:1: fine\\x1b[2J\\udc80.zone:0: bad"
    text.encode("utf-8")


def _attack_zones(tmp_path: Path, outside: Path, *, emergency_twin: bool) -> Path:
    """zones/ with the project's zones, plus the issue's file named as an escaped path."""
    zones = tmp_path / "zones"
    (zones / "emergency").mkdir(parents=True)
    for rel in ("example.com.zone", "emergency/example.com.zone"):
        (zones / rel).write_text((ROOT / "zones" / rel).read_text())
    name = escaped(outside / "pwned") + ".zone"
    (zones / name).write_text(SOA_NS + "www A 192.0.2.66\n")
    if emergency_twin:
        (zones / "emergency" / name).write_text(SOA_NS + "www A 192.0.2.67\n")
    return zones


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside the test's own, with a path short enough for one DNS label."""
    path = Path(tempfile.mkdtemp(prefix="sw-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.mark.parametrize("emergency_twin", [False, True], ids=["live", "live-and-emergency"])
def test_escaped_path_in_a_file_name_is_never_served(tmp_path, outside, emergency_twin):
    """The issue's attack: ``\\047tmp\\047x\\047pwned.zone`` (and its emergency twin) made
    ``serve`` write ``/tmp/x/pwned.zone`` and ``pwned.json`` at start-up. Now the zone is
    refused, with the reason in the log, and nothing is written outside the state directory;
    the other zones are served. (Whether a broken emergency file stops the start is the
    failover's policy: if it does, the reason names the file name.)"""
    zones = _attack_zones(tmp_path, outside, emergency_twin=emergency_twin)
    server = SeawallProcess(tmp_path, zones=zones, env={"PYTHONPATH": str(ROOT)})
    try:
        server.start()
    except RuntimeError as exc:
        assert emergency_twin and "the file name gives no zone name" in str(exc)
    else:
        try:
            assert ask(server.addr, "www.example.com.").rcode() == dns.rcode.NOERROR
            pwned = dns.name.Name([str(outside / "pwned").encode(), b""])
            assert ask(server.addr, pwned.to_text()).rcode() == dns.rcode.REFUSED
            assert "the file name gives no zone name" in server.output()
        finally:
            server.stop()
        snapshots = tmp_path / ".seawall" / "snapshots"
        assert {p.name for p in snapshots.iterdir()} <= {"example.com.json",
                                                         "example.com.zone",
                                                         "example.com.model"}
    assert list(outside.iterdir()) == []


# ------------------------------------------------------------ finding 5: budgets

def zone_file(tmp_path: Path, body: str, name: str = "budget.test.zone") -> Path:
    path = tmp_path / name
    path.write_text(SOA_NS + body)
    return path


def load(path: Path, **kwargs):
    """Load ``path`` with its problems shown relative to its directory."""
    return load_zone_file(path, display_root=path.parent, **kwargs)


def test_generate_width_is_bounded(tmp_path):
    """The issue's 143 bytes: ``${0,200000000,d}`` took 2 min and 1.8 GB; now refused at once."""
    path = zone_file(tmp_path, "$GENERATE 1-3 h${0,200000000,d} A 192.0.2.1\n")
    message = only_problem(load(path))
    assert message.startswith("budget.test.zone:4: $GENERATE modifier '${0,200000000,d}': "
                              "the width 200000000 is over 255")


def test_generate_width_at_the_limit_is_read(tmp_path):
    path = zone_file(tmp_path, '$GENERATE 1-2 h$ TXT "${0,255,d}"\n')
    loaded = load(path)
    assert loaded.ok
    assert len([r for r in loaded.records if r.rdata.rdtype == 16]) == 2


def test_generate_nibbles_of_a_negative_value_are_refused(tmp_path):
    """``${-5,0,n}`` of 1 looped for ever (a negative number never shifts down to 0)."""
    path = zone_file(tmp_path, "$GENERATE 1-2 ${-5,0,n}.x PTR a.example.net.\n")
    message = only_problem(load(path))
    assert "budget.test.zone:4: $GENERATE modifier '${-5,0,n}': the nibble format needs " \
           "values of 0 or more, not -4" == message


@pytest.mark.parametrize("line", [
    "$GENERATE 1-99999999999999999999 h$ A 192.0.2.1",
    "$GENERATE 1-3 h${99999999999999999999} A 192.0.2.1",
    "$GENERATE 1-3 h${0,99999999999999999999} A 192.0.2.1",
])
def test_generate_numbers_are_bounded(tmp_path, line):
    message = only_problem(load(zone_file(tmp_path, line + "\n")))
    assert message.startswith("budget.test.zone:4: ") and "2147483647" in message


def test_generated_records_are_counted_per_zone(tmp_path):
    """Each line under the limit, together over it: the zone is not loaded."""
    path = zone_file(tmp_path, "$GENERATE 1-40000 a$ A 192.0.2.1\n"
                               "$GENERATE 1-30000 b$ A 192.0.2.1\n")
    message = only_problem(load(path))
    assert message == ("budget.test.zone:5: $GENERATE: more than 65536 records generated in "
                       "this zone (the records one zone load may generate); the zone is not "
                       "loaded")


def test_generated_bytes_are_counted_per_zone(tmp_path):
    """20,000 TXT records of four 255-byte strings: 20 MB of text, over 16 MiB."""
    path = zone_file(tmp_path, '$GENERATE 1-20000 t$ TXT "${0,255}" "${0,255}" "${0,255}" '
                               '"${0,255}"\n')
    message = only_problem(load(path))
    assert message.startswith("budget.test.zone:4: $GENERATE: more than 16777216 bytes of "
                              "text generated in this zone")


def fan_out(directory: Path, levels: int, width: int = 10) -> Path:
    """The issue's include tree: each file includes the next one ``width`` times."""
    directory.mkdir(exist_ok=True)
    (directory / f"l{levels}.inc").write_text("leaf A 192.0.2.1\n")
    for level in range(levels - 1, 0, -1):
        (directory / f"l{level}.inc").write_text(f"$INCLUDE l{level + 1}.inc\n" * width)
    return zone_file(directory, f"$INCLUDE l1.inc\n" * width, name="fan.test.zone")


def test_include_fan_out_is_bounded(tmp_path):
    """10 per level, 4 levels: 11,110 file reads before; now at most 256 per zone."""
    path = fan_out(tmp_path / "zones", 4)
    loaded = load(path)
    assert loaded.zone is None
    assert [str(p) for p in loaded.problems] == [
        "l3.inc:10: $INCLUDE: more than 256 files read for this zone (the reads one zone load "
        "may do); the zone is not loaded"]


def test_deep_include_fan_out_ends_at_the_budget(tmp_path):
    """At depth 8 the same tree would be 10^8 reads."""
    loaded = load(fan_out(tmp_path / "zones", 8))
    assert "more than 256 files read" in only_problem(loaded)


def test_includes_within_the_budget_are_read(tmp_path):
    path = fan_out(tmp_path / "zones", 2, width=16)   # 16 + 256 reads
    assert "more than 256" in only_problem(load(path))
    path = fan_out(tmp_path / "zones2", 2, width=15)  # 15 + 225 reads
    loaded = load(path)
    assert loaded.ok and len(loaded.records) == 2 + 225


def test_time_budget_ends_the_full_reader(tmp_path):
    path = zone_file(tmp_path, "$GENERATE 1-50000 h$ A 192.0.2.1\n")
    loaded = load(path, budget=LoadBudget.start(seconds=0.05))
    message = only_problem(loaded)
    assert message.startswith("budget.test.zone:4: loading this zone took longer than "
                              "0.05 s (the time one zone load may take)")


def test_time_budget_ends_the_fast_reader(tmp_path):
    """A plain file takes the fast route; its time is bounded too, without a second read."""
    path = zone_file(tmp_path, "".join(f"h{i} A 192.0.2.1\n" for i in range(10000)))
    loaded = load(path, budget=LoadBudget.start(seconds=0))
    assert only_problem(loaded).startswith("budget.test.zone:4096: loading this zone took "
                                           "longer than 0 s")


def test_one_slow_zone_fails_alone(tmp_path, monkeypatch):
    """The directory's other zones load; only the file past its budget has no zone."""
    monkeypatch.setattr(budget_module, "LOAD_SECONDS", 0.3)
    zones = tmp_path / "zones"
    zones.mkdir()
    zone_file(zones, "$GENERATE 1-60000 h$ A 192.0.2.1\n", name="slow.test.zone")
    zone_file(zones, "www A 192.0.2.2\n", name="quick.test.zone")
    zone_file(zones, "$GENERATE 1-3 h${0,999,d} A 192.0.2.1\n", name="wide.test.zone")
    zone_file(zones, "www A 192.0.2.3\n", name="other.test.zone")
    results = {loaded.path.name: loaded for loaded in load_directory(zones)}
    assert results["quick.test.zone"].ok and results["other.test.zone"].ok
    assert "took longer than 0.3 s" in only_problem(results["slow.test.zone"])
    assert "the width 999 is over 255" in only_problem(results["wide.test.zone"])


# ------------------------------------------------------------ finding 7: links

def test_zone_file_linked_outside_the_directory_is_refused(tmp_path):
    """The issue's ``zones/c.test.zone -> /etc/os-release`` was read; now it is refused."""
    zones = tmp_path / "zones"
    zones.mkdir()
    secret = tmp_path / "secret.zone"
    secret.write_text(SOA_NS + "www A 192.0.2.99\n")   # would load, if it were read
    (zones / "c.test.zone").symlink_to(secret)
    (zones / "os.test.zone").symlink_to("/etc/os-release")
    (zones / "good.test.zone").write_text(ZONE_TEXT)
    results = {loaded.path.name: loaded for loaded in load_directory(zones, display_root=tmp_path)}
    assert results["good.test.zone"].ok
    for name, target in (("c.test.zone", secret), ("os.test.zone", "/etc/os-release")):
        loaded = results[name]
        assert loaded.records == []
        message = only_problem(loaded)
        assert message.startswith(f"zones/{name}:0: cannot read zone file: ")
        assert "outside the zones directory" in message


def test_octodns_file_linked_outside_the_directory_is_refused(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    secret = tmp_path / "secret.yaml"
    secret.write_text("'':\n  type: A\n  value: 192.0.2.1\n")
    (zones / "y.test.yaml").symlink_to(secret)
    loaded = load(zones / "y.test.yaml", include_root=zones)
    assert "outside the zones directory" in only_problem(loaded)


def test_link_inside_the_directory_is_followed(tmp_path):
    zones = tmp_path / "zones"
    (zones / "git").mkdir(parents=True)
    (zones / "git" / "real.test.zone").write_text(ZONE_TEXT)
    (zones / "alias.test.zone").symlink_to("git/real.test.zone")
    (zones / "hosts.inc").write_text("mail A 192.0.2.25\n")
    (zones / "inc.inc").symlink_to("hosts.inc")
    (zones / "inc.test.zone").write_text(ZONE_TEXT + "$INCLUDE inc.inc\n")
    results = {loaded.path.name: loaded for loaded in load_directory(zones)}
    assert results["alias.test.zone"].ok
    assert results["inc.test.zone"].ok and len(results["inc.test.zone"].records) == 4


def test_linked_include_outside_the_directory_is_refused(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    (tmp_path / "secret.inc").write_text("stolen A 192.0.2.66\n")
    (zones / "link.inc").symlink_to(tmp_path / "secret.inc")
    path = zone_file(zones, "$INCLUDE link.inc\n", name="inc.test.zone")
    loaded = load(path)
    assert "outside the zones directory" in only_problem(loaded)
    assert not any(r.name.labels[0] == b"stolen" for r in loaded.records)


def test_fifo_is_refused_not_waited_for(tmp_path):
    """A FIFO, as a zone file's link target or as an include, would block the reader."""
    zones = tmp_path / "zones"
    zones.mkdir()
    os.mkfifo(zones / "pipe")
    (zones / "pipe.test.zone").symlink_to("pipe")
    zone_file(zones, "$INCLUDE pipe\n", name="inc.test.zone")
    results = {loaded.path.name: loaded for loaded in load_directory(zones)}
    assert "is not a regular file" in only_problem(results["pipe.test.zone"])
    assert "is not a regular file" in only_problem(results["inc.test.zone"])


def test_dangling_link_is_an_error_not_a_silent_skip(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "gone.test.zone").symlink_to("nowhere.test.zone")
    [loaded] = load_directory(zones)
    assert "cannot read zone file: No such file or directory" in only_problem(loaded)


def test_link_loops_are_errors_not_crashes(tmp_path):
    """``Path.resolve`` raises on a loop of links; the reader reports it instead."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "loop.inc").symlink_to("loop.inc")
    (zones / "self.test.zone").symlink_to("self.test.zone")
    zone_file(zones, "$INCLUDE loop.inc\n", name="inc.test.zone")
    results = {loaded.path.name: loaded for loaded in load_directory(zones)}
    assert only_problem(results["self.test.zone"]) == (
        "zones/self.test.zone:0: cannot read zone file: Too many levels of symbolic links")
    assert only_problem(results["inc.test.zone"]) == (
        "zones/inc.test.zone:4: cannot read $INCLUDE loop.inc: Too many levels of symbolic "
        "links")
