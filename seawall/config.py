"""Configuration: one YAML file loaded once into frozen, typed objects.

Every key has a default, so an empty file (or none) is a working server
serving ``zones/`` on 127.0.0.1:5353. Unknown keys and values of the wrong
type are errors naming their line. Example::

    listen: ["127.0.0.1:5353", "[::1]:5353"]
    zones: zones                 # live zone files (a git checkout)
    emergency_dir: zones/emergency
    state_dir: .seawall
    udp_payload: 1232            # our EDNS(0) UDP payload size
    tcp_idle_timeout: 10s
    identity: {version: null, hostname: null, id_server: null}
    reload_interval: 2s          # how often the zones directory is checked
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class Duration(float):
    """Seconds, written in YAML as ``500ms``, ``1s``, ``10m``, ``2h`` or a number."""

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(value)
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (try 1s, 500ms, 10m)")
        return cls(float(match[1]) * _UNITS[match[2]])


@dataclass(frozen=True)
class Identity:
    """CHAOS TXT answers (RFC 4892); null hides the name (REFUSED), as the default."""

    version: str | None = None
    hostname: str | None = None
    id_server: str | None = None

    def names(self) -> dict[str, str]:
        out = {}
        if self.version is not None:
            out["version.bind."] = out["version.server."] = self.version
        if self.hostname is not None:
            out["hostname.bind."] = self.hostname
        if self.id_server is not None:
            out["id.server."] = self.id_server
        return out


@dataclass(frozen=True)
class Config:
    """The whole configuration of one server."""

    listen: tuple[str, ...] = ("127.0.0.1:5353",)
    zones: str = "zones"
    emergency_dir: str = "zones/emergency"
    state_dir: str = ".seawall"
    udp_payload: int = 1232
    tcp_idle_timeout: Duration = Duration(10)
    tcp_max_message: int = 65535
    answer_cache: int = 100_000
    semantic_checks: bool = True
    reload_interval: Duration = Duration(2)
    identity: Identity = field(default_factory=Identity)
    log_level: str = "info"
    log_format: str = "text"
    base_dir: str = "."  # where relative paths are resolved: the config file's folder

    def path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else Path(self.base_dir) / path

    def validate(self) -> None:
        if not 512 <= self.udp_payload <= 65535:
            raise ConfigError(f"udp_payload {self.udp_payload} must be within 512..65535")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, not {self.log_format!r}")
        for address in self.listen:
            parse_listen(address)


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:53``, ``[::1]:53`` or ``:53`` (all IPv4) into host and port."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([0-9.]*|localhost):(\d+)", text.strip())
    if not match:
        raise ConfigError(f"listen address {text!r} is not HOST:PORT or [IPv6]:PORT")
    host = match[1] if match[1] is not None else (match[3] or "0.0.0.0")
    port = int(match[2] or match[4])
    if not 0 <= port <= 65535:
        raise ConfigError(f"listen port {port} is out of range")
    return host, port


def load_config(path: Path | None, **overrides: Any) -> Config:
    """Read ``path`` (if given), then apply command-line ``overrides`` (None = unset)."""
    values: dict[str, Any] = {}
    base_dir = "."
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            node = yaml.compose(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if node is not None:
            values = _from_node(Config, node, str(path))
        base_dir = str(path.parent)
    values.setdefault("base_dir", base_dir)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    config = Config(**values)
    config.validate()
    return config


def _from_node(cls: type, node: yaml.Node, source: str) -> dict[str, Any]:
    """Keyword arguments for dataclass ``cls`` from a YAML mapping node, checked."""
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{source}:{node.start_mark.line + 1}: expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.name != "base_dir"}
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{source}:{line}: unknown key {key!r} (known: {known})")
        try:
            out[key] = _convert(hints[key], value_node, source)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}:{line}: {key}: {exc}") from None
    return out


def _convert(hint: Any, node: yaml.Node, source: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return hint(**_from_node(hint, node, source))
    value = yaml.safe_load(yaml.serialize(node))
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        hint = options[0]
        origin = typing.get_origin(hint)
    if hint is Duration:
        return Duration.parse(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise TypeError("expected a list")
        return tuple(str(v) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, (str, int, float)):
            raise TypeError(f"expected a string, not {value!r}")
        return str(value)
    return value
