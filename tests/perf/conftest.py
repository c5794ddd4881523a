"""Microbenchmarks (pytest-benchmark): skipped unless asked for.

Run them with ``SEAWALL_PERF=1 .venv/bin/python -m pytest tests/perf`` or
``.venv/bin/python -m pytest tests/perf --benchmark-only``. They time, they
never assert a time: comparisons with NSD and Knot live in ``bench/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SEAWALL_PERF") == "1" or config.getoption("benchmark_only", False) \
            or config.getoption("benchmark_enable", False):
        return
    skip = pytest.mark.skip(reason="microbenchmark: SEAWALL_PERF=1 or --benchmark-only")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)
