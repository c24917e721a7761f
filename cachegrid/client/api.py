"""The operations of CacheGrid, written once for both clients.

Each method builds its request (protocol.py) and asks the client's router
(cluster.py) for the plan that runs it: one logical cache (one host, or
``sharding=False``: every host a copy of the same cache, tried in order), or
a cluster whose keys are placed by a consistent-hash ring. The synchronous
client returns each method's result, the asynchronous one a coroutine of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cluster import Failover, Router, Sharded
from .errors import Unavailable
from .jobs import delete_pattern_plan
from .leases import (
    DEFAULT_LEASE,
    DEFAULT_WAIT,
    Flow,
    acquire_call,
    check_times,
    get_or_set_flow,
    held_call,
    mark_stale_call,
    put_params,
    release_call,
    seconds_param,
)
from .protocol import (
    Answer,
    Call,
    Outcome,
    Plan,
    _exists_parse,
    _field,
    _json,
    base_url,
    error_for,
    get_call,
    invalidate_call,
    item_path,
    retryable,
    tag_list,
    value_body,
)
from .retry import HostPool, RetryPolicy
from .ring import RINGS

Hosts = Iterable[str] | Mapping[str, int] | str
KEYS_PAGE = 1000  # keys() asks for at most this many keys a request
log = logging.getLogger("cachegrid.client")
First = tuple[str, Call, Outcome]  # a plan's first request, already sent: its host, call and outcome
_deleted = _field("deleted")


def starts_with(wait: float, sends: list[tuple[str, Call]], first: First) -> bool:
    """Whether a plan's first step is the request ``first`` already sent
    (always, for the plans ``Api._one`` runs: else the plan sends it anew)."""
    return not wait and len(sends) == 1 and sends[0][0] == first[0] and sends[0][1] is first[1]


def _policy(max_retries: int, retry: RetryPolicy | None) -> RetryPolicy:
    """The client's retry policy: ``retry``, or the default one with ``max_retries``."""
    if retry is None:
        return RetryPolicy(max_retries=max_retries)
    if max_retries not in (RetryPolicy.max_retries, retry.max_retries):
        raise ValueError("max_retries and retry.max_retries differ: give the number once")
    return retry


class Api:
    """The operations of CacheGrid, for both clients.

    ``hosts``: ``host:port`` strings (or URLs), or a mapping of them to
    weights. With several hosts, keys are spread over them by consistent
    hashing (``ring``: ``"ketama"``, the memcached clients' ring, or
    ``"nginx"``, the ring of nginx's ``hash ... consistent``), each on
    ``replicas`` nodes; ``sharding=False`` makes them copies of one cache
    instead, tried in order. A node that fails is skipped for ``cooldown``
    seconds. ``api_key`` is another name of ``auth_token``. With
    ``fail_open=True`` an outage (``Unavailable``) is a miss, not an error:
    see ``_fail_open``. A failed request is sent again up to ``max_retries``
    more times, with exponential back-off between the tries; ``retry`` (a
    ``RetryPolicy``) sets the number and the back-off together (retry.py)."""

    def __init__(
        self,
        hosts: Hosts = ("localhost:8080",),
        timeout: float = 5.0,
        max_retries: int = 3,
        auth_token: str | None = None,
        cooldown: float = 30.0,
        *,
        replicas: int = 1,
        sharding: bool = True,
        ring: str = "ketama",
        api_key: str | None = None,
        fail_open: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        if api_key is not None and auth_token is not None and api_key != auth_token:
            raise ValueError("auth_token and api_key are two names of the token: give one (they differ)")
        if isinstance(hosts, str):
            hosts = [hosts]
        weights = dict(hosts) if isinstance(hosts, Mapping) else dict.fromkeys(hosts, 1)
        urls = {base_url(host): weight for host, weight in weights.items()}
        self.pool = HostPool(list(urls), _policy(max_retries, retry), cooldown)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas must be a whole number >= 1, not {replicas!r}")
        if ring not in RINGS:
            raise ValueError(f"ring must be one of {', '.join(RINGS)}, not {ring!r}")
        self.router: Router
        if sharding and len(urls) > 1:
            self.router = Sharded(self.pool, urls, replicas=min(replicas, len(urls)), ring=ring)
        else:
            self.router = Failover(self.pool)
        self.timeout = timeout
        self.auth_token = auth_token if auth_token is not None else api_key
        self.fail_open = fail_open
        self._open_transport()

    def _open_transport(self) -> None:
        """Set up the client's transport state (nothing is connected yet)."""

    @property
    def hosts(self) -> list[str]:
        return self.pool.hosts

    @property
    def replicas(self) -> int:
        return self.router.replicas

    def _headers(self) -> dict[str, str]:
        """The headers of every request of this client."""
        headers = {"User-Agent": "cachegrid-client"}
        if self.auth_token:
            headers["Authorization"] = f"Bearer {self.auth_token}"
        return headers

    def _run(self, plan: Plan, first: First | None = None) -> Any:
        """Run ``plan`` (each client its own way); ``first``: the outcome of
        its first request, already sent by ``_one``."""
        raise NotImplementedError

    def _one(self, key: str, call: Call, plan: Callable[[], Plan], write: bool = False) -> Any:
        """A one-key operation: ``call`` straight to the key's node when the
        router knows it without running the plan (``Router.direct``), and
        ``plan()`` only when that first request failed, or missed where
        another replica may hold the key: the plan then starts from that
        outcome (its own first round is that same request) and nothing is
        sent twice. The common case pays for no plan at all. Only for
        idempotent calls (a plan that chose another node would send again)."""
        host = self.router.direct(key, write)
        if host is None:
            return self._run(plan())
        return self._direct(host, call, plan, write or self.router.replicas == 1)

    def _direct(self, host: str, call: Call, plan: Callable[[], Plan], miss_ends: bool) -> Any:
        """Send ``call`` to ``host``; its result when the answer ends the
        operation (no failure; a 404 only where ``miss_ends``), else
        ``plan()`` run on from that outcome."""
        raise NotImplementedError

    @staticmethod
    def _ends(answer: Answer, call: Call, miss_ends: bool) -> bool:
        """Whether ``answer`` ends a one-key operation sent by ``_direct``."""
        status = answer.status
        return (status < 500 or not retryable(status, call)) and (status != 404 or miss_ends)

    def _or(self, absent: Any, plan: Plan) -> Plan:
        """``plan``, or with ``fail_open``: ``plan`` answering ``absent`` on an outage."""
        return self._fail_open(plan, absent) if self.fail_open else plan

    @staticmethod
    def _fail_open(plan: Plan, absent: Any) -> Plan:
        try:
            return (yield from plan)
        except Unavailable as error:
            log.warning("CacheGrid unavailable, answering %r (fail_open): %s", absent, error)
            return absent

    def _once(self) -> Callable[[list[str]], list[str]]:
        """A filter for keys() and iter_keys: with replicas a key is on several nodes, so
        the keys seen are remembered (a set of them); without, nothing is kept."""
        if self.router.replicas == 1:
            return lambda keys: keys
        seen: set[str] = set()

        def once(keys: list[str]) -> list[str]:
            fresh = [key for key in keys if key not in seen]
            seen.update(fresh)
            return fresh

        return once

    def node_for(self, key: str) -> list[str]:
        """The nodes ``key`` is written to now, in ring order (its replicas)."""
        return self.router.placement(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` (``bytes`` for a binary value), or ``default`` when there is none."""
        call = get_call(key, default)
        return self._one(key, call, lambda: self._or(default, self.router.read(key, call, repair=True)))

    def set(
        self,
        key: str,
        value: Any,
        ttl: float | None = None,
        only_if_absent: bool = False,
        only_if_present: bool = False,
        stale: float | None = None,
        *,
        tags: Iterable[str] | None = None,
    ) -> Any:
        """Store ``value`` (anything JSON can hold, or ``bytes``: a binary
        value), optionally for ``ttl`` seconds (and then served stale for
        ``stale`` seconds more: see ``get_or_set``). True when stored; False
        when a condition prevented it. ``tags``: names to group it under
        (``invalidate_tags``); they replace the tags of the value it replaces."""
        body, content_type = value_body(value)
        headers = {"Content-Type": content_type}
        if only_if_absent:
            headers["If-None-Match"] = "*"
        if only_if_present:
            headers["If-Match"] = "*"

        def parse(status: int, body: bytes) -> bool:
            if status == 412:
                return False
            _json(status, body)
            return True

        call = Call("PUT", item_path(key), parse, put_params(ttl, stale, tags), body, headers)
        return self._one(key, call, lambda: self._or(False, self.router.write(key, call)), write=True)

    def delete(self, key: str) -> Any:
        """True when the key existed."""
        call = Call("DELETE", item_path(key), _deleted)
        return self._one(key, call, lambda: self._or(False, self.router.write(key, call)), write=True)

    def exists(self, key: str) -> Any:
        """True when ``key`` holds a live value (a HEAD request: the value is not sent)."""

        def parse(status: int, body: bytes) -> bool:
            if status in (200, 404):
                return status == 200
            raise error_for(status, body)

        call = Call("HEAD", item_path(key), parse)
        return self._one(key, call, lambda: self._or(False, self.router.read(key, call)))

    def get_multi(self, keys: Iterable[str]) -> Any:
        """The values of those ``keys`` that exist, as a dict (binary ones as ``bytes``)."""
        return self._run(self._or({}, self.router.get_multi(list(keys))))

    def set_multi(
        self,
        items: Mapping[str, Any],
        ttl: float | None = None,
        *,
        stale: float | None = None,
        tags: Iterable[str] | None = None,
    ) -> Any:
        """Store every item or none of them (on each node: see docs/cluster.md);
        ``bytes`` values are stored as binary values. Returns how many were
        stored. ``stale`` and ``tags``: as in ``set``, for every item."""
        if tags is None and stale is None:
            return self._run(self._or(0, self.router.set_multi(dict(items), ttl)))
        return self._run(
            self._or(0, self.router.set_multi(dict(items), ttl, None if tags is None else tag_list(tags), stale))
        )

    def invalidate_tags(self, tags: Iterable[str]) -> Any:
        """Make every entry carrying one of ``tags`` a miss, on every node
        (docs/tags.md); returns how many of the tags had entries (summed
        over the nodes)."""
        return self._run(self._sum(self.router.broadcast(invalidate_call(tags))))

    @staticmethod
    def _sum(plan: Plan) -> Plan:
        return sum((yield from plan))

    def delete_pattern(self, pattern: str, wait: float = 60.0) -> Any:
        """Delete every key matching ``pattern`` (a prefix, or a glob with
        ``*``, ``?``, ``[...]``) on every node, and return how many were
        deleted. The server deletes page by page in the background; this
        waits for it, at most ``wait`` seconds (then TimeoutUnavailable,
        while the deletion goes on)."""
        return self._run(delete_pattern_plan(self.pool, self.router.nodes(), pattern, wait))

    def delete_multi(self, keys: Iterable[str]) -> Any:
        """Delete every key; returns how many existed."""
        return self._run(self._or(0, self.router.delete_multi(list(keys))))

    def incr(self, key: str, by: int = 1) -> Any:
        """Add ``by`` to the integer under ``key`` (0 when absent); the new value."""
        return self._run(
            self.router.counter(
                key, Call("POST", item_path(key, "/incr"), _field("value"), {"by": str(int(by))}, idempotent=False)
            )
        )

    def decr(self, key: str, by: int = 1) -> Any:
        return self._run(
            self.router.counter(
                key, Call("POST", item_path(key, "/decr"), _field("value"), {"by": str(int(by))}, idempotent=False)
            )
        )

    def increment(self, key: str, delta: int = 1) -> Any:
        """``incr(key, delta)``, by the earlier client's name."""
        return self.incr(key, delta)

    def decrement(self, key: str, delta: int = 1) -> Any:
        """``decr(key, delta)``, named as ``increment``."""
        return self.decr(key, delta)

    def ttl(self, key: str) -> Any:
        """Seconds left (None: no expiry); NotFound when the key does not exist."""
        return self._run(self.router.read(key, Call("GET", item_path(key, "/ttl"), _field("ttl"))))

    def touch(self, key: str, ttl: float) -> Any:
        """Give the key a new TTL; False when it does not exist."""
        return self._run(
            self._or(
                False,
                self.router.write(
                    key, Call("PUT", item_path(key, "/ttl"), _exists_parse, {"ttl": seconds_param("ttl", ttl)})
                ),
            )
        )

    def expire(self, key: str, seconds: float) -> Any:
        """``touch(key, seconds)``, by the earlier client's name."""
        return self.touch(key, seconds)

    def persist(self, key: str) -> Any:
        """Remove the key's TTL; False when it does not exist."""
        return self._run(self._or(False, self.router.write(key, Call("DELETE", item_path(key, "/ttl"), _exists_parse))))

    def keys(self, pattern: str | None = None, limit: int | None = 100) -> Any:
        """The live keys matching ``pattern`` (a glob, or a prefix), as a list
        of at most ``limit`` (None: every one), read page by page."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a whole number >= 1 or None, not {limit!r}")
        return self._run(self._or([], self._key_list(pattern, limit)))

    def _key_list(self, pattern: str | None, limit: int | None) -> Plan:
        # A page may be short while its cursor is not null (the server examines
        # a bounded number of slots a request): follow the cursor to the end.
        once, cursor = self._once(), None
        found: list[str] = []
        while limit is None or len(found) < limit:
            wanted = KEYS_PAGE if limit is None else min(KEYS_PAGE, limit - len(found))
            page = yield from self.router.scan(pattern, wanted, cursor)
            found.extend(once(page["keys"]))
            cursor = page["cursor"]
            if not cursor:
                break
        return found if limit is None else found[:limit]

    def scan(self, pattern: str | None = None, limit: int = 100, cursor: str | None = None) -> Any:
        """One page: {"keys": [...], "count": n, "cursor": next or None}; pass
        the cursor back for the next page, until it is None (a page may be
        short, even empty, before that). Across a cluster the cursor holds
        every node's position."""
        return self._run(
            self._or(
                {"keys": [], "count": 0, "cursor": None, "pattern": pattern}, self.router.scan(pattern, limit, cursor)
            )
        )

    def clear(self, confirm: bool = True) -> Any:
        """Remove every key (of every node); returns how many. ``confirm=False``
        refuses (ValueError) and clears nothing: a guard for callers that pass
        a flag through."""
        if confirm is not True:
            raise ValueError("clear(confirm=False) clears nothing: call clear() to remove every key")
        return self._run(self.router.clear())

    def stats(self) -> Any:
        """The server's statistics; across a cluster their sum, with each
        node's own under ``"nodes"`` (a node that did not answer: ``{"down": true}``)."""
        return self._run(self._or({}, self.router.stats()))

    def health(self) -> Any:
        """The /health document; an unhealthy node (503) answers too."""

        def parse(status: int, body: bytes) -> Any:
            return json.loads(body) if status == 503 else _json(status, body)

        return self._run(self.pool.run(Call("GET", "/health", parse, answers=frozenset({503}))))

    def snapshot(self) -> Any:
        """Start a background snapshot (POST /admin/snapshot) on one node: its
        state. RequestError 409 while one runs, or when snapshots are off."""
        return self._run(self.pool.run(Call("POST", "/admin/snapshot", idempotent=False)))

    def snapshot_status(self) -> Any:
        """One node's snapshot state (GET /admin/snapshot)."""
        return self._run(self.pool.run(Call("GET", "/admin/snapshot")))

    def server_load_test(self, num_operations: int = 1000, operation_type: str = "mixed") -> Any:
        """Run the server's built-in engine load test (POST /test/load) on one node."""
        return self._run(
            self.pool.run(
                Call(
                    "POST",
                    "/test/load",
                    params={"num_operations": str(num_operations), "operation_type": operation_type},
                    idempotent=False,
                )
            )
        )

    # -- stampedes: leases, locks, stale values (client/leases.py, docs/stampedes.md) --------

    def get_or_set(
        self,
        key: str,
        compute: Callable[[], Any],
        ttl: float | None = None,
        stale: float | None = None,
        tags: Iterable[str] | None = None,
        lease: float = DEFAULT_LEASE,
        wait: float = DEFAULT_WAIT,
    ) -> Any:
        """The value under ``key``; on a miss, ``compute()``'s, stored for
        ``ttl`` seconds (and ``stale`` more, served stale while one caller
        refreshes it in the background). However many callers miss at
        once, one computes (it holds the lease, for ``lease`` seconds at
        most) and the others wait for its value, ``lease + wait`` seconds
        at most before computing themselves. In the asynchronous client
        ``compute`` may be a coroutine function."""
        check_times(lease, wait)
        return self._drive(get_or_set_flow(self, key, ttl, stale, lease, wait, tags=tags), compute)

    def _drive(self, flow: Flow, compute: Callable[[], Any]) -> Any:
        """Run a flow of leases.py (each client its own way)."""
        raise NotImplementedError

    def acquire_lock(self, key: str, ttl: float) -> Any:
        """Take the lock on ``key`` for ``ttl`` seconds without waiting: its
        token, or None when another caller holds it. It ends with
        ``release_lock`` or by itself after ``ttl``; deleting the key does
        not end it. (The same lease ``get_or_set`` takes on a miss.)"""
        return self._run(self.router.first(key, acquire_call(key, ttl)))

    def release_lock(self, key: str, token: str) -> Any:
        """Release the lock ``token`` names: True, or False when it names
        none (it ran out, or was released already)."""
        return self._run(self.router.first(key, release_call(key, token)))

    def mark_stale(self, key: str) -> Any:
        """Invalidate ``key`` without deleting it (memcached's ``md key I``):
        readers get the old value marked stale, and one ``get_or_set``
        caller refreshes it. False when the key does not exist. Sent to
        every replica."""
        return self._run(self._or(False, self.router.write(key, mark_stale_call(key))))

    def lock_held(self, key: str) -> Any:
        """Whether someone holds the lock (the lease) on ``key``."""
        return self._run(self.router.first(key, held_call(key)))
