"""An RFC 1035 §5 master-file reader that reports every problem with its line.

dnspython's own zone reader stops at the first syntax error, silently drops
names outside the zone and opens ``$INCLUDE`` files anywhere on disk. An
operator running ``seawall check`` wants every problem at once, each as
``file:line``, and a zone directory that cannot pull in ``/etc/shadow``. So the
directives and the owner/TTL/class/type columns are read here, while every
rdata is still parsed by dnspython, the parser of record.

Files are opened only inside the zones directory, links included (see
:mod:`.confine`), and a zone load stays within its budget of ``$GENERATE``
output, ``$INCLUDE`` reads and time (see :mod:`.budget`): past a limit the
zone is not loaded, with a problem naming the limit and the line.

Files are UTF-8; a byte-order mark that an editor put at the start of a
file is skipped (it would otherwise become part of the first owner name).

Example::

    records, problems = read_master_file(Path("zones/example.com.zone"),
                                         dns.name.from_text("example.com."),
                                         include_root=Path("zones"))
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.ttl

from .budget import MAX_GENERATE_RECORDS, MAX_INCLUDE_DEPTH, BudgetExceeded, LoadBudget
from .confine import RefusedZoneFile, open_confined
from .problems import Location, Problem, Severity, shown_path

MAX_TTL = 2**31 - 1
"""RFC 2181 §8: a TTL is an unsigned 31-bit number."""
MAX_GENERATE_NUMBER = 2**31 - 1
"""The largest ``$GENERATE`` range bound or modifier offset (BIND reads them as C ints)."""
__all__ = ["MAX_GENERATE_RECORDS", "MAX_INCLUDE_DEPTH", "MAX_TTL", "MasterFileReader",
           "Record", "read_master_file"]


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record read from a master file."""

    name: dns.name.Name
    ttl: int
    rdata: dns.rdata.Rdata
    location: Location


class _Tokenizer(dns.tokenizer.Tokenizer):
    """dnspython's tokenizer, remembering the last token it handed out.

    A bad record is often noticed only at its end of line (``MX 10`` with no
    exchange); skipping "to the end of the line" then must not eat the next one.
    """

    last: dns.tokenizer.Token | None = None
    failed_line = -1

    def __init__(self, f: object, filename: str) -> None:
        super().__init__(f, filename)
        self.plain_delimiters = self.delimiters

    def get(self, want_leading: bool = False, want_comment: bool = False) -> dns.tokenizer.Token:
        token = super().get(want_leading, want_comment)
        self.last = token
        return token

    def leave_quote(self) -> None:
        """Forget an unterminated quoted string (its newline already ended it)."""
        self.quoting = False
        self.delimiters = self.plain_delimiters

    def leave_entry(self) -> None:
        """Forget an unterminated quote and unbalanced parentheses alike."""
        self.leave_quote()
        self.multiline = 0


@dataclass
class _FileState:
    """Per-file reading state; ``$INCLUDE`` pushes a new one (RFC 1035 §5.1)."""

    tok: _Tokenizer
    path: Path
    origin: dns.name.Name
    last_name: dns.name.Name | None
    handle: io.TextIOBase | None


class _LineError(Exception):
    """A problem confined to one line: report it, skip the line, go on."""


class MasterFileReader:
    """Reads one zone's master file (and its includes) into records."""

    def __init__(
        self,
        path: Path,
        origin: dns.name.Name,
        *,
        include_root: Path | None = None,
        display_root: Path | None = None,
        budget: LoadBudget | None = None,
    ) -> None:
        self.path = path
        self.zone_origin = origin
        # os.path.realpath, unlike Path.resolve, leaves a link loop for open to refuse.
        self.include_root = Path(os.path.realpath(include_root or path.parent))
        self.display_root = display_root
        self.records: list[Record] = []
        self.problems: list[Problem] = []
        self.default_ttl: int | None = None  # from $TTL (RFC 2308 §4)
        self.last_ttl: int | None = None
        self.budget = budget or LoadBudget.start()
        self.stopped = False   # a budget ran out: the zone is not loaded

    # ------------------------------------------------------------ public

    def read(self) -> tuple[list[Record], list[Problem]]:
        try:
            handle = self._open(self.path)
        except (RefusedZoneFile, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            self.problems.append(Problem(Location(self._display(self.path), 0),
                                         f"cannot read zone file: {reason}", stops=True))
            return self.records, self.problems
        stack = [_FileState(_Tokenizer(handle, str(self.path)), self.path,
                            self.zone_origin, self.zone_origin, handle)]
        try:
            while stack and not self.stopped:
                state = stack[-1]
                try:
                    if not self._read_entry(state, stack):
                        stack.pop()
                        if state.handle:
                            state.handle.close()
                except UnicodeDecodeError:
                    self._problem(state, state.tok.line_number, "file is not valid UTF-8 text")
                    stack.pop()
                    if state.handle:
                        state.handle.close()
        finally:
            for state in stack:
                if state.handle:
                    state.handle.close()
        return self.records, self.problems

    def _open(self, path: Path) -> io.TextIOBase:
        """A text handle on ``path``, a regular file inside the zones directory."""
        return io.TextIOWrapper(open_confined(path, self.include_root), encoding="utf-8-sig")

    # ----------------------------------------------------------- entries

    def _read_entry(self, state: _FileState, stack: list[_FileState]) -> bool:
        """Read one directive or record; False at the end of the file."""
        tok = state.tok
        try:
            token = tok.get(want_leading=True, want_comment=True)
        except dns.exception.DNSException as exc:
            # A stray ")", a broken escape, or parentheses still open at the end.
            line = tok.line_number
            self._problem(state, line, _describe(exc))
            if tok.failed_line == line:
                return False  # no progress since the last failure: stop reading this file
            tok.failed_line = line
            tok.leave_entry()
            tok.last = None
            _skip_line(tok)
            return True
        line = tok.line_number
        if token.is_eof():
            return False
        if token.is_eol():
            return True
        try:
            self.budget.check_time()
            if token.is_comment():
                # Inside an open "(" a comment is not followed by an end of
                # line; the error names that line instead of escaping.
                tok.get_eol()
                return True
            if token.is_identifier() and token.value.startswith("$"):
                self._directive(state, stack, token.value.upper(), line)
            else:
                tok.unget(token)
                self._record_line(state, tok, line)
        except (_LineError, dns.exception.DNSException, ValueError) as exc:
            self._problem(state, line, _describe(exc))
            _skip_line(tok)
        except BudgetExceeded as exc:
            self.problems.append(Problem(self._location(state, line), str(exc), stops=True))
            self.stopped = True
            return False
        return True

    def _directive(self, state: _FileState, stack: list[_FileState], word: str,
                   line: int) -> None:
        tok = state.tok
        if word == "$TTL":
            ttl = self._ttl(tok.get().value)
            tok.get_eol()
            self.default_ttl = ttl
        elif word == "$ORIGIN":
            # A relative $ORIGIN is relative to the current origin (RFC 1035 §5.1).
            state.origin = tok.get_name(state.origin)
            tok.get_eol()
        elif word == "$INCLUDE":
            self._include(state, stack, line)
        elif word == "$GENERATE":
            self._generate(state, line)
        else:
            raise _LineError(f"unknown directive {word}")

    def _include(self, state: _FileState, stack: list[_FileState], line: int) -> None:
        """``$INCLUDE file [origin]``, confined to the zones directory."""
        tok = state.tok
        filename = tok.get().unescape().value
        token = tok.get()
        origin = state.origin
        if token.is_identifier():
            origin = dns.name.from_text(token.value, state.origin)
            tok.get_eol()
        elif not token.is_eol_or_eof():
            raise _LineError("bad origin in $INCLUDE")
        if len(stack) > MAX_INCLUDE_DEPTH:
            raise _LineError(f"$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files")
        target = Path(os.path.realpath(state.path.parent / filename))
        if not target.is_relative_to(self.include_root):
            raise _LineError(f"$INCLUDE {filename} is outside the zones directory "
                             f"{self.include_root}")
        if any(os.path.realpath(s.path) == str(target) for s in stack):
            raise _LineError(f"$INCLUDE {filename} includes itself")
        self.budget.spend_include()
        try:
            handle = self._open(target)
        except RefusedZoneFile as exc:
            raise _LineError(f"cannot read $INCLUDE {filename}: {exc}") from None
        except OSError as exc:
            raise _LineError(f"cannot read $INCLUDE {filename}: {exc.strerror}") from None
        stack.append(_FileState(_Tokenizer(handle, str(target)), target,
                                origin, origin, handle))

    def _generate(self, state: _FileState, line: int) -> None:
        """BIND's ``$GENERATE start-stop[/step] lhs [ttl] [class] type rhs``."""
        tok = state.tok
        span = tok.get().value
        match = re.fullmatch(r"(\d+)-(\d+)(?:/(\d+))?", span)
        if not match:
            raise _LineError(f"bad $GENERATE range {span!r}")
        if max(len(match[1]), len(match[2]), len(match[3] or "")) > 10:
            raise _LineError(f"bad $GENERATE range {span!r}: numbers up to "
                             f"{MAX_GENERATE_NUMBER}")
        start, stop, step = int(match[1]), int(match[2]), int(match[3] or 1)
        if stop < start or step < 1 or stop > MAX_GENERATE_NUMBER:
            raise _LineError(f"bad $GENERATE range {span!r}")
        count = (stop - start) // step + 1
        if count > self.budget.generate_records:
            raise _LineError(f"$GENERATE range {span!r} makes more than "
                             f"{self.budget.generate_records} records")
        words = []
        while True:
            token = tok.get()
            if token.is_eol_or_eof():
                break
            words.append(f'"{token.value}"' if token.is_quoted_string() else token.value)
        if len(words) < 3:
            raise _LineError("$GENERATE needs an owner, a type and rdata")
        for word in words:
            self._check_modifiers(word, start, stop)
        # Reserve the whole output before making any of it: the widest record
        # is the one with the most digits, at one end of the range.
        widest = max(len(" ".join(_substitute(word, counter) for word in words))
                     for counter in (start, stop))
        self.budget.spend_generated(count, count * (widest + 1))
        for counter in range(start, stop + 1, step):
            self.budget.check_time()
            text = " ".join(_substitute(word, counter) for word in words)
            line_tok = _Tokenizer(io.StringIO(text + "\n"), str(state.path))
            self._record_line(state, line_tok, line)

    def _check_modifiers(self, word: str, start: int, stop: int) -> None:
        """Refuse ``${offset,width,base}`` fields wider than the budget or out of range."""
        for match in _GENERATE_MODIFIER.finditer(word):
            if match[1] is None:
                continue
            if len(match[1].lstrip("-")) > 10 or len(match[2] or "") > 10:
                raise _LineError(f"$GENERATE modifier {match[0]!r}: numbers up to "
                                 f"{MAX_GENERATE_NUMBER}")
            offset, width = int(match[1]), int(match[2] or 0)
            if abs(offset) > MAX_GENERATE_NUMBER:
                raise _LineError(f"$GENERATE modifier {match[0]!r}: the offset is over "
                                 f"{MAX_GENERATE_NUMBER}")
            if width > self.budget.generate_width:
                raise _LineError(f"$GENERATE modifier {match[0]!r}: the width {width} is "
                                 f"over {self.budget.generate_width} (a name is at most 255 "
                                 "octets, RFC 1035 §2.3.4)")
            if match[3] in ("n", "N") and start + offset < 0:
                raise _LineError(f"$GENERATE modifier {match[0]!r}: the nibble format "
                                 f"needs values of 0 or more, not {start + offset}")

    # ----------------------------------------------------------- records

    def _record_line(self, state: _FileState, tok: dns.tokenizer.Tokenizer,
                     line: int) -> None:
        """``owner [ttl] [class] type rdata`` (RFC 1035 §5.1; TTL and class in any order)."""
        token = tok.get(want_leading=True)
        if token.is_whitespace():
            token = tok.get()
            if token.is_eol_or_eof():
                return
            tok.unget(token)
            if state.last_name is None:
                raise _LineError("no owner name: the previous name is unknown")
            name = state.last_name
        else:
            name = tok.as_name(token, state.origin)
            state.last_name = name
        ttl: int | None = None
        rdclass = dns.rdataclass.IN
        token = tok.get()
        for _ in range(2):
            if not token.is_identifier():
                break
            if ttl is None and token.value[:1].isdigit():
                ttl = self._ttl(token.value)
                token = tok.get()
                continue
            try:
                rdclass = dns.rdataclass.from_text(token.value)
            except dns.rdataclass.UnknownRdataclass:
                break
            token = tok.get()
        if not token.is_identifier():
            raise _LineError("missing record type")
        try:
            rdtype = dns.rdatatype.from_text(token.value)
        except dns.rdatatype.UnknownRdatatype:
            raise _LineError(f"unknown record type {token.value!r}") from None
        if rdclass != dns.rdataclass.IN:
            raise _LineError(f"class {dns.rdataclass.to_text(rdclass)} records are not "
                             "served (only IN)")
        if dns.rdatatype.is_metatype(rdtype) or rdtype == dns.rdatatype.OPT:
            raise _LineError(f"{dns.rdatatype.to_text(rdtype)} is not a record type "
                             "a zone can hold")
        try:
            rdata = dns.rdata.from_text(rdclass, rdtype, tok, state.origin, relativize=False)
        except dns.exception.SyntaxError as exc:
            # dnspython's message alone ("Text input is malformed.") does not say what.
            raise _LineError(f"bad {dns.rdatatype.to_text(rdtype)} record data: "
                             f"{_describe(exc)}") from None
        if ttl is None:
            ttl = self._implicit_ttl(rdata)
        if not name.is_subdomain(self.zone_origin):
            raise _LineError(f"{name} is outside the zone {self.zone_origin}")
        self.last_ttl = ttl
        self.records.append(Record(name, ttl, rdata, self._location(state, line)))

    def _implicit_ttl(self, rdata: dns.rdata.Rdata) -> int:
        """$TTL, else the previous record's TTL, else (pre-RFC 2308) the SOA MINIMUM."""
        if self.default_ttl is not None:
            return self.default_ttl
        if self.last_ttl is not None:
            return self.last_ttl
        if rdata.rdtype == dns.rdatatype.SOA:
            return rdata.minimum  # type: ignore[attr-defined]
        raise _LineError("no TTL: give one on the record or set $TTL")

    def _ttl(self, text: str) -> int:
        try:
            ttl = dns.ttl.from_text(text)
        except dns.ttl.BadTTL:
            raise _LineError(f"bad TTL {text!r}") from None
        if ttl > MAX_TTL:
            raise _LineError(f"TTL {ttl} is out of range (RFC 2181 §8: at most {MAX_TTL})")
        return ttl

    # ----------------------------------------------------------- helpers

    def _display(self, path: Path) -> str:
        return shown_path(path, self.display_root)

    def _location(self, state: _FileState, line: int) -> Location:
        return Location(self._display(state.path), line)

    def _problem(self, state: _FileState, line: int, message: str) -> None:
        self.problems.append(Problem(self._location(state, line), message, Severity.ERROR))


def read_master_file(path: Path, origin: dns.name.Name, *, include_root: Path | None = None,
                     display_root: Path | None = None, budget: LoadBudget | None = None
                     ) -> tuple[list[Record], list[Problem]]:
    """Read ``path`` as the zone ``origin``; return its records and every problem."""
    return MasterFileReader(path, origin, include_root=include_root,
                            display_root=display_root, budget=budget).read()


_GENERATE_MODIFIER = re.compile(r"\$\{(-?\d+)(?:,(\d+))?(?:,([doxXnN]))?\}|\$\$|\\\$|\$")


def _substitute(template: str, counter: int) -> str:
    """Expand ``$``, ``${offset,width,base}``, ``\\$`` and ``$$`` as BIND does."""

    def expand(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("$$", "\\$"):
            return "$"
        if text == "$":
            return str(counter)
        offset, width, base = int(match[1]), int(match[2] or 0), match[3] or "d"
        value = counter + offset
        if base in "nN":
            return _nibbles(value, width, upper=base == "N")
        return format(value, f"0{width}{base}")

    return _GENERATE_MODIFIER.sub(expand, template)


def _nibbles(value: int, width: int, *, upper: bool) -> str:
    """BIND's nibble format: hex digits lowest first, dot-separated.

    As in BIND's ``genname``, ``width`` counts the output characters with
    their dots, so ``${0,3,n}`` of 0 is ``0.0`` and an even width can end in
    a dot (which makes the name absolute, exactly as BIND reads it).
    """
    if value < 0:
        raise ValueError(f"$GENERATE nibble format of a negative value {value}")
    digits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    out = []
    while True:
        out.append(digits[value & 0xF])
        value >>= 4
        width -= 1
        if width > 0 or value:
            out.append(".")
            width -= 1
        if not value and width <= 0:
            return "".join(out)


def _skip_line(tok: _Tokenizer) -> None:
    """Discard the rest of a bad entry, up to its end of line.

    An unterminated quote or parenthesis (RFC 1035 §5.1) leaves the tokenizer
    inside it, failing on every later token: it is taken out of it, so that
    reading goes on with the next line (or ends at the end of the file).
    """
    if tok.quoting:
        tok.leave_quote()  # the newline that broke the quoted string ended the line
        if not tok.multiline:
            return
    last = tok.last
    if tok.ungotten_token is None and last is not None and last.is_eol():
        return  # the bad entry already ended where the error was found
    try:
        while True:
            token = tok.get()
            if token.is_eol_or_eof():
                if token.is_eof():
                    tok.unget(token)
                return
    except dns.exception.DNSException:
        tok.leave_entry()


_NAME_PROBLEMS = {
    dns.name.NameTooLong: "name is longer than 255 octets (RFC 1035 §2.3.4)",
    dns.name.LabelTooLong: "label is longer than 63 octets (RFC 1035 §2.3.4)",
    dns.name.EmptyLabel: "name has an empty label",
}


def _describe(exc: BaseException) -> str:
    """The message for a problem; name errors in RFC words, also when dnspython
    re-raised them inside rdata as a plain SyntaxError with the same text."""
    text = str(exc) or type(exc).__name__
    for kind, message in _NAME_PROBLEMS.items():
        if isinstance(exc, kind) or text == kind.__doc__:
            return message
    return text
