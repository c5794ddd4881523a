"""Problems found while reading or validating a zone, with their location."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record came from: file and 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Problem:
    """One problem, printed by ``seawall check`` as ``file:line: message``."""

    location: Location
    message: str
    severity: Severity = Severity.ERROR
    stops: bool = False
    """The file was not read to its end (unreadable, or past a budget): checks of
    the whole zone are skipped, since they would only report what is missing."""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        """One line: characters that are not printable (a newline or a terminal
        escape in a file name, bytes that are not UTF-8) are shown escaped."""
        prefix = "" if self.is_error else "warning: "
        return printable(f"{self.location}: {prefix}{self.message}")


def printable(text: str) -> str:
    """``text`` with its unprintable characters as Python escapes (``\\n``, ``\\x1b``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") for c in text)


def shown_path(path: Path, root: Path | None) -> str:
    """How a file is named in problems: relative to ``root`` when it lies below it.

    A link is named as it is, not as its target, when that is below ``root``.
    """
    if root is not None:
        for absolute in (os.path.abspath, os.path.realpath):
            try:
                return str(Path(absolute(path)).relative_to(absolute(root)))
            except ValueError:
                pass
    return str(path)
