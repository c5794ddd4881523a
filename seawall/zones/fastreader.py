"""A fast RFC 1035 master-file reader for the common case, with the reference behind it.

``reader.py`` tokenizes with dnspython and parses every rdata with dnspython:
exact, and about 35 µs per record, so 100k records take seconds. Most zone
files at scale are plain: one record per line, the common types (A, AAAA,
NS, CNAME, PTR, DNAME, MX, SRV, TXT, SOA), the SOA perhaps spread over lines
in parentheses. This reader splits such lines itself and builds the rdata
objects with the same dnspython constructors ``from_text`` ends in; other
types are still parsed by dnspython, record by record.

It never reports a problem itself: at the first thing it does not handle or
that looks wrong (a backslash escape, ``$INCLUDE``, ``$GENERATE``, a class
other than IN, a name outside the zone, a bad address, non-ASCII text...),
it gives up and the whole file is read again by ``reader.py``, whose
``file:line`` problems ``seawall check`` prints. So the result is always the
reference's; ``tests/zones/test_fastreader.py`` checks that both give
identical records on generated zones, good and bad. The one problem it
reports itself is the zone load's time budget running out (see
:mod:`.budget`): reading the file again would only take longer. It opens
the file as the reference does, inside the zones directory (:mod:`.confine`).

Example::

    records, problems = read_master_file_fast(Path("zones/example.com.zone"),
                                              dns.name.from_text("example.com."))
"""

from __future__ import annotations

import codecs
import io
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl

from .budget import BudgetExceeded, LoadBudget
from .confine import RefusedZoneFile, open_confined
from .problems import Location, Problem, shown_path
from .reader import MAX_TTL, Record, read_master_file

IN = dns.rdataclass.IN
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, DNAME, SPF = (
    dns.rdatatype.A, dns.rdatatype.NS, dns.rdatatype.CNAME, dns.rdatatype.SOA,
    dns.rdatatype.PTR, dns.rdatatype.MX, dns.rdatatype.TXT, dns.rdatatype.AAAA,
    dns.rdatatype.SRV, dns.rdatatype.DNAME, dns.rdatatype.SPF)
NAME_TYPES = {NS, CNAME, PTR, DNAME}
TEXT_TYPES = {TXT, SPF}
# Characters the fast reader leaves to dnspython: escapes, control characters
# other than tab, newline and carriage return.
_HARD_BYTES = re.compile(rb"[\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(r'"([^"]*)"|([()])|(;)|([^\s"();]+)|(")')
_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
NAME_CACHE = 4096
"""Names remembered by their text (a bounded table: a million of them would
outweigh what they save, and their texts freed at once would leave holes
that the zone's own objects fill, pinning the reader's memory pages)."""
_set = object.__setattr__
_A_CLASS = dns.rdata.get_rdata_class(IN, A)
_AAAA_CLASS = dns.rdata.get_rdata_class(IN, AAAA)
AF_INET6 = socket.AF_INET6
_AAAA_SAMPLES = ("2001:db8::1", "1:0:0:2::3", "1::2:0:0:3:4", "fe80::", "::1", "::",
                 "2001:db8:0:1:1:1:1:1", "1:2:3:4:5:6:7:8", "0:0:1::", "::ffff:1.2.3.4",
                 "::1.2.3.4", "2001:DB8::1", "2001:db8:0:0:1::1", "2001:db8::1:0:0:1")


def _new_name(labels: tuple[bytes, ...]) -> dns.name.Name:
    """A Name from labels already checked (dnspython's constructor re-checks each)."""
    name = object.__new__(dns.name.Name)
    _set(name, "labels", labels)
    return name


def _new_a(address: str) -> dns.rdata.Rdata:
    """An A rdata; a canonical dotted quad is stored as dnspython would store it."""
    if not _IPV4.fullmatch(address):
        return _A_CLASS(IN, A, address)
    rdata = object.__new__(_A_CLASS)
    _set(rdata, "rdclass", IN)
    _set(rdata, "rdtype", A)
    _set(rdata, "rdcomment", None)
    _set(rdata, "address", address)
    return rdata


def _new_aaaa(address: str) -> dns.rdata.Rdata:
    """An AAAA rdata; an address already in canonical form is stored as it is.

    dnspython stores the canonical text of an address (RFC 5952: lowercase,
    no leading zeros, the first longest run of zero groups as ``::``), which
    is what ``inet_ntop`` writes when no IPv4 form is involved.
    """
    if "." not in address:
        try:
            canonical = socket.inet_ntop(AF_INET6, socket.inet_pton(AF_INET6, address))
        except (OSError, ValueError):
            canonical = None
        if canonical == address:
            rdata = object.__new__(_AAAA_CLASS)
            _set(rdata, "rdclass", IN)
            _set(rdata, "rdtype", AAAA)
            _set(rdata, "rdcomment", None)
            _set(rdata, "address", address)
            return rdata
    return _AAAA_CLASS(IN, AAAA, address)


def _new_target(cls: type, rdtype: int, target: dns.name.Name) -> dns.rdata.Rdata:
    """An NS, CNAME, PTR or DNAME rdata (the constructor re-checks an absolute Name)."""
    rdata = object.__new__(cls)
    _set(rdata, "rdclass", IN)
    _set(rdata, "rdtype", rdtype)
    _set(rdata, "rdcomment", None)
    _set(rdata, "target", target)
    return rdata


def _shortcuts_agree() -> bool:
    """The shortcuts build exactly what the constructors build (checked once)."""
    try:
        ref_name = dns.name.Name([b"a", b"B", b""])
        ref_a = _A_CLASS(IN, A, "192.0.2.1")
        fast_a = _new_a("192.0.2.1")
        return (_new_name((b"a", b"B", b"")).labels == ref_name.labels
                and type(fast_a.rdclass) is type(ref_a.rdclass)
                and type(fast_a.rdtype) is type(ref_a.rdtype)
                and all(getattr(fast_a, slot) == getattr(ref_a, slot)
                        for cls in type(ref_a).__mro__ for slot in getattr(cls, "__slots__", ()))
                and fast_a == ref_a and fast_a.to_wire() == ref_a.to_wire()
                and all(_same_slots(_new_target(dns.rdata.get_rdata_class(IN, t), t, ref_name),
                                    dns.rdata.get_rdata_class(IN, t)(IN, t, ref_name))
                        for t in NAME_TYPES)
                and all(_new_aaaa(text) == _AAAA_CLASS(IN, AAAA, text)
                        and _new_aaaa(text).address == _AAAA_CLASS(IN, AAAA, text).address
                        for text in _AAAA_SAMPLES))
    except Exception:
        return False


def _same_slots(made: dns.rdata.Rdata, ref: dns.rdata.Rdata) -> bool:
    return (type(made) is type(ref) and type(made.rdtype) is type(ref.rdtype)
            and all(getattr(made, slot) == getattr(ref, slot)
                    for cls in type(ref).__mro__ for slot in getattr(cls, "__slots__", ()))
            and made == ref and made.to_wire() == ref.to_wire())


SHORTCUTS = _shortcuts_agree()


class _GiveUp(Exception):
    """Something the fast reader does not handle: read the file with reader.py."""


def read_master_file_fast(path: Path, origin: dns.name.Name, *, include_root: Path | None = None,
                          display_root: Path | None = None, budget: LoadBudget | None = None
                          ) -> tuple[list[Record], list[Problem]]:
    """``reader.read_master_file``, faster on plain files; same records and problems."""
    budget = budget or LoadBudget.start()
    reader = _FastReader(path, origin, display_root, include_root, budget)
    try:
        records = reader.read()
    except BudgetExceeded as exc:
        return [], [Problem(Location(reader._display(), reader.line), str(exc), stops=True)]
    except (_GiveUp, OSError, UnicodeDecodeError, ValueError, TypeError, RefusedZoneFile,
            dns.exception.DNSException):
        records = None
    if records is None:
        return read_master_file(path, origin, include_root=include_root,
                                display_root=display_root, budget=budget)
    return records, []


TIME_CHECK_LINES = 4096
"""The time budget is looked at once per this many lines."""


class _FastReader:
    def __init__(self, path: Path, origin: dns.name.Name, display_root: Path | None,
                 root: Path | None = None, budget: LoadBudget | None = None) -> None:
        self.path = path
        self.root = root or path.parent
        self.budget = budget or LoadBudget.start()
        self.line = 0
        self.zone_origin = origin
        self.display_root = display_root
        self.origin = origin
        self.last_name = origin
        self.default_ttl: int | None = None
        self.last_ttl: int | None = None
        self.names: dict[str, dns.name.Name] = {}
        self.types: dict[str, int] = {}
        self.ttls: dict[str, int] = {}
        self.types_by_value = {t: t for t in NAME_TYPES}   # the RdataType members
        self.last_inside = True           # last_name is in the zone
        self.origin_inside = True
        self.classes = {t: dns.rdata.get_rdata_class(IN, t)
                        for t in (A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, DNAME, SPF)}

    def read(self) -> list[Record] | None:
        with open_confined(self.path, self.root) as handle:
            data = handle.read()
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8):]   # as the reference's utf-8-sig skips it
        if not data.isascii() or _HARD_BYTES.search(data):
            return None
        shown = self._display()
        records: list[Record] = []
        append = records.append
        lines = _lines(data)
        number = 0
        next_check = TIME_CHECK_LINES
        for line in lines:
            number += 1
            start = number
            if number >= next_check:
                next_check = number + TIME_CHECK_LINES
                self.line = number
                self.budget.check_time()
            if '"' in line or "(" in line or ")" in line:
                tokens, quoted, open_parens = _tokens(line)
                while open_parens:
                    following = next(lines, None)
                    if following is None:
                        raise _GiveUp("parenthesis left open")
                    number += 1
                    more, more_quoted, change = _tokens(following)
                    quoted |= {i + len(tokens) for i in more_quoted}
                    tokens += more
                    open_parens += change
                    if open_parens < 0:
                        raise _GiveUp("unbalanced parentheses")
                if open_parens:
                    raise _GiveUp("unbalanced parentheses")
            else:
                tokens = line.split(";", 1)[0].split()
                quoted = None
            if not tokens:
                continue
            if line[0] in " \t":
                owner = self.last_name
                rest = 0
            else:
                first = tokens[0]
                if first[0] == "$":
                    self._directive(tokens, quoted)
                    continue
                if quoted and 0 in quoted:
                    raise _GiveUp("quoted owner")
                owner = self._name(first)
                self.last_name = owner
                # A name relative to an origin in the zone is in it; others are looked at.
                self.last_inside = (self.origin_inside and first[-1] != ".") or \
                    owner.is_subdomain(self.zone_origin)
                rest = 1
            append(self._record(owner, tokens, rest, quoted, Location(shown, start)))
        return records

    # ------------------------------------------------------------- pieces

    def _directive(self, tokens: list[str], quoted: set[int] | None) -> None:
        word = tokens[0].upper()
        if len(tokens) != 2 or quoted:
            raise _GiveUp("directive shape")
        if word == "$TTL":
            self.default_ttl = _ttl(tokens[1])
        elif word == "$ORIGIN":
            self.origin = self._name(tokens[1])
            self.origin_inside = self.origin.is_subdomain(self.zone_origin)
            self.names = {}
        else:
            raise _GiveUp(word)

    def _record(self, owner: dns.name.Name, tokens: list[str], at: int,
                quoted: set[int] | None, location: Location) -> Record:
        ttl = None
        n = len(tokens)
        for _ in range(2):
            if at >= n:
                raise _GiveUp("short line")
            token = tokens[at]
            if quoted and at in quoted:
                raise _GiveUp("quoted column")
            if ttl is None and token[:1].isdigit():
                ttl = self.ttls.get(token)
                if ttl is None:
                    ttl = self.ttls[token] = _ttl(token)   # one int per distinct TTL
                at += 1
            elif token.upper() == "IN":
                at += 1
            else:
                break
        if at >= n or (quoted and at in quoted):
            raise _GiveUp("no type")
        rdtype = self.types.get(tokens[at])
        if rdtype is None:
            rdtype = dns.rdatatype.from_text(tokens[at])
            if dns.rdatatype.is_metatype(rdtype) or rdtype == dns.rdatatype.OPT:
                raise _GiveUp("meta type")
            self.types[tokens[at]] = rdtype
        args = tokens[at + 1:]
        if quoted and rdtype in self.classes and rdtype not in TEXT_TYPES and \
                any(i > at for i in quoted):
            raise _GiveUp("quoted rdata")
        rdata = self._rdata(rdtype, args, at + 1, quoted)
        if ttl is None:
            if self.default_ttl is not None:
                ttl = self.default_ttl
            elif self.last_ttl is not None:
                ttl = self.last_ttl
            elif rdtype == SOA:
                ttl = rdata.minimum  # type: ignore[attr-defined]
            else:
                raise _GiveUp("no TTL")
        if not self.last_inside:
            raise _GiveUp("outside the zone")
        self.last_ttl = ttl
        return Record(owner, ttl, rdata, location)

    def _rdata(self, rdtype: int, args: list[str], first: int,
               quoted: set[int] | None) -> dns.rdata.Rdata:
        n = len(args)
        if rdtype == A:
            if n != 1:
                raise _GiveUp("address")
            return _new_a(args[0]) if SHORTCUTS else self.classes[A](IN, A, args[0])
        if rdtype == AAAA:
            if n != 1:
                raise _GiveUp("address")
            return _new_aaaa(args[0]) if SHORTCUTS else self.classes[AAAA](IN, AAAA, args[0])
        if rdtype in NAME_TYPES:
            if n != 1:
                raise _GiveUp("target")
            target = self._name(args[0])
            if SHORTCUTS:
                return _new_target(self.classes[rdtype], self.types_by_value[rdtype], target)
            return self.classes[rdtype](IN, rdtype, target)
        if rdtype == MX:
            if n != 2:
                raise _GiveUp("mx")
            return self.classes[MX](IN, MX, _uint(args[0], 0xFFFF), self._name(args[1]))
        if rdtype == SRV:
            if n != 4:
                raise _GiveUp("srv")
            return self.classes[SRV](IN, SRV, _uint(args[0], 0xFFFF), _uint(args[1], 0xFFFF),
                                     _uint(args[2], 0xFFFF), self._name(args[3]))
        if rdtype in TEXT_TYPES:
            strings = [a.encode() for a in args]
            if not strings or any(len(s) > 255 for s in strings):
                raise _GiveUp("txt")
            return self.classes[rdtype](IN, rdtype, strings)
        if rdtype == SOA:
            if n != 7:
                raise _GiveUp("soa")
            return self.classes[SOA](IN, SOA, self._name(args[0]), self._name(args[1]),
                                     _uint(args[2], 0xFFFFFFFF), _ttl_field(args[3]),
                                     _ttl_field(args[4]), _ttl_field(args[5]),
                                     _ttl_field(args[6]))
        # Any other type: dnspython's own parser, as the reference uses.
        if quoted:
            args = [f'"{a}"' if first + i in quoted else a for i, a in enumerate(args)]
        return dns.rdata.from_text(IN, rdtype, " ".join(args), self.origin, relativize=False)

    def _name(self, text: str) -> dns.name.Name:
        """dns.name.from_text(text, origin) for text without escapes."""
        name = self.names.get(text)
        if name is None:
            if text == "@":
                name = self.origin
            elif text == ".":
                name = dns.name.root
            else:
                labels = text.encode().split(b".")
                if labels[-1] == b"":
                    labels.pop()
                else:
                    labels += self.origin.labels[:-1]
                total = 1
                for label in labels:
                    size = len(label)
                    if size == 0 or size > 63:
                        raise _GiveUp("empty or long label")
                    total += size + 1
                if total > 255:
                    raise _GiveUp("name too long")
                labels.append(b"")
                name = _new_name(tuple(labels)) if SHORTCUTS else dns.name.Name(labels)
            if len(self.names) >= NAME_CACHE:
                self.names.clear()
            self.names[text] = name
        return name

    def _display(self) -> str:
        return shown_path(self.path, self.display_root)


def _lines(data: bytes) -> Iterator[str]:
    """The lines of an ASCII file without their ends, one at a time.

    Universal newlines, as the reference's text-mode file has them; a whole
    list of a million lines would be freed only at the end of the read.
    """
    if b"\r" in data:
        yield from data.decode("ascii").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return
    for raw in io.BytesIO(data):
        line = raw.decode("ascii")
        yield line[:-1] if line[-1:] == "\n" else line


def _tokens(line: str) -> tuple[list[str], set[int], int]:
    """Tokens of a line with quotes or parentheses; quoted token indexes; paren balance."""
    tokens: list[str] = []
    quoted: set[int] = set()
    parens = 0
    for match in _TOKEN.finditer(line):
        string, paren, comment, word, stray = match.groups()
        if comment is not None:
            break
        if stray is not None:
            raise _GiveUp("unterminated quote")
        if paren is not None:
            parens += 1 if paren == "(" else -1
            continue
        if string is not None:
            start, end = match.span()
            if (start and line[start - 1] not in " \t()") or \
                    (end < len(line) and line[end] not in " \t();"):
                raise _GiveUp("quote next to a word")
            quoted.add(len(tokens))
            tokens.append(string)
        else:
            tokens.append(word)
    return tokens, quoted, parens


def _ttl(text: str) -> int:
    ttl = int(text) if text.isdigit() else dns.ttl.from_text(text)
    if ttl > MAX_TTL:
        raise _GiveUp("TTL out of range")
    return ttl


def _ttl_field(text: str) -> int:
    """A TTL-like SOA field, as dnspython's ``get_ttl`` reads it."""
    return dns.ttl.from_text(text)


def _uint(text: str, limit: int) -> int:
    if not text.isdigit():
        raise _GiveUp("not a number")
    value = int(text)
    if value > limit:
        raise _GiveUp("number out of range")
    return value
