"""The operations of CacheGrid, written once for both clients.

Each method builds its request (protocol.py) and asks the client's router
(cluster.py) for the plan that runs it: one logical cache (one host, or
``sharding=False``: every host a copy of the same cache, tried in order), or
a cluster whose keys are placed by a consistent-hash ring. The synchronous
client returns each method's result, the asynchronous one a coroutine of it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cluster import Failover, Router, Sharded
from .coding import DEFAULT_COMPRESS_THRESHOLD, Uploads
from .errors import Unavailable
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
from .near import NearCache, Ticket
from .protocol import (
    BINARY_BODY,
    JSON_BODY,
    JSON_TYPE,
    Answer,
    Call,
    First,
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
from .server_ops import ServerOps

Hosts = Iterable[str] | Mapping[str, int] | str
log = logging.getLogger("cachegrid.client")
Fill = tuple[NearCache, Ticket]  # where a read's answer is kept
_deleted = _field("deleted")


# What a client's quick path (``_quick_get``) answers when it sent nothing.
NOT_SENT = object()


def _stored(status: int, body: bytes) -> bool:
    """A PUT's answer: stored (the body, which says so again, need not be decoded), or not for a condition (412)."""
    if status == 412:
        return False
    if status >= 300:
        _json(status, body)  # raises the error the body names
    return True


def starts_with(wait: float, sends: list[tuple[str, Call]], first: First) -> bool:
    """Whether a plan's first step is the request ``first`` already sent
    (always, for the plans ``Api._one`` runs: else the plan sends it anew)."""
    return not wait and len(sends) == 1 and sends[0][0] == first[0] and sends[0][1] is first[1]


def tls_verify(ca_file: str | os.PathLike[str] | None, verify: bool) -> bool | str:
    """How https hosts' certificates are checked: True (the system's CA
    bundle), the path of ``ca_file``, or False; ValueError for a ``ca_file``
    that cannot be read or that goes with ``verify=False``."""
    if ca_file is None:
        if not isinstance(verify, bool):
            raise ValueError(f"verify is True or False, not {verify!r}: give a CA bundle as ca_file=")
        return verify
    if not verify:
        raise ValueError("ca_file and verify=False contradict each other: give one")
    path = os.fspath(ca_file)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ValueError(f"ca_file {path!r}: no readable file there")
    return path


def _policy(max_retries: int, retry: RetryPolicy | None) -> RetryPolicy:
    """The client's retry policy: ``retry``, or the default one with ``max_retries``."""
    if retry is None:
        return RetryPolicy(max_retries=max_retries)
    if max_retries not in (RetryPolicy.max_retries, retry.max_retries):
        raise ValueError("max_retries and retry.max_retries differ: give the number once")
    return retry


class Api(ServerOps):
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
    ``RetryPolicy``) sets the number and the back-off together (retry.py).
    ``https://`` hosts have their certificates verified: against the system's
    CA bundle (requests' and httpx's), or ``ca_file`` (a PEM bundle) for a
    private CA; ``verify=False`` turns the check off (only for a test: it
    lets anyone in the middle read the token). A certificate that does not
    verify raises ``TLSError`` at once (docs/tls.md). A value or batch set of
    ``compress_threshold`` bytes or more (JSON or binary; default 1024, 0:
    never) is sent gzip-compressed to a node that said it reads compressed
    bodies; values the server holds compressed are read compressed and
    decoded, always (coding.py, docs/compression.md)."""

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
        near_cache: bool | NearCache = False,
        ca_file: str | os.PathLike[str] | None = None,
        verify: bool = True,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
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
        if near_cache is not True and near_cache is not False and not isinstance(near_cache, NearCache):
            raise ValueError(f"near_cache must be True, False or a NearCache, not {near_cache!r}")
        self.near_cache: NearCache | None = NearCache() if near_cache is True else near_cache or None
        self.verify = tls_verify(ca_file, verify)
        self.uploads = Uploads(compress_threshold)
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
        # Accept-Encoding: values held compressed come as held, and are decoded (coding.py).
        headers = {"User-Agent": "cachegrid-client", "Accept-Encoding": "gzip"}
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

    def _direct(
        self, host: str, call: Call, plan: Callable[[], Plan], miss_ends: bool, fill: Fill | None = None
    ) -> Any:
        """Send ``call`` to ``host``; its result when the answer ends the
        operation (no failure; a 404 only where ``miss_ends``), else
        ``plan()`` run on from that outcome. ``fill``: the near cache and the
        ticket the answer is kept under (``fill_near``)."""
        raise NotImplementedError

    @staticmethod
    def fill_near(fill: Fill, outcome: Outcome) -> None:
        """Keep ``outcome`` in the near cache if it is an answer (near.fill
        decides whether it may be kept), else give its reservation up."""
        near, ticket = fill
        if isinstance(outcome, Answer):
            near.fill(ticket, outcome.status, outcome.headers, outcome.body)
        else:
            near.cancel(ticket)

    def _ready(self, value: Any) -> Any:
        """``value`` as the client returns a result (the async client: an awaitable)."""
        return value

    def _finally(self, run: Callable[[], Any], after: Callable[[], None]) -> Any:
        """``run()``'s result (awaited in the async client), then ``after()``, also when it fails."""
        raise NotImplementedError

    # -- what keeps the near cache coherent with the client's own writes ----------------

    def _changing(self, keys: Iterable[str], run: Callable[[], Any]) -> Any:
        """``run()``, a write of ``keys``: their near copies are dropped before
        it is sent and again once it is answered (or failed), so that neither
        this client's later reads nor a read filled meanwhile serve the old value."""
        near = self.near_cache
        if near is None:
            return run()
        keys = list(keys)

        def forget() -> None:
            for key in keys:
                near.forget(key)

        forget()
        return self._finally(run, forget)

    def _everything(self, run: Callable[[], Any]) -> Any:
        """``run()``, which may change any key (clear, delete by pattern): the near cache is emptied around it."""
        near = self.near_cache
        if near is None:
            return run()
        near.forget_all()
        return self._finally(run, near.forget_all)

    def _tagged(self, tags: list[str], run: Callable[[], Any]) -> Any:
        """``run()``, an invalidation of ``tags``: their near copies dropped around it."""
        near = self.near_cache
        if near is None:
            return run()
        near.forget_tags(tags)
        return self._finally(run, lambda: near.forget_tags(tags))

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

    def node_for(self, key: str) -> list[str]:
        """The nodes ``key`` is written to now, in ring order (its replicas)."""
        return self.router.placement(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` (``bytes`` for a binary value), or ``default`` when there is none."""
        near = self.near_cache
        if near is not None:
            hit, value = near.lookup(key)
            if hit:
                return self._ready(value)
        else:
            found = self._quick_get(key, default)
            if found is not NOT_SENT:
                return found
        call = get_call(key, default)
        plan = self._read_plan(key, call, default)
        if near is None:
            return self._one(key, call, plan)
        return self._near_read(near, key, call, plan)

    def _read_plan(self, key: str, call: Call, default: Any) -> Callable[[], Plan]:
        """How a one-key read is sent when its first request did not end it (``_one``)."""
        return lambda: self._or(default, self.router.read(key, call, repair=True))

    def _quick_get(self, key: str, default: Any) -> Any:
        """A plain GET's result by a shorter way, or ``NOT_SENT``: the client
        has none (the sync client's has one: sync.py). Called without a near cache."""
        return NOT_SENT

    def _near_read(self, near: NearCache, key: str, call: Call, plan: Callable[[], Plan]) -> Any:
        """A read the near cache missed: reserved there, sent straight to the
        key's node, and its answer kept (near.py explains the reservation).
        When the node is not known without the plan, or its change stream is
        not live (it is then opened), the read passes through."""
        host = self.router.direct(key, False)
        if host is None:
            return self._run(plan())
        ticket = near.reserve(key, host)
        if ticket is None:
            near.watch(self.hosts, self._headers(), self.timeout)
        return self._direct(host, call, plan, self.router.replicas == 1, None if ticket is None else (near, ticket))

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
        headers: Mapping[str, str] = JSON_BODY if content_type is JSON_TYPE else BINARY_BODY
        if only_if_absent or only_if_present:
            headers = {"Content-Type": content_type}
            if only_if_absent:
                headers["If-None-Match"] = "*"
            if only_if_present:
                headers["If-Match"] = "*"
        params = None if ttl is None and stale is None and tags is None else put_params(ttl, stale, tags)
        if not (only_if_absent or only_if_present) and self.near_cache is None:
            stored = self._quick_put(key, body, headers, params)
            if stored is not None:
                return stored
        call = Call("PUT", item_path(key), _stored, params, body, headers)
        plan = self._write_plan(key, call)
        if self.near_cache is None:
            return self._one(key, call, plan, write=True)
        return self._changing((key,), lambda: self._one(key, call, plan, write=True))

    def _write_plan(self, key: str, call: Call) -> Callable[[], Plan]:
        """How a one-key write is sent when its first request is not answered (``_one``)."""
        return lambda: self._or(False, self.router.write(key, call))

    def _quick_put(self, key: str, body: bytes, headers: Mapping[str, str], params: Mapping[str, str] | None) -> Any:
        """A PUT's result by a shorter way, or None: the client has none (the
        sync client's has one: sync.py). Called for a PUT without conditions
        or a near cache, before its Call is made."""
        return None

    def delete(self, key: str) -> Any:
        """True when the key existed."""
        call = Call("DELETE", item_path(key), _deleted)
        run = lambda: self._one(key, call, lambda: self._or(False, self.router.write(key, call)), write=True)  # noqa: E731
        return run() if self.near_cache is None else self._changing((key,), run)

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
        items = dict(items)
        if tags is None and stale is None:
            return self._changing(items, lambda: self._run(self._or(0, self.router.set_multi(items, ttl))))
        return self._changing(
            items,
            lambda: self._run(
                self._or(0, self.router.set_multi(items, ttl, None if tags is None else tag_list(tags), stale))
            ),
        )

    def invalidate_tags(self, tags: Iterable[str]) -> Any:
        """Make every entry carrying one of ``tags`` a miss, on every node
        (docs/tags.md); returns how many of the tags had entries (summed
        over the nodes)."""
        tags = tag_list(tags)
        return self._tagged(tags, lambda: self._run(self._sum(self.router.broadcast(invalidate_call(tags)))))

    @staticmethod
    def _sum(plan: Plan) -> Plan:
        return sum((yield from plan))

    def delete_multi(self, keys: Iterable[str]) -> Any:
        """Delete every key; returns how many existed."""
        keys = list(keys)
        return self._changing(keys, lambda: self._run(self._or(0, self.router.delete_multi(keys))))

    def incr(self, key: str, by: int = 1) -> Any:
        """Add ``by`` to the integer under ``key`` (0 when absent); the new value."""
        call = Call("POST", item_path(key, "/incr"), _field("value"), {"by": str(int(by))}, idempotent=False)
        return self._changing((key,), lambda: self._run(self.router.counter(key, call)))

    def decr(self, key: str, by: int = 1) -> Any:
        call = Call("POST", item_path(key, "/decr"), _field("value"), {"by": str(int(by))}, idempotent=False)
        return self._changing((key,), lambda: self._run(self.router.counter(key, call)))

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
        call = Call("PUT", item_path(key, "/ttl"), _exists_parse, {"ttl": seconds_param("ttl", ttl)})
        return self._changing((key,), lambda: self._run(self._or(False, self.router.write(key, call))))

    def expire(self, key: str, seconds: float) -> Any:
        """``touch(key, seconds)``, by the earlier client's name."""
        return self.touch(key, seconds)

    def persist(self, key: str) -> Any:
        """Remove the key's TTL; False when it does not exist."""
        call = Call("DELETE", item_path(key, "/ttl"), _exists_parse)
        return self._changing((key,), lambda: self._run(self._or(False, self.router.write(key, call))))

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
        if self.near_cache is not None:
            hit, value = self.near_cache.lookup(key)
            if hit:
                return self._ready(value)
        flow = get_or_set_flow(self, key, ttl, stale, lease, wait, tags=tags)
        return self._changing((key,), lambda: self._drive(flow, compute))

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
        return self._changing((key,), lambda: self._run(self._or(False, self.router.write(key, mark_stale_call(key)))))

    def lock_held(self, key: str) -> Any:
        """Whether someone holds the lock (the lease) on ``key``."""
        return self._run(self.router.first(key, held_call(key)))
