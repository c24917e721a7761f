"""``/cache/batch/set``, ``/get`` and ``/delete``: many keys in one request,
one resource for the family (falcon ``suffix=`` responders).

A batch is bounded by ``max_batch_size`` (a limit of the HTTP request, so it
is checked here); each key and value is checked by the engine (``set_many``
checks every item before it stores any: all or nothing) or, for reads and
deletes, which the engine does not check, by ``Resource.check_key``.

Binary values travel as base64 in fields of their own, so that the JSON
format is exactly what it was for JSON values, and no JSON value (say an
object ``{"base64": ...}``) can be mistaken for bytes:

- set: ``{"items": {key: json value}, "items_base64": {key: "<base64>"},
  "ttl": N}``, either map may be left out or empty; a key in both is 400
  ``invalid_batch``, a string that is not base64 (RFC 4648, with padding)
  400 ``invalid_base64`` naming the key. Both maps are one batch: all or
  nothing, counted together against ``max_batch_size``.
- get: the found JSON values under ``"items"`` as before; the found binary
  values under ``"items_base64"`` (only when there is one), base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import falcon

from ..config import Settings
from ..engine import Cache, Entry, WriteOptions
from .acl import check_keys
from .body import encode, encode_exact, json_body, parse_json, ttl_number
from .compression import GZIP, Compressor, InflatedValues, accepts_gzip, gzip_bytes, read_coded_body
from .errors import ApiError
from .leases import stale_field
from .resources import Resource, send_json


class Batch(Resource):
    """``POST /cache/batch/set`` ``{"items": {key: value, ...}, "ttl": N}``,
    ``POST /cache/batch/get`` and ``/delete`` ``{"keys": [...]}``."""

    def _check_count(self, count: int, what: str) -> None:
        limit = self.settings.max_batch_size
        if count > limit:
            raise ApiError(413, "batch_too_large", f"{count} {what}; the limit is {limit}", limit=limit)

    def __init__(self, cache: Cache, settings: Settings, inflated: InflatedValues) -> None:
        super().__init__(cache, settings)
        self.compressor = Compressor(settings)
        self.inflated = inflated  # the identity reads' kept inflations, shared with Items (compression.py)

    def _body(self, req: falcon.Request) -> Any:
        """The JSON body, inflated first when it comes gzip-compressed (at most
        to ``max_body_size``: a batch's limit is the body's, compression.py)."""
        if "HTTP_CONTENT_ENCODING" not in req.env:
            return json_body(req, self.settings.max_body_size)
        body, _ = read_coded_body(req, self.settings, self.settings.max_body_size)
        if not body:
            raise ApiError(400, "empty_body", "the request needs a JSON body")
        return parse_json(body)

    def on_post_set(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = self._body(req)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("items", {}), dict)
            or not isinstance(body.get("items_base64", {}), dict)
            or not ("items" in body or "items_base64" in body)
        ):
            raise ApiError(
                400,
                "invalid_batch",
                'the body must be {"items": {"key": value, ...}, '
                '"items_base64": {"key": "<base64>", ...}, "ttl": seconds, '
                '"tags": [...]}',
            )
        unknown = sorted(set(body) - {"items", "items_base64", "ttl", "stale", "tags"})
        if unknown:
            raise ApiError(
                400, "invalid_batch", f"unknown field {unknown[0]!r}; expected items, items_base64, ttl, stale and tags"
            )
        tags = body.get("tags")
        if tags is not None and not isinstance(tags, list):
            raise ApiError(400, "invalid_batch", '"tags" must be a list of tag names')
        items = body.get("items", {})
        binary = body.get("items_base64", {})
        self._check_count(len(items) + len(binary), "items")
        check_keys(req, [*items, *binary])  # acl.py: one key outside the token's prefixes refuses the batch
        ttl = None if body.get("ttl") is None else ttl_number(body["ttl"])
        values = {key: encode_exact(value) for key, value in items.items()}
        seconds = None
        stale = body.get("stale")
        if stale is not None:
            if stale.__class__ not in (int, float):
                raise ApiError(400, "invalid_stale", f"stale must be a number of seconds, not {stale!r}")
            try:
                seconds = float(stale)
            except OverflowError:  # an integer beyond any float: over the limit
                seconds = float("inf")
            seconds = stale_field(seconds, self.settings, ttl, repr(stale))
        if binary:
            both = next((key for key in binary if key in values), None)
            if both is not None:
                raise ApiError(400, "invalid_batch", f"the key {both!r} is in both items and items_base64", key=both)
            values.update((key, _decode_base64(key, text)) for key, text in binary.items())
        compressed = self._compress(values)
        options = WriteOptions(stale=seconds, tags=tags, binary_keys=binary.keys(), compressed=compressed)
        count = self.cache.write_many(values, ttl, options)
        resp.set_header("Accept-Encoding", GZIP)  # compressed uploads are read (compression.ACCEPTS_CODINGS)
        send_json(resp, {"stored": count, "ttl": ttl})

    def _compress(self, values: dict[str, bytes]) -> dict[str, int] | None:
        """Hold the values at or over the threshold compressed when that saves
        enough (in ``values``, in place); their original sizes by key."""
        compress_from = self.compressor.compress_from
        compressed = None
        for key, value in values.items():
            if len(value) >= compress_from:
                held = self.compressor.pack(value)
                if held is not None:
                    if compressed is None:
                        compressed = {}
                    compressed[key] = len(value)
                    values[key] = held
        return compressed

    def _keys(self, req: falcon.Request) -> list[str]:
        """The keys of a ``{"keys": [...]}`` body, checked, duplicates dropped."""
        body = self._body(req)
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys) or set(body) != {"keys"}:
            raise ApiError(400, "invalid_batch", 'the body must be {"keys": ["key", ...]}')
        self._check_count(len(keys), "keys")
        for key in keys:
            self.check_key(key)
        check_keys(req, keys)  # acl.py: one key outside the token's prefixes refuses the batch
        return list(dict.fromkeys(keys))

    def on_post_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        unique = self._keys(req)
        found = self.cache.get_many_entries(unique)
        # The stored JSON values are JSON already: splice them in without decoding.
        plain = self._plain
        items = b",".join(encode(key) + b":" + plain(key, entry) for key, entry in found.items() if not entry.binary)
        missing = encode([key for key in unique if key not in found])
        binary = {
            key: base64.b64encode(plain(key, entry)).decode("ascii") for key, entry in found.items() if entry.binary
        }
        more = b',"items_base64":' + encode(binary) if binary else b""
        resp.content_type = falcon.MEDIA_JSON
        answer = b'{"items":{' + items + b"}" + more + b',"missing":' + missing + b"}"
        if self.compressor.threshold:  # an answer that may be compressed on the fly
            resp.set_header("Vary", "Accept-Encoding")
            if len(answer) >= self.compressor.threshold and accepts_gzip(req.get_header("Accept-Encoding")):
                resp.set_header("Content-Encoding", GZIP)
                answer = gzip_bytes(answer)
        resp.data = answer

    def _plain(self, key: str, entry: Entry) -> bytes:
        """The value of ``entry`` as the client sees it: inflated when held
        compressed, through the kept inflations as a single identity read is."""
        if entry.original_size is None:
            return entry.value
        return self.inflated.value(key, entry.value, entry.original_size)

    def on_post_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        keys = self._keys(req)
        deleted = self.cache.delete_many(keys)
        self.inflated.drop(*keys)  # their inflations' memory, at once, as a single DELETE frees its own
        send_json(resp, {"deleted": deleted})


def _decode_base64(key: str, text: Any) -> bytes:
    """The bytes of one ``items_base64`` value; 400 naming the key otherwise."""
    if not isinstance(text, str):
        raise ApiError(
            400,
            "invalid_base64",
            f"the value of {key!r} in items_base64 must be a base64 string, not {type(text).__name__}",
            key=key,
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(
            400, "invalid_base64", f"the value of {key!r} in items_base64 is not base64: {error}", key=key
        ) from None
