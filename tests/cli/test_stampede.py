"""``cachegrid lock`` and ``mark-stale`` against a real server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from urllib.parse import quote

from cachegrid.cli.status import ExitCode
from cachegrid.testing import ServerProcess as Server

from .conftest import Invoke

Key = Callable[..., str]


def test_lock_prints_a_token_and_a_second_lock_exits_held(cli: Invoke, key: Key) -> None:
    taken = cli("lock", key(), "--ttl", "30")
    assert taken.exit_code == 0
    token = taken.stdout.strip()
    assert token and "release" in taken.stderr
    again = cli("lock", key(), "--ttl", "30")
    assert again.exit_code == ExitCode.HELD and again.stdout == "" and "held by another" in again.stderr
    status = cli("lock", key(), "--status")
    assert status.exit_code == ExitCode.HELD and status.stdout.strip() == "held"
    assert cli("lock", key(), "--release", token).exit_code == 0
    free = cli("lock", key(), "--status")
    assert free.exit_code == 0 and free.stdout.strip() == "free"


def test_a_release_with_a_wrong_token_exits_not_found_and_keeps_the_lock(cli: Invoke, key: Key) -> None:
    cli("lock", key(), "--ttl", "30")
    wrong = cli("lock", key(), "--release", "forged")
    assert wrong.exit_code == ExitCode.NOT_FOUND and "names no lock" in wrong.stderr
    assert cli("lock", key(), "--status").exit_code == ExitCode.HELD


def test_lock_with_json_prints_a_document(cli: Invoke, key: Key) -> None:
    document = json.loads(cli("--json", "lock", key(), "--ttl", "5").stdout)
    assert document["key"] == key() and document["token"] and document["ttl"] == 5
    assert json.loads(cli("lock", key(), "--status", "--json").stdout) == {"key": key(), "held": True}


def test_a_bad_ttl_exits_refused_with_one_line(cli: Invoke, key: Key) -> None:
    bad = cli("lock", key(), "--ttl", "-1")
    assert bad.exit_code == ExitCode.REFUSED and "lease" in bad.stderr
    assert cli("lock", key(), "--status").exit_code == 0


def test_mark_stale_keeps_the_value_and_a_missing_key_exits_not_found(cli: Invoke, key: Key) -> None:
    cli("set", key(), "42")
    marked = cli("mark-stale", key())
    assert marked.exit_code == 0 and "stale" in marked.stderr
    assert cli("get", key()).stdout.strip() == "42"
    missing = cli("mark-stale", key("absent"))
    assert missing.exit_code == ExitCode.NOT_FOUND and "no key" in missing.stderr
    assert json.loads(cli("--json", "mark-stale", key()).stdout) == {"key": key(), "stale": True}


def test_set_with_a_stale_window(cli: Invoke, key: Key, cli_server: Server) -> None:
    assert cli("set", key(), "1", "--ttl", "0.2", "--stale", "30").exit_code == 0
    time.sleep(0.3)
    status, headers, body = cli_server.request("GET", f"/cache/{quote(key(), safe='')}")
    assert status == 200 and body == b"1" and headers["x-cache-stale"] == "true"
    bad = cli("set", key(), "2", "--ttl", "5", "--stale", "-1")
    assert bad.exit_code == ExitCode.REFUSED and "stale" in bad.stderr
