"""What the benchmarks share: timing two contenders in turn, so that a noisy machine slows both alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


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
