"""The near cache's stream readers (client/stream.py): the SSE parsing and
checks on their own, against a scripted local server (a silent stream, a
restarted epoch, a gap), and against real ``cachegrid serve`` processes
under both workers: another client's write shows up as an invalidation, a
server killed and restarted cold drops everything. Every wait is bounded."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachegrid.client.near import NearCache
from cachegrid.client.stream import Follower, SSEParser, StreamLost
from cachegrid.testing import ServerProcess as Server
from tests.fixtures import worker_kinds

BOUND = 15.0
TOKEN = "near-secret"


def wait_for(condition: Callable[[], bool], bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.01)


def live(near: NearCache, node: str) -> bool:
    return near.reserve("__probe__", node) is not None


def read_through(near: NearCache, server: Server, key: str, headers: dict[str, str] | None = None) -> Any:
    """A read as the client will do it: reserve, GET, fill, and the value."""
    ticket = near.reserve(key, server.url)
    status, answer_headers, body = server.request("GET", f"/cache/{key}", headers=headers)
    near.fill(ticket, status, answer_headers, body)
    return status, body


# -- parsing and checking, without a server ------------------------------------------------


def test_the_parser_joins_events_split_anywhere() -> None:
    text = (
        b'id: e-1\nevent: reset\ndata: {"key": null}\n\n: heartbeat\n\n'
        b'id: e-2\r\nevent: set\r\ndata: {"key": "a"}\r\n\r\n'
    )
    for cut in range(len(text)):
        parser = SSEParser()
        events = parser.feed(text[:cut]) + parser.feed(text[cut:])
        assert events == [("e-1", "reset", b'{"key": null}'), ("e-2", "set", b'{"key": "a"}')], cut


def recorder() -> tuple[Follower, list[Any]]:
    seen: list[Any] = []
    follower = Follower("n", lambda node, kind, data: seen.append((kind, data)), lambda node: seen.append("live"))
    return follower, seen


def test_the_follower_wants_a_reset_first_then_ids_of_one_epoch_rising_by_one() -> None:
    follower, seen = recorder()
    with pytest.raises(StreamLost):
        follower.take("e-1", "set", b'{"key": "a"}')
    follower.take("e-5", "reset", b'{"key": null}')
    follower.take("e-6", "set", b'{"key": "a", "time": 1.5}')
    assert seen == [("reset", {"key": None}), "live", ("set", {"key": "a", "time": 1.5})]
    for event_id, kind in [("e-8", "set"), ("f-7", "set"), ("e-7", "reset")]:
        with pytest.raises(StreamLost):
            follower.take(event_id, kind, b'{"key": "a"}')


# -- a scripted server ------------------------------------------------------------------------


class Scripted:
    """A local listener answering each GET /events with ``script(connection_number)``
    (bytes after the headers), then holding the connection open and silent."""

    def __init__(self, script: Callable[[int], bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.script = script
        self.connections: list[socket.socket] = []
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            self.requests.append(request)
            self.connections.append(conn)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
            conn.sendall(head + self.script(len(self.connections)))

    def close(self) -> None:
        self.listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[int], bytes]], Scripted]]:
    made: list[Scripted] = []

    def make(script: Callable[[int], bytes]) -> Scripted:
        made.append(Scripted(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_silent_stream_is_lost_after_a_few_heartbeats_and_reopened(scripted: Any) -> None:
    server = scripted(lambda n: f'id: e{n}-1\nevent: reset\ndata: {{"key": null}}\n\n'.encode())
    near = NearCache(heartbeat=0.1)  # silent for 3 * 0.1 + 1 s: lost
    try:
        near.watch([server.url], {"Authorization": "Bearer x"}, 2.0)
        wait_for(lambda: live(near, server.url))
        assert b"Authorization: Bearer x" in server.requests[0]
        assert b"Last-Event-ID" not in server.requests[0]  # a new stream always starts afresh
        wait_for(lambda: near.stats()["resets"] >= 1)
        wait_for(lambda: near.stats()["reconnects"] >= 1 and live(near, server.url))
    finally:
        near.close()


def test_another_epoch_on_the_same_connection_drops_everything(scripted: Any) -> None:
    def script(n: int) -> bytes:
        return b'id: a-1\nevent: reset\ndata: {"key": null}\n\n' if n == 1 else b""

    server = scripted(script)
    near = NearCache()
    try:
        near.watch([server.url], {}, 2.0)
        wait_for(lambda: live(near, server.url))
        ticket = near.reserve("k", server.url)
        near.fill(ticket, 200, {"X-Cache-Type": "json"}, b"1")
        assert near.lookup("k") == (True, 1)
        server.connections[0].sendall(b'id: b-2\nevent: set\ndata: {"key": "other"}\n\n')
        wait_for(lambda: near.lookup("k") == (False, None))
        assert near.stats()["resets"] == 1
    finally:
        near.close()


def test_the_fill_race_through_a_reader_thread(scripted: Any) -> None:
    """The race end to end, in a fixed order: a read is reserved, the key's
    event comes over the stream while the answer is "in flight", then the
    old answer arrives: it is not stored. (The order is forced by waiting
    for the event to be counted, not by sleeping.)"""
    server = scripted(lambda n: b'id: a-1\nevent: reset\ndata: {"key": null}\n\n')
    near = NearCache()
    try:
        near.watch([server.url], {}, 2.0)
        wait_for(lambda: live(near, server.url))
        ticket = near.reserve("k", server.url)
        server.connections[0].sendall(b'id: a-2\nevent: set\ndata: {"key": "k", "time": 1.0}\n\n')
        wait_for(lambda: near.stats()["invalidations"] == 1)
        near.fill(ticket, 200, {"X-Cache-Type": "json"}, b'"old"')
        assert near.lookup("k") == (False, None)
        fresh = near.reserve("k", server.url)  # reserved after the event: its answer is stored
        near.fill(fresh, 200, {"X-Cache-Type": "json"}, b'"new"')
        assert near.lookup("k") == (True, "new")
    finally:
        near.close()


def test_an_https_node_is_not_followed_and_its_reads_pass_through() -> None:
    near = NearCache()
    near.watch(["https://127.0.0.1:1"], {}, 1.0)
    assert near.reserve("k", "https://127.0.0.1:1") is None
    assert near.stats()["streams"] == 0
    near.close()


# -- real servers -------------------------------------------------------------------------------


@pytest.mark.parametrize("worker", worker_kinds())
def test_another_clients_write_invalidates(start_server: Callable[..., Server], worker: str) -> None:
    server = start_server("--worker", worker, env={"CACHEGRID_AUTH_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    near = NearCache()
    try:
        near.watch([server.url], auth, 2.0)
        wait_for(lambda: live(near, server.url))
        assert server.request("PUT", "/cache/user:1?ttl=300", body={"n": 1}, headers=auth)[0] == 201
        assert server.request("PUT", "/cache/tagged?tags=t1", body=[1], headers=auth)[0] == 201
        time.sleep(0.2)  # (the writes' own events: they would cancel the fills below, rightly)
        read_through(near, server, "user:1", auth)
        read_through(near, server, "tagged", auth)
        assert near.lookup("user:1") == (True, {"n": 1}) and near.lookup("tagged") == (True, [1])
        # Another plain client writes: the event drops the copy.
        assert server.request("PUT", "/cache/user:1", body={"n": 2}, headers=auth)[0] == 200
        wait_for(lambda: near.lookup("user:1") == (False, None))
        assert server.request("POST", "/tags/t1/invalidate", headers=auth)[0] == 200
        wait_for(lambda: near.lookup("tagged") == (False, None))
        stats = near.stats()
        assert stats["invalidations"] >= 2 and stats["last_event_delay"] is not None
        assert stats["last_event_delay"] >= 0 and stats["streams_live"] == 1
    finally:
        near.close()


def test_without_the_token_the_stream_never_goes_live(start_server: Callable[..., Server]) -> None:
    server = start_server("--worker", "gthread", env={"CACHEGRID_AUTH_TOKEN": TOKEN})
    near = NearCache()
    try:
        near.watch([server.url], {}, 2.0)
        wait_for(lambda: near.stats()["reconnects"] >= 1)  # refused (401), tried again
        assert near.reserve("k", server.url) is None
    finally:
        near.close()


@pytest.mark.parametrize("worker", worker_kinds())
def test_a_server_killed_and_restarted_cold_drops_everything(start_server: Callable[..., Server], worker: str) -> None:
    server = start_server("--worker", worker)
    near = NearCache()
    try:
        near.watch([server.url], {}, 2.0)
        wait_for(lambda: live(near, server.url))
        server.request("PUT", "/cache/k", body="v1")
        time.sleep(0.2)
        read_through(near, server, "k")
        assert near.lookup("k") == (True, "v1")
        server.kill()
        wait_for(lambda: near.lookup("k") == (False, None))  # the stream's EOF, at once
        assert near.reserve("k", server.url) is None
        assert near.stats()["resets"] == 1
        restarted = start_server("--worker", worker, "--port", str(server.port))  # cold: nothing in it
        wait_for(lambda: live(near, restarted.url))
        assert near.stats()["reconnects"] >= 1 and near.lookup("k") == (False, None)
        status, _ = read_through(near, restarted, "k")
        assert status == 404 and near.lookup("k") == (False, None)
    finally:
        near.close()


def test_one_stream_per_node_and_a_lost_node_drops_only_its_entries(start_server: Callable[..., Server]) -> None:
    first, second = start_server("--worker", "gthread"), start_server("--worker", "gthread")
    near = NearCache()
    try:
        near.watch([first.url, second.url], {}, 2.0)
        near.watch([first.url], {}, 2.0)  # idempotent: still one reader per node
        wait_for(lambda: live(near, first.url) and live(near, second.url))
        assert near.stats()["streams"] == 2
        first.request("PUT", "/cache/a", body=1)
        second.request("PUT", "/cache/b", body=2)
        time.sleep(0.2)
        read_through(near, first, "a")
        read_through(near, second, "b")
        first.kill()
        wait_for(lambda: near.lookup("a") == (False, None))
        assert near.lookup("b") == (True, 2) and live(near, second.url)
    finally:
        near.close()


@pytest.mark.parametrize("worker", worker_kinds())
def test_readers_agree_with_the_server_after_a_bounded_run_of_writes(
    start_server: Callable[..., Server], worker: str
) -> None:
    """One writer (a plain client), one near-cached reader reading through
    as fast as it can, for a bounded time; then every local hit is what the
    server holds."""
    server = start_server("--worker", worker)
    near = NearCache()
    keys = [f"c{i}" for i in range(8)]
    stop = threading.Event()

    def write() -> None:
        connection = server.connection()
        n = 0
        while not stop.is_set():
            n += 1
            connection.request("PUT", f"/cache/{keys[n % len(keys)]}", body=str(n).encode())
            connection.getresponse().read()
        connection.close()

    try:
        near.watch([server.url], {}, 2.0)
        wait_for(lambda: live(near, server.url))
        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 2.0
        connection = server.connection()
        while time.monotonic() < deadline:
            for key in keys:
                if not near.lookup(key)[0]:
                    ticket = near.reserve(key, server.url)
                    connection.request("GET", f"/cache/{key}")
                    response = connection.getresponse()
                    near.fill(ticket, response.status, dict(response.getheaders()), response.read())
        connection.close()
        stop.set()
        writer.join(BOUND)
        time.sleep(0.5)  # the last events arrive (the invalidation delay is milliseconds)
        for key in keys:
            hit, value = near.lookup(key)
            if hit:
                assert value == int(server.request("GET", f"/cache/{key}")[2]), key
        assert near.stats()["hits"] > 0 and near.stats()["invalidations"] > 0
    finally:
        stop.set()
        near.close()
