"""Binary values through ``cachegrid`` against a real server: set from a file
or stdin, get as a summary, as bytes to a file or stdout, as base64 with
--json, and in batch get."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

from cachegrid.cli.status import ExitCode
from cachegrid.testing import ServerProcess as Server

from .conftest import Invoke

Key = Callable[..., str]
EVERY_BYTE = bytes(range(256))


def test_set_from_a_file_stores_its_bytes_as_binary(cli: Invoke, key: Key, cli_server: Server, tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(EVERY_BYTE)
    result = cli("set", key(), "--file", str(source), "--ttl", "60")
    assert result.exit_code == 0, result.stderr
    status, headers, body = cli_server.request("GET", f"/cache/{key()}")
    assert (status, body, headers["x-cache-type"]) == (200, EVERY_BYTE, "binary")


def test_set_from_stdin_and_get_to_stdout(cli: Invoke, key: Key) -> None:
    assert cli("set", key(), "-f", "-", input=EVERY_BYTE).exit_code == 0  # type: ignore[arg-type]
    result = cli("get", key(), "--output", "-")
    assert result.exit_code == 0 and result.stdout_bytes == EVERY_BYTE


def test_get_of_a_binary_value_prints_a_summary_not_its_bytes(cli: Invoke, key: Key, tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(b"\x80\x04K*.")
    cli("set", key(), "--file", str(source))
    result = cli("get", key())
    assert result.exit_code == 0
    assert result.stdout.startswith("binary value, 5 bytes") and "--output" in result.stdout
    document = json.loads(cli("get", key(), "--json").stdout)
    assert document == {
        "key": key(),
        "type": "binary",
        "size": 5,
        "value_base64": base64.b64encode(b"\x80\x04K*.").decode(),
    }
    target = tmp_path / "out.bin"
    assert cli("get", key(), "-o", str(target)).exit_code == 0
    assert target.read_bytes() == b"\x80\x04K*."


def test_an_empty_file_is_an_empty_value(cli: Invoke, key: Key, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert cli("set", key(), "--file", str(empty)).exit_code == 0
    assert cli("get", key()).stdout.startswith("binary value, 0 bytes")


def test_output_of_a_json_value_writes_its_json(cli: Invoke, key: Key, tmp_path: Path) -> None:
    cli("set", key(), '{"a": [1, 2]}')
    target = tmp_path / "value.json"
    assert cli("get", key(), "--output", str(target)).exit_code == 0
    assert target.read_bytes() == b'{"a":[1,2]}'


def test_value_and_file_together_or_neither_is_a_usage_error(cli: Invoke, key: Key, tmp_path: Path) -> None:
    assert cli("set", key(), "1", "--file", str(tmp_path)).exit_code == ExitCode.USAGE
    assert cli("set", key()).exit_code == ExitCode.USAGE
    missing = cli("set", key(), "--file", str(tmp_path / "absent"))
    assert missing.exit_code == ExitCode.USAGE and "cannot read" in missing.stderr
    assert cli("get", key()).exit_code == ExitCode.NOT_FOUND  # nothing was stored


def test_batch_get_shows_binary_values_by_size_and_base64_with_json(cli: Invoke, key: Key, tmp_path: Path) -> None:
    source = tmp_path / "blob.bin"
    source.write_bytes(EVERY_BYTE)
    cli("set", key("bin"), "--file", str(source))
    cli("set", key("json"), "[1]")
    lines = cli("batch", "get", key("bin"), key("json")).stdout.splitlines()
    assert lines == [f"{key('bin')}\t<binary value, 256 bytes>", f"{key('json')}\t[1]"]
    document = json.loads(cli("--json", "batch", "get", key("bin"), key("json")).stdout)
    assert document == {
        "items": {key("json"): [1]},
        "items_base64": {key("bin"): base64.b64encode(EVERY_BYTE).decode()},
        "missing": [],
    }
