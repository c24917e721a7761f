"""Warm restarts on real servers: SIGTERM and start again, kill -9 of the
worker, every bad file, a snapshot while load runs, and odd keys and values.

Bounded: 10,000 keys at most, every wait has a deadline. The 1M-entry
figures are in benchmarks/snapshot_bench.py.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cachegrid.testing import ServerProcess
from tests.fixtures import worker_kinds

KEYS = 10_000
BATCH = 1000


def body(answer: tuple[int, dict[str, str], bytes]) -> Any:
    return json.loads(answer[2])


def snapshot_state(server: ServerProcess) -> dict[str, Any]:
    return body(server.request("GET", "/admin/snapshot"))


def snapshot_now(server: ServerProcess, timeout: float = 60.0) -> dict[str, Any]:
    """POST /admin/snapshot and wait for it to finish; the state after it."""
    written = snapshot_state(server)["written"]
    status, _, raw = server.request("POST", "/admin/snapshot")
    assert status == 202, raw
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = snapshot_state(server)
        if not state["running"] and state["written"] + state["failed"] > written:
            assert state["last"]["result"] == "ok", state
            return state
        time.sleep(0.05)
    raise AssertionError(f"the snapshot did not finish within {timeout} s: {snapshot_state(server)}")


def put_many(server: ServerProcess, items: dict[str, Any], ttl: float | None = None) -> None:
    keys = list(items)
    for start in range(0, len(keys), BATCH):
        chunk = {key: items[key] for key in keys[start : start + BATCH]}
        status, _, raw = server.request("POST", "/cache/batch/set", {"items": chunk, "ttl": ttl})
        assert status == 200, raw


def get_many(server: ServerProcess, keys: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(keys), BATCH):
        status, _, raw = server.request("POST", "/cache/batch/get", {"keys": keys[start : start + BATCH]})
        assert status == 200, raw
        found.update(json.loads(raw)["items"])
    return found


def size(server: ServerProcess) -> int:
    return body(server.request("GET", "/stats"))["current_size"]


def wait_for_new_worker(server: ServerProcess, old: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [pid for pid in server.workers() if pid != old]
        if workers:
            server.wait_healthy()
            return workers[0]
        time.sleep(0.05)
    raise AssertionError(f"no new worker within {timeout} s:\n{server.output()}")


@pytest.mark.parametrize("worker", worker_kinds())
def test_sigterm_and_start_again_brings_every_key_back(worker: str, start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    args = ("--worker", worker, "--max-size", "20000", "--snapshot-path", str(path))
    server = start_server(*args)
    forever = {f"user:{number}": {"id": number, "name": f"User {number}"} for number in range(KEYS - 2000)}
    lasting = {f"session:{number}": f"s{number}" for number in range(1000)}
    brief = {f"flash:{number}": number for number in range(1000)}
    put_many(server, forever)
    put_many(server, lasting, ttl=600)
    put_many(server, brief, ttl=2)
    sample = ["user:0", "user:77", "session:5"]
    etags = {key: server.request("GET", f"/cache/{key}")[1]["etag"] for key in sample}
    ttl_before = body(server.request("GET", "/cache/session:5/ttl"))["ttl"]
    stopped_at = time.time()
    assert server.stop() == 0

    time.sleep(2.2)  # the brief keys run out while the server is down
    again = start_server(*args)
    downtime = time.time() - stopped_at
    assert get_many(again, list(forever)) == forever
    assert get_many(again, list(lasting)) == lasting
    assert get_many(again, list(brief)) == {}
    assert size(again) == len(forever) + len(lasting)
    ttl_after = body(again.request("GET", "/cache/session:5/ttl"))["ttl"]
    assert abs(ttl_after - (ttl_before - downtime)) < 1.0
    loaded = snapshot_state(again)["loaded"]
    assert (loaded["result"], loaded["entries"], loaded["expired"]) == ("ok", len(forever) + len(lasting), 1000)
    # A new ETag epoch at each start: compare-and-set with an old ETag is refused, never a wrong success.
    for key, etag in etags.items():
        status, _, raw = again.request("PUT", f"/cache/{key}", {"changed": True}, headers={"If-Match": etag})
        assert status == 412, raw
        assert again.request("GET", f"/cache/{key}")[1]["etag"] != etag
    assert get_many(again, sample) == {key: ({**forever, **lasting})[key] for key in sample}


@pytest.mark.parametrize("worker", worker_kinds())
def test_kill_9_of_the_worker_comes_back_with_the_snapshots_data(worker: str, start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    server = start_server("--worker", worker, "--snapshot-path", str(path), "--snapshot-interval", "0")
    items = {f"k{number}": number for number in range(2000)}
    put_many(server, items)
    state = snapshot_now(server)
    assert state["last"]["entries"] == 2000
    put_many(server, {"after the snapshot": 1})  # lost by a kill -9: documented
    [worker_pid] = server.workers()
    os.kill(worker_pid, signal.SIGKILL)
    wait_for_new_worker(server, worker_pid)
    assert get_many(server, list(items)) == items
    assert get_many(server, ["after the snapshot"]) == {}
    assert snapshot_state(server)["loaded"]["entries"] == 2000


def test_interval_snapshots_run_in_the_background(start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    server = start_server("--snapshot-path", str(path), "--snapshot-interval", "1")
    put_many(server, {"a": 1, "b": 2})
    deadline = time.monotonic() + 30
    while snapshot_state(server)["written"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    state = snapshot_state(server)
    assert state["written"] >= 2 and state["last"]["trigger"] == "interval" and state["last"]["entries"] == 2
    stats = body(server.request("GET", "/stats"))
    assert stats["snapshot_last_result"] == "ok" and stats["snapshots_written"] >= 2
    metrics = server.request("GET", "/metrics")[2].decode()
    assert "cachegrid_snapshot_last_success 1.0" in metrics


def test_no_shutdown_snapshot_when_turned_off(start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    env = {"CACHEGRID_SNAPSHOT_ON_SHUTDOWN": "false", "CACHEGRID_SNAPSHOT_INTERVAL": "0"}
    server = start_server("--snapshot-path", str(path), env=env)
    put_many(server, {"a": 1})
    assert server.stop() == 0
    assert not path.exists()


def test_admin_snapshot_answers_409_while_one_runs_and_when_off(start_server, tmp_path: Path) -> None:
    server = start_server(
        "--snapshot-path", str(tmp_path / "cache.snap"), "--snapshot-interval", "0", "--max-size", "300000"
    )
    for start in range(0, 200_000, 10_000):  # enough that the write takes a moment
        put_many(server, {f"k{number}": "x" * 40 for number in range(start, start + 10_000)})
    first = server.request("POST", "/admin/snapshot")
    second = server.request("POST", "/admin/snapshot")
    assert first[0] == 202 and body(first)["running"] is True
    if second[0] != 409:  # the first one was already done: the machine was quick
        assert second[0] == 202
    else:
        assert body(second)["error"] == "snapshot_running"
    off = start_server()
    answer = off.request("POST", "/admin/snapshot")
    assert answer[0] == 409 and body(answer)["error"] == "snapshots_off"
    assert body(off.request("GET", "/admin/snapshot"))["enabled"] is False


# -- bad files -------------------------------------------------------------------


def good_snapshot(start_server, path: Path) -> bytes:
    server = start_server("--snapshot-path", str(path), "--snapshot-interval", "0")
    put_many(server, {f"k{number}": number for number in range(500)})
    server.stop()
    return path.read_bytes()


BAD = {
    "corrupt byte": (lambda data: data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:], "checksum does not match"),
    "truncated": (lambda data: data[: len(data) * 2 // 3], "cut short"),
    "garbage": (lambda data: os.urandom(3000).replace(b"\x89", b"\x00"), "not a CacheGrid snapshot"),
    "future version": (lambda data: data[:8] + struct.pack("<H", 99) + data[10:], "snapshot format 99"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_starts_empty_and_healthy_says_why_and_is_kept(case: str, start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    damage, problem = BAD[case]
    bad = damage(good_snapshot(start_server, path))
    path.write_bytes(bad)
    server = start_server("--snapshot-path", str(path), "--snapshot-interval", "0")
    assert server.request("GET", "/health")[0] == 200
    assert size(server) == 0
    lines = [line for line in server.output().splitlines() if "cannot be loaded" in line]
    assert len(lines) == 1 and str(path) in lines[0] and problem in lines[0], server.output()
    [aside] = tmp_path.glob("cache.snap.bad-*")
    assert aside.read_bytes() == bad and str(aside) in lines[0]
    loaded = snapshot_state(server)["loaded"]
    assert loaded["result"] == "failed" and problem in loaded["error"] and loaded["moved_to"] == str(aside)
    put_many(server, {"still": "serving"})
    assert get_many(server, ["still"]) == {"still": "serving"}


# -- under load ----------------------------------------------------------------------


@pytest.mark.parametrize("worker", worker_kinds())
def test_a_snapshot_while_load_runs_fails_no_request(worker: str, start_server, tmp_path: Path) -> None:
    server = start_server(
        "--worker",
        worker,
        "--snapshot-path",
        str(tmp_path / "cache.snap"),
        "--snapshot-interval",
        "0",
        "--max-size",
        "20000",
    )
    put_many(server, {f"k{number}": {"n": number, "pad": "x" * 50} for number in range(KEYS)})
    stop = threading.Event()
    failures: list[str] = []
    latencies: list[tuple[float, float]] = []  # (finished at, seconds)

    def load(offset: int) -> None:
        connection = server.connection(timeout=10)
        number = offset
        while not stop.is_set():
            number = (number + 7) % KEYS
            method, path, payload = (
                ("GET", f"/cache/k{number}", None)
                if number % 4
                else ("PUT", f"/cache/k{number}", json.dumps({"n": number}).encode())
            )
            started = time.perf_counter()
            try:
                connection.request(method, path, body=payload)
                response = connection.getresponse()
                response.read()
                if response.status not in (200, 201):
                    failures.append(f"{method} {path}: {response.status}")
            except OSError as error:
                failures.append(f"{method} {path}: {error!r}")
                connection.close()
                connection = server.connection(timeout=10)
            finished = time.perf_counter()
            latencies.append((finished, finished - started))
        connection.close()

    threads = [threading.Thread(target=load, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        began = time.perf_counter()
        state = snapshot_now(server)
        ended = time.perf_counter()
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    during = [seconds for finished, seconds in latencies if began <= finished <= ended + 0.05]
    print(
        f"\n{worker}: {len(during)} requests during a {state['last']['duration_seconds'] * 1000:.0f} ms "
        f"snapshot of {state['last']['entries']} entries; longest {max(during) * 1000:.1f} ms "
        f"(shared machine)"
    )
    assert not failures, failures[:5]
    assert during and state["last"]["entries"] == KEYS


# -- odd keys and values -------------------------------------------------------------


def test_large_values_any_key_and_an_empty_cache_survive_a_restart(start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    args = ("--snapshot-path", str(path), "--snapshot-interval", "0")
    env = {"CACHEGRID_MAX_VALUE_SIZE": str(256 * 1024)}
    server = start_server(*args, env=env)
    assert server.stop() == 0  # an empty cache first
    server = start_server(*args, env=env)
    assert size(server) == 0 and snapshot_state(server)["loaded"] == {
        **snapshot_state(server)["loaded"],
        "result": "ok",
        "entries": 0,
    }
    largest = "x" * (256 * 1024 - 2)  # its JSON encoding, with the quotes, is max_value_size
    keys = {
        "with space": 1,
        "quote\"and'apostrophe": 2,
        "ünïcødé/日本語": 3,
        "emoji 🎉?&=#%": 4,
        "tab\there": 5,
        "big": largest,
    }
    for key, value in keys.items():
        status, _, raw = server.request("PUT", f"/cache/{quote(key, safe='')}", value)
        assert status == 201, (key, raw)
    assert server.stop() == 0
    server = start_server(*args, env=env)
    for key, value in keys.items():
        status, _, raw = server.request("GET", f"/cache/{quote(key, safe='')}")
        assert status == 200 and json.loads(raw) == value, key


@pytest.mark.parametrize("worker", worker_kinds())
def test_sighup_hands_the_cache_over_to_the_new_worker(worker: str, start_server, tmp_path: Path) -> None:
    server = start_server(
        "--worker", worker, "--snapshot-path", str(tmp_path / "cache.snap"), "--snapshot-interval", "0"
    )
    items = {f"k{number}": number for number in range(3000)}
    put_many(server, items)  # no snapshot yet: SIGHUP takes a fresh one for the new worker
    [old] = server.workers()
    server.process.send_signal(signal.SIGHUP)
    new = wait_for_new_worker(server, old)
    deadline = time.monotonic() + 30
    while old in server.workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.workers() == [new]
    assert get_many(server, list(items)) == items
    assert snapshot_state(server)["loaded"]["entries"] == 3000
    assert "handed over a snapshot of 3000 entries" in server.output()


def test_sighup_hands_over_through_a_server_that_needs_a_token(start_server, tmp_path: Path) -> None:
    token = "s3cret-token"
    server = start_server(
        "--snapshot-path", str(tmp_path / "cache.snap"), "--snapshot-interval", "0", env={"CACHEGRID_AUTH_TOKEN": token}
    )
    auth = {"Authorization": f"Bearer {token}"}
    assert server.request("POST", "/cache/batch/set", {"items": {"a": 1, "b": 2}}, headers=auth)[0] == 200
    [old] = server.workers()
    server.process.send_signal(signal.SIGHUP)
    wait_for_new_worker(server, old)
    deadline = time.monotonic() + 30
    while old in server.workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    status, _, raw = server.request("POST", "/cache/batch/get", {"keys": ["a", "b"]}, headers=auth)
    assert status == 200 and json.loads(raw)["items"] == {"a": 1, "b": 2}
    assert "handed over a snapshot of 2 entries" in server.output()


def test_a_restart_under_another_policy_and_smaller_limits_keeps_the_hottest(start_server, tmp_path: Path) -> None:
    path = tmp_path / "cache.snap"
    server = start_server(
        "--snapshot-path", str(path), "--snapshot-interval", "0", "--policy", "lru", "--max-size", "1000"
    )
    put_many(server, {f"k{number}": number for number in range(1000)})
    recent = [f"k{number}" for number in range(0, 1000, 10)]
    get_many(server, recent)  # the 100 most recently used, in this order
    assert server.stop() == 0
    again = start_server("--snapshot-path", str(path), "--policy", "lfu", "--max-size", "100")
    assert get_many(again, recent) == {key: int(key[1:]) for key in recent}
    loaded = snapshot_state(again)["loaded"]
    assert (loaded["entries"], loaded["left_out"], loaded["policy"]) == (100, 900, "lru")
    assert body(again.request("GET", "/stats"))["evictions"] == 0
