"""The falcon application: ``create_app`` builds it around a cache.

``create_app(settings)`` builds the engine from the settings and starts its
sweeper and the heap trimmer (heap.py; call it in the process that serves:
gunicorn loads the app in its worker, after the fork);
``create_app(settings, cache=...)`` serves a cache the caller owns.
Routes are added here and nowhere else; errors are mapped once (errors.py).
"""

from __future__ import annotations

import atexit
import hmac
import logging
from collections.abc import Callable
from typing import Any

import falcon

from .. import __version__
from ..config import Settings, load_settings
from ..engine import Cache, CacheError
from ..engine.snapshot import Snapshotter
from . import errors
from .acl import Acl, AclAuth, AclCollector
from .admin import Health, Keys, Snapshots, Stats
from .batch import Batch
from .cache_factory import build_cache
from .dashboard import DASHBOARD_PATH, STATIC_DIRECTORY, STATIC_PATH, Dashboard
from .engine_load_test import LoadTest
from .events import EventHub, Events
from .fastpath import FastPath
from .heap import HeapTrimmer, start_trimmer
from .items import ETags, Items
from .leases import LeaseLocks, StaleMarks
from .metrics import InflatedCollector, Metrics
from .openapi import DOCS_PATH, DOCS_STATIC, OPENAPI_PATH, SWAGGER_UI_DIRECTORY, Docs, OpenAPI
from .routing import KeyRouter
from .tags import DeletePattern, Tags

log = logging.getLogger("cachegrid.daemon")

# What loads without a token: the health check, and the pages a browser
# opens before it can send one (the dashboard, the API docs, the document
# they read and their files). They hold no data of the cache; every API call
# they make needs the token.
OPEN_PATHS = frozenset({"/health", DASHBOARD_PATH, DOCS_PATH, OPENAPI_PATH})
OPEN_PREFIXES = (STATIC_PATH + "/", DOCS_STATIC + "/")


class BearerAuth:
    """Every path but the open ones (OPEN_PATHS, OPEN_PREFIXES) needs
    ``Authorization: Bearer <token>`` when a token is configured; compared in
    constant time."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}".encode()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = req.path
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return
        given = (req.get_header("Authorization") or "").encode()
        if not hmac.compare_digest(given, self.expected):
            # Which of the two it was helps a person at /docs or the dashboard.
            message = (
                "the bearer token is not this server's"
                if given
                else "this server needs 'Authorization: Bearer <token>'"
            )
            raise errors.ApiError(
                401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="cachegrid"'}
            )


def load_acl(settings: Settings) -> Acl | None:
    """The ACL of ``acl_file`` (with ``auth_token`` as one more token), None
    without an ACL file; AclError (one line) for a file that cannot be used."""
    if settings.acl_file is None:
        return None
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    return Acl(settings.acl_file, token)


def start_snapshots(cache: Cache, settings: Settings, heartbeat: Callable[[], None] | None = None) -> Snapshotter:
    """Load the snapshot into the new cache (before anything is answered:
    ``heartbeat`` keeps the worker alive meanwhile), start the interval
    snapshots, and write the last one when the process exits."""
    assert settings.snapshot_path is not None
    snapshotter = Snapshotter(
        cache, settings.snapshot_path, settings.snapshot_interval, producer=f"cachegrid {__version__}"
    )
    snapshotter.load(heartbeat)
    snapshotter.start_interval()
    atexit.register(snapshotter.shutdown, settings.snapshot_on_shutdown)
    return snapshotter


def create_app(
    settings: Settings | None = None,
    cache: Cache | None = None,
    worker: str | None = None,
    *,
    snapshotter: Snapshotter | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> FastPath:
    """The WSGI app: fastpath.py's plain reads and writes, then falcon's. Without
    ``cache``, one is built (loaded from the snapshot when ``snapshot_path``
    is set) and its sweeper and heap trimmer started; ``snapshotter`` serves
    the snapshots of a cache the caller owns. ``worker`` names the worker
    kind serving it, for /stats (None: in process)."""
    settings = settings if settings is not None else load_settings()
    trimmer: HeapTrimmer | None = None  # a cache the caller owns: its memory is the caller's business
    if cache is None:
        cache = build_cache(settings)
        if settings.snapshot_path is not None:
            snapshotter = start_snapshots(cache, settings, heartbeat)
        cache.start()
        trimmer = start_trimmer(cache, settings.memory_trim_interval)
        atexit.register(trimmer.stop)  # before the snapshot at shutdown (atexit runs last first)
    acl = load_acl(settings)
    middleware: list[Any] = []
    if acl is not None:
        middleware.append(AclAuth(acl, OPEN_PATHS, OPEN_PREFIXES))
    elif settings.auth_token:
        middleware.append(BearerAuth(settings.auth_token.get_secret_value()))
    router = KeyRouter()
    app = falcon.App(middleware=middleware, router=router)
    app.req_options.auto_parse_qs_csv = False
    app.req_options.keep_blank_qs_values = True
    app.resp_options.secure_cookies_by_default = False

    items = Items(cache, settings, ETags())  # one resource per URL family
    app.add_route("/cache", items, suffix="collection")
    app.add_route("/cache/{key}", items)  # the key is extracted by KeyRouter
    app.add_route("/cache/{key}/ttl", items, suffix="ttl")
    app.add_route("/cache/{key}/incr", items, suffix="incr")
    app.add_route("/cache/{key}/decr", items, suffix="decr")
    app.add_route("/cache/{key}/lease", LeaseLocks(cache, settings))
    app.add_route("/cache/{key}/stale", StaleMarks(cache, settings))
    batch = Batch(cache, settings, items.inflated)
    app.add_route("/cache/batch/set", batch, suffix="set")
    app.add_route("/cache/batch/get", batch, suffix="get")
    app.add_route("/cache/batch/delete", batch, suffix="delete")
    app.add_route("/stats", Stats(cache, settings, snapshotter, worker, trimmer, items.inflated))
    app.add_route("/health", Health(cache, settings))
    app.add_route("/admin/keys", Keys(cache, settings))
    app.add_route("/test/load", LoadTest(settings))
    app.add_route("/admin/snapshot", Snapshots(cache, settings, snapshotter))
    tags = Tags(cache, settings)
    app.add_route("/tags/invalidate", tags, suffix="many")
    app.add_route("/tags/{tag}/invalidate", tags, suffix="one")
    delete_pattern = DeletePattern(cache, settings)
    app.add_route("/admin/delete-pattern", delete_pattern)
    app.add_route("/admin/delete-pattern/{job_id}", delete_pattern, suffix="job")
    threads = settings.threads - 1 if worker == "gthread" else None  # a thread per stream there: one left over
    app.add_route("/events", Events(EventHub(cache, settings, threads), settings))
    metrics = Metrics(cache, settings, snapshotter, trimmer)
    metrics.registry.register(InflatedCollector(items.inflated))
    if acl is not None:
        metrics.registry.register(AclCollector(acl))
    app.add_route("/metrics", metrics)
    app.add_route(OPENAPI_PATH, OpenAPI(settings))
    app.add_route(DOCS_PATH, Docs())
    app.add_static_route(DOCS_STATIC, SWAGGER_UI_DIRECTORY)
    app.add_route(DASHBOARD_PATH, Dashboard(settings, acl))
    app.add_static_route(STATIC_PATH, STATIC_DIRECTORY)

    app.add_error_handler(Exception, errors.handle_unexpected)
    app.add_error_handler(CacheError, errors.handle_engine_error)
    app.set_error_serializer(errors.serialize)
    return FastPath(app, router, items, settings, acl)
