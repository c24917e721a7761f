"""Property-based: the ``tinylfu`` policy against a plain model of its rules.

The model below is written from tinylfu.py's module docstring, not from its
code: three ordered dicts (window, probation, protected, each oldest first;
protected's values are the "used" marks), the moves a read makes, the
demotion with its second chances, the duel and the window's overflow, each
spelled out in the most direct way. Hypothesis drives the real store
(``TinyLFUStore``) and the model with the same reads, writes and deletes,
and after every operation the three lists, their order, the marks, their
lengths and the key evicted (if any) must agree.

What the model takes from the store rather than computing itself: the
sketch's estimates (sketch.py, tested on its own) and the window's share
(the hill climber's arithmetic). The duel's coin is a seeded random source,
one copy each, loaded to come up "admit" half the time so that the rare
admission at random happens often enough to be checked. A read also checks
the sketch's ``add`` written out in the read hook: the table after the read
is the table before with ``FrequencySketch.add`` applied.
"""

from __future__ import annotations

import random
from array import array
from collections import OrderedDict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachegrid.engine.sketch import FrequencySketch
from cachegrid.engine.store import Limits
from cachegrid.engine.tinylfu import (
    ADMIT_AT_RANDOM_FROM,
    ADMIT_AT_RANDOM_ONE_IN,
    PROBATION,
    PROTECTED,
    PROTECTED_SHARE,
    SECOND_CHANCES,
    USED,
    WINDOW,
    TinyLFUStore,
)
from tests.fixtures import examples


class LoadedCoin(random.Random):
    """``randrange(n)`` is 0 half the time (n - 1 otherwise): the duel's
    1-in-128 admission at random, made common."""

    def randrange(self, n: int) -> int:  # type: ignore[override]
        return 0 if self.random() < 0.5 else n - 1


class Model:
    def __init__(self, coin: random.Random) -> None:
        self.window: OrderedDict[str, None] = OrderedDict()
        self.probation: OrderedDict[str, None] = OrderedDict()
        self.protected: OrderedDict[str, bool] = OrderedDict()  # key -> marked used
        self.coin = coin

    def __len__(self) -> int:
        return len(self.window) + len(self.probation) + len(self.protected)

    def __contains__(self, key: str) -> bool:
        return key in self.window or key in self.probation or key in self.protected

    def read(self, key: str) -> None:
        """A read hit (or a write to a held key)."""
        if key in self.window:
            self.window.move_to_end(key)
        elif key in self.protected:
            self.protected[key] = True
        else:  # probation: promoted to protected's end, unmarked
            del self.probation[key]
            self.protected[key] = False
            main = len(self) - len(self.window)
            if len(self.protected) > PROTECTED_SHARE * main:
                self.demote()

    def demote(self) -> None:
        for _ in range(SECOND_CHANCES):
            oldest = next(iter(self.protected))
            if not self.protected[oldest]:
                break
            del self.protected[oldest]
            self.protected[oldest] = False  # a second chance: unmarked, to the end
        oldest = next(iter(self.protected))
        del self.protected[oldest]
        self.probation[oldest] = None

    def victim(self, estimate, share: float) -> str:
        """Who leaves to make room for one more entry."""
        if self.probation:
            victim = next(iter(self.probation))
        elif self.protected:
            victim = next(iter(self.protected))
        else:
            return next(iter(self.window))
        window_full = self.window and len(self.window) >= max(1, int(share * len(self)))
        if not window_full:
            return victim
        candidate = next(iter(self.window))
        if estimate(candidate) > estimate(victim):
            return victim
        if estimate(candidate) >= ADMIT_AT_RANDOM_FROM and self.coin.randrange(ADMIT_AT_RANDOM_ONE_IN) == 0:
            return victim
        return candidate

    def remove(self, key: str) -> None:
        for region in (self.window, self.probation, self.protected):
            region.pop(key, None)

    def insert(self, key: str, share: float) -> None:
        """A new entry (room made already): into the window, whose overflow
        goes on to probation, at most two entries."""
        self.window[key] = None
        target = int(share * len(self))
        if len(self.window) > max(1, target):
            for _ in range(2):
                if len(self.window) <= target:
                    break
                self.probation[self.window.popitem(last=False)[0]] = None


def regions_of(store: TinyLFUStore) -> tuple[list[str], list[str], list[tuple[str, bool]]]:
    """The store's three lists, walked from their heads, oldest first."""
    out: list[list[int]] = []
    for head in (WINDOW, PROBATION, PROTECTED):
        slots, slot = [], store._next[head]
        while slot != head:
            slots.append(slot)
            slot = store._next[slot]
        out.append(slots)
    window, probation, protected = out
    return (
        [store.key_at(s) for s in window],  # type: ignore[misc]
        [store.key_at(s) for s in probation],  # type: ignore[misc]
        [(store.key_at(s), store._list[s] == USED) for s in protected],  # type: ignore[misc]
    )


def check_same(store: TinyLFUStore, model: Model) -> None:
    window, probation, protected = regions_of(store)
    assert window == list(model.window)
    assert probation == list(model.probation)
    assert protected == list(model.protected.items())
    assert all(store._list[store.slot_of(key)] == WINDOW for key in window)  # type: ignore[index]
    assert all(store._list[store.slot_of(key)] == PROBATION for key in probation)  # type: ignore[index]
    assert store._lengths == [len(model.window), len(model.probation), len(model.protected)]
    assert len(store) == len(model)


def table_after_add(sketch: FrequencySketch, key: str) -> array:
    """The sketch's table as ``FrequencySketch.add`` would leave it."""
    probe = FrequencySketch(1)
    probe.table, probe.mask = array("I", sketch.table), sketch.mask
    probe.add(hash(key))
    return probe.table


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["read", "write", "delete"]), st.integers(0, 30)),
    min_size=40,
    max_size=300,
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_size=st.integers(1, 14),
    share=st.sampled_from([0.01, 0.2, 0.5]),
    climb=st.booleans(),
    key_space=st.integers(2, 31),
    seed=st.integers(0, 2**32),
    operations=OPERATIONS,
)
def test_the_policy_moves_and_evicts_as_the_model_does(
    max_size: int,
    share: float,
    climb: bool,
    key_space: int,
    seed: int,
    operations: list[tuple[str, int]],
) -> None:
    store = TinyLFUStore(Limits(max_size=max_size), climb=climb)
    store._window_share = share
    store._random = LoadedCoin(seed)
    model = Model(LoadedCoin(seed))

    def estimate(key: str) -> int:
        return store._sketch.frequency(hash(key))

    for operation, number in operations:
        key = f"k:{number % key_space}"
        if operation == "delete":
            assert store.delete(key) == (key in model)
            model.remove(key)
        elif key in model:
            before = table_after_add(store._sketch, key)
            if operation == "read":
                assert store.get(key) == b"v"
            else:
                store.set(key, b"v")
            assert store._sketch.table == before  # the read hook's add, written out, is sketch.add
            model.read(key)
        elif operation == "read":
            assert store.get(key) is None
        else:
            evicted = model.victim(estimate, store.window_share) if len(model) >= max_size else None
            held = set(model.window) | set(model.probation) | set(model.protected)
            store.set(key, b"v")
            if evicted is not None:
                model.remove(evicted)
                assert not store.exists(evicted)
                assert all(store.exists(other) for other in held - {evicted})
            model.insert(key, store.window_share)
        check_same(store, model)
