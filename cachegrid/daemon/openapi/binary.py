"""Binary values in the OpenAPI document (daemon/binary.py, batch.py):
raw bytes on GET, HEAD and PUT of ``/cache/{key}``, and ``items_base64`` in
the batches.

Written over the ``items`` and ``batch`` families' operations (items.py and
batch.py of this package), which must be in ``paths`` already.
"""

from __future__ import annotations

from typing import Any

from .parts import JSON, OCTET_STREAM, Common, error

_KIND = {
    "X-Cache-Type": {
        "schema": {"type": "string", "enum": ["json", "binary"]},
        "description": "The value's kind: `json`, or `binary` (raw bytes).",
    }
}


def amend(paths: dict[str, Any], common: Common) -> None:
    """Add binary values to ``paths``."""
    _amend_value(paths)
    _amend_batches(paths, common)


def _amend_value(paths: dict[str, Any]) -> None:
    """``/cache/{key}``: a binary value is read and written as its bytes."""
    raw = {"schema": {"type": "string", "format": "binary"}}
    item = paths["/cache/{key}"]
    get, head, put = item["get"], item["head"], item["put"]
    get["summary"] = "The stored value itself: JSON, or the raw bytes of a binary value."
    found = get["responses"]["200"]
    found["description"] += " A binary value is sent as application/octet-stream."
    found["content"] = found["content"] | {OCTET_STREAM: raw}
    found["headers"] = found["headers"] | _KIND
    head["responses"]["200"]["headers"] = head["responses"]["200"]["headers"] | _KIND
    not_acceptable = error("The value is binary and Accept allows neither application/octet-stream nor a wildcard.")
    get["responses"]["406"] = not_acceptable
    head["responses"]["406"] = {"description": not_acceptable["description"]}
    put["summary"] = (
        "Store a JSON value (its compact encoding), or with Content-Type application/octet-stream "
        "the body's bytes as they are (a binary value; it may be empty)."
    )
    put["requestBody"]["content"] = put["requestBody"]["content"] | {OCTET_STREAM: raw}
    put["requestBody"]["description"] = (
        "Any JSON value, or any bytes as application/octet-stream. With Content-Encoding: gzip the body is "
        "gzip-compressed: it is inflated (413 past max_value_size, 400 if it is not gzip) and read as any "
        "body; another coding is 415."
    )
    put["responses"]["415"] = error(
        "A Content-Type that is neither JSON nor application/octet-stream (`accepted` lists them), "
        "or a Content-Encoding other than gzip and identity (`supported` lists them)."
    )


def _amend_batches(paths: dict[str, Any], common: Common) -> None:
    """``items_base64`` in a batch set's body and a batch get's answer."""
    most = common.settings.max_batch_size
    base64_items = {
        "type": "object",
        "additionalProperties": {
            "type": "string",
            "contentEncoding": "base64",
            "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        },
        "propertyNames": common.key_string,
        "maxProperties": most,
        "description": "Binary values, base64 (RFC 4648, padded). A key may not be in both `items` "
        "and `items_base64` (400 `invalid_batch`); the two together hold at most "
        f"{most} items (413).",
    }
    batch_set = paths["/cache/batch/set"]["post"]["requestBody"]["content"][JSON]["schema"]
    batch_set["properties"]["items_base64"] = base64_items
    batch_set["required"] = []
    batch_set["anyOf"] = [{"required": ["items"]}, {"required": ["items_base64"]}]
    found = paths["/cache/batch/get"]["post"]["responses"]["200"]["content"][JSON]["schema"]
    found["properties"]["items_base64"] = base64_items | {
        "description": "The binary values found, base64; present only when there is one."
    }
