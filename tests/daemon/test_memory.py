"""What /stats says the entries cost is what they cost in the daemon: the
values the API stores must not drag hidden buffers along."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable

import pytest
from falcon import testing

from cachegrid.engine import Cache

ENTRIES = 5_000


@pytest.mark.parametrize(
    "how",
    [
        # Slow: 5,000 requests one by one under tracemalloc, which makes every
        # allocation about eight times dearer (5 s on a quiet machine, 6-14 s
        # in CI). The batch-set run keeps the claim in the fast loop.
        pytest.param("put", marks=pytest.mark.slow),
        "batch set",
    ],
)
def test_stored_entries_cost_what_stats_claims(
    make_client: Callable[..., tuple[testing.TestClient, Cache]], how: str
) -> None:
    client, cache = make_client(max_size=ENTRIES * 2)
    value = {"name": "Alice", "age": 30}
    client.simulate_put("/cache/warm-up", json=value)  # first-request allocations
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        if how == "put":
            for i in range(ENTRIES):
                client.simulate_put(f"/cache/user:{i:06d}", body=json.dumps(value))
        else:
            for start in range(0, ENTRIES, 1000):
                items = {f"user:{i:06d}": value for i in range(start, start + 1000)}
                client.simulate_post("/cache/batch/set", json={"items": items})
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    claimed = cache.stats()["memory_usage_bytes"] / len(cache)
    per_entry = traced / ENTRIES
    assert len(cache) == ENTRIES + 1
    assert per_entry <= 1.3 * claimed, f"{per_entry:.0f} bytes per entry traced, {claimed:.0f} claimed"


def test_a_batch_set_does_not_hold_a_buffer_per_value_while_it_runs(
    make_client: Callable[..., tuple[testing.TestClient, Cache]],
) -> None:
    # orjson writes each value into a 4 KiB buffer and hands it back with it:
    # 1,000 values held at once would be 4 MiB at the peak of one request.
    client, cache = make_client(max_size=10_000)
    items = {f"user:{i:06d}": {"name": "Alice", "age": 30} for i in range(1000)}
    body = json.dumps({"items": items})
    client.simulate_post(
        "/cache/batch/set", body=json.dumps({"items": {"warm": 1}}), headers={"Content-Type": "application/json"}
    )
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = client.simulate_post("/cache/batch/set", body=body, headers={"Content-Type": "application/json"})
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert result.status_code == 200 and len(cache) == 1001
    assert peak < 2 * 1024 * 1024, f"a batch of 1,000 small values peaked at {peak:,} bytes"
