"""Property-based: the ``adaptive`` policy against a plain model of its rules.

The model is written from adaptive.py's module docstring, not from its code:
two ordered dicts (small and main, oldest first, each key's use count as its
value), the use a read or write adds, where a new key goes, and the
eviction loop spelled out step by step. Hypothesis drives the real store and
the model with the same reads, writes and deletes; after every operation
both queues, their order, the counts and the key evicted (if any) must agree.

What the model takes from the store: whether a new key was found among the
ghosts, and from which queue it had left (the direct-mapped table's collisions
depend on the hash seed), and
the small queue's share (the step rule's arithmetic, tested in
test_adaptive.py).
"""

from __future__ import annotations

from collections import OrderedDict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachegrid.engine.adaptive import IN_MAIN, MAIN, SMALL, USES, AdaptiveStore
from cachegrid.engine.store import Limits


class Model:
    def __init__(self, promote_at: int, keep_uses: bool) -> None:
        self.small: OrderedDict[str, int] = OrderedDict()
        self.main: OrderedDict[str, int] = OrderedDict()
        self.full = False
        self.promote_at, self.keep_uses = promote_at, keep_uses

    def __contains__(self, key: str) -> bool:
        return key in self.small or key in self.main

    def __len__(self) -> int:
        return len(self.small) + len(self.main)

    def use(self, key: str) -> None:
        queue = self.small if key in self.small else self.main
        queue[key] = min(USES, queue[key] + 1)

    def remove(self, key: str) -> None:
        self.small.pop(key, None)
        self.main.pop(key, None)

    def victim(self, share: float) -> str:
        self.full = True
        target = share * len(self)
        while True:
            if len(self.small) > target or not self.main:
                key, uses = next(iter(self.small.items()))
                del self.small[key]
                if uses >= self.promote_at:
                    self.main[key] = uses if self.keep_uses else 0
                    continue
                return key
            key, uses = next(iter(self.main.items()))
            del self.main[key]
            if uses:
                self.main[key] = uses - 1
                continue
            return key

    def insert(self, key: str, ghost: bool, from_main: bool, share: float, new_share: float) -> None:
        entries = len(self) + 1
        if from_main:  # the share shrank (or stayed at its floor): small gives back its excess, oldest first
            while len(self.small) >= new_share * entries + 1:
                oldest, uses = next(iter(self.small.items()))
                del self.small[oldest]
                self.main[oldest] = uses
        if ghost or (not self.full and len(self.small) >= share * entries):
            self.main[key] = 0
        else:
            self.small[key] = 0


def queue_of(store: AdaptiveStore, head: int) -> list[tuple[str, int]]:
    out, slot = [], store._next[head]
    while slot != head:
        mark = store._marks[slot]
        assert bool(mark & IN_MAIN) == (head == MAIN)
        out.append((store.key_at(slot), mark & USES))
        slot = store._next[slot]
    return out  # type: ignore[return-value]


def check_same(store: AdaptiveStore, model: Model) -> None:
    assert queue_of(store, SMALL) == list(model.small.items())
    assert queue_of(store, MAIN) == list(model.main.items())
    assert store._lengths == [len(model.small), len(model.main)]
    assert len(store) == len(model)


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["read", "read", "write", "delete"]), st.integers(0, 40)),
    min_size=40,
    max_size=400,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_size=st.integers(1, 14),
    gain=st.sampled_from([0.0, 1.0, 50.0]),
    promote_at=st.sampled_from([1, 2]),
    keep_uses=st.booleans(),
    key_space=st.integers(2, 41),
    operations=OPERATIONS,
)
def test_the_policy_moves_and_evicts_as_the_model_does(
    max_size: int,
    gain: float,
    promote_at: int,
    keep_uses: bool,
    key_space: int,
    operations: list[tuple[str, int]],
) -> None:
    store = AdaptiveStore(Limits(max_size=max_size), gain=gain, promote_at=promote_at, keep_uses=keep_uses)
    model = Model(promote_at, keep_uses)
    for operation, number in operations:
        key = f"k:{number % key_space}"
        if operation == "delete":
            assert store.delete(key) == (key in model)
            model.remove(key)
        elif key in model:
            if operation == "read":
                assert store.get(key) == b"v"
            else:
                store.set(key, b"v")
            model.use(key)
        elif operation == "read":
            assert store.get(key) is None
        else:
            share = store.small_share
            evicted = model.victim(share) if len(model) >= max_size else None
            held = set(model.small) | set(model.main)
            ghost_hits = list(store.ghost_hits)
            store.set(key, b"v")
            if evicted is not None:
                assert not store.exists(evicted)
                assert all(store.exists(other) for other in held)
            model.insert(
                key, store.ghost_hits != ghost_hits, store.ghost_hits[MAIN] > ghost_hits[MAIN], share, store.small_share
            )
        check_same(store, model)
        assert 0.0 < store.small_share <= 0.99
