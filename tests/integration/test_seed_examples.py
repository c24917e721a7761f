"""Every curl example of the product description, run as written with curl
against a real server. Only the address changes: the examples say
localhost:8080, the test server listens on an ephemeral port."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(graceful=False) as instance:
        yield instance


@pytest.fixture
def run(server: Server) -> Callable[[str], str]:
    def run_example(example: str) -> str:
        command = example.replace("http://localhost:8080", server.url)
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run_example


def test_quick_start(run: Callable[[str], str]) -> None:
    health = json.loads(run("curl http://localhost:8080/health"))
    assert health["status"] == "healthy"
    stored = json.loads(
        run("""curl -X PUT "http://localhost:8080/cache/hello" \\
  -H "Content-Type: application/json" \\
  -d '"Hello CacheGrid!"\'""")
    )
    assert stored["key"] == "hello"
    assert json.loads(run('curl "http://localhost:8080/cache/hello"')) == "Hello CacheGrid!"


def test_basic_operations(run: Callable[[str], str]) -> None:
    run("""curl -X PUT "http://localhost:8080/cache/user:123" \\
  -H "Content-Type: application/json" \\
  -d '{"name": "Alice", "age": 30}\'""")
    stored = json.loads(
        run("""curl -X PUT "http://localhost:8080/cache/session:abc?ttl=3600" \\
  -H "Content-Type: application/json" \\
  -d '{"token": "xyz123", "user_id": "alice"}\'""")
    )
    assert stored["ttl"] == 3600
    assert json.loads(run('curl "http://localhost:8080/cache/user:123"')) == {"name": "Alice", "age": 30}
    assert json.loads(run('curl -X DELETE "http://localhost:8080/cache/user:123"'))["deleted"] is True
    assert json.loads(run('curl "http://localhost:8080/cache/user:123"'))["error"] == "not_found"
    cleared = json.loads(run('curl -X DELETE "http://localhost:8080/cache?confirm=true"'))
    assert cleared["cleared"] >= 1
    assert json.loads(run('curl "http://localhost:8080/cache/session:abc"'))["error"] == "not_found"


def test_batch_operations(run: Callable[[str], str]) -> None:
    stored = json.loads(
        run("""curl -X POST "http://localhost:8080/cache/batch/set" \\
  -H "Content-Type: application/json" \\
  -d '{
    "items": {
      "user:123": {"name": "Alice"},
      "user:456": {"name": "Bob"}
    },
    "ttl": 3600
  }\'""")
    )
    assert stored == {"stored": 2, "ttl": 3600}
    got = json.loads(
        run("""curl -X POST "http://localhost:8080/cache/batch/get" \\
  -H "Content-Type: application/json" \\
  -d '{"keys": ["user:123", "user:456"]}\'""")
    )
    assert got == {"items": {"user:123": {"name": "Alice"}, "user:456": {"name": "Bob"}}, "missing": []}


def test_administrative_operations(run: Callable[[str], str]) -> None:
    run("""curl -X POST "http://localhost:8080/cache/batch/set" -d '{"items": {"user:1": 1, "user:2": 2, "x": 3}}\'""")
    stats = json.loads(run('curl "http://localhost:8080/stats"'))
    for field in (
        "hits",
        "misses",
        "sets",
        "deletes",
        "evictions",
        "current_size",
        "max_size",
        "hit_ratio",
        "memory_usage_mb",
        "uptime_seconds",
    ):
        assert field in stats
    health = json.loads(run('curl "http://localhost:8080/health"'))
    for field in ("status", "uptime_seconds", "cache_size", "hit_ratio", "memory_usage_mb", "last_check"):
        assert field in health
    keys = json.loads(run('curl "http://localhost:8080/admin/keys?pattern=user:&limit=10"'))
    assert set(keys["keys"]) >= {"user:1", "user:2"} and "x" not in keys["keys"]
    load = json.loads(run('curl -X POST "http://localhost:8080/test/load?num_operations=1000&operation_type=mixed"'))
    assert load["num_operations"] == 1000 and load["operation_type"] == "mixed"


def test_manual_testing_and_troubleshooting(run: Callable[[str], str]) -> None:
    load = json.loads(run('curl -X POST "http://localhost:8080/test/load?num_operations=5000&operation_type=mixed"'))
    assert load["num_operations"] == 5000
    load = json.loads(run('curl -X POST "http://localhost:8080/test/load?num_operations=1000"'))
    assert load["num_operations"] == 1000
    assert "memory_usage_mb" in run('curl "http://localhost:8080/stats" | grep memory')
    assert "hit_ratio" in run('curl "http://localhost:8080/stats" | grep hit_ratio')
    assert json.loads(run('curl "http://localhost:8080/health"'))["status"] == "healthy"
    assert json.loads(run('curl -s "http://localhost:8080/stats"'))["current_size"] >= 0
