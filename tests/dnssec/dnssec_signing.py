"""Sign test zones with BIND's dnssec-signzone, the way an operator would."""

from __future__ import annotations

import subprocess
from pathlib import Path

VALIDITY = "+315360000"  # ten years: fixtures must not expire under the tests


def make_keys(origin: str, keydir: Path) -> None:
    """A KSK and a ZSK (ECDSA P-256) for ``origin`` in ``keydir``."""
    keydir.mkdir(parents=True, exist_ok=True)
    for flags in (["-f", "KSK"], []):
        subprocess.run(["dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", *flags, "-K",
                        str(keydir), origin.rstrip(".")], check=True, capture_output=True)


def sign(text: str, origin: str, keydir: Path, *, nsec3: bool = False, opt_out: bool = False,
         salt: str = "aabbccdd", iterations: int = 0, start: str | None = None,
         end: str = VALIDITY, output: Path | None = None) -> Path:
    """Sign ``text`` as ``origin`` with the keys already in ``keydir``; the signed file."""
    name = origin.rstrip(".")
    unsigned = keydir / f"{name}.{abs(hash(text))}.unsigned"
    unsigned.write_text(text)
    signed = output or keydir / f"{name}.signed"
    argv = ["dnssec-signzone", "-q", "-S", "-K", str(keydir), "-o", name,
            "-e", end, "-f", str(signed), "-d", str(keydir)]
    if start is not None:
        # A validity window in the past (an expired fixture): skip signzone's own
        # verification, which would rightly refuse it.
        argv += ["-s", start, "-P"]
    if nsec3:
        argv += ["-3", salt, "-H", str(iterations)]
        if opt_out:
            argv.append("-A")
    argv.append(str(unsigned))
    subprocess.run(argv, check=True, capture_output=True, cwd=keydir)
    return signed


def sign_zone(text: str, origin: str, workdir: Path, **options) -> Path:
    """New keys in ``workdir``, then the signed zone."""
    make_keys(origin, workdir)
    return sign(text, origin, workdir, **options)


def ds_anchors(origin: str, keydir: Path) -> list[str]:
    """The DS records dnssec-signzone wrote for the KSK, as trust-anchor strings."""
    lines = (keydir / f"dsset-{origin}").read_text().splitlines()
    return [" ".join(line.split()) for line in lines if " DS " in line]
