"""Routing of keys that may hold any character, ``/`` included.

A key is one path segment: ``/cache/{key}``, ``/cache/{key}/ttl``,
``/cache/{key}/incr``, ``/cache/{key}/decr``. Clients percent-encode the key
(``a%2Fb`` for ``a/b``, ``%D0%BA%D0%BB%D1%8E%D1%87`` for ``ключ``). WSGI
servers decode PATH_INFO before the application sees it, so this router reads
the undecoded path where the server provides it (``RAW_URI`` from gunicorn's
own workers, ``REQUEST_URI``), splits it on ``/`` and decodes the key itself:
an encoded ``/`` is then part of the key, whatever it is next to.

Where the server gives only the decoded path (meinheld), a ``/`` in a key
cannot be told from a separator; the key is then everything between
``/cache/`` and an optional last segment ``ttl``, ``incr`` or ``decr``. Keys
that themselves end in ``/ttl``, ``/incr`` or ``/decr`` are therefore only
reachable as plain items where the server keeps the raw path.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import falcon
from falcon.routing import CompiledRouter

from .errors import ApiError

PREFIX = "/cache/"
ACTIONS = frozenset({"ttl", "incr", "decr"})
_RESERVED = ("batch/get", "batch/set", "batch/delete")  # literal routes under /cache/


def raw_path(req: falcon.Request | None) -> str | None:
    """The request path as sent, percent-encoding intact, if the server kept it."""
    if req is None:
        return None
    raw = req.env.get("RAW_URI") or req.env.get("REQUEST_URI")
    if not raw:
        return None
    if not raw.startswith("/"):  # absolute form: http://host/path
        slash = raw.find("/", raw.find("//") + 2)
        raw = raw[slash:] if slash >= 0 else "/"
    if "?" in raw or "#" in raw:
        raw = raw.partition("?")[0].partition("#")[0]
    return raw


class KeyRouter(CompiledRouter):
    """falcon's router, plus key extraction for the /cache/{key} routes."""

    def __init__(self) -> None:
        super().__init__()
        # The routes of /cache/_ and /cache/_/<action>, looked up once.
        self._key_routes: dict[str | None, Any] = {}

    def _key_route(self, action: str | None) -> Any:
        try:
            return self._key_routes[action]
        except KeyError:
            route = self._key_routes[action] = super().find(f"{PREFIX}_/{action}" if action else f"{PREFIX}_")
            return route

    def find(self, uri: str, req: falcon.Request | None = None) -> tuple[object, Any, dict[str, Any], str | None] | None:
        raw = raw_path(req)
        path = raw if raw is not None else uri
        if path.startswith(PREFIX) and path[len(PREFIX):] not in _RESERVED:
            key = path[len(PREFIX):]
            action = None
            if "/" in key:
                head, _, last = key.rpartition("/")
                if last in ACTIONS and head:
                    key, action = head, last
            if raw is not None and "%" in key:
                try:
                    key = unquote(key, errors="strict")
                except UnicodeDecodeError:
                    raise ApiError(400, "invalid_key", "the key is not valid percent-encoded UTF-8") from None
            route = self._key_route(action)
            if route is not None:
                resource, method_map, _, template = route
                return resource, method_map, {"key": key}, template
        return super().find(uri, req)
