"""Deleting every key that matches a pattern, page by page, in the background.

Redis has no such command (users walk SCAN and DEL by hand). Here it is one
job: ``PatternDeletes.start(pattern)`` starts a thread that walks the slots
as key listing does (scan.py), ``scan_count`` slots per lock hold, deleting
the live keys that match (a prefix, or a glob with ``*``, ``?`` or
``[...]``), and yields the interpreter between two slices, so every other
request is served meanwhile and waits at most one slice. A key written
during the walk may or may not be deleted (as a key listing may or may not
return it); a key that matched and stayed for the whole walk is deleted.

A job reports its progress (``status()``): how many keys it deleted, how
many slices it took, its longest lock hold, whether it is done. The last
``KEPT_JOBS`` jobs stay to be asked about; at most ``max_running`` run at
once (a further one is refused with ``TooManyJobs``).

A pattern is checked first (``check_pattern``): a string of 1 up to the
longest key's length in characters, with no unclosed ``[`` (``CLOSED_SETS``). An empty pattern is refused: a
job that deletes everything is ``Cache.clear()``, asked for by name.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import CacheError, InvalidCursor
from .scan import _GLOB

if TYPE_CHECKING:
    from .cache import Cache

KEPT_JOBS = 100
# A pattern in which every '[' opens a set that a ']' closes (as a regex, for the API's document).
CLOSED_SETS = r"^([^\[]|\[(!?\][^\]]*|![^\]]+|[^!\]][^\]]*)\])*$"
DEFAULT_MAX_RUNNING = 4


class InvalidPattern(CacheError, ValueError):
    """A delete pattern that is empty, too long, not a string or malformed."""


class TooManyJobs(CacheError):
    """As many delete jobs run already as ``max_running`` allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} delete jobs are running, the limit: wait for one to finish")
        self.limit = limit


class JobNotFound(CacheError, KeyError):
    """No job with that id (never started, or among the forgotten old ones)."""

    def __str__(self) -> str:
        return f"no delete job {self.args[0]!r}"


def check_pattern(pattern: Any, max_length: int) -> str:
    """``pattern`` if a delete job may use it, else InvalidPattern."""
    if not isinstance(pattern, str):
        raise InvalidPattern(f"the pattern must be a string, not {type(pattern).__name__}")
    if not pattern:
        raise InvalidPattern("the pattern is empty: to remove every key, clear the cache")
    if len(pattern) > max_length:
        raise InvalidPattern(f"the pattern is {len(pattern)} characters long; a key is at most {max_length} bytes")
    if _GLOB.search(pattern) and not _brackets_closed(pattern):
        raise InvalidPattern(f"the pattern {pattern[:64]!r} has a '[' that is never closed")
    return pattern


def _brackets_closed(pattern: str) -> bool:
    """Whether every ``[`` of a glob opens a set that a ``]`` closes (fnmatch
    would read an unclosed one as a literal '[': almost surely a typo)."""
    index = 0
    while True:
        start = pattern.find("[", index)
        if start < 0:
            return True
        end = start + 1
        if end < len(pattern) and pattern[end] == "!":
            end += 1
        if end < len(pattern) and pattern[end] == "]":
            end += 1  # a ']' first in a set is a member
        end = pattern.find("]", end)
        if end < 0:
            return False
        index = end + 1


class PatternDelete:
    """One job: its pattern, its progress, its thread."""

    def __init__(self, cache: Cache, pattern: str, pause: Callable[[], None]) -> None:
        self.id = secrets.token_hex(8)
        self.pattern = pattern
        self.cache = cache
        self.pause = pause
        self.deleted = 0
        self.slices = 0
        self.longest_hold = 0.0  # seconds: the longest single lock hold
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"cachegrid-delete-{self.id}", daemon=True)

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def _run(self) -> None:
        cursor: str | None = None
        try:
            while True:
                deleted, cursor, held = self.cache.delete_page(self.pattern, cursor)
                self.deleted += deleted
                self.slices += 1
                self.longest_hold = max(self.longest_hold, held)
                if cursor is None:
                    break
                self.pause()
        except InvalidCursor:
            pass  # the cache was cleared meanwhile: nothing of the walk is left to do
        except Exception as error:  # reported in the status, never lost in a thread
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.finished_at = time.time()

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pattern": self.pattern,
            "done": self.done,
            "deleted": self.deleted,
            "slices": self.slices,
            "longest_lock_hold_ms": round(self.longest_hold * 1000, 3),
            "started_at": round(self.started_at, 3),
            "finished_at": None if self.finished_at is None else round(self.finished_at, 3),
            "error": self.error,
        }


def _yield_the_interpreter() -> None:
    time.sleep(0)


class PatternDeletes:
    """The delete jobs of one cache: start them, ask about them."""

    def __init__(
        self, cache: Cache, max_running: int = DEFAULT_MAX_RUNNING, pause: Callable[[], None] = _yield_the_interpreter
    ) -> None:
        if max_running.__class__ is not int or max_running < 1:
            raise ValueError(f"max_running must be a whole number of at least 1, not {max_running!r}")
        self.cache = cache
        self.max_running = max_running
        self.pause = pause
        self._jobs: OrderedDict[str, PatternDelete] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, pattern: Any) -> PatternDelete:
        pattern = check_pattern(pattern, self.cache.max_key_length)
        with self._lock:
            if sum(not job.done for job in self._jobs.values()) >= self.max_running:
                raise TooManyJobs(self.max_running)
            job = PatternDelete(self.cache, pattern, self.pause)
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT_JOBS:
                oldest = next(iter(self._jobs.values()))
                if not oldest.done:
                    break
                self._jobs.popitem(last=False)
        job.thread.start()
        return job

    def get(self, job_id: str) -> PatternDelete:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job
