"""The one error of the load generator: the load test cannot run."""

from __future__ import annotations


class LoadError(Exception):
    """The load test cannot run. ``status`` is the HTTP status the server
    refused or failed a request with; None when no server answered (or the
    load generator's own processes could not run)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
