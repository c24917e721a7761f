"""The load generator's plan and wire format: how a plan is shared out, the
bytes of each request, the request mix, and the minimal response framing."""

from __future__ import annotations

import json
import random

import pytest

from cachegrid.loadgen.plan import Plan, Target, budgets, split
from cachegrid.loadgen.wire import Requests, closes, request_mix, response_length


def test_connections_and_requests_are_shared_out_in_proportion() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(2, 2) == [1, 1]
    assert budgets(Plan(requests=10, concurrency=5), [3, 2]) == [6, 4]
    # 7 requests over 2 + 1 connections: rounded down to 4 + 2, the one left goes to the first.
    assert budgets(Plan(requests=7, concurrency=3), [2, 1]) == [5, 2]
    assert budgets(Plan(requests=None, duration=1.0, concurrency=3), [2, 1]) == [None, None]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1:1", "only http://"),
        ("http://127.0.0.1:1/cache", "without a path"),
        ("http://127.0.0.1:port", "not a number"),
        ("http://", "no host"),
    ],
)
def test_a_target_is_a_plain_http_base_url(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Target.parse(url)


def test_a_target_keeps_its_host_port_and_token() -> None:
    target = Target.parse("http://[::1]:9000/", "t")
    assert (target.host, target.port, target.token, target.url) == ("::1", 9000, "t", "http://[::1]:9000")
    assert Target.parse("http://example.test", "").token is None
    assert Target.parse("http://example.test").port == 80


def test_request_bytes() -> None:
    build = Requests(Target.parse("http://[::1]:9000", "t"), Plan(keyspace=5, batch=3, value_size=2))
    assert build.get(4) == b"GET /cache/key:4 HTTP/1.1\r\nHost: [::1]:9000\r\nAuthorization: Bearer t\r\n\r\n"
    body = build.batch_set(4).split(b"\r\n\r\n", 1)[1]
    assert json.loads(body) == {"items": {"key:4": "xx", "key:0": "xx", "key:1": "xx"}}
    assert json.loads(build.batch_get(1).split(b"\r\n\r\n", 1)[1]) == {"keys": ["key:1", "key:2", "key:3"]}
    head, value = build.set(2).split(b"\r\n\r\n", 1)
    assert head.startswith(b"PUT /cache/key:2 HTTP/1.1\r\n") and b"Content-Length: 4" in head
    assert value == b'"xx"'


def test_the_prebuilt_gets_are_the_templated_ones() -> None:
    target = Target.parse("http://127.0.0.1:8080")
    prebuilt = Requests(target, Plan(keyspace=10))
    templated = Requests(target, Plan(keyspace=1 << 17))  # too many keys to build in advance
    assert prebuilt.gets is not None and templated.gets is None
    assert [prebuilt.get(key) for key in range(10)] == [templated.get(key) for key in range(10)]


def test_the_mix_follows_the_get_share_and_records_each_request() -> None:
    target = Target.parse("http://127.0.0.1:8080")
    only_gets = Plan(keyspace=100, get_share=1.0)
    next_request = request_mix(Requests(target, only_gets), only_gets, random.Random(1))
    data, record = next_request(12.5)
    assert data.startswith(b"GET /cache/key:") and record == (12.5, 1, True)
    only_batch_sets = Plan(keyspace=100, get_share=0.0, batch=4)
    next_request = request_mix(Requests(target, only_batch_sets), only_batch_sets, random.Random(1))
    for _ in range(20):
        data, record = next_request(1.0)
        assert data.startswith(b"POST /cache/batch/set ") and record == (1.0, 4, False)
    # 80:20: a seeded mix is reproducible and near its share.
    mixed = Plan(keyspace=100, get_share=0.8)
    draws = [request_mix(Requests(target, mixed), mixed, random.Random(7)) for _ in range(2)]
    first, second = ([draw(0.0)[1][2] for _ in range(2000)] for draw in draws)
    assert first == second
    assert 0.75 < sum(first) / len(first) < 0.85


def test_a_response_is_framed_by_its_content_length() -> None:
    for head in (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5",
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nX: y",
        b"HTTP/1.0 404 Not Found\r\nCONTENT-LENGTH: 5",
    ):
        assert response_length(head, len(head)) == len(head) + 4 + 5
    for head in (
        b"SSH-2.0-OpenSSH",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        b"HTTP/1.1 200 OK\r\nContent-Length: many",
    ):
        with pytest.raises(ValueError):
            response_length(head, len(head))


def test_connection_close_is_noticed_whatever_the_header_name_case() -> None:
    assert closes(b"HTTP/1.1 200 OK\r\nConnection: close")
    assert closes(b"HTTP/1.1 200 OK\r\nCONNECTION: close")
    assert not closes(b"HTTP/1.1 200 OK\r\nConnection: keep-alive")
