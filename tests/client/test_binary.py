"""Binary values through both clients against a real server: ``bytes`` in,
``bytes`` out, alone and in batches, next to JSON values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cachegrid.client import RequestError
from cachegrid.testing import ServerProcess as Server
from cachegrid.testing import running
from tests.client.callers import Call, address, make_caller

MAX_VALUE = 4096
EVERY_BYTE = bytes(range(256))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running(env={"CACHEGRID_MAX_VALUE_SIZE": str(MAX_VALUE)}, graceful=False) as started:
        yield started


@pytest.fixture
def call(kind: str, server: Server) -> Call:
    return make_caller(kind, [address(server)])[0]


@pytest.mark.parametrize(
    "value",
    [EVERY_BYTE, b"", b"\x80\x04K*.", b'"looks like json"', b"123"],
    ids=["every-byte", "empty", "pickle", "json-text", "digits"],
)
def test_bytes_come_back_as_bytes(call: Call, key: str, value: bytes, server: Server) -> None:
    assert call("set", key, value) is True
    got = call("get", key)
    assert type(got) is bytes and got == value
    assert server.request("HEAD", f"/cache/{key}")[1]["x-cache-type"] == "binary"


def test_bytearray_and_memoryview_are_stored_as_bytes(call: Call, key: str) -> None:
    call("set", key + ":a", bytearray(b"\x00\x01"))
    call("set", key + ":m", memoryview(b"\x02\x03"))
    assert (call("get", key + ":a"), call("get", key + ":m")) == (b"\x00\x01", b"\x02\x03")


def test_json_values_stay_json(call: Call, key: str, server: Server) -> None:
    call("set", key, "text")
    assert call("get", key) == "text"
    assert server.request("HEAD", f"/cache/{key}")[1]["x-cache-type"] == "json"


def test_a_value_at_the_limit_and_one_byte_over(call: Call, key: str) -> None:
    largest = EVERY_BYTE * (MAX_VALUE // 256)
    assert call("set", key, largest) is True
    with pytest.raises(RequestError) as refused:
        call("set", key, largest + b"\x00")
    assert refused.value.status == 413 and refused.value.code == "value_too_large"
    assert call("get", key) == largest


def test_conditions_and_ttl_with_bytes(call: Call, key: str) -> None:
    assert call("set", key, b"first", ttl=60, only_if_absent=True) is True
    assert call("set", key, b"second", only_if_absent=True) is False
    assert call("get", key) == b"first" and 0 < call("ttl", key) <= 60
    assert call("exists", key) is True


def test_counters_refuse_a_binary_value(call: Call, key: str) -> None:
    call("set", key, b"5")
    with pytest.raises(RequestError) as refused:
        call("incr", key)
    assert refused.value.code == "not_an_integer"


def test_multi_operations_with_bytes_and_json_together(call: Call, key: str) -> None:
    items = {f"{key}:{byte}": bytes([byte]) for byte in range(256)}
    items[f"{key}:empty"] = b""
    items[f"{key}:every"] = EVERY_BYTE
    items[f"{key}:json"] = {"n": 1}
    items[f"{key}:count"] = 3
    assert call("set_multi", items, ttl=60) == len(items)
    found = call("get_multi", [*items, f"{key}:absent"])
    assert found == items and list(found) == list(items)  # in the order asked
    assert all(type(found[name]) is bytes for name in items if isinstance(items[name], bytes))
    assert call("incr", f"{key}:count") == 4  # a JSON integer of a mixed batch is still a counter
