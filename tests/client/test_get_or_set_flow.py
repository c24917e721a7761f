"""get_or_set's algorithm (client/leases.py) driven by hand, on a fake clock:
what each answer of the server leads to, and the bounds of the wait."""

from __future__ import annotations

from typing import Any

import pytest

from cachegrid.client import RequestError, SyncCacheGridClient, Unavailable
from cachegrid.client.leases import (
    FIRST_POLL,
    MAX_POLL,
    Compute,
    LeaseRead,
    Refresh,
    Run,
    Sleep,
    get_or_set_flow,
)
from cachegrid.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def flow(clock: FakeClock, lease: float = 2.0, wait: float = 1.0, fail_open: bool = False) -> Any:
    client = SyncCacheGridClient(["127.0.0.1:1"], fail_open=fail_open)
    # The upper end of every jitter range: the longest pause the flow may choose.
    return get_or_set_flow(client, "k", 60, None, lease, wait, clock=clock, jitter=lambda low, high: high)


def test_a_hit_is_the_answer_at_once(clock: FakeClock) -> None:
    steps = flow(clock)
    assert isinstance(next(steps), Run)
    with pytest.raises(StopIteration) as done:
        steps.send(LeaseRead(True, "v"))
    assert done.value.value == "v"


def test_a_stale_hit_with_the_lease_refreshes_in_the_background_and_answers_the_old_value(clock: FakeClock) -> None:
    steps = flow(clock)
    next(steps)
    refresh = steps.send(LeaseRead(True, "old", stale=True, token="t"))
    assert isinstance(refresh, Refresh) and refresh.key == "k"
    with pytest.raises(StopIteration) as done:
        steps.send(None)
    assert done.value.value == "old"


def test_the_winner_computes_and_stores_with_its_token(clock: FakeClock) -> None:
    steps = flow(clock)
    next(steps)
    assert isinstance(steps.send(LeaseRead(False, token="t")), Compute)
    store = steps.send("value")
    assert isinstance(store, Run)
    with pytest.raises(StopIteration) as done:
        steps.send(False)  # the lease ran out meanwhile: still the answer
    assert done.value.value == "value"


def test_a_failed_compute_releases_the_lease_and_raises(clock: FakeClock) -> None:
    steps = flow(clock)
    next(steps)
    steps.send(LeaseRead(False, token="t"))
    release = steps.throw(LookupError("down"))
    assert isinstance(release, Run)
    with pytest.raises(LookupError):
        steps.send(None)


def test_a_waiter_backs_off_never_past_the_holders_lease_and_then_computes(clock: FakeClock) -> None:
    lease, wait = 2.0, 1.0
    steps = flow(clock, lease, wait)
    next(steps)
    pauses, action = [], steps.send(LeaseRead(False, wait=lease))
    while isinstance(action, Sleep):
        pauses.append(action.seconds)
        clock.tick(action.seconds)
        assert isinstance(steps.send(None), Run)
        action = steps.send(LeaseRead(False, wait=0.05))  # a new holder each time, 50 ms left
    assert isinstance(action, Compute)
    assert clock() - 1000.0 == pytest.approx(lease + wait)  # gave up exactly at lease + wait
    # Backoff (20, 40 ms), then capped by the holder's 50 ms left (plus one first poll).
    assert pauses[:4] == pytest.approx([FIRST_POLL, 2 * FIRST_POLL, 0.05 + FIRST_POLL, 0.05 + FIRST_POLL])
    assert max(pauses) <= MAX_POLL


def test_the_backoff_doubles_up_to_its_cap(clock: FakeClock) -> None:
    steps = flow(clock, lease=100, wait=100)
    next(steps)
    pauses = []
    action = steps.send(LeaseRead(False, wait=99))
    for _ in range(8):
        pauses.append(action.seconds)
        steps.send(None)
        action = steps.send(LeaseRead(False, wait=99))
    assert pauses == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5, 0.5])


def test_too_many_leases_computes_without_one(clock: FakeClock) -> None:
    steps = flow(clock)
    next(steps)
    assert isinstance(steps.throw(RequestError(507, "too_many_leases", "full", {})), Compute)
    assert isinstance(steps.send("v"), Run)  # stored without a token


def test_another_refusal_is_the_callers(clock: FakeClock) -> None:
    steps = flow(clock)
    next(steps)
    with pytest.raises(RequestError):
        steps.throw(RequestError(400, "invalid_lease", "bad", {}))


@pytest.mark.parametrize("fail_open", [True, False])
def test_an_outage_is_a_miss_only_with_fail_open(clock: FakeClock, fail_open: bool) -> None:
    steps = flow(clock, fail_open=fail_open)
    next(steps)
    outage = Unavailable("no node answered", {"127.0.0.1:1": "NotSent: refused"})
    if not fail_open:
        with pytest.raises(Unavailable):
            steps.throw(outage)
        return
    assert isinstance(steps.throw(outage), Compute)
    with pytest.raises(StopIteration) as done:  # nothing is stored
        steps.send("computed")
    assert done.value.value == "computed"
