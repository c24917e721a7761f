"""The one-key shortcut (Api._one): straight to the key's node, the plan only
after a failure or a miss another replica may answer, and then nothing is
sent twice; and the JSON codec of the hot path (protocol.encode/decode)
against the standard library's."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import enum
import json
from typing import Any

import pytest

from cachegrid.client import CacheGridClient, SyncCacheGridClient, Unavailable
from cachegrid.client.protocol import Answer, Call, NotSent, Outcome, decode, encode
from cachegrid.client.wire import Headers

HOSTS = [f"127.0.0.1:{7101 + n}" for n in range(3)]
HIT = Answer(200, b'{"v":1}', Headers({"content-type": "application/json"}))
MISS = Answer(404, b'{"error":"not_found","message":"no such key: \'k\'","key":"k"}', Headers())


def scripted(client: SyncCacheGridClient, replies: list[Outcome]) -> list[tuple[str, str]]:
    """Make ``client`` answer ``replies`` in turn; returns what it sent (host, method)."""
    sent: list[tuple[str, str]] = []

    def send(host: str, call: Call) -> Answer:
        sent.append((host, call.method))
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    client._send = send  # type: ignore[method-assign]
    client._sleep = lambda seconds: None
    return sent


def test_a_hit_is_one_request_and_no_plan() -> None:
    client = SyncCacheGridClient(HOSTS[:1])
    sent = scripted(client, [HIT])
    assert client.get("k") == {"v": 1}
    assert sent == [("http://" + HOSTS[0], "GET")]


def test_a_failed_first_request_counts_as_the_plans_first_attempt() -> None:
    client = SyncCacheGridClient(HOSTS[:1], max_retries=2)
    sent = scripted(client, [NotSent("refused"), NotSent("refused"), HIT])
    assert client.get("k") == {"v": 1}
    assert len(sent) == 3  # 1 + max_retries attempts in all: the shortcut's was the first of them
    client = SyncCacheGridClient(HOSTS[:1], max_retries=2)
    sent = scripted(client, [NotSent("refused")] * 3)
    with pytest.raises(Unavailable):
        client.get("k")
    assert len(sent) == 3


def test_a_cooling_host_makes_the_client_run_the_plan() -> None:
    client = SyncCacheGridClient(HOSTS[:2], sharding=False, max_retries=1)
    sent = scripted(client, [NotSent("refused"), HIT, HIT])
    assert client.get("k") == {"v": 1}
    assert [host for host, _ in sent] == ["http://" + HOSTS[0], "http://" + HOSTS[1]]
    assert not client.pool.calm()
    assert client.router.direct("k", write=False) is None  # the next call goes by the plan
    assert client.get("k") == {"v": 1}
    assert [host for host, _ in sent][-1] == "http://" + HOSTS[1]


def test_a_miss_on_the_first_replica_asks_the_next_and_repairs() -> None:
    client = SyncCacheGridClient(HOSTS, replicas=2)
    first, second = client.node_for("k")
    sent = scripted(client, [MISS, HIT, Answer(201, b"{}", Headers())])
    assert client.get("k") == {"v": 1}
    assert sent == [(first, "GET"), (second, "GET"), (first, "PUT")]  # the read repair copies it back


def test_a_miss_of_a_single_copy_is_the_answer() -> None:
    client = SyncCacheGridClient(HOSTS, replicas=1)
    sent = scripted(client, [MISS])
    assert client.get("k", "absent") == "absent"
    assert len(sent) == 1


def test_writes_to_replicas_go_by_the_plan() -> None:
    client = SyncCacheGridClient(HOSTS, replicas=2)
    assert client.router.direct("k", write=True) is None
    sent = scripted(client, [Answer(201, b'{"created":true}', Headers())] * 2)
    assert client.set("k", 1) is True
    assert sorted(host for host, _ in sent) == sorted(client.node_for("k"))


def test_the_async_client_takes_the_same_shortcut() -> None:
    client = CacheGridClient(HOSTS[:1], max_retries=1)
    replies: list[Outcome] = [NotSent("refused"), HIT]
    sent: list[str] = []

    async def attempt(host: str, call: Call) -> Outcome:
        sent.append(host)
        return replies.pop(0)

    async def no_wait(seconds: float) -> None:
        return None

    client._attempt = attempt  # type: ignore[method-assign]
    client._sleep = no_wait
    assert asyncio.run(client.get("k")) == {"v": 1}
    assert len(sent) == 2


class Number(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


VALUES: list[Any] = [
    {"name": "Alice", "age": 30},
    [1, 2.5, None, True, False, "ключ", "\u2028"],
    {1: "a", 2.5: "b"},
    2**70,
    -(2**63) - 1,
    Text("x"),
    collections.OrderedDict(b=1, a=2),
    Number.ONE,
    1e16,
    -0.0,
    0.1,
    {"nested": [{"a": None}]},
    "\ud800",
    float("nan"),
    [float("inf")],
    datetime.date(2026, 1, 1),
    Point(1),
    object(),
    {(1, 2): 3},
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(value)[:24] for value in VALUES])
def test_encode_answers_as_the_standard_library(value: Any) -> None:
    def standard(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()

    try:
        expected: Any = json.loads(standard(value))
    except (TypeError, ValueError) as error:
        with pytest.raises(type(error)):
            encode(value)
        return
    assert json.loads(encode(value)) == expected


@pytest.mark.parametrize(
    "body", [b'{"a":12345678901234567890123}', b"[1.5,-0.0,1e400]", b'"\\ud800"', b"1" * 25, b'{"a":1,"a":2}']
)
def test_decode_answers_as_the_standard_library(body: bytes) -> None:
    assert repr(decode(body)) == repr(json.loads(body))
