"""``/tags/...`` and ``/admin/delete-pattern``: groups of keys, made a miss or deleted.

Tags (engine/tags.py, docs/tags.md): ``PUT /cache/{key}?tags=a,b`` and a
batch set's ``"tags": [...]`` group entries under names; ``GET
/cache/{key}`` shows them in ``X-Cache-Tags``. ``POST /tags/{tag}/invalidate``
and ``POST /tags/invalidate`` ``{"tags": [...]}`` make every entry carrying
one of them a miss, in O(1) for the request whatever the number of entries.
The routes live outside ``/cache/``, whose paths are keys.

Delete by pattern (engine/pattern_delete.py): ``POST /admin/delete-pattern``
``{"pattern": "user:*"}`` answers 202 at once with a job; the job deletes
page by page in the background, and ``GET /admin/delete-pattern/{id}``
tells how far it got. It is not a parameter of ``DELETE /cache``, where a
misspelt parameter name would clear everything.
"""

from __future__ import annotations

import falcon

from ..config import Settings
from ..engine import Cache
from ..engine.pattern_delete import PatternDeletes
from .body import json_body
from .errors import ApiError
from .resources import Resource, send_json

TAGS_HEADER = "X-Cache-Tags"
TAGS_PARAM = "tags"


def tags_param(req: falcon.Request) -> list[str] | None:
    """The ``tags`` query parameter as names (None when absent; ``tags=``:
    none, which drops the tags of the entry a write replaces)."""
    raw = req.get_param(TAGS_PARAM) if req.query_string else None
    if raw is None:
        return None
    return raw.split(",") if raw else []


class Tags(Resource):
    """``POST /tags/{tag}/invalidate`` and ``POST /tags/invalidate`` ``{"tags": [...]}``."""

    def on_post_one(self, req: falcon.Request, resp: falcon.Response, tag: str) -> None:
        in_use = self.cache.invalidate_tags([tag])
        send_json(resp, {"tags": [tag], "invalidated": [tag] if in_use else [], "in_use": in_use})

    def on_post_many(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.settings.max_body_size)
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, list) or set(body) != {"tags"}:
            raise ApiError(400, "invalid_tags", 'the body must be {"tags": ["tag", ...]}')
        limit = self.settings.max_batch_size
        if len(tags) > limit:
            raise ApiError(413, "batch_too_large", f"{len(tags)} tags; the limit is {limit}", limit=limit)
        unique = list(dict.fromkeys(tags)) if all(isinstance(tag, str) for tag in tags) else tags
        # The engine checks every name before it bumps any (a bad one changes
        # nothing), then invalidates them all in one lock hold.
        invalidated = self.cache.invalidated_tags(unique)
        send_json(resp, {"tags": unique, "invalidated": invalidated, "in_use": len(invalidated)})


class DeletePattern(Resource):
    """``POST /admin/delete-pattern`` ``{"pattern": P}`` (202 and the job) and
    ``GET /admin/delete-pattern/{job_id}`` (the job's status)."""

    def __init__(self, cache: Cache, settings: Settings) -> None:
        super().__init__(cache, settings)
        self.jobs = PatternDeletes(cache, settings.max_delete_jobs)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.settings.max_body_size)
        if not isinstance(body, dict) or set(body) != {"pattern"}:
            raise ApiError(400, "invalid_pattern", 'the body must be {"pattern": "prefix or glob"}')
        job = self.jobs.start(body["pattern"])
        send_json(resp, job.status(), 202)

    def on_get_job(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        send_json(resp, self.jobs.get(job_id).status())
