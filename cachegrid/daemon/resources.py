"""What every resource of the HTTP API shares: the base class and the answer.

The resources live by URL family: items.py (``/cache``, ``/cache/{key}`` and
its ``ttl``, ``incr`` and ``decr``), batch.py (``/cache/batch/...``), admin.py
(``/stats``, ``/health``, ``/admin/keys``), tags.py (``/tags/...`` and
``/admin/delete-pattern``), engine_load_test.py
(``/test/load``), metrics.py and openapi.py. Each is a thin adapter between
HTTP and the engine: read the request, call the engine once, write the
answer. Limits on keys, values and TTLs live in the engine, which raises;
errors.py maps what it raises to HTTP in one place. The daemon keeps only the
limits of HTTP itself (the size of a body, of a batch, of a page).
"""

from __future__ import annotations

from typing import Any

import falcon

from ..config import Settings
from ..engine import Cache, InvalidKey, check_key
from .body import encode


def send_json(resp: falcon.Response, body: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = encode(body)


class Resource:
    """A resource of the cache under the settings."""

    def __init__(self, cache: Cache, settings: Settings) -> None:
        self.cache = cache
        self.settings = settings
        self.max_key_length = cache.max_key_length  # the engine's limit, read once

    def check_key(self, key: str) -> None:
        """The engine's key check, for the calls that do not make it: reads
        and deletes (a write checks its key itself). Raises the engine's
        InvalidKey or KeyTooLong, naming the key."""
        if key.isascii() and 0 < len(key) <= self.max_key_length:
            return  # PERF: check_key's common case, without a call (every read)
        try:
            check_key(key, self.max_key_length)
        except InvalidKey as error:
            error.key = key  # type: ignore[attr-defined]
            raise
