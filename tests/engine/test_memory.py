"""memory_usage tells the truth: within 10% of what tracemalloc measures."""

from __future__ import annotations

import pytest

from cachegrid.engine import POLICIES
from cachegrid.engine.calibrate import measure

ENTRIES = 100_000


@pytest.mark.slow
@pytest.mark.parametrize("value_size", [25, 1024], ids=["small", "1KB"])
@pytest.mark.parametrize("policy", list(POLICIES))
def test_memory_usage_is_within_10_percent_of_tracemalloc(policy: str, value_size: int) -> None:
    result = measure(policy, ENTRIES, value_size)
    assert abs(result.claim_error) <= 0.10, (
        f"{policy}: the cache claims {result.claimed_bytes} bytes, tracemalloc saw {result.traced_bytes}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("value_size", [25, 1024], ids=["small", "1KB"])
def test_memory_usage_with_ttls_is_within_10_percent_of_tracemalloc(value_size: int) -> None:
    result = measure("lru", ENTRIES, value_size, with_ttl=True)
    assert abs(result.claim_error) <= 0.10, (
        f"the cache claims {result.claimed_bytes} bytes, tracemalloc saw {result.traced_bytes}"
    )
