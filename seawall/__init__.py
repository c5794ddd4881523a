"""Seawall: an authoritative DNS server with a disaster mode."""

__version__ = "0.1.0"
