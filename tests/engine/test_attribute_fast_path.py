"""A store's attributes stay where CPython reads them fastest.

CPython keeps an object's attributes inline, read by specialized
instructions, until something reads its ``__dict__`` (``vars(store)``):
from then on every attribute read of that object takes the generic lookup,
about twice as slow, and a get or a set of the engine is 0.3-0.5 us slower
(store.py, ``_reset``). Nothing the engine does to a store may do that: a
clear, tags, TTLs, snapshots of its order.

Whether the attributes are inline is seen in ``gc.get_referents``: an
object with inline attributes refers to each value itself; one whose
``__dict__`` was made refers to that dict instead.
"""

from __future__ import annotations

import gc
import platform

import pytest

from cachegrid.engine import POLICIES, Cache

from .conftest import FakeClock

pytestmark = pytest.mark.skipif(platform.python_implementation() != "CPython",
                                reason="inline attributes are CPython's")


def inline(store: object) -> bool:
    data = store._data  # type: ignore[attr-defined]
    return any(value is data for value in gc.get_referents(store))


def test_the_probe_sees_a_dict_made_by_vars(clock: FakeClock) -> None:
    store = Cache("lru", clock=clock)._store
    assert inline(store)
    vars(store)
    assert not inline(store)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_using_a_store_keeps_its_attributes_as_a_fresh_one_has_them(policy: str, clock: FakeClock) -> None:
    cache = Cache(policy, max_size=100, clock=clock)
    fresh = inline(cache._store)
    count = 150 if cache._store.evicts else 90  # past max_size where the policy evicts
    for round_ in range(2):
        for i in range(count):
            cache.set(f"k{i}", b"1", ttl=5 if i % 2 else None, tags=["t"] if i % 3 == 0 else None)
            cache.get(f"k{i}")
        cache.invalidate_tags(["t"])
        clock.tick(10)
        cache.set_many({"a": b"1", "b": b"2"}, stale=3, ttl=1)
        assert {"a", "b"} <= {record[0] for record in cache._store.export_entries(0.0)}
        cache.clear()
        assert inline(cache._store) == fresh, f"round {round_}: the store's attributes left the fast path"


def test_the_default_policy_starts_on_the_fast_path(clock: FakeClock) -> None:
    assert inline(Cache(clock=clock)._store)
