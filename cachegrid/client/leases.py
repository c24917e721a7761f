"""Leases in the client: the HTTP contract of leases and locks, and
``get_or_set``'s algorithm, written once for both clients.

The contract (docs/stampedes.md): ``GET /cache/{key}?lease=S`` answers a
hit, a stale hit (``X-Cache-Stale``), or a miss that either grants this
caller the lease (its token in ``X-Cache-Lease``) or says another caller
holds it (``retry_after`` seconds left). A PUT presenting the token fills
the key and ends the lease; 409 ``lease_not_held`` means the lease ran out
or was never this caller's, and nothing was stored.

``get_or_set`` is a sans-IO generator (``get_or_set_flow``), like the plans
of protocol.py, one level up: it yields *actions* (``Run`` a plan, ``Sleep``,
``Compute`` the value, ``Refresh`` in the background) and is sent their
results; the synchronous client drives it with blocking calls and a daemon
thread, the asynchronous one with awaits and a task. So both behave alike:

1. Read with a lease. A fresh hit is the answer.
2. A stale hit is the answer too, at once; the one caller the server gave
   the lease to starts one refresh in the background (compute, then a PUT
   with the token). A refresh that fails is logged, and its lease is kept
   until it runs out, so the old value goes on being served (until the
   stale window ends) and the next refresh is tried one lease time later.
3. A miss with the lease: compute, PUT with the token, answer the value. If
   compute raises, the lease is released at once (the next caller may try)
   and the error goes to the caller. If the lease ran out meanwhile (409),
   the value is still the answer, but it is not stored: a later winner's is.
4. A miss while another caller holds the lease: wait and read again, with
   exponential backoff (from ``FIRST_POLL`` to ``MAX_POLL`` seconds, full
   jitter) and never much past the holder's lease end, so a crashed holder
   costs at most its lease time. A caller that has waited ``lease + wait``
   seconds computes the value itself and stores it without a lease.

The waiting is the client's on purpose: the server never holds a request
open (docs/stampedes.md says why).
"""

from __future__ import annotations

import json
import numbers
import random
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import RequestError, Unavailable
from .protocol import (
    Answer,
    Call,
    Plan,
    _json,
    error_for,
    is_miss,
    item_path,
    not_a_key,
    read_value,
    tags_param,
    value_body,
)

DEFAULT_LEASE = 10.0  # seconds a caller may take to compute before another one may
DEFAULT_WAIT = 5.0  # seconds a waiter waits past the lease before computing itself
FIRST_POLL = 0.02
MAX_POLL = 0.5
LEASE_HEADER = "X-Cache-Lease"
STALE_HEADER = "X-Cache-Stale"


class LeaseRead(NamedTuple):
    """What a read with a lease found."""

    found: bool
    value: Any = None
    stale: bool = False
    token: str | None = None  # this caller's lease (a miss, or a stale hit)
    wait: float = 0.0  # on a miss held by another caller: seconds its lease has left


def _lease_read(answer: Answer) -> LeaseRead:
    status, body, headers = answer
    token = headers.get(LEASE_HEADER) or None
    if status == 200:
        return LeaseRead(True, read_value(answer), headers.get(STALE_HEADER) == "true", token)
    if status == 404:
        if not is_miss(body):
            raise not_a_key(status, body)
        try:
            wait = float(json.loads(body).get("retry_after", 0.0))
        except (ValueError, AttributeError):
            wait = 0.0
        return LeaseRead(False, token=token, wait=wait)
    raise error_for(status, body)


def lease_read_call(key: str, lease: float) -> Call:
    return Call("GET", item_path(key), params={"lease": repr(float(lease))}, parse_answer=_lease_read)


def _stored_or_lost(status: int, body: bytes) -> bool:
    """True when the write stored; False when its token named no live lease."""
    if status == 409 and _code(body) == "lease_not_held":
        return False
    _json(status, body)
    return True


def _code(body: bytes) -> str | None:
    try:
        return json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None


def seconds_param(name: str, seconds: Any) -> str:
    """A number of seconds as the query gives it (the server checks its
    range); ValueError naming ``name`` for what is no number."""
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real):
        raise ValueError(f"{name} must be a number of seconds, not {seconds!r}")
    return repr(seconds) if type(seconds) in (int, float) else repr(float(seconds))


def put_params(ttl: float | None, stale: float | None, tags: Iterable[str] | None = None) -> dict[str, str] | None:
    """The query of a PUT with these expiry settings and tags (None: none)."""
    params = {}
    if ttl is not None:
        params["ttl"] = seconds_param("ttl", ttl)
    if stale is not None:
        params["stale"] = seconds_param("stale", stale)
    if tags is not None:
        params["tags"] = tags_param(tags)
    return params or None


def put_call(
    key: str,
    value: Any,
    ttl: float | None,
    stale: float | None,
    token: str | None = None,
    tags: Iterable[str] | None = None,
) -> Call:
    """The PUT that stores ``value``; with ``token``, the lease holder's,
    which ends the lease (False: the token named no live lease)."""
    body, content_type = value_body(value)
    headers = {"Content-Type": content_type}
    if token is not None:
        headers[LEASE_HEADER] = token
    return Call("PUT", item_path(key), _stored_or_lost, put_params(ttl, stale, tags), body, headers)


def acquire_call(key: str, ttl: float) -> Call:
    def parse(status: int, body: bytes) -> str | None:
        if status == 409 and _code(body) == "lease_held":
            return None
        return _json(status, body)["token"]

    # Not idempotent: a retry of an acquire that did arrive finds the lock held, by ourselves.
    return Call("POST", item_path(key, "/lease"), parse, {"ttl": repr(float(ttl))}, idempotent=False)


def release_call(key: str, token: str) -> Call:
    def parse(status: int, body: bytes) -> bool:
        return _stored_or_lost(status, body)

    return Call("DELETE", item_path(key, "/lease"), parse, headers={LEASE_HEADER: token})


def mark_stale_call(key: str) -> Call:
    def parse(status: int, body: bytes) -> bool:
        return status != 404 and bool(_json(status, body)["stale"])

    return Call("POST", item_path(key, "/stale"), parse)


def held_call(key: str) -> Call:
    return Call("GET", item_path(key, "/lease"), lambda status, body: bool(_json(status, body)["held"]))


# -- get_or_set ----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    plan: Plan  # its result is sent back; its exception thrown in


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Compute:
    pass


@dataclass(frozen=True)
class Refresh:
    """Compute in the background, then run ``fill(value)``; log a failure."""

    key: str
    fill: Callable[[Any], Plan]


Action = Run | Sleep | Compute | Refresh
Flow = Generator[Action, Any, Any]


def check_times(lease: float, wait: float) -> None:
    for name, seconds in (("lease", lease), ("wait", wait)):
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < float("inf"):
            raise ValueError(f"{name} must be a finite number of seconds >= 0, not {seconds!r}")
    if lease <= 0:
        raise ValueError(f"lease must be more than 0 seconds, not {lease!r}")


def get_or_set_flow(
    api: Any,
    key: str,
    ttl: float | None,
    stale: float | None,
    lease: float,
    wait: float,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[float, float], float] = random.uniform,
    tags: Iterable[str] | None = None,
) -> Flow:
    """The algorithm of ``get_or_set`` (module docstring), as actions."""
    router = api.router
    give_up = clock() + lease + wait
    delay = FIRST_POLL

    def fill(token: str) -> Callable[[Any], Plan]:
        # The other replicas of a cluster get the same PUT without the token.
        return lambda value: router.leased_write(
            key, put_call(key, value, ttl, stale, token, tags), put_call(key, value, ttl, stale, tags=tags)
        )

    while True:
        try:
            read = yield Run(router.first(key, lease_read_call(key, lease)))
        except RequestError as error:
            if error.code != "too_many_leases":
                raise
            read = None  # the server grants no lease now: compute without one
        except Unavailable:
            if not api.fail_open:
                raise
            return (yield Compute())  # fail_open: an outage is a miss, and nothing is stored
        if read is not None and read.found:
            if read.token is not None:  # stale, and the refresh is ours
                yield Refresh(key, fill(read.token))
            return read.value
        if read is not None and read.token is not None:
            try:
                value = yield Compute()
            except BaseException:
                yield Run(_quietly(router.first(key, release_call(key, read.token))))
                raise
            yield Run(fill(read.token)(value))  # False: the lease ran out, a later winner's value stays
            return value
        now = clock()
        if read is None or now >= give_up:
            value = yield Compute()
            yield Run(router.write(key, put_call(key, value, ttl, stale, tags=tags)))
            return value
        # Someone else computes: back off (full jitter), never much past the end of its lease.
        pause = min(jitter(delay / 2, delay), read.wait + FIRST_POLL, give_up - now)
        delay = min(delay * 2, MAX_POLL)
        yield Sleep(max(pause, 0.0))


def _quietly(plan: Plan) -> Plan:
    """``plan``, its failure ignored (releasing a lease is a courtesy: it runs out anyway)."""
    try:
        return (yield from plan)
    except (RequestError, Unavailable):
        return None
