"""The HTTP contract, written once for both clients, and the failover plan.

Every client method builds a ``Call`` (method, path, query, body, how to read
the answer) and hands it to the client's ``_call``: the synchronous client
returns the result, the asynchronous one returns a coroutine of it, so the
methods of ``Api`` serve both unchanged. Only the transport differs
(requests or httpx), and a transport reports a failure as ``NotSent`` (the
request surely did not reach a server) or ``MaybeSent``.

Failover (``HostPool.run``): a request goes to the first host that is not
cooling down. A connection error, a timeout or a 5xx answer (but 507, "full",
which is the server's considered answer) marks the host failed: it is skipped
for ``cooldown`` seconds, and the request is retried on the next candidate,
up to ``max_retries`` more times, with exponential backoff when it has to try
a host that just failed again. When every host is cooling down, the one whose
cool-down ends first is tried anyway: a lone server that restarts is found
again at once. A 4xx is the answer, never retried. A call that is not
idempotent (incr/decr) is retried only when it was surely not sent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterable, Mapping
from urllib.parse import quote

from .errors import NotFound, RequestError, Unauthorized, Unavailable

DEFAULT_PORT = 8080
BACKOFF_START = 0.05
BACKOFF_MAX = 1.0

Answer = tuple[int, bytes]  # status, body
Parse = Callable[[int, bytes], Any]


class NotSent(Exception):
    """The request did not reach the server (connection refused, connect timeout)."""


class MaybeSent(Exception):
    """The request may have reached the server (read timeout, reset mid-answer)."""


def base_url(host: str) -> str:
    """``host:port``, a bare host (port 8080) or a full URL, as a base URL."""
    host = host.strip().rstrip("/")
    if "://" in host:
        return host
    if host.startswith("[") and "]:" not in host or (":" not in host):
        return f"http://{host}:{DEFAULT_PORT}"
    return f"http://{host}"


def item_path(key: str, suffix: str = "") -> str:
    if not isinstance(key, str) or not key:
        raise ValueError("a key is a non-empty string")
    return f"/cache/{quote(key, safe=':@')}{suffix}"


def encode(value: Any) -> bytes:
    """A value as JSON; TypeError for what JSON cannot hold."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def error_for(status: int, body: bytes) -> RequestError:
    try:
        document = json.loads(body)
        code, message = document["error"], document["message"]
    except (ValueError, KeyError, TypeError):
        document, code, message = {}, "http_error", body[:200].decode("utf-8", "replace") or f"HTTP {status}"
    kind = NotFound if status == 404 else Unauthorized if status == 401 else RequestError
    return kind(status, code, message, document)


def _json(status: int, body: bytes) -> Any:
    if status >= 300:
        raise error_for(status, body)
    return json.loads(body)


def _field(name: str) -> Parse:
    return lambda status, body: _json(status, body)[name]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    parse: Parse = _json
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True
    answers: frozenset[int] = frozenset()  # 5xx statuses that are answers, not failures


def retryable(status: int, call: Call) -> bool:
    return status >= 500 and status != 507 and status not in call.answers


class HostPool:
    """The hosts, in order of preference, and which are cooling down."""

    def __init__(self, hosts: Iterable[str], max_retries: int, cooldown: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(hosts, str):
            hosts = [hosts]
        self.hosts = [base_url(host) for host in hosts]
        if not self.hosts:
            raise ValueError("give at least one host")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.max_retries = max_retries
        self.cooldown = cooldown
        self.clock = clock
        self._cooling_until: dict[str, float] = {}

    def candidates(self) -> list[str]:
        """Hosts not cooling down, in order; then the cooling ones, soonest back first."""
        now = self.clock()
        ready = [host for host in self.hosts if self._cooling_until.get(host, 0) <= now]
        cooling = sorted((host for host in self.hosts if host not in ready), key=self._cooling_until.__getitem__)
        return ready + cooling

    def failed(self, host: str) -> None:
        self._cooling_until[host] = self.clock() + self.cooldown

    def succeeded(self, host: str) -> None:
        self._cooling_until.pop(host, None)

    def run(self, call: Call) -> Generator[tuple[str, float], Answer | Exception, Any]:
        """The attempts of one call: yields (host, seconds to wait first);
        is sent the Answer or the NotSent/MaybeSent of each; returns the result."""
        errors: dict[str, str] = {}
        last_host, delay = None, BACKOFF_START
        for _ in range(1 + self.max_retries):
            host = self.candidates()[0]
            wait = delay if host == last_host else 0.0
            if host == last_host:
                delay = min(delay * 2, BACKOFF_MAX)
            outcome = yield host, wait
            last_host = host
            if isinstance(outcome, Exception):
                errors[host] = f"{type(outcome).__name__}: {outcome}"
                self.failed(host)
                if isinstance(outcome, MaybeSent) and not call.idempotent:
                    raise Unavailable(f"{call.method} {call.path} may or may not have been applied: {outcome}",
                                      errors)
                continue
            status, body = outcome
            if retryable(status, call):
                errors[host] = f"HTTP {status}"
                self.failed(host)
                continue
            self.succeeded(host)
            return call.parse(status, body)
        raise Unavailable(f"no CacheGrid host answered {call.method} {call.path}: "
                          + "; ".join(f"{host}: {error}" for host, error in errors.items()), errors)


class Api:
    """The operations of CacheGrid, for both clients (see the module docstring)."""

    def __init__(self, hosts: Iterable[str] | str = ("localhost:8080",), timeout: float = 5.0,
                 max_retries: int = 3, auth_token: str | None = None, cooldown: float = 30.0) -> None:
        self.pool = HostPool(hosts, max_retries, cooldown)
        self.timeout = timeout
        self.auth_token = auth_token

    @property
    def hosts(self) -> list[str]:
        return self.pool.hosts

    def _headers(self) -> dict[str, str]:
        """The headers of every request of this client."""
        headers = {"User-Agent": "cachegrid-client"}
        if self.auth_token:
            headers["Authorization"] = f"Bearer {self.auth_token}"
        return headers

    def _call(self, call: Call) -> Any:
        raise NotImplementedError

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when there is none."""
        def parse(status: int, body: bytes) -> Any:
            return default if status == 404 else _json(status, body)
        return self._call(Call("GET", item_path(key), parse))

    def set(self, key: str, value: Any, ttl: float | None = None, only_if_absent: bool = False,
            only_if_present: bool = False) -> Any:
        """Store ``value`` (anything JSON can hold), optionally for ``ttl``
        seconds. True when stored; False when a condition prevented it."""
        headers = {"Content-Type": "application/json"}
        if only_if_absent:
            headers["If-None-Match"] = "*"
        if only_if_present:
            headers["If-Match"] = "*"
        def parse(status: int, body: bytes) -> bool:
            if status == 412:
                return False
            _json(status, body)
            return True
        params = None if ttl is None else {"ttl": repr(ttl)}
        return self._call(Call("PUT", item_path(key), parse, params, encode(value), headers))

    def delete(self, key: str) -> Any:
        """True when the key existed."""
        return self._call(Call("DELETE", item_path(key), _field("deleted")))

    def exists(self, key: str) -> Any:
        def parse(status: int, body: bytes) -> bool:
            if status in (200, 404):
                return status == 200
            raise error_for(status, body)
        return self._call(Call("HEAD", item_path(key), parse))

    def get_multi(self, keys: Iterable[str]) -> Any:
        """The values of those ``keys`` that exist, as a dict."""
        return self._call(Call("POST", "/cache/batch/get", _field("items"), body=encode({"keys": list(keys)})))

    def set_multi(self, items: Mapping[str, Any], ttl: float | None = None) -> Any:
        """Store every item or none of them; returns how many were stored."""
        document: dict[str, Any] = {"items": dict(items)}
        if ttl is not None:
            document["ttl"] = ttl
        return self._call(Call("POST", "/cache/batch/set", _field("stored"), body=encode(document)))

    def delete_multi(self, keys: Iterable[str]) -> Any:
        """Delete every key; returns how many existed."""
        return self._call(Call("POST", "/cache/batch/delete", _field("deleted"), body=encode({"keys": list(keys)})))

    def incr(self, key: str, by: int = 1) -> Any:
        """Add ``by`` to the integer under ``key`` (0 when absent); the new value."""
        return self._call(Call("POST", item_path(key, "/incr"), _field("value"), {"by": str(int(by))},
                               idempotent=False))

    def decr(self, key: str, by: int = 1) -> Any:
        return self._call(Call("POST", item_path(key, "/decr"), _field("value"), {"by": str(int(by))},
                               idempotent=False))

    def ttl(self, key: str) -> Any:
        """Seconds left (None: no expiry); NotFound when the key does not exist."""
        return self._call(Call("GET", item_path(key, "/ttl"), _field("ttl")))

    def touch(self, key: str, ttl: float) -> Any:
        """Give the key a new TTL; False when it does not exist."""
        return self._call(Call("PUT", item_path(key, "/ttl"), _exists_parse, {"ttl": repr(ttl)}))

    def persist(self, key: str) -> Any:
        """Remove the key's TTL; False when it does not exist."""
        return self._call(Call("DELETE", item_path(key, "/ttl"), _exists_parse))

    def keys(self, pattern: str | None = None, limit: int = 100, cursor: str | None = None) -> Any:
        """One page: {"keys": [...], "count": n, "cursor": next or None}."""
        params = {"limit": str(limit)}
        if pattern:
            params["pattern"] = pattern
        if cursor:
            params["cursor"] = cursor
        return self._call(Call("GET", "/admin/keys", params=params))

    def clear(self, confirm: bool = False) -> Any:
        """Remove every key: only with ``confirm=True``. Returns how many."""
        if confirm is not True:
            raise ValueError("clear() removes every key of the cache: call clear(confirm=True)")
        return self._call(Call("DELETE", "/cache", _field("cleared"), {"confirm": "true"}))

    def stats(self) -> Any:
        return self._call(Call("GET", "/stats"))

    def health(self) -> Any:
        """The /health document; an unhealthy node (503) answers too."""
        def parse(status: int, body: bytes) -> Any:
            return json.loads(body) if status == 503 else _json(status, body)
        return self._call(Call("GET", "/health", parse, answers=frozenset({503})))

    def snapshot(self) -> Any:
        """Start a background snapshot on the server (POST /admin/snapshot): its
        state. RequestError 409 while one runs, or when snapshots are off."""
        return self._call(Call("POST", "/admin/snapshot", idempotent=False))

    def snapshot_status(self) -> Any:
        """The server's snapshot state (GET /admin/snapshot)."""
        return self._call(Call("GET", "/admin/snapshot"))

    def server_load_test(self, num_operations: int = 1000, operation_type: str = "mixed") -> Any:
        """Run the server's built-in engine load test (POST /test/load)."""
        return self._call(Call("POST", "/test/load", params={
            "num_operations": str(num_operations), "operation_type": operation_type}, idempotent=False))


def _exists_parse(status: int, body: bytes) -> bool:
    if status == 404:
        return False
    _json(status, body)
    return True
