"""The limits are one value: given whole, by keyword, or both."""

from __future__ import annotations

import pytest

from cachegrid.engine import Cache, Limits


def test_keyword_limits_override_the_fields_of_the_limits_given() -> None:
    cache = Cache("lru", Limits(max_size=3, max_value_size=100), max_memory=50_000)
    assert cache.limits == Limits(max_size=3, max_memory=50_000, max_value_size=100)
    assert (cache.max_size, cache.max_memory, cache.max_value_size) == (3, 50_000, 100)
    for i in range(5):
        cache.set(f"k{i}", b"v")
    assert len(cache) == 3


def test_keyword_limits_alone_keep_the_other_defaults() -> None:
    assert Cache("lru", max_size=7).limits == Limits(max_size=7)


@pytest.mark.parametrize("field", ["max_size", "max_memory", "max_key_length", "max_value_size"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        Limits(**{field: value})  # type: ignore[arg-type]


def test_an_unknown_limit_is_refused() -> None:
    with pytest.raises(TypeError):
        Cache("lru", max_entries=3)  # type: ignore[arg-type]
