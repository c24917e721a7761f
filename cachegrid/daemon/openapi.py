"""``GET /openapi.json`` and ``GET /docs``: the API described, and browsable.

The document is written out here by hand, next to nothing else, and is kept
honest by a fuzz test (schemathesis) that checks every answer of the real app
against it, and by a validator of OpenAPI 3.1 (tests/daemon/test_pages.py).

``/docs`` is Swagger UI 5 (it reads OpenAPI 3.1), its files served from the
installed ``drf-spectacular-sidecar`` package under ``/docs/static``: that
package republishes the current ``swagger-ui-dist`` build every month and
carries nothing else we use (its Django app is never imported: the files are
found without importing the package). The page is started by our own
``static/docs.js``; nothing is fetched from elsewhere, so it works offline.
With a token configured the page loads without one; its Authorize button
takes the token (the document's ``bearer`` scheme) for "Try it out".
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import falcon

from .. import __version__
from ..config import Settings
from ..engine.pattern_delete import CLOSED_SETS
from .dashboard import STATIC_PATH

JSON = "application/json"
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
DOCS_STATIC = "/docs/static"


def _swagger_ui_directory() -> str:
    """Where the installed ``swagger-ui-dist`` files are. Found without
    importing their package (its ``__init__`` imports Django)."""
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("drf-spectacular-sidecar is not installed: /docs needs its Swagger UI files")
    return str(
        Path(list(spec.submodule_search_locations)[0]) / "static" / "drf_spectacular_sidecar" / "swagger-ui-dist"
    )


SWAGGER_UI_DIRECTORY = _swagger_ui_directory()


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {JSON: {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _pointer(path: str, method: str) -> str:
    """A JSON pointer to an operation of this document (for links)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": description}


def _operation(
    summary: str,
    responses: dict[str, Any],
    parameters: list[Any] | None = None,
    body: dict[str, Any] | None = None,
    authenticated: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    if authenticated:
        operation["responses"]["401"] = _error("A bearer token is configured and was not sent, or is wrong.")
    else:
        operation["security"] = []
    operation["responses"]["500"] = _error("The server failed; see its log.")
    return operation


_TAGS_PARAM = (
    "Tags for the entry, comma-separated (`a,b`), replacing those of the entry it replaces "
    "(empty: none); at most {settings.max_tags_per_entry}, each 1 to {settings.max_tag_length} "
    "characters of `A-Z a-z 0-9 _ . : @ -`."
)


def _tags_param_schema(settings: Settings) -> dict[str, Any]:
    name = f"[A-Za-z0-9_.:@-]{{1,{settings.max_tag_length}}}"
    return {"type": "string", "pattern": f"^({name}(,{name}){{0,{settings.max_tags_per_entry - 1}}})?$"}


def _tag_list(settings: Settings, most: int) -> dict[str, Any]:
    return {
        "type": "array",
        "maxItems": most,
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": settings.max_tag_length,
            "pattern": "^[A-Za-z0-9_.:@-]+$",
        },
    }


def _tag_paths(settings: Settings, bad: dict[str, Any]) -> dict[str, Any]:
    """Tag invalidation and delete by pattern (daemon/tags.py, docs/tags.md)."""
    tag = {
        "name": "tag",
        "in": "path",
        "required": True,
        "description": "The tag's name.",
        "schema": _tag_list(settings, 1)["items"],
    }
    invalidated = _obj(
        ["tags", "in_use"],
        tags={"type": "array", "items": {"type": "string"}},
        invalidated={"type": "array", "items": {"type": "string"}},
        in_use={"type": "integer", "description": "How many of the tags had entries."},
    )
    job = _obj(
        ["id", "pattern", "done", "deleted", "slices", "longest_lock_hold_ms"],
        id={"type": "string"},
        pattern={"type": "string"},
        done={"type": "boolean"},
        deleted={"type": "integer"},
        slices={"type": "integer"},
        longest_lock_hold_ms={"type": "number"},
        started_at={"type": "number"},
        finished_at={"type": ["number", "null"]},
        error={"type": ["string", "null"]},
    )
    family = ["tags"]
    return {
        "/tags/{tag}/invalidate": {
            "post": _operation(
                "Make every entry carrying the tag a miss (O(1): its generation is bumped).",
                {"200": _ok("Invalidated.", invalidated), "400": bad},
                [tag],
            )
            | {"tags": family}
        },
        "/tags/invalidate": {
            "post": _operation(
                "Invalidate several tags at once.",
                {
                    "200": _ok("Invalidated.", invalidated),
                    "400": bad,
                    "413": _error(f"More than {settings.max_batch_size} tags."),
                },
                body=_body(
                    _obj(["tags"], tags=_tag_list(settings, settings.max_batch_size)) | {"additionalProperties": False},
                    "The tags.",
                ),
            )
            | {"tags": family}
        },
        "/admin/delete-pattern": {
            "post": _operation(
                "Delete every key matching a prefix or glob, page by page in the background.",
                {
                    "202": _ok("Started: the job (poll GET /admin/delete-pattern/{id}).", job),
                    "400": bad,
                    "429": _error(f"{settings.max_delete_jobs} jobs are running already."),
                },
                body=_body(
                    _obj(
                        ["pattern"],
                        pattern={
                            "type": "string",
                            "minLength": 1,
                            "pattern": CLOSED_SETS,
                            "maxLength": settings.max_key_length,
                        },
                    )
                    | {"additionalProperties": False},
                    "A prefix (`user:`), or a glob with `*`, `?` or `[...]` (`user:*:cart`).",
                ),
            )
            | {"tags": family}
        },
        "/admin/delete-pattern/{job_id}": {
            "get": _operation(
                "A delete job's progress.",
                {"200": _ok("The job.", job), "404": _error("No such job (or a forgotten old one).")},
                [
                    {
                        "name": "job_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "From the POST's answer.",
                    }
                ],
            )
            | {"tags": family}
        },
    }


def build_document(settings: Settings) -> dict[str, Any]:
    # A key is 1 to max_key_length bytes of UTF-8. JSON Schema counts
    # characters, not bytes: maxLength is the bound it can state (a character
    # is at least a byte); the byte limit is in the descriptions.
    key_string = {"type": "string", "minLength": 1, "maxLength": settings.max_key_length}
    key = {
        "name": "key",
        "in": "path",
        "required": True,
        "schema": key_string,
        "description": f"The key, percent-encoded (any characters, `/` as `%2F`; at most "
        f"{settings.max_key_length} bytes of UTF-8).",
    }
    peek = _query(
        "peek",
        {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
        "`true`: only look. The read counts no hit or miss and leaves the key where it was in the "
        "eviction order (what the dashboard's key browser uses).",
    )
    ttl = {"type": "number", "exclusiveMinimum": 0, "maximum": 1e10}
    etag = {
        "ETag": {
            "required": True,
            "schema": {"type": "string", "pattern": '^"[^"]*"$'},
            "description": "The entry's version (a strong ETag).",
        }
    }
    entry_headers = etag | {
        "X-Cache-TTL": {
            "schema": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{3}$"},
            "description": "Seconds left, when the key has a TTL.",
        }
    }
    entry_headers["X-Cache-Tags"] = {
        "schema": {"type": "string"},
        "description": "The entry's tags, comma-separated, when it has any.",
    }
    # What a client may do next with the key a PUT stored: the same key, from
    # the request's path (OpenAPI links; stateful testing follows them too).
    same_key = {"key": "$request.path.key"}
    key_links = {
        name: {"operationRef": _pointer(path, method), "parameters": same_key, "description": text}
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
    key_links["Revalidate"] = {
        "operationRef": _pointer("/cache/{key}", "get"),
        "parameters": same_key | {"header.If-None-Match": "$response.header.ETag"},
        "description": "Read it again: 304 while it is unchanged.",
    }
    key_links["CompareAndSet"] = {
        "operationRef": _pointer("/cache/{key}", "put"),
        "parameters": same_key | {"header.If-Match": "$response.header.ETag"},
        "description": "Replace it only if it is still this version.",
    }
    touched_links = {name: key_links[name] for name in ("GetValue", "HeadValue", "GetTTL", "Persist")}
    bad = _error("Invalid input: the key, the TTL, a parameter or the body (see `error`).")
    too_large = _error("A body, value or batch over its limit (`limit` says which).")
    missing = _error("No such key (or it expired).")
    any_value = {"description": "Any JSON value."}
    ttl_answer = _ok("The key's TTL.", _obj(["key", "ttl"], key={"type": "string"}, ttl={"type": ["number", "null"]}))
    counter = _operation(
        "Add `by` to the integer under the key (created at 0) and return it.",
        {
            "200": _ok("The new value.", _obj(["key", "value"], key={"type": "string"}, value={"type": "integer"})),
            "400": bad,
            "507": _error("The cache is full and its policy is noeviction."),
        },
        [
            key,
            _query(
                "by", {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1, "default": 1}, "How much to add."
            ),
        ],
    )
    batch_keys = _body(
        _obj(["keys"], keys={"type": "array", "items": key_string, "maxItems": settings.max_batch_size})
        | {"additionalProperties": False},
        f"At most {settings.max_batch_size} keys.",
    )
    stats_schema = {
        "type": "object",
        "required": [
            "hits",
            "misses",
            "sets",
            "deletes",
            "evictions",
            "current_size",
            "max_size",
            "hit_ratio",
            "memory_usage_mb",
            "uptime_seconds",
        ],
        "properties": {
            name: {"type": "integer"}
            for name in (
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
        }
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
    last_snapshot = _obj(
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
    snapshot_state = _obj(
        ["enabled", "running"],
        enabled={"type": "boolean"},
        path={"type": ["string", "null"]},
        running={"type": "boolean"},
        running_since={"type": ["number", "null"]},
        interval_seconds={"type": "number"},
        written={"type": "integer"},
        failed={"type": "integer"},
        last=last_snapshot,
        loaded=_obj(
            ["result"],
            result={"type": "string", "enum": ["none", "ok", "failed"]},
            entries={"type": "integer"},
            expired={"type": "integer"},
            left_out={"type": "integer"},
            duration_seconds={"type": "number"},
            error={"type": ["string", "null"]},
            moved_to={"type": ["string", "null"]},
        ),
    )
    paths: dict[str, Any] = {
        "/cache/{key}": {
            "get": _operation(
                "The stored JSON value itself.",
                {
                    "200": _ok("The value, byte for byte as stored.", any_value, entry_headers),
                    "304": {"description": "If-None-Match named the current ETag.", "headers": entry_headers},
                    "400": bad,
                    "404": missing,
                },
                [key, peek, _header("If-None-Match", "ETags; 304 if one is current.")],
            ),
            "head": _operation(
                "Like GET, without the body.",
                {
                    "200": {"description": "The key exists.", "headers": entry_headers},
                    "304": {"description": "Not modified.", "headers": entry_headers},
                    "400": {"description": "Invalid key."},
                    "404": {"description": "No such key."},
                },
                [key, peek, _header("If-None-Match", "ETags; 304 if one is current.")],
            ),
            "put": _operation(
                "Store a JSON value (its compact encoding).",
                {
                    "201": _ok("Created.", {"$ref": "#/components/schemas/Stored"}, etag) | {"links": key_links},
                    "200": _ok("Replaced.", {"$ref": "#/components/schemas/Stored"}, etag) | {"links": key_links},
                    "400": bad,
                    "412": _error("A condition (If-Match / If-None-Match) did not hold."),
                    "413": too_large,
                    "507": _error("The cache is full and its policy is noeviction."),
                },
                [
                    key,
                    _query("ttl", ttl, "Expire after this many seconds."),
                    _query("tags", _tags_param_schema(settings), _TAGS_PARAM.format(settings=settings)),
                    _header("If-None-Match", "`*`: store only if the key is absent."),
                    _header("If-Match", "`*`: only if present; an ETag: only if still that version."),
                ],
                _body(any_value, "Any JSON value."),
            ),
            "delete": _operation(
                "Delete the key (idempotent: 200 either way).",
                {
                    "200": _ok(
                        "Whether it existed.",
                        _obj(["key", "deleted"], key={"type": "string"}, deleted={"type": "boolean"}),
                    ),
                    "400": bad,
                },
                [key],
            ),
        },
        "/cache/{key}/ttl": {
            "get": _operation(
                "The key's TTL in seconds (null: no expiry).", {"200": ttl_answer, "400": bad, "404": missing}, [key]
            ),
            "put": _operation(
                "Set a new TTL (touch).",
                {"200": ttl_answer | {"links": touched_links}, "400": bad, "404": missing},
                [key, _query("ttl", ttl, "The new TTL in seconds.", required=True)],
            ),
            "delete": _operation("Remove the TTL (persist).", {"200": ttl_answer, "400": bad, "404": missing}, [key]),
        },
        "/cache/{key}/incr": {"post": counter},
        "/cache/{key}/decr": {"post": counter | {"summary": "Subtract `by` from the integer under the key."}},
        "/cache": {
            "delete": _operation(
                "Clear the whole cache; needs ?confirm=true.",
                {
                    "200": _ok("How many entries were removed.", _obj(["cleared"], cleared={"type": "integer"})),
                    "400": bad,
                },
                [_query("confirm", {"type": "string", "enum": ["true"]}, "Must be `true`.", required=True)],
            )
        },
        "/cache/batch/set": {
            "post": _operation(
                "Store many items, all or nothing.",
                {
                    "200": _ok(
                        "How many were stored.",
                        _obj(["stored", "ttl"], stored={"type": "integer"}, ttl={"type": ["number", "null"]}),
                    ),
                    "400": bad,
                    "413": too_large,
                    "507": _error("The cache is full and its policy is noeviction."),
                },
                body=_body(
                    _obj(
                        ["items"],
                        items={
                            "type": "object",
                            "additionalProperties": True,
                            "propertyNames": key_string,
                            "maxProperties": settings.max_batch_size,
                        },
                        ttl={"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1e10},
                        stale={
                            "type": ["number", "null"],
                            "minimum": 0,
                            "maximum": settings.max_stale_time,
                            "description": "Seconds past the TTL every item may still be served stale, "
                            "as `stale` of a PUT (no effect without `ttl`).",
                        },
                        tags=_tag_list(settings, settings.max_tags_per_entry) | {"type": ["array", "null"]},
                    )
                    | {"additionalProperties": False},
                    f"At most {settings.max_batch_size} items.",
                ),
            )
        },
        "/cache/batch/get": {
            "post": _operation(
                "Read many keys.",
                {
                    "200": _ok(
                        "The values found, and the keys not found.",
                        _obj(
                            ["items", "missing"],
                            items={"type": "object", "additionalProperties": True},
                            missing={"type": "array", "items": {"type": "string"}},
                        ),
                    ),
                    "400": bad,
                    "413": too_large,
                },
                body=batch_keys,
            )
        },
        "/cache/batch/delete": {
            "post": _operation(
                "Delete many keys (idempotent: absent keys are not an error).",
                {
                    "200": _ok(
                        "How many of the keys existed and were deleted.",
                        _obj(["deleted"], deleted={"type": "integer", "minimum": 0}),
                    ),
                    "400": bad,
                    "413": too_large,
                },
                body=batch_keys,
            )
        },
        "/stats": {"get": _operation("Every counter of the engine.", {"200": _ok("Statistics.", stats_schema)})},
        "/health": {
            "get": _operation(
                "Whether this node works.",
                {
                    "200": _ok("Healthy.", {"$ref": "#/components/schemas/Health"}),
                    "503": _ok("Unhealthy.", {"$ref": "#/components/schemas/Health"}),
                },
                authenticated=False,
            )
        },
        "/admin/keys": {
            "get": _operation(
                "A page of live keys matching a prefix or glob.",
                {
                    "200": _ok(
                        "Keys, and the cursor of the next page (null at the end). A page may hold fewer "
                        "than `limit` keys while the cursor is not null: continue until it is null.",
                        _obj(
                            ["keys", "count", "cursor"],
                            keys={"type": "array", "items": {"type": "string"}},
                            count={"type": "integer"},
                            cursor={"type": ["string", "null"]},
                            pattern={"type": ["string", "null"]},
                        ),
                    ),
                    "400": bad,
                },
                [
                    _query("pattern", {"type": "string"}, "A prefix, or a glob with `*`, `?` or `[...]`."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": settings.max_keys_limit},
                        "Page size (default 100).",
                    ),
                    _query("cursor", {"type": "string"}, "From the previous page."),
                ],
            )
        },
        "/admin/snapshot": {
            "get": _operation(
                "The snapshot state: the last snapshot written and the load at start.",
                {"200": _ok("The state (`enabled` false when snapshot_path is not set).", snapshot_state)},
            ),
            "post": _operation(
                "Start a background snapshot now (the file is written by a forked copy while requests go on).",
                {
                    "202": _ok("Started; the state, with `running` true.", snapshot_state),
                    "409": _error(
                        "A snapshot is running already (`snapshot_running`), or snapshots are off (`snapshots_off`)."
                    ),
                },
            ),
        },
        "/test/load": {
            "post": _operation(
                "Run a load test on a scratch engine with the same policy and limits.",
                {
                    "200": _ok("Throughput and latency.", {"type": "object"}),
                    "400": _error("A bad parameter, or num_operations over loadtest_max_operations (`limit`)."),
                    "403": _error("The load test is switched off."),
                },
                [
                    _query(
                        "num_operations",
                        {"type": "integer", "minimum": 1, "maximum": settings.loadtest_max_operations},
                        f"Default 1000, at most {settings.loadtest_max_operations} (the run holds the server).",
                    ),
                    _query(
                        "operation_type",
                        {"type": "string", "enum": ["get", "set", "mixed", ""]},
                        "Default (and when empty) mixed.",
                    ),
                ],
            )
        },
        "/metrics": {
            "get": _operation(
                "Statistics in Prometheus' text format.",
                {
                    "200": {
                        "description": "Prometheus exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
    }
    paths.update(_tag_paths(settings, bad))
    _add_leases(paths, settings, key, bad, missing)
    _binary_values(paths, key_string, settings)
    # Grouped by URL family in /docs, as the resources are (items.py, batch.py, admin.py).
    for path, operations in paths.items():
        family = "batch" if path.startswith("/cache/batch/") else "items" if path.startswith("/cache") else "admin"
        for operation in operations.values():
            operation.setdefault("tags", [family])
    return {
        "openapi": "3.1.0",
        "tags": [
            {"name": "items", "description": "Values under keys: read, write, delete, TTLs, counters."},
            {"name": "batch", "description": "Many keys in one request."},
            {"name": "tags", "description": "Groups of entries made a miss at once; delete by pattern."},
            {"name": "admin", "description": "Statistics, health, key listing, metrics, the load test."},
        ],
        "info": {
            "title": "CacheGrid",
            "version": __version__,
            "description": "An in-memory key/value cache with an HTTP/JSON API. The web dashboard is at "
            "[/dashboard](/dashboard). With a token configured, use Authorize (bearer) before "
            '"Try it out".',
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": _obj(
                    ["error", "message"],
                    error={"type": "string"},
                    message={"type": "string"},
                    limit={"type": "number"},
                    key={"type": "string"},
                    lease={"type": "string", "enum": ["granted", "held"]},
                    retry_after={"type": "number", "minimum": 0},
                ),
                "Stored": _obj(
                    ["key", "ttl", "created"],
                    key={"type": "string"},
                    ttl={"type": ["number", "null"]},
                    created={"type": "boolean"},
                ),
                "Health": _obj(
                    ["status", "last_check", "node_id"],
                    status={"type": "string", "enum": ["healthy", "unhealthy"]},
                    uptime_seconds={"type": "number"},
                    cache_size={"type": "integer"},
                    hit_ratio={"type": "number"},
                    memory_usage_mb={"type": "number"},
                    last_check={"type": "number"},
                    node_id={"type": "string"},
                    problems={"type": "array", "items": {"type": "string"}},
                ),
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}] if settings.auth_token else [],
    }


def _add_leases(
    paths: dict[str, Any], settings: Settings, key: dict[str, Any], bad: dict[str, Any], missing: dict[str, Any]
) -> None:
    """Leases and locks (daemon/leases.py, docs/stampedes.md): the ``lease``
    parameter of a read, the token of a write, and ``/cache/{key}/lease``."""
    seconds = {"type": "number", "exclusiveMinimum": 0, "maximum": settings.max_lease_time}
    status = {
        "schema": {"type": "string", "enum": ["granted", "held"]},
        "description": "`granted`: this caller computes the value (the token is in X-Cache-Lease); "
        "`held`: another caller does.",
    }
    grant_headers = {
        "X-Cache-Lease-Status": status,
        "X-Cache-Lease": {"schema": {"type": "string"}, "description": "The lease's token, when granted."},
        "Retry-After": {
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "Whole seconds the holder has left, when held.",
        },
    }
    lease = _query(
        "lease",
        seconds,
        "On a miss, ask for the lease to compute the value (for this many seconds): "
        "exactly one caller gets it, the others are told to retry after a while.",
    )
    token = _header(
        "X-Cache-Lease",
        "The token of the lease on this key: the write ends the lease (409 "
        "`lease_not_held`, nothing stored, when it names no live lease).",
    )
    too_many = _error(f"Too many leases held (max_leases, {settings.max_leases}).")
    stale_header = {
        "X-Cache-Stale": {
            "schema": {"type": "string", "enum": ["true"]},
            "description": "The value is past its TTL, in its stale window (or marked "
            "stale): served while one reader refreshes it.",
        }
    }
    for method in ("get", "head"):
        operation = paths["/cache/{key}"][method]
        operation["parameters"].append(lease)
        operation["responses"]["507"] = too_many if method == "get" else {"description": "Too many leases held."}
        for status, headers in (("404", grant_headers), ("200", grant_headers | stale_header)):
            answer = operation["responses"][status]
            answer["headers"] = answer.get("headers", {}) | headers
    put = paths["/cache/{key}"]["put"]
    put["parameters"] += [
        token,
        _query(
            "stale",
            {"type": "number", "minimum": 0, "maximum": settings.max_stale_time},
            "Seconds past the TTL the value may still be served, marked stale, while one reader refreshes it "
            "(stale-while-revalidate, stale-if-error). Without `ttl` it has no effect: such a value never turns "
            "stale.",
        ),
    ]
    put["responses"]["409"] = _error("The lease token names no live lease on the key (`lease_not_held`).")
    held_answer = _ok(
        "Whether the lease is held, and its seconds left.",
        _obj(
            ["key", "held", "ttl"], key={"type": "string"}, held={"type": "boolean"}, ttl={"type": ["number", "null"]}
        ),
    )
    paths["/cache/{key}/lease"] = {
        "post": _operation(
            "Acquire the lease on the key as a lock, without waiting.",
            {
                "201": _ok(
                    "Acquired: the token releases it.",
                    _obj(
                        ["key", "token", "ttl"],
                        key={"type": "string"},
                        token={"type": "string"},
                        ttl={"type": "number"},
                    ),
                    grant_headers,
                ),
                "400": bad,
                "409": _error("Held by another caller (`lease_held`); see Retry-After.") | {"headers": grant_headers},
                "507": too_many,
            },
            [key, _query("ttl", seconds, "Seconds the lock lasts unless released first.", required=True)],
        ),
        "delete": _operation(
            "Release the lease with its token.",
            {
                "200": _ok(
                    "Released.", _obj(["key", "released"], key={"type": "string"}, released={"type": "boolean"})
                ),
                "400": bad,
                "409": _error("The token names no live lease on the key (`lease_not_held`)."),
            },
            [
                key,
                token
                | {
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                    "description": "The token the acquire gave.",
                },
            ],
        ),
        "get": _operation("Whether the lease on the key is held.", {"200": held_answer, "400": bad}, [key]),
    }
    paths["/cache/{key}/stale"] = {
        "post": _operation(
            "Mark the key stale instead of deleting it: readers get the old value marked stale, one of them "
            f"the lease to refresh it. A key without a stale window keeps {settings.stale_grace:g} s (stale_grace).",
            {
                "200": _ok("Marked.", _obj(["key", "stale"], key={"type": "string"}, stale={"type": "boolean"})),
                "400": bad,
                "404": missing,
            },
            [key],
        )
    }


OCTET_STREAM = "application/octet-stream"


def _binary_values(paths: dict[str, Any], key_string: dict[str, Any], settings: Settings) -> None:
    """Binary values (daemon/binary.py, batch.py) added to the operations of
    ``/cache/{key}`` and of the batches."""
    raw = {"schema": {"type": "string", "format": "binary"}}
    kind = {
        "X-Cache-Type": {
            "schema": {"type": "string", "enum": ["json", "binary"]},
            "description": "The value's kind: `json`, or `binary` (raw bytes).",
        }
    }
    item = paths["/cache/{key}"]
    get, head, put = item["get"], item["head"], item["put"]
    get["summary"] = "The stored value itself: JSON, or the raw bytes of a binary value."
    ok = get["responses"]["200"]
    ok["description"] += " A binary value is sent as application/octet-stream."
    ok["content"] = ok["content"] | {OCTET_STREAM: raw}
    ok["headers"] = ok["headers"] | kind
    head["responses"]["200"]["headers"] = head["responses"]["200"]["headers"] | kind
    not_acceptable = _error("The value is binary and Accept allows neither application/octet-stream nor a wildcard.")
    get["responses"]["406"] = not_acceptable
    head["responses"]["406"] = {"description": not_acceptable["description"]}
    put["summary"] = (
        "Store a JSON value (its compact encoding), or with Content-Type application/octet-stream "
        "the body's bytes as they are (a binary value; it may be empty)."
    )
    put["requestBody"]["content"] = put["requestBody"]["content"] | {OCTET_STREAM: raw}
    put["requestBody"]["description"] = "Any JSON value, or any bytes as application/octet-stream."
    put["responses"]["415"] = _error(
        "A Content-Type that is neither JSON nor application/octet-stream (`accepted` lists them)."
    )
    base64_items = {
        "type": "object",
        "additionalProperties": {
            "type": "string",
            "contentEncoding": "base64",
            "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        },
        "propertyNames": key_string,
        "maxProperties": settings.max_batch_size,
        "description": "Binary values, base64 (RFC 4648, padded). A key may not be in both `items` "
        "and `items_base64` (400 `invalid_batch`); the two together hold at most "
        f"{settings.max_batch_size} items (413).",
    }
    batch_set = paths["/cache/batch/set"]["post"]["requestBody"]["content"][JSON]["schema"]
    batch_set["properties"]["items_base64"] = base64_items
    batch_set["required"] = []
    batch_set["anyOf"] = [{"required": ["items"]}, {"required": ["items_base64"]}]
    found = paths["/cache/batch/get"]["post"]["responses"]["200"]["content"][JSON]["schema"]
    found["properties"]["items_base64"] = base64_items | {
        "description": "The binary values found, base64; present only when there is one."
    }


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CacheGrid API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{swagger}/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{swagger}/swagger-ui-bundle.js"></script>
<script src="{ours}/docs.js"></script>
</body></html>
"""


class OpenAPI:
    def __init__(self, settings: Settings) -> None:
        self.document = json.dumps(build_document(settings), indent=1).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.document


class Docs:
    def __init__(self) -> None:
        self.page = DOCS_PAGE.format(swagger=DOCS_STATIC, ours=STATIC_PATH, openapi=OPENAPI_PATH).encode()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.data = self.page
