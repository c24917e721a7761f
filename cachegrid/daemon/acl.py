"""Who may do what: the daemon's side of scoped tokens (docs/acl.md).

``Acl`` holds the tokens of the ACL file (acl_file.py reads and checks it)
and, when ``auth_token`` is set too, that token as one more with every
permission and every key. Each request is decided in two steps:

1. ``Acl.identify``: whose token is it? The presented token is hashed with
   SHA-256 and the digest looked up in a table keyed by the entries'
   digests. Nothing is compared with a token: the lookup hashes the digest
   (Python's keyed SipHash) and compares bytes only with an entry whose
   hash is equal, which for any token but the entry's own happens with
   probability ~2^-64 per probe. How far a guess is from a real token
   cannot show in the time taken, because its digest shares nothing
   predictable with the real token's (it would take a preimage of
   SHA-256 to aim at one), and every token costs one hash and one probe,
   whichever entry it is and however many there are. (Comparing the digest
   with ``hmac.compare_digest`` against every entry in a loop gives the same
   guarantee at 100 comparisons a request: 0.72x the requests a second of no
   auth with 100 tokens, measured; docs/acl.md.) A header once found is
   remembered with its grant (``known``), so a known token costs one probe
   of a dict keyed by the header, on the same argument: the probe hashes
   the header with the keyed SipHash and compares characters only on an
   equal hash. No token, or an unknown one: 401, as with ``auth_token`` alone.
2. ``Grant.allows``: may it? Every route and method has a rule in ``RULES``
   naming the permission it needs (read, write, admin, metrics); a route
   that names a key also needs the key to start with one of the token's
   prefixes. A route without a rule needs ``admin``, so a route added
   later is closed until someone writes its rule (and the rule test in
   tests/daemon/test_acl.py and the route table of
   tests/integration/test_acl.py fail meanwhile). Missing either: 403,
   naming what is missing, before the resource runs, so nothing changes.

Batches (the keys are in the body) are checked by batch.py through
``check_keys`` before it writes anything: one key outside the prefixes
refuses the whole batch. ``GET /admin/keys`` and ``GET /events`` narrow
what they show to the token's prefixes (``scope``). Tag invalidation and
delete by pattern reach keys by tag or pattern, whatever their prefix, so
they need ``admin``.

The file is re-read when it changes: at most once a second a request looks
at its size and modification time; a file that does not read or check
keeps the last good tokens and logs one line naming the problem (once per
change of the file). fastpath.py asks the same ``identify`` and ``allows``
and leaves every request they refuse to falcon, which answers it here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import falcon
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from ..acl_file import AclError, TokenEntry, read_acl, token_digest
from .errors import ApiError

log = logging.getLogger("cachegrid.daemon.acl")

READ, WRITE, ADMIN, METRICS = "read", "write", "admin", "metrics"
AUTH_TOKEN_NAME = "auth_token"  # the name auth_token's grant has in logs and metrics
RELOAD_INTERVAL = 1.0  # seconds between two looks at the file
BEARER = "Bearer "
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="cachegrid"'}

# The permission each route's methods need; a route under /cache/{key} also
# needs the key within the token's prefixes. Methods a route does not serve
# are left to falcon (405), which changes nothing.
RULES: dict[str, dict[str, str]] = {
    "/cache": {"DELETE": ADMIN},  # clear
    "/cache/{key}": {"GET": READ, "HEAD": READ, "PUT": WRITE, "DELETE": WRITE},
    "/cache/{key}/ttl": {"GET": READ, "PUT": WRITE, "DELETE": WRITE},
    "/cache/{key}/incr": {"POST": WRITE},
    "/cache/{key}/decr": {"POST": WRITE},
    "/cache/{key}/lease": {"GET": READ, "POST": WRITE, "DELETE": WRITE},
    "/cache/{key}/stale": {"POST": WRITE},
    "/cache/batch/set": {"POST": WRITE},  # and every key within the prefixes: check_keys
    "/cache/batch/get": {"POST": READ},
    "/cache/batch/delete": {"POST": WRITE},
    "/stats": {"GET": METRICS},
    "/metrics": {"GET": METRICS},
    "/admin/keys": {"GET": READ},  # shows only the token's prefixes
    "/events": {"GET": READ},  # streams only the token's prefixes
    "/admin/snapshot": {"GET": ADMIN, "POST": ADMIN},
    "/admin/delete-pattern": {"POST": ADMIN},
    "/admin/delete-pattern/{job_id}": {"GET": ADMIN},
    "/tags/invalidate": {"POST": ADMIN},
    "/tags/{tag}/invalidate": {"POST": ADMIN},
    "/test/load": {"POST": ADMIN},
}


class Tally:
    """One token name's counters (requests, denials), exact under threads.

    ``counters[0] += 1`` on a shared list is a read, an add and a write; a
    thread switch between them (which CPython 3.11 happens not to make
    there, but nothing promises it, and a free-threaded build does) loses
    an update. Each thread therefore counts in a list of its own (``mine``:
    one lookup of a C ``threading.local``, no lock; about 0.1 µs more per
    request than the shared list), which no other thread writes; ``totals`` sums every thread's
    list under the lock that registers them. A thread that ends leaves its
    list behind, so a total never goes down."""

    __slots__ = ("_lists", "_local", "_lock")

    def __init__(self) -> None:
        self._local = threading.local()
        self._lists: list[list[int]] = []
        self._lock = threading.Lock()

    def mine(self) -> list[int]:
        """This thread's ``[requests, denials]``, to add to."""
        try:
            return self._local.counts
        except AttributeError:
            counts = self._local.counts = [0, 0]
            with self._lock:
                self._lists.append(counts)
            return counts

    def totals(self) -> tuple[int, int]:
        with self._lock:
            lists = list(self._lists)
        return sum(counts[0] for counts in lists), sum(counts[1] for counts in lists)


class Grant:
    """What one token may do, and its counters (requests, denials) by name."""

    __slots__ = ("name", "permissions", "prefixes", "tally")

    def __init__(self, name: str, permissions: Iterable[str], prefixes: tuple[str, ...] | None, tally: Tally) -> None:
        self.name = name
        self.permissions = frozenset(permissions)
        self.prefixes = prefixes  # None: every key
        self.tally = tally  # shared by the grants of one name, across reloads

    @property
    def counters(self) -> list[int]:
        """``[requests, denials]`` of this thread, for ``counters[i] += 1`` (``Tally``)."""
        return self.tally.mine()

    def allows(self, permission: str, key: str | None = None) -> bool:
        return permission in self.permissions and (
            key is None or self.prefixes is None or key.startswith(self.prefixes)
        )

    def refusal(self, permission: str, key: str | None = None) -> ApiError:
        """The 403 for a request this grant does not allow."""
        if permission not in self.permissions:
            message = f"the token {self.name!r} lacks the {permission!r} permission"
            return ApiError(403, "forbidden", message, permission=permission)
        message = f"the token {self.name!r} may not touch the key {key!r}: it is outside its prefixes"
        return ApiError(403, "forbidden", message, key=key, prefixes=list(self.prefixes or ()))


class Acl:
    """The tokens in force; re-read from ``path`` when the file changes."""

    def __init__(self, path: str | Path | None, auth_token: str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.auth_digest = token_digest(auth_token) if auth_token else None
        self.counters: dict[str, Tally] = {}
        self.lock = threading.Lock()
        self.next_check = time.monotonic() + RELOAD_INTERVAL
        self.seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read or refused
        entries = read_acl(self.path) if self.path is not None else []  # AclError at start: the caller stops
        self.seen = self._stat()
        self.table: dict[bytes, Grant] = self._table(entries)
        # PERF: the headers already found, to their grants, so that a known
        # token costs one probe and no SHA-256 (the same lookup argument as
        # the digests': the module docstring). Only found tokens enter, so it
        # holds at most one header per token; emptied when the file changes.
        self.known: dict[str, Grant] = {}

    def _table(self, entries: Sequence[TokenEntry]) -> dict[bytes, Grant]:
        """The grants by digest; auth_token's wins over an entry of the same token."""
        table = {entry.digest: self._grant(entry.name, entry.permissions, entry.prefixes) for entry in entries}
        if self.auth_digest is not None:
            table[self.auth_digest] = self._grant(AUTH_TOKEN_NAME, (READ, WRITE, ADMIN, METRICS), None)
        return table

    def _grant(self, name: str, permissions: Iterable[str], prefixes: tuple[str, ...] | None) -> Grant:
        return Grant(name, permissions, prefixes, self.counters.setdefault(name, Tally()))

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    def identify(self, authorization: str | None) -> Grant | None:
        """The grant of an ``Authorization: Bearer <token>`` header, None for
        none or an unknown token (looked up by its digest: the module docstring)."""
        if self.path is not None and time.monotonic() >= self.next_check:
            self.reload_if_changed()
        if not authorization:
            return None
        known, table = self.known, self.table  # one generation: a reload meanwhile replaces both
        grant = known.get(authorization)
        if grant is not None or not authorization.startswith(BEARER):
            return grant
        grant = table.get(token_digest(authorization[len(BEARER) :]))
        if grant is not None and len(known) < len(table):
            known[authorization] = grant
        return grant

    def reload_if_changed(self) -> None:
        """Read the file again if its size or time changed since the last look."""
        if not self.lock.acquire(blocking=False):  # another request is looking: go on with the tokens in force
            return
        try:
            self.next_check = time.monotonic() + RELOAD_INTERVAL
            stat = self._stat()
            if stat == self.seen:
                return
            self.seen = stat
            if stat is None:
                log.error("ACL file %s: cannot be read (removed?); keeping the last good tokens", self.path)
                return
            try:
                assert self.path is not None
                entries = read_acl(self.path)
            except AclError as error:
                log.error("ACL file not reloaded, keeping the last good tokens: %s", error)
                return
            self.table, self.known = self._table(entries), {}  # in this order: identify's generations
            log.info("ACL file %s reloaded: %d tokens", self.path, len(entries))
        finally:
            self.lock.release()


class AclAuth:
    """falcon middleware: 401 without a known token, 403 without the rule's
    permission or the key's prefix; the grant is left in ``req.context.grant``."""

    def __init__(self, acl: Acl, open_paths: frozenset[str], open_prefixes: tuple[str, ...]) -> None:
        self.acl = acl
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        path = req.path
        if path in self.open_paths or path.startswith(self.open_prefixes):
            return
        given = req.get_header("Authorization")
        grant = self.acl.identify(given)
        if grant is None:
            message = (
                "the bearer token is not this server's"
                if given
                else "this server needs 'Authorization: Bearer <token>'"
            )
            raise ApiError(401, "unauthorized", message, headers=UNAUTHORIZED_HEADERS)
        grant.counters[0] += 1
        req.context.grant = grant

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        grant = req.context.get("grant")
        if grant is None or resource is None:  # an open path, or no route (404)
            return
        rule = RULES.get(req.uri_template or "")
        permission = ADMIN if rule is None else rule.get(req.method)
        if permission is None:  # a method the route does not serve: falcon's 405
            return
        key = params.get("key")
        if not grant.allows(permission, key):
            raise deny(grant, req, grant.refusal(permission, key))
        # A leased read may take the lease on a miss: a write.
        leased = permission == READ and key is not None and req.query_string and req.get_param("lease") is not None
        if leased and not grant.allows(WRITE, key):
            raise deny(grant, req, grant.refusal(WRITE, key))


def scope(req: falcon.Request) -> tuple[str, ...] | None:
    """The prefixes the request's token is confined to (None: every key)."""
    grant = req.context.get("grant")
    return None if grant is None else grant.prefixes


def deny(grant: Grant, req: falcon.Request, error: ApiError) -> ApiError:
    """Count and log a refusal (the token's name, never the token); returns ``error``."""
    grant.counters[1] += 1
    # The path as repr: a key may hold any character, a line break too.
    log.warning("ACL: token %r denied %s %r: %s", grant.name, req.method, req.path, error.description)
    return error


def check_keys(req: falcon.Request, keys: Iterable[str]) -> None:
    """403 when one of a batch's keys is outside the token's prefixes (the whole batch is refused)."""
    grant = req.context.get("grant")
    if grant is None or grant.prefixes is None:
        return
    for key in keys:
        if not key.startswith(grant.prefixes):
            raise deny(grant, req, grant.refusal(READ if req.path.endswith("/get") else WRITE, key))


class AclCollector(Collector):
    """The per-token counters in /metrics, by the token's name."""

    def __init__(self, acl: Acl) -> None:
        self.acl = acl

    def collect(self) -> Iterator[CounterMetricFamily]:
        requests = CounterMetricFamily("cachegrid_acl_requests", "Requests by ACL token name.", labels=["token"])
        denials = CounterMetricFamily(
            "cachegrid_acl_denials", "Requests refused (403) by ACL token name.", labels=["token"]
        )
        for name, tally in sorted(self.acl.counters.items()):
            made, refused = tally.totals()
            requests.add_metric([name], made)
            denials.add_metric([name], refused)
        yield requests
        yield denials
