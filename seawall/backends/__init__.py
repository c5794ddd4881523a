"""Upstream sources of zone data, each behind one small interface (base.Backend)."""

from __future__ import annotations

from ..config import BackendConfig, Config
from .base import Backend


def make_backends(config: Config) -> list[Backend]:
    """One backend object per ``backends:`` entry (default: files on ``zones``)."""
    out: list[Backend] = []
    for spec in config.backend_configs():
        out.append(make_backend(spec, config))
    return out


def make_backend(spec: BackendConfig, config: Config) -> Backend:
    if spec.type == "files":
        from .files import FilesBackend
        return FilesBackend(config.path(spec.path or config.zones),
                            strict=config.semantic_checks,
                            probe_timeout=float(config.failover.probe_timeout),
                            remove_after=float(config.failover.remove_after))
    from .axfr import AxfrBackend
    return AxfrBackend(spec, config.failover, strict=config.semantic_checks)
