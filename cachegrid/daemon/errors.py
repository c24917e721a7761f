"""Errors of the HTTP API, and the one JSON shape every error is sent in.

Every error answer, falcon's own included (unknown route, wrong method), has
the body ``{"error": "<code>", "message": "<what went wrong>", ...}``, where
``code`` is a stable snake_case name and extra fields (``limit``, ``key``) say
more. Engine errors know nothing of HTTP; ``ENGINE_ERRORS`` maps each to a
status and code, in this one place.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import falcon

from ..engine import (
    CacheError,
    CacheFull,
    IntegerOverflow,
    InvalidCursor,
    InvalidKey,
    InvalidLease,
    InvalidTTL,
    KeyNotFound,
    KeyTooLong,
    LeaseNotHeld,
    NotAnInteger,
    PreconditionFailed,
    TooManyLeases,
    ValueTooLarge,
)
from ..engine.pattern_delete import InvalidPattern, JobNotFound, TooManyJobs
from ..engine.tags import InvalidTag, TagLimitReached, TagTooLong, TooManyTags

log = logging.getLogger("cachegrid.daemon")


class ApiError(falcon.HTTPError):
    """An error answer: status, code, message and any extra fields."""

    def __init__(
        self, status: str | int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(status, title=code, description=message, headers=headers)
        self.error_code = code  # (falcon's own ``code`` is an int)
        self.extra = extra

    def to_dict(self, obj_type: type = dict) -> dict[str, Any]:
        return {"error": self.error_code, "message": self.description, **self.extra}


# Most specific first: the first match wins.
ENGINE_ERRORS: list[tuple[type[CacheError], int, str]] = [
    (KeyTooLong, 400, "key_too_long"),
    (InvalidKey, 400, "invalid_key"),
    (InvalidTTL, 400, "invalid_ttl"),
    (ValueTooLarge, 413, "value_too_large"),
    (NotAnInteger, 400, "not_an_integer"),
    (IntegerOverflow, 400, "integer_overflow"),
    (PreconditionFailed, 412, "precondition_failed"),
    (KeyNotFound, 404, "not_found"),
    (InvalidCursor, 400, "invalid_cursor"),
    (TooManyTags, 400, "too_many_tags"),
    (TagTooLong, 400, "tag_too_long"),
    (InvalidTag, 400, "invalid_tag"),
    (TagLimitReached, 507, "tag_limit_reached"),
    (InvalidPattern, 400, "invalid_pattern"),
    (TooManyJobs, 429, "too_many_jobs"),
    (JobNotFound, 404, "job_not_found"),
    (InvalidLease, 400, "invalid_lease"),
    (LeaseNotHeld, 409, "lease_not_held"),
    (TooManyLeases, 507, "too_many_leases"),
    # Not the client's fault, and another node may have room: 507, which the
    # client SDK does not retry on the same host.
    (CacheFull, 507, "cache_full"),
]


# A key echoed in an error about the key itself is cut here: it may be huge.
KEY_ECHO_LENGTH = 64


def from_engine(error: CacheError, key: str | None = None) -> ApiError:
    """The answer to an engine error; ``key`` is the request's own key (the
    engine names a key only where a request has several, as in a batch)."""
    for kind, status, code in ENGINE_ERRORS:
        if isinstance(error, kind):
            extra: dict[str, Any] = {}
            limit = getattr(error, "limit", None)
            if limit is not None:
                extra["limit"] = limit
            key = getattr(error, "key", None) or key
            if key is not None:
                extra["key"] = key[:KEY_ECHO_LENGTH] if isinstance(error, InvalidKey) else key
            if isinstance(error, ValueTooLarge):
                extra["limit_name"] = error.what
            return ApiError(status, code, str(error), **extra)
    return ApiError(400, "cache_error", str(error))


def handle_engine_error(req: falcon.Request, resp: falcon.Response, error: CacheError, params: dict) -> None:
    raise from_engine(error, params.get("key"))


def handle_unexpected(req: falcon.Request, resp: falcon.Response, error: Exception, params: dict) -> None:
    if isinstance(error, falcon.HTTPError):  # falcon's own, serialized below
        raise error
    raise unexpected(req.method, req.path)


def unexpected(method: str, path: str) -> ApiError:
    """The answer to a failure of the server's own (logged here, with its traceback)."""
    log.exception("unexpected error on %s %s", method, path)
    return ApiError(500, "internal_error", "the server failed to answer this request; see its log")


def _code(title: str | None, status: str) -> str:
    """A snake_case code from falcon's title, e.g. '405 Method Not Allowed' -> method_not_allowed."""
    words = re.sub(r"[^a-z0-9]+", "_", (title or status).lower()).strip("_")
    return re.sub(r"^\d+_", "", words) or "error"


def serialize(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """The error serializer of the app: one JSON shape for every error."""
    if isinstance(error, ApiError):
        body = error.to_dict()
    else:
        code = _code(error.title, str(error.status))
        body = {"error": code, "message": error.description or f"{code.replace('_', ' ')}: {req.method} {req.path}"}
    resp.data = json.dumps(body, ensure_ascii=False).encode()
    resp.content_type = falcon.MEDIA_JSON
