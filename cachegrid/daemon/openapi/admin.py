"""The ``admin`` family of the OpenAPI document: statistics, health, key
listing, snapshots, Prometheus metrics and the load test (daemon/admin.py,
metrics.py, engine_load_test.py).
"""

from __future__ import annotations

from typing import Any

from ...engine import DEFAULT_KEYS_LIMIT
from ...engine.pattern_delete import CLOSED_SETS
from ..engine_load_test import DEFAULT_OPERATIONS, OPERATION_TYPES
from .parts import Common, error, grouped, obj, ok, operation, query

GROUP = {"name": "admin", "description": "Statistics, health, key listing, metrics, the load test."}

HEALTH = obj(
    ["status", "last_check", "node_id"],
    status={"type": "string", "enum": ["healthy", "unhealthy"]},
    uptime_seconds={"type": "number"},
    cache_size={"type": "integer"},
    hit_ratio={"type": "number"},
    memory_usage_mb={"type": "number"},
    last_check={"type": "number"},
    node_id={"type": "string"},
    problems={"type": "array", "items": {"type": "string"}},
)

# The counters of /stats, all integers; the other fields are listed in _stats().
_COUNTERS = (
    "hits",
    "misses",
    "sets",
    "deletes",
    "evictions",
    "expired",
    "rejected_too_large",
    "rejected_full",
    "current_size",
    "max_size",
    "memory_usage_bytes",
    "max_memory_bytes",
    "tags",
    "tag_memory_bytes",
    "tag_invalidations",
    "tag_invalidated_entries",
)
_ALWAYS = ("hits", "misses", "sets", "deletes", "evictions", "current_size", "max_size")


def paths(common: Common) -> dict[str, Any]:
    """The family's paths, each operation grouped ``admin``."""
    health = {"$ref": "#/components/schemas/Health"}
    return grouped(
        {
            "/stats": {"get": operation("Every counter of the engine.", {"200": ok("Statistics.", _stats())})},
            "/health": {
                "get": operation(
                    "Whether this node works.",
                    {"200": ok("Healthy.", health), "503": ok("Unhealthy.", health)},
                    authenticated=False,
                )
            },
            "/admin/keys": _keys(common),
            "/admin/snapshot": _snapshot(),
            "/test/load": _load_test(common),
            "/metrics": {
                "get": operation(
                    "Statistics in Prometheus' text format.",
                    {
                        "200": {
                            "description": "Prometheus exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                )
            },
        },
        "admin",
    )


def _stats() -> dict[str, Any]:
    """The body of ``GET /stats``."""
    return {
        "type": "object",
        "required": [*_ALWAYS, "hit_ratio", "memory_usage_mb", "uptime_seconds"],
        "properties": {name: {"type": "integer"} for name in _COUNTERS}
        | {
            "hit_ratio": {"type": "number"},
            "memory_usage_mb": {"type": "number"},
            "max_memory_mb": {"type": "number"},
            "uptime_seconds": {"type": "number"},
            "policy": {"type": "string"},
            "node_id": {"type": "string"},
            "snapshot_enabled": {
                "type": "boolean",
                "description": "Whether snapshots are on; the other snapshot_* "
                "fields (present only then) are those of GET /admin/snapshot, flattened.",
            },
            "memory_trim_enabled": {
                "type": "boolean",
                "description": "Whether the worker gives its heap's free "
                "memory back to the OS (glibc malloc_trim every memory_trim_interval seconds after "
                "work); the other memory_trim_* fields are present only then.",
            },
            "memory_trim_interval_seconds": {"type": "number"},
            "memory_trims": {"type": "integer", "description": "Trims since start."},
            "memory_trim_released_bytes": {"type": "integer", "description": "RSS they gave back, in bytes."},
            "memory_trim_last_at": {"type": ["number", "null"], "description": "When the last one began (Unix time)."},
            "memory_trim_last_released_bytes": {"type": ["integer", "null"]},
            "memory_trim_last_seconds": {"type": ["number", "null"], "description": "How long the last one took."},
            "worker": {"type": ["string", "null"], "description": "The worker kind serving (null: not gunicorn)."},
        },
    }


def _keys(common: Common) -> dict[str, Any]:
    """``GET /admin/keys``: a page of the key listing (a cursor walk)."""
    page = obj(
        ["keys", "count", "cursor"],
        keys={"type": "array", "items": {"type": "string"}},
        count={"type": "integer"},
        cursor={"type": ["string", "null"]},
        pattern={"type": ["string", "null"]},
        sizes={
            "type": "object",
            "description": "Per key: the bytes its value is held in (compressed, for a value held so) "
            "and its bytes as a client reads it.",
            "additionalProperties": obj(
                ["stored_bytes", "original_bytes"],
                stored_bytes={"type": "integer"},
                original_bytes={"type": "integer"},
            ),
        },
    )
    return {
        "get": operation(
            "A page of live keys matching a prefix or glob.",
            {
                "200": ok(
                    "Keys, and the cursor of the next page (null at the end). A page may hold fewer "
                    "than `limit` keys while the cursor is not null: continue until it is null.",
                    page,
                ),
                "400": common.bad,
            },
            [
                query(
                    "pattern",
                    {"type": "string", "pattern": CLOSED_SETS, "maxLength": common.settings.max_key_length},
                    "A prefix, or a glob with `*`, `?` or `[...]` (every `[` closed, as for "
                    "/admin/delete-pattern; 400 `invalid_pattern` otherwise). Empty or absent: every key.",
                ),
                query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": common.settings.max_keys_limit},
                    f"Page size (default {min(DEFAULT_KEYS_LIMIT, common.settings.max_keys_limit)}).",
                ),
                query("cursor", {"type": "string"}, "From the previous page."),
            ],
        )
    }


def _snapshot_state() -> dict[str, Any]:
    """The body of ``GET /admin/snapshot`` (and of a started one)."""
    last = obj(
        ["result"],
        result={"type": "string", "enum": ["none", "ok", "failed"]},
        started_at={"type": ["number", "null"]},
        finished_at={"type": ["number", "null"]},
        duration_seconds={"type": ["number", "null"]},
        entries={"type": ["integer", "null"]},
        bytes={"type": ["integer", "null"]},
        error={"type": ["string", "null"]},
        trigger={"type": ["string", "null"], "enum": ["interval", "request", "shutdown", None]},
    )
    loaded = obj(
        ["result"],
        result={"type": "string", "enum": ["none", "ok", "failed"]},
        entries={"type": "integer"},
        expired={"type": "integer"},
        left_out={"type": "integer"},
        duration_seconds={"type": "number"},
        error={"type": ["string", "null"]},
        moved_to={"type": ["string", "null"]},
    )
    return obj(
        ["enabled", "running"],
        enabled={"type": "boolean"},
        path={"type": ["string", "null"]},
        running={"type": "boolean"},
        running_since={"type": ["number", "null"]},
        interval_seconds={"type": "number"},
        written={"type": "integer"},
        failed={"type": "integer"},
        last=last,
        loaded=loaded,
    )


def _snapshot() -> dict[str, Any]:
    """``/admin/snapshot``: its state, and a snapshot started now."""
    state = _snapshot_state()
    return {
        "get": operation(
            "The snapshot state: the last snapshot written and the load at start.",
            {"200": ok("The state (`enabled` false when snapshot_path is not set).", state)},
        ),
        "post": operation(
            "Start a background snapshot now (the file is written by a forked copy while requests go on).",
            {
                "202": ok("Started; the state, with `running` true.", state),
                "409": error(
                    "A snapshot is running already (`snapshot_running`), or snapshots are off (`snapshots_off`)."
                ),
            },
        ),
    }


def _load_test(common: Common) -> dict[str, Any]:
    """``POST /test/load``: a load test on a scratch engine."""
    most = common.settings.loadtest_max_operations
    return {
        "post": operation(
            "Run a load test on a scratch engine with the same policy and limits.",
            {
                "200": ok("Throughput and latency.", {"type": "object"}),
                "400": error("A bad parameter, or num_operations over loadtest_max_operations (`limit`)."),
                "403": error("The load test is switched off."),
            },
            [
                query(
                    "num_operations",
                    {"type": "integer", "minimum": 1, "maximum": most},
                    f"Default {DEFAULT_OPERATIONS}, at most {most} (the run holds the server).",
                ),
                query(
                    "operation_type",
                    {"type": "string", "enum": [*OPERATION_TYPES, ""]},
                    "Default (and when empty) mixed.",
                ),
            ],
        )
    }
