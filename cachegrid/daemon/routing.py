"""Routing of keys that may hold any character, ``/`` included.

A key is one path segment: ``/cache/{key}``, and its subresources
``/cache/{key}/<action>`` (``ttl``, ``incr``, ``decr``, ``lease``, ``stale``). Clients
percent-encode the key (``a%2Fb`` for ``a/b``, ``%D0%BA%D0%BB%D1%8E%D1%87``
for ``ключ``). WSGI servers decode PATH_INFO before the application sees it,
so this router reads the undecoded path where the server provides it
(``RAW_URI`` from gunicorn's own workers, ``REQUEST_URI``), splits it on
``/`` and decodes the key itself: an encoded ``/`` is then part of the key,
whatever it is next to.

Where the server gives only the decoded path (meinheld), a ``/`` in a key
cannot be told from a separator; the key is then everything between
``/cache/`` and an optional last segment naming an action. Keys that
themselves end in ``/ttl``, ``/incr``, ``/decr``, ``/lease`` or ``/stale`` are therefore only
reachable as plain items where the server keeps the raw path.

The router learns everything from the routes the app adds: a route
``/cache/{key}/<action>`` adds an action, and a literal route under
``/cache/`` (``/cache/batch/get``) is reserved: that path is never a key.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any
from urllib.parse import unquote

import falcon
from falcon.routing import CompiledRouter

from .errors import ApiError

PREFIX = "/cache/"
KEY_FIELD = "{key}"
_PLACEHOLDER = "_"  # looks a key route up in falcon's own router


def raw_path(req: falcon.Request | None) -> str | None:
    """The request path as sent, percent-encoding intact, if the server kept it."""
    return None if req is None else raw_target_path(req.env)


def raw_target_path(env: dict[str, Any]) -> str | None:
    """``raw_path`` of a WSGI environment (fastpath.py reads it before falcon)."""
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
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
        self._actions: set[str] = set()  # the <action> of each /cache/{key}/<action> route
        self._reserved: set[str] = set()  # literal paths under /cache/, without the prefix
        # The routes of /cache/{key} and /cache/{key}/<action>, looked up once.
        self._key_routes: dict[str | None, Any] = {}

    def add_route(self, uri_template: str, resource: object, **kwargs: Any) -> None:
        if uri_template.startswith(PREFIX):
            rest = uri_template[len(PREFIX) :]
            if rest == KEY_FIELD:
                pass
            elif rest.startswith(KEY_FIELD + "/"):
                action = rest[len(KEY_FIELD) + 1 :]
                if "/" in action or "{" in action:
                    raise ValueError(f"{uri_template}: a key's subresource is one literal segment")
                self._actions.add(action)
            elif "{" in rest:
                raise ValueError(f"{uri_template}: the only field under {PREFIX} is {KEY_FIELD}")
            elif rest == _PLACEHOLDER:
                raise ValueError(f"{uri_template}: {PREFIX}{_PLACEHOLDER} is how this router finds the key routes")
            else:
                self._reserved.add(rest)
        super().add_route(uri_template, resource, **kwargs)
        self._key_routes.clear()

    @property
    def reserved(self) -> AbstractSet[str]:
        """The literal paths under /cache/ (without the prefix): never keys
        (the router's own set, read-only: it grows with the routes)."""
        return self._reserved

    def _key_route(self, action: str | None) -> Any:
        try:
            return self._key_routes[action]
        except KeyError:
            path = PREFIX + _PLACEHOLDER + (f"/{action}" if action else "")
            route = self._key_routes[action] = super().find(path)
            return route

    def find(
        self, uri: str, req: falcon.Request | None = None
    ) -> tuple[object, Any, dict[str, Any], str | None] | None:
        raw = raw_path(req)
        found = self.key_of(raw if raw is not None else uri, raw is not None)
        if found is not None:
            route = self._key_route(found[1])
            if route is not None:
                resource, method_map, _, template = route
                return resource, method_map, {"key": found[0]}, template
        return super().find(uri, req)

    def key_of(self, path: str, raw: bool) -> tuple[str, str | None] | None:
        """The key and the action (None: the item itself) that ``path`` names,
        None when it names no key; ``raw``: the path is as sent, its key still
        percent-encoded (ApiError when that is not UTF-8). find's rule, which
        fastpath.py reads too."""
        if not path.startswith(PREFIX) or path[len(PREFIX) :] in self._reserved:
            return None
        key = path[len(PREFIX) :]
        action = None
        if "/" in key:
            head, _, last = key.rpartition("/")
            if last in self._actions and head:
                key, action = head, last
        if raw and "%" in key:
            try:
                key = unquote(key, errors="strict")
            except UnicodeDecodeError:
                raise ApiError(400, "invalid_key", "the key is not valid percent-encoded UTF-8") from None
        return key, action
