"""Upstream sources of zone data, each behind one small interface."""
