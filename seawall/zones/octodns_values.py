"""The values of octoDNS records: one maker per type, turning a value into rdata.

The field names and rules are those of octoDNS's record classes
(``octodns/record/*.py``): MX ``preference``/``exchange`` (legacy
``priority``/``value``), SRV ``priority``/``weight``/``port``/``target``, CAA
``flags``/``tag``/``value``, NAPTR ``order``/``preference``/``flags``/
``service``/``regexp``/``replacement``, SSHFP ``algorithm``/
``fingerprint_type``/``fingerprint``, DS ``key_tag``/``algorithm``/
``digest_type``/``digest``, TLSA ``certificate_usage``/``selector``/
``matching_type``/``certificate_association_data``; targets fully qualified;
TXT and SPF escaped and chunked as octoDNS's ``_ChunkedValue``. A maker
returns rdata text for dnspython, or an Rdata where text would need escaping.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CAA
import dns.rdtypes.IN.NAPTR
import yaml

IN = dns.rdataclass.IN


class Rules(Protocol):
    """What a maker reports to: the reader of the file."""

    origin: dns.name.Name

    def octodns_rule(self, node: yaml.Node, message: str) -> None: ...

    def warn(self, node: yaml.Node, message: str) -> None: ...


class BadValue(Exception):
    """A problem with one record or value: report it, skip the record, go on."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node


ValueMaker = Callable[[Rules, yaml.Node, Any, dns.name.Name], "str | dns.rdata.Rdata"]


def _address(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
    return _scalar(node, value, "an address")


def _target(kind: str, allow_root: bool = False) -> ValueMaker:
    def make(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
        return _fqdn(node, _scalar(node, value, "a name"), kind, allow_root)
    return make


def _mx(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
    fields = _fields(node, value, "MX")
    if "preference" not in fields and "priority" in fields:
        _legacy(reader, node, "MX priority", "preference")
    if "exchange" not in fields and "value" in fields:
        _legacy(reader, node, "MX value", "exchange")
    preference = _int(node, fields.get("preference", fields.get("priority")), "preference",
                      0, 65535)
    exchange = fields.get("exchange", fields.get("value"))
    return f"{preference} {_fqdn(node, _req(node, exchange, 'exchange'), 'MX exchange', True)}"


def _srv(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
    if not re.match(r"^(\*|_[^.]+)\.[^.]+", name.relativize(reader.origin).to_text()):
        reader.octodns_rule(node, f"invalid name for an SRV record: {name} is not "
                                  "_service._proto (RFC 2782)")
    fields = _fields(node, value, "SRV")
    numbers = [_int(node, fields.get(k), k, 0, 65535) for k in ("priority", "weight", "port")]
    target = _fqdn(node, _req(node, fields.get("target"), "target"), "SRV target", True)
    return f"{numbers[0]} {numbers[1]} {numbers[2]} {target}"


def _caa(reader: Rules, node: yaml.Node, value: Any,
         name: dns.name.Name) -> dns.rdata.Rdata:
    fields = _fields(node, value, "CAA")
    flags = _int(node, fields.get("flags", 0), "flags", 0, 255)
    tag = str(_req(node, fields.get("tag"), "tag"))
    text = str(_req(node, fields.get("value"), "value"))
    return dns.rdtypes.ANY.CAA.CAA(IN, dns.rdatatype.CAA, flags, tag.encode(), text.encode())


def _naptr(reader: Rules, node: yaml.Node, value: Any,
           name: dns.name.Name) -> dns.rdata.Rdata:
    fields = _fields(node, value, "NAPTR")
    order = _int(node, fields.get("order"), "order", 0, 65535)
    preference = _int(node, fields.get("preference"), "preference", 0, 65535)
    flags = str(_req(node, fields.get("flags"), "flags"))
    if flags not in ("S", "A", "U", "P", "s", "a", "u", "p", ""):
        reader.octodns_rule(node, f"unrecognized NAPTR flags {flags!r} (S, A, U or P)")
    service = str(_req(node, fields.get("service"), "service"))
    regexp = str(_req(node, fields.get("regexp"), "regexp"))
    replacement = _fqdn(node, str(_req(node, fields.get("replacement"), "replacement")),
                        "NAPTR replacement", True)
    return dns.rdtypes.IN.NAPTR.NAPTR(IN, dns.rdatatype.NAPTR, order, preference,
                                      flags.upper().encode(), service.encode(),
                                      regexp.encode(), dns.name.from_text(replacement))


def _sshfp(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
    fields = _fields(node, value, "SSHFP")
    algorithm = _int(node, fields.get("algorithm"), "algorithm", 0, 255)
    fp_type = _int(node, fields.get("fingerprint_type"), "fingerprint_type", 0, 255)
    fingerprint = str(_req(node, fields.get("fingerprint"), "fingerprint"))
    if algorithm not in (1, 2, 3, 4):
        reader.octodns_rule(node, f"unrecognized SSHFP algorithm {algorithm} (octoDNS knows "
                                  "1-4)")
    expected = {1: 40, 2: 64}.get(fp_type)
    if expected is None:
        reader.octodns_rule(node, f"unrecognized SSHFP fingerprint_type {fp_type} (1 or 2)")
    elif len(fingerprint) != expected:
        raise BadValue(node, f"SSHFP fingerprint of {len(fingerprint)} hex digits does not match "
                         f"fingerprint_type {fp_type} (expected {expected})")
    return f"{algorithm} {fp_type} {fingerprint}"


def _ds(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
    fields = _fields(node, value, "DS")
    if "public_key" in fields or "flags" in fields:
        # octoDNS's deprecated field names, mapped as octoDNS maps them.
        _legacy(reader, node, "DS flags/protocol/algorithm/public_key",
                "key_tag/algorithm/digest_type/digest")
        fields = {"key_tag": fields.get("flags"), "algorithm": fields.get("protocol"),
                  "digest_type": fields.get("algorithm"), "digest": fields.get("public_key")}
    key_tag = _int(node, fields.get("key_tag"), "key_tag", 0, 65535)
    algorithm = _int(node, fields.get("algorithm"), "algorithm", 0, 255)
    digest_type = _int(node, fields.get("digest_type"), "digest_type", 0, 255)
    digest = str(_req(node, fields.get("digest"), "digest"))
    return f"{key_tag} {algorithm} {digest_type} {digest}"


def _tlsa(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
    fields = _fields(node, value, "TLSA")
    usage = _int(node, fields.get("certificate_usage"), "certificate_usage", 0, 255)
    selector = _int(node, fields.get("selector"), "selector", 0, 255)
    matching = _int(node, fields.get("matching_type"), "matching_type", 0, 255)
    data = str(_req(node, fields.get("certificate_association_data"),
                    "certificate_association_data"))
    return f"{usage} {selector} {matching} {data}"


def _txt(reader: Rules, node: yaml.Node, value: Any, name: dns.name.Name) -> str:
    """octoDNS's chunked value: ``;`` escaped, cut into 255-character strings."""
    text = _scalar(node, value, "a string")
    if text[:1] == '"':
        # A value already quoted ("a" "b") is joined back into one, as octoDNS does.
        text = text[1:-1].replace('" "', "")
    if re.search(r"\w;", text):
        reader.octodns_rule(node, f"unescaped ; in {text!r}: octoDNS wants \\;")
    if re.search(r"\\\\;", text):
        reader.octodns_rule(node, f"double escaped ; in {text!r}")
    try:
        text.encode("ascii")
    except UnicodeEncodeError:
        raise BadValue(node, f"non-ASCII character in {text!r}: write it as \\DDD") from None
    return " ".join(f'"{chunk}"' for chunk in txt_chunks(text))


_ESCAPE_ATOM = re.compile(r"\\[0-9]{3}|\\.|.", re.S)


def txt_chunks(value: str, size: int = 255) -> list[str]:
    """octoDNS's ``chunked_value``: quotes escaped, cut every ``size`` characters.

    A cut never falls inside an escape (``\\;``, ``\\\\``, ``\\DDD``); octoDNS
    only avoids cutting right after a backslash, which goes wrong on ``\\\\``.
    """
    chunks, current = [], ""
    for atom in _ESCAPE_ATOM.findall(value.replace('"', '\\"')):
        if len(current) + len(atom) > size:
            chunks.append(current)
            current = ""
        current += atom
    chunks.append(current)
    return chunks


VALUE_MAKERS: dict[str, ValueMaker] = {
    "A": _address, "AAAA": _address, "CAA": _caa, "CNAME": _target("CNAME"),
    "DNAME": _target("DNAME"), "DS": _ds, "MX": _mx, "NAPTR": _naptr, "NS": _target("NS"),
    "PTR": _target("PTR"), "SPF": _txt, "SRV": _srv, "SSHFP": _sshfp, "TLSA": _tlsa,
    "TXT": _txt,
}


# ----------------------------------------------------------------- helpers

def _fields(node: yaml.Node, value: Any, rdtype: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadValue(node, f"a {rdtype} value is a mapping of its fields")
    return value


def _req(node: yaml.Node, value: Any, field: str) -> Any:
    if value is None:
        raise BadValue(node, f"missing {field}")
    return value


def _int(node: yaml.Node, value: Any, field: str, low: int, high: int) -> int:
    value = _req(node, value, field)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadValue(node, f"invalid {field} {value!r} (a number from {low} to {high})")
    return value


def _scalar(node: yaml.Node, value: Any, what: str) -> str:
    """The text of a scalar as written: ``2001:0:0:1`` is no YAML 1.1 sexagesimal number."""
    if not isinstance(node, yaml.ScalarNode) or value is None:
        raise BadValue(node, f"expected {what}")
    return str(node.value)


def _fqdn(node: yaml.Node, target: str, kind: str, allow_root: bool = False) -> str:
    """octoDNS's ``validate_target_fqdn``: a fully qualified name, with its final dot."""
    if target == ".":
        if allow_root:
            return target
        raise BadValue(node, f"{kind} {target!r} is not a valid target")
    if not target.endswith("."):
        raise BadValue(node, f"{kind} {target!r} is missing its final '.': octoDNS targets are "
                         "fully qualified")
    return target


def _legacy(reader: Rules, node: yaml.Node, old: str, new: str) -> None:
    reader.warn(node, f"{old} is octoDNS's deprecated spelling; write {new}")


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1
