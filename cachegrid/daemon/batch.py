"""``/cache/batch/set``, ``/get`` and ``/delete``: many keys in one request,
one resource for the family (falcon ``suffix=`` responders).

A batch is bounded by ``max_batch_size`` (a limit of the HTTP request, so it
is checked here); each key and value is checked by the engine (``set_many``
checks every item before it stores any: all or nothing) or, for reads and
deletes, which the engine does not check, by ``Resource.check_key``.
"""

from __future__ import annotations

import falcon

from .body import encode, json_body, ttl_number
from .errors import ApiError
from .resources import Resource, send_json


class Batch(Resource):
    """``POST /cache/batch/set`` ``{"items": {key: value, ...}, "ttl": N}``,
    ``POST /cache/batch/get`` and ``/delete`` ``{"keys": [...]}``."""

    def _check_count(self, count: int, what: str) -> None:
        limit = self.settings.max_batch_size
        if count > limit:
            raise ApiError(413, "batch_too_large", f"{count} {what}; the limit is {limit}", limit=limit)

    def on_post_set(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.settings.max_body_size)
        if not isinstance(body, dict) or not isinstance(body.get("items"), dict):
            raise ApiError(400, "invalid_batch", 'the body must be {"items": {"key": value, ...}, "ttl": seconds}')
        unknown = sorted(set(body) - {"items", "ttl", "tags"})
        if unknown:
            raise ApiError(400, "invalid_batch", f"unknown field {unknown[0]!r}; expected items, ttl and tags")
        tags = body.get("tags")
        if tags is not None and not isinstance(tags, list):
            raise ApiError(400, "invalid_batch", '"tags" must be a list of tag names')
        items = body["items"]
        self._check_count(len(items), "items")
        ttl = None if body.get("ttl") is None else ttl_number(body["ttl"])
        count = self.cache.set_many({key: encode(value) for key, value in items.items()}, ttl, tags=tags)
        send_json(resp, {"stored": count, "ttl": ttl})

    def _keys(self, req: falcon.Request) -> list[str]:
        """The keys of a ``{"keys": [...]}`` body, checked, duplicates dropped."""
        body = json_body(req, self.settings.max_body_size)
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys) or set(body) != {"keys"}:
            raise ApiError(400, "invalid_batch", 'the body must be {"keys": ["key", ...]}')
        self._check_count(len(keys), "keys")
        for key in keys:
            self.check_key(key)
        return list(dict.fromkeys(keys))

    def on_post_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        unique = self._keys(req)
        found = self.cache.get_many(unique)
        # The stored values are JSON already: splice them in without decoding.
        items = b",".join(encode(key) + b":" + value for key, value in found.items())
        missing = encode([key for key in unique if key not in found])
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b'{"items":{' + items + b'},"missing":' + missing + b"}"

    def on_post_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        send_json(resp, {"deleted": self.cache.delete_many(self._keys(req))})
