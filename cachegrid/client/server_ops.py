"""The operations of the client on a whole server or cluster rather than on
keys: listing keys, clearing, deleting by pattern, statistics, health,
snapshots and the server's load test. A part of ``Api`` (api.py), which
has the rest and the machinery these use."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .jobs import delete_pattern_plan
from .protocol import Call, First, Plan, _json

if TYPE_CHECKING:
    from .cluster import Router
    from .retry import HostPool

KEYS_PAGE = 1000  # keys() asks for at most this many keys a request


class ServerOps:
    """The server-wide operations of ``Api`` (see the module docstring)."""

    if TYPE_CHECKING:
        router: Router
        pool: HostPool

        def _run(self, plan: Plan, first: First | None = None) -> Any: ...
        def _or(self, absent: Any, plan: Plan) -> Plan: ...
        def _everything(self, run: Callable[[], Any]) -> Any: ...

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
        return self._everything(lambda: self._run(self.router.clear()))

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

    def delete_pattern(self, pattern: str, wait: float = 60.0) -> Any:
        """Delete every key matching ``pattern`` (a prefix, or a glob with
        ``*``, ``?``, ``[...]``) on every node, and return how many were
        deleted. The server deletes page by page in the background; this
        waits for it, at most ``wait`` seconds (then TimeoutUnavailable,
        while the deletion goes on)."""
        return self._everything(lambda: self._run(delete_pattern_plan(self.pool, self.router.nodes(), pattern, wait)))
