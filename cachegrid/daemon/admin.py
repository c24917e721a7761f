"""``/stats``, ``/health``, ``/admin/keys`` and ``/admin/snapshot``: what an operator reads.

Each answers from one engine call (``/health`` adds a bounded wait for the
lock), so none of them holds the engine's lock or the request loop for long:
the key listing is paged by the engine, and the daemon hands its cursor
through as it is, never calling the engine again to fill a page.
``POST /admin/snapshot`` only forks (engine/snapshot.py): the file is
written by the child while requests go on.
"""

from __future__ import annotations

import time
from typing import Any

import falcon

from ..config import MiB, Settings
from ..engine import DEFAULT_KEYS_LIMIT, Cache
from ..engine.pattern_delete import check_pattern
from ..engine.snapshot import SnapshotRunning, Snapshotter
from .acl import scope
from .body import int_param
from .compression import InflatedValues
from .errors import ApiError
from .heap import HeapTrimmer, trim_fields
from .resources import Resource, send_json

SNAPSHOTS_OFF = {"enabled": False, "path": None, "running": False}


def stats_document(cache: Cache, settings: Settings, worker: str | None = None) -> dict[str, Any]:
    """The engine's counters, plus the seed's memory_usage_mb, the node and
    the worker kind serving it (None: not served by gunicorn)."""
    stats = cache.stats()
    stats["memory_usage_mb"] = round(stats["memory_usage_bytes"] / MiB, 3)
    stats["max_memory_mb"] = round(stats["max_memory_bytes"] / MiB, 3)
    stats["hit_ratio"] = round(stats["hit_ratio"], 4)
    stats["compression_ratio"] = round(stats["compression_ratio"], 4)
    stats["uptime_seconds"] = round(stats["uptime_seconds"], 3)
    stats["node_id"] = settings.node_id
    stats["worker"] = worker
    return stats


def snapshot_fields(snapshotter: Snapshotter | None) -> dict[str, Any]:
    """The snapshot state as flat ``snapshot_*`` fields, for /stats."""
    if snapshotter is None:
        return {"snapshot_enabled": False}
    status = snapshotter.status()
    fields = {
        "snapshot_enabled": True,
        "snapshot_path": status["path"],
        "snapshot_running": status["running"],
        "snapshot_interval_seconds": status["interval_seconds"],
        "snapshots_written": status["written"],
        "snapshots_failed": status["failed"],
    }
    fields.update({f"snapshot_last_{name}": value for name, value in status["last"].items()})
    loaded = status["loaded"]
    fields.update(
        snapshot_loaded_result=loaded["result"],
        snapshot_loaded_entries=loaded["entries"],
        snapshot_loaded_expired=loaded["expired"],
        snapshot_loaded_left_out=loaded["left_out"],
        snapshot_loaded_seconds=round(loaded["duration_seconds"], 3),
    )
    return fields


class Stats(Resource):
    """``GET /stats``: the engine's counters, the snapshot state, the heap
    trimmer's and the inflated values' (compression.py)."""

    def __init__(
        self,
        cache: Cache,
        settings: Settings,
        snapshotter: Snapshotter | None = None,
        worker: str | None = None,
        trimmer: HeapTrimmer | None = None,
        inflated: InflatedValues | None = None,
    ) -> None:
        super().__init__(cache, settings)
        self.snapshotter = snapshotter
        self.worker = worker
        self.trimmer = trimmer
        self.inflated = inflated

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send_json(
            resp,
            stats_document(self.cache, self.settings, self.worker)
            | snapshot_fields(self.snapshotter)
            | trim_fields(self.trimmer)
            | (self.inflated.stats() if self.inflated is not None else {}),
        )


class Snapshots(Resource):
    """``POST /admin/snapshot``: start a background snapshot (202 and the
    state; 409 while one runs, or when snapshots are off). ``GET
    /admin/snapshot``: the state, with the last snapshot and the load at start."""

    def __init__(self, cache: Cache, settings: Settings, snapshotter: Snapshotter | None) -> None:
        super().__init__(cache, settings)
        self.snapshotter = snapshotter

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send_json(resp, SNAPSHOTS_OFF if self.snapshotter is None else self.snapshotter.status())

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.snapshotter is None:
            raise ApiError(
                409, "snapshots_off", "snapshots are off: set snapshot_path (CACHEGRID_SNAPSHOT_PATH) to turn them on"
            )
        try:
            state = self.snapshotter.start("request")
        except SnapshotRunning as error:
            raise ApiError(409, "snapshot_running", str(error), state=self.snapshotter.status()) from None
        send_json(resp, state, 202)


class Health(Resource):
    """``GET /health``: 200 healthy, or 503 when the sweeper thread died or the
    engine's lock cannot be taken within a second."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        problems = []
        if not self.cache.sweeper_alive:
            problems.append("the expiry sweeper is not running")
        if not self.cache.responsive(timeout=1.0):
            problems.append("the engine did not answer within 1 s")
        document: dict[str, Any] = {"status": "unhealthy" if problems else "healthy"}
        if problems:
            document["problems"] = problems
        else:
            stats = stats_document(self.cache, self.settings)
            document.update(
                uptime_seconds=stats["uptime_seconds"],
                cache_size=stats["current_size"],
                hit_ratio=stats["hit_ratio"],
                memory_usage_mb=stats["memory_usage_mb"],
            )
        document.update(last_check=round(time.time(), 3), node_id=self.settings.node_id)
        resp.set_header("Accept-Encoding", "gzip")  # the codings a write's body may have (compression.py)
        send_json(resp, document, 503 if problems else 200)


class Keys(Resource):
    """``GET /admin/keys?pattern=&limit=&cursor=``: one page of the engine's
    listing. A page may hold fewer than ``limit`` keys while ``cursor`` is
    not null (the engine examines a bounded number of keys per call): the
    caller continues with the cursor until it is null. A pattern that delete
    by pattern refuses (an unclosed ``[``, longer than a key) is refused here too.
    A token of the ACL confined to prefixes sees only their keys (acl.py)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        pattern = req.get_param("pattern") or None
        if pattern is not None:
            # The delete job's check (400 invalid_pattern): a listing of
            # "[abc" must not answer "no keys" where a delete of it is refused.
            check_pattern(pattern, self.cache.max_key_length)
        most = self.settings.max_keys_limit
        limit = int_param(req, "limit", min(DEFAULT_KEYS_LIMIT, most), 1, most)
        page = self.cache.keys(pattern, limit, req.get_param("cursor") or None)
        listed = zip(page.keys, page.sizes, strict=True)
        prefixes = scope(req)
        if prefixes is not None:  # a token confined to prefixes sees only their keys (fewer per page)
            listed = ((key, size) for key, size in listed if key.startswith(prefixes))  # type: ignore[assignment]
        keys, sizes = [], {}
        for key, (held, original) in listed:
            keys.append(key)
            sizes[key] = {"stored_bytes": held, "original_bytes": original}
        page_document = {"keys": keys, "count": len(keys), "cursor": page.cursor, "pattern": pattern}
        send_json(resp, page_document | {"sizes": sizes})
