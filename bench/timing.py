"""Wall-clock timing shared by the in-process benchmarks (audit reads, console pages)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["median_seconds"]


def median_seconds(action: Callable[[], object], times: int) -> float:
    """The median of `times` runs of `action`: one slow run on a shared machine moves it
    less than it moves a mean."""
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)
