"""The background snapshot: a forked copy written while the cache keeps serving."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cachegrid.engine import Cache
from cachegrid.engine.snapshot import SnapshotRunning, Snapshotter, read_file

pytestmark = pytest.mark.process  # os.fork: a process, left out of the fast run


def filled(count: int) -> Cache:
    cache = Cache("lru", max_size=count + 10)
    for number in range(count):
        cache.set(f"k{number}", b"%d" % number)
    return cache


def test_a_background_snapshot_holds_the_cache_as_it_was_at_the_fork(tmp_path: Path) -> None:
    cache = filled(20_000)
    snapshotter = Snapshotter(cache, tmp_path / "cache.snap", producer="test")
    state = snapshotter.start()
    assert state["running"] is True
    cache.set("written after the fork", b"1")  # served at once, and not in this snapshot
    cache.delete("k0")
    assert snapshotter.wait(timeout=60)
    last = snapshotter.status()["last"]
    assert (last["result"], last["entries"], last["trigger"]) == ("ok", 20_000, "request")
    assert last["bytes"] == (tmp_path / "cache.snap").stat().st_size
    records = {key: value for key, value, *_ in read_file(tmp_path / "cache.snap").records}
    assert len(records) == 20_000 and records["k0"] == b"0" and "written after the fork" not in records
    assert snapshotter.status()["running"] is False and snapshotter.snapshots_written == 1


def test_one_snapshot_at_a_time(tmp_path: Path) -> None:
    snapshotter = Snapshotter(filled(200_000), tmp_path / "cache.snap")
    snapshotter.start()
    try:
        with pytest.raises(SnapshotRunning, match="still being written"):
            snapshotter.start()
    finally:
        assert snapshotter.wait(timeout=60)
    snapshotter.start()  # and a new one once it is done
    assert snapshotter.wait(timeout=60)
    assert snapshotter.snapshots_written == 2


def test_requests_are_answered_while_the_child_writes(tmp_path: Path) -> None:
    cache = filled(200_000)
    snapshotter = Snapshotter(cache, tmp_path / "cache.snap")
    done = threading.Event()
    answered = 0
    snapshotter.start()
    threading.Thread(target=lambda: (snapshotter.wait(60), done.set()), daemon=True).start()
    while not done.is_set():
        assert cache.get("k1") == b"1"
        cache.set("busy", b"x")
        answered += 1
    assert answered > 0 and snapshotter.last.result == "ok"


def test_a_failed_write_is_reported_and_the_next_one_works(tmp_path: Path) -> None:
    cache = filled(100)
    snapshotter = Snapshotter(cache, tmp_path / "missing directory" / "cache.snap")
    snapshotter.start()
    assert snapshotter.wait(timeout=60)
    last = snapshotter.status()["last"]
    assert last["result"] == "failed" and "FileNotFoundError" in last["error"]
    assert snapshotter.snapshots_failed == 1
    (tmp_path / "missing directory").mkdir()
    snapshotter.start()
    assert snapshotter.wait(timeout=60) and snapshotter.last.result == "ok"


def test_a_killed_child_is_reported_and_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import time

    from cachegrid.engine import snapshot as snapshot_module

    cache = filled(100)
    path = tmp_path / "cache.snap"
    snapshotter = Snapshotter(cache, path)
    snapshotter.write_now("request")
    before = path.read_bytes()
    for number in range(50):
        cache.set(f"more{number}", b"x" * 20)
    real_write = snapshot_module.write_file

    def stalled(path: Path, entries: Iterator[Any], count: int, meta: dict[str, Any]) -> int:
        """The child's writer, stopped for good halfway: it is killed there, never
        between its rename and its report (as it could be if it were let run)."""

        def halfway() -> Iterator[Any]:
            for number, entry in enumerate(entries):
                if number == 20:
                    time.sleep(120)
                yield entry

        return real_write(path, halfway(), count, meta)

    monkeypatch.setattr(snapshot_module, "write_file", stalled)
    snapshotter.start()
    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:  # its partial file, being written
        time.sleep(0.01)
    os.kill(snapshotter._running.pid, signal.SIGKILL)  # type: ignore[union-attr]
    assert snapshotter.wait(timeout=60)
    assert snapshotter.last.result == "failed" and "ended with status" in snapshotter.last.error
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.snap"]  # its partial file is gone


def test_the_interval_thread_writes_snapshots_and_stops_at_shutdown(tmp_path: Path) -> None:
    cache = filled(100)
    snapshotter = Snapshotter(cache, tmp_path / "cache.snap", interval=0.2)
    snapshotter.start_interval()
    deadline = time.monotonic() + 30
    while snapshotter.snapshots_written < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert snapshotter.snapshots_written >= 2 and snapshotter.last.trigger == "interval"
    cache.set("last word", b"1")
    snapshotter.shutdown()
    assert snapshotter.last.trigger == "shutdown"
    assert "last word" in {key for key, *_ in read_file(tmp_path / "cache.snap").records}
    with pytest.raises(SnapshotRunning, match="shutting down"):
        snapshotter.start()
