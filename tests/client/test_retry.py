"""The one retry policy of the client, on every path: its pure decision,
the back-off each retrying plan asks for, the attempt count, the rule that
a request that may have been applied is not sent again, and the transports
that sleep the waits. The plans are driven step by step with made-up
outcomes and the transports with a fake sleep: nothing here opens a socket
or really waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from cachegrid.client import CacheGridClient, RetryPolicy, SyncCacheGridClient, Unavailable
from cachegrid.client.cluster import Sharded
from cachegrid.client.protocol import Answer, Call, MaybeSent, NotSent, Outcome, Plan, get_call
from cachegrid.client.retry import GiveUp, Retry

HOSTS = [f"127.0.0.1:{7001 + n}" for n in range(32)]  # more nodes than any plan here retries
BACKOFF = [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]  # the single-host client's waits before this policy

Reply = Callable[[str, Call], Outcome]


def drive(plan: Plan, reply: Reply, failed_rounds: int = 0) -> tuple[Any, list[tuple[float, list[str]]]]:
    """Run ``plan``, answering each request with ``reply`` (every request of
    the first ``failed_rounds`` steps: refused); its result and every step as
    (the seconds it asked to wait, the hosts it sent to). An exception of the
    plan is raised with the steps on it (``.steps``)."""
    steps: list[tuple[float, list[str]]] = []
    try:
        wait, sends = next(plan)
        while True:
            steps.append((wait, [host for host, _ in sends]))
            answer = refused if len(steps) <= failed_rounds else reply
            wait, sends = plan.send([answer(host, call) for host, call in sends])
    except StopIteration as done:
        return done.value, steps
    except Exception as error:
        error.steps = steps  # type: ignore[attr-defined]
        raise


MISS_BODY = b'{"error": "not_found", "message": "no such key: \'k\'", "key": "k"}'


def answer(status: int, body: bytes | None = None) -> Answer:
    """An answer; a 404 without a body is CacheGrid's miss (which names its key)."""
    if body is None:
        body = MISS_BODY if status == 404 else b"{}"
    return Answer(status, body, {"Content-Type": "application/json"})


def refused(host: str, call: Call) -> Outcome:
    return NotSent("connection refused")


def cluster(max_retries: int = 3, replicas: int = 1) -> Sharded:
    client = SyncCacheGridClient(HOSTS, max_retries=max_retries, replicas=replicas)
    assert isinstance(client.router, Sharded)
    return client.router


PUT = Call("PUT", "/cache/k", lambda status, body: status)
INCR = Call("POST", "/cache/k/incr", lambda status, body: status, idempotent=False)

# Every retrying path of a cluster, as a plan of ``call`` (a single-key call,
# or the batch the path builds itself).
PATHS: dict[str, Callable[[Sharded, Call], Plan]] = {
    "read": lambda router, call: router.read("k", call, repair=True),
    "write": lambda router, call: router.write("k", call),
    "first": lambda router, call: router.first("k", call),
    "counter": lambda router, call: router.counter("k", call),
    "leased_write": lambda router, call: router.leased_write("k", call, call),
    "get_multi": lambda router, call: router.get_multi(["a", "b", "c"]),
    "set_multi": lambda router, call: router.set_multi({"a": 1, "b": 2, "c": 3}, None),
    "delete_multi": lambda router, call: router.delete_multi(["a", "b", "c"]),
}


# -- the decision ------------------------------------------------------------------------


def test_the_default_policy_is_the_single_host_clients_back_off() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.attempts) == (3, 4)
    assert [policy.delay(retry) for retry in range(1, 8)] == BACKOFF
    assert [policy.decide(attempt, False, True) for attempt in (1, 2, 3)] == [Retry(0.05), Retry(0.1), Retry(0.2)]
    assert policy.decide(4, False, True) == GiveUp(maybe_applied=False)


def test_a_request_that_may_have_been_applied_is_never_sent_again() -> None:
    policy = RetryPolicy(max_retries=5)
    assert policy.decide(1, maybe_sent=True, idempotent=False) == GiveUp(maybe_applied=True)
    assert policy.decide(1, maybe_sent=True, idempotent=True) == Retry(0.05)
    assert policy.decide(1, maybe_sent=False, idempotent=False) == Retry(0.05)  # surely not sent: safe


def test_a_policy_sets_its_own_back_off_and_is_checked() -> None:
    policy = RetryPolicy(max_retries=4, backoff=0.01, backoff_max=0.03)
    assert [policy.delay(retry) for retry in range(1, 5)] == [0.01, 0.02, 0.03, 0.03]
    for bad in ({"max_retries": -1}, {"max_retries": 1.5}, {"backoff": -0.1}, {"backoff_max": float("inf")}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)
    with pytest.raises(AttributeError):
        policy.max_retries = 2  # type: ignore[misc]


def test_the_client_takes_a_policy_or_a_retry_count() -> None:
    policy = RetryPolicy(max_retries=1, backoff=0.5)
    assert SyncCacheGridClient(HOSTS, retry=policy).pool.retry is policy
    assert CacheGridClient(HOSTS[:1], retry=policy).pool.retry is policy
    assert SyncCacheGridClient(HOSTS, max_retries=5).pool.retry == RetryPolicy(max_retries=5)
    assert SyncCacheGridClient(HOSTS, max_retries=1, retry=policy).pool.max_retries == 1
    with pytest.raises(ValueError, match="differ"):
        SyncCacheGridClient(HOSTS, max_retries=5, retry=policy)
    with pytest.raises(ValueError):
        SyncCacheGridClient(HOSTS, max_retries=-1)


# -- every path backs off, and stops after max_retries ---------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_failover_backs_off_on_one_host_as_before(max_retries: int) -> None:
    client = SyncCacheGridClient(HOSTS[:1], max_retries=max_retries)
    with pytest.raises(Unavailable) as raised:
        drive(client.router.read("k", get_call("k")), refused)
    steps = raised.value.steps  # type: ignore[attr-defined]
    assert [wait for wait, _ in steps] == [0.0, *BACKOFF[:max_retries]]


def test_failover_over_copies_backs_off_too() -> None:
    client = SyncCacheGridClient(HOSTS[:2], sharding=False, max_retries=3)
    with pytest.raises(Unavailable) as raised:
        drive(client.router.write("k", PUT), refused)
    steps = raised.value.steps  # type: ignore[attr-defined]
    assert steps == [
        (0.0, [client.hosts[0]]),
        (0.05, [client.hosts[1]]),
        (0.1, [client.hosts[0]]),
        (0.2, [client.hosts[1]]),
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("max_retries", [0, 2, 3])
def test_every_cluster_path_backs_off_and_respects_the_attempt_count(path: str, max_retries: int) -> None:
    router = cluster(max_retries, replicas=2)
    with pytest.raises(Unavailable) as raised:
        drive(PATHS[path](router, PUT), refused)
    steps = raised.value.steps  # type: ignore[attr-defined]
    assert [wait for wait, _ in steps] == [0.0, *BACKOFF[:max_retries]]
    tried = [host for _, hosts in steps for host in hosts]
    assert len(tried) == len(set(tried))  # each round on nodes not tried before


@pytest.mark.parametrize("path", PATHS)
def test_a_cluster_path_that_recovers_answers_after_its_waits(path: str) -> None:
    router = cluster(3, replicas=2)

    def reply(host: str, call: Call) -> Outcome:
        if call.path.endswith("/get"):
            return answer(200, b'{"items": {"a": 1, "b": 2, "c": 3}}')
        return answer(200, b'{"stored": 3, "deleted": 1}' if call.method == "POST" else b"1")

    result, steps = drive(PATHS[path](router, Call("GET", "/cache/k", lambda s, b: s)), reply, failed_rounds=2)
    assert [wait for wait, _ in steps][:3] == [0.0, 0.05, 0.1]
    assert all(wait == 0.0 for wait, _ in steps[3:])  # copies after the answer: no retries
    assert result is not None


def test_a_miss_that_asks_the_next_replica_is_no_retry() -> None:
    router = cluster(0, replicas=3)
    value, steps = drive(router.read("k", get_call("k", "default")), lambda h, c: answer(404))
    assert value == "default" and [wait for wait, _ in steps] == [0.0, 0.0, 0.0]
    # A miss after a failure: the retry waits, the miss that follows it does not.
    router = cluster(1, replicas=3)
    outcomes = iter([NotSent("refused"), answer(404), answer(404), answer(404)])  # the placement moves on by one
    value, steps = drive(router.read("k", get_call("k", "default")), lambda h, c: next(outcomes))
    assert value == "default" and [wait for wait, _ in steps] == [0.0, 0.05, 0.0, 0.0]


def test_get_multi_keys_lost_when_the_retries_run_out_are_unavailable() -> None:
    router = cluster(1)
    with pytest.raises(Unavailable, match="get_multi of 3 key"):
        drive(router.get_multi(["a", "b", "c"]), refused)


# -- a request that may have been applied ----------------------------------------------------


@pytest.mark.parametrize("path", ["read", "write", "first", "counter", "leased_write"])
def test_maybe_sent_aborts_a_non_idempotent_call_on_every_path(path: str) -> None:
    router = cluster(3, replicas=2)
    with pytest.raises(Unavailable, match="may or may not have been applied"):
        drive(PATHS[path](router, INCR), lambda h, c: MaybeSent("reset"))
    # An idempotent call that may have been sent is sent again.
    with pytest.raises(Unavailable, match="no CacheGrid node answered") as raised:
        drive(PATHS[path](router, PUT), lambda h, c: MaybeSent("reset"))
    assert len(raised.value.steps) == 4  # type: ignore[attr-defined]


def test_maybe_sent_aborts_a_non_idempotent_call_on_failover() -> None:
    for hosts in (HOSTS[:1], HOSTS[:3]):
        client = SyncCacheGridClient(hosts, sharding=False, max_retries=3)
        with pytest.raises(Unavailable, match="may or may not have been applied") as raised:
            drive(client.router.counter("k", INCR), lambda h, c: MaybeSent("reset"))
        assert len(raised.value.steps) == 1  # type: ignore[attr-defined]


def test_maybe_sent_aborts_a_non_idempotent_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches are idempotent today; should one not be, the same rule holds."""
    from cachegrid.client import cluster as cluster_module

    def once_only(keys: list[str]) -> Call:
        return Call("POST", "/cache/batch/get", idempotent=False)

    monkeypatch.setattr(cluster_module, "batch_get_call", once_only)
    router = cluster(3)
    for plan in (router.get_multi(["a", "b"]), router._each_copy(["a", "b"], once_only, "a batch")):
        with pytest.raises(Unavailable, match="may or may not have been applied") as raised:
            drive(plan, lambda h, c: MaybeSent("reset"))
        assert len(raised.value.steps) == 1  # type: ignore[attr-defined]


# -- the transports sleep what the plans ask -------------------------------------------------


@pytest.mark.parametrize("hosts", [HOSTS[:1], HOSTS], ids=["one host", "cluster"])
def test_the_sync_transport_sleeps_the_back_off(hosts: list[str]) -> None:
    client = SyncCacheGridClient(hosts, replicas=2)
    slept: list[float] = []
    sent: list[str] = []

    def send(host: str, call: Call) -> Outcome:
        sent.append(host)
        raise NotSent("refused")

    client._sleep = slept.append
    client._send = send  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        client.get("k")
    client.close()
    assert slept == BACKOFF[:3] and len(sent) == 4


@pytest.mark.parametrize("hosts", [HOSTS[:1], HOSTS], ids=["one host", "cluster"])
def test_the_async_transport_awaits_the_back_off(hosts: list[str]) -> None:
    client = CacheGridClient(hosts, replicas=2)
    slept: list[float] = []
    sent: list[str] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def attempt(host: str, call: Call) -> Outcome:
        sent.append(host)
        return NotSent("refused")

    client._sleep = sleep
    client._attempt = attempt  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        asyncio.run(client.set("k", 1))
    assert slept == BACKOFF[:3]
    assert len(sent) == 4 * client.replicas  # a write goes to every replica, each round
