"""``cachegrid.loadgen.run`` and the plain calls, in-process against a real
server (as the benchmarks use them, without the CLI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cachegrid.loadgen import LoadError, Plan, Target, run, server_side
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port, running


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(env={"CACHEGRID_AUTH_TOKEN": "loadgen-test-token"}, graceful=False) as started:
        yield started


def test_a_run_over_two_processes_sends_exactly_its_requests(server: Server) -> None:
    seen: list[int] = []
    report = run(
        Target.parse(server.url, "loadgen-test-token"),
        Plan(requests=601, concurrency=3, processes=2, keyspace=20, pipeline=2, seed=5),
        lambda done, elapsed: seen.append(done),
    )
    assert report.requests == 601 and report.gets + report.sets == 601 and not report.errors
    assert report.processes == 2 and report.concurrency == 3
    assert seen and seen == sorted(seen) and seen[-1] <= 601


def test_the_errors_carry_the_status_the_server_answered_with(server: Server) -> None:
    with pytest.raises(LoadError, match="token") as refused:
        run(Target.parse(server.url, "wrong"), Plan(requests=10, concurrency=1, processes=1))
    assert refused.value.status == 401
    with pytest.raises(LoadError) as missing:
        server_side(Target.parse(server.url), 10, "get")
    assert missing.value.status == 401
    with pytest.raises(LoadError, match="no CacheGrid server answered") as down:
        run(Target.parse(f"http://127.0.0.1:{free_port()}"), Plan(requests=10, concurrency=1, processes=1))
    assert down.value.status is None
