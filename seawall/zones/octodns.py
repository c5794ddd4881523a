"""A reader for octoDNS's YAML zone files (the ``YamlProvider`` format).

A team that keeps its zones as code in octoDNS's format can point Seawall at
the same git repository: ``zones/example.com.yaml`` is the zone
``example.com.``. Every record becomes the same :class:`~.reader.Record` the
RFC 1035 reader makes, with the ``file:line`` of its value, so the same checks
apply to both formats.

The format (octoDNS ``docs/records.md``)::

    ---
    '':                          # the apex
      - type: NS
        values: [ns1.example.com., ns2.example.com.]
      - type: MX
        values:
          - exchange: mail.example.com.
            preference: 10
    www:
      ttl: 300                   # optional; default 3600 (YamlProvider default_ttl)
      type: A
      value: 192.0.2.80          # `value` for one, `values` for a list
    '*.apps':
      type: CNAME
      value: www.example.com.    # targets are fully qualified, with the final dot

Each top-level key is a name relative to the zone (``''`` is the apex, ``@``
is refused as octoDNS refuses it); its value is one record or a list of
records, at most one per type. The types read are those Seawall serves: A,
AAAA, CAA, CNAME, DNAME, DS, MX, NAPTR, NS, PTR, SPF, SRV, SSHFP, TLSA and
TXT. ``ALIAS`` is refused: it is not a DNS record type but a provider's
flattening of a CNAME at the apex, which an authoritative server cannot
serve; write the apex A/AAAA records instead. Value fields follow octoDNS's
record classes: TXT and SPF values escape ``;`` as ``\\;`` and are cut into
255-character strings; MX accepts the legacy ``priority``/``value``; DS the
legacy ``flags``/``protocol``/``algorithm``/``public_key``. Records marked
``octodns: {ignored: true}`` are not served (octoDNS does not push them);
``dynamic`` and ``geo`` rules are not served either, only the static values.
octoDNS rejects files whose mapping keys are not in natural sort order; that
is a warning here (Seawall serves such a file, octoDNS would not load it).
A record with ``octodns: {lenient: true}`` turns octoDNS's own stricter rules
(SRV owner names, SSHFP algorithms, unescaped ``;``) into warnings too.

The file is read as octoDNS 1.x's ``YamlProvider`` reads it with its default
settings (``default_ttl: 3600``, ``enforce_order: true``,
``escaped_semicolons: true``; checked against octoDNS 1.22 in the tests).
Provider settings live in octoDNS's own configuration, which Seawall does not
read: a repository that sets ``escaped_semicolons: false`` or another
``default_ttl``, or keeps split zones (``example.com./`` directories), is
not read as octoDNS would read it. An apex ``SOA`` record (below) is
Seawall's: octoDNS 1.x has no SOA type and refuses the file.

The SOA. octoDNS zone files usually have none, because the provider makes
one. Seawall synthesizes it, unless the apex has a record ``type: SOA`` whose
``value`` gives any of ``mname``, ``rname``, ``serial``, ``refresh``,
``retry``, ``expire``, ``minimum`` (missing ones take the defaults):

* ``mname``: the first apex NS target in the file; ``rname``:
  ``hostmaster.<zone>`` (RFC 2142); refresh 3600, retry 600, expire 604800,
  minimum (negative TTL, RFC 2308) 300; the SOA TTL is 3600.
* ``serial``: a 32-bit hash (the first four bytes of SHA-256) of the zone's
  records in canonical form (sorted, names lowercased, rdata in wire form).
  It is deterministic: every server loading the same file serves the same
  serial, whatever the file's mtime, a fresh ``git clone`` included; and it
  changes whenever an answer would change, but not for comments, key order or
  formatting. It is not monotonic: a secondary that compares serials (RFC
  1982) needs a serial that only grows, so a zone transferred to secondaries
  should give ``serial`` explicitly (and raise it on each change).

Example::

    records, problems = read_octodns_file(Path("zones/example.com.yaml"),
                                          dns.name.from_text("example.com."))
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import yaml

from .confine import RefusedZoneFile, open_confined
from .octodns_values import VALUE_MAKERS, BadValue, line_of, txt_chunks
from .problems import Location, Problem, Severity, shown_path
from .reader import MAX_TTL, Record

__all__ = ["OctodnsReader", "content_serial", "is_octodns_file", "natural_key",
           "read_octodns_file", "txt_chunks"]

DEFAULT_TTL = 3600
"""octoDNS's YamlProvider ``default_ttl``."""
SOA_DEFAULTS: dict[str, int] = {"refresh": 3600, "retry": 600, "expire": 604800,
                                "minimum": 300}
SOA_TTL = 3600
SOA_FIELDS = ("mname", "rname", "serial", "refresh", "retry", "expire", "minimum")
SUFFIXES = (".yaml", ".yml")

IN = dns.rdataclass.IN
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there is one
_SCALARS = yaml.constructor.SafeConstructor()
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_NULL_TAG = "tag:yaml.org,2002:null"
_STANDARD_TAGS = {_STR_TAG, _INT_TAG, _NULL_TAG, "tag:yaml.org,2002:bool",
                  "tag:yaml.org,2002:float", "tag:yaml.org,2002:seq",
                  "tag:yaml.org,2002:map", "tag:yaml.org,2002:timestamp"}
_RECORD_KEYS = {"type", "ttl", "value", "values", "octodns", "dynamic", "geo"}
# octoDNS types Seawall does not serve, and why.
_NOT_SERVED = {
    "ALIAS": "ALIAS is not a DNS record type but a provider's flattening of a CNAME at the "
             "apex; an authoritative server cannot serve it: write the apex A and AAAA "
             "records instead (or a CNAME below the apex)",
    "URLFWD": "URLFWD is a provider's HTTP redirect, not a DNS record type",
}


def is_octodns_file(path: Path) -> bool:
    """``NAME.yaml`` or ``NAME.yml`` whose NAME has a dot (``example.com.yaml``).

    A single-label stem (``octodns.yaml``, ``seawall.yaml``, ``production.yaml``)
    is a configuration file that may live beside the zones, not a zone.
    """
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return "." in name[:-len(suffix)].rstrip(".")
    return False


def read_octodns_file(path: Path, origin: dns.name.Name, *, display_root: Path | None = None,
                      root: Path | None = None) -> tuple[list[Record], list[Problem]]:
    """Read ``path`` as the zone ``origin``; return its records and every problem.

    The file must lie inside ``root`` (default: its own directory), links
    resolved, as master files must (see :mod:`.confine`).
    """
    return OctodnsReader(path, origin, display_root=display_root, root=root).read()


class OctodnsReader:
    """Reads one octoDNS YAML zone file into records."""

    def __init__(self, path: Path, origin: dns.name.Name, *,
                 display_root: Path | None = None, root: Path | None = None) -> None:
        self.path = path
        self.root = root or path.parent
        self.origin = origin
        self.shown = shown_path(path, display_root)
        self.records: list[Record] = []
        self.problems: list[Problem] = []
        self.soa_node: yaml.MappingNode | None = None
        self.soa_values: dict[str, tuple[yaml.Node, Any]] = {}
        self.soa_ttl = SOA_TTL
        self.lenient = False  # the record being read has octodns: {lenient: true}
        self.types_seen: dict[tuple[dns.name.Name, str], int] = {}

    # ------------------------------------------------------------ public

    def read(self, text: str | None = None) -> tuple[list[Record], list[Problem]]:
        """Read the file, or ``text`` as if it were the file's content."""
        try:
            if text is None:
                with io.TextIOWrapper(open_confined(self.path, self.root),
                                      encoding="utf-8") as handle:
                    text = handle.read()
        except UnicodeDecodeError:
            self._problem(1, "file is not valid UTF-8 text")
            return self.records, self.problems
        except (RefusedZoneFile, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            self.problems.append(Problem(Location(self.shown, 0),
                                         f"cannot read zone file: {reason}", stops=True))
            return self.records, self.problems
        try:
            root = yaml.compose(text, Loader=_LOADER)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            self._problem(line, f"not valid YAML: {exc.problem or exc}")
            return self.records, self.problems
        except yaml.YAMLError as exc:
            self._problem(1, f"not valid YAML: {exc}")
            return self.records, self.problems
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL_TAG):
            self._problem(1, "empty zone file: no records")
        elif not isinstance(root, yaml.MappingNode):
            self._problem(line_of(root), "an octoDNS zone file is a mapping of names to records")
        elif (shape := _shape_problem(root)) is not None:
            self._problem(shape[0], shape[1])
        else:
            self._read_names(root)
        self._add_soa()
        return self.records, self.problems

    # ------------------------------------------------------------- names

    def _read_names(self, root: yaml.MappingNode) -> None:
        self._check_order(root)
        seen: dict[str, int] = {}
        for key_node, value_node in root.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(line_of(key_node), "a record name must be a string")
                continue
            key = key_node.value
            if key in seen:
                self._problem(line_of(key_node), f"name {key!r} appears twice (first at line "
                                                 f"{seen[key]}); put its records in one list")
                continue
            seen[key] = line_of(key_node)
            try:
                name = self._name(key, key_node)
            except BadValue as bad:
                self._bad(bad)
                continue
            records = value_node.value if isinstance(value_node, yaml.SequenceNode) \
                else [value_node]
            if not records:
                self._problem(line_of(value_node), f"{_shown_name(key)} has an empty list of "
                                                   "records")
            for record_node in records:
                try:
                    self._read_record(name, key, record_node)
                except BadValue as bad:
                    self._bad(bad)

    def _name(self, key: str, node: yaml.Node) -> dns.name.Name:
        """The owner of a key; octoDNS's NameValidator rules."""
        if key == "@":
            raise BadValue(node, "invalid name '@': octoDNS writes the apex as ''")
        if key.endswith(".") or ".." in key:
            raise BadValue(node, f"invalid name {key!r}: names are relative to the zone, with "
                                 "no empty label and no final dot")
        if any(c.isspace() for c in key):
            raise BadValue(node, f"invalid name {key!r}: whitespace is not allowed")
        try:
            return dns.name.from_text(key, self.origin) if key else self.origin
        except dns.exception.DNSException as exc:
            raise BadValue(node, f"invalid name {key!r}: {_describe(exc)}") from None

    # ----------------------------------------------------------- records

    def _read_record(self, name: dns.name.Name, key: str, node: yaml.Node) -> None:
        self._check_tags(node)
        if not isinstance(node, yaml.MappingNode):
            raise BadValue(node, f"a record of {_shown_name(key)} must be a mapping with a type")
        fields = self._mapping(node)
        if "type" not in fields:
            raise BadValue(node, f"record of {_shown_name(key)} has no type")
        type_node, rdtype_text = fields["type"]
        if not isinstance(rdtype_text, str):
            raise BadValue(type_node, "type must be a string such as A or MX")
        rdtype_text = rdtype_text.upper()
        # Names are case-insensitive: 'www' and 'WWW' are one owner (octoDNS: duplicate).
        first = self.types_seen.get((name, rdtype_text))
        if first is not None:
            raise BadValue(type_node, f"second {rdtype_text} record for {name} (first at line "
                                      f"{first}); give one record with several values")
        self.types_seen[(name, rdtype_text)] = line_of(type_node)
        octodns_meta = fields.get("octodns", (None, None))[1]
        if isinstance(octodns_meta, dict) and octodns_meta.get("ignored") is True:
            return  # octoDNS does not push an ignored record: not served
        for extra in sorted(set(fields) - _RECORD_KEYS):
            self._problem(line_of(fields[extra][0]), f"unknown key {extra!r} in the "
                          f"{rdtype_text} record of {_shown_name(key)}; it is ignored",
                          Severity.WARNING)
        for rule in ("dynamic", "geo"):
            if rule in fields:
                self._problem(line_of(fields[rule][0]), f"{rule} rules of {_shown_name(key)} "
                              f"{rdtype_text} are not served; Seawall answers with the "
                              "record's static values", Severity.WARNING)
        if rdtype_text in _NOT_SERVED:
            raise BadValue(type_node, _NOT_SERVED[rdtype_text])
        ttl = self._ttl(fields, node)
        if rdtype_text == "SOA":
            if name != self.origin:
                raise BadValue(type_node, f"SOA at {name}, not at the zone apex ''")
            self._soa_record(fields, node, ttl)
            return
        make = VALUE_MAKERS.get(rdtype_text)
        if make is None:
            known = ", ".join(sorted(VALUE_MAKERS))
            raise BadValue(type_node, f"record type {rdtype_text} is not served by Seawall "
                                  f"(octoDNS types read: {known}, SOA)")
        self.lenient = _lenient(node)
        for value_node in self._values(fields, node, rdtype_text, key):
            problem: BadValue | None = None
            try:
                self._check_tags(value_node)
                text_or_rdata = make(self, value_node, _plain(value_node), name)
                rdata = (text_or_rdata if isinstance(text_or_rdata, dns.rdata.Rdata)
                         else dns.rdata.from_text(IN, dns.rdatatype.from_text(rdtype_text),
                                                  text_or_rdata, self.origin,
                                                  relativize=False))
            except BadValue as bad:
                problem = bad
            except (dns.exception.DNSException, ValueError, TypeError) as exc:
                problem = BadValue(value_node, f"bad {rdtype_text} value for {_shown_name(key)}: "
                                           f"{_describe(exc)}")
            if problem is not None:
                self._bad(problem)
                continue
            self.records.append(Record(name, ttl, rdata, Location(self.shown,
                                                                  line_of(value_node))))

    def _mapping(self, node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, Any]]:
        """Keys of a mapping with their value node and plain Python value."""
        self._check_order(node)
        out: dict[str, tuple[yaml.Node, Any]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in out:
                raise BadValue(key_node, f"key {key!r} appears twice")
            self._check_tags(value_node)
            out[str(key)] = (value_node, _plain(value_node))
        return out

    def _ttl(self, fields: dict[str, tuple[yaml.Node, Any]], node: yaml.Node) -> int:
        if "ttl" not in fields:
            return DEFAULT_TTL
        ttl_node, ttl = fields["ttl"]
        if isinstance(ttl, bool) or not isinstance(ttl, int):
            if isinstance(ttl, str) and ttl.isascii() and ttl.isdigit():
                ttl = int(ttl)
            else:
                raise BadValue(ttl_node, f"ttl must be a number of seconds, not {ttl!r}")
        if not 0 <= ttl <= MAX_TTL:
            raise BadValue(ttl_node, f"TTL {ttl} is out of range (RFC 2181 §8: 0 to {MAX_TTL})")
        return ttl

    def _values(self, fields: dict[str, tuple[yaml.Node, Any]], node: yaml.Node,
                rdtype: str, key: str) -> list[yaml.Node]:
        """The value nodes of a record: ``values`` (a list or one) or ``value``."""
        if "values" in fields and "value" in fields:
            self._problem(line_of(fields["value"][0]), f"{rdtype} record of {_shown_name(key)} "
                          "has both value and values; octoDNS uses values", Severity.WARNING)
        chosen = fields.get("values") or fields.get("value")
        if chosen is None or chosen[1] is None or chosen[1] == []:
            raise BadValue(node, f"{rdtype} record of {_shown_name(key)} has no value(s)")
        value_node = chosen[0]
        if isinstance(value_node, yaml.SequenceNode):
            if rdtype in ("CNAME", "DNAME") and len(value_node.value) > 1:
                raise BadValue(value_node, f"{rdtype} record of {_shown_name(key)} has more than "
                                       "one value (RFC 2181 §10.1)")
            return list(value_node.value)
        return [value_node]

    def _check_tags(self, node: yaml.Node) -> None:
        if node.tag not in _STANDARD_TAGS:
            raise BadValue(node, f"YAML tag {node.tag} is not supported here")
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            for child in node.value:
                for part in (child if isinstance(child, tuple) else (child,)):
                    self._check_tags(part)

    def _check_order(self, node: yaml.MappingNode) -> None:
        """octoDNS's loader (enforce_order) wants keys in natural sort order."""
        keys = [k for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        for prev, key in zip(keys, keys[1:]):
            if natural_key(key.value) < natural_key(prev.value):
                self._problem(line_of(key), f"key {key.value!r} is out of order (after "
                              f"{prev.value!r}): octoDNS, which enforces natural sort order, "
                              "would not load this file", Severity.WARNING)
                return

    # --------------------------------------------------------------- SOA

    def _soa_record(self, fields: dict[str, tuple[yaml.Node, Any]], node: yaml.Node,
                    ttl: int) -> None:
        value = fields.get("value")
        if value is None or not isinstance(value[0], yaml.MappingNode):
            raise BadValue(node, "an SOA record has one value, a mapping of mname, rname, serial, "
                             "refresh, retry, expire, minimum")
        soa_fields = self._mapping(value[0])
        for extra in sorted(set(soa_fields) - set(SOA_FIELDS)):
            raise BadValue(soa_fields[extra][0], f"unknown SOA field {extra!r} (known: "
                                             f"{', '.join(SOA_FIELDS)})")
        self.soa_node = value[0]
        self.soa_values = soa_fields
        self.soa_ttl = ttl if "ttl" in fields else SOA_TTL

    def _add_soa(self) -> None:
        """The SOA from the file's SOA record, the rest synthesized (module docstring)."""
        if any(r.rdata.rdtype == dns.rdatatype.SOA for r in self.records):
            return
        given = {k: v for k, (_, v) in self.soa_values.items()}
        apex_ns = [r.rdata.target for r in self.records  # type: ignore[attr-defined]
                   if r.rdata.rdtype == dns.rdatatype.NS and r.name == self.origin]
        mname = given.get("mname") or (apex_ns[0].to_text() if apex_ns
                                       else dns.name.from_text("ns", self.origin).to_text())
        rname = given.get("rname") or dns.name.from_text("hostmaster", self.origin).to_text()
        numbers = dict(SOA_DEFAULTS)
        serial = given.get("serial")
        line = line_of(self.soa_node) if self.soa_node is not None else 1
        for field in ("serial", *SOA_DEFAULTS):
            if field in given:
                value = given[field]
                if isinstance(value, bool) or not isinstance(value, int) \
                        or not 0 <= value <= 2**32 - 1:
                    self._problem(line_of(self.soa_values[field][0]),
                                  f"SOA {field} must be a number from 0 to {2**32 - 1}, "
                                  f"not {value!r}")
                    return
                numbers[field] = value
        for field in ("mname", "rname"):
            if field in given and not str(given[field]).endswith("."):
                self._problem(line_of(self.soa_values[field][0]),
                              f"SOA {field} {given[field]!r} must be fully qualified "
                              "(end with a dot)")
                return
        ttl = self.soa_ttl
        rest = (f"{numbers['refresh']} {numbers['retry']} {numbers['expire']} "
                f"{numbers['minimum']}")
        if serial is None:
            serial = content_serial(self.records, f"{mname} {rname} {rest} {ttl}".encode())
        text = f"{mname} {rname} {serial} {rest}"
        try:
            rdata = dns.rdata.from_text(IN, dns.rdatatype.SOA, text, self.origin,
                                        relativize=False)
        except dns.exception.DNSException as exc:
            self._problem(line, f"bad SOA: {_describe(exc)}")
            return
        self.records.insert(0, Record(self.origin, ttl, rdata, Location(self.shown, line)))

    # ----------------------------------------------------------- helpers

    def _problem(self, line: int, message: str, severity: Severity = Severity.ERROR) -> None:
        self.problems.append(Problem(Location(self.shown, line), message, severity))

    def octodns_rule(self, node: yaml.Node, message: str) -> None:
        """A rule of octoDNS's, not of DNS: an error, or a warning on a lenient record."""
        if not self.lenient:
            raise BadValue(node, message)
        self._problem(line_of(node), message + " (lenient record)", Severity.WARNING)

    def warn(self, node: yaml.Node, message: str) -> None:
        self._problem(line_of(node), message, Severity.WARNING)

    def _bad(self, bad: BadValue) -> None:
        self._problem(line_of(bad.node), str(bad))


# ----------------------------------------------------------------- helpers

def content_serial(records: list[Record], extra: bytes = b"") -> int:
    """A deterministic serial: the first 32 bits of SHA-256 over the canonical records.

    ``extra`` is the rest of the SOA (names, timers, TTL), so that changing it
    changes the serial too.
    """
    lines = sorted(
        b"%s %d %d %s" % (r.name.canonicalize().to_wire(), r.ttl, r.rdata.rdtype,
                          r.rdata.to_digestable(r.name).hex().encode())
        for r in records if r.rdata.rdtype != dns.rdatatype.SOA)
    digest = hashlib.sha256(b"\n".join([extra, *lines])).digest()
    return int.from_bytes(digest[:4], "big") or 1


MAX_DEPTH = 32
MAX_EXPANDED_NODES = 1_000_000


def _shape_problem(root: yaml.Node) -> tuple[int, str] | None:
    """A document the reader must not walk: a recursive alias, nesting too deep, or
    aliases that expand past ``MAX_EXPANDED_NODES`` (the "billion laughs").

    Iterative, so that a hostile file cannot exhaust the Python stack.
    """
    state: dict[int, int] = {}      # id(node) -> 1 on the current path, 2 done
    expanded: dict[int, int] = {}   # id(node) -> nodes it stands for, aliases expanded
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        key = id(node)
        children = _children(node)
        if state.get(key) == 1:      # every child is done: count it
            state[key] = 2
            expanded[key] = 1 + sum(expanded[id(c)] for c in children)
            if expanded[key] > MAX_EXPANDED_NODES:
                return line_of(node), (f"YAML aliases expand to more than "
                                       f"{MAX_EXPANDED_NODES} nodes")
            continue
        if state.get(key) == 2:
            continue
        if depth > MAX_DEPTH:
            return line_of(node), f"YAML nested deeper than {MAX_DEPTH} levels"
        state[key] = 1
        stack.append((node, depth))
        for child in children:
            if state.get(id(child)) == 1:
                return line_of(child), "a YAML alias refers to a node that contains it"
            stack.append((child, depth + 1))
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """Natural sort order (``2`` before ``12``), as octoDNS's natsort keys."""
    return [(0, int(part)) if part.isascii() and part.isdigit() else (1, part)
            for part in re.split(r"([0-9]+)", text) if part != ""]


def _plain(node: yaml.Node) -> Any:
    """The plain Python value of a node (tags already checked)."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _STR_TAG:
            return node.value
        # The scalar's own constructor (int, bool, null, float, timestamp); not
        # construct_object, whose cache of every node would outlive the file.
        return _SCALARS.yaml_constructors[node.tag](_SCALARS, node)
    if isinstance(node, yaml.SequenceNode):
        return [_plain(child) for child in node.value]
    if isinstance(node, yaml.MappingNode):
        return {(k.value if isinstance(k, yaml.ScalarNode) else repr(_plain(k))): _plain(v)
                for k, v in node.value}
    return None


def _lenient(node: yaml.Node) -> bool:
    """``octodns: {lenient: true}`` on a record."""
    if not isinstance(node, yaml.MappingNode):
        return False
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "octodns":
            meta = _plain(value)
            return isinstance(meta, dict) and meta.get("lenient") is True
    return False


def _shown_name(key: str) -> str:
    return repr(key) if key else "the apex ''"


def _describe(exc: BaseException) -> str:
    names = {
        "NameTooLong": "name is longer than 255 octets (RFC 1035 §2.3.4)",
        "LabelTooLong": "label is longer than 63 octets (RFC 1035 §2.3.4)",
        "EmptyLabel": "name has an empty label",
    }
    return names.get(type(exc).__name__, str(exc) or type(exc).__name__)
