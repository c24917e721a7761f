"""Leases, locks and stale values in the OpenAPI document (daemon/leases.py,
docs/stampedes.md): the ``lease`` parameter of a read and the headers of
its answers, the token and the ``stale`` window of a write, and the paths
``/cache/{key}/lease`` and ``/cache/{key}/stale`` (family ``items``).

Written over the ``items`` family's operations (items.py of this package),
which must be in ``paths`` already.
"""

from __future__ import annotations

from typing import Any

from .parts import Common, error, grouped, header, obj, ok, operation, query


def amend(paths: dict[str, Any], common: Common) -> None:
    """Add leases and stale values to ``paths``."""
    settings = common.settings
    seconds = {"type": "number", "exclusiveMinimum": 0, "maximum": settings.max_lease_time}
    grant = _grant_headers()
    too_many = error(f"Too many leases held (max_leases, {settings.max_leases}).")
    token = header(
        "X-Cache-Lease",
        "The token of the lease on this key: the write ends the lease (409 "
        "`lease_not_held`, nothing stored, when it names no live lease).",
    )
    _amend_reads(paths, seconds, grant, too_many)
    _amend_write(paths, common, token)
    paths.update(grouped(_lock(common, seconds, grant, too_many, token) | _stale_mark(common), "items"))


def _grant_headers() -> dict[str, Any]:
    """The headers that say who computes a missing value."""
    status = {
        "schema": {"type": "string", "enum": ["granted", "held"]},
        "description": "`granted`: this caller computes the value (the token is in X-Cache-Lease); "
        "`held`: another caller does.",
    }
    return {
        "X-Cache-Lease-Status": status,
        "X-Cache-Lease": {"schema": {"type": "string"}, "description": "The lease's token, when granted."},
        "Retry-After": {
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "Whole seconds the holder has left, when held.",
        },
    }


def _amend_reads(paths: dict[str, Any], seconds: dict[str, Any], grant: dict[str, Any], too_many: Any) -> None:
    """``?lease=`` on GET and HEAD of ``/cache/{key}``."""
    lease = query(
        "lease",
        seconds,
        "On a miss, ask for the lease to compute the value (for this many seconds): "
        "exactly one caller gets it, the others are told to retry after a while.",
    )
    stale_header = {
        "X-Cache-Stale": {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "The value is past its TTL, in its stale window (or marked "
            "stale): served while one reader refreshes it.",
        },
        "X-Cache-Fresh": {
            "schema": {"type": "string"},
            "description": "On a fresh value that has a stale window: the seconds it stays "
            "fresh (X-Cache-TTL counts the window too), with millisecond precision.",
        },
    }
    for method in ("get", "head"):
        read = paths["/cache/{key}"][method]
        read["parameters"].append(lease)
        read["responses"]["507"] = too_many if method == "get" else {"description": "Too many leases held."}
        for status, headers in (("404", grant), ("200", grant | stale_header)):
            # GET's 404 is the ``missing`` answer that every 404 of a key
            # shares (Common): the grant's headers are set on that one dict,
            # so the TTL's and /stale's 404s list them too, as they always have.
            answer = read["responses"][status]
            answer["headers"] = answer.get("headers", {}) | headers


def _amend_write(paths: dict[str, Any], common: Common, token: dict[str, Any]) -> None:
    """The lease token and ``?stale=`` on PUT ``/cache/{key}``."""
    put = paths["/cache/{key}"]["put"]
    put["parameters"] += [
        token,
        query(
            "stale",
            {"type": "number", "minimum": 0, "maximum": common.settings.max_stale_time},
            "Seconds past the TTL the value may still be served, marked stale, while one reader refreshes it "
            "(stale-while-revalidate, stale-if-error). Without `ttl` it has no effect: such a value never turns "
            "stale.",
        ),
    ]
    put["responses"]["409"] = error("The lease token names no live lease on the key (`lease_not_held`).")


def _lock(
    common: Common, seconds: dict[str, Any], grant: dict[str, Any], too_many: Any, token: dict[str, Any]
) -> dict[str, Any]:
    """``/cache/{key}/lease``: the lease as a lock."""
    key, bad = common.key, common.bad
    held_answer = ok(
        "Whether the lease is held, and its seconds left.",
        obj(["key", "held", "ttl"], key={"type": "string"}, held={"type": "boolean"}, ttl={"type": ["number", "null"]}),
    )
    acquired = obj(["key", "token", "ttl"], key={"type": "string"}, token={"type": "string"}, ttl={"type": "number"})
    released = obj(["key", "released"], key={"type": "string"}, released={"type": "boolean"})
    return {
        "/cache/{key}/lease": {
            "post": operation(
                "Acquire the lease on the key as a lock, without waiting.",
                {
                    "201": ok("Acquired: the token releases it.", acquired, grant),
                    "400": bad,
                    "409": error("Held by another caller (`lease_held`); see Retry-After.") | {"headers": grant},
                    "507": too_many,
                },
                [key, query("ttl", seconds, "Seconds the lock lasts unless released first.", required=True)],
            ),
            "delete": operation(
                "Release the lease with its token.",
                {
                    "200": ok("Released.", released),
                    "400": bad,
                    "409": error("The token names no live lease on the key (`lease_not_held`)."),
                },
                [
                    key,
                    token
                    | {
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                        "description": "The token the acquire gave.",
                    },
                ],
            ),
            "get": operation("Whether the lease on the key is held.", {"200": held_answer, "400": bad}, [key]),
        }
    }


def _stale_mark(common: Common) -> dict[str, Any]:
    """``POST /cache/{key}/stale``: invalidate without deleting."""
    return {
        "/cache/{key}/stale": {
            "post": operation(
                "Mark the key stale instead of deleting it: readers get the old value marked stale, one of them "
                f"the lease to refresh it. A key without a stale window keeps {common.settings.stale_grace:g} s "
                "(stale_grace).",
                {
                    "200": ok("Marked.", obj(["key", "stale"], key={"type": "string"}, stale={"type": "boolean"})),
                    "400": common.bad,
                    "404": common.missing,
                },
                [common.key],
            )
        }
    }
