"""The small builders every part of the OpenAPI document is written with.

An operation, an answer, a parameter or a request body is a few nested
dicts in OpenAPI 3.1; these functions write them the same way everywhere,
so that a family's module (items.py, batch.py, ...) reads as the list of
what its URLs take and answer. ``Common`` holds the pieces several families
share and that depend on the settings: the key, in a path or in a list, and
the usual error answers.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ...config import Settings
from ...engine import MAX_TTL

JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

# The longest TTL the engine takes. A float: the document has always said
# 1e10, and it must not change by a byte when the limit moves to one place.
TTL_SCHEMA_MAXIMUM = float(MAX_TTL)


def error(description: str) -> dict[str, Any]:
    """An error answer: its body is the ``Error`` schema."""
    return {"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}


def ok(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON answer with ``schema`` (and ``headers``, if any)."""
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    """A JSON object schema."""
    return {"type": "object", "required": required, "properties": properties}


def body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "description": description, "content": {JSON: {"schema": schema}}}


def query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    """A query-string parameter."""
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def header(name: str, description: str) -> dict[str, Any]:
    """An optional request header, a string."""
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": description}


def pointer(path: str, method: str) -> str:
    """A JSON pointer to an operation of this document (for links)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def operation(
    summary: str,
    responses: dict[str, Any],
    parameters: list[Any] | None = None,
    request_body: dict[str, Any] | None = None,
    authenticated: bool = True,
) -> dict[str, Any]:
    """An operation; every one may fail with 500, and with 401 unless it
    needs no token (``authenticated`` False: an empty ``security``)."""
    result: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if parameters:
        result["parameters"] = parameters
    if request_body:
        result["requestBody"] = request_body
    if authenticated:
        result["responses"]["401"] = error("A bearer token is configured and was not sent, or is wrong.")
    else:
        result["security"] = []
    result["responses"]["500"] = error("The server failed; see its log.")
    return result


def grouped(paths: dict[str, Any], family: str) -> dict[str, Any]:
    """``paths`` with every operation in the group ``family``, unless it has
    one: the groups of /docs, one per URL family as the resources are
    (OpenAPI calls them tags; here they are groups, as a tag is a cache
    tag)."""
    for operations in paths.values():
        for each in operations.values():
            each.setdefault("tags", [family])
    return paths


class Common(NamedTuple):
    """What several families' operations share."""

    settings: Settings
    key_string: dict[str, Any]  # a key as a JSON string (in a path, a list, a map's names)
    key: dict[str, Any]  # the ``{key}`` path parameter
    bad: dict[str, Any]  # 400
    too_large: dict[str, Any]  # 413
    missing: dict[str, Any]  # 404 of a key

    @classmethod
    def of(cls, settings: Settings) -> Common:
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
        return cls(
            settings,
            key_string,
            key,
            bad=error("Invalid input: the key, the TTL, a parameter or the body (see `error`)."),
            too_large=error("A body, value or batch over its limit (`limit` says which)."),
            missing=error("No such key (or it expired)."),
        )


def tag_list(settings: Settings, most: int) -> dict[str, Any]:
    """A JSON list of at most ``most`` cache tags (names of groups of
    entries, docs/tags.md; not ETags)."""
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
