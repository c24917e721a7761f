"""The ``batch`` family of the OpenAPI document: ``/cache/batch/set``,
``/get`` and ``/delete``, many keys in one request (daemon/batch.py).

Binary values in a batch (``items_base64``) are added by binary.py of this
package, beside the rest of what binary values change.
"""

from __future__ import annotations

from typing import Any

from .parts import TTL_SCHEMA_MAXIMUM, Common, body, error, grouped, obj, ok, operation, tag_list

GROUP = {"name": "batch", "description": "Many keys in one request."}


def paths(common: Common) -> dict[str, Any]:
    """The family's paths, each operation grouped ``batch``."""
    settings, bad, too_large = common.settings, common.bad, common.too_large
    keys = body(
        obj(["keys"], keys={"type": "array", "items": common.key_string, "maxItems": settings.max_batch_size})
        | {"additionalProperties": False},
        f"At most {settings.max_batch_size} keys.",
    )
    found = obj(
        ["items", "missing"],
        items={"type": "object", "additionalProperties": True},
        missing={"type": "array", "items": {"type": "string"}},
    )
    return grouped(
        {
            "/cache/batch/set": {"post": _set(common)},
            "/cache/batch/get": {
                "post": operation(
                    "Read many keys.",
                    {
                        "200": ok("The values found, and the keys not found.", found),
                        "400": bad,
                        "413": too_large,
                    },
                    request_body=keys,
                )
            },
            "/cache/batch/delete": {
                "post": operation(
                    "Delete many keys (idempotent: absent keys are not an error).",
                    {
                        "200": ok(
                            "How many of the keys existed and were deleted.",
                            obj(["deleted"], deleted={"type": "integer", "minimum": 0}),
                        ),
                        "400": bad,
                        "413": too_large,
                    },
                    request_body=keys,
                )
            },
        },
        "batch",
    )


def _set(common: Common) -> dict[str, Any]:
    """``POST /cache/batch/set``: all or nothing."""
    settings = common.settings
    items = {
        "type": "object",
        "additionalProperties": True,
        "propertyNames": common.key_string,
        "maxProperties": settings.max_batch_size,
    }
    stale = {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": settings.max_stale_time,
        "description": "Seconds past the TTL every item may still be served stale, "
        "as `stale` of a PUT (no effect without `ttl`).",
    }
    return operation(
        "Store many items, all or nothing.",
        {
            "200": ok(
                "How many were stored.",
                obj(["stored", "ttl"], stored={"type": "integer"}, ttl={"type": ["number", "null"]}),
            ),
            "400": common.bad,
            "413": common.too_large,
            "507": error("The cache is full and its policy is noeviction."),
        },
        request_body=body(
            obj(
                ["items"],
                items=items,
                ttl={"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": TTL_SCHEMA_MAXIMUM},
                stale=stale,
                tags=tag_list(settings, settings.max_tags_per_entry) | {"type": ["array", "null"]},
            )
            | {"additionalProperties": False},
            f"At most {settings.max_batch_size} items.",
        ),
    )
