"""Nearest-rank percentiles: the one definition CacheGrid's measurements use.

The p-th percentile of n ordered values is the value of rank ⌈p·n⌉ (1-based,
clamped to 1..n): the smallest value that at least a fraction p of all values
are less than or equal to. The daemon's load test, the load generator and the
benchmarks all report through these two functions, so their numbers agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

Value = TypeVar("Value", int, float)


def nearest_rank(count: int, fraction: float) -> int:
    """The 1-based rank of the ``fraction`` percentile among ``count`` values."""
    return max(1, min(count, math.ceil(fraction * count - 1e-9)))


def percentile(sorted_values: Sequence[Value], fraction: float) -> Value:
    """The ``fraction`` (0..1) percentile of an ordered, non-empty sequence."""
    return sorted_values[nearest_rank(len(sorted_values), fraction) - 1]


def histogram_percentiles(histogram: dict[int, int], fractions: Sequence[float]) -> list[int]:
    """The percentiles of a histogram (value -> count), one per fraction in
    ascending order; zeros for an empty histogram."""
    total = sum(histogram.values())
    if not total:
        return [0 for _ in fractions]
    found: list[int] = []
    items = sorted(histogram.items())
    seen = index = 0
    for fraction in fractions:
        rank = nearest_rank(total, fraction)
        while seen < rank:
            seen += items[index][1]
            index += 1
        found.append(items[index - 1][0])
    return found
