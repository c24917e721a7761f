"""The ``tags`` family of the OpenAPI document: cache tags made a miss at
once, and delete by pattern (daemon/tags.py, docs/tags.md).

A cache tag names a group of entries; it is not an ETag (an entry's
version, items.py of this package).
"""

from __future__ import annotations

from typing import Any

from ...engine.pattern_delete import CLOSED_SETS
from .parts import Common, body, error, grouped, obj, ok, operation, tag_list

GROUP = {"name": "tags", "description": "Groups of entries made a miss at once; delete by pattern."}


def paths(common: Common) -> dict[str, Any]:
    """The family's paths, each operation grouped ``tags``."""
    return grouped(_invalidation(common) | _delete_pattern(common), "tags")


def _invalidation(common: Common) -> dict[str, Any]:
    """``/tags/{tag}/invalidate`` and ``/tags/invalidate``."""
    settings, bad = common.settings, common.bad
    tag = {
        "name": "tag",
        "in": "path",
        "required": True,
        "description": "The tag's name.",
        "schema": tag_list(settings, 1)["items"],
    }
    invalidated = obj(
        ["tags", "invalidated", "in_use"],
        tags={"type": "array", "items": {"type": "string"}},
        invalidated={"type": "array", "items": {"type": "string"}, "description": "The tags that had entries."},
        in_use={"type": "integer", "description": "How many of the tags had entries."},
    )
    return {
        "/tags/{tag}/invalidate": {
            "post": operation(
                "Make every entry carrying the tag a miss (O(1): its generation is bumped).",
                {"200": ok("Invalidated.", invalidated), "400": bad},
                [tag],
            )
        },
        "/tags/invalidate": {
            "post": operation(
                "Invalidate several tags at once.",
                {
                    "200": ok("Invalidated.", invalidated),
                    "400": bad,
                    "413": error(f"More than {settings.max_batch_size} tags."),
                },
                request_body=body(
                    obj(["tags"], tags=tag_list(settings, settings.max_batch_size)) | {"additionalProperties": False},
                    "The tags.",
                ),
            )
        },
    }


def _delete_pattern(common: Common) -> dict[str, Any]:
    """``/admin/delete-pattern``: a background delete job, and its progress."""
    settings = common.settings
    job = obj(
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
    pattern = {"type": "string", "minLength": 1, "pattern": CLOSED_SETS, "maxLength": settings.max_key_length}
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/admin/delete-pattern": {
            "post": operation(
                "Delete every key matching a prefix or glob, page by page in the background.",
                {
                    "202": ok("Started: the job (poll GET /admin/delete-pattern/{id}).", job),
                    "400": common.bad,
                    "429": error(f"{settings.max_delete_jobs} jobs are running already."),
                },
                request_body=body(
                    obj(["pattern"], pattern=pattern) | {"additionalProperties": False},
                    "A prefix (`user:`), or a glob with `*`, `?` or `[...]` (`user:*:cart`).",
                ),
            )
        },
        "/admin/delete-pattern/{job_id}": {
            "get": operation(
                "A delete job's progress.",
                {"200": ok("The job.", job), "404": error("No such job (or a forgotten old one).")},
                [job_id | {"description": "From the POST's answer."}],
            )
        },
    }
