"""``set_many(..., binary_keys=...)``: one batch of JSON and binary values
together, still all or nothing, for every policy."""

from __future__ import annotations

import pytest

from cachegrid.engine import POLICIES, Cache, ValueTooLarge
from cachegrid.testing import FakeClock


@pytest.fixture(params=sorted(POLICIES))
def cache(request: pytest.FixtureRequest, clock: FakeClock) -> Cache:
    return Cache(request.param, max_value_size=8, clock=clock)


def test_only_the_named_items_are_binary(cache: Cache) -> None:
    assert cache.set_many({"json": b"1", "bin": b"\x00\x01"}, 60, binary_keys={"bin"}) == 2
    entries = cache.get_many_entries(["json", "bin"])
    assert (entries["json"].binary, entries["bin"].binary) == (False, True)
    assert entries["bin"].value == b"\x00\x01" and entries["bin"].expires_at is not None


def test_a_refused_item_of_either_kind_stores_none(cache: Cache) -> None:
    cache.set("json", b"0")
    with pytest.raises(ValueTooLarge):
        cache.set_many({"json": b"1", "bin": b"\x00" * 9}, binary_keys={"bin"})
    assert cache.get("json") == b"0" and cache.get("bin") is None
