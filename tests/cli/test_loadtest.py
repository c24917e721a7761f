"""``cachegrid loadtest`` against real servers (``cachegrid serve`` subprocesses
on 127.0.0.1), run through typer's CliRunner: short runs whose counts must add
up, the output formats, and the failures (a server that is down, a wrong
token, bad options), which end in one line on stderr and an exit code.

No timing is asserted: the machine is shared and noisy. Every run is bounded
(a few thousand requests or half a second), and every server is stopped when
its test ends.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from cachegrid import loadgen
from cachegrid.cli import app
from cachegrid.cli.status import ExitCode
from cachegrid.testing import CLI, free_port, running
from cachegrid.testing import ServerProcess as Server

runner = CliRunner()
UNAUTHORIZED = ExitCode.UNAUTHORIZED


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(graceful=False) as started:
        yield started


def loadtest(*args: str) -> Result:
    return runner.invoke(app, ["loadtest", *args])


def run_json(*args: str) -> dict:
    result = loadtest(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def stats(server: Server) -> dict:
    status, _, body = server.request("GET", "/stats")
    assert status == 200
    return json.loads(body)


def one_error_line(result: Result, code: ExitCode) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_counts_add_up_and_the_sets_reach_the_server(server: Server) -> None:
    before = stats(server)["sets"]
    document = run_json(
        "--url", server.url, "--requests", "2000", "--concurrency", "4", "--processes", "1", "--keyspace", "100"
    )
    assert document["requests"] == 2000
    assert document["errors"] == 0 and document["errors_by_kind"] == {}
    assert document["gets"] + document["sets"] == 2000
    assert 0.10 * 2000 <= document["sets"] <= 0.30 * 2000  # --mix 80:20 by default
    assert document["duration_seconds"] > 0 and document["requests_per_second"] > 0
    assert document["generator_cpu_percent"] >= 0
    latency = document["latency_ms"]
    assert 0 <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    # The fill stored the 100 keys; then every SET of the run was one set on the server.
    assert stats(server)["sets"] - before == 100 + document["sets"]


def test_several_processes_and_pipelining(server: Server) -> None:
    document = run_json(
        "--url",
        server.url,
        "--requests",
        "1001",
        "--concurrency",
        "5",
        "--processes",
        "2",
        "--pipeline",
        "3",
        "--mix",
        "100:0",
        "--keyspace",
        "10",
    )
    assert document["requests"] == 1001 and document["gets"] == 1001
    assert document["errors"] == 0
    assert document["processes"] == 2 and document["pipeline"] == 3


def test_only_sets_skip_the_fill(server: Server) -> None:
    before = stats(server)["sets"]
    document = run_json(
        "--url", server.url, "--requests", "300", "--concurrency", "2", "--processes", "1", "--mix", "0:1"
    )
    assert document["sets"] == 300 and document["gets"] == 0 and document["errors"] == 0
    assert stats(server)["sets"] - before == 300


def test_batch_requests_count_keys(server: Server) -> None:
    before = stats(server)["sets"]
    document = run_json(
        "--url",
        server.url,
        "--requests",
        "200",
        "--batch",
        "10",
        "--keyspace",
        "50",
        "--concurrency",
        "4",
        "--processes",
        "1",
    )
    assert document["requests"] == 200 and document["errors"] == 0
    assert document["keys"] == 200 * 10
    assert document["keys_per_second"] == pytest.approx(10 * document["requests_per_second"], rel=0.01)
    assert stats(server)["sets"] - before == 50 + 10 * document["sets"]


def test_a_duration_run_stops_by_itself(server: Server) -> None:
    document = run_json(
        "--url", server.url, "--duration", "0.5", "--concurrency", "2", "--processes", "1", "--keyspace", "10"
    )
    assert document["requests"] > 0 and document["errors"] == 0
    assert document["duration_seconds"] < 15


def test_plain_table_when_stdout_is_not_a_terminal(server: Server) -> None:
    result = loadtest(
        "--url",
        server.url,
        "--requests",
        "200",
        "--concurrency",
        "2",
        "--processes",
        "1",
        "--keyspace",
        "10",
        "--batch",
        "2",
    )
    assert result.exit_code == 0, result.stderr
    assert "\x1b[" not in result.stdout and "┃" not in result.stdout and "│" not in result.stdout
    # "name  value" lines: the name and the value are two or more spaces apart.
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.splitlines())
    assert lines["requests"] == "200"
    assert lines["errors"] == "0"
    assert lines["keys"] == "400"
    for name in ("duration", "requests/s", "keys/s", "latency p50", "latency p99", "latency max", "generator CPU"):
        assert name in lines, result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert re.fullmatch(r"loadtest:[0-9a-f]{8}:0 \.\. loadtest:[0-9a-f]{8}:9 \(10 keys\)", lines["keyspace"])
    assert lines["evictions"] == "0 during the run"
    assert lines["cleanup"] == "deleted 10 keys"


def test_errors_are_counted_by_kind() -> None:
    # Values over the server's limit: every SET is refused (413).
    with running(env={"CACHEGRID_MAX_VALUE_SIZE": "1000"}) as small:
        document = run_json(
            "--url",
            small.url,
            "--requests",
            "300",
            "--concurrency",
            "2",
            "--processes",
            "1",
            "--value-size",
            "2000",
            "--mix",
            "0:1",
        )
    assert document["requests"] == 300
    assert document["errors_by_kind"] == {"HTTP 413": document["errors"]}
    assert document["sets"] + document["errors"] == 300 and document["errors"] > 0


def test_server_side(server: Server) -> None:
    answer = run_json("--url", server.url, "--server-side", "--operations", "500", "--operation-type", "get")
    assert answer["num_operations"] == 500 and answer["operation_type"] == "get"
    assert set(answer["latency_us"]) == {"p50", "p95", "p99", "max"}
    result = loadtest("--url", server.url, "--server-side", "--operations", "100")
    assert result.exit_code == 0, result.stderr
    assert "operations/s" in result.stdout and "latency p99" in result.stdout and "mixed" in result.stdout


def test_a_server_that_is_down() -> None:
    result = loadtest("--url", f"http://127.0.0.1:{free_port()}", "--requests", "10", "--processes", "1")
    assert "no CacheGrid server answered" in one_error_line(result, ExitCode.UNAVAILABLE)
    result = loadtest("--url", f"http://127.0.0.1:{free_port()}", "--server-side")
    one_error_line(result, ExitCode.UNAVAILABLE)


SECRET = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def guarded() -> Iterator[Server]:
    """A server started with an auth token (SECRET)."""
    with running(env={"CACHEGRID_AUTH_TOKEN": SECRET}, graceful=False) as started:
        yield started


def test_a_token(guarded: Server) -> None:
    common = ["--url", guarded.url, "--requests", "100", "--concurrency", "2", "--processes", "1"]
    assert "token" in one_error_line(loadtest(*common), UNAUTHORIZED)
    assert "token" in one_error_line(loadtest(*common, "--token", "wrong"), UNAUTHORIZED)
    assert "401" in one_error_line(loadtest(*common, "--token", "wrong", "--mix", "0:1"), UNAUTHORIZED)
    one_error_line(loadtest(*common, "--token", "wrong", "--server-side"), UNAUTHORIZED)
    document = json.loads(
        runner.invoke(app, ["loadtest", *common, "--json"], env={"CACHEGRID_AUTH_TOKEN": SECRET}).stdout
    )
    assert document["requests"] == 100 and document["errors"] == 0


def test_the_global_token_applies_and_the_alias_wins_over_it(guarded: Server) -> None:
    run = ["loadtest", "--requests", "100", "--concurrency", "2", "--processes", "1", "--json"]
    result = runner.invoke(app, ["--url", guarded.url, "--token", SECRET, *run])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["errors"] == 0
    result = runner.invoke(app, ["--url", guarded.url, "--token", "wrong", *run, "--token", SECRET])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["--url", guarded.url, "--token", SECRET, *run, "--token", "wrong"])
    assert "token" in one_error_line(result, UNAUTHORIZED)


def test_the_global_options_apply(server: Server) -> None:
    result = runner.invoke(
        app, ["--url", server.url, "--json", "loadtest", "--requests", "100", "--concurrency", "2", "--processes", "1"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["requests"] == 100
    # The command's own --url wins over the global one.
    result = runner.invoke(
        app,
        [
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "loadtest",
            "--url",
            server.url,
            "--requests",
            "100",
            "--concurrency",
            "2",
            "--processes",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--mix", "80"],
        ["--mix", "0:0"],
        ["--mix", "a:b"],
        ["--requests", "10", "--duration", "1"],
        ["--requests", "0"],
        ["--duration", "-1"],
        ["--duration", "inf"],
        ["--duration", "nan"],
        ["--concurrency", "0"],
        ["--pipeline", "0"],
        ["--processes", "0"],
        ["--batch", "20", "--keyspace", "10"],
        ["--url", "https://127.0.0.1:1"],
        ["--url", "http://127.0.0.1:1/cache"],
        ["--operations", "5"],
        ["--server-side", "--operation-type", "delete"],
        ["--server-side", "--operations", "0"],
        ["--prefix", ""],
        ["--prefix", "has space"],
        ["--prefix", "glob*"],
        ["--prefix", "a/b"],
        ["--prefix", "x" * 65],
        ["--server-side", "--prefix", "a:"],
        ["--server-side", "--keep"],
    ],
)
def test_bad_options(args: list[str]) -> None:
    # Checked before any connection: the port 1 is never reached.
    one_error_line(loadtest("--url", "http://127.0.0.1:1", *args), ExitCode.USAGE)


def test_the_url_comes_from_the_environment_and_the_first_of_several_hosts(server: Server) -> None:
    run = ["loadtest", "--requests", "100", "--concurrency", "2", "--processes", "1", "--json"]
    result = runner.invoke(app, run, env={"CACHEGRID_URL": server.url})
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["url"] == server.url
    # Failover hosts for the other commands; a load test loads the first one only.
    down = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["--url", f"{server.url},{down}", *run])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["requests"] == 100
    result = runner.invoke(app, ["--url", down, "--url", server.url, *run])
    assert "no CacheGrid server answered" in one_error_line(result, ExitCode.UNAVAILABLE)


def test_a_full_server_is_refused_before_anything_is_written() -> None:
    with running("--max-size", "10", "--policy", "noeviction") as full:
        result = loadtest(
            "--url", full.url, "--requests", "100", "--concurrency", "2", "--processes", "1", "--keyspace", "200"
        )
        assert stats(full)["sets"] == 0
    # The load test declines to write, as a full server declines a write: REFUSED.
    line = one_error_line(result, ExitCode.REFUSED)
    assert "room for only 9 of the load test's keys without evicting" in line, line


def test_a_second_ctrl_c_exits_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first Ctrl-C stops the load and reports (the runner's part); one more
    # while it winds down reaches the command as KeyboardInterrupt.
    def interrupted(*args: object, **kwargs: object) -> loadgen.Report:
        raise KeyboardInterrupt

    monkeypatch.setattr(loadgen, "run_apart", interrupted)
    result = loadtest("--url", "http://127.0.0.1:1", "--requests", "10", "--processes", "1", "--prefix", "lt:")
    assert one_error_line(result, ExitCode.INTERRUPTED) == "error: interrupted; the keys under 'lt:' were deleted"
    assert result.exit_code == 130


# -- a load test never touches the server's data ------------------------------------

REAL = {"greeting": "hello", **{f"user:{n}": {"n": n} for n in range(20)}}
SHORT = ["--duration", "0.3", "--concurrency", "2", "--processes", "1"]


def store_real_keys(server: Server) -> None:
    for key, value in REAL.items():  # one by one: some of these servers take small batches only
        status, _, body = server.request("PUT", f"/cache/{key}", value)
        assert status in (200, 201), body


def assert_real_keys_intact(server: Server) -> None:
    for key, value in REAL.items():
        status, _, body = server.request("GET", f"/cache/{key}")
        assert (status, json.loads(body)) == (200, value), key


def keys_under(server: Server, prefix: str) -> list[str]:
    """Every key under ``prefix``, following the listing's cursor (bounded)."""
    found: list[str] = []
    cursor = None
    for _ in range(1000):
        path = f"/admin/keys?pattern={prefix}&limit=10000" + (f"&cursor={cursor}" if cursor else "")
        page = json.loads(server.request("GET", path)[2])
        found += page["keys"]
        cursor = page["cursor"]
        if cursor is None:
            return found
    raise AssertionError("the key listing did not end")


def test_real_keys_survive_with_no_eviction_and_no_key_left() -> None:
    # A batch limit of 7: the fill and the cleanup go in small chunks.
    with running("--max-size", "1000", env={"CACHEGRID_MAX_BATCH_SIZE": "7"}, graceful=False) as server:
        store_real_keys(server)
        document = run_json("--url", server.url, *SHORT, "--keyspace", "10000")
        assert_real_keys_intact(server)
        after = stats(server)
        assert after["evictions"] == 0 and after["current_size"] == len(REAL)
        assert keys_under(server, "loadtest:") == []
    assert re.fullmatch(r"loadtest:[0-9a-f]{8}:", document["prefix"])
    # 979 items free, less the 10 % reserve.
    assert document["keyspace"] == 881 and document["keyspace_asked"] == 10000
    assert "881 keys of the 10,000 asked" in document["keyspace_capped"]
    assert document["evictions_during_run"] == 0
    assert document["keys_deleted"] == 881 and document["kept"] is False
    assert document["requests"] > 0 and document["errors"] == 0


def test_each_run_has_a_prefix_of_its_own(server: Server) -> None:
    first = run_json("--url", server.url, "--requests", "50", "--processes", "1", "--keyspace", "10")
    second = run_json("--url", server.url, "--requests", "50", "--processes", "1", "--keyspace", "10")
    assert first["prefix"] != second["prefix"]


def test_keep_leaves_the_keys(server: Server) -> None:
    prefix = "lt-keep:"
    document = run_json(
        "--url", server.url, "--requests", "100", "--processes", "1", "--keyspace", "30", "--prefix", prefix, "--keep"
    )
    assert document["kept"] is True and document["keys_deleted"] == 0 and document["prefix"] == prefix
    assert sorted(keys_under(server, prefix)) == sorted(f"{prefix}{n}" for n in range(30))
    server.request("POST", "/cache/batch/delete", {"keys": [f"{prefix}{n}" for n in range(30)]})


def test_a_server_holding_keys_under_the_prefix_is_refused() -> None:
    # Two slots examined per listing page: the key under the prefix is found
    # pages after the first, which hold none.
    with running(env={"CACHEGRID_KEYS_SCAN_COUNT": "2"}, graceful=False) as server:
        store_real_keys(server)
        server.request("PUT", "/cache/mine:1", {"mine": True})
        before = stats(server)
        result = loadtest("--url", server.url, *SHORT, "--keyspace", "10", "--prefix", "mine:")
        line = one_error_line(result, ExitCode.REFUSED)
        assert "already holds keys under 'mine:'" in line and "--prefix" in line
        after = stats(server)
        assert after["sets"] == before["sets"] and after["deletes"] == before["deletes"]
        assert json.loads(server.request("GET", "/cache/mine:1")[2]) == {"mine": True}
        assert_real_keys_intact(server)


def test_a_nearly_full_server_gets_a_capped_keyspace_and_no_eviction() -> None:
    with running("--max-size", "60", "--policy", "lru", graceful=False) as server:
        store_real_keys(server)  # 21 of 60: 39 free, 35 after the reserve
        result = loadtest("--url", server.url, *SHORT, "--keyspace", "1000", "--mix", "50:50")
        assert result.exit_code == 0, result.stderr
        assert_real_keys_intact(server)
        assert stats(server)["evictions"] == 0 and stats(server)["current_size"] == len(REAL)
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.splitlines() if line.strip())
    assert lines["capped"].startswith("35 keys of the 1,000 asked, to fit without evicting: 39 items")
    assert lines["evictions"] == "0 during the run" and lines["cleanup"] == "deleted 35 keys"


def test_the_memory_limit_caps_the_keyspace_too() -> None:
    # 0.5 MiB and values of 2,000 characters: about 2,270 bytes a key.
    with running("--max-memory-mb", "0.5", "--policy", "lru", graceful=False) as server:
        store_real_keys(server)
        before = stats(server)
        document = run_json("--url", server.url, *SHORT, "--keyspace", "1000", "--value-size", "2000")
        assert_real_keys_intact(server)
        assert stats(server)["evictions"] == 0
    free = before["max_memory_bytes"] - before["memory_usage_bytes"]
    assert document["keyspace"] == int(free * 0.9) // (len(document["prefix"]) + 3 + 2002 + 256)
    assert "MiB free" in document["keyspace_capped"] and document["evictions_during_run"] == 0


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_mid_run_still_deletes_the_keys(signal_number: int) -> None:
    prefix = "lt-stop:"
    with running(graceful=False) as server:
        store_real_keys(server)
        command = [CLI, "--url", server.url, "loadtest", "--duration", "30", "-c", "2", "--processes", "1"]
        command += ["--keyspace", "200", "--prefix", prefix, "--json"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            # Filled, and the timed run under way: the server's GET count moves.
            while stats(server)["current_size"] < len(REAL) + 200 or stats(server)["hits"] < 100:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the load test did not start in time"
                time.sleep(0.05)
            process.send_signal(signal_number)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        document = json.loads(stdout)
        assert 0 < document["duration_seconds"] < 25 and document["keys_deleted"] == 200
        assert keys_under(server, prefix) == []
        assert stats(server)["current_size"] == len(REAL)
        assert_real_keys_intact(server)
