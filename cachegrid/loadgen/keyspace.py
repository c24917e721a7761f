"""A load test that never touches the server's own data: its keys, its room,
and its cleanup (``run_apart``, what ``cachegrid loadtest`` runs).

A load test writes: it fills its keyspace and SETs into it. Against a server
that holds real data, three things keep those writes apart from it:

1. **Its own keys.** Every key is ``<prefix><n>``, the prefix random per run
   (``loadtest:<8 hex digits>:``) unless the caller names one (a token may be
   limited to some prefixes). Before anything is written, the server's key
   listing (``GET /admin/keys?pattern=<prefix>``, followed page by page until
   its cursor ends: a page may be empty before the end) must hold no key
   under the prefix; otherwise the run is refused: those keys are someone's.

2. **No eviction.** An eviction would drop someone's entry to make room for
   the load test's. So the keyspace is capped, before the fill, at the room
   ``/stats`` shows free in items (``max_size - current_size``) and in bytes
   (``max_memory_bytes - memory_usage_bytes``), less a reserve (``RESERVE``)
   for what other clients write meanwhile. The bytes are counted as the
   server charges an entry: its key's and its value's length plus a per-entry
   overhead; ``ENTRY_OVERHEAD`` is above what every policy charges (the
   engine's measured ``entry_overhead`` plus ``ttl_overhead``, 180 bytes at
   most today) and the key length is the longest key's, so the estimate
   errs on the side of fewer keys. The run only ever replaces its own keys
   with values of the same length, so once the fill fits, the run fits too.
   When even a small keyspace (``MIN_KEYSPACE`` keys, or the batch size) does
   not fit, the run is refused and says why. Evictions are compared in
   ``/stats`` before and after, and the difference is reported (other
   clients' writes can cause some: the report does not hide them). A token
   without the metrics permission (docs/acl.md) is refused ``/stats``: the
   run then goes on with the keyspace asked, unchecked against the room
   (the report says so), and its evictions are unknown. Such a token is
   confined to its prefixes anyway, which is what the room check protects.

3. **Cleanup.** Afterwards the keyspace is deleted with batch deletes
   (chunks of at most the server's batch limit: 1,000 unless a 413 says
   less), also after an error, Ctrl-C or SIGTERM (the caller turns SIGTERM
   into KeyboardInterrupt), unless ``keep``. Signals are held back while it
   deletes, so a second Ctrl-C cannot leave half the keys behind; one that
   came is raised once the keys are gone.
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from .calls import FILL_CHUNK, request, stats
from .errors import LoadError, Refused
from .plan import Plan, Target
from .results import Report
from .runner import run

# Bytes charged per entry beyond its key and value: above every policy's
# entry_overhead + ttl_overhead (160 + 20 at most, measured by the engine's
# calibration), with room for a recalibration that finds a little more.
ENTRY_OVERHEAD = 256
# Part of the free room left to other clients' writes during the run.
RESERVE = 0.10
# Below this many keys (or the asked keyspace, when smaller) a load test is
# not worth running: refuse instead.
MIN_KEYSPACE = 10
# Pages of the key listing read at most for the prefix check (a server
# answering cursors forever must not hold the check forever).
MAX_PAGES = 1_000_000


def random_prefix() -> str:
    return f"loadtest:{secrets.token_hex(4)}:"


@dataclass
class Room:
    """What the server can take without evicting, and what one key costs."""

    items: int  # keys that fit in the free room (after the reserve)
    free_items: int
    free_bytes: int
    charge: int  # the estimated bytes of one key
    evictions: int


def room(stats: dict[str, Any], plan: Plan) -> Room:
    """How many of the plan's keys fit in the room ``/stats`` shows free."""
    longest_key = len(plan.prefix) + len(str(plan.keyspace - 1))
    charge = longest_key + plan.value_size + 2 + ENTRY_OVERHEAD  # the value is a JSON string: 2 quotes
    free_items = max(0, int(stats["max_size"]) - int(stats["current_size"]))
    free_bytes = max(0, int(stats["max_memory_bytes"]) - int(stats["memory_usage_bytes"]))
    usable = min(int(free_items * (1 - RESERVE)), int(free_bytes * (1 - RESERVE)) // charge)
    return Room(usable, free_items, free_bytes, charge, int(stats.get("evictions", 0)))


def fit(plan: Plan, space: Room) -> tuple[Plan, str | None]:
    """The plan with its keyspace capped at the room, and a sentence saying
    so (None when it fits as asked); Refused when too little fits."""
    if space.items >= plan.keyspace:
        return plan, None
    free = f"{space.free_items:,} items and {space.free_bytes / 2**20:,.1f} MiB free, about {space.charge} bytes a key"
    least = max(min(plan.keyspace, MIN_KEYSPACE), plan.batch)
    if space.items < least:
        raise Refused(
            f"the server has room for only {space.items:,} of the load test's keys without evicting "
            f"({free}; {least} needed): free some room or use another server"
        )
    return replace(plan, keyspace=space.items), (
        f"{space.items:,} keys of the {plan.keyspace:,} asked, to fit without evicting: {free}"
    )


def holds_keys(target: Target, prefix: str) -> bool:
    """Whether the server holds any key under ``prefix``."""
    cursor = None
    for _ in range(MAX_PAGES):
        path = f"/admin/keys?pattern={quote(prefix)}&limit=1"
        if cursor is not None:
            path += f"&cursor={quote(cursor)}"
        page = request(target, "GET", path)[1] or {}
        if page.get("keys"):
            return True
        cursor = page.get("cursor")
        if cursor is None:
            return False
    raise LoadError(f"the key listing of {target.url} did not end after {MAX_PAGES:,} pages")


def delete_keys(target: Target, plan: Plan) -> int:
    """Delete the plan's keyspace in batches; how many keys the server deleted."""
    chunk, first, deleted = FILL_CHUNK, 0, 0
    while first < plan.keyspace:
        last = min(plan.keyspace, first + chunk)
        keys = [f"{plan.prefix}{n}" for n in range(first, last)]
        try:
            answer = request(target, "POST", "/cache/batch/delete", {"keys": keys})[1]
        except LoadError as error:
            limit = error.body.get("limit") if isinstance(error.body, dict) else None
            if error.status == 413 and chunk > 1:  # a server with a smaller max_batch_size
                chunk = limit if isinstance(limit, int) and 0 < limit < chunk else max(1, chunk // 4)
                continue
            raise
        deleted += int((answer or {}).get("deleted", 0))
        first = last
    return deleted


@dataclass
class ApartReport:
    """A run's report and what ``run_apart`` did around it."""

    report: Report
    prefix: str
    keyspace: int
    keyspace_asked: int
    capped: str | None
    kept: bool
    deleted: int
    evictions: int | None  # evictions on the server during the run (None: /stats did not answer)
    room_checked: bool = True  # False: /stats was refused (no metrics permission), the keyspace is as asked

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict() | {
            "prefix": self.prefix,
            "keyspace": self.keyspace,
            "keyspace_asked": self.keyspace_asked,
            "keyspace_capped": self.capped,
            "kept": self.kept,
            "keys_deleted": self.deleted,
            "evictions_during_run": self.evictions,
            "room_checked": self.room_checked,
        }


def run_apart(
    target: Target, plan: Plan, keep: bool = False, on_progress: Callable[[int, float], None] | None = None
) -> ApartReport:
    """``run`` the plan on keys of its own (``plan.prefix``), capped to the
    free room, and delete them afterwards unless ``keep``. Refused when the
    prefix is taken or the room too small; LoadError when the server cannot
    be used (after the cleanup, which the message reports)."""
    before = stats(target)
    if holds_keys(target, plan.prefix):
        raise Refused(
            f"the server already holds keys under {plan.prefix!r}: they are not the load test's to overwrite "
            "or delete; give another --prefix"
        )
    space = None if before is None else room(before, plan)
    fitted, capped = (plan, None) if space is None else fit(plan, space)
    try:
        report = run(target, fitted, on_progress)
    except LoadError as error:
        if error.status == 403:  # the fill's first batch refused whole (docs/acl.md): nothing was written
            raise LoadError(
                f"{error}; nothing was written: the token may not write under {plan.prefix!r}", 403, error.body
            ) from None
        raise LoadError(f"{error}; {_clean_up(target, fitted, keep)}", error.status, error.body) from None
    except BaseException:
        _clean_up(target, fitted, keep)
        raise
    deleted = 0 if keep else _delete_held(target, fitted)
    after = None if space is None else stats(target)
    evictions = (
        int(after["evictions"]) - space.evictions if space is not None and after and "evictions" in after else None
    )
    return ApartReport(
        report, plan.prefix, fitted.keyspace, plan.keyspace, capped, keep, deleted, evictions, space is not None
    )


def _delete_held(target: Target, plan: Plan) -> int:
    with _signals_held():
        return delete_keys(target, plan)


def _clean_up(target: Target, plan: Plan, keep: bool) -> str:
    """Delete the keyspace after a failed run; a few words on how it went."""
    if keep:
        return f"its keys under {plan.prefix!r} are kept (--keep)"
    try:
        _delete_held(target, plan)
    except LoadError as error:
        return f"its keys under {plan.prefix!r} may remain: {error}"
    return f"its keys under {plan.prefix!r} were deleted"


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back for the block, then raise
    KeyboardInterrupt if one came (only the main thread handles signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {
        number: signal.signal(number, lambda n, _: came.append(n)) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if came:
        raise KeyboardInterrupt
