"""Delete by pattern (engine/pattern_delete.py): the pattern's checks, the
job's walk in bounded pages, its status, and the limit of running jobs."""

from __future__ import annotations

import threading
import time

import pytest

from cachegrid.engine import Cache
from cachegrid.engine.cache import DELETE_BATCH
from cachegrid.engine.pattern_delete import (
    InvalidPattern,
    JobNotFound,
    PatternDelete,
    PatternDeletes,
    TooManyJobs,
    check_pattern,
)


def finished(job: PatternDelete) -> PatternDelete:
    job.thread.join(30)
    assert job.done
    return job


@pytest.mark.parametrize("pattern", ["", None, 3, "x" * 251, "user:[ab", "[!]", "[]"])
def test_bad_patterns_are_refused(pattern: object) -> None:
    with pytest.raises(InvalidPattern):
        check_pattern(pattern, 250)


@pytest.mark.parametrize("pattern", ["user:", "user:*", "a[bc]?", "[]]x", "[!]]", "*"])
def test_good_patterns_pass(pattern: str) -> None:
    assert check_pattern(pattern, 250) == pattern


def test_a_page_deletes_at_most_a_batch_of_the_matching_keys() -> None:
    cache = Cache("lru", max_size=5000)
    cache.set_many({f"a:{n}": b"1" for n in range(1000)})
    cache.set_many({f"b:{n}": b"1" for n in range(1000)})
    deleted, cursor, held = cache.delete_page("a:*")
    assert deleted == DELETE_BATCH and cursor is not None and held >= 0
    while cursor is not None:
        more, cursor, _ = cache.delete_page("a:*", cursor)
        deleted += more
    assert deleted == 1000 and len(cache) == 1000 and cache.get("b:1") == b"1"


def test_a_job_reports_its_progress_and_its_longest_hold() -> None:
    cache = Cache("tinylfu", max_size=20_000)
    cache.set_many({f"user:{n}": b"1" for n in range(10_000)})
    cache.set("keep", b"1")
    job = finished(PatternDeletes(cache).start("user:"))
    status = job.status()
    assert status["deleted"] == 10_000 and status["slices"] >= 10_000 // DELETE_BATCH
    assert status["error"] is None and status["longest_lock_hold_ms"] > 0
    assert len(cache) == 1


def test_the_lock_is_free_between_two_slices() -> None:
    cache = Cache("lru", max_size=20_000)
    cache.set_many({f"user:{n}": b"1" for n in range(10_000)})
    cache.set("keep", b"1")
    served = []

    def pause() -> None:  # between two slices another caller takes the lock (a held one would block here)
        served.append(cache._lock.acquire(timeout=5) and (cache._lock.release() or cache._store.get("keep")))

    job = finished(PatternDeletes(cache, pause=pause).start("user:*"))
    assert len(served) == job.slices - 1 >= 10_000 // DELETE_BATCH and set(served) == {b"1"}


def test_at_most_max_running_jobs_run_at_once_and_finished_ones_are_kept() -> None:
    cache = Cache("lru", max_size=20_000)
    cache.set_many({f"user:{n}": b"1" for n in range(5_000)})
    release = threading.Event()
    jobs = PatternDeletes(cache, max_running=1, pause=lambda: release.wait(30))
    first = jobs.start("user:")
    with pytest.raises(TooManyJobs) as raised:
        jobs.start("other:")
    assert raised.value.limit == 1 and not first.done
    release.set()
    finished(first)
    assert jobs.get(first.id) is first
    finished(jobs.start("other:"))  # room again
    with pytest.raises(JobNotFound):
        jobs.get("nope")


def test_a_clear_during_the_job_ends_it_without_an_error() -> None:
    cache = Cache("lru", max_size=20_000)
    cache.set_many({f"user:{n}": b"1" for n in range(5_000)})
    cleared = []

    def clear_once() -> None:
        if not cleared:
            cleared.append(cache.clear())
            time.sleep(0)

    job = finished(PatternDeletes(cache, pause=clear_once).start("user:"))
    assert job.error is None and job.deleted == DELETE_BATCH and cleared == [5_000 - DELETE_BATCH]
