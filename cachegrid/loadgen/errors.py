"""The errors of the load generator: the load test cannot run (``LoadError``),
or will not, because it would touch the server's data (``Refused``)."""

from __future__ import annotations

from typing import Any


class LoadError(Exception):
    """The load test cannot run. ``status`` is the HTTP status the server
    refused or failed a request with; None when no server answered (or the
    load generator's own processes could not run). ``body`` is the server's
    JSON answer, when there was one."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Refused(LoadError):
    """The load test will not run against this server: the server already
    holds keys under its prefix, or has no room for its keys without evicting."""
