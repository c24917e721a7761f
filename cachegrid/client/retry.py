"""Retrying what failed: the one retry loop of the client, its policy, and
the hosts it retries on.

Every plan that may send a request again (protocol.py explains plans) runs
this module's ``retrying`` loop: failover over copies of one cache
(``HostPool.run``), and each path of a cluster (cluster.py: reads with read
repair, writes to every replica, the first node's leases and counters,
batches split per node). A path says only *where* its next round goes and
what it makes of each answer (``sends`` and ``take``); how many rounds, how
long to wait between them, and when a failure must not be sent again are
decided here, once.

A round is the requests a path sends at once (one, or one per node). A
request *fails* when the transport raised (``NotSent``/``MaybeSent``) or the
server answered a 5xx that is not an answer (protocol.failure). After a
round in which something failed, ``RetryPolicy.decide`` says what comes
next, from the number of that attempt and how the request failed, without
doing anything itself (it is pure: the plans stay free of I/O and clocks):

- a request that ``MaybeSent`` (it may have reached the server) and is not
  idempotent (incr, decr, a lock's acquire) is never sent again, since the
  server may have applied it: the operation raises ``Unavailable`` saying it
  may or may not have been applied;
- after ``max_retries`` retries the loop gives up, and the path makes what
  it can of the answers it has (a miss, the replicas that took a write) or
  raises ``Unavailable``;
- otherwise the next round waits ``backoff * 2**(n-1)`` seconds before retry
  ``n``, at most ``backoff_max``: 0.05, 0.1, 0.2, ... 1 s. The wait is the
  plan's step (seconds, then the requests): the synchronous transport sleeps
  it, the asynchronous one awaits it.

A round in which nothing failed (a miss that asks the next replica) is no
retry: it neither counts nor waits. The failed hosts of an operation are
handed back to its ``sends``, so a path can route around them (the next
node of the ring), and every failure also cools its host down in the
``HostPool`` for the later operations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .protocol import Answer, Call, MaybeSent, Outcome, Plan, base_url, failure, unavailable

BACKOFF_START = 0.05  # seconds before the first retry
BACKOFF_MAX = 1.0  # the longest wait between two attempts

Send = tuple[str, Call]
Sends = Callable[[Container[str]], list[Send]]  # the failed hosts -> the next round ([]: done)
Take = Callable[[str, Call, Answer | None], None]  # a request's answer (None: it failed)


class Retry(NamedTuple):
    """Send again, after ``after`` seconds."""

    after: float


class GiveUp(NamedTuple):
    """Send no more; ``maybe_applied``: because the failed request may have
    been applied and sending it again could apply it twice."""

    maybe_applied: bool


def may_apply_twice(maybe_sent: bool, idempotent: bool) -> bool:
    """The rule of requests that may have reached the server: one that is
    not idempotent must not be sent again."""
    return maybe_sent and not idempotent


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed request is sent again.

    ``max_retries``: rounds after the first (so ``1 + max_retries``
    attempts); ``backoff``: the wait before the first retry, doubled before
    each next one up to ``backoff_max``."""

    max_retries: int = 3
    backoff: float = BACKOFF_START
    backoff_max: float = BACKOFF_MAX

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be a whole number >= 0, not {self.max_retries!r}")
        for name in ("backoff", "backoff_max"):
            seconds = getattr(self, name)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {seconds!r}")

    @property
    def attempts(self) -> int:
        """How many times a request is sent at most."""
        return 1 + self.max_retries

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1: the first retry)."""
        return min(self.backoff * 2 ** (retry - 1), self.backoff_max)

    def decide(self, attempt: int, maybe_sent: bool, idempotent: bool) -> Retry | GiveUp:
        """What follows the failure of attempt number ``attempt`` (1: the
        first) of a request that may have reached the server (``maybe_sent``)
        or surely did not, and is ``idempotent`` or not."""
        if may_apply_twice(maybe_sent, idempotent):
            return GiveUp(maybe_applied=True)
        if attempt > self.max_retries:
            return GiveUp(maybe_applied=False)
        return Retry(self.delay(attempt))


class HostPool:
    """The hosts, in order of preference, which of them are cooling down,
    and the policy by which requests to them are retried."""

    def __init__(
        self,
        hosts: Iterable[str],
        retry: RetryPolicy,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(hosts, str):
            hosts = [hosts]
        self.hosts = [base_url(host) for host in hosts]
        if not self.hosts:
            raise ValueError("give at least one host")
        self.retry = retry
        self.cooldown = cooldown
        self.clock = clock
        self._cooling_until: dict[str, float] = {}

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    def candidates(self) -> list[str]:
        """Hosts not cooling down, in order; then the cooling ones, soonest back first."""
        now = self.clock()
        ready = [host for host in self.hosts if self._cooling_until.get(host, 0) <= now]
        cooling = sorted((host for host in self.hosts if host not in ready), key=self._cooling_until.__getitem__)
        return ready + cooling

    def calm(self) -> bool:
        """No host has failed since it last answered (nothing cools down)."""
        return not self._cooling_until

    def cooling(self, host: str, now: float) -> bool:
        return self._cooling_until.get(host, 0) > now

    def back_at(self, host: str) -> float:
        """When ``host``'s cool-down ends (0: it is not cooling down)."""
        return self._cooling_until.get(host, 0)

    def failed(self, host: str) -> None:
        self._cooling_until[host] = self.clock() + self.cooldown

    def succeeded(self, host: str) -> None:
        self._cooling_until.pop(host, None)

    def tally(self, sends: list[Send], outcomes: list[Outcome], errors: dict[str, str]) -> list[Answer | None]:
        """Each request's answer, or None where it failed: a failed host
        cools down and its reason goes into ``errors``, one that answered
        is back."""
        answers: list[Answer | None] = []
        for (host, call), outcome in zip(sends, outcomes):
            reason = failure(outcome, call)
            if reason is None:
                assert isinstance(outcome, Answer)
                self.succeeded(host)
                answers.append(outcome)
            else:
                errors[host] = reason
                self.failed(host)
                answers.append(None)
        return answers

    def run(self, call: Call) -> Plan:
        """``call`` on one logical cache (one host, or copies of one cache):
        each attempt on the first host that is not cooling down, or when
        every host is, on the one back soonest (a lone server that restarts
        is found again at once)."""
        answered: list[Answer] = []

        def sends(failed: Container[str]) -> list[Send]:
            return [] if answered else [(self.candidates()[0], call)]

        def take(host: str, call: Call, answer: Answer | None) -> None:
            if answer is not None:
                answered.append(answer)

        errors = yield from retrying(self, sends, take)
        if answered:
            return call.read(answered[0])
        raise unavailable(
            f"no CacheGrid host answered {call.method} {call.path}: "
            + "; ".join(f"{host}: {error}" for host, error in errors.items()),
            errors,
        )


def retrying(pool: HostPool, sends: Sends, take: Take) -> Plan:
    """The retry loop (the module docstring): rounds of ``sends(failed)``
    until it is empty or the policy gives up, each request's answer (or
    None) handed to ``take`` in order; returns the failed hosts' reasons."""
    errors: dict[str, str] = {}
    attempt, wait = 0, 0.0
    while round_ := sends(errors):
        outcomes = yield wait, round_
        answers = pool.tally(round_, outcomes, errors)
        lost = [(call, outcome) for (_, call), outcome, answer in zip(round_, outcomes, answers) if answer is None]
        for (host, call), answer in zip(round_, answers):
            take(host, call, answer)
        if not lost:
            wait = 0.0
            continue
        attempt += 1
        verdict: Retry | GiveUp = Retry(0.0)
        for call, outcome in lost:
            verdict = pool.retry.decide(attempt, isinstance(outcome, MaybeSent), call.idempotent)
            if isinstance(verdict, GiveUp) and verdict.maybe_applied:
                raise unavailable(
                    f"{call.method} {call.path} may or may not have been applied: {type(outcome).__name__}: {outcome}",
                    errors,
                )
        if isinstance(verdict, GiveUp):
            break
        wait = verdict.after
    return errors
