"""Leases over HTTP: the stampede protection of a read, and locks on keys.

The engine keeps the leases (engine/leases.py); this module is the HTTP
side, in three pieces:

- ``GET /cache/{key}?lease=SECONDS`` (``leased_read``, called by items.py):
  a hit is answered as any GET. A miss is a 404 as any miss, and it also
  says who computes the value: exactly one caller gets
  ``X-Cache-Lease-Status: granted`` and the token in ``X-Cache-Lease`` (it
  computes, then PUTs with that header); every other caller, until that PUT
  or the end of the lease, gets ``X-Cache-Lease-Status: held`` and
  ``Retry-After`` (whole seconds, as HTTP has it; the body's
  ``retry_after`` has the fraction). The server never holds a request open
  to wait: under meinheld that would hold the worker's only thread, so the
  waiting is the client's (cachegrid/client, bounded, with backoff and
  jitter).
- ``PUT /cache/{key}`` with ``X-Cache-Lease: <token>`` (items.py reads
  the token with ``lease_token`` and writes with the engine's
  ``Cache.set_leased``): stores the value and ends the lease, in one engine
  call. A token that names no live lease (forged, or its lease ended or ran
  out) is 409 ``lease_not_held``, and nothing is stored: a winner that took
  longer than its lease cannot overwrite the value of the caller that won
  after it. A PUT without the header works as it always did, and leaves a
  lease on the key alone.
- ``/cache/{key}/lease`` (``LeaseLocks``): the same leases as a plain lock.
  ``POST ?ttl=SECONDS`` acquires without waiting (201 with the token, or
  409 ``lease_held`` with ``Retry-After``), ``DELETE`` with the token in
  ``X-Cache-Lease`` releases (409 ``lease_not_held`` if it names no lease),
  ``GET`` says whether it is held and for how long. A lock ends by itself
  after its time; deleting or overwriting the key leaves it held.

Stale values (RFC 5861's stale-while-revalidate and stale-if-error, in one
window): ``PUT /cache/{key}?ttl=T&stale=S`` keeps the value S seconds past
its TTL. In that window every GET answers it at once with ``X-Cache-Stale:
true``; with ``?lease=`` one reader is also granted the lease to refresh it
(the headers of a miss's grant), the others are told it is held. A refresh
that fails leaves the old value served until the window ends.
``POST /cache/{key}/stale`` (``StaleMarks``) marks a key stale now, keeping
it: readers get the old value marked stale instead of a miss for everyone.
An entry without a window of its own keeps ``stale_grace`` seconds.
"""

from __future__ import annotations

import math

import falcon

from ..config import Settings
from ..engine import Cache, Entry, Grant
from .errors import ApiError
from .resources import Resource, send_json

LEASE_HEADER = "X-Cache-Lease"  # the token: in the answer that grants it, in the request that uses it
LEASE_STATUS_HEADER = "X-Cache-Lease-Status"  # granted | held
LEASE_ENV = "HTTP_X_CACHE_LEASE"
STALE_HEADER = "X-Cache-Stale"
FRESH_HEADER = "X-Cache-Fresh"  # seconds a value with a stale window stays fresh
GRANTED, HELD = "granted", "held"


def retry_after(wait: float) -> str:
    """HTTP's Retry-After: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


def lease_param(req: falcon.Request, name: str) -> float:
    """A lease time in seconds from the query string; its range is the
    engine's to check (InvalidLease)."""
    text = req.get_param(name)
    if text is None:
        raise ApiError(400, "missing_parameter", f"the query parameter {name} is required")
    try:
        number = float(text)
    except ValueError:
        raise ApiError(400, "invalid_lease", f"{name} must be a number of seconds, not {text!r}") from None
    return number


def grant_headers(grant: Grant) -> dict[str, str]:
    if grant.token is not None:
        return {LEASE_STATUS_HEADER: GRANTED, LEASE_HEADER: grant.token}
    return {LEASE_STATUS_HEADER: HELD, "Retry-After": retry_after(grant.wait)}


def grant_fields(grant: Grant) -> dict[str, object]:
    """What the body of an answer says of the grant (the token is only in the header)."""
    if grant.token is not None:
        return {"lease": GRANTED}
    return {"lease": HELD, "retry_after": round(grant.wait, 3)}


def leased_read(cache: Cache, req: falcon.Request, resp: falcon.Response, key: str) -> Entry:
    """The entry of ``GET /cache/{key}?lease=S``; on a miss the 404, with the
    lease granted or the word that it is held."""
    entry, grant = cache.get_or_lease(key, lease_param(req, "lease"))
    if grant is not None:
        if entry is None:
            raise ApiError(
                404, "not_found", f"no such key: {key!r}", headers=grant_headers(grant), key=key, **grant_fields(grant)
            )
        for name, value in grant_headers(grant).items():
            resp.set_header(name, value)
    assert entry is not None
    return entry


def stale_param(req: falcon.Request, settings: Settings, ttl: float | None) -> float | None:
    """The engine's ``stale`` option of a PUT (None without ``?stale=``):
    seconds, 0 to ``max_stale_time``. Without a TTL it is checked and has no
    effect (as stale-while-revalidate without max-age in HTTP): a value that
    never expires never turns stale."""
    text = req.get_param("stale") if req.query_string else None
    if text is None:
        return None
    try:
        stale = float(text)
    except ValueError:
        raise ApiError(400, "invalid_stale", f"stale must be a number of seconds, not {text!r}") from None
    return stale_field(stale, settings, ttl, text)


def stale_field(stale: float, settings: Settings, ttl: float | None, shown: str) -> float | None:
    """``stale_param``'s check of a number of seconds (``shown``: as the
    request wrote it), also for the ``stale`` field of a batch set: the
    engine's ``stale`` option, None without a TTL (see ``stale_param``)."""
    limit = settings.max_stale_time
    if not 0 <= stale <= limit:  # NaN fails too
        raise ApiError(
            400, "invalid_stale", f"stale must be at least 0 and at most {limit:g} seconds, not {shown}", limit=limit
        )
    if ttl is None:
        return None
    return int(stale) if stale.is_integer() else stale


def mark_if_stale(resp: falcon.Response, entry: Entry, now: float) -> None:
    """``X-Cache-Stale: true`` on the answer of a stale entry; on a fresh one
    with a stale window, ``X-Cache-Fresh``: the seconds it stays fresh
    (``X-Cache-TTL`` counts the window too), so that a copy kept by a client
    (a near cache) is not served as fresh past them."""
    mark = stale_mark(entry, now)
    if mark is not None:
        resp.set_header(*mark)


def stale_mark(entry: Entry, now: float) -> tuple[str, str] | None:
    """The header mark_if_stale sets, None for none (fastpath.py sets it too)."""
    if entry.is_stale(now):
        return STALE_HEADER, "true"
    if entry.fresh_until is not None:
        return FRESH_HEADER, f"{max(entry.fresh_until - now, 0.0):.3f}"
    return None


def lease_token(req: falcon.Request) -> str | None:
    """The token a request presents (``X-Cache-Lease``), None without one."""
    return req.env.get(LEASE_ENV)


class LeaseLocks(Resource):
    """``/cache/{key}/lease``: acquire (POST), release (DELETE), held? (GET)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        grant = self.cache.acquire_lease(key, lease_param(req, "ttl"))
        if grant.token is None:
            raise ApiError(
                409,
                "lease_held",
                f"the lease on {key!r} is held by another caller",
                headers=grant_headers(grant),
                key=key,
                **grant_fields(grant),
            )
        for name, value in grant_headers(grant).items():
            resp.set_header(name, value)
        send_json(resp, {"key": key, "token": grant.token, "ttl": grant.wait}, 201)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.check_key(key)
        token = lease_token(req)
        if not token:
            raise ApiError(400, "missing_header", f"releasing a lease needs its token in {LEASE_HEADER}")
        self.cache.release_lease(key, token)
        send_json(resp, {"key": key, "released": True})

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.check_key(key)
        left = self.cache.lease_remaining(key)
        send_json(resp, {"key": key, "held": left is not None, "ttl": None if left is None else round(left, 3)})


class StaleMarks(Resource):
    """``POST /cache/{key}/stale``: invalidate without deleting."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        self.check_key(key)
        if not self.cache.mark_stale(key, self.settings.stale_grace):
            raise ApiError(404, "not_found", f"no such key: {key!r}", key=key)
        send_json(resp, {"key": key, "stale": True})
