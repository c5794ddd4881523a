"""Sign test zones with BIND's dnssec-signzone, the way an operator would."""

from __future__ import annotations

import subprocess
from pathlib import Path

VALIDITY = "+315360000"  # ten years: fixtures must not expire under the tests


def sign_zone(text: str, origin: str, workdir: Path, *, nsec3: bool = False,
              opt_out: bool = False, salt: str = "aabbccdd", iterations: int = 0) -> Path:
    """Write ``text`` as zone ``origin``, sign it (KSK+ZSK, ECDSA P-256); the signed file."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = origin.rstrip(".")
    unsigned = workdir / f"{name}.unsigned"
    unsigned.write_text(text)
    for flags in (["-f", "KSK"], []):
        subprocess.run(["dnssec-keygen", "-q", "-a", "ECDSAP256SHA256", *flags, "-K",
                        str(workdir), name], check=True, capture_output=True)
    signed = workdir / f"{name}.signed"
    argv = ["dnssec-signzone", "-q", "-S", "-K", str(workdir), "-o", name,
            "-e", VALIDITY, "-f", str(signed), "-d", str(workdir)]
    if nsec3:
        argv += ["-3", salt, "-H", str(iterations)]
        if opt_out:
            argv.append("-A")
    argv.append(str(unsigned))
    subprocess.run(argv, check=True, capture_output=True, cwd=workdir)
    return signed
