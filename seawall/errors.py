"""The exceptions a user of Seawall can meet, under one root."""

from __future__ import annotations


class SeawallError(Exception):
    """Something Seawall cannot do, explained for an operator."""


class ConfigError(SeawallError):
    """The configuration file or a command-line flag is invalid."""


class ZoneError(SeawallError):
    """A zone could not be loaded; ``problems`` lists every reason."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []
