"""``cachegrid set --tags``, ``invalidate-tag`` and ``delete --pattern`` against a real server."""

from __future__ import annotations

import json
from collections.abc import Callable

from cachegrid.cli.status import ExitCode

from .conftest import Invoke

Key = Callable[..., str]


def test_invalidate_tag_makes_the_tagged_keys_misses(cli: Invoke, key: Key) -> None:
    tag = key("tag").replace(":", "-").replace("[", "").replace("]", "")[-60:]
    assert cli("set", key("a"), "1", "--tags", f"{tag},other").exit_code == 0
    assert cli("set", key("b"), "2").exit_code == 0
    result = cli("--json", "invalidate-tag", tag)
    assert result.exit_code == 0 and json.loads(result.stdout) == {"tags": [tag], "in_use": 1}
    assert cli("get", key("a")).exit_code == ExitCode.NOT_FOUND
    assert cli("get", key("b")).exit_code == 0


def test_an_invalid_tag_is_refused_in_one_line(cli: Invoke, key: Key) -> None:
    result = cli("invalidate-tag", "not a tag")
    assert result.exit_code == ExitCode.REFUSED
    assert result.stderr.count("\n") == 1 and "character" in result.stderr, result.stderr


def test_delete_pattern_deletes_the_matching_keys(cli: Invoke, key: Key) -> None:
    for name in ("x1", "x2", "y1"):
        cli("set", key(name), "1")
    prefix = key("x")
    result = cli("--json", "delete", "--pattern", prefix)
    assert result.exit_code == 0 and json.loads(result.stdout) == {"pattern": prefix, "deleted": 2}
    assert cli("get", key("y1")).exit_code == 0


def test_delete_needs_a_key_or_a_pattern_not_both(cli: Invoke, key: Key) -> None:
    assert cli("delete").exit_code == ExitCode.USAGE
    assert cli("delete", key("a"), "--pattern", "p").exit_code == ExitCode.USAGE
