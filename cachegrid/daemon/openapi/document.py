"""The OpenAPI 3.1 document of the HTTP API, assembled from its families.

Each URL family is written in a module of its own, as the resources are
(daemon/items.py, batch.py, tags.py, admin.py, events.py): items.py, batch.py,
tags.py, admin.py and events.py here give their paths and the group (OpenAPI's "tag") /docs
shows them under. leases.py and binary.py then write what leases, stale
values and binary values add to the operations of the items and the
batches, and the two paths of leases. parts.py has the builders they all
use and the pieces they share (``Common``).

The limits the document states come from where they are defined: the
engine's (``MAX_TTL``; the counters' range as items.py checks it), the
settings' (every ``max_*``), the load test's default.
"""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...config import Settings
from . import admin, batch, binary, events, items, leases, tags
from .parts import Common, obj


def build_document(settings: Settings) -> dict[str, Any]:
    """The document for a server with ``settings``."""
    common = Common.of(settings)
    paths = items.paths(common) | batch.paths(common) | admin.paths(common) | tags.paths(common) | events.paths(common)
    leases.amend(paths, common)
    binary.amend(paths, common)
    return {
        "openapi": "3.1.0",
        "tags": [items.GROUP, batch.GROUP, tags.GROUP, admin.GROUP, events.GROUP],
        "info": {
            "title": "CacheGrid",
            "version": __version__,
            "description": "An in-memory key/value cache with an HTTP/JSON API. The web dashboard is at "
            "[/dashboard](/dashboard). With a token configured, use Authorize (bearer) before "
            '"Try it out".',
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _error_schema(), "Stored": items.STORED, "Health": admin.HEALTH},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}] if settings.auth_token or settings.acl_file else [],
    }


def _error_schema() -> dict[str, Any]:
    """The body of every error answer."""
    return obj(
        ["error", "message"],
        error={"type": "string"},
        message={"type": "string"},
        limit={"type": "number"},
        key={"type": "string"},
        lease={"type": "string", "enum": ["granted", "held"]},
        retry_after={"type": "number", "minimum": 0},
    )
