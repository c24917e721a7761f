"""The one percentile definition: nearest rank, ⌈p·n⌉."""

from __future__ import annotations

import pytest

from cachegrid.percentile import histogram_percentiles, nearest_rank, percentile


@pytest.mark.parametrize(
    ("count", "fraction", "rank"),
    [
        (1, 0.5, 1),
        (2, 0.5, 1),
        (3, 0.5, 2),
        (4, 0.5, 2),
        (5, 0.5, 3),
        (100, 0.99, 99),
        (1000, 0.999, 999),
        (10, 0.0, 1),
        (10, 1.0, 10),
        (7, 0.95, 7),
    ],
)
def test_nearest_rank_is_the_ceiling_of_p_times_n(count: int, fraction: float, rank: int) -> None:
    assert nearest_rank(count, fraction) == rank


def test_percentile_of_an_odd_count_is_not_one_rank_high() -> None:
    # 0.5 * 5 = 2.5 -> rank 3 -> the median, not the fourth value.
    assert percentile([10, 20, 30, 40, 50], 0.5) == 30
    assert percentile([1.0, 2.0, 3.0], 0.99) == 3.0


def test_histogram_percentiles_agree_with_the_expanded_list() -> None:
    histogram = {1: 50, 2: 45, 3: 4, 10: 1}
    expanded = sorted(value for value, count in histogram.items() for _ in range(count))
    fractions = (0.5, 0.95, 0.99, 1.0)
    assert histogram_percentiles(histogram, fractions) == [percentile(expanded, f) for f in fractions]
    assert histogram_percentiles(histogram, fractions) == [1, 2, 3, 10]
    assert histogram_percentiles({}, fractions) == [0, 0, 0, 0]
