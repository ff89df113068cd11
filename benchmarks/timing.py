"""What the benchmarks share: timing two contenders in turn, so that a noisy machine slows both alike, and scratch
folders that are gone when the benchmark ends (some fill gigabytes)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def scratch(prefix: str) -> Path:
    """A new temporary folder, removed with everything in it when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def alternate(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int, *, warm_up: bool = False
) -> tuple[list[float], list[float]]:
    """Time ``a`` and ``b`` in turn, ``repeats`` times each (after one untimed call of each with ``warm_up``)."""
    if warm_up:
        a()
        b()
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(repeats):
        for fn, times in ((a, times_a), (b, times_b)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return times_a, times_b


def best(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds (the one least disturbed by a busy machine)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)
