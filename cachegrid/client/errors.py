"""The client's errors: one base class, typed by what the caller can do.

``CacheGridConnectionError`` and ``CacheGridTimeoutError`` are the names the
earlier CacheGrid client raised; here they are what an ``Unavailable`` also
is, by why no host answered, so ``except Unavailable`` and ``except
CacheGridConnectionError`` both catch an outage."""

from __future__ import annotations


class CacheGridError(Exception):
    """Base class of every error the client raises."""


class CacheGridConnectionError(CacheGridError):
    """No host could be reached: a connection refused, reset or lost on
    every candidate (with a timeout among them, or not)."""


class CacheGridTimeoutError(CacheGridError):
    """Every candidate host timed out (connecting or waiting for the answer)."""


class TLSError(CacheGridConnectionError):
    """TLS with an ``https://`` host failed, most often because its
    certificate could not be verified (signed by a CA the client was not
    given, or issued for another name). A setting to fix, not an outage: it
    is raised at once, never retried, and ``fail_open`` does not hide it.
    ``host`` is the base URL, ``reason`` OpenSSL's words."""

    def __init__(self, host: str, reason: str, verification: bool) -> None:
        what = "TLS certificate verification" if verification else "TLS"
        hint = (
            ": give the CA bundle that signed the server's certificate (ca_file=..., cachegrid --ca-file)"
            if verification
            else ""
        )
        super().__init__(f"{what} failed for {host}: {reason}{hint}")
        self.host = host
        self.reason = reason
        self.verification = verification


class Unavailable(CacheGridError):
    """No host answered: every attempt failed with a connection error, a
    timeout or a server error (5xx). ``errors`` holds each host's last error.
    Raised as ``ConnectionUnavailable`` or ``TimeoutUnavailable`` when no host
    answered at all, as plain ``Unavailable`` when some answered with a 5xx."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class ConnectionUnavailable(Unavailable, CacheGridConnectionError):
    """An outage in which no candidate host could be reached."""


class TimeoutUnavailable(Unavailable, CacheGridTimeoutError):
    """An outage in which every candidate host timed out."""


class RequestError(CacheGridError):
    """The server refused the request (4xx, or 507 when full): never retried.
    ``code`` and ``message`` are the server's error body."""

    def __init__(self, status: int, code: str, message: str, body: dict | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body or {}


class NotFound(RequestError):
    """The key does not exist (or expired), where the call needs it."""


class Unauthorized(RequestError):
    """The server needs a bearer token (auth_token=...) and got none or a wrong one."""
