"""The ``items`` family of the OpenAPI document: ``/cache/{key}`` (a value),
its TTL, its counters, and ``/cache`` (the whole collection), as the
``Items`` resource serves them (daemon/items.py).

What leases and binary values add to ``/cache/{key}`` is written beside
them (leases.py, binary.py of this package), over what is here.
"""

from __future__ import annotations

from typing import Any

from ..items import INT64_RANGE
from .parts import TTL_SCHEMA_MAXIMUM, Common, body, error, grouped, header, obj, ok, operation, pointer, query

GROUP = {"name": "items", "description": "Values under keys: read, write, delete, TTLs, counters."}

STORED = obj(
    ["key", "ttl", "created"],
    key={"type": "string"},
    ttl={"type": ["number", "null"]},
    created={"type": "boolean"},
)

TTL = {"type": "number", "exclusiveMinimum": 0, "maximum": TTL_SCHEMA_MAXIMUM}

_TAGS_PARAM = (
    "Tags for the entry, comma-separated (`a,b`), replacing those of the entry it replaces "
    "(empty: none); at most {settings.max_tags_per_entry}, each 1 to {settings.max_tag_length} "
    "characters of `A-Z a-z 0-9 _ . : @ -`."
)


_ACCEPT_ENCODING = header(
    "Accept-Encoding",
    "A value held compressed is sent as held (Content-Encoding: gzip) when this allows gzip, "
    "decompressed otherwise (also without the header).",
)


def _etag() -> dict[str, Any]:
    return {
        "ETag": {
            "required": True,
            "schema": {"type": "string", "pattern": '^"[^"]*"$'},
            "description": "The entry's version (a strong ETag).",
        }
    }


def paths(common: Common) -> dict[str, Any]:
    """The family's paths, each operation grouped ``items``."""
    links = key_links()
    counter = _counter(common)
    return grouped(
        {
            "/cache/{key}": _value(common, links),
            "/cache/{key}/ttl": _ttl(common, links),
            "/cache/{key}/incr": {"post": counter},
            "/cache/{key}/decr": {"post": counter | {"summary": "Subtract `by` from the integer under the key."}},
            "/cache": {
                "delete": operation(
                    "Clear the whole cache; needs ?confirm=true.",
                    {
                        "200": ok("How many entries were removed.", obj(["cleared"], cleared={"type": "integer"})),
                        "400": common.bad,
                    },
                    [query("confirm", {"type": "string", "enum": ["true"]}, "Must be `true`.", required=True)],
                )
            },
        },
        "items",
    )


def key_links() -> dict[str, Any]:
    """What a client may do next with the key a PUT stored: the same key,
    from the request's path (OpenAPI links; stateful testing follows them too)."""
    same_key = {"key": "$request.path.key"}
    links = {
        name: {"operationRef": pointer(path, method), "parameters": same_key, "description": text}
        for name, path, method, text in (
            ("GetValue", "/cache/{key}", "get", "Read the value back."),
            ("HeadValue", "/cache/{key}", "head", "Whether it exists, and its ETag."),
            ("DeleteKey", "/cache/{key}", "delete", "Delete it."),
            ("GetTTL", "/cache/{key}/ttl", "get", "Its TTL."),
            ("SetTTL", "/cache/{key}/ttl", "put", "Give it a new TTL."),
            ("Persist", "/cache/{key}/ttl", "delete", "Remove its TTL."),
            ("Increment", "/cache/{key}/incr", "post", "Add to it, if it is an integer."),
            ("Decrement", "/cache/{key}/decr", "post", "Subtract from it, if it is an integer."),
        )
    }
    links["Revalidate"] = {
        "operationRef": pointer("/cache/{key}", "get"),
        "parameters": same_key | {"header.If-None-Match": "$response.header.ETag"},
        "description": "Read it again: 304 while it is unchanged.",
    }
    links["CompareAndSet"] = {
        "operationRef": pointer("/cache/{key}", "put"),
        "parameters": same_key | {"header.If-Match": "$response.header.ETag"},
        "description": "Replace it only if it is still this version.",
    }
    return links


def _entry_headers() -> dict[str, Any]:
    """The headers of an answer that carries an entry (GET, HEAD, 304)."""
    return _etag() | {
        "X-Cache-TTL": {
            "schema": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{3}$"},
            "description": "Seconds left, when the key has a TTL.",
        },
        "X-Cache-Tags": {
            "schema": {"type": "string"},
            "description": "The entry's tags, comma-separated, when it has any.",
        },
        "Vary": {
            "schema": {"type": "string", "enum": ["Accept-Encoding"]},
            "description": "For a value held compressed (docs/compression.md): its answer depends on "
            "Accept-Encoding, and each representation has its own ETag (the gzip one ends in -gzip).",
        },
        "Content-Encoding": {
            "schema": {"type": "string", "enum": ["gzip"]},
            "description": "gzip: the value held compressed, sent as held, to a request that accepts gzip.",
        },
    }


def _tags_param_schema(common: Common) -> dict[str, Any]:
    settings = common.settings
    name = f"[A-Za-z0-9_.:@-]{{1,{settings.max_tag_length}}}"
    return {"type": "string", "pattern": f"^({name}(,{name}){{0,{settings.max_tags_per_entry - 1}}})?$"}


def _value(common: Common, links: dict[str, Any]) -> dict[str, Any]:
    """``/cache/{key}``: GET, HEAD, PUT and DELETE of a JSON value."""
    key, bad = common.key, common.bad
    peek = query(
        "peek",
        {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
        "`true`: only look. The read counts no hit or miss and leaves the key where it was in the "
        "eviction order (what the dashboard's key browser uses).",
    )
    entry_headers = _entry_headers()
    any_value = {"description": "Any JSON value."}
    stored = {"$ref": "#/components/schemas/Stored"}
    etag = _etag()
    written = etag | {
        "Accept-Encoding": {
            "schema": {"type": "string", "enum": ["gzip"]},
            "description": "The codings this server reads in a write's body (RFC 9110 12.5.3): clients send "
            "large values compressed only to a server that says so (docs/compression.md).",
        }
    }
    return {
        "get": operation(
            "The stored JSON value itself.",
            {
                "200": ok("The value, byte for byte as stored.", any_value, entry_headers),
                "304": {"description": "If-None-Match named the current ETag.", "headers": entry_headers},
                "400": bad,
                "404": common.missing,
            },
            [key, peek, header("If-None-Match", "ETags; 304 if one is current."), _ACCEPT_ENCODING],
        ),
        "head": operation(
            "Like GET, without the body.",
            {
                "200": {"description": "The key exists.", "headers": entry_headers},
                "304": {"description": "Not modified.", "headers": entry_headers},
                "400": {"description": "Invalid key."},
                "404": {"description": "No such key."},
            },
            [key, peek, header("If-None-Match", "ETags; 304 if one is current."), _ACCEPT_ENCODING],
        ),
        "put": operation(
            "Store a JSON value (its compact encoding).",
            {
                "201": ok("Created.", stored, written) | {"links": links},
                "200": ok("Replaced.", stored, written) | {"links": links},
                "400": bad,
                "412": error("A condition (If-Match / If-None-Match) did not hold."),
                "413": common.too_large,
                "507": error("The cache is full and its policy is noeviction."),
            },
            [
                key,
                query("ttl", TTL, "Expire after this many seconds."),
                query("tags", _tags_param_schema(common), _TAGS_PARAM.format(settings=common.settings)),
                header("If-None-Match", "`*`: store only if the key is absent."),
                header(
                    "If-Match", "`*`: only if present; an ETag (of either representation): only if still that version."
                ),
            ],
            body(
                any_value,
                "Any JSON value. With Content-Encoding: gzip the body is gzip-compressed: it is inflated "
                "(413 past max_value_size, 400 if it is not gzip) and read as any body; another coding is 415.",
            ),
        ),
        "delete": operation(
            "Delete the key (idempotent: 200 either way).",
            {
                "200": ok(
                    "Whether it existed.",
                    obj(["key", "deleted"], key={"type": "string"}, deleted={"type": "boolean"}),
                ),
                "400": bad,
            },
            [key],
        ),
    }


def _ttl(common: Common, links: dict[str, Any]) -> dict[str, Any]:
    """``/cache/{key}/ttl``: read, set (touch) and remove (persist) the TTL."""
    key, bad, missing = common.key, common.bad, common.missing
    answer = ok(
        "The key's TTL.",
        obj(
            ["key", "ttl"],
            key={"type": "string"},
            ttl={
                "type": ["number", "null"],
                "description": "Seconds left, rounded to milliseconds as X-Cache-TTL; null without a TTL.",
            },
        ),
    )
    touched_links = {name: links[name] for name in ("GetValue", "HeadValue", "GetTTL", "Persist")}
    return {
        "get": operation(
            "The key's TTL in seconds (null: no expiry).", {"200": answer, "400": bad, "404": missing}, [key]
        ),
        "put": operation(
            "Set a new TTL (touch).",
            {"200": answer | {"links": touched_links}, "400": bad, "404": missing},
            [key, query("ttl", TTL, "The new TTL in seconds.", required=True)],
        ),
        "delete": operation("Remove the TTL (persist).", {"200": answer, "400": bad, "404": missing}, [key]),
    }


def _counter(common: Common) -> dict[str, Any]:
    """``/cache/{key}/incr`` (``/decr`` is the same, its summary aside)."""
    lowest, highest = INT64_RANGE  # the counters' range, as items.py checks ``by``
    return operation(
        "Add `by` to the integer under the key (created at 0) and return it.",
        {
            "200": ok("The new value.", obj(["key", "value"], key={"type": "string"}, value={"type": "integer"})),
            "400": common.bad,
            "507": error("The cache is full and its policy is noeviction."),
        },
        [
            common.key,
            query("by", {"type": "integer", "minimum": lowest, "maximum": highest, "default": 1}, "How much to add."),
        ],
    )
