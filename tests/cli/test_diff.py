"""``seawall diff OLD NEW``, and the git hook and CI step in contrib/ that run it.

Exit 0 when the answers would not change, 1 when they would, 2 on errors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from seawall.zones.export import to_octodns_yaml
from seawall.zones.loader import load_zone_file

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SEAWALL = f"{sys.executable} -m seawall"
ZONE = """\
$ORIGIN example.net.
$TTL 3600
@    SOA  ns1 hostmaster 1 7200 3600 1209600 300
@    NS   ns1
ns1  A    192.0.2.53
www  A    192.0.2.80
www  A    192.0.2.81
old  TXT  "going away"
"""


def seawall(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seawall", *args], capture_output=True,
                          text=True, timeout=60, env=ENV, cwd=cwd)


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    """old/zones and new/zones, each with the project's example zones and example.net."""
    pair = []
    for side in ("old", "new"):
        zones = tmp_path / side / "zones"
        shutil.copytree(ROOT / "zones", zones)
        (zones / "example.net.zone").write_text(ZONE)
        pair.append(zones)
    return pair[0], pair[1]


def test_no_difference_exits_0(trees):
    old, new = trees
    result = seawall("diff", str(old), str(new))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "0 zone(s) changed, 0 added, 0 removed" in result.stderr


def test_reformatting_or_changing_format_is_no_difference(trees):
    old, new = trees
    lines = ZONE.splitlines()
    (new / "example.net.zone").write_text("\n".join(lines[:3] + lines[:2:-1]) + "\n; note\n")
    (new / "example.com.zone").unlink()
    (new / "example.com.yaml").write_text(
        to_octodns_yaml(load_zone_file(old / "example.com.zone").zone))
    result = seawall("diff", str(old), str(new))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_added_removed_and_changed_rrsets(trees):
    old, new = trees
    (new / "example.net.zone").write_text(
        ZONE.replace("www  A    192.0.2.81", "www  A    192.0.2.82")
            .replace('old  TXT  "going away"', "new  300 AAAA 2001:db8::9")
            .replace("ns1  A    192.0.2.53", "ns1  60 A 192.0.2.53"))
    result = seawall("diff", str(old), str(new))
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "zone example.net. (zones/example.net.zone)",
        "  + new.example.net. 300 IN AAAA 2001:db8::9",
        "  ~ ns1.example.net. A",
        "    - ns1.example.net. 3600 IN A 192.0.2.53",
        "    + ns1.example.net. 60 IN A 192.0.2.53",
        "  - old.example.net. 3600 IN TXT \"going away\"",
        "  ~ www.example.net. A",
        "    - www.example.net. 3600 IN A 192.0.2.81",
        "    + www.example.net. 3600 IN A 192.0.2.82",
    ]
    assert ("1 zone(s) changed, 0 added, 0 removed: 1 RRset(s) added, 1 removed, 2 changed"
            in result.stderr)


def test_added_and_removed_zones_and_emergency_zones(trees):
    old, new = trees
    (new / "example.net.zone").unlink()
    (new / "example.org.zone").write_text(ZONE.replace("example.net.", "example.org."))
    emergency = (new / "emergency" / "example.com.zone")
    emergency.write_text(emergency.read_text().replace("2026112701", "2026112799"))
    result = seawall("diff", str(old), str(new))
    assert result.returncode == 1
    out = result.stdout.splitlines()
    assert "zone example.net.: removed (zones/example.net.zone, 5 RRsets)" in out
    assert "zone example.org.: added (zones/example.org.zone, 5 RRsets)" in out
    assert "  + www.example.org. 3600 IN A 192.0.2.80" in out
    assert "emergency zone example.com. (zones/emergency/example.com.zone)" in out
    assert "  ~ example.com. SOA" in out


def test_two_files(tmp_path):
    old, new = tmp_path / "a" / "example.net.zone", tmp_path / "b" / "example.net.zone"
    for path, text in ((old, ZONE), (new, ZONE.replace("192.0.2.80", "192.0.2.70"))):
        path.parent.mkdir()
        path.write_text(text)
    result = seawall("diff", str(old), str(new))
    assert result.returncode == 1
    assert "    + www.example.net. 3600 IN A 192.0.2.70" in result.stdout.splitlines()
    assert seawall("diff", "--quiet", str(old), str(old)).returncode == 0
    quiet = seawall("diff", "-q", str(old), str(new))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, "", "")


def test_errors_exit_2(trees, tmp_path):
    old, new = trees
    result = seawall("diff", str(old), str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "nowhere: no such file or directory" in result.stderr
    (new / "example.net.zone").write_text(ZONE.replace("192.0.2.80", "192.0.2.300"))
    result = seawall("diff", str(old), str(new))
    assert result.returncode == 2
    assert "seawall diff: NEW: zones/example.net.zone:6:" in result.stderr
    assert "zone example.net.: not compared, it does not load on the NEW side" in result.stdout


# ------------------------------------------------------------ contrib/

def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**ENV, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "SEAWALL": SEAWALL}
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          timeout=120, env=env, check=check)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "dns"
    (repo / "zones").mkdir(parents=True)
    (repo / "zones" / "example.net.zone").write_text(ZONE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "zones")
    git(repo, "commit", "-q", "-m", "zones")
    return repo


def test_pre_commit_hook_refuses_a_broken_staged_zone(repo):
    hook = repo / ".git" / "hooks" / "pre-commit"
    shutil.copy(ROOT / "contrib" / "pre-commit-hook", hook)
    hook.chmod(0o755)
    zone = repo / "zones" / "example.net.zone"
    zone.write_text(ZONE.replace("192.0.2.80", "192.0.2.300"))
    git(repo, "add", "zones")
    zone.write_text(ZONE)  # the fix, left unstaged, must not hide the broken index
    refused = git(repo, "commit", "-m", "broken", check=False)
    assert refused.returncode != 0
    assert "zones/example.net.zone:6: " in refused.stdout + refused.stderr
    assert "commit refused" in refused.stderr

    zone.write_text(ZONE.replace("192.0.2.80", "192.0.2.90"))
    git(repo, "add", "zones")
    done = git(repo, "commit", "-m", "renumber www", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "    + www.example.net. 3600 IN A 192.0.2.90" in done.stdout + done.stderr


def test_ci_step_checks_and_diffs_against_the_merge_base(repo, tmp_path):
    script = ROOT / "contrib" / "ci-check-zones.sh"
    git(repo, "checkout", "-q", "-b", "change")
    (repo / "zones" / "example.net.zone").write_text(ZONE + "api  CNAME www\n")
    (repo / "zones" / "example.org.yaml").write_text(
        "'':\n  type: NS\n  value: ns1.example.net.\n")
    git(repo, "add", "zones")
    git(repo, "commit", "-q", "-m", "api and example.org")
    git(repo, "checkout", "-q", "main")
    (repo / "zones" / "example.net.zone").write_text(ZONE + "later A 192.0.2.7\n")
    git(repo, "commit", "-q", "-am", "main moves on")
    git(repo, "checkout", "-q", "change")
    out = tmp_path / "diff.txt"
    env = {"BASE": "main", "DIFF_OUT": str(out)}
    result = subprocess.run(["sh", str(script)], cwd=repo, capture_output=True, text=True,
                            timeout=120, env={**ENV, "SEAWALL": SEAWALL, **env})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = out.read_text().splitlines()
    assert "  + api.example.net. 3600 IN CNAME www.example.net." in lines
    assert "zone example.org.: added (zones/example.org.yaml, 2 RRsets)" in lines
    assert not any("later" in line for line in lines)  # main's own change is not ours
    assert len(git(repo, "worktree", "list").stdout.splitlines()) == 1  # removed again

    (repo / "zones" / "example.net.zone").write_text(ZONE.replace("@    NS   ns1\n", ""))
    git(repo, "commit", "-q", "-am", "drop NS")
    result = subprocess.run(["sh", str(script)], cwd=repo, capture_output=True, text=True,
                            timeout=120, env={**ENV, "SEAWALL": SEAWALL, "BASE": "main"})
    assert result.returncode == 1
    assert "zones/example.net.zone:1: zone example.net. has no NS records" in result.stdout


def test_convert_both_ways_and_diff_sees_no_difference(tmp_path):
    """``seawall convert`` writes the other format; ``seawall diff`` finds nothing changed."""
    old, new = tmp_path / "old" / "zones", tmp_path / "new" / "zones"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    shutil.copy(ROOT / "zones" / "example.com.zone", old)
    (old / "example.net.zone").write_text(ZONE)
    for name in ("example.com", "example.net"):
        result = seawall("convert", str(old / f"{name}.zone"), "-o", str(new / f"{name}.yaml"))
        assert result.returncode == 0, result.stderr
    assert seawall("check", str(new)).returncode == 0
    assert seawall("diff", str(old), str(new)).returncode == 0
    back = seawall("convert", str(new / "example.net.yaml"))
    assert back.returncode == 0 and back.stdout.startswith("; example.net. exported by Seawall")
    (old / "example.net.zone").write_text(back.stdout)
    assert seawall("diff", str(old), str(new)).returncode == 0


def test_convert_refuses_what_octodns_cannot_hold(tmp_path):
    path = tmp_path / "example.net.zone"
    path.write_text(ZONE + 'box HINFO "pc" "unix"\n')
    result = seawall("convert", str(path))
    assert result.returncode == 1
    assert "box.example.net. HINFO: octoDNS has no HINFO record type" in result.stderr
    assert result.stdout == ""
    path.write_text(ZONE.replace("192.0.2.80", "192.0.2.300"))
    result = seawall("convert", str(path))
    assert result.returncode == 1 and "has errors; nothing written" in result.stderr
