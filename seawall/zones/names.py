"""Zone names taken from file names: plain host names only.

A zone file's name is its zone's name (``example.com.zone`` holds
``example.com.``), and that name later names other things: the zone's
snapshot in the state directory, metrics labels, log lines. A name read
with DNS master-file escapes could hold anything an RFC 1035 §2.3.4 label
can: ``\\047tmp\\047x.zone`` would be the one-label zone ``/tmp/x.``, an
absolute path. So a file name is accepted as a zone name only when it is a
plain host name in the RFC 952 / RFC 1123 §2.1 sense, widened by the
underscore that service names use (RFC 8552 §2):

* labels of ASCII letters, digits, ``-`` and ``_``, 1 to 63 characters each
  (RFC 1035 §2.3.4), separated by single dots, optionally one trailing dot;
* at most 253 characters without the trailing dot (255 octets on the wire);
* or ``root``, the spelling of the root zone (``root.zone``).

Every other name (escapes, ``/``, empty labels, leading dots, spaces,
control or non-ASCII characters) is refused with :class:`ZoneNameError`,
whose message says which rule it breaks. Example::

    zone_name_from_stem("example.com")   # example.com.
    zone_name_from_stem("root")          # the root zone
    zone_name_from_stem("\\\\047etc")     # ZoneNameError
"""

from __future__ import annotations

import re

import dns.name

from ..errors import SeawallError

ROOT_SPELLING = "root"
"""The file-name spelling of the root zone: ``root.zone``."""
MAX_LABEL = 63
"""RFC 1035 §2.3.4: a label is at most 63 octets."""
MAX_NAME_TEXT = 253
"""RFC 1035 §2.3.4: 255 octets on the wire are 253 characters of text without the root dot."""

_LABEL_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?")
RULE = ("a zone's file is named NAME.zone, NAME.yaml or NAME, where NAME is a plain host "
        "name (labels of 1 to 63 ASCII letters, digits, '-' or '_', separated by dots, "
        "253 characters at most) or 'root'")


class ZoneNameError(SeawallError):
    """A file name does not name a zone: it is not a plain host name."""


def zone_name_from_stem(stem: str) -> dns.name.Name:
    """The zone named by ``stem`` (a file name without its suffix); ZoneNameError if none."""
    if stem == ROOT_SPELLING:
        return dns.name.root
    reason = _why_not_plain(stem)
    if reason is not None:
        raise ZoneNameError(f"{reason}; {RULE}")
    # Only letters, digits, '-', '_' and dots: nothing for from_text to unescape.
    labels = stem.rstrip(".").split(".")
    return dns.name.Name([label.encode("ascii") for label in labels] + [b""])


def is_plain_name(stem: str) -> bool:
    """``stem`` is a plain host name, as zone names from file names must be."""
    return _why_not_plain(stem) is None


def _why_not_plain(stem: str) -> str | None:
    """The first rule ``stem`` breaks, in words; None for a plain host name."""
    if _PLAIN_NAME.fullmatch(stem) and len(stem.rstrip(".")) <= MAX_NAME_TEXT:
        return None
    if not stem or stem == ".":
        return "the name is empty"
    body = stem[:-1] if stem.endswith(".") else stem
    for label in body.split("."):
        if not label:
            return "it has an empty label (a leading dot or two dots in a row)"
        if not _LABEL_CHARS.fullmatch(label):
            bad = next(c for c in label if not _LABEL_CHARS.fullmatch(c))
            shown = f"'{bad}'" if bad.isprintable() else repr(bad)
            return f"the character {shown} is not a letter, digit, '-' or '_'"
        if len(label) > MAX_LABEL:
            return f"the label '{label[:16]}...' is longer than {MAX_LABEL} characters"
    return f"the name is longer than {MAX_NAME_TEXT} characters"
