"""A store's attributes stay where CPython reads them fastest: in slots.

Every attribute of a store is a slot (``__slots__`` in store.py and in each
policy), read by one specialized instruction. Without slots, CPython keeps an
object's attributes inline only while it has at most about 30 of them and
nothing has read its ``__dict__``; past that, every attribute read takes the
generic lookup, about twice as slow, and a get or a set of the engine is
0.3-0.5 us slower. tinylfu and lfu had more than that, and lru crossed the
line when the sweeper set one more. A store without a ``__dict__`` cannot
fall off that path: an attribute that is not a slot fails at once.
"""

from __future__ import annotations

import pytest

from cachegrid.engine import POLICIES, Cache
from cachegrid.engine.registry import store_class
from cachegrid.testing import FakeClock


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_store_has_no_attribute_dict(policy: str) -> None:
    cls = store_class(policy)
    assert all("__slots__" in vars(klass) for klass in cls.__mro__ if klass is not object), cls.__mro__
    assert not hasattr(Cache(policy)._store, "__dict__")


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_everything_the_engine_does_to_a_store_needs_no_other_attribute(policy: str, clock: FakeClock) -> None:
    cache = Cache(
        policy,
        max_size=100,
        clock=clock,
        cleanup_interval=3600,
        policy_options={"decay_time": 5} if policy == "lfu" else None,
    )
    count = 150 if cache._store.evicts else 90  # past max_size where the policy evicts
    with cache:  # the sweeper running: it hooks itself into the store
        for round_ in range(2):
            for i in range(count):
                cache.set(f"k{i}", b"1", ttl=5 if i % 2 else None, tags=["t"] if i % 3 == 0 else None)
                cache.get(f"k{i}")
            cache.invalidate_tags(["t"])
            clock.tick(10)
            cache.set_many({"a": b"1", "b": b"2"}, stale=3, ttl=1)
            assert {"a", "b"} <= {record[0] for record in cache._store.export_entries(0.0)}
            assert cache.clear() > 0
    assert not hasattr(cache._store, "__dict__")
