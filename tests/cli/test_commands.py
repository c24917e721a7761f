"""Every client command of ``cachegrid`` against a real server, in-process
through typer's CliRunner: output (CliRunner's stdout is not a terminal, so
the plain form; ``--json`` parsed), exit codes and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cachegrid.cli import commands
from cachegrid.cli.status import ExitCode
from cachegrid.config import env_var
from cachegrid.engine import POLICIES
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import free_port

from .conftest import TOKEN, Invoke, runner_for

Key = Callable[..., str]


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# -- get / set ---------------------------------------------------------------------


def test_set_then_get_prints_the_value_as_json(cli: Invoke, key: Key) -> None:
    assert cli("set", key(), '{"name": "Alice", "tags": [1, 2]}').exit_code == 0
    result = cli("get", key())
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"name": "Alice", "tags": [1, 2]}
    assert result.stdout.count("\n") == 1  # one line when piped
    assert json.loads(cli("--json", "get", key()).stdout) == {"name": "Alice", "tags": [1, 2]}


def test_get_of_a_missing_key_exits_not_found(cli: Invoke, key: Key) -> None:
    result = cli("get", key("absent"))
    assert result.exit_code == ExitCode.NOT_FOUND == 1
    assert result.stdout == ""
    assert "no key" in one_error_line(result.stderr)


def test_a_stored_null_is_a_value_not_a_miss(cli: Invoke, key: Key) -> None:
    cli("set", key(), "null")
    result = cli("get", key())
    assert (result.exit_code, result.stdout) == (0, "null\n")


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("42", 42),
        ("true", True),
        ("[1, 2]", [1, 2]),
        ('"42"', "42"),
        ("hello world", "hello world"),
        ("NaN", "NaN"),
        ("{broken", "{broken"),
    ],
)
def test_set_value_is_json_when_it_parses_else_a_string(cli: Invoke, key: Key, given: str, stored: object) -> None:
    assert cli("set", key(), given).exit_code == 0
    assert json.loads(cli("get", key()).stdout) == stored


def test_set_dash_reads_the_value_from_stdin(cli: Invoke, key: Key) -> None:
    assert cli("set", key("json"), "-", input='{"from": "stdin"}\n').exit_code == 0
    assert json.loads(cli("get", key("json")).stdout) == {"from": "stdin"}
    assert cli("set", key("text"), "-", input="plain text\n").exit_code == 0
    assert json.loads(cli("get", key("text")).stdout) == "plain text"


def test_set_confirms_on_stderr_and_prints_a_document_with_json(cli: Invoke, key: Key) -> None:
    result = cli("set", key(), "1", "--ttl", "60")
    assert result.stdout == "" and "stored" in result.stderr
    result = cli("set", key(), "2", "--json")
    assert json.loads(result.stdout) == {"key": key(), "stored": True, "ttl": None}


def test_set_nx_on_an_existing_key_exits_not_stored(cli: Invoke, key: Key) -> None:
    assert cli("set", key(), "1", "--nx").exit_code == 0
    result = cli("set", key(), "2", "--nx", "--json")
    assert result.exit_code == ExitCode.NOT_STORED == 8
    assert json.loads(result.stdout) == {"key": key(), "stored": False, "ttl": None}
    assert "not stored" in one_error_line(result.stderr)
    assert cli("get", key()).stdout == "1\n"


def test_set_xx_on_a_missing_key_exits_not_stored(cli: Invoke, key: Key) -> None:
    result = cli("set", key(), "1", "--xx")
    assert result.exit_code == ExitCode.NOT_STORED
    one_error_line(result.stderr)
    assert cli("get", key()).exit_code == ExitCode.NOT_FOUND
    cli("set", key(), "1")
    assert cli("set", key(), "2", "--xx").exit_code == 0


def test_nx_and_xx_together_are_a_usage_error(cli: Invoke, key: Key) -> None:
    result = cli("set", key(), "1", "--nx", "--xx")
    assert result.exit_code == ExitCode.USAGE
    one_error_line(result.stderr)


def test_a_value_the_server_refuses_exits_refused(cli: Invoke, key: Key) -> None:
    result = cli("set", key(), "-", input=json.dumps("x" * 2_000_000))
    assert result.exit_code == ExitCode.REFUSED == 5
    assert "value_too_large" in one_error_line(result.stderr)
    result = cli("set", key(), "1", "--ttl", "-1")
    assert result.exit_code == ExitCode.REFUSED
    one_error_line(result.stderr)


def test_an_empty_key_is_a_usage_error(cli: Invoke) -> None:
    result = cli("get", "")
    assert result.exit_code == ExitCode.USAGE
    one_error_line(result.stderr)


def test_markup_like_text_in_a_key_is_printed_as_is(cli: Invoke, key: Key) -> None:
    result = cli("get", key("[red]x[/red]"))
    assert "[red]x[/red]" in one_error_line(result.stderr)


# -- delete, incr, decr, ttl -------------------------------------------------------------


def test_delete_exits_not_found_when_the_key_did_not_exist(cli: Invoke, key: Key) -> None:
    cli("set", key(), "1")
    assert cli("delete", key()).exit_code == 0
    result = cli("delete", key(), "--json")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert json.loads(result.stdout) == {"key": key(), "deleted": False}


def test_incr_and_decr_print_the_new_value(cli: Invoke, key: Key) -> None:
    assert cli("incr", key()).stdout == "1\n"
    assert cli("incr", key(), "--by", "10").stdout == "11\n"
    assert cli("decr", key(), "--by", "3").stdout == "8\n"
    assert cli("decr", key()).stdout == "7\n"
    assert json.loads(cli("incr", key(), "--by", "-2", "--json").stdout) == {"key": key(), "value": 5}


def test_incr_of_a_value_that_is_not_an_integer_exits_refused(cli: Invoke, key: Key) -> None:
    cli("set", key(), "text")
    result = cli("incr", key())
    assert result.exit_code == ExitCode.REFUSED
    assert "not_an_integer" in one_error_line(result.stderr)


def test_ttl_prints_seconds_none_or_exits_not_found(cli: Invoke, key: Key) -> None:
    cli("set", key("expiring"), "1", "--ttl", "100")
    seconds = float(cli("ttl", key("expiring")).stdout)
    assert 0 < seconds <= 100
    cli("set", key("forever"), "1")
    assert cli("ttl", key("forever")).stdout == "none\n"
    assert json.loads(cli("ttl", key("forever"), "--json").stdout) == {"key": key("forever"), "ttl": None}
    result = cli("ttl", key("absent"))
    assert result.exit_code == ExitCode.NOT_FOUND
    one_error_line(result.stderr)


# -- keys and clear -------------------------------------------------------------------------


def test_keys_one_per_line_when_piped_and_a_list_with_json(cli: Invoke, key: Key) -> None:
    names = {key(f"n{i}") for i in range(5)}
    for name in names:
        cli("set", name, "1")
    prefix = key("n")
    result = cli("keys", "--pattern", prefix)
    assert result.exit_code == 0
    assert set(result.stdout.splitlines()) == names
    assert set(json.loads(cli("--json", "keys", "--pattern", prefix).stdout)) == names
    limited = json.loads(cli("keys", "--pattern", prefix, "--limit", "2", "--json").stdout)
    assert len(limited) == 2 and set(limited) <= names


def test_keys_limit_below_one_is_a_usage_error(cli: Invoke) -> None:
    assert cli("keys", "--limit", "0").exit_code == ExitCode.USAGE


def test_clear_without_yes_is_refused_when_it_cannot_ask(cli: Invoke, key: Key) -> None:
    cli("set", key(), "1")
    result = cli("clear")
    assert result.exit_code == ExitCode.USAGE
    assert "--yes" in one_error_line(result.stderr)
    assert cli("get", key()).exit_code == 0


def test_clear_asks_on_a_terminal(cli: Invoke, key: Key, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "interactive", lambda: True)
    cli("set", key(), "1")
    declined = cli("clear", input="n\n")
    assert declined.exit_code == 0 and "nothing cleared" in declined.stderr
    assert cli("get", key()).exit_code == 0
    assert cli("clear", input="y\n").exit_code == 0
    assert cli("get", key()).exit_code == ExitCode.NOT_FOUND


def test_clear_with_yes_removes_every_key(cli: Invoke, key: Key) -> None:
    cli("set", key("a"), "1")
    cli("set", key("b"), "2")
    result = cli("clear", "--yes", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["cleared"] >= 2
    assert cli("--json", "keys").stdout == "[]\n"


# -- batch ----------------------------------------------------------------------------------


def test_batch_get_prints_found_items_and_exits_not_found_for_missing(cli: Invoke, key: Key) -> None:
    cli("set", key("a"), '{"x": 1}')
    cli("set", key("b"), "2")
    result = cli("batch", "get", key("a"), key("b"))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f'{key("a")}\t{{"x": 1}}', f"{key('b')}\t2"]
    result = cli("batch", "get", key("a"), key("missing"), "--json")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert json.loads(result.stdout) == {"items": {key("a"): {"x": 1}}, "missing": [key("missing")]}
    one_error_line(result.stderr)


def test_batch_set_from_a_file(cli: Invoke, key: Key, tmp_path: Path) -> None:
    items = {key("a"): {"x": 1}, key("b"): [1, 2], key("c"): "text"}
    source = tmp_path / "items.json"
    source.write_text(json.dumps(items))
    result = cli("batch", "set", str(source), "--ttl", "100", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"stored": 3, "ttl": 100.0}
    assert json.loads(cli("batch", "get", *items, "--json").stdout)["items"] == items
    assert 0 < float(cli("ttl", key("a")).stdout) <= 100


def test_batch_set_from_stdin(cli: Invoke, key: Key) -> None:
    result = cli("batch", "set", "-", input=json.dumps({key("a"): 1, key("b"): 2}))
    assert result.exit_code == 0 and "stored 2 items" in result.stderr
    assert cli("get", key("b")).stdout == "2\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"k": NaN}', "not valid JSON"),
    ],
)
def test_batch_set_of_a_bad_file_is_a_usage_error(cli: Invoke, tmp_path: Path, content: str, message: str) -> None:
    source = tmp_path / "items.json"
    source.write_text(content)
    result = cli("batch", "set", str(source))
    assert result.exit_code == ExitCode.USAGE
    assert message in one_error_line(result.stderr)


def test_batch_set_of_a_missing_file_is_a_usage_error(cli: Invoke, tmp_path: Path) -> None:
    result = cli("batch", "set", str(tmp_path / "nowhere.json"))
    assert result.exit_code == ExitCode.USAGE
    assert "cannot read" in one_error_line(result.stderr)


# -- health and stats -----------------------------------------------------------------------


def test_health_of_a_healthy_server_exits_0(cli: Invoke) -> None:
    result = cli("health")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == ["status", "healthy"]
    assert json.loads(cli("health", "--json").stdout)["status"] == "healthy"


def test_health_of_an_unhealthy_server_exits_unhealthy(stub: Callable[..., object]) -> None:
    unhealthy = stub(
        503,
        json.dumps(
            {"status": "unhealthy", "problems": ["the expiry sweeper is not running"], "node_id": "n1"}
        ).encode(),
    )
    result = runner_for(f"http://{unhealthy.host}")("health", "--json")  # type: ignore[attr-defined]
    assert result.exit_code == ExitCode.UNHEALTHY == 7
    assert json.loads(result.stdout)["status"] == "unhealthy"
    assert "sweeper" in one_error_line(result.stderr)


def test_health_with_nothing_listening_exits_unavailable() -> None:
    result = runner_for(f"http://127.0.0.1:{free_port()}")("health")
    assert result.exit_code == ExitCode.UNAVAILABLE == 4
    assert "connection refused" in one_error_line(result.stderr)


def test_stats_prints_every_field(cli: Invoke) -> None:
    document = json.loads(cli("stats", "--json").stdout)
    assert {"hits", "misses", "sets", "memory_usage_bytes", "max_memory_bytes", "hit_ratio"} <= set(document)
    lines = cli("stats").stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(document)


def test_stats_watch_prints_a_line_per_refresh_when_piped(cli: Invoke) -> None:
    result = cli("stats", "--watch", "--interval", "0.05", "--iterations", "3")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("uptime=") and "ops/s=-" in lines[0]  # no rate before the second refresh
    assert "ops/s=-" not in lines[2] and "hit_ratio=" in lines[2]


def test_stats_watch_with_json_prints_json_lines_with_rates(cli: Invoke) -> None:
    result = cli("--json", "stats", "--watch", "--interval", "0.05", "--iterations", "2")
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["ops_per_second"] is None and second["ops_per_second"] >= 0
    assert "hits" in second and "evictions_per_second" in second


def test_stats_watch_interval_must_be_positive(cli: Invoke) -> None:
    result = cli("stats", "--watch", "--interval", "0")
    assert result.exit_code == ExitCode.USAGE
    one_error_line(result.stderr)


# -- servers that are down, failing or need a token ------------------------------------------


def test_a_server_that_is_down_exits_unavailable() -> None:
    result = runner_for(f"127.0.0.1:{free_port()}")("get", "k")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "no CacheGrid server answered" in one_error_line(result.stderr)


def test_failover_to_the_next_url(cli_server: Server, key: Key) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    invoke = runner_for(f"{dead},{cli_server.url}")
    assert invoke("set", key(), "1").exit_code == 0
    result = runner_for(dead)("--url", dead, "--url", cli_server.url, "get", key())
    assert (result.exit_code, result.stdout) == (0, "1\n")


def test_a_server_failing_with_5xx_exits_server_error(stub: Callable[..., object]) -> None:
    failing = stub(500)
    result = runner_for(f"http://{failing.host}")("get", "k")  # type: ignore[attr-defined]
    assert result.exit_code == ExitCode.SERVER_ERROR == 6
    assert "HTTP 500" in one_error_line(result.stderr)


def test_a_wrong_or_missing_token_exits_unauthorized(token_server: Server, key: Key) -> None:
    invoke = runner_for(token_server.url)
    for extra in (["--token", "wrong"], []):
        result = invoke(*extra, "get", key())
        assert result.exit_code == ExitCode.UNAUTHORIZED == 9
        assert "token" in one_error_line(result.stderr)
    assert invoke("set", key(), "1", CACHEGRID_AUTH_TOKEN=TOKEN).exit_code == 0
    assert invoke("--token", TOKEN, "get", key()).stdout == "1\n"
    assert invoke("health").exit_code == 0  # /health needs no token


@pytest.mark.parametrize(
    "arguments",
    [
        ["--url", "ftp://host", "get", "k"],
        ["--url", "host:port", "get", "k"],
        ["--timeout", "0", "get", "k"],
        # Malformed URLs: usage errors, not "no CacheGrid server answered" (4).
        ["--url", "not a url", "get", "k"],
        ["--url", "ftp://127.0.0.1:8080", "keys"],
        ["--url", "http://127.0.0.1:8080,not a url", "stats"],
        ["--url", "http://127.0.0.1:70000", "get", "k"],
        ["--url", "127.0.0.1:0", "get", "k"],
        ["--url", "http://exa$mple:8080", "get", "k"],
        ["--url", "http://[zz]:8080", "get", "k"],
        ["--url", "http://[::1", "get", "k"],
        ["--url", "http://127.0.0.1:8080/?prefix=x", "get", "k"],
        ["--url", "http://127.0.0.1:80\t80", "health"],
    ],
)
def test_unusable_global_options_are_usage_errors(arguments: list[str]) -> None:
    result = runner_for("http://127.0.0.1:1")(*arguments)
    assert result.exit_code == ExitCode.USAGE
    one_error_line(result.stderr)


def test_a_well_formed_url_is_not_a_usage_error() -> None:
    """Host names, IPv6 addresses and a path prefix pass the check (and then
    find no server: UNAVAILABLE)."""
    for url in ("http://[::1]:1", "127.0.0.1:1", "https://localhost:1/prefix", "my_host.example.:1"):
        result = runner_for(url)("--timeout", "0.5", "get", "k")
        assert result.exit_code == ExitCode.UNAVAILABLE, (url, result.stderr)


def test_help_shows_the_environment_variables() -> None:
    result = runner_for("http://127.0.0.1:1")("--help")
    assert "CACHEGRID_URL" in result.stdout and "CACHEGRID_AUTH_TOKEN" in result.stdout


def test_serve_help_names_every_policy_and_the_worker_choice() -> None:
    result = runner_for("http://127.0.0.1:1", COLUMNS="200")("serve", "--help")
    text = " ".join(result.stdout.split())  # rich wraps the table's cells
    for policy in POLICIES:
        assert policy in text
    assert "leaks memory" not in text and "auto (CacheGrid's meinheld build where installed, else gthread)" in text


# -- config show ----------------------------------------------------------------------------


def test_config_show_gives_each_setting_and_its_source(tmp_path: Path) -> None:
    toml = tmp_path / "cachegrid.toml"
    toml.write_text("[cachegrid]\nmax_size = 1234\nport = 9000\n")
    invoke = runner_for(
        "http://127.0.0.1:1", CACHEGRID_EVICTION_POLICY="lfu", CACHEGRID_PORT="9100", CACHEGRID_AUTH_TOKEN="very-secret"
    )
    result = invoke("config", "show", "--config", str(toml), "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    settings = document["settings"]
    assert document["config_file"] == str(toml)
    assert settings["max_size"] == {"value": 1234, "source": f"config file {toml}", "env": env_var("max_size")}
    assert settings["eviction_policy"]["value"] == "lfu"
    assert settings["eviction_policy"]["source"] == "environment CACHEGRID_EVICTION_POLICY"
    assert settings["port"] == {"value": 9100, "source": "environment CACHEGRID_PORT", "env": "CACHEGRID_PORT"}
    assert settings["threads"]["source"] == "default"
    assert settings["auth_token"]["value"] == "********"
    assert "very-secret" not in result.stdout

    plain = invoke("config", "show", "--config", str(toml))
    assert plain.exit_code == 0 and "very-secret" not in plain.stdout
    rows = {line.split()[0]: line.split() for line in plain.stdout.splitlines()}
    assert rows["max_size"][:3] == ["max_size", "1234", "config"]
    assert rows["auth_token"][1] == "********"


def test_config_show_reads_the_file_named_by_cachegrid_config(tmp_path: Path) -> None:
    toml = tmp_path / "from-env.toml"
    toml.write_text('[cachegrid]\nnode_id = "node-7"\n')
    result = runner_for("http://127.0.0.1:1", CACHEGRID_CONFIG=str(toml))("--json", "config", "show")
    assert json.loads(result.stdout)["settings"]["node_id"]["value"] == "node-7"
    assert json.loads(result.stdout)["settings"]["auth_token"]["value"] is None


def test_config_show_of_a_bad_setting_exits_config(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[cachegrid]\nmax_size = -5\n")
    result = runner_for("http://127.0.0.1:1")("config", "show", "--config", str(toml))
    assert result.exit_code == ExitCode.CONFIG == 3
    assert "max_size" in one_error_line(result.stderr)


def test_a_wrong_path_in_the_url_is_an_error_not_a_miss(cli_server: Server, cli: Invoke, key: Key) -> None:
    cli("set", key("k"), '"v"')
    result = runner_for(cli_server.url + "/some/path")("get", key("k"))
    assert result.exit_code not in (0, ExitCode.NOT_FOUND)
    assert "check the path of the server's URL" in result.stderr
    assert "no key" not in result.stderr
