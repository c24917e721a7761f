"""Property-based: random operation sequences against a reference model.

The model is the plainest possible cache: a dict of key -> (value, expires_at,
version) in recency order, with the eviction rule spelled out directly (reclaim
expired entries earliest first, then evict the least recently used, or refuse
for noeviction). Hypothesis drives both with the same operations, TTLs and
clock ticks, and every answer, every version and the statistics must agree.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cachegrid.engine import ANY, Cache, CacheFull, KeyNotFound, NotAnInteger, PreconditionFailed
from cachegrid.testing import FakeClock
from tests.fixtures import examples

KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
VALUES = st.sampled_from([b"0", b"7", b"-3", b"x", b'"s"', b"12345678901234567890", b"abc" * 20])
TTLS = st.one_of(st.none(), st.sampled_from([0.5, 1, 2.5, 10]))
INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]{0,18})")


class Model:
    def __init__(self, max_size: int, evicts: bool, clock: FakeClock) -> None:
        self.max_size = max_size
        self.evicts = evicts
        self.clock = clock
        self.data: OrderedDict[str, tuple[bytes, float | None, int]] = OrderedDict()
        self.version = 0
        self.hits = self.misses = 0

    def _expired(self, key: str) -> bool:
        expires_at = self.data[key][1]
        return expires_at is not None and expires_at <= self.clock()

    def live(self, key: str) -> tuple[bytes, float | None, int] | None:
        if key in self.data and self._expired(key):
            del self.data[key]
        return self.data.get(key)

    def get(self, key: str) -> tuple[bytes, float | None, int] | None:
        entry = self.live(key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
            self.data.move_to_end(key)
        return entry

    def store(self, key: str, value: bytes, expires_at: float | None, version: int | None = None) -> int:
        if key not in self.data and len(self.data) >= self.max_size:
            due = sorted((e[1], k) for k, e in self.data.items() if e[1] is not None and e[1] <= self.clock())
            for _, victim in due:
                if len(self.data) < self.max_size:
                    break
                del self.data[victim]
            if len(self.data) >= self.max_size:
                if not self.evicts:
                    raise CacheFull("full")
                self.data.popitem(last=False)
        if version is None:
            self.version += 1
            version = self.version
        self.data[key] = (value, expires_at, version)
        self.data.move_to_end(key)
        return version


class CacheMachine(RuleBasedStateMachine):
    policy = "lru"
    max_size = 4

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.cache = Cache(self.policy, max_size=self.max_size, clock=self.clock)
        self.model = Model(self.max_size, self.cache._store.evicts, self.clock)

    def _expires(self, ttl: float | None) -> float | None:
        return None if ttl is None else self.clock() + ttl

    @rule(key=KEYS, value=VALUES, ttl=TTLS, condition=st.sampled_from([None, "nx", "xx"]))
    def set(self, key: str, value: bytes, ttl: float | None, condition: str | None) -> None:
        existing = self.model.live(key)
        try:
            if (condition == "nx" and existing is not None) or (condition == "xx" and existing is None):
                expected: object = PreconditionFailed
            else:
                expected = (existing is None, self.model.store(key, value, self._expires(ttl)))
        except CacheFull:
            expected = CacheFull
        try:
            result: object = tuple(
                self.cache.set(
                    key,
                    value,
                    ttl,
                    if_none_match=ANY if condition == "nx" else None,
                    if_match=ANY if condition == "xx" else None,
                )
            )
        except (PreconditionFailed, CacheFull) as error:
            result = type(error)
        assert result == expected

    @rule(key=KEYS, use_current=st.booleans(), value=VALUES)
    def compare_and_set(self, key: str, use_current: bool, value: bytes) -> None:
        existing = self.model.live(key)
        version = existing[2] if existing is not None and use_current else self.model.version + 1000
        expected: object = PreconditionFailed
        if existing is not None and use_current:
            expected = self.model.store(key, value, None)
        try:
            result: object = self.cache.set(key, value, if_match=[version]).version
        except PreconditionFailed:
            result = PreconditionFailed
        assert result == expected

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        expected = self.model.get(key)
        entry = self.cache.get_entry(key)
        if expected is None:
            assert entry is None
        else:
            assert entry is not None
            assert (entry.value, entry.expires_at, entry.version) == expected

    @rule(key=KEYS)
    def exists(self, key: str) -> None:
        assert self.cache.exists(key) == (self.model.live(key) is not None)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        expected = self.model.live(key) is not None
        if expected:
            del self.model.data[key]
        assert self.cache.delete(key) == expected

    @rule(key=KEYS, by=st.integers(-5, 5))
    def incr(self, key: str, by: int) -> None:
        existing = self.model.live(key)
        expected: object
        if existing is not None and not INTEGER.fullmatch(existing[0]):
            expected = NotAnInteger
        else:
            current, expires_at = (0, None) if existing is None else (int(existing[0]), existing[1])
            try:
                self.model.store(key, b"%d" % (current + by), expires_at)
                expected = current + by
            except CacheFull:
                expected = CacheFull
        try:
            result: object = self.cache.incr(key, by)
        except (NotAnInteger, CacheFull) as error:
            result = type(error)
        assert result == expected

    @rule(key=KEYS, ttl=TTLS)
    def touch_or_persist(self, key: str, ttl: float | None) -> None:
        existing = self.model.live(key)
        if existing is not None:
            self.model.store(key, existing[0], self._expires(ttl), existing[2])
        result = self.cache.touch(key, ttl) if ttl is not None else self.cache.persist(key)
        assert result == (existing is not None)

    @rule(key=KEYS)
    def ttl(self, key: str) -> None:
        existing = self.model.live(key)
        if existing is None:
            with pytest.raises(KeyNotFound):
                self.cache.ttl(key)
        else:
            left = self.cache.ttl(key)
            assert left == (None if existing[1] is None else pytest.approx(existing[1] - self.clock()))

    @rule(seconds=st.sampled_from([0.25, 0.5, 1, 3]))
    def tick(self, seconds: float) -> None:
        self.clock.tick(seconds)

    @rule()
    def sweep(self) -> None:
        for key in list(self.model.data):
            self.model.live(key)
        self.cache.sweep()
        assert len(self.cache) == len(self.model.data)

    @precondition(lambda self: self.cache._store.evicts)
    @rule(items=st.dictionaries(KEYS, VALUES, max_size=3), ttl=TTLS)
    def set_many(self, items: dict[str, bytes], ttl: float | None) -> None:
        for key, value in items.items():
            self.model.live(key)
            self.model.store(key, value, self._expires(ttl))
        assert self.cache.set_many(items, ttl) == len(items)

    @rule(keys=st.lists(KEYS, max_size=4))
    def get_many(self, keys: list[str]) -> None:
        expected = {}
        for key in keys:
            entry = self.model.get(key)
            if entry is not None:
                expected[key] = entry[0]
        assert self.cache.get_many(keys) == expected

    @rule()
    def list_keys(self) -> None:
        live = {key for key in list(self.model.data) if self.model.live(key) is not None}
        assert set(self.cache.keys(limit=2 + len(live)).keys) == live

    @invariant()
    def counts_agree(self) -> None:
        stats = self.cache.stats()
        assert (stats["hits"], stats["misses"]) == (self.model.hits, self.model.misses)
        assert stats["current_size"] <= self.max_size

    @invariant()
    def memory_is_the_sum_of_the_entries(self) -> None:
        store = self.cache._store
        expected = sum(
            len(key.encode())
            + len(entry.value)
            + store.entry_overhead
            + (store.ttl_overhead if entry.expires_at is not None else 0)
            for key, entry in store.entries()
        )
        assert store.memory_usage == expected


SETTINGS = settings(
    max_examples=examples(80), stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

TestLRUAgainstModel = CacheMachine.TestCase
TestLRUAgainstModel.settings = SETTINGS


class NoEvictionMachine(CacheMachine):
    policy = "noeviction"


TestNoEvictionAgainstModel = NoEvictionMachine.TestCase
TestNoEvictionAgainstModel.settings = SETTINGS

# The other policies evict in their own order, which their own tests check;
# with room for every key they must behave exactly like the model.
for _policy in ("lfu", "tinylfu", "adaptive", "ttl", "size"):
    _machine = type(f"{_policy.upper()}Machine", (CacheMachine,), {"policy": _policy, "max_size": 100})
    _case = _machine.TestCase
    _case.settings = SETTINGS
    globals()[f"Test{_policy.upper()}AgainstModel"] = _case
del _policy, _machine, _case
